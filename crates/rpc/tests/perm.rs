//! The `perm_` namespace through the RPC module (no server): Besu's results, codes and
//! messages, and the allowlist file it writes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use healthchain_fixtures::{Workload, generate_chain, genesis};
use healthchain_permissioning::{EnodeUrl, LocalPermissions, LocalPermissionsConfig};
use healthchain_rpc::{ChainEvents, RpcBackend, RpcConfig, Standalone};
use healthchain_storage_api::MemoryStore;
use healthchain_txpool::{PoolConfig, SharedPool};
use jsonrpsee::RpcModule;
use serde_json::{Value, json};

const A1: &str = "0xfe3b557e8fb62b89f4916b721be55ceb828dbd73";
const A2: &str = "0x627306090abab3a6e1400e9345bc60c78a8bef57";
const A3: &str = "0xf17f52151ebef6c7334fad080c5704d77216b732";

const PERSIST: &str = "Unable to persist changes to allowlist configuration file. Changes reverted";
const SYNC: &str = "The permissioning allowlist configuration file is out of sync.  The changes have been applied, but not persisted to disk";
const RELOAD: &str = "Error reloading permissions file. Please use perm_getAccountsAllowlist and perm_getNodesAllowlist to review the current state of the allowlists";

fn enode(byte: &str, host: &str, port: u16) -> String {
    format!("enode://{}@{host}:{port}", byte.repeat(64))
}

fn backend(apis: &[&str], permissions: Option<Arc<LocalPermissions>>) -> Arc<RpcBackend> {
    let store = Arc::new(MemoryStore::default());
    generate_chain(store.as_ref(), 1, 0, 0, Workload::Transfers);
    let chain = Arc::new(genesis(1).config);
    let pool = Arc::new(SharedPool::new(PoolConfig::default(), store.as_ref(), &chain).unwrap());
    let config = RpcConfig {
        apis: apis.iter().map(|a| a.to_string()).collect(),
        ..RpcConfig::default()
    };
    let backend = RpcBackend {
        store,
        chain,
        pool,
        events: ChainEvents::new(16),
        config,
        node: Arc::new(Standalone),
        tx_gossip: None,
        votes: None,
        client_version: "healthchain/test".into(),
    };
    Arc::new(backend.with_permissions(permissions))
}

fn module(permissions: Option<Arc<LocalPermissions>>) -> RpcModule<()> {
    healthchain_rpc::module(backend(&["perm"], permissions)).unwrap()
}

/// A file with both lists, both enabled, `fixed` as bootnodes.
fn setup(dir: &Path, fixed: &[&str]) -> (PathBuf, Arc<LocalPermissions>) {
    let path = dir.join("permissions_config.toml");
    std::fs::write(
        &path,
        format!(
            "accounts-allowlist = [\"{A1}\", \"{A2}\"]\nnodes-allowlist = [\"{}\"]\n",
            enode("aa", "127.0.0.1", 30303)
        ),
    )
    .unwrap();
    let local = LocalPermissions::load(LocalPermissionsConfig {
        accounts_file: Some(path.clone()),
        nodes_file: Some(path.clone()),
        fixed_nodes: fixed
            .iter()
            .map(|f| f.parse::<EnodeUrl>().unwrap())
            .collect(),
    })
    .unwrap();
    (path, Arc::new(local))
}

/// The whole response of one call.
async fn request(module: &RpcModule<()>, method: &str, params: Value) -> Value {
    let req = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
    let (response, _) = module.raw_json_request(&req, 1).await.unwrap();
    serde_json::from_str(response.get()).unwrap()
}

async fn ok(module: &RpcModule<()>, method: &str, params: Value) -> Value {
    let response = request(module, method, params).await;
    assert!(response.get("error").is_none(), "{method}: {response}");
    response["result"].clone()
}

async fn err(module: &RpcModule<()>, method: &str, params: Value) -> (i64, String) {
    let response = request(module, method, params).await;
    let error = &response["error"];
    assert!(error.is_object(), "{method}: {response}");
    (
        error["code"].as_i64().unwrap(),
        error["message"].as_str().unwrap().to_string(),
    )
}

fn server(message: &str) -> (i64, String) {
    (-32000, message.to_string())
}

#[tokio::test]
async fn perm_is_known_but_not_a_default_api() {
    assert!(healthchain_rpc::KNOWN_APIS.contains(&"perm"));
    assert!(!RpcConfig::default().apis.iter().any(|a| a == "perm"));
    let without = healthchain_rpc::module(backend(&["eth"], None)).unwrap();
    assert!(without.method("perm_getAccountsAllowlist").is_none());
    let with = module(None);
    for method in [
        "perm_addAccountsToAllowlist",
        "perm_removeAccountsFromAllowlist",
        "perm_getAccountsAllowlist",
        "perm_addNodesToAllowlist",
        "perm_removeNodesFromAllowlist",
        "perm_getNodesAllowlist",
        "perm_reloadPermissionsFromFile",
    ] {
        assert!(with.method(method).is_some(), "{method}");
    }
}

