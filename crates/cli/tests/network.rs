//! Real `healthchain node` processes on 127.0.0.1, set up with `healthchain genesis new`:
//! agreement, tolerance of one validator down, halting at two and resuming, kill -9 in the
//! middle of commits, a late node syncing and being voted in, a validator voted out, a
//! validator catching up after missing many blocks, metrics and the admin/ibft RPC.
//!
//! Waits are bounded; every failure prints the tail of each node's log.

use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;
use common::net::{MINUTE, Net, bin};

#[test]
fn four_validators_agree_keep_going_with_three_stop_at_two_and_resume() {
    let mut net = Net::new(4, 0, 250);
    for i in 0..4 {
        net.start(i);
    }
    net.wait_head(&[0, 1, 2, 3], 8, MINUTE);
    // Blocks come on the 250 ms period: 20 blocks in well under 20 s.
    let (h0, t0) = (net.head(0).unwrap(), Instant::now());
    net.wait_head(&[0], h0 + 20, MINUTE);
    let per_block = t0.elapsed() / 20;
    assert!(
        per_block < Duration::from_millis(700),
        "{per_block:?} per block at a 250 ms period"
    );
    let common = (0..4).filter_map(|i| net.head(i)).min().unwrap();
    net.assert_same_chain(&[0, 1, 2, 3], common);

    // One validator down: blocks go on.
    net.stop(3);
    let h = net.head(0).unwrap();
    net.wait_head(&[0, 1, 2], h + 10, MINUTE);

    // Two down: no quorum, no blocks.
    net.stop(2);
    std::thread::sleep(Duration::from_secs(2));
    let stalled = net.head(0).unwrap();
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        net.head(0).unwrap() <= stalled + 1,
        "blocks without a quorum"
    );

    // Both back: blocks resume within a few periods, with no operator action.
    net.start(2);
    net.start(3);
    net.wait_head(&[0, 1, 2, 3], stalled + 5, MINUTE);
    let common = (0..4).filter_map(|i| net.head(i)).min().unwrap();
    net.assert_same_chain(&[0, 1, 2, 3], common);

    // The operator-facing RPC and metrics.
    net.wait("3 peers each", MINUTE, |net| {
        (0..4).all(|i| net.try_rpc(i, "net_peerCount", json!([])) == Some(json!("0x3")))
    });
    let info = net.rpc(0, "admin_nodeInfo", json!([]));
    let enode = info["enode"].as_str().unwrap();
    let config = std::fs::read_to_string(net.nodes[1].dir.join("config.toml")).unwrap();
    assert!(
        config.contains(enode),
        "node 1's config does not list node 0 as {enode}"
    );
    assert_eq!(info["id"].as_str().unwrap().len(), 128);
    let peers = net.rpc(0, "admin_peers", json!([]));
    assert_eq!(peers.as_array().unwrap().len(), 3, "{peers}");
    let metrics = ureq_get(net.nodes[0].metrics, "/metrics");
    for name in [
        "healthchain_chain_head",
        "healthchain_consensus_round_changes_total",
        "healthchain_proposal_to_commit_ms_count",
        "healthchain_p2p_peers 3",
        "healthchain_sync_distance",
    ] {
        assert!(
            metrics.contains(name),
            "{name} missing from metrics:\n{metrics}"
        );
    }
    // From block 1: Besu counts genesis too, under its coinbase (0x0).
    let signers = net.rpc(0, "ibft_getSignerMetrics", json!(["0x1", "latest"]));
    let signers = signers.as_array().unwrap();
    assert_eq!(signers.len(), 4, "{signers:?}");
    assert!(
        signers
            .iter()
            .all(|s| s["proposedBlockCount"] != json!("0x0"))
    );
    for i in 0..4 {
        net.stop(i);
    }
}

