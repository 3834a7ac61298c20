//! The pool as the node shares it between JSON-RPC, block production and (later) the
//! network: one mutex around [`TxPool`] plus the environment of the next block. The costly,
//! stateless checks (decoding, signature recovery, intrinsic gas) run before the lock is
//! taken, so concurrent submitters only serialise on the cheap part.

use std::sync::Arc;

use alloy_primitives::{Address, B256};
use healthchain_chainspec::ChainConfig;
use healthchain_evm::TransactionSource;
use healthchain_primitives::Transaction;
use healthchain_storage_api::{BlockReader, StateReader, StorageError};
use std::sync::{Mutex, MutexGuard, RwLock};

use crate::{
    AddOutcome, BestTransactions, CheckPoint, HeadOutcome, Origin, PoolConfig, PoolEnv, PoolError,
    PoolStatistics, PoolStatus, PoolTxInfo, TransactionFilter, TxPool, ValidTransaction,
    validate_raw,
};

/// A [`TxPool`] shared across tasks.
pub struct SharedPool {
    pool: Mutex<TxPool>,
    env: RwLock<PoolEnv>,
    config: PoolConfig,
    /// Account permissioning, checked at admission and block building.
    filter: Option<Arc<dyn TransactionFilter>>,
}

impl std::fmt::Debug for SharedPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedPool")
            .field("config", &self.config)
            .field("filtered", &self.filter.is_some())
            .finish_non_exhaustive()
    }
}

impl SharedPool {
    /// An empty pool for the block after the store's head.
    pub fn new<S: StateReader + BlockReader + ?Sized>(
        config: PoolConfig,
        store: &S,
        chain: &ChainConfig,
    ) -> Result<Self, StorageError> {
        let env = PoolEnv::next_block(store, chain)?;
        Ok(Self {
            pool: Mutex::new(TxPool::new(config.clone())),
            env: RwLock::new(env),
            config,
            filter: None,
        })
    }

    /// Checks every sender against `filter` at admission and block building (and lets the
    /// engine check imported blocks with it, [`SharedPool::filter`]).
    pub fn with_filter(mut self, filter: Arc<dyn TransactionFilter>) -> Self {
        self.filter = Some(filter);
        self
    }

    /// The account-permissioning filter, if any.
    pub fn filter(&self) -> Option<&Arc<dyn TransactionFilter>> {
        self.filter.as_ref()
    }

    fn admit(&self, raw: &[u8]) -> Result<ValidTransaction, PoolError> {
        let tx = validate_raw(raw, &self.env(), &self.config)?;
        if let Some(filter) = &self.filter
            && !filter.permitted(&tx.tx, tx.sender, CheckPoint::Pool)
        {
            return Err(PoolError::SenderNotAuthorized);
        }
        Ok(tx)
    }

    fn lock(&self) -> MutexGuard<'_, TxPool> {
        // A panic while holding the lock cannot leave the pool half-updated in a way that
        // matters more than stopping service would, so keep serving.
        self.pool.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn env(&self) -> PoolEnv {
        self.env.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The lowest gas price accepted.
    pub fn min_gas_price(&self) -> u128 {
        self.config.min_gas_price
    }

    /// Validates and adds a transaction submitted over RPC.
    pub fn submit_raw<S: StateReader + ?Sized>(
        &self,
        raw: &[u8],
        state: &S,
        now_ms: u64,
    ) -> Result<AddOutcome, PoolError> {
        let tx = self.admit(raw)?;
        self.lock().add(Arc::new(tx), Origin::Local, &state, now_ms)
    }

    /// Validates and adds a transaction received from a peer.
    pub fn submit_remote<S: StateReader + ?Sized>(
        &self,
        raw: &[u8],
        state: &S,
        now_ms: u64,
    ) -> Result<AddOutcome, PoolError> {
        let tx = self.admit(raw)?;
        self.lock()
            .add(Arc::new(tx), Origin::Remote, &state, now_ms)
    }

    /// The best executable transactions right now, for the block builder. The snapshot does
    /// not hold the lock.
    pub fn block_source(&self) -> BlockSource {
        let base_fee = self.env().base_fee;
        BlockSource {
            best: self.lock().best_transactions(base_fee),
            invalid: Vec::new(),
            filter: self.filter.clone(),
        }
    }

    /// After a block is committed: drop what the builder found invalid, re-read the changed
    /// accounts, promote and evict.
    pub fn on_new_head<S: StateReader + BlockReader + ?Sized>(
        &self,
        store: &S,
        chain: &ChainConfig,
        invalid: &[B256],
        changed: Vec<Address>,
    ) -> Result<HeadOutcome, StorageError> {
        let env = PoolEnv::next_block(store, chain)?;
        *self.env.write().unwrap_or_else(|e| e.into_inner()) = env.clone();
        let mut pool = self.lock();
        pool.remove(invalid);
        Ok(pool.on_new_head(&env, changed, &store))
    }

    /// A pooled transaction.
    pub fn transaction(&self, hash: &B256) -> Option<Arc<ValidTransaction>> {
        self.lock().get(hash)
    }

    /// The senders of the pooled transactions among `hashes` (recovered at admission), in
    /// order; `None` for a transaction not in the pool. One lock for the whole list.
    pub fn senders_of(&self, hashes: &[B256]) -> Vec<Option<Address>> {
        let pool = self.lock();
        hashes
            .iter()
            .map(|h| pool.get(h).map(|t| t.sender))
            .collect()
    }

    /// The next nonce for `sender` counting its executable pooled transactions.
    pub fn pending_nonce(&self, sender: Address, state_nonce: u64) -> u64 {
        self.lock().pending_nonce(sender, state_nonce)
    }

    /// Pending and queued counts.
    pub fn status(&self) -> PoolStatus {
        self.lock().status()
    }

    /// Besu's statistics.
    pub fn statistics(&self) -> PoolStatistics {
        self.lock().statistics()
    }

    /// Every pooled transaction's hash, source and arrival time.
    pub fn transactions(&self) -> Vec<PoolTxInfo> {
        self.lock().transactions()
    }
}

/// The pool's best transactions as a block builder consumes them; senders the filter no
/// longer permits are left out and their transactions dropped from the pool (Besu removes
/// them too: not permitted is not a transient reason).
pub struct BlockSource {
    best: BestTransactions,
    invalid: Vec<(B256, String)>,
    filter: Option<Arc<dyn TransactionFilter>>,
}

impl std::fmt::Debug for BlockSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockSource")
            .field("invalid", &self.invalid)
            .finish_non_exhaustive()
    }
}

impl BlockSource {
    /// Transactions the builder found invalid (to drop from the pool), with the reason.
    pub fn invalid(&self) -> &[(B256, String)] {
        &self.invalid
    }
}

impl TransactionSource for BlockSource {
    fn next_transaction(&mut self) -> Option<(Transaction, Address)> {
        loop {
            let tx = self.best.next()?;
            match &self.filter {
                Some(filter) if !filter.permitted(&tx.tx, tx.sender, CheckPoint::BlockBuilding) => {
                    self.skip_sender(tx.sender, tx.hash, Some("sender not permitted".into()));
                }
                _ => return Some((tx.tx.clone(), tx.sender)),
            }
        }
    }

    fn skip_sender(&mut self, sender: Address, hash: B256, invalid: Option<String>) {
        self.best.mark_invalid(&sender);
        if let Some(reason) = invalid {
            self.invalid.push((hash, reason));
        }
    }
}
