//! The local allowlists against real files: Besu's load validation, change semantics,
//! persistence, out-of-sync detection and reload.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use alloy_primitives::Address;
use healthchain_permissioning::{
    AllowlistKind, ChangeError, EnodeUrl, LocalPermissions, LocalPermissionsConfig,
    LocalPermissionsError,
};

const A1: &str = "0xfe3b557e8fb62b89f4916b721be55ceb828dbd73";
const A2: &str = "0x627306090abab3a6e1400e9345bc60c78a8bef57";
const A3: &str = "0xf17f52151ebef6c7334fad080c5704d77216b732";

fn enode(byte: &str, host: &str, port: u16) -> String {
    format!("enode://{}@{host}:{port}", byte.repeat(64))
}

fn write(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("permissions_config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn both(path: &Path) -> LocalPermissionsConfig {
    LocalPermissionsConfig {
        accounts_file: Some(path.to_path_buf()),
        nodes_file: Some(path.to_path_buf()),
        fixed_nodes: Vec::new(),
    }
}

fn standard(dir: &Path) -> PathBuf {
    write(
        dir,
        &format!(
            "accounts-allowlist = [\"{A1}\", \"{A2}\"]\nnodes-allowlist = [\"{}\"]\n",
            enode("aa", "127.0.0.1", 30303)
        ),
    )
}

fn addr(text: &str) -> Address {
    text.parse().unwrap()
}

#[test]
fn missing_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = LocalPermissions::load(both(&dir.path().join("nope.toml"))).unwrap_err();
    assert!(
        matches!(err, LocalPermissionsError::FileMissing { .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("Configuration file does not exist: "),
        "{err}"
    );
}

#[test]
fn empty_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "# nothing here\n");
    let err = LocalPermissions::load(both(&path)).unwrap_err();
    assert!(
        matches!(err, LocalPermissionsError::EmptyToml { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("Empty TOML result"), "{err}");
}

#[test]
fn missing_key_of_an_enabled_list_names_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "nodes-allowlist = []\n");
    let err = LocalPermissions::load(both(&path)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "accounts-allowlist config option missing in TOML config file {}",
            path.display()
        )
    );
    // Only the node list enabled: the same file is fine.
    let nodes_only = LocalPermissionsConfig {
        accounts_file: None,
        ..both(&path)
    };
    let local = LocalPermissions::load(nodes_only).unwrap();
    assert!(!local.accounts_enabled());
    assert!(local.nodes_enabled());
    assert_eq!(local.nodes(), Some(Vec::new()));
}

#[test]
fn invalid_entries_are_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "accounts-allowlist = [\"fe3b557e8fb62b89f4916b721be55ceb828dbd73\"]\nnodes-allowlist = []\n",
    );
    let err = LocalPermissions::load(both(&path)).unwrap_err();
    assert!(
        matches!(err, LocalPermissionsError::InvalidAccount { .. }),
        "{err}"
    );
    assert!(err.to_string().starts_with("Invalid account fe3b"), "{err}");

    let path = write(
        dir.path(),
        "accounts-allowlist = []\nnodes-allowlist = [\"enode://12@1.2.3.4:1\"]\n",
    );
    let err = LocalPermissions::load(both(&path)).unwrap_err();
    assert!(
        matches!(err, LocalPermissionsError::InvalidEnode { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("nodes-allowlist"), "{err}");

    let path = write(
        dir.path(),
        "accounts-allowlist = [1]\nnodes-allowlist = []\n",
    );
    let err = LocalPermissions::load(both(&path)).unwrap_err();
    assert!(
        matches!(
            err,
            LocalPermissionsError::NotStringArray {
                key: AllowlistKind::Accounts,
                ..
            }
        ),
        "{err}"
    );

    let path = write(dir.path(), "accounts-allowlist = [\n");
    let err = LocalPermissions::load(both(&path)).unwrap_err();
    assert!(matches!(err, LocalPermissionsError::Toml { .. }), "{err}");
}

#[test]
fn fixed_nodes_must_be_allowlisted() {
    let dir = tempfile::tempdir().unwrap();
    let path = standard(dir.path());
    let listed: EnodeUrl = enode("aa", "127.0.0.1", 30303).parse().unwrap();
    let other: EnodeUrl = enode("aa", "127.0.0.1", 30304).parse().unwrap();
    let err = LocalPermissions::load(LocalPermissionsConfig {
        fixed_nodes: vec![listed.clone(), other.clone()],
        ..both(&path)
    })
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("Specified node(s) not in nodes-allowlist [{other}]")
    );
    LocalPermissions::load(LocalPermissionsConfig {
        fixed_nodes: vec![listed],
        ..both(&path)
    })
    .unwrap();
}

