//! Transaction pool for HealthChain.
//!
//! # Design
//!
//! Validation is split in two:
//!
//! * [`validate_raw`] / [`validate_transaction`] are **stateless** and CPU-heavy (EIP-2718
//!   decoding, size, transaction type for the active fork, chain id, intrinsic gas via revm,
//!   gas limit against the block gas limit, fee sanity, minimum gas price, RPC fee cap and
//!   signature recovery). They run outside any lock and yield an [`ValidTransaction`] that is
//!   shared as an `Arc`.
//! * [`TxPool::add`] is the cheap **stateful** part: nonce, nonce distance, balance
//!   (upfront cost `gas_limit * max_fee + value`), EIP-3607 (sender with code), replacement,
//!   per-sender and global limits.
//!
//! # Pending and queued
//!
//! Per sender the pool keeps transactions by nonce. The run of consecutive nonces starting
//! at the sender's state nonce is **pending** (executable); everything after the first gap
//! is **queued**. Filling a gap promotes the queued transactions that became contiguous.
//! [`AddOutcome::promoted`] and [`HeadOutcome::promoted`] list every transaction that became
//! pending (including a newly added pending one): the caller broadcasts exactly those hashes
//! (propagation hook, `newPendingTransactions` subscription).
//!
//! # Ordering
//!
//! [`TxPool::best_transactions`] snapshots the pending runs. Within a sender transactions
//! come in nonce order; across senders the highest effective tip for the given base fee goes
//! first, ties broken by arrival order. A transaction whose max fee is below the base fee
//! ends its sender's run for that snapshot. [`BestTransactions::mark_invalid`] skips the
//! rest of a sender.
//!
//! # Limits and eviction
//!
//! * `max_nonce_distance`: a nonce at or beyond `state_nonce + max_nonce_distance` is
//!   rejected.
//! * `max_queued_per_sender`: gapped (queued) transactions per sender, checked at admission
//!   only: removing or dropping a pending transaction may demote more than that many.
//! * `max_transactions`: global. When an insertion exceeds it, the pool evicts the lowest
//!   priority transaction that can go without creating a nonce gap, i.e. always the
//!   highest-nonce transaction of some sender: queued tails first (farthest in the future
//!   first), then pending tails (lowest max fee first, newest first on ties). If the chosen
//!   victim is the newcomer itself, it is rejected with [`PoolError::PoolFull`]. Local
//!   transactions get no special protection (Besu does prioritise them).
//!
//! # Busy senders are not throttled
//!
//! Besu limits how much of the pool one sender may occupy. On a permissioned chain a single
//! integration account (a hospital gateway) legitimately submits thousands of consecutive
//! transactions, so here a contiguous pending run is only bounded by the global limit; only
//! *gapped* transactions are bounded per sender.
//!
//! # New heads
//!
//! [`TxPool::on_new_head`] re-reads the accounts the caller says changed, drops transactions
//! with nonces below the new state nonce (mined or replaced on chain), **drops** transactions
//! whose own upfront cost now exceeds the balance (their successors become queued), drops
//! transactions whose gas limit exceeds a lowered block gas limit, and promotes queued
//! transactions that became contiguous. The balance check is per transaction, not
//! cumulative over a sender's run (like Besu's pool admission).
//!
//! The crate is pure: no IO, no clock (callers pass `now_ms`), no randomness.

mod filter;
mod shared;

pub use filter::{CheckPoint, TransactionFilter};
pub use shared::{BlockSource, SharedPool};

use std::{
    cmp::{Ordering, Reverse},
    collections::{BTreeMap, BinaryHeap, HashMap, HashSet, VecDeque},
    sync::Arc,
};

use alloy_consensus::{Transaction as _, TxEnvelope, transaction::SignerRecoverable};
use alloy_eips::eip2718::{Decodable2718, Encodable2718};
use alloy_primitives::{Address, B256, KECCAK256_EMPTY, U256};
use healthchain_chainspec::{ChainConfig, Hardfork};
use healthchain_primitives::Transaction;
use healthchain_storage_api::{BlockReader, StateReader, StorageError};
use revm::primitives::hardfork::SpecId;

/// EIP-3860 maximum initcode size (twice the EIP-170 code size limit).
const MAX_INITCODE_SIZE: usize = 2 * 24_576;

