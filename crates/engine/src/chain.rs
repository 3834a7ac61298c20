//! The chain as consensus and sync see it: building a proposal from the pool, validating a
//! proposed block by executing it, and importing a sealed block (IBFT header rules, commit
//! seals, execution, one atomic commit). Executed blocks wait for their seals in a small
//! cache keyed by on-chain hash, so no block is executed twice.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, U256};
use healthchain_chainspec::ChainConfig;
use healthchain_evm::TransactionSource;
use healthchain_evm::{
    BlockError, BlockTemplate, block_hash, build_block_from, execute_recovered,
    recover_senders_with,
};
use healthchain_ibft::{
    validation::{check_commit_seals, check_header},
    votes::{VoteProposer, VoteTally},
};
use healthchain_primitives::Transaction;
use healthchain_primitives::{
    Block, Header,
    ibft::{IBFT_MIX_HASH, IbftExtraData},
};
use healthchain_storage_api::{BlockBatch, ChainStore, VoteStore};
use healthchain_txpool::{CheckPoint, SharedPool};
use parking_lot::Mutex;

use crate::{EngineError, tally::ValidatorSets};

/// A store the engine can run on.
pub trait EngineStore: ChainStore + VoteStore {}
impl<T: ChainStore + VoteStore> EngineStore for T {}

/// Told about every block that becomes the head (RPC subscriptions, metrics).
pub trait ChainObserver: Send + Sync {
    /// `batch` was committed; `promoted` transactions became pending in the pool.
    fn on_block(&self, batch: &BlockBatch, promoted: &[B256]);
}

/// Most executed-but-unsealed blocks kept.
const EXECUTED_CACHE: usize = 16;
/// Room left in a gossiped proposal for the header, seals and message framing.
pub const PROPOSAL_OVERHEAD_BYTES: usize = 1024 * 1024;

/// A block that became the head.
#[derive(Debug, Clone)]
pub struct Imported {
    /// Its header (with seals).
    pub header: Header,
    /// Its on-chain hash.
    pub hash: B256,
    /// The validators of the next height.
    pub next_validators: Vec<Address>,
}

/// The chain the engine extends.
pub struct Chain {
    store: Arc<dyn EngineStore>,
    config: Arc<ChainConfig>,
    pool: Arc<SharedPool>,
    observer: Arc<dyn ChainObserver>,
    sets: Mutex<ValidatorSets>,
    executed: Mutex<(HashMap<B256, BlockBatch>, VecDeque<B256>)>,
    /// Pool transactions a build found invalid, dropped at the next head.
    invalid: Mutex<Vec<B256>>,
    /// Most transaction bytes a built block carries, so its proposal fits a gossip message.
    max_block_bytes: usize,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("chain_id", &self.config.chain_id)
            .finish_non_exhaustive()
    }
}

/// Seconds since the Unix epoch, and milliseconds.
pub(crate) fn now() -> (u64, u64) {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs(), d.as_millis() as u64)
}

impl Chain {
    /// The chain over `store` with `config`'s rules.
    pub fn new(
        store: Arc<dyn EngineStore>,
        config: Arc<ChainConfig>,
        pool: Arc<SharedPool>,
        observer: Arc<dyn ChainObserver>,
    ) -> Self {
        let epoch = config.ibft2.as_ref().map_or(30_000, |i| i.epoch_length);
        Self {
            store,
            config,
            pool,
            observer,
            sets: Mutex::new(ValidatorSets::new(epoch)),
            executed: Mutex::default(),
            invalid: Mutex::default(),
            max_block_bytes: usize::MAX,
        }
    }

