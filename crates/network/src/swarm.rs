//! The swarm task: one tokio task owns the libp2p swarm and serves the handle's commands.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use alloy_primitives::keccak256;
use futures::StreamExt;
use libp2p::{
    Multiaddr, PeerId, Swarm, SwarmBuilder, connection_limits,
    core::{Endpoint, transport::PortUse},
    gossipsub::{self, IdentTopic, MessageAcceptance, MessageAuthenticity, ValidationMode},
    noise,
    request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel},
    swarm::{
        ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, SwarmEvent, THandler,
        THandlerInEvent, THandlerOutEvent, ToSwarm, dummy,
    },
    tcp, yamux,
};
use parking_lot::{Mutex, RwLock};
use tokio::sync::{mpsc, oneshot};

use crate::{
    Acceptance, Command, ConnectionGate, LocalNode, NetworkConfig, NetworkError, NetworkEvent,
    NetworkHandle, NodeId, Offence, PeerAddr, PeerInfo, RequestError, SyncResponse, Topic,
    identity::socket_multiaddr,
    keypair_from_secret,
    scores::{DECAY_EVERY, Scores},
    sync::{PROTOCOL, SyncCodec},
};

/// How often disconnected bootnodes and static peers are dialled again.
const REDIAL_EVERY: Duration = Duration::from_secs(3);
/// Queue between the swarm and the node.
const EVENT_QUEUE: usize = 8192;
/// Commands from handles.
const COMMAND_QUEUE: usize = 8192;
/// Connections still in their handshake, inbound, at once (a connection flood is cut here,
/// before it costs a noise handshake each).
const MAX_PENDING_INCOMING: u32 = 32;
/// Connections to one peer (a reconnect may briefly overlap the old one).
const MAX_CONNECTIONS_PER_PEER: u32 = 2;
/// Peers' sync requests being answered at once; more are refused as busy.
const MAX_INBOUND_REQUESTS: usize = 64;
/// Sync requests one peer may make per second, sustained, and in a burst. A syncing peer
/// makes about six per batch of 512 blocks.
const REQUESTS_PER_SECOND: f64 = 20.0;
const REQUEST_BURST: f64 = 60.0;

/// A token bucket per peer for its sync requests.
#[derive(Debug, Default)]
struct RequestBudget {
    buckets: HashMap<PeerId, (f64, Instant)>,
}

impl RequestBudget {
    /// Takes one request from `peer`'s budget; false if it has none left.
    fn take(&mut self, peer: PeerId, now: Instant) -> bool {
        let (tokens, last) = self.buckets.entry(peer).or_insert((REQUEST_BURST, now));
        let refill = now.saturating_duration_since(*last).as_secs_f64() * REQUESTS_PER_SECOND;
        *tokens = (*tokens + refill).min(REQUEST_BURST);
        *last = now;
        if *tokens < 1.0 {
            return false;
        }
        *tokens -= 1.0;
        true
    }

    fn forget(&mut self, peer: &PeerId) {
        self.buckets.remove(peer);
    }
}

/// Admission control for connections: the permission gate, bans and the peer limit.
struct Gate {
    gate: Arc<dyn ConnectionGate>,
    scores: Arc<Mutex<Scores>>,
    /// Bootnodes and static peers: never refused for the peer limit.
    reserved: HashSet<PeerId>,
    max_peers: usize,
    connected: Arc<RwLock<HashMap<PeerId, PeerInfo>>>,
}

