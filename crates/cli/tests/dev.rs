//! `healthchain dev` and `healthchain node` as an operator runs them: the banner, the dev
//! keys, Ctrl-C, and clear errors for bad configuration.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use healthchain_fixtures::DevAccount;

mod common;
use common::{block_number, dev_command, free_port};

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_healthchain"));
    cmd.env("RUST_LOG", "info").env_remove("RUST_BACKTRACE");
    cmd
}

#[test]
fn dev_keys_sign_for_funded_accounts() {
    let keys = healthchain_cli::dev_keys().unwrap();
    let genesis = healthchain_cli::dev_genesis().unwrap().genesis;
    assert_eq!(keys.accounts.len(), 20);
    assert_eq!(keys.validators.len(), 4);
    for (i, key) in keys.accounts.iter().enumerate() {
        assert!(healthchain_cli::key_matches(key), "account #{i}");
        assert_eq!(
            key.address,
            DevAccount::new(i as u64).address,
            "account #{i}"
        );
        let funded = genesis.alloc.get(&key.address).map(|a| a.balance);
        assert_eq!(
            funded,
            Some(alloy_primitives::U256::from(10u64).pow(alloy_primitives::U256::from(22u64))),
            "account #{i}"
        );
    }
    for key in &keys.validators {
        assert!(healthchain_cli::key_matches(key));
        let extra = genesis.extra_data.as_ref();
        assert!(
            extra.windows(20).any(|w| w == key.address.as_slice()),
            "validator {} missing from extraData",
            key.address
        );
    }
    assert_eq!(genesis.config.chain_id, 1337);
    assert!(genesis.config.zero_base_fee);
}

#[test]
fn dev_prints_the_accounts_serves_rpc_and_stops_on_sigint() {
    let dir = tempfile::tempdir().unwrap();
    let (http, ws) = (free_port(), free_port());
    let mut child = dev_command(dir.path(), http, ws)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let keys = healthchain_cli::dev_keys().unwrap();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Some(Ok(line)) = lines.next() {
        seen.push(line.clone());
        if line.starts_with("Press Ctrl-C") || Instant::now() > deadline {
            break;
        }
    }
    let text = seen.join("\n");
    assert!(text.contains(&format!("http://127.0.0.1:{http}")), "{text}");
    assert!(text.contains("PUBLIC TEST KEYS"), "{text}");
    assert!(
        text.contains("Validators (4 IBFT 2.0 nodes on loopback)"),
        "{text}"
    );
    for key in &keys.validators {
        assert!(
            text.contains(&key.address.to_string()),
            "validator {} missing:\n{text}",
            key.address
        );
    }
    for (i, key) in keys.accounts.iter().enumerate() {
        assert!(
            text.contains(&format!("Account #{i}: {}", key.address)),
            "account #{i} missing:\n{text}"
        );
        assert!(text.contains(&format!("Private Key: {}", key.private_key)));
    }

    // Blocks are sealed: the head moves.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if block_number(http).is_some_and(|n| n >= 2) {
            break;
        }
        assert!(Instant::now() < deadline, "dev chain sealed no blocks");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Ctrl-C: a clean exit.
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "dev did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "exit status {exit}");
    // Four validators, each with its own data directory.
    for i in 0..4 {
        assert!(dir.path().join(format!("node{i}/db")).exists(), "node{i}");
    }
}

#[test]
fn node_rejects_bad_config_files_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[rpc]\nhttp-adr = \"127.0.0.1:1\"\n", "http-adr"),
        ("[txpool]\nmin-gas-price = \"cheap\"\n", "min-gas-price"),
        (
            "[rpc]\napis = [\"eth\", \"bogus\"]\n[node]\ndatadir = \"d\"\n",
            "bogus",
        ),
        (
            "[node]\ngenesis = \"missing.json\"\ndatadir = \"d\"\n",
            "missing.json",
        ),
        ("not toml at all", "config"),
    ];
    for (text, needle) in cases {
        let path = dir.path().join("node.toml");
        std::fs::write(&path, text).unwrap();
        let out = bin()
            .args(["node", "--config", path.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{text:?} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{text:?}: {stderr}");
    }
    let out = bin()
        .args(["node", "--config", "/nonexistent/node.toml"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/node.toml"));
}
