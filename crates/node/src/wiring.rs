//! What connects the network, the engine, the pool and RPC inside a node: the network event
//! dispatcher (blob announcements and chunk requests go to the blob service), the chain
//! observer feeding RPC subscriptions, and the status RPC reads.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use alloy_primitives::B256;
use healthchain_engine::{ChainObserver, EngineHandle, EngineMetrics};
use healthchain_network::{
    Acceptance, NetworkEvent, NetworkHandle, Offence, SyncRequest, SyncResponse, Topic,
};
use healthchain_rpc::{ChainEvents, NewBlock, NodeStatus, NodeSummary, PeerSummary};
use healthchain_storage_api::{BlockBatch, BlockReader};
use healthchain_storage_mdbx::MdbxStore;
use healthchain_txpool::SharedPool;
use tokio::sync::mpsc;

/// Sends committed blocks and newly pending transactions to RPC subscribers and filters.
pub(crate) struct Observer {
    pub(crate) events: ChainEvents,
    /// Re-check live connections against node permissioning after each block.
    pub(crate) recheck: Option<NetworkHandle>,
}

impl ChainObserver for Observer {
    fn on_block(&self, batch: &BlockBatch, promoted: &[B256]) {
        if let Some(network) = &self.recheck {
            network.recheck();
        }
        // Nobody listening is fine.
        let _ = self.events.blocks.send(Arc::new(NewBlock::from(batch)));
        for hash in promoted {
            let _ = self.events.pending.send(*hash);
        }
    }
}

/// Gossiped transactions waiting for validation; more are ignored (not forwarded).
const TX_QUEUE: usize = 4096;
/// Transactions validated per trip to a blocking worker.
const TX_BATCH: usize = 64;

/// A gossiped transaction to validate.
struct GossipTx {
    id: healthchain_network::MessageId,
    source: healthchain_network::PeerId,
    data: Vec<u8>,
}

/// What the network event dispatcher routes to.
pub(crate) struct Dispatch {
    pub(crate) network: NetworkHandle,
    pub(crate) engine: EngineHandle,
    pub(crate) store: Arc<MdbxStore>,
    pub(crate) pool: Arc<SharedPool>,
    pub(crate) chain_events: ChainEvents,
    pub(crate) genesis: B256,
    /// The blob store, when the node keeps one.
    pub(crate) blobs: Option<Arc<crate::blobs::BlobService>>,
    /// Largest sync answer, bytes.
    pub(crate) max_response_bytes: usize,
}

/// Routes network events: consensus gossip to the engine, transactions to a validation
/// worker, sync requests to the store. Consensus messages never wait behind transactions.
pub(crate) async fn dispatch(mut events: mpsc::Receiver<NetworkEvent>, to: Dispatch) {
    let Dispatch {
        network,
        engine,
        store,
        pool,
        chain_events,
        genesis,
        blobs,
        max_response_bytes,
    } = to;
    let (txs, tx_queue) = mpsc::channel(TX_QUEUE);
    let validator = tokio::spawn(validate_transactions(
        tx_queue,
        network.clone(),
        store.clone(),
        pool,
        chain_events,
    ));
    while let Some(event) = events.recv().await {
        match event {
            NetworkEvent::Gossip {
                topic: Topic::Consensus,
                id,
                source,
                data,
            } => {
                // Not judged, so not forwarded.
                if !engine.consensus_message(id.clone(), source, data) {
                    network.report(id, source, Acceptance::Ignore);
                }
            }
            NetworkEvent::Gossip {
                topic: Topic::Transactions,
                id,
                source,
                data,
            } => {
                if let Err(mpsc::error::TrySendError::Full(tx)) =
                    txs.try_send(GossipTx { id, source, data })
                {
                    network.report(tx.id, tx.source, Acceptance::Ignore);
                }
            }
            NetworkEvent::Gossip {
                topic: Topic::Blobs,
                id,
                source,
                data,
            } => {
                let acceptance = match &blobs {
                    Some(blobs) if blobs.on_announcement(&data, source) => Acceptance::Accept,
                    Some(_) => Acceptance::Reject,
                    None => Acceptance::Ignore,
                };
                network.report(id, source, acceptance);
            }
            NetworkEvent::Request {
                request:
                    SyncRequest::Blob {
                        cid,
                        offset,
                        length,
                    },
                reply,
                ..
            } => {
                let blobs = blobs.clone();
                tokio::spawn(async move {
                    let answer = match blobs {
                        Some(blobs) => tokio::task::spawn_blocking(move || {
                            blobs.answer_peer(&cid, offset, length)
                        })
                        .await
                        .ok(),
                        None => Some(SyncResponse::Refused("this node keeps no blobs".into())),
                    };
                    if let Some(answer) = answer {
                        let _ = reply.send(answer);
                    }
                });
            }
            NetworkEvent::Request { request, reply, .. } => {
                let store = store.clone();
                // The network bounds how many requests are in flight.
                tokio::spawn(async move {
                    let answer = tokio::task::spawn_blocking(move || {
                        healthchain_engine::sync::answer(
                            store.as_ref(),
                            genesis,
                            &request,
                            max_response_bytes,
                        )
                    })
                    .await;
                    if let Ok(answer) = answer {
                        let _ = reply.send(answer);
                    }
                });
            }
            NetworkEvent::PeerConnected(_) => engine.nudge_sync(),
            NetworkEvent::PeerDisconnected(_) => {}
        }
    }
    validator.abort();
}