#[tokio::test]
async fn disabled_lists_answer_not_enabled() {
    for permissions in [
        None,
        Some(Arc::new(
            LocalPermissions::load(LocalPermissionsConfig::default()).unwrap(),
        )),
    ] {
        let m = module(permissions);
        let accounts = server("Account allowlist has not been enabled");
        let nodes = server("Node allowlist has not been enabled");
        assert_eq!(
            err(&m, "perm_getAccountsAllowlist", json!([])).await,
            accounts
        );
        assert_eq!(
            err(&m, "perm_addAccountsToAllowlist", json!([[A3]])).await,
            accounts
        );
        assert_eq!(
            err(&m, "perm_removeAccountsFromAllowlist", json!([[A1]])).await,
            accounts
        );
        assert_eq!(err(&m, "perm_getNodesAllowlist", json!([])).await, nodes);
        let b = enode("bb", "10.0.0.2", 1);
        assert_eq!(
            err(&m, "perm_addNodesToAllowlist", json!([[b]])).await,
            nodes
        );
        assert_eq!(
            err(&m, "perm_removeNodesFromAllowlist", json!([[b]])).await,
            nodes
        );
        assert_eq!(
            err(&m, "perm_reloadPermissionsFromFile", json!([])).await,
            server("Node/Account allowlist has not been enabled")
        );
    }
}

#[tokio::test]
async fn only_the_enabled_list_answers() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = setup(dir.path(), &[]);
    let local = LocalPermissions::load(LocalPermissionsConfig {
        nodes_file: Some(path),
        ..Default::default()
    })
    .unwrap();
    let m = module(Some(Arc::new(local)));
    assert_eq!(
        err(&m, "perm_getAccountsAllowlist", json!([])).await,
        server("Account allowlist has not been enabled")
    );
    assert_eq!(
        ok(&m, "perm_getNodesAllowlist", json!([])).await,
        json!([enode("aa", "127.0.0.1", 30303)])
    );
    assert_eq!(
        ok(&m, "perm_reloadPermissionsFromFile", json!([])).await,
        json!("Success")
    );
}

#[tokio::test]
async fn account_methods_succeed_and_persist() {
    let dir = tempfile::tempdir().unwrap();
    let (path, local) = setup(dir.path(), &[]);
    let m = module(Some(local.clone()));
    assert_eq!(
        ok(&m, "perm_getAccountsAllowlist", json!([])).await,
        json!([A1, A2])
    );
    let upper = format!("0x{}", A3[2..].to_uppercase());
    assert_eq!(
        ok(&m, "perm_addAccountsToAllowlist", json!([[upper]])).await,
        json!("Success")
    );
    assert_eq!(
        ok(&m, "perm_removeAccountsFromAllowlist", json!([[A1]])).await,
        json!("Success")
    );
    assert_eq!(
        ok(&m, "perm_getAccountsAllowlist", json!([])).await,
        json!([A2, A3])
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains(&format!("accounts-allowlist=[\"{A2}\",\"{A3}\"]")),
        "{text}"
    );
    assert!(text.contains(&enode("aa", "127.0.0.1", 30303)), "{text}");
}

#[tokio::test]
async fn account_methods_refuse_with_besus_messages() {
    let dir = tempfile::tempdir().unwrap();
    let (_, local) = setup(dir.path(), &[]);
    let m = module(Some(local));
    let add = "perm_addAccountsToAllowlist";
    let remove = "perm_removeAccountsFromAllowlist";
    assert_eq!(
        err(&m, add, json!([[]])).await,
        server("Request contains an empty list of accounts")
    );
    assert_eq!(
        err(&m, add, json!([["0x12"]])).await,
        server("Request contains an invalid account")
    );
    assert_eq!(
        err(&m, add, json!([[A3, A3]])).await,
        server("Request contains duplicate accounts")
    );
    assert_eq!(
        err(&m, add, json!([[A1]])).await,
        server("Cannot add an existing account to allowlist")
    );
    assert_eq!(
        err(&m, remove, json!([[A3]])).await,
        server("Cannot remove an absent account from allowlist")
    );
    assert_eq!(
        err(&m, remove, json!([[]])).await,
        server("Request contains an empty list of accounts")
    );
    let params = (-32602, "Invalid account params".to_string());
    assert_eq!(err(&m, add, json!([A3])).await, params);
    assert_eq!(err(&m, add, json!([[1, 2]])).await, params);
    assert_eq!(err(&m, add, json!([])).await, params);
    assert_eq!(err(&m, remove, json!(["x"])).await, params);
}

#[tokio::test]
async fn node_methods_succeed_and_persist() {
    let dir = tempfile::tempdir().unwrap();
    let (path, local) = setup(dir.path(), &[]);
    let m = module(Some(local.clone()));
    let b = enode("bb", "10.0.0.2", 30303);
    let c = format!(
        "enode://{}@[2001:db8::1]:30305?discport=30306",
        "cc".repeat(64)
    );
    assert_eq!(
        ok(&m, "perm_addNodesToAllowlist", json!([[b, c]])).await,
        json!("Success")
    );
    assert!(local.node_allowed(&"bb".repeat(64), "10.0.0.2", Some(30303)));
    assert_eq!(
        ok(
            &m,
            "perm_removeNodesFromAllowlist",
            json!([[enode("aa", "127.0.0.1", 30303)]])
        )
        .await,
        json!("Success")
    );
    assert_eq!(
        ok(&m, "perm_getNodesAllowlist", json!([])).await,
        json!([b, c])
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains(&format!("nodes-allowlist=[\"{b}\",\"{c}\"]")),
        "{text}"
    );
    assert!(text.contains(A1), "{text}");
}

