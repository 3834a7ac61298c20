//! The `perm_` methods: Besu's local permissioning RPCs over the allowlists of
//! `permissions_config.toml` ([`LocalPermissions`]), with Besu's parameters, results and
//! error messages (`PermJsonRpcMethods`, `RpcErrorType`). Not among the default APIs.

use std::sync::Arc;

use healthchain_permissioning::{AllowlistKind, ChangeError, LocalPermissions, account_text};
use jsonrpsee::{core::async_trait, proc_macros::rpc, types::ErrorObjectOwned};
use serde_json::Value;

use crate::{
    backend::RpcBackend,
    error::{RpcResult, internal, invalid_params, server_error},
};

/// What a change that returns no data answers (Besu's `SUCCESS_RESULT`).
pub const SUCCESS: &str = "Success";

/// Besu's messages, all code -32000 unless noted.
mod msg {
    pub(super) const ACCOUNTS_NOT_ENABLED: &str = "Account allowlist has not been enabled";
    pub(super) const ACCOUNTS_EMPTY: &str = "Request contains an empty list of accounts";
    pub(super) const ACCOUNTS_INVALID: &str = "Request contains an invalid account";
    pub(super) const ACCOUNTS_DUPLICATE: &str = "Request contains duplicate accounts";
    pub(super) const ACCOUNTS_EXISTING: &str = "Cannot add an existing account to allowlist";
    pub(super) const ACCOUNTS_ABSENT: &str = "Cannot remove an absent account from allowlist";
    pub(super) const NODES_NOT_ENABLED: &str = "Node allowlist has not been enabled";
    pub(super) const NODES_EMPTY: &str = "Request contains an empty list of nodes";
    pub(super) const NODES_INVALID: &str = "Request contains an invalid node";
    pub(super) const NODES_DUPLICATE: &str = "Request contains duplicate nodes";
    pub(super) const NODES_EXISTING: &str = "Cannot add an existing node to allowlist";
    pub(super) const NODES_ABSENT: &str = "Cannot remove an absent node from allowlist";
    pub(super) const NODES_FIXED: &str =
        "Cannot remove a fixed node (bootnode or static node) from allowlist";
    pub(super) const PERSIST: &str =
        "Unable to persist changes to allowlist configuration file. Changes reverted";
    // Two spaces after "sync.", as in Besu.
    pub(super) const SYNC: &str = "The permissioning allowlist configuration file is out of sync.  The changes have been applied, but not persisted to disk";
    pub(super) const NOT_ENABLED: &str = "Node/Account allowlist has not been enabled";
    pub(super) const RELOAD: &str = "Error reloading permissions file. Please use perm_getAccountsAllowlist and perm_getNodesAllowlist to review the current state of the allowlists";
    /// -32602.
    pub(super) const ACCOUNT_PARAMS: &str = "Invalid account params";
    /// -32602.
    pub(super) const ENODE_PARAMS: &str = "Invalid enode params";
}

/// The `perm_` methods. Lists are one array inside the positional params:
/// `"params":[["0x…","0x…"]]`.
#[rpc(server, namespace = "perm")]
pub trait PermApi {
    /// Adds accounts to the account allowlist and its file.
    #[method(name = "addAccountsToAllowlist")]
    async fn add_accounts_to_allowlist(&self, accounts: Option<Value>) -> RpcResult<String>;
    /// Removes accounts from the account allowlist and its file.
    #[method(name = "removeAccountsFromAllowlist")]
    async fn remove_accounts_from_allowlist(&self, accounts: Option<Value>) -> RpcResult<String>;
    /// The account allowlist (lowercase `0x` hex).
    #[method(name = "getAccountsAllowlist")]
    async fn accounts_allowlist(&self) -> RpcResult<Vec<String>>;
    /// Adds enode URLs to the node allowlist and its file.
    #[method(name = "addNodesToAllowlist")]
    async fn add_nodes_to_allowlist(&self, enodes: Option<Value>) -> RpcResult<String>;
    /// Removes enode URLs (not bootnodes or static nodes) from the node allowlist.
    #[method(name = "removeNodesFromAllowlist")]
    async fn remove_nodes_from_allowlist(&self, enodes: Option<Value>) -> RpcResult<String>;
    /// The node allowlist (enode URLs).
    #[method(name = "getNodesAllowlist")]
    async fn nodes_allowlist(&self) -> RpcResult<Vec<String>>;
    /// Re-reads both lists from their file(s); on error they stay as they were.
    #[method(name = "reloadPermissionsFromFile")]
    async fn reload_permissions_from_file(&self) -> RpcResult<String>;
}

/// Implementation of the `perm_` namespace.
#[derive(Debug, Clone)]
pub struct PermRpc {
    backend: Arc<RpcBackend>,
}

impl PermRpc {
    /// The namespace over `backend`'s local allowlists ([`RpcBackend::permissions`]).
    pub fn new(backend: Arc<RpcBackend>) -> Self {
        Self { backend }
    }

    /// The allowlists, when `kind` is enabled.
    fn enabled(&self, kind: AllowlistKind) -> RpcResult<Arc<LocalPermissions>> {
        let local = self.backend.permissions().filter(|local| match kind {
            AllowlistKind::Accounts => local.accounts_enabled(),
            AllowlistKind::Nodes => local.nodes_enabled(),
        });
        local.ok_or_else(|| server_error(not_enabled(kind)))
    }