/// Validates gossiped transactions in batches on a blocking worker (signature recovery is
/// the cost) and tells the network which to forward.
async fn validate_transactions(
    mut queue: mpsc::Receiver<GossipTx>,
    network: NetworkHandle,
    store: Arc<MdbxStore>,
    pool: Arc<SharedPool>,
    chain_events: ChainEvents,
) {
    let mut batch = Vec::with_capacity(TX_BATCH);
    while queue.recv_many(&mut batch, TX_BATCH).await > 0 {
        let work = std::mem::take(&mut batch);
        let (store, pool, network, chain_events) = (
            store.clone(),
            pool.clone(),
            network.clone(),
            chain_events.clone(),
        );
        let done = tokio::task::spawn_blocking(move || {
            for tx in work {
                let (_, now_ms) = now();
                let acceptance = match pool.submit_remote(&tx.data, store.as_ref(), now_ms) {
                    Ok(outcome) => {
                        for hash in outcome.promoted {
                            let _ = chain_events.pending.send(hash);
                        }
                        Acceptance::Accept
                    }
                    Err(err) if err.is_malformed() => {
                        network.penalize(tx.source, Offence::Malformed);
                        Acceptance::Reject
                    }
                    // Known, underpriced, nonce too low, pool full: not worth forwarding.
                    Err(_) => Acceptance::Ignore,
                };
                network.report(tx.id, tx.source, acceptance);
            }
        })
        .await;
        if done.is_err() {
            tracing::error!("transaction validation worker panicked");
        }
    }
}

fn now() -> (u64, u64) {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs(), d.as_millis() as u64)
}

/// Peers and sync progress, for RPC and metrics.
pub(crate) struct Status {
    pub(crate) network: Option<NetworkHandle>,
    pub(crate) metrics: Arc<EngineMetrics>,
}

impl NodeStatus for Status {
    fn peer_count(&self) -> usize {
        self.network.as_ref().map_or(0, |n| n.peers().len())
    }

    fn listening(&self) -> bool {
        self.network.is_some()
    }

    fn sync_progress(&self, head: u64) -> Option<(u64, u64)> {
        let highest = self.metrics.highest_seen.load(Ordering::Relaxed);
        // A block or two behind is normal between a commit and its import.
        if highest <= head + 1 {
            return None;
        }
        let start = self.metrics.sync_start.load(Ordering::Relaxed);
        Some((if start == 0 { head } else { start }, highest))
    }

    fn peers(&self) -> Vec<PeerSummary> {
        let Some(network) = &self.network else {
            return Vec::new();
        };
        let local = network.local().listen.to_string();
        network
            .peers()
            .into_iter()
            .map(|peer| {
                let remote = healthchain_network::identity::multiaddr_socket(&peer.remote);
                PeerSummary {
                    id: peer.node.enode_hex(),
                    enode: remote
                        .map_or_else(|| peer.node.enode_hex(), |addr| peer.node.enode_url(addr)),
                    peer_id: peer.peer_id.to_string(),
                    local_address: local.clone(),
                    remote_address: remote
                        .map_or_else(|| peer.remote.to_string(), |a| a.to_string()),
                    inbound: peer.inbound,
                }
            })
            .collect()
    }

    fn node_info(&self) -> Option<NodeSummary> {
        let network = self.network.as_ref()?;
        let local = network.local();
        Some(NodeSummary {
            id: local.node.enode_hex(),
            enode: local.node.enode_url(local.listen),
            ip: local.listen.ip().to_string(),
            port: local.listen.port(),
            peer_id: local.peer_id.to_string(),
        })
    }
}

/// The head's number, for metrics.
pub(crate) fn head_number(store: &MdbxStore) -> u64 {
    store.head().ok().flatten().map_or(0, |(n, _)| n)
}
