//! Node and account permissioning, as Besu did it up to 25.5 (see `docs/permissioning.md`).
//!
//! - [`onchain`]: read-only calls to the ingress contracts on the chain head's state —
//!   `AccountIngress.transactionAllowed` (0x…8888) and `NodeIngress.connectionAllowed`
//!   (0x…9999), whose rules and admins live in replaceable contracts
//!   (`healthchain-contracts`' `permissioning`).
//! - [`local`]: the local allowlists in `permissions_config.toml` (`accounts-allowlist`,
//!   `nodes-allowlist`), Besu's semantics and file persistence, behind the `perm_*` RPCs.
//! - [`Permissions`]: both together, as the pool, the block builder, block import
//!   ([`TransactionFilter`]) and the network's connection gate consult them. Local account
//!   lists are not enforced at import (Besu #1510); on-chain rules are, since every honest
//!   validator must reject the same blocks.

pub mod local;
pub mod onchain;

use std::path::PathBuf;
use std::sync::Arc;

use alloy_primitives::{Address, address};
use healthchain_primitives::Transaction;
use healthchain_txpool::{CheckPoint, TransactionFilter};
use serde::{Deserialize, Serialize};

pub use local::*;
pub use onchain::{OnchainRules, RulesError};

/// Besu's conventional `AccountIngress` address.
pub const DEFAULT_ACCOUNT_INGRESS: Address = address!("0x0000000000000000000000000000000000008888");
/// Besu's conventional `NodeIngress` address.
pub const DEFAULT_NODE_INGRESS: Address = address!("0x0000000000000000000000000000000000009999");

/// `[permissions]` in the node's config file (Besu's `--permissions-*` options).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct PermissionsConfig {
    /// Enforce `accounts-allowlist` of the local permissions file.
    pub accounts_allowlist_enabled: bool,
    /// Enforce `nodes-allowlist` of the local permissions file.
    pub nodes_allowlist_enabled: bool,
    /// The local permissions file (default: `permissions_config.toml` in the data
    /// directory).
    pub config_file: Option<PathBuf>,
    /// Enforce the on-chain account rules. Consensus-critical: every validator of a chain
    /// must agree, or they reject each other's blocks.
    pub accounts_contract_enabled: bool,
    /// The account ingress contract.
    pub accounts_contract_address: Address,
    /// Enforce the on-chain node rules on connections.
    pub nodes_contract_enabled: bool,
    /// The node ingress contract.
    pub nodes_contract_address: Address,
}

impl Default for PermissionsConfig {
    fn default() -> Self {
        Self {
            accounts_allowlist_enabled: false,
            nodes_allowlist_enabled: false,
            config_file: None,
            accounts_contract_enabled: false,
            accounts_contract_address: DEFAULT_ACCOUNT_INGRESS,
            nodes_contract_enabled: false,
            nodes_contract_address: DEFAULT_NODE_INGRESS,
        }
    }
}

impl PermissionsConfig {
    /// Every check on: the on-chain rules at the default ingress addresses (what
    /// `healthchain dev` runs with).
    pub fn onchain() -> Self {
        Self {
            accounts_contract_enabled: true,
            nodes_contract_enabled: true,
            ..Self::default()
        }
    }

    /// Whether anything is enforced.
    pub fn any_enabled(&self) -> bool {
        self.accounts_allowlist_enabled
            || self.nodes_allowlist_enabled
            || self.accounts_contract_enabled
            || self.nodes_contract_enabled
    }
}

/// The local allowlists and the on-chain rules of one node.
#[derive(Debug)]
pub struct Permissions {
    local: Option<Arc<LocalPermissions>>,
    onchain: OnchainRules,
}

impl Permissions {
    /// Both kinds of rules; `local` is `None` when no local list is enabled.
    pub fn new(local: Option<Arc<LocalPermissions>>, onchain: OnchainRules) -> Self {
        Self { local, onchain }
    }

    /// The local allowlists, for the `perm_*` RPCs.
    pub fn local(&self) -> Option<&Arc<LocalPermissions>> {
        self.local.as_ref()
    }

    /// Whether any node rule (local or on-chain) is enforced.
    pub fn checks_nodes(&self) -> bool {
        self.onchain.checks_nodes() || self.local.as_ref().is_some_and(|l| l.nodes_enabled())
    }

    /// Whether any account rule (local or on-chain) is enforced.
    pub fn checks_accounts(&self) -> bool {
        self.onchain.checks_accounts() || self.local.as_ref().is_some_and(|l| l.accounts_enabled())
    }

    /// Whether a connection with the node `enode_id` (128 hex characters) at `host` may
    /// exist. `port` is its listening port, or `None` for an inbound connection (libp2p's
    /// handshake does not carry the listening port): the on-chain rules are then asked with
    /// port 0, which `NodeRules` matches against any port of that id and host.
    pub fn node_permitted(&self, enode_id: &str, host: &str, port: Option<u16>) -> bool {
        if let Some(local) = &self.local
            && !local.node_allowed(enode_id, host, port)
        {
            return false;
        }
        match self
            .onchain
            .connection_allowed(enode_id, host, port.unwrap_or(0))
        {
            Ok(allowed) => allowed,
            Err(err) => {
                tracing::warn!(%err, enode_id, host, "node rules check failed; refusing");
                false
            }
        }
    }
}

impl TransactionFilter for Permissions {
    fn permitted(&self, tx: &Transaction, sender: Address, at: CheckPoint) -> bool {
        if at != CheckPoint::BlockImport
            && let Some(local) = &self.local
            && !local.account_allowed(&sender)
        {
            return false;
        }
        match self.onchain.transaction_allowed(tx, sender) {
            Ok(allowed) => allowed,
            Err(err) => {
                // Deterministic: every validator reading the same state fails the same way.
                tracing::warn!(%err, %sender, "account rules check failed; refusing");
                false
            }
        }
    }
}