#[test]
fn empty_array_enables_the_list_with_nothing_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "accounts-allowlist = []\nnodes-allowlist = []\n",
    );
    let local = LocalPermissions::load(both(&path)).unwrap();
    assert!(!local.account_allowed(&addr(A1)));
    assert!(!local.node_allowed(&"aa".repeat(64), "127.0.0.1", Some(30303)));
}

#[test]
fn disabled_lists_allow_everything() {
    let local = LocalPermissions::load(LocalPermissionsConfig::default()).unwrap();
    assert!(!local.accounts_enabled() && !local.nodes_enabled());
    assert!(local.account_allowed(&addr(A1)));
    assert!(local.node_allowed(&"aa".repeat(64), "1.2.3.4", None));
    assert_eq!(local.accounts(), None);
    assert!(matches!(
        local.add_accounts(&[A1]),
        Err(ChangeError::NotEnabled {
            kind: AllowlistKind::Accounts
        })
    ));
    assert!(matches!(
        local.remove_nodes(&[enode("aa", "1.2.3.4", 1)]),
        Err(ChangeError::NotEnabled {
            kind: AllowlistKind::Nodes
        })
    ));
}

#[test]
fn accounts_match_case_insensitively() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "accounts-allowlist = [\"0xFE3B557E8Fb62b89F4916B721be55cEb828dBd73\"]\n",
    );
    let local = LocalPermissions::load(LocalPermissionsConfig {
        accounts_file: Some(path.clone()),
        ..Default::default()
    })
    .unwrap();
    assert!(local.account_allowed(&addr(A1)));
    assert!(!local.account_allowed(&addr(A2)));
    // Upper-case in a request is the same account.
    assert!(matches!(
        local.add_accounts(&[A1.to_uppercase().replace("0X", "0x")]),
        Err(ChangeError::Existing { .. })
    ));
    local
        .remove_accounts(&["0xFE3B557E8FB62B89F4916B721BE55CEB828DBD73"])
        .unwrap();
    assert_eq!(local.accounts(), Some(Vec::new()));
}

#[test]
fn account_changes_refuse_bad_requests_in_besus_order() {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalPermissions::load(both(&standard(dir.path()))).unwrap();
    let empty: [&str; 0] = [];
    assert!(matches!(
        local.add_accounts(&empty),
        Err(ChangeError::Empty { .. })
    ));
    assert!(matches!(
        local.add_accounts(&[A3, "0x1234"]),
        Err(ChangeError::Invalid { entry, .. }) if entry == "0x1234"
    ));
    assert!(matches!(
        local.add_accounts(&[A3, A3]),
        Err(ChangeError::Duplicate { .. })
    ));
    assert!(matches!(
        local.add_accounts(&[A3, A1]),
        Err(ChangeError::Existing { .. })
    ));
    assert!(matches!(
        local.remove_accounts(&[A3]),
        Err(ChangeError::Absent { .. })
    ));
    assert!(matches!(
        local.remove_accounts(&empty),
        Err(ChangeError::Empty { .. })
    ));
    // Nothing changed.
    assert_eq!(local.accounts(), Some(vec![addr(A1), addr(A2)]));
}

#[test]
fn account_changes_persist_across_a_reload_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = standard(dir.path());
    let local = LocalPermissions::load(both(&path)).unwrap();
    local.add_accounts(&[A3]).unwrap();
    local.remove_accounts(&[A1]).unwrap();
    assert!(local.account_allowed(&addr(A3)));
    assert!(!local.account_allowed(&addr(A1)));

    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains(&format!("accounts-allowlist=[\"{A2}\",\"{A3}\"]")),
        "{text}"
    );
    // The other key is kept.
    assert!(text.contains(&enode("aa", "127.0.0.1", 30303)), "{text}");

    let fresh = LocalPermissions::load(both(&path)).unwrap();
    assert_eq!(fresh.accounts(), Some(vec![addr(A2), addr(A3)]));
    assert_eq!(fresh.nodes(), local.nodes());
}