/// Why a transaction was rejected. `Display` is Besu's JSON-RPC message and
/// [`PoolError::besu_code`] its error code (`JsonRpcErrorConverter`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// The raw bytes are not a valid EIP-2718 transaction.
    #[error("Invalid params")]
    Decode {
        /// Decoder message.
        reason: String,
    },
    /// Encoded size above `max_tx_bytes`.
    #[error("Transaction size exceeds the maximum allowed")]
    Oversized {
        /// Encoded size.
        size: usize,
        /// Limit.
        max: usize,
    },
    /// Transaction type not allowed (not yet active, or blob / set-code types).
    #[error("Invalid transaction type")]
    InvalidTransactionType {
        /// The EIP-2718 type byte.
        tx_type: u8,
    },
    /// Chain id differs from the chain's.
    #[error("Wrong chainId")]
    WrongChainId {
        /// The chain's id.
        expected: u64,
        /// The transaction's id.
        got: u64,
    },
    /// Legacy transaction without EIP-155 replay protection.
    #[error("ChainId is required")]
    ChainIdRequired,
    /// Gas limit below the intrinsic gas.
    #[error("Intrinsic gas exceeds gas limit")]
    IntrinsicGasExceedsGasLimit {
        /// Intrinsic gas (including the EIP-7623 floor where active).
        intrinsic: u64,
        /// The transaction's gas limit.
        gas_limit: u64,
    },
    /// EIP-3860 initcode over the limit.
    #[error("Initcode too large")]
    InitcodeTooLarge {
        /// Initcode size.
        size: usize,
        /// Limit.
        max: usize,
    },
    /// Gas limit above the block gas limit.
    #[error("Transaction gas limit exceeds block gas limit")]
    ExceedsBlockGasLimit {
        /// The transaction's gas limit.
        gas_limit: u64,
        /// The block gas limit.
        block_gas_limit: u64,
    },
    /// Priority fee above the max fee.
    #[error("Max priority fee per gas exceeds max fee per gas")]
    PriorityFeeExceedsMaxFee,
    /// Max fee (or gas price) below `min_gas_price`.
    #[error("Gas price below configured minimum gas price")]
    GasPriceTooLow {
        /// The transaction's max fee per gas.
        price: u128,
        /// Configured minimum.
        min: u128,
    },
    /// `gas_limit * max_fee` above the RPC fee cap.
    #[error("Transaction fee cap exceeded")]
    FeeCapExceeded {
        /// Maximum fee of the transaction.
        fee: U256,
        /// Configured cap.
        cap: U256,
    },
    /// Signature does not recover.
    #[error("Invalid signature")]
    InvalidSignature,
    /// Nonce below the account nonce.
    #[error("Nonce too low")]
    NonceTooLow {
        /// Account nonce.
        state_nonce: u64,
        /// Transaction nonce.
        tx_nonce: u64,
    },
    /// Nonce at or beyond `state_nonce + max_nonce_distance`.
    #[error("Transaction nonce is too distant from current sender nonce")]
    NonceTooDistant {
        /// Account nonce.
        state_nonce: u64,
        /// Transaction nonce.
        tx_nonce: u64,
    },
    /// Upfront cost above the balance.
    #[error("Upfront cost exceeds account balance")]
    InsufficientFunds {
        /// `gas_limit * max_fee + value`.
        cost: U256,
        /// Account balance.
        balance: U256,
    },
    /// EIP-3607 (the sender has code), or the sender is not permitted by the account
    /// allowlist or the on-chain account rules.
    #[error("Sender account not authorized to send transactions")]
    SenderNotAuthorized,
    /// Same hash already pooled.
    #[error("Known transaction")]
    Known,
    /// Same sender and nonce without a sufficient price bump.
    #[error("Replacement transaction underpriced")]
    ReplacementUnderpriced,
    /// The sender already has `max_queued_per_sender` gapped transactions.
    #[error("Transaction nonce is too distant from current sender nonce")]
    SenderQueueFull {
        /// The per-sender limit.
        max: usize,
    },
    /// The pool is full and the newcomer has the lowest priority.
    #[error("Transaction pool is full")]
    PoolFull,
    /// Reading the sender's account failed.
    #[error("Initial sync is still in progress")]
    StateUnavailable {
        /// Storage error.
        reason: String,
    },
}

impl PoolError {
    /// Whether the transaction itself is bad (undecodable, unsigned, for another chain),
    /// not merely unfit for the pool right now: gossip of it scores the sender down.
    pub fn is_malformed(&self) -> bool {
        matches!(
            self,
            Self::Decode { .. }
                | Self::Oversized { .. }
                | Self::InvalidTransactionType { .. }
                | Self::WrongChainId { .. }
                | Self::ChainIdRequired
                | Self::InvalidSignature
        )
    }