    /// Runs a change off the async workers: it reads and writes the file, and a node
    /// change runs the connection re-check hook.
    async fn change(
        &self,
        kind: AllowlistKind,
        entries: Vec<String>,
        add: bool,
    ) -> RpcResult<String> {
        let local = self.enabled(kind)?;
        let result = tokio::task::spawn_blocking(move || match (kind, add) {
            (AllowlistKind::Accounts, true) => local.add_accounts(&entries),
            (AllowlistKind::Accounts, false) => local.remove_accounts(&entries),
            (AllowlistKind::Nodes, true) => local.add_nodes(&entries),
            (AllowlistKind::Nodes, false) => local.remove_nodes(&entries),
        })
        .await
        .map_err(internal)?;
        match result {
            Ok(()) => Ok(SUCCESS.to_string()),
            Err(err) => {
                tracing::info!(%err, "perm_ change refused or not persisted");
                Err(change_error(&err))
            }
        }
    }
}

fn not_enabled(kind: AllowlistKind) -> &'static str {
    match kind {
        AllowlistKind::Accounts => msg::ACCOUNTS_NOT_ENABLED,
        AllowlistKind::Nodes => msg::NODES_NOT_ENABLED,
    }
}

/// Besu's `StringListParameter`: one array of strings, else -32602 with the method's
/// message.
fn string_list(param: Option<Value>, kind: AllowlistKind) -> RpcResult<Vec<String>> {
    let message = match kind {
        AllowlistKind::Accounts => msg::ACCOUNT_PARAMS,
        AllowlistKind::Nodes => msg::ENODE_PARAMS,
    };
    let Some(Value::Array(items)) = param else {
        return Err(invalid_params(message));
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::String(text) => Ok(text),
            _ => Err(invalid_params(message)),
        })
        .collect()
}

/// A refused or unpersisted change as Besu answers it.
fn change_error(err: &ChangeError) -> ErrorObjectOwned {
    use AllowlistKind::{Accounts, Nodes};
    let message = match err {
        ChangeError::NotEnabled { kind } => not_enabled(*kind),
        ChangeError::Empty { kind: Accounts } => msg::ACCOUNTS_EMPTY,
        ChangeError::Empty { kind: Nodes } => msg::NODES_EMPTY,
        ChangeError::Invalid { kind: Accounts, .. } => msg::ACCOUNTS_INVALID,
        ChangeError::Invalid { kind: Nodes, .. } => msg::NODES_INVALID,
        ChangeError::Duplicate { kind: Accounts } => msg::ACCOUNTS_DUPLICATE,
        ChangeError::Duplicate { kind: Nodes } => msg::NODES_DUPLICATE,
        ChangeError::Existing { kind: Accounts, .. } => msg::ACCOUNTS_EXISTING,
        ChangeError::Existing { kind: Nodes, .. } => msg::NODES_EXISTING,
        ChangeError::Absent { kind: Accounts, .. } => msg::ACCOUNTS_ABSENT,
        ChangeError::Absent { kind: Nodes, .. } => msg::NODES_ABSENT,
        ChangeError::FixedNode { .. } => msg::NODES_FIXED,
        ChangeError::OutOfSync { .. } => msg::SYNC,
        ChangeError::Persist { .. } => msg::PERSIST,
    };
    server_error(message)
}

#[async_trait]
impl PermApiServer for PermRpc {
    async fn add_accounts_to_allowlist(&self, accounts: Option<Value>) -> RpcResult<String> {
        // Besu reads the params before looking at the list, so bad params win.
        let accounts = string_list(accounts, AllowlistKind::Accounts)?;
        self.change(AllowlistKind::Accounts, accounts, true).await
    }

    async fn remove_accounts_from_allowlist(&self, accounts: Option<Value>) -> RpcResult<String> {
        let accounts = string_list(accounts, AllowlistKind::Accounts)?;
        self.change(AllowlistKind::Accounts, accounts, false).await
    }

    async fn accounts_allowlist(&self) -> RpcResult<Vec<String>> {
        let local = self.enabled(AllowlistKind::Accounts)?;
        let accounts = local
            .accounts()
            .ok_or_else(|| server_error(msg::ACCOUNTS_NOT_ENABLED))?;
        Ok(accounts.iter().map(account_text).collect())
    }

    async fn add_nodes_to_allowlist(&self, enodes: Option<Value>) -> RpcResult<String> {
        let enodes = string_list(enodes, AllowlistKind::Nodes)?;
        self.change(AllowlistKind::Nodes, enodes, true).await
    }

    async fn remove_nodes_from_allowlist(&self, enodes: Option<Value>) -> RpcResult<String> {
        let enodes = string_list(enodes, AllowlistKind::Nodes)?;
        self.change(AllowlistKind::Nodes, enodes, false).await
    }

    async fn nodes_allowlist(&self) -> RpcResult<Vec<String>> {
        let local = self.enabled(AllowlistKind::Nodes)?;
        let nodes = local
            .nodes()
            .ok_or_else(|| server_error(msg::NODES_NOT_ENABLED))?;
        Ok(nodes.iter().map(ToString::to_string).collect())
    }

    async fn reload_permissions_from_file(&self) -> RpcResult<String> {
        let local = self
            .backend
            .permissions()
            .filter(|l| l.accounts_enabled() || l.nodes_enabled())
            .ok_or_else(|| server_error(msg::NOT_ENABLED))?;
        let result = tokio::task::spawn_blocking(move || local.reload())
            .await
            .map_err(internal)?;
        match result {
            Ok(()) => Ok(SUCCESS.to_string()),
            Err(err) => {
                tracing::warn!(%err, "reloading the permissions file failed; lists unchanged");
                Err(server_error(msg::RELOAD))
            }
        }
    }
}
