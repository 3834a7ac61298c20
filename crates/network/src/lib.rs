//! HealthChain's peer-to-peer layer on libp2p 0.57: TCP, noise and yamux; the node's
//! secp256k1 key as its identity ([`identity`]); gossip of transactions, consensus messages
//! and blob announcements (gossipsub, deduplicated by content hash, size-bounded, forwarded
//! only after the node accepts them); block sync and chunked fetch of content-addressed
//! blobs by request/response ([`sync`]); peer scoring and bans; and a [`ConnectionGate`]
//! that permissioning plugs into.
//!
//! It moves bytes and knows neither IBFT nor blob formats: the engine decides what a
//! consensus message is worth, the blob store what an announcement or a blob is, and each
//! reports back with [`NetworkHandle::report`]. Start it with [`start`]; it runs as one
//! tokio task and talks through a [`NetworkHandle`] and a stream of [`NetworkEvent`]s.

pub mod identity;
mod scores;
mod swarm;
pub mod sync;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

pub use identity::{IdentityError, NodeId, PeerAddr, keypair_from_secret};
pub use libp2p::gossipsub::MessageId;
pub use libp2p::{Multiaddr, PeerId};
pub use scores::Offence;
pub use sync::{ChainStatus, SyncRequest, SyncResponse};

/// `[network]` in the node's config file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct NetworkConfig {
    /// Run the peer-to-peer network (a single-node chain can do without).
    pub enabled: bool,
    /// TCP address to listen on.
    pub listen_addr: SocketAddr,
    /// Nodes to connect to at start and keep connected: `enode://<id>@ip:port` (Besu's
    /// form) or a multiaddr ending in `/p2p/<peer id>`.
    pub bootnodes: Vec<String>,
    /// More nodes kept connected, as `bootnodes`.
    pub static_peers: Vec<String>,
    /// Most connected peers (bootnodes and static peers are always allowed).
    pub max_peers: usize,
    /// Largest gossiped message and sync response, in bytes.
    pub max_message_bytes: usize,
    /// How long a peer scored down to the ban threshold stays banned, in seconds.
    pub ban_seconds: u64,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 30303)),
            bootnodes: Vec::new(),
            static_peers: Vec::new(),
            max_peers: 25,
            max_message_bytes: 10 * 1024 * 1024,
            ban_seconds: 600,
        }
    }
}

/// Decides which nodes may be connected (the node-permissioning hook). Checked for every
/// inbound and outbound connection, and for live ones on [`NetworkHandle::recheck`].
pub trait ConnectionGate: Send + Sync + 'static {
    /// Whether `node`, seen at `remote`, may be connected.
    fn allowed(&self, node: &NodeId, remote: &Multiaddr, inbound: bool) -> bool;
}

/// A gate that lets everyone in.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl ConnectionGate for AllowAll {
    fn allowed(&self, _: &NodeId, _: &Multiaddr, _: bool) -> bool {
        true
    }
}

/// The gossip channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// IBFT messages: one code byte, then the message data.
    Consensus,
    /// Raw EIP-2718 transactions.
    Transactions,
    /// Blob announcements: a node that stored a new blob or key wrap tells its peers; the
    /// payload format is the blobs crate's.
    Blobs,
}

/// What the node thinks of a gossiped message (gossipsub's validation result).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acceptance {
    /// Valid and current: forward it.
    Accept,
    /// Harmless but not worth forwarding (stale, duplicate, future).
    Ignore,
    /// Invalid: drop it and score the peer that sent it down.
    Reject,
}

/// What the network tells the node.
#[derive(Debug)]
pub enum NetworkEvent {
    /// A gossiped message; answer with [`NetworkHandle::report`].
    Gossip {
        /// Which channel.
        topic: Topic,
        /// Its id (keccak256 of the data).
        id: MessageId,
        /// The peer that delivered it.
        source: PeerId,
        /// The bytes.
        data: Vec<u8>,
    },
    /// A sync request from a peer; send the answer into `reply`.
    Request {
        /// Who asks.
        peer: PeerId,
        /// What.
        request: SyncRequest,
        /// Where the answer goes (dropping it refuses the request).
        reply: oneshot::Sender<SyncResponse>,
    },
    /// A peer connected.
    PeerConnected(PeerId),
    /// A peer's last connection closed.
    PeerDisconnected(PeerId),
}