#[tokio::test]
async fn node_methods_refuse_with_besus_messages() {
    let dir = tempfile::tempdir().unwrap();
    let fixed = enode("aa", "127.0.0.1", 30303);
    let (_, local) = setup(dir.path(), &[&fixed]);
    let m = module(Some(local));
    let add = "perm_addNodesToAllowlist";
    let remove = "perm_removeNodesFromAllowlist";
    let b = enode("bb", "10.0.0.2", 30303);
    assert_eq!(
        err(&m, add, json!([[]])).await,
        server("Request contains an empty list of nodes")
    );
    assert_eq!(
        err(&m, add, json!([["enode://12@1.2.3.4:1"]])).await,
        server("Request contains an invalid node")
    );
    assert_eq!(
        err(&m, add, json!([[b, b]])).await,
        server("Request contains duplicate nodes")
    );
    assert_eq!(
        err(&m, add, json!([[fixed]])).await,
        server("Cannot add an existing node to allowlist")
    );
    assert_eq!(
        err(&m, remove, json!([[b]])).await,
        server("Cannot remove an absent node from allowlist")
    );
    assert_eq!(
        err(&m, remove, json!([[fixed]])).await,
        server("Cannot remove a fixed node (bootnode or static node) from allowlist")
    );
    let params = (-32602, "Invalid enode params".to_string());
    assert_eq!(err(&m, add, json!([b])).await, params);
    assert_eq!(err(&m, remove, json!([[{}]])).await, params);
    assert_eq!(err(&m, remove, json!([])).await, params);
}

#[tokio::test]
async fn out_of_sync_and_persist_failures_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (path, local) = setup(dir.path(), &[]);
    let m = module(Some(local.clone()));
    std::fs::write(
        &path,
        format!("accounts-allowlist = [\"{A1}\"]\nnodes-allowlist = []\n"),
    )
    .unwrap();
    assert_eq!(
        err(&m, "perm_addAccountsToAllowlist", json!([[A3]])).await,
        server(SYNC)
    );
    // Applied in memory.
    assert_eq!(
        ok(&m, "perm_getAccountsAllowlist", json!([])).await,
        json!([A1, A2, A3])
    );

    // The file back in sync but read-only: reverted.
    std::fs::write(
        &path,
        format!(
            "accounts-allowlist = [\"{A1}\",\"{A2}\",\"{A3}\"]\nnodes-allowlist = [\"{}\"]\n",
            enode("aa", "127.0.0.1", 30303)
        ),
    )
    .unwrap();
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&path, perms).unwrap();
    assert_eq!(
        err(&m, "perm_removeAccountsFromAllowlist", json!([[A1]])).await,
        server(PERSIST)
    );
    assert_eq!(
        ok(&m, "perm_getAccountsAllowlist", json!([])).await,
        json!([A1, A2, A3])
    );
    assert_eq!(
        err(
            &m,
            "perm_addNodesToAllowlist",
            json!([[enode("bb", "10.0.0.2", 1)]])
        )
        .await,
        server(PERSIST)
    );
    assert_eq!(
        ok(&m, "perm_getNodesAllowlist", json!([])).await,
        json!([enode("aa", "127.0.0.1", 30303)])
    );
}

#[tokio::test]
async fn reload_reads_the_file_and_keeps_the_lists_on_error() {
    let dir = tempfile::tempdir().unwrap();
    let (path, local) = setup(dir.path(), &[]);
    let m = module(Some(local));
    let b = enode("bb", "10.0.0.2", 30303);
    std::fs::write(
        &path,
        format!("accounts-allowlist = [\"{A3}\"]\nnodes-allowlist = [\"{b}\"]\n"),
    )
    .unwrap();
    assert_eq!(
        ok(&m, "perm_reloadPermissionsFromFile", json!([])).await,
        json!("Success")
    );
    assert_eq!(
        ok(&m, "perm_getAccountsAllowlist", json!([])).await,
        json!([A3])
    );
    assert_eq!(
        ok(&m, "perm_getNodesAllowlist", json!([])).await,
        json!([b])
    );

    std::fs::write(
        &path,
        "accounts-allowlist = [\"nope\"]\nnodes-allowlist = []\n",
    )
    .unwrap();
    assert_eq!(
        err(&m, "perm_reloadPermissionsFromFile", json!([])).await,
        server(RELOAD)
    );
    assert_eq!(
        ok(&m, "perm_getAccountsAllowlist", json!([])).await,
        json!([A3])
    );
    assert_eq!(
        ok(&m, "perm_getNodesAllowlist", json!([])).await,
        json!([b])
    );
}