fn ureq_get(port: u16, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn a_validator_killed_mid_commit_rejoins_without_a_fork() {
    let mut net = Net::new(4, 0, 250);
    for i in 0..4 {
        net.start(i);
    }
    net.wait_head(&[0, 1, 2, 3], 5, MINUTE);
    for round in 0..3 {
        // kill -9 at varying points of the block cycle.
        std::thread::sleep(Duration::from_millis(90 * round + 40));
        net.kill9(1);
        let h = net.head(0).unwrap();
        net.wait_head(&[0, 2, 3], h + 4, MINUTE);
        net.start(1);
        let h = net.head(0).unwrap();
        net.wait_head(&[1], h, MINUTE);
    }
    let h = net.head(0).unwrap();
    net.wait_head(&[0, 1, 2, 3], h + 4, MINUTE);
    let common = (0..4).filter_map(|i| net.head(i)).min().unwrap();
    net.assert_same_chain(&[0, 1, 2, 3], common);
    // It signs again: its seal is in some block after it rejoined.
    let me = net.address(1);
    net.wait("node 1 proposing again", MINUTE, |net| {
        let head = net.head(0).unwrap_or(0);
        (head.saturating_sub(8)..=head).any(|n| net.block(0, n)["miner"].as_str() == Some(&me))
    });
}

#[test]
fn a_late_node_syncs_is_voted_in_and_signs_and_a_voted_out_validator_stops() {
    let mut net = Net::new(4, 1, 250);
    for i in 0..4 {
        net.start(i);
    }
    net.wait_head(&[0], 40, MINUTE);
    // A follower started late catches up and serves RPC.
    net.start(4);
    let target = net.head(0).unwrap();
    net.wait_head(&[4], target, MINUTE);
    net.assert_same_chain(&[0, 4], target);
    let newcomer = net.address(4);
    assert!(!net.validators(0).contains(&newcomer));

    // Voted in by a majority of the four.
    for i in 0..3 {
        assert_eq!(
            net.rpc(i, "ibft_proposeValidatorVote", json!([newcomer, true])),
            json!(true)
        );
    }
    let pending = net.rpc(0, "ibft_getPendingVotes", json!([]));
    assert_eq!(pending[&newcomer], json!(true), "{pending}");
    net.wait("the newcomer voted in", MINUTE, |net| {
        net.validators(0).contains(&newcomer)
    });
    for i in 0..3 {
        net.rpc(i, "ibft_discardValidatorVote", json!([newcomer]));
    }
    // It proposes blocks now.
    net.wait("the newcomer proposing", MINUTE, |net| {
        let head = net.head(0).unwrap_or(0);
        (head.saturating_sub(10)..=head)
            .any(|n| net.block(0, n)["miner"].as_str() == Some(&newcomer))
    });

    // Validator 3 voted out by a majority of the five; afterwards it is never the proposer.
    let leaving = net.address(3);
    for i in [0, 1, 2] {
        net.rpc(i, "ibft_proposeValidatorVote", json!([leaving, false]));
    }
    net.wait("validator 3 voted out", MINUTE, |net| {
        !net.validators(0).contains(&leaving)
    });
    let removed_at = net.head(0).unwrap();
    net.stop(3);
    net.wait_head(&[0, 1, 2, 4], removed_at + 12, MINUTE);
    let head = net.head(0).unwrap();
    for n in removed_at + 2..=head {
        assert_ne!(
            net.block(0, n)["miner"].as_str(),
            Some(leaving.as_str()),
            "block {n}"
        );
    }
    assert_eq!(net.validators(0).len(), 4);
}

#[test]
fn a_validator_that_missed_many_blocks_catches_up_and_signs() {
    let missed: u64 = std::env::var("HC_MISSED_BLOCKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let mut net = Net::new(4, 0, 100);
    for i in 0..4 {
        net.start(i);
    }
    net.wait_head(&[0, 1, 2, 3], 5, MINUTE);
    net.stop(3);
    let stopped_at = net.head(0).unwrap();
    let started = Instant::now();
    net.wait_head(&[0], stopped_at + missed, Duration::from_secs(600));
    eprintln!(
        "{missed} blocks in {:?} with three validators at a 100 ms period",
        started.elapsed()
    );
    net.start(3);
    let target = net.head(0).unwrap();
    let t0 = Instant::now();
    net.wait_head(&[3], target, Duration::from_secs(300));
    eprintln!(
        "caught up {} blocks in {:?}",
        target - stopped_at,
        t0.elapsed()
    );
    let me = net.address(3);
    net.wait("the returning validator proposing", MINUTE, |net| {
        let head = net.head(0).unwrap_or(0);
        (head.saturating_sub(8)..=head).any(|n| net.block(0, n)["miner"].as_str() == Some(&me))
    });
    net.assert_same_chain(&[0, 3], target.min(stopped_at + 50));
}

#[test]
fn genesis_new_refuses_bad_input_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net");
    for args in [
        vec!["--validators", "0"],
        vec!["--validators", "65"],
        vec!["--validators", "2", "--fund", "nonsense"],
        vec!["--validators", "2", "--block-period-ms", "0"],
    ] {
        let mut cmd = Command::new(bin());
        cmd.args(["genesis", "new", "--out", out.to_str().unwrap()])
            .args(&args);
        let output = cmd.output().unwrap();
        assert!(!output.status.success(), "{args:?} accepted");
        assert!(!out.exists(), "{args:?} left {}", out.display());
    }
    // An existing non-empty directory is refused and kept.
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("keep.txt"), "x").unwrap();
    let output = Command::new(bin())
        .args([
            "genesis",
            "new",
            "--validators",
            "2",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not empty"));
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1);
    // The generated genesis is what `besu rlp encode` would write for its validators.
    let good = dir.path().join("good");
    let output = Command::new(bin())
        .args([
            "genesis",
            "new",
            "--validators",
            "3",
            "--out",
            good.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(output.status.success());
    let genesis: Value =
        serde_json::from_str(&std::fs::read_to_string(good.join("genesis.json")).unwrap()).unwrap();
    let mut addresses: Vec<String> = (0..3)
        .map(|i| {
            let key = std::fs::read_to_string(good.join(format!("node{i}/key"))).unwrap();
            format!(
                "{:#x}",
                healthchain_node::key_from_hex(&key).unwrap().address()
            )
        })
        .collect();
    addresses.sort();
    let list = good.join("validators.json");
    std::fs::write(&list, serde_json::to_string(&addresses).unwrap()).unwrap();
    let encoded = Command::new(bin())
        .args(["rlp", "encode", "--from", list.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&encoded.stdout).trim(),
        genesis["extraData"].as_str().unwrap()
    );
    assert!(genesis["config"]["ibft2"]["blockperiodseconds"].is_u64());
}
