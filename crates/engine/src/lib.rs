//! The IBFT 2.0 engine: the tokio side of `healthchain-ibft`'s pure state machine.
//!
//! - [`consensus`]: one task feeds the machine (gossip, timers, answers) and carries out its
//!   outputs in order — votes appended to the store and synced **before** they are sent,
//!   proposals built from the pool and validated by executing them once, committed blocks
//!   imported atomically with their seals.
//! - [`chain`]: building, validating and importing blocks ([`chain::Chain`]), shared with
//!   sync; [`tally`]: validator sets by block from the header votes.
//! - [`sync`]: catching up from the peer furthest ahead (headers, then bodies; seals and
//!   roots checked before import), and answering peers' requests.
//!
//! Start it with [`spawn`]; talk to it through the [`EngineHandle`].

pub mod chain;
pub mod consensus;
pub mod sync;
pub mod tally;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use alloy_primitives::B256;
use healthchain_evm::BlockError;
use healthchain_ibft::{Ibft, IbftConfig, NodeKey, validation::HeaderError, votes::VoteProposer};
use healthchain_network::{MessageId, NetworkHandle, PeerId};
use healthchain_storage_api::StorageError;
use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};

pub use chain::{Chain, ChainObserver, EngineStore, Imported};
pub use consensus::EngineInput;

/// Why the engine refused a block or could not go on.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The block does not execute or breaks an execution rule.
    #[error(transparent)]
    Block(#[from] BlockError),
    /// The block breaks an IBFT header rule or its seals do not prove it.
    #[error(transparent)]
    Seals(#[from] HeaderError),
    /// A header the engine cannot use.
    #[error("invalid header: {0}")]
    Header(String),
    /// A block the store should have is missing.
    #[error("block {0} is missing from the store")]
    Missing(u64),
    /// The block is not the child of the head.
    #[error("block {number} does not extend the head {head}")]
    NotNext {
        /// The block's number.
        number: u64,
        /// The head's.
        head: u64,
    },
    /// A blocking worker failed.
    #[error("engine worker failed")]
    Worker,
}

/// Consensus and sync figures, for the Prometheus endpoint and `eth_syncing`.
#[derive(Debug, Default)]
pub struct EngineMetrics {
    /// The height being agreed on.
    pub height: AtomicU64,
    /// Its current round.
    pub round: AtomicU64,
    /// Rounds started.
    pub rounds: AtomicU64,
    /// Rounds started by anything but a new height (timeouts, certificates, catch-up).
    pub round_changes: AtomicU64,
    /// Blocks this node committed through consensus.
    pub blocks_committed: AtomicU64,
    /// Blocks imported by sync.
    pub blocks_synced: AtomicU64,
    /// Consensus messages handed to the state machine.
    pub messages_accepted: AtomicU64,
    /// Consensus messages refused (undecodable, outsiders, rule violations).
    pub messages_rejected: AtomicU64,
    /// Highest block number any peer is known to have.
    pub highest_seen: AtomicU64,
    /// The head when the current sync began (0: not syncing).
    pub sync_start: AtomicU64,
    /// Set once a sync round found at least one peer and none ahead: the node has been in
    /// sync (node permissioning lets only bootnodes and static peers in before that).
    pub synced_once: std::sync::atomic::AtomicBool,
    /// Proposal-to-commit times: count, sum and the last one, in milliseconds.
    pub commit_count: AtomicU64,
    /// Sum of proposal-to-commit times, ms.
    pub commit_ms_sum: AtomicU64,
    /// The last proposal-to-commit time, ms.
    pub commit_ms_last: AtomicU64,
    /// Proposal-to-commit histogram: counts at or below 50, 100, 250, 500, 1000, 2500,
    /// 5000 ms and above.
    pub commit_ms_buckets: [AtomicU64; 8],
}

/// Upper bounds of [`EngineMetrics::commit_ms_buckets`], ms (the last is +Inf).
pub const COMMIT_BUCKETS_MS: [u64; 7] = [50, 100, 250, 500, 1000, 2500, 5000];

impl EngineMetrics {
    pub(crate) fn record_commit(&self, elapsed: Duration) {
        let ms = elapsed.as_millis() as u64;
        self.commit_count.fetch_add(1, Ordering::Relaxed);
        self.commit_ms_sum.fetch_add(ms, Ordering::Relaxed);
        self.commit_ms_last.store(ms, Ordering::Relaxed);
        let bucket = COMMIT_BUCKETS_MS
            .iter()
            .position(|b| ms <= *b)
            .unwrap_or(COMMIT_BUCKETS_MS.len());
        self.commit_ms_buckets[bucket].fetch_add(1, Ordering::Relaxed);
    }

    /// How far the head is behind the highest block seen, given the head.
    pub fn sync_distance(&self, head: u64) -> u64 {
        self.highest_seen
            .load(Ordering::Relaxed)
            .saturating_sub(head)
    }

    /// The figures in Prometheus' text format, names prefixed `healthchain_`.
    pub fn prometheus(&self, head: u64, peers: usize) -> String {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            out.push_str(&format!(
                "# HELP healthchain_{name} {help}\n# TYPE healthchain_{name} {kind}\nhealthchain_{name} {value}\n"
            ));
        };
        metric("chain_head", "gauge", "Number of the head block.", head);
        metric(
            "consensus_height",
            "gauge",
            "Height being agreed on.",
            get(&self.height),
        );
        metric(
            "consensus_round",
            "gauge",
            "Current round of that height.",
            get(&self.round),
        );
        metric(
            "consensus_rounds_total",
            "counter",
            "Rounds started.",
            get(&self.rounds),
        );
        metric(
            "consensus_round_changes_total",
            "counter",
            "Rounds started by a timeout, certificate or catch-up.",
            get(&self.round_changes),
        );
        metric(
            "blocks_committed_total",
            "counter",
            "Blocks committed by consensus.",
            get(&self.blocks_committed),
        );
        metric(
            "blocks_synced_total",
            "counter",
            "Blocks imported by sync.",
            get(&self.blocks_synced),
        );
        metric(
            "consensus_messages_accepted_total",
            "counter",
            "Consensus messages handed to the state machine.",
            get(&self.messages_accepted),
        );
        metric(
            "consensus_messages_rejected_total",
            "counter",
            "Consensus messages refused.",
            get(&self.messages_rejected),
        );
        metric("p2p_peers", "gauge", "Connected peers.", peers as u64);
        metric(
            "sync_distance",
            "gauge",
            "Blocks behind the highest block seen.",
            self.sync_distance(head),
        );
        out.push_str(
            "# HELP healthchain_proposal_to_commit_ms Time from a height's proposal to its commit.\n# TYPE healthchain_proposal_to_commit_ms histogram\n",
        );
        let mut cumulative = 0;
        for (i, bucket) in self.commit_ms_buckets.iter().enumerate() {
            cumulative += get(bucket);
            let le = COMMIT_BUCKETS_MS
                .get(i)
                .map_or_else(|| "+Inf".to_string(), u64::to_string);
            out.push_str(&format!(
                "healthchain_proposal_to_commit_ms_bucket{{le=\"{le}\"}} {cumulative}\n"
            ));
        }
        out.push_str(&format!(
            "healthchain_proposal_to_commit_ms_sum {}\nhealthchain_proposal_to_commit_ms_count {}\n",
            get(&self.commit_ms_sum),
            get(&self.commit_count)
        ));
        out
    }
}