#[test]
fn node_changes_persist_and_notify() {
    let dir = tempfile::tempdir().unwrap();
    let path = standard(dir.path());
    let local = LocalPermissions::load(both(&path)).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    local.set_on_nodes_changed(Box::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
    }));

    let b = enode("bb", "10.0.0.2", 30303);
    let c = format!(
        "enode://{}@[2001:db8::1]:30305?discport=30306",
        "CC".repeat(64)
    );
    local.add_nodes(&[b.clone(), c.clone()]).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(local.node_allowed(&"bb".repeat(64), "10.0.0.2", Some(30303)));
    assert!(local.node_allowed(&"CC".repeat(64), "[2001:db8::1]", Some(30305)));

    let fresh = LocalPermissions::load(both(&path)).unwrap();
    let nodes: Vec<String> = fresh
        .nodes()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        nodes,
        vec![enode("aa", "127.0.0.1", 30303), b.clone(), c.to_lowercase()]
    );
    assert_eq!(fresh.accounts(), Some(vec![addr(A1), addr(A2)]));

    local.remove_nodes(&[b]).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(!local.node_allowed(&"bb".repeat(64), "10.0.0.2", Some(30303)));
    // A refused request does not notify.
    assert!(local.add_nodes(&["junk"]).is_err());
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn node_changes_refuse_bad_requests() {
    let dir = tempfile::tempdir().unwrap();
    let path = standard(dir.path());
    let fixed: EnodeUrl = enode("aa", "127.0.0.1", 30303).parse().unwrap();
    let local = LocalPermissions::load(LocalPermissionsConfig {
        fixed_nodes: vec![fixed.clone()],
        ..both(&path)
    })
    .unwrap();
    let b = enode("bb", "10.0.0.2", 30303);
    let empty: [&str; 0] = [];
    assert!(matches!(
        local.add_nodes(&empty),
        Err(ChangeError::Empty { .. })
    ));
    assert!(matches!(
        local.add_nodes(&["enode://xyz"]),
        Err(ChangeError::Invalid { .. })
    ));
    // The same endpoint with another discovery port is still a duplicate.
    assert!(matches!(
        local.add_nodes(&[b.clone(), format!("{b}?discport=1")]),
        Err(ChangeError::Duplicate { .. })
    ));
    assert!(matches!(
        local.add_nodes(&[fixed.to_string()]),
        Err(ChangeError::Existing { .. })
    ));
    assert!(matches!(
        local.remove_nodes(std::slice::from_ref(&b)),
        Err(ChangeError::Absent { .. })
    ));
    assert!(matches!(
        local.remove_nodes(&[fixed.to_string()]),
        Err(ChangeError::FixedNode { node }) if node == fixed
    ));
    assert_eq!(local.nodes(), Some(vec![fixed]));
}

#[test]
fn node_matching_uses_id_host_and_port_or_id_and_host_inbound() {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalPermissions::load(both(&standard(dir.path()))).unwrap();
    let id = "aa".repeat(64);
    assert!(local.node_allowed(&id, "127.0.0.1", Some(30303)));
    assert!(local.node_allowed(&id.to_uppercase(), "127.0.0.1", Some(30303)));
    assert!(local.node_allowed(&format!("0x{id}"), "127.0.0.1", Some(30303)));
    assert!(!local.node_allowed(&id, "127.0.0.1", Some(30304)));
    assert!(!local.node_allowed(&id, "127.0.0.2", Some(30303)));
    assert!(!local.node_allowed(&"ab".repeat(64), "127.0.0.1", Some(30303)));
    // Inbound: the listening port is unknown, id and host decide.
    assert!(local.node_allowed(&id, "127.0.0.1", None));
    assert!(local.node_allowed(&id, "::ffff:127.0.0.1", None));
    assert!(!local.node_allowed(&id, "127.0.0.2", None));
}