    /// Caps the transaction bytes of built blocks so a proposal fits in `max_message_bytes`
    /// (the network's gossip limit), less [`PROPOSAL_OVERHEAD_BYTES`]. Without it a full
    /// pool on a chain with a huge gas limit would build proposals nobody can receive.
    pub fn with_max_message_bytes(mut self, max_message_bytes: usize) -> Self {
        self.max_block_bytes = max_message_bytes.saturating_sub(PROPOSAL_OVERHEAD_BYTES);
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn EngineStore> {
        &self.store
    }

    /// The chain's rules.
    pub fn config(&self) -> &Arc<ChainConfig> {
        &self.config
    }

    /// The head's number, hash and header.
    pub fn head(&self) -> Result<(u64, B256, Header), EngineError> {
        let (number, hash) = self.store.head()?.ok_or(EngineError::Missing(0))?;
        let header = self
            .store
            .header(hash)?
            .ok_or(EngineError::Missing(number))?;
        Ok((number, hash, header))
    }

    /// The validators of block `number + 1` (the tally after block `number`).
    pub fn validators_after(&self, number: u64) -> Result<VoteTally, EngineError> {
        self.sets.lock().after(self.store.as_ref(), number)
    }

    fn cache(&self, batch: BlockBatch) {
        let mut guard = self.executed.lock();
        let (map, order) = &mut *guard;
        if map.insert(batch.hash, batch.clone()).is_none() {
            order.push_back(batch.hash);
        }
        while order.len() > EXECUTED_CACHE {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
    }

    /// Builds the proposal for `round` on the head: pool transactions, `proposer` as the
    /// coinbase, extraData `[zero vanity, validators, vote, round, []]`.
    pub fn build(
        &self,
        proposer: Address,
        validators: &[Address],
        round: u32,
        votes: &Mutex<VoteProposer>,
    ) -> Result<Block, EngineError> {
        let (number, _, parent) = self.head()?;
        let tally = self.validators_after(number)?;
        let mut extra = IbftExtraData::genesis(validators.to_vec());
        extra.vote = votes.lock().next_vote(proposer, &tally);
        extra.round = round;
        let (now_s, now_ms) = now();
        // Besu: round(now_ms / 1000), never before the period after the parent (or, with
        // millisecond periods, the parent's second).
        let rounded = (now_ms + 500) / 1000;
        let earliest = match &self.config.ibft2 {
            Some(ibft) if ibft.block_period_ms.is_some() => parent.timestamp,
            Some(ibft) => parent.timestamp + ibft.block_period_seconds,
            None => parent.timestamp + 1,
        };
        let timestamp = rounded.max(now_s).max(earliest);
        let template = BlockTemplate {
            beneficiary: proposer,
            timestamp,
            gas_limit: parent.gas_limit,
            extra_data: extra.encode(),
            mix_hash: IBFT_MIX_HASH,
            difficulty: U256::from(1),
        };
        let mut source = ByteBudget {
            inner: self.pool.block_source(),
            remaining: self.max_block_bytes,
            last: 0,
        };
        let started = std::time::Instant::now();
        let batch = build_block_from(&self.config, self.store.as_ref(), template, &mut source)?;
        tracing::debug!(
            number = batch.header.number,
            txs = batch.body.transactions.len(),
            ms = started.elapsed().as_millis() as u64,
            "built block"
        );
        self.invalid
            .lock()
            .extend(source.inner.invalid().iter().map(|(hash, _)| *hash));
        let block = Block {
            header: batch.header.clone(),
            body: batch.body.clone(),
        };
        self.cache(batch);
        Ok(block)
    }

    /// Whether a proposed block is valid on the head: not from the future (more than 1 s
    /// ahead, Besu's `TimestampBoundedByFutureParameter`), and it executes to the roots in
    /// its header. Its batch is kept for the import.
    pub fn validate(&self, block: Block) -> Result<(), EngineError> {
        let hash = block_hash(&self.config, &block.header)?;
        if self.executed.lock().0.contains_key(&hash) {
            return Ok(());
        }
        let (now_s, _) = now();
        if block.header.timestamp > now_s + 1 {
            return Err(EngineError::Header(format!(
                "timestamp {} is more than 1 s in the future",
                block.header.timestamp
            )));
        }
        let started = std::time::Instant::now();
        let txs = block.body.transactions.len();
        let batch = self.execute(block)?;
        tracing::debug!(
            number = batch.header.number,
            txs,
            ms = started.elapsed().as_millis() as u64,
            "validated proposal"
        );
        self.cache(batch);
        Ok(())
    }

    /// Executes `block` on the head after checking every sender against the on-chain
    /// account rules at the head's state (the block's parent: blocks extend the head only).
    /// This is consensus-critical: a proposal with a sender the rules refuse is invalid.
    fn execute(&self, block: Block) -> Result<BlockBatch, EngineError> {
        // Senders the pool recovered at admission are not recovered again.
        let recovered =
            recover_senders_with(&self.config, block, |hashes| self.pool.senders_of(hashes))?;
        if let Some(filter) = self.pool.filter() {
            let txs = &recovered.block.body.transactions;
            for (index, (tx, sender)) in txs.iter().zip(&recovered.senders).enumerate() {
                if !filter.permitted(tx, *sender, CheckPoint::BlockImport) {
                    return Err(BlockError::InvalidTransaction {
                        index,
                        hash: *tx.tx_hash(),
                        reason: format!("sender {sender} is not permitted by the account rules"),
                    }
                    .into());
                }
            }
        }
        Ok(execute_recovered(
            &self.config,
            self.store.as_ref(),
            recovered,
        )?)
    }

    /// Imports a sealed block on the head: IBFT header rules and commit seals against the
    /// validators for its height, then execution (or the cached batch) and one atomic
    /// commit; then the pool, the observer and the vote log follow.
    pub fn import(&self, block: Block) -> Result<Imported, EngineError> {
        let (number, head_hash, _) = self.head()?;
        if block.header.number != number + 1 || block.header.parent_hash != head_hash {
            return Err(EngineError::NotNext {
                number: block.header.number,
                head: number,
            });
        }
        let parent_tally = self.validators_after(number)?;
        let validators = parent_tally.validators();
        check_header(&block.header, &validators)?;
        check_commit_seals(&block.header, &validators)?;
        let hash = block_hash(&self.config, &block.header)?;
        let cached = self.executed.lock().0.remove(&hash);
        let batch = match cached {
            // Same on-chain hash: identical but for the extraData round and seals.
            Some(mut batch) => {
                batch.header = block.header.clone();
                batch
            }
            None => self.execute(block)?,
        };
        let header = batch.header.clone();
        let changed: Vec<Address> = batch.state.accounts.iter().map(|(a, _)| *a).collect();
        let observed = batch.clone();
        // Checked before the commit: after it, the block is the head whatever else fails.
        let tally = self.sets.lock().tally_of(&header, &parent_tally)?;
        let started = std::time::Instant::now();
        self.store.commit_block(batch)?;
        let committed_ms = started.elapsed().as_millis() as u64;
        self.sets.lock().remember(header.number, tally.clone());
        // The block is final and stored: what follows only tidies up, and a failure there
        // must not hide the new head from consensus.
        let invalid = std::mem::take(&mut *self.invalid.lock());
        let promoted = match self.pool.on_new_head(
            self.store.as_ref(),
            &self.config,
            &invalid,
            changed,
        ) {
            Ok(outcome) => outcome.promoted,
            Err(err) => {
                tracing::error!(%err, number = header.number, "updating the pool after a block failed");
                Vec::new()
            }
        };
        tracing::debug!(
            number = header.number,
            commit_ms = committed_ms,
            total_ms = started.elapsed().as_millis() as u64,
            "imported block"
        );
        self.observer.on_block(&observed, &promoted);
        if let Err(err) = self.store.prune_votes(header.number + 1) {
            tracing::warn!(%err, "pruning old consensus votes failed");
        }
        Ok(Imported {
            header,
            hash,
            next_validators: tally.validators(),
        })
    }
}

/// The pool's transactions, stopping short of a byte budget (a transaction that does not
/// fit is left out as if it did not fit the gas; smaller ones after it may still go in).
struct ByteBudget {
    inner: healthchain_txpool::BlockSource,
    remaining: usize,
    /// The size of the last candidate handed out, given back if it is left out.
    last: usize,
}

impl TransactionSource for ByteBudget {
    fn next_transaction(&mut self) -> Option<(Transaction, Address)> {
        loop {
            let (tx, sender) = self.inner.next_transaction()?;
            let size = tx.encode_2718_len();
            if size <= self.remaining {
                self.remaining -= size;
                self.last = size;
                return Some((tx, sender));
            }
            self.inner.skip_sender(sender, *tx.tx_hash(), None);
        }
    }

    fn skip_sender(&mut self, sender: Address, hash: B256, invalid: Option<String>) {
        self.remaining += std::mem::take(&mut self.last);
        self.inner.skip_sender(sender, hash, invalid);
    }
}
