//! Permissioning as the node wires it: the local allowlists and on-chain rules from
//! `[permissions]`, the pool's transaction filter, and the network's connection gate.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use healthchain_chainspec::ChainConfig;
use healthchain_engine::EngineMetrics;
use healthchain_network::identity::multiaddr_socket;
use healthchain_network::{ConnectionGate, Multiaddr, NetworkConfig, NodeId, PeerAddr};
use healthchain_permissioning::{
    EnodeUrl, LocalPermissions, LocalPermissionsConfig, OnchainRules, Permissions,
    PermissionsConfig,
};
use healthchain_storage_api::ChainStore;

use crate::ConfigError;

/// The file Besu reads by default, in the data directory.
pub const PERMISSIONS_FILE: &str = "permissions_config.toml";

/// Bootnodes and static peers: their node ids and listen addresses.
pub(crate) fn fixed_nodes(
    network: &NetworkConfig,
) -> Result<Vec<(NodeId, SocketAddr)>, ConfigError> {
    let mut fixed = Vec::new();
    for text in network.bootnodes.iter().chain(&network.static_peers) {
        let peer = PeerAddr::parse(text).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let node =
            NodeId::from_peer_id(&peer.peer).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if let Some(socket) = multiaddr_socket(&peer.addr) {
            fixed.push((node, socket));
        }
    }
    Ok(fixed)
}

/// The node's permissions, or `None` when `[permissions]` enables nothing. Fails, as Besu
/// does at startup, on a bad local file or a node ingress contract missing from the state.
pub(crate) fn build(
    config: &PermissionsConfig,
    datadir: &Path,
    network: &NetworkConfig,
    store: Arc<dyn ChainStore>,
    chain: Arc<ChainConfig>,
) -> Result<Option<Arc<Permissions>>, ConfigError> {
    if !config.any_enabled() {
        return Ok(None);
    }
    let local = if config.accounts_allowlist_enabled || config.nodes_allowlist_enabled {
        let file = config
            .config_file
            .clone()
            .unwrap_or_else(|| datadir.join(PERMISSIONS_FILE));
        let fixed_nodes = fixed_nodes(network)?
            .into_iter()
            .map(|(node, socket)| {
                node.enode_url(socket)
                    .parse::<EnodeUrl>()
                    .map_err(|e| ConfigError::Invalid(format!("fixed node: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let local = LocalPermissions::load(LocalPermissionsConfig {
            accounts_file: config.accounts_allowlist_enabled.then(|| file.clone()),
            nodes_file: config.nodes_allowlist_enabled.then(|| file.clone()),
            fixed_nodes,
        })
        .map_err(|e| ConfigError::Invalid(format!("[permissions] {e}")))?;
        Some(Arc::new(local))
    } else {
        None
    };
    if config.nodes_contract_enabled {
        let address = config.nodes_contract_address;
        let exists = store
            .account(address)
            .map_err(|e| ConfigError::Invalid(format!("reading the node rules contract: {e}")))?
            .is_some();
        if !exists {
            return Err(ConfigError::Invalid(format!(
                "[permissions] nodes-contract-address: no node permissioning contract at {address} in the chain's state"
            )));
        }
    }
    let onchain = OnchainRules::new(
        store,
        chain,
        config
            .accounts_contract_enabled
            .then_some(config.accounts_contract_address),
        config
            .nodes_contract_enabled
            .then_some(config.nodes_contract_address),
    );
    Ok(Some(Arc::new(Permissions::new(local, onchain))))
}

/// The network's connection gate over [`Permissions`]. Until the node has first been in
/// sync, bootnodes and static peers are let in without consulting the rules (the state
/// that holds the rules is not there yet) and everyone else is refused — Besu's
/// `SyncStatusNodePermissioningProvider`. With no fixed nodes, the rules decide from the
/// start.
pub(crate) struct PermissionGate {
    pub(crate) permissions: Arc<Permissions>,
    pub(crate) fixed: HashSet<NodeId>,
    /// Set once the engine runs.
    pub(crate) metrics: OnceLock<Arc<EngineMetrics>>,
}

impl PermissionGate {
    fn synced(&self) -> bool {
        self.metrics
            .get()
            .is_some_and(|m| m.synced_once.load(Ordering::Relaxed))
    }
}

impl ConnectionGate for PermissionGate {
    fn allowed(&self, node: &NodeId, remote: &Multiaddr, inbound: bool) -> bool {
        if !self.fixed.is_empty() && !self.synced() {
            return self.fixed.contains(node);
        }
        let Some(socket) = multiaddr_socket(remote) else {
            return false;
        };
        // An inbound connection comes from an ephemeral port, not the peer's listening one.
        let port = (!inbound).then_some(socket.port());
        self.permissions
            .node_permitted(&node.enode_hex(), &socket.ip().to_string(), port)
    }
}
