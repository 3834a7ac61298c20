//! What connects the network, the engine, the pool and RPC inside a node: the network event
//! dispatcher, the chain observer feeding RPC subscriptions, and the status RPC reads.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use alloy_primitives::B256;
use healthchain_engine::{ChainObserver, EngineHandle, EngineInput, EngineMetrics};
use healthchain_network::{Acceptance, NetworkEvent, NetworkHandle, Offence, Topic};
use healthchain_rpc::{ChainEvents, NewBlock, NodeStatus, NodeSummary, PeerSummary};
use healthchain_storage_api::{BlockBatch, BlockReader};
use healthchain_storage_mdbx::MdbxStore;
use healthchain_txpool::SharedPool;
use tokio::sync::mpsc;

/// Sends committed blocks and newly pending transactions to RPC subscribers and filters.
pub(crate) struct Observer {
    pub(crate) events: ChainEvents,
}

impl ChainObserver for Observer {
    fn on_block(&self, batch: &BlockBatch, promoted: &[B256]) {
        // Nobody listening is fine.
        let _ = self.events.blocks.send(Arc::new(NewBlock::from(batch)));
        for hash in promoted {
            let _ = self.events.pending.send(*hash);
        }
    }
}

/// Routes network events: consensus gossip to the engine, transactions to the pool, sync
/// requests to the store.
pub(crate) async fn dispatch(
    mut events: mpsc::Receiver<NetworkEvent>,
    network: NetworkHandle,
    engine: EngineHandle,
    store: Arc<MdbxStore>,
    pool: Arc<SharedPool>,
    chain_events: ChainEvents,
    genesis: B256,
) {
    while let Some(event) = events.recv().await {
        match event {
            NetworkEvent::Gossip {
                topic: Topic::Consensus,
                id,
                source,
                data,
            } => engine.consensus_message(EngineInput::Consensus { id, source, data }),
            NetworkEvent::Gossip {
                topic: Topic::Transactions,
                id,
                source,
                data,
            } => {
                let (_, now_ms) = now();
                let acceptance = match pool.submit_remote(&data, store.as_ref(), now_ms) {
                    Ok(outcome) => {
                        for hash in outcome.promoted {
                            let _ = chain_events.pending.send(hash);
                        }
                        Acceptance::Accept
                    }
                    Err(err) if err.is_malformed() => {
                        network.penalize(source, Offence::Malformed);
                        Acceptance::Reject
                    }
                    // Known, underpriced, nonce too low, pool full: not worth forwarding.
                    Err(_) => Acceptance::Ignore,
                };
                network.report(id, source, acceptance);
            }
            NetworkEvent::Request { request, reply, .. } => {
                let store = store.clone();
                tokio::spawn(async move {
                    let answer = tokio::task::spawn_blocking(move || {
                        healthchain_engine::sync::answer(store.as_ref(), genesis, &request)
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