/// A connected peer, for `admin_peers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// Its libp2p peer id.
    pub peer_id: PeerId,
    /// Its key.
    pub node: NodeId,
    /// The address of the connection.
    pub remote: Multiaddr,
    /// Whether it dialled us.
    pub inbound: bool,
    /// When it connected.
    pub since: Instant,
}

/// This node, for `admin_nodeInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalNode {
    /// Its peer id.
    pub peer_id: PeerId,
    /// Its key.
    pub node: NodeId,
    /// Where it listens.
    pub listen: SocketAddr,
}

/// Why a sync request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The network task has stopped.
    #[error("the network is shut down")]
    Closed,
    /// Sending, receiving or the peer failed (timeout, disconnect, bad frame).
    #[error("request to {peer} failed: {reason}")]
    Failed {
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: String,
    },
}

/// Why the network could not start.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// A bad key or node address.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// libp2p refused the setup.
    #[error("network setup: {0}")]
    Setup(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
}

enum Command {
    Publish {
        topic: Topic,
        data: Vec<u8>,
    },
    Report {
        id: MessageId,
        source: PeerId,
        acceptance: Acceptance,
    },
    Request {
        peer: PeerId,
        request: SyncRequest,
        reply: oneshot::Sender<Result<SyncResponse, RequestError>>,
    },
    Respond {
        token: u64,
        response: SyncResponse,
    },
    Penalize {
        peer: PeerId,
        offence: Offence,
    },
    Recheck,
    Shutdown,
}

/// Talks to the running network. Cheap to clone.
#[derive(Clone)]
pub struct NetworkHandle {
    commands: mpsc::Sender<Command>,
    peers: Arc<parking_lot::RwLock<HashMap<PeerId, PeerInfo>>>,
    local: LocalNode,
}

impl std::fmt::Debug for NetworkHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkHandle")
            .field("local", &self.local.peer_id)
            .finish_non_exhaustive()
    }
}

impl NetworkHandle {
    /// Gossips `data` on `topic`. Dropped (with a warning) if the network is overloaded.
    pub fn publish(&self, topic: Topic, data: Vec<u8>) {
        if self
            .commands
            .try_send(Command::Publish { topic, data })
            .is_err()
        {
            tracing::warn!(?topic, "network command queue full; message not published");
        }
    }

    /// The node's verdict on a gossiped message: forwards it, drops it, or drops it and
    /// scores its sender down.
    pub fn report(&self, id: MessageId, source: PeerId, acceptance: Acceptance) {
        let _ = self.commands.try_send(Command::Report {
            id,
            source,
            acceptance,
        });
    }

    /// Asks `peer` and waits for its answer.
    pub async fn request(
        &self,
        peer: PeerId,
        request: SyncRequest,
    ) -> Result<SyncResponse, RequestError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Request {
                peer,
                request,
                reply,
            })
            .await
            .map_err(|_| RequestError::Closed)?;
        answer.await.map_err(|_| RequestError::Closed)?
    }

    /// Scores `peer` down for `offence`; enough offences ban it.
    pub fn penalize(&self, peer: PeerId, offence: Offence) {
        let _ = self.commands.try_send(Command::Penalize { peer, offence });
    }

    /// Re-checks every live connection against the gate, disconnecting those no longer
    /// allowed (after a permissioning change).
    pub fn recheck(&self) {
        let _ = self.commands.try_send(Command::Recheck);
    }

    /// Stops the network.
    pub async fn shutdown(&self) {
        let _ = self.commands.send(Command::Shutdown).await;
    }

    /// The connected peers.
    pub fn peers(&self) -> Vec<PeerInfo> {
        let mut peers: Vec<PeerInfo> = self.peers.read().values().cloned().collect();
        peers.sort_by_key(|p| p.peer_id);
        peers
    }

    /// This node.
    pub fn local(&self) -> &LocalNode {
        &self.local
    }
}

/// Starts the network with `secret` as the node key: listens, dials the bootnodes and
/// static peers, and returns the handle and the event stream.
pub async fn start(
    config: NetworkConfig,
    secret: &[u8; 32],
    chain_tag: &str,
    gate: Arc<dyn ConnectionGate>,
) -> Result<(NetworkHandle, mpsc::Receiver<NetworkEvent>), NetworkError> {
    swarm::start(config, secret, chain_tag, gate).await
}