impl Gate {
    fn admit(
        &self,
        peer: PeerId,
        remote: &Multiaddr,
        inbound: bool,
    ) -> Result<(), ConnectionDenied> {
        let node = NodeId::from_peer_id(&peer).map_err(ConnectionDenied::new)?;
        if self.scores.lock().is_banned(&peer, Instant::now()) {
            return Err(ConnectionDenied::new(Refused("banned")));
        }
        if !self.gate.allowed(&node, remote, inbound) {
            return Err(ConnectionDenied::new(Refused("not permitted")));
        }
        let connected = self.connected.read();
        if !connected.contains_key(&peer)
            && !self.reserved.contains(&peer)
            && connected.len() >= self.max_peers
        {
            return Err(ConnectionDenied::new(Refused("peer limit reached")));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("connection refused: {0}")]
struct Refused(&'static str);

impl NetworkBehaviour for Gate {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = std::convert::Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.admit(peer, remote, true)?;
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.admit(peer, addr, false)?;
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, _: FromSwarm) {}

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[derive(NetworkBehaviour)]
#[behaviour(prelude = "libp2p::swarm::derive_prelude")]
struct Behaviour {
    limits: connection_limits::Behaviour,
    gate: Gate,
    gossipsub: gossipsub::Behaviour,
    sync: request_response::Behaviour<SyncCodec>,
}

struct Task {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    command_tx: mpsc::Sender<Command>,
    events: mpsc::Sender<NetworkEvent>,
    topics: HashMap<gossipsub::TopicHash, Topic>,
    consensus_topic: IdentTopic,
    tx_topic: IdentTopic,
    blob_topic: IdentTopic,
    peers: Arc<RwLock<HashMap<PeerId, PeerInfo>>>,
    scores: Arc<Mutex<Scores>>,
    dial: Vec<PeerAddr>,
    outbound: HashMap<OutboundRequestId, oneshot::Sender<Result<SyncResponse, RequestError>>>,
    inbound: HashMap<u64, ResponseChannel<SyncResponse>>,
    next_token: u64,
    ban: Duration,
    budget: RequestBudget,
}

pub(crate) async fn start(
    config: NetworkConfig,
    secret: &[u8; 32],
    chain_tag: &str,
    gate: Arc<dyn ConnectionGate>,
) -> Result<(NetworkHandle, mpsc::Receiver<NetworkEvent>), NetworkError> {
    let keypair = keypair_from_secret(secret)?;
    let local_peer = keypair.public().to_peer_id();
    let local_node = NodeId::from_peer_id(&local_peer)?;
    let dial = config
        .bootnodes
        .iter()
        .chain(&config.static_peers)
        .map(|s| PeerAddr::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let peers: Arc<RwLock<HashMap<PeerId, PeerInfo>>> = Arc::default();
    let scores: Arc<Mutex<Scores>> = Arc::default();

    let gossip_config = gossipsub::ConfigBuilder::default()
        .validation_mode(ValidationMode::Anonymous)
        .validate_messages()
        .message_id_fn(|m: &gossipsub::Message| {
            gossipsub::MessageId::from(keccak256(&m.data).to_vec())
        })
        .max_transmit_size(config.max_message_bytes)
        .heartbeat_interval(Duration::from_millis(500))
        .duplicate_cache_time(Duration::from_secs(30))
        .mesh_outbound_min(1)
        .mesh_n_low(2)
        .mesh_n(4)
        .mesh_n_high(8)
        .gossip_lazy(4)
        .flood_publish(true)
        .build()
        .map_err(|e| NetworkError::Setup(e.to_string()))?;
    let gossipsub = gossipsub::Behaviour::new(MessageAuthenticity::Anonymous, gossip_config)
        .map_err(|e| NetworkError::Setup(e.to_string()))?;
    let sync = request_response::Behaviour::with_codec(
        SyncCodec {
            max_response_bytes: config.max_message_bytes,
        },
        [(PROTOCOL, ProtocolSupport::Full)],
        request_response::Config::default().with_request_timeout(Duration::from_secs(15)),
    );
    let limits = connection_limits::Behaviour::new(
        connection_limits::ConnectionLimits::default()
            .with_max_pending_incoming(Some(MAX_PENDING_INCOMING))
            .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER)),
    );
    let gate_behaviour = Gate {
        gate,
        scores: scores.clone(),
        reserved: dial.iter().map(|d| d.peer).collect(),
        max_peers: config.max_peers,
        connected: peers.clone(),
    };
    let mut swarm = SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| NetworkError::Setup(e.to_string()))?
        .with_behaviour(|_| Behaviour {
            limits,
            gate: gate_behaviour,
            gossipsub,
            sync,
        })
        .map_err(|e| NetworkError::Setup(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build();

    let consensus_topic = IdentTopic::new(format!("/healthchain/{chain_tag}/ibft/1"));
    let tx_topic = IdentTopic::new(format!("/healthchain/{chain_tag}/tx/1"));
    let blob_topic = IdentTopic::new(format!("/healthchain/{chain_tag}/blob/1"));
    for topic in [&consensus_topic, &tx_topic, &blob_topic] {
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(topic)
            .map_err(|e| NetworkError::Setup(e.to_string()))?;
    }
    let listen = socket_multiaddr(config.listen_addr);
    swarm.listen_on(listen).map_err(|e| NetworkError::Listen {
        addr: config.listen_addr,
        reason: e.to_string(),
    })?;
    // Learn the bound port (the config may say port 0).
    let listen_addr = loop {
        match swarm.select_next_some().await {
            SwarmEvent::NewListenAddr { address, .. } => {
                break crate::identity::multiaddr_socket(&address).unwrap_or(config.listen_addr);
            }
            SwarmEvent::ListenerError { error, .. }
            | SwarmEvent::ListenerClosed {
                reason: Err(error), ..
            } => {
                return Err(NetworkError::Listen {
                    addr: config.listen_addr,
                    reason: error.to_string(),
                });
            }
            _ => {}
        }
    };

    let (command_tx, commands) = mpsc::channel(COMMAND_QUEUE);
    let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
    let topics = [
        (consensus_topic.hash(), Topic::Consensus),
        (tx_topic.hash(), Topic::Transactions),
        (blob_topic.hash(), Topic::Blobs),
    ]
    .into_iter()
    .collect();
    let handle = NetworkHandle {
        commands: command_tx.clone(),
        peers: peers.clone(),
        local: LocalNode {
            peer_id: local_peer,
            node: local_node,
            listen: listen_addr,
        },
    };
    tracing::info!(
        peer_id = %local_peer,
        enode = %local_node.enode_url(listen_addr),
        "p2p listening"
    );
    let task = Task {
        swarm,
        commands,
        command_tx,
        events: events_tx,
        topics,
        consensus_topic,
        tx_topic,
        blob_topic,
        peers,
        scores,
        dial,
        outbound: HashMap::new(),
        inbound: HashMap::new(),
        next_token: 0,
        ban: Duration::from_secs(config.ban_seconds),
        budget: RequestBudget::default(),
    };
    tokio::spawn(task.run());
    Ok((handle, events))
}

impl Task {
    async fn run(mut self) {
        self.redial();
        let mut redial = tokio::time::interval(REDIAL_EVERY);
        let mut decay = tokio::time::interval(DECAY_EVERY);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm(event),
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown) | None => return,
                    Some(command) => self.on_command(command),
                },
                _ = redial.tick() => self.redial(),
                _ = decay.tick() => self.scores.lock().decay(Instant::now()),
            }
        }
    }

    fn redial(&mut self) {
        for target in &self.dial {
            if !self.swarm.is_connected(&target.peer) {
                // A failed dial is retried on the next tick.
                let _ = self.swarm.dial(target.full());
            }
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Publish { topic, data } => {
                let topic = match topic {
                    Topic::Consensus => self.consensus_topic.clone(),
                    Topic::Transactions => self.tx_topic.clone(),
                    Topic::Blobs => self.blob_topic.clone(),
                };
                match self.swarm.behaviour_mut().gossipsub.publish(topic, data) {
                    // No peers yet, or the same bytes sent moments ago: nothing to do.
                    Ok(_)
                    | Err(
                        gossipsub::PublishError::Duplicate
                        | gossipsub::PublishError::NoPeersSubscribedToTopic,
                    ) => {}
                    Err(err) => tracing::warn!(%err, "gossip publish failed"),
                }
            }
            Command::Report {
                id,
                source,
                acceptance,
            } => {
                let verdict = match acceptance {
                    Acceptance::Accept => MessageAcceptance::Accept,
                    Acceptance::Ignore => MessageAcceptance::Ignore,
                    Acceptance::Reject => MessageAcceptance::Reject,
                };
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&id, &source, verdict);
                if acceptance == Acceptance::Reject {
                    self.penalize(source, Offence::Invalid);
                }
            }
            Command::Request {
                peer,
                request,
                reply,
            } => {
                let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
                self.outbound.insert(id, reply);
            }
            Command::Respond { token, response } => {
                if let Some(channel) = self.inbound.remove(&token) {
                    // The peer may have gone: nothing to do.
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .sync
                        .send_response(channel, response);
                }
            }
            Command::Penalize { peer, offence } => self.penalize(peer, offence),
            Command::Recheck => {
                let gate = self.swarm.behaviour().gate.gate.clone();
                let refused: Vec<PeerId> = self
                    .peers
                    .read()
                    .values()
                    .filter(|p| !gate.allowed(&p.node, &p.remote, p.inbound))
                    .map(|p| p.peer_id)
                    .collect();
                for peer in refused {
                    tracing::info!(%peer, "peer no longer permitted; disconnecting");
                    let _ = self.swarm.disconnect_peer_id(peer);
                }
            }
            Command::Shutdown => {}
        }
    }

    fn penalize(&mut self, peer: PeerId, offence: Offence) {
        let banned = self
            .scores
            .lock()
            .penalize(peer, offence, Instant::now(), self.ban);
        if banned {
            tracing::warn!(%peer, ?offence, "peer banned");
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }

    fn emit(&mut self, event: NetworkEvent) {
        if let Err(mpsc::error::TrySendError::Full(event)) = self.events.try_send(event) {
            tracing::warn!("node is not keeping up with the network; dropping an event");
            if let NetworkEvent::Gossip { id, source, .. } = event {
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&id, &source, MessageAcceptance::Ignore);
            }
        }
    }

    fn on_swarm(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                ..
            } => {
                if num_established.get() == 1
                    && let Ok(node) = NodeId::from_peer_id(&peer_id)
                {
                    let inbound = endpoint.is_listener();
                    let remote = endpoint.get_remote_address().clone();
                    self.peers.write().insert(
                        peer_id,
                        PeerInfo {
                            peer_id,
                            node,
                            remote,
                            inbound,
                            since: Instant::now(),
                        },
                    );
                    tracing::debug!(peer = %peer_id, inbound, "peer connected");
                    self.emit(NetworkEvent::PeerConnected(peer_id));
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                self.peers.write().remove(&peer_id);
                self.budget.forget(&peer_id);
                tracing::debug!(peer = %peer_id, "peer disconnected");
                self.emit(NetworkEvent::PeerDisconnected(peer_id));
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => match self.topics.get(&message.topic).copied() {
                Some(topic) => self.emit(NetworkEvent::Gossip {
                    topic,
                    id: message_id,
                    source: propagation_source,
                    data: message.data,
                }),
                None => {
                    self.swarm
                        .behaviour_mut()
                        .gossipsub
                        .report_message_validation_result(
                            &message_id,
                            &propagation_source,
                            MessageAcceptance::Reject,
                        );
                }
            },
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.on_sync(event),
            _ => {}
        }
    }

    fn on_sync(&mut self, event: request_response::Event<crate::SyncRequest, SyncResponse>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let refusal = if !self.budget.take(peer, Instant::now()) {
                        self.penalize(peer, Offence::Spam);
                        Some("rate limited")
                    } else if self.inbound.len() >= MAX_INBOUND_REQUESTS {
                        Some("busy")
                    } else {
                        None
                    };
                    if let Some(reason) = refusal {
                        let _ = self
                            .swarm
                            .behaviour_mut()
                            .sync
                            .send_response(channel, SyncResponse::Refused(reason.into()));
                        return;
                    }
                    let token = self.next_token;
                    self.next_token += 1;
                    self.inbound.insert(token, channel);
                    let (reply, answer) = oneshot::channel();
                    self.emit(NetworkEvent::Request {
                        peer,
                        request,
                        reply,
                    });
                    let commands = self.command_tx.clone();
                    tokio::spawn(async move {
                        let response = answer
                            .await
                            .unwrap_or_else(|_| SyncResponse::Refused("not available".into()));
                        let _ = commands.send(Command::Respond { token, response }).await;
                    });
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(reply) = self.outbound.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if let Some(reply) = self.outbound.remove(&request_id) {
                    let _ = reply.send(Err(RequestError::Failed {
                        peer,
                        reason: error.to_string(),
                    }));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "inbound sync request failed");
                // The codec refuses undecodable or oversized requests as invalid data.
                if let request_response::InboundFailure::Io(io) = &error
                    && io.kind() == std::io::ErrorKind::InvalidData
                {
                    self.penalize(peer, Offence::Malformed);
                }
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }
}