#[test]
fn out_of_sync_file_keeps_the_change_in_memory_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = standard(dir.path());
    let local = LocalPermissions::load(both(&path)).unwrap();
    // Someone edits the file behind the node's back.
    let edited = format!(
        "accounts-allowlist = [\"{A1}\"]\nnodes-allowlist = [\"{}\"]\n",
        enode("aa", "127.0.0.1", 30303)
    );
    std::fs::write(&path, &edited).unwrap();
    let err = local.add_accounts(&[A3]).unwrap_err();
    assert!(
        matches!(&err, ChangeError::OutOfSync { kind: AllowlistKind::Accounts, path: p } if p == &path),
        "{err}"
    );
    assert!(local.account_allowed(&addr(A3)));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), edited);
    // A removed key is out of sync too.
    std::fs::write(&path, format!("accounts-allowlist = [\"{A1}\"]\n")).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    local.set_on_nodes_changed(Box::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
    }));
    let b = enode("bb", "10.0.0.2", 1);
    assert!(matches!(
        local.add_nodes(&[b]),
        Err(ChangeError::OutOfSync {
            kind: AllowlistKind::Nodes,
            ..
        })
    ));
    assert!(local.node_allowed(&"bb".repeat(64), "10.0.0.2", Some(1)));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn read_only_file_reverts_the_change() {
    let dir = tempfile::tempdir().unwrap();
    let path = standard(dir.path());
    let before = std::fs::read_to_string(&path).unwrap();
    let local = LocalPermissions::load(both(&path)).unwrap();
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&path, perms.clone()).unwrap();

    let err = local.add_accounts(&[A3]).unwrap_err();
    assert!(
        matches!(
            err,
            ChangeError::Persist {
                kind: AllowlistKind::Accounts,
                ..
            }
        ),
        "{err}"
    );
    assert!(!local.account_allowed(&addr(A3)));
    assert_eq!(local.accounts(), Some(vec![addr(A1), addr(A2)]));
    let err = local.add_nodes(&[enode("bb", "10.0.0.2", 1)]).unwrap_err();
    assert!(
        matches!(
            err,
            ChangeError::Persist {
                kind: AllowlistKind::Nodes,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(local.nodes().map(|n| n.len()), Some(1));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
    // No temporary file is left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&path, perms).unwrap();
    local.add_accounts(&[A3]).unwrap();
}

#[test]
fn deleted_file_reverts_the_change() {
    let dir = tempfile::tempdir().unwrap();
    let path = standard(dir.path());
    let local = LocalPermissions::load(both(&path)).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(
        local.remove_accounts(&[A1]),
        Err(ChangeError::Persist { .. })
    ));
    assert!(local.account_allowed(&addr(A1)));
}

#[test]
fn reload_picks_up_edits_and_reverts_on_a_broken_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = standard(dir.path());
    let local = LocalPermissions::load(both(&path)).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    local.set_on_nodes_changed(Box::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
    }));

    let b = enode("bb", "10.0.0.2", 30303);
    std::fs::write(
        &path,
        format!("accounts-allowlist = [\"{A3}\"]\nnodes-allowlist = [\"{b}\"]\n"),
    )
    .unwrap();
    local.reload().unwrap();
    assert_eq!(local.accounts(), Some(vec![addr(A3)]));
    assert_eq!(local.nodes(), Some(vec![b.parse().unwrap()]));
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // The account list is fine, the node list is not: neither changes.
    std::fs::write(
        &path,
        format!("accounts-allowlist = [\"{A1}\"]\nnodes-allowlist = [\"bad\"]\n"),
    )
    .unwrap();
    assert!(matches!(
        local.reload(),
        Err(LocalPermissionsError::InvalidEnode { .. })
    ));
    assert_eq!(local.accounts(), Some(vec![addr(A3)]));
    assert_eq!(local.nodes(), Some(vec![b.parse().unwrap()]));
    std::fs::write(&path, "").unwrap();
    assert!(matches!(
        local.reload(),
        Err(LocalPermissionsError::EmptyToml { .. })
    ));
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(
        local.reload(),
        Err(LocalPermissionsError::FileMissing { .. })
    ));
    assert_eq!(local.accounts(), Some(vec![addr(A3)]));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn separate_files_are_written_separately() {
    let dir = tempfile::tempdir().unwrap();
    let accounts = dir.path().join("accounts.toml");
    let nodes = dir.path().join("nodes.toml");
    std::fs::write(
        &accounts,
        format!("# accounts\naccounts-allowlist = [\n  \"{A1}\",\n]\n[extra]\nkept = true\n"),
    )
    .unwrap();
    std::fs::write(&nodes, "nodes-allowlist = []\n").unwrap();
    let local = LocalPermissions::load(LocalPermissionsConfig {
        accounts_file: Some(accounts.clone()),
        nodes_file: Some(nodes.clone()),
        fixed_nodes: Vec::new(),
    })
    .unwrap();
    local.add_accounts(&[A2]).unwrap();
    local.add_nodes(&[enode("bb", "10.0.0.2", 1)]).unwrap();
    assert_eq!(
        std::fs::read_to_string(&accounts).unwrap(),
        format!("# accounts\naccounts-allowlist=[\"{A1}\",\"{A2}\"]\n[extra]\nkept = true\n")
    );
    assert_eq!(
        std::fs::read_to_string(&nodes).unwrap(),
        format!("nodes-allowlist=[\"{}\"]\n", enode("bb", "10.0.0.2", 1))
    );
}

#[test]
fn enode_parses_what_display_writes() {
    let text = format!(
        "enode://{}@192.168.0.9:30303?discport=30301",
        "6F".repeat(64)
    );
    let url: EnodeUrl = text.parse().unwrap();
    assert_eq!(url.id, "6f".repeat(64));
    assert_eq!(url.host, "192.168.0.9");
    assert_eq!(url.port, 30303);
    assert_eq!(url.discport, Some(30301));
    assert_eq!(url.to_string().parse::<EnodeUrl>().unwrap(), url);
}