    /// Besu's JSON-RPC error code for this reason.
    pub fn besu_code(&self) -> i32 {
        match self {
            Self::Decode { .. } | Self::InvalidTransactionType { .. } => -32602,
            Self::NonceTooLow { .. } => -32001,
            Self::InvalidSignature => -32002,
            Self::IntrinsicGasExceedsGasLimit { .. } => -32003,
            Self::InsufficientFunds { .. } => -32004,
            Self::ExceedsBlockGasLimit { .. } => -32005,
            Self::SenderNotAuthorized => -32007,
            Self::StateUnavailable { .. } => -32008,
            Self::GasPriceTooLow { .. } => -32009,
            Self::InitcodeTooLarge { .. } => -32603,
            Self::Oversized { .. }
            | Self::WrongChainId { .. }
            | Self::ChainIdRequired
            | Self::PriorityFeeExceedsMaxFee
            | Self::FeeCapExceeded { .. }
            | Self::NonceTooDistant { .. }
            | Self::Known
            | Self::ReplacementUnderpriced
            | Self::SenderQueueFull { .. }
            | Self::PoolFull => -32000,
        }
    }
}

/// Pool limits and admission policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// Global transaction limit (pending + queued). Default 16,384.
    pub max_transactions: usize,
    /// Gapped (queued) transactions per sender. Default 64.
    pub max_queued_per_sender: usize,
    /// A nonce must be below `state_nonce + max_nonce_distance`. Default 1,024.
    pub max_nonce_distance: u64,
    /// Maximum EIP-2718 encoded size. Default 128 KiB.
    pub max_tx_bytes: usize,
    /// Required replacement bump of both max fee and priority fee, in percent. Default 10;
    /// callers set 0 on zero-base-fee chains (as Besu does).
    pub price_bump_percent: u64,
    /// Minimum max fee per gas (gas price for legacy). Besu default 1,000 wei.
    pub min_gas_price: u128,
    /// Maximum `gas_limit * max_fee` for RPC submissions ([`validate_raw`]). Besu: 1 ether.
    pub tx_fee_cap_wei: Option<U256>,
    /// Accept legacy transactions without EIP-155 chain id.
    pub allow_unprotected: bool,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            max_transactions: 16_384,
            max_queued_per_sender: 64,
            max_nonce_distance: 1_024,
            max_tx_bytes: 128 * 1024,
            price_bump_percent: 10,
            min_gas_price: 1_000,
            tx_fee_cap_wei: Some(U256::from(10u64).pow(U256::from(18u64))),
            allow_unprotected: false,
        }
    }
}

/// The block the pool validates against (the one after the head).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolEnv {
    /// Chain id.
    pub chain_id: u64,
    /// Fork active in the next block.
    pub fork: Hardfork,
    /// Gas limit of the next block.
    pub block_gas_limit: u64,
    /// Base fee of the next block (`None` before London).
    pub base_fee: Option<u64>,
    /// Next block number.
    pub number: u64,
    /// Next block timestamp (head timestamp plus the block period).
    pub timestamp: u64,
}

impl PoolEnv {
    /// The environment of the block after `store`'s head. Without a head: block 0 with a
    /// 30M gas limit.
    pub fn next_block<S: StateReader + BlockReader + ?Sized>(
        store: &S,
        chain: &ChainConfig,
    ) -> Result<Self, StorageError> {
        let period = chain
            .ibft2
            .as_ref()
            .map_or(1, |ibft| ibft.block_period_seconds.max(1));
        let parent = match store.head()? {
            Some((_, hash)) => store.header(hash)?,
            None => None,
        };
        let Some(parent) = parent else {
            let fork = chain.forks.hardfork_at(0, 0);
            return Ok(Self {
                chain_id: chain.chain_id,
                fork,
                block_gas_limit: 30_000_000,
                base_fee: (fork >= Hardfork::London).then_some(if chain.zero_base_fee {
                    0
                } else {
                    1_000_000_000
                }),
                number: 0,
                timestamp: 0,
            });
        };
        let number = parent.number + 1;
        let timestamp = parent.timestamp.saturating_add(period);
        let rules = healthchain_evm::BlockRules::new(chain, number, timestamp);
        Ok(Self {
            chain_id: chain.chain_id,
            fork: chain.forks.hardfork_at(number, timestamp),
            block_gas_limit: parent.gas_limit,
            base_fee: rules.expected_base_fee(&parent, number),
            number,
            timestamp,
        })
    }
}

/// A transaction that passed the stateless checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidTransaction {
    /// The transaction.
    pub tx: Transaction,
    /// Its hash.
    pub hash: B256,
    /// Recovered sender.
    pub sender: Address,
    /// EIP-2718 encoded length.
    pub encoded_len: usize,
    /// Upfront cost `gas_limit * max_fee + value`.
    pub cost: U256,
    /// Intrinsic gas for the fork it was validated under.
    pub intrinsic_gas: u64,
}