/// The running engine.
#[derive(Clone)]
pub struct EngineHandle {
    inbox: mpsc::Sender<EngineInput>,
    nudge: Arc<watch::Sender<()>>,
    /// Local vote proposals (`ibft_proposeValidatorVote` and friends).
    pub votes: Arc<Mutex<VoteProposer>>,
    /// Figures.
    pub metrics: Arc<EngineMetrics>,
    /// The chain.
    pub chain: Arc<Chain>,
    task: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
    fatal: watch::Receiver<Option<String>>,
}

impl std::fmt::Debug for EngineHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineHandle").finish_non_exhaustive()
    }
}

impl EngineHandle {
    /// Hands a gossiped consensus message to the engine; false if it is overloaded (or
    /// stopped) and dropped the message, which the caller then reports as not judged.
    pub fn consensus_message(&self, id: MessageId, source: PeerId, data: Vec<u8>) -> bool {
        let queued = self
            .inbox
            .try_send(EngineInput::Consensus { id, source, data })
            .is_ok();
        if !queued {
            tracing::warn!("consensus inbox full; dropping a message");
        }
        queued
    }

    /// Waits until the engine stops on an error it cannot go on from, and says why (it
    /// never returns while the engine runs or after a clean shutdown).
    pub async fn failed(&self) -> String {
        let mut fatal = self.fatal.clone();
        match fatal.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or_default(),
            Err(_) => std::future::pending().await,
        }
    }

    /// Asks sync to look for peers ahead now (a peer connected, say).
    pub fn nudge_sync(&self) {
        self.nudge.send_replace(());
    }

    /// Whether the engine is still running.
    pub fn is_running(&self) -> bool {
        !self.inbox.is_closed()
    }

    /// Stops the consensus task once the work in hand (a block import, say) is done, and
    /// waits for it; sync stops with it.
    pub async fn shutdown(&self) {
        let _ = self.inbox.send(EngineInput::Shutdown).await;
        let task = self.task.lock().take();
        if let Some(task) = task
            && let Err(err) = task.await
        {
            tracing::warn!(%err, "consensus task ended abnormally");
        }
    }
}

/// Starts the consensus task (and, with a network, the sync task). `key` is the node key:
/// it signs as a validator whenever its address is in the validator set, and otherwise the
/// node only follows the chain.
pub fn spawn(
    chain: Arc<Chain>,
    config: IbftConfig,
    key: NodeKey,
    network: Option<NetworkHandle>,
    genesis: B256,
) -> EngineHandle {
    let (inbox_tx, inbox) = mpsc::channel(4096);
    let (nudge, nudge_rx) = watch::channel(());
    let nudge = Arc::new(nudge);
    let (fatal, fatal_rx) = watch::channel(None);
    let votes: Arc<Mutex<VoteProposer>> = Arc::default();
    let metrics: Arc<EngineMetrics> = Arc::default();
    let task = consensus::Consensus {
        chain: chain.clone(),
        machine: Ibft::new(config, key),
        network: network.clone(),
        votes: votes.clone(),
        inbox,
        metrics: metrics.clone(),
        round_timer: None,
        block_timer: None,
        proposal_seen: Default::default(),
        nudge: nudge.clone(),
        fatal: Arc::new(fatal),
    };
    let task = tokio::spawn(task.run());
    if let Some(network) = network {
        let syncer = sync::Syncer {
            store: chain.store().clone(),
            genesis,
            network,
            engine: inbox_tx.clone(),
            metrics: metrics.clone(),
            nudge: nudge_rx,
        };
        tokio::spawn(syncer.run());
    }
    EngineHandle {
        inbox: inbox_tx,
        nudge,
        votes,
        metrics,
        chain,
        task: Arc::new(Mutex::new(Some(task))),
        fatal: fatal_rx,
    }
}