impl ValidTransaction {
    /// Nonce.
    pub fn nonce(&self) -> u64 {
        self.tx.nonce()
    }
    /// Max fee per gas (gas price for legacy and EIP-2930).
    pub fn max_fee(&self) -> u128 {
        self.tx.max_fee_per_gas()
    }
    /// Priority fee (gas price for legacy and EIP-2930).
    pub fn priority_fee(&self) -> u128 {
        self.tx
            .max_priority_fee_per_gas()
            .unwrap_or_else(|| self.tx.max_fee_per_gas())
    }
    /// Gas limit.
    pub fn gas_limit(&self) -> u64 {
        self.tx.gas_limit()
    }
    /// Tip per gas for `base_fee`; `None` if the max fee is below it.
    pub fn effective_tip(&self, base_fee: Option<u64>) -> Option<u128> {
        match base_fee {
            Some(fee) => self.tx.effective_tip_per_gas(fee),
            None => Some(self.priority_fee()),
        }
    }
}

/// Decodes and validates raw EIP-2718 bytes (RPC path: also applies the fee cap).
pub fn validate_raw(
    raw: &[u8],
    env: &PoolEnv,
    cfg: &PoolConfig,
) -> Result<ValidTransaction, PoolError> {
    if raw.len() > cfg.max_tx_bytes {
        return Err(PoolError::Oversized {
            size: raw.len(),
            max: cfg.max_tx_bytes,
        });
    }
    let mut buf = raw;
    let tx = TxEnvelope::decode_2718(&mut buf).map_err(|e| PoolError::Decode {
        reason: e.to_string(),
    })?;
    if !buf.is_empty() {
        return Err(PoolError::Decode {
            reason: format!("{} trailing bytes", buf.len()),
        });
    }
    let valid = validate_transaction(tx, env, cfg)?;
    if let Some(cap) = cfg.tx_fee_cap_wei.filter(|cap| !cap.is_zero()) {
        let fee = U256::from(valid.gas_limit()) * U256::from(valid.max_fee());
        if fee > cap {
            return Err(PoolError::FeeCapExceeded { fee, cap });
        }
    }
    Ok(valid)
}

/// Validates a decoded transaction (peer path: no RPC fee cap).
pub fn validate_transaction(
    tx: Transaction,
    env: &PoolEnv,
    cfg: &PoolConfig,
) -> Result<ValidTransaction, PoolError> {
    let encoded_len = tx.encode_2718_len();
    if encoded_len > cfg.max_tx_bytes {
        return Err(PoolError::Oversized {
            size: encoded_len,
            max: cfg.max_tx_bytes,
        });
    }
    let allowed = match &tx {
        TxEnvelope::Legacy(_) => true,
        TxEnvelope::Eip2930(_) => env.fork >= Hardfork::Berlin,
        TxEnvelope::Eip1559(_) => env.fork >= Hardfork::London,
        TxEnvelope::Eip4844(_) | TxEnvelope::Eip7702(_) => false,
    };
    if !allowed {
        return Err(PoolError::InvalidTransactionType {
            tx_type: tx.tx_type() as u8,
        });
    }
    match tx.chain_id() {
        None if !cfg.allow_unprotected => return Err(PoolError::ChainIdRequired),
        Some(got) if got != env.chain_id => {
            return Err(PoolError::WrongChainId {
                expected: env.chain_id,
                got,
            });
        }
        _ => {}
    }
    if let Some(prio) = tx.max_priority_fee_per_gas()
        && prio > tx.max_fee_per_gas()
    {
        return Err(PoolError::PriorityFeeExceedsMaxFee);
    }
    let gas_limit = tx.gas_limit();
    if gas_limit > env.block_gas_limit {
        return Err(PoolError::ExceedsBlockGasLimit {
            gas_limit,
            block_gas_limit: env.block_gas_limit,
        });
    }
    let spec = healthchain_evm::spec_id(env.fork);
    let is_create = tx.kind().is_create();
    if is_create && spec.is_enabled_in(SpecId::SHANGHAI) && tx.input().len() > MAX_INITCODE_SIZE {
        return Err(PoolError::InitcodeTooLarge {
            size: tx.input().len(),
            max: MAX_INITCODE_SIZE,
        });
    }
    let (accounts, slots) = tx.access_list().map_or((0, 0), |list| {
        (
            list.0.len() as u64,
            list.0
                .iter()
                .map(|item| item.storage_keys.len() as u64)
                .sum(),
        )
    });
    let gas = revm::context_interface::cfg::gas::calculate_initial_tx_gas(
        spec,
        tx.input(),
        is_create,
        accounts,
        slots,
        0,
        None,
    );
    let mut intrinsic = gas.initial_total_gas();
    if spec.is_enabled_in(SpecId::PRAGUE) {
        intrinsic = intrinsic.max(gas.floor_gas);
    }
    if gas_limit < intrinsic {
        return Err(PoolError::IntrinsicGasExceedsGasLimit {
            intrinsic,
            gas_limit,
        });
    }
    let max_fee = tx.max_fee_per_gas();
    if max_fee < cfg.min_gas_price {
        return Err(PoolError::GasPriceTooLow {
            price: max_fee,
            min: cfg.min_gas_price,
        });
    }
    let sender = tx
        .recover_signer()
        .map_err(|_| PoolError::InvalidSignature)?;
    // Saturating: a value near 2^256 must not wrap the cost below the sender's balance.
    let cost = U256::from(gas_limit)
        .saturating_mul(U256::from(max_fee))
        .saturating_add(tx.value());
    Ok(ValidTransaction {
        hash: *tx.tx_hash(),
        tx,
        sender,
        encoded_len,
        cost,
        intrinsic_gas: intrinsic,
    })
}

/// Where a transaction came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// Submitted over this node's RPC.
    Local,
    /// Received from a peer.
    Remote,
}

/// Whether a transaction is executable now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxStatus {
    /// Part of the sender's contiguous run from the state nonce.
    Pending,
    /// Behind a nonce gap.
    Queued,
}

/// Result of [`TxPool::add`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddOutcome {
    /// Hash of the added transaction.
    pub hash: B256,
    /// Its status after the add.
    pub status: TxStatus,
    /// The transaction it replaced (same sender and nonce).
    pub replaced: Option<B256>,
    /// Transactions that became pending, including this one if pending: broadcast these.
    pub promoted: Vec<B256>,
    /// Transactions evicted to respect the global limit.
    pub evicted: Vec<B256>,
}

/// Result of [`TxPool::on_new_head`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeadOutcome {
    /// Transactions that became pending: broadcast these.
    pub promoted: Vec<B256>,
    /// Transactions removed (mined, stale, unaffordable, over the gas limit).
    pub removed: Vec<B256>,
}

/// Pending and queued counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStatus {
    /// Executable transactions.
    pub pending: usize,
    /// Gapped transactions.
    pub queued: usize,
}

/// Besu's `txpool_besuStatistics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStatistics {
    /// Global limit.
    pub max_size: usize,
    /// Local transactions.
    pub local_count: usize,
    /// Remote transactions.
    pub remote_count: usize,
}

/// One entry of Besu's `txpool_besuTransactions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolTxInfo {
    /// Hash.
    pub hash: B256,
    /// Submitted locally.
    pub is_local: bool,
    /// Arrival time (caller's clock).
    pub added_at_ms: u64,
}

/// Transactions by sender and nonce.
pub type SenderMap = BTreeMap<Address, BTreeMap<u64, Arc<ValidTransaction>>>;

/// Pool content (geth's `txpool_content` shape).
#[derive(Debug, Clone, Default)]
pub struct PoolContent {
    /// Executable transactions.
    pub pending: SenderMap,
    /// Gapped transactions.
    pub queued: SenderMap,
}

#[derive(Debug, Clone)]
struct Entry {
    tx: Arc<ValidTransaction>,
    origin: Origin,
    added_at_ms: u64,
    seq: u64,
}

#[derive(Debug, Clone, Default)]
struct SenderTxs {
    state_nonce: u64,
    balance: U256,
    txs: BTreeMap<u64, B256>,
    /// First nonce not in the contiguous run from `state_nonce`.
    pending_end: u64,
}

impl SenderTxs {
    fn recompute(&mut self) {
        let mut n = self.state_nonce;
        while self.txs.contains_key(&n) {
            n += 1;
        }
        self.pending_end = n;
    }
    fn is_pending(&self, nonce: u64) -> bool {
        nonce >= self.state_nonce && nonce < self.pending_end
    }
    fn queued_count(&self) -> usize {
        self.txs.range(self.pending_end..).count()
    }
}

/// The transaction pool (not thread-safe; see [`SharedPool`]).
#[derive(Debug, Clone)]
pub struct TxPool {
    config: PoolConfig,
    by_hash: HashMap<B256, Entry>,
    senders: HashMap<Address, SenderTxs>,
    next_seq: u64,
    block_gas_limit: Option<u64>,
}

/// Eviction order key: larger is evicted first.
type EvictionKey = (bool, u64, Reverse<u128>, u64);

fn bumped(price: u128, percent: u64) -> u128 {
    let scaled = price.saturating_mul(100 + u128::from(percent));
    scaled / 100 + u128::from(!scaled.is_multiple_of(100))
}

impl TxPool {
    /// An empty pool.
    pub fn new(config: PoolConfig) -> Self {
        Self {
            config,
            by_hash: HashMap::new(),
            senders: HashMap::new(),
            next_seq: 0,
            block_gas_limit: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// Number of pooled transactions.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// Adds a validated transaction after the stateful checks against `state`.
    pub fn add<R: StateReader>(
        &mut self,
        tx: Arc<ValidTransaction>,
        origin: Origin,
        state: &R,
        now_ms: u64,
    ) -> Result<AddOutcome, PoolError> {
        if self.by_hash.contains_key(&tx.hash) {
            return Err(PoolError::Known);
        }
        let account = state
            .account(tx.sender)
            .map_err(|e| PoolError::StateUnavailable {
                reason: e.to_string(),
            })?
            .unwrap_or_default();
        if account.code_hash != KECCAK256_EMPTY && account.code_hash != B256::ZERO {
            return Err(PoolError::SenderNotAuthorized);
        }
        let nonce = tx.nonce();
        if nonce < account.nonce {
            return Err(PoolError::NonceTooLow {
                state_nonce: account.nonce,
                tx_nonce: nonce,
            });
        }
        if nonce - account.nonce >= self.config.max_nonce_distance {
            return Err(PoolError::NonceTooDistant {
                state_nonce: account.nonce,
                tx_nonce: nonce,
            });
        }
        if tx.cost > account.balance {
            return Err(PoolError::InsufficientFunds {
                cost: tx.cost,
                balance: account.balance,
            });
        }
        // Refresh the sender's view of state (it may have changed since the last head).
        let mut removed_stale = Vec::new();
        {
            let sender = self.senders.entry(tx.sender).or_default();
            sender.state_nonce = account.nonce;
            sender.balance = account.balance;
            let stale: Vec<u64> = sender.txs.range(..account.nonce).map(|(n, _)| *n).collect();
            for n in stale {
                if let Some(h) = sender.txs.remove(&n) {
                    removed_stale.push(h);
                }
            }
            sender.recompute();
        }
        for h in &removed_stale {
            self.by_hash.remove(h);
        }
        let before_end = self
            .senders
            .get(&tx.sender)
            .map_or(account.nonce, |s| s.pending_end);

        let existing = self
            .senders
            .get(&tx.sender)
            .and_then(|s| s.txs.get(&nonce).copied());
        let mut replaced = None;
        if let Some(old_hash) = existing {
            if let Some(old) = self.by_hash.get(&old_hash) {
                let bump = self.config.price_bump_percent;
                if tx.max_fee() < bumped(old.tx.max_fee(), bump)
                    || tx.priority_fee() < bumped(old.tx.priority_fee(), bump)
                {
                    return Err(PoolError::ReplacementUnderpriced);
                }
            }
            replaced = Some(old_hash);
        } else if let Some(sender) = self.senders.get(&tx.sender)
            && nonce > sender.pending_end
            && sender.queued_count() >= self.config.max_queued_per_sender
        {
            self.prune_sender(&tx.sender);
            return Err(PoolError::SenderQueueFull {
                max: self.config.max_queued_per_sender,
            });
        }

        if let Some(old) = replaced {
            self.by_hash.remove(&old);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let hash = tx.hash;
        let sender_addr = tx.sender;
        self.by_hash.insert(
            hash,
            Entry {
                tx,
                origin,
                added_at_ms: now_ms,
                seq,
            },
        );
        if let Some(sender) = self.senders.get_mut(&sender_addr) {
            sender.txs.insert(nonce, hash);
            sender.recompute();
        }

        let mut evicted = Vec::new();
        while self.by_hash.len() > self.config.max_transactions {
            let Some((victim_sender, victim_nonce, victim)) = self.eviction_candidate() else {
                break;
            };
            if victim == hash {
                self.remove_one(victim_sender, victim_nonce);
                return Err(PoolError::PoolFull);
            }
            self.remove_one(victim_sender, victim_nonce);
            evicted.push(victim);
        }

        let sender = self.senders.get(&sender_addr);
        let status = if sender.is_some_and(|s| s.is_pending(nonce)) {
            TxStatus::Pending
        } else {
            TxStatus::Queued
        };
        // Newly pending: the run's extension, or the newcomer replacing a pending one.
        let mut promoted: Vec<B256> = sender
            .map(|s| {
                s.txs
                    .range(before_end..s.pending_end.max(before_end))
                    .map(|(_, h)| *h)
                    .collect()
            })
            .unwrap_or_default();
        if status == TxStatus::Pending && nonce < before_end {
            promoted.insert(0, hash);
        }
        Ok(AddOutcome {
            hash,
            status,
            replaced,
            promoted,
            evicted,
        })
    }

    /// The lowest-priority transaction whose removal leaves no nonce gap: a sender's tail.
    fn eviction_candidate(&self) -> Option<(Address, u64, B256)> {
        // Key: larger = evict first. Queued beats pending; queued by distance; pending by
        // lowest max fee, then newest.
        let mut best: Option<(EvictionKey, Address, u64, B256)> = None;
        for (addr, sender) in &self.senders {
            let Some((&nonce, &hash)) = sender.txs.last_key_value() else {
                continue;
            };
            let Some(entry) = self.by_hash.get(&hash) else {
                continue;
            };
            let queued = !sender.is_pending(nonce);
            let key = if queued {
                (
                    true,
                    nonce - sender.state_nonce.min(nonce),
                    Reverse(0),
                    entry.seq,
                )
            } else {
                (false, 0, Reverse(entry.tx.max_fee()), entry.seq)
            };
            if best
                .as_ref()
                .is_none_or(|(k, ..)| key.cmp(k) == Ordering::Greater)
            {
                best = Some((key, *addr, nonce, hash));
            }
        }
        best.map(|(_, a, n, h)| (a, n, h))
    }

    fn prune_sender(&mut self, sender: &Address) {
        if self.senders.get(sender).is_some_and(|s| s.txs.is_empty()) {
            self.senders.remove(sender);
        }
    }

    fn remove_one(&mut self, sender: Address, nonce: u64) -> Option<B256> {
        let s = self.senders.get_mut(&sender)?;
        let hash = s.txs.remove(&nonce)?;
        s.recompute();
        if s.txs.is_empty() {
            self.senders.remove(&sender);
        }
        self.by_hash.remove(&hash);
        Some(hash)
    }

    /// Removes transactions by hash (for example those the block builder found invalid).
    /// Later nonces of the same sender become queued. Returns the hashes removed.
    pub fn remove(&mut self, hashes: &[B256]) -> Vec<B256> {
        let mut removed = Vec::new();
        for hash in hashes {
            let Some(entry) = self.by_hash.get(hash) else {
                continue;
            };
            let (sender, nonce) = (entry.tx.sender, entry.tx.nonce());
            if let Some(h) = self.remove_one(sender, nonce) {
                removed.push(h);
            }
        }
        removed
    }

    /// After a block: re-reads `changed` accounts that have pooled transactions, drops
    /// stale, unaffordable and over-the-gas-limit transactions and promotes the rest.
    /// An account that cannot be read is left as it was.
    pub fn on_new_head<R: StateReader>(
        &mut self,
        env: &PoolEnv,
        changed: impl IntoIterator<Item = Address>,
        state: &R,
    ) -> HeadOutcome {
        let mut outcome = HeadOutcome::default();
        let mut touched: Vec<Address> = changed
            .into_iter()
            .filter(|a| self.senders.contains_key(a))
            .collect();
        let gas_lowered = self
            .block_gas_limit
            .is_none_or(|old| env.block_gas_limit < old);
        self.block_gas_limit = Some(env.block_gas_limit);
        if gas_lowered {
            touched.extend(self.senders.keys().copied());
        }
        touched.sort_unstable();
        touched.dedup();
        for addr in touched {
            let Some(sender) = self.senders.get_mut(&addr) else {
                continue;
            };
            let before_end = sender.pending_end;
            if let Ok(account) = state.account(addr) {
                let account = account.unwrap_or_default();
                sender.state_nonce = account.nonce;
                sender.balance = account.balance;
            }
            let mut drop = Vec::new();
            for (&nonce, hash) in &sender.txs {
                let Some(entry) = self.by_hash.get(hash) else {
                    drop.push(nonce);
                    continue;
                };
                if nonce < sender.state_nonce
                    || entry.tx.cost > sender.balance
                    || entry.tx.gas_limit() > env.block_gas_limit
                {
                    drop.push(nonce);
                }
            }
            for nonce in drop {
                if let Some(h) = sender.txs.remove(&nonce) {
                    self.by_hash.remove(&h);
                    outcome.removed.push(h);
                }
            }
            sender.recompute();
            let from = before_end.max(sender.state_nonce);
            outcome.promoted.extend(
                sender
                    .txs
                    .range(from..sender.pending_end.max(from))
                    .map(|(_, h)| *h),
            );
            if sender.txs.is_empty() {
                self.senders.remove(&addr);
            }
        }
        outcome
    }

    /// A pooled transaction.
    pub fn get(&self, hash: &B256) -> Option<Arc<ValidTransaction>> {
        self.by_hash.get(hash).map(|e| e.tx.clone())
    }

    /// Whether `hash` is pooled.
    pub fn contains(&self, hash: &B256) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// The nonce after the pooled run of `sender` starting at `state_nonce`.
    pub fn pending_nonce(&self, sender: Address, state_nonce: u64) -> u64 {
        let mut n = state_nonce;
        if let Some(s) = self.senders.get(&sender) {
            while s.txs.contains_key(&n) {
                n += 1;
            }
        }
        n
    }

    /// Pending and queued counts.
    pub fn status(&self) -> PoolStatus {
        let mut status = PoolStatus::default();
        for s in self.senders.values() {
            let queued = s.queued_count();
            status.queued += queued;
            status.pending += s.txs.len() - queued;
        }
        status
    }

    /// Besu's statistics.
    pub fn statistics(&self) -> PoolStatistics {
        let local_count = self
            .by_hash
            .values()
            .filter(|e| e.origin == Origin::Local)
            .count();
        PoolStatistics {
            max_size: self.config.max_transactions,
            local_count,
            remote_count: self.by_hash.len() - local_count,
        }
    }

    /// Every pooled transaction in arrival order.
    pub fn transactions(&self) -> Vec<PoolTxInfo> {
        let mut entries: Vec<&Entry> = self.by_hash.values().collect();
        entries.sort_unstable_by_key(|e| e.seq);
        entries
            .into_iter()
            .map(|e| PoolTxInfo {
                hash: e.tx.hash,
                is_local: e.origin == Origin::Local,
                added_at_ms: e.added_at_ms,
            })
            .collect()
    }

    /// Pending and queued transactions by sender and nonce.
    pub fn content(&self) -> PoolContent {
        let mut content = PoolContent::default();
        for (addr, s) in &self.senders {
            for (&nonce, hash) in &s.txs {
                let Some(e) = self.by_hash.get(hash) else {
                    continue;
                };
                let map = if s.is_pending(nonce) {
                    &mut content.pending
                } else {
                    &mut content.queued
                };
                map.entry(*addr).or_default().insert(nonce, e.tx.clone());
            }
        }
        content
    }

    /// A snapshot iterator over pending transactions in block order for `base_fee`.
    pub fn best_transactions(&self, base_fee: Option<u64>) -> BestTransactions {
        let mut best = BestTransactions {
            runs: Vec::new(),
            index: HashMap::new(),
            heap: BinaryHeap::new(),
            invalid: HashSet::new(),
            base_fee,
        };
        for (addr, s) in &self.senders {
            let run: VecDeque<(Arc<ValidTransaction>, u64)> = s
                .txs
                .range(s.state_nonce..s.pending_end)
                .filter_map(|(_, h)| self.by_hash.get(h).map(|e| (e.tx.clone(), e.seq)))
                .collect();
            if run.is_empty() {
                continue;
            }
            let idx = best.runs.len();
            best.index.insert(*addr, idx);
            best.runs.push(run);
            best.push_head(idx);
        }
        best
    }
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Candidate {
    tip: u128,
    seq: Reverse<u64>,
    idx: usize,
}

/// Pending transactions in block order: per sender by nonce, across senders by effective tip
/// (highest first), ties by arrival.
#[derive(Debug)]
pub struct BestTransactions {
    runs: Vec<VecDeque<(Arc<ValidTransaction>, u64)>>,
    index: HashMap<Address, usize>,
    heap: BinaryHeap<Candidate>,
    invalid: HashSet<usize>,
    base_fee: Option<u64>,
}

impl BestTransactions {
    fn push_head(&mut self, idx: usize) {
        let Some((tx, seq)) = self.runs.get(idx).and_then(|r| r.front()) else {
            return;
        };
        // A transaction below the base fee ends its sender's run.
        if let Some(tip) = tx.effective_tip(self.base_fee) {
            self.heap.push(Candidate {
                tip,
                seq: Reverse(*seq),
                idx,
            });
        }
    }

    /// Skips every remaining transaction of `sender`.
    pub fn mark_invalid(&mut self, sender: &Address) {
        if let Some(idx) = self.index.get(sender) {
            self.invalid.insert(*idx);
        }
    }
}

impl Iterator for BestTransactions {
    type Item = Arc<ValidTransaction>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let candidate = self.heap.pop()?;
            if self.invalid.contains(&candidate.idx) {
                continue;
            }
            let (tx, _) = self.runs.get_mut(candidate.idx)?.pop_front()?;
            self.push_head(candidate.idx);
            return Some(tx);
        }
    }
}
