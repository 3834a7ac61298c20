//! On-chain permissioning across real `healthchain node` processes on 127.0.0.1, from a
//! permissioned `healthchain genesis new`:
//! - a node outside the node rules cannot peer or get blocks; an admin adds it and it
//!   connects and syncs; the admin removes it and it is disconnected;
//! - a sender outside the account rules is refused over JSON-RPC (-32007); a byzantine
//!   validator that admits it anyway and proposes it has its blocks rejected by the others,
//!   and the chain goes on without it.
//!
//! Waits are bounded; every failure prints the tail of each node's log.

use std::time::Duration;

use alloy_consensus::{TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, TxKind, U256};
use serde_json::{Value, json};

mod common;
use common::net::{MINUTE, Net, bin};
use common::{free_port_run, rpc_response};

/// Account #0 of the development keys: the permissioning admin of these networks.
fn admin() -> healthchain_cli::DevKey {
    healthchain_cli::dev_keys().unwrap().accounts.remove(0)
}

/// A permissioned network whose p2p ports are the ones its genesis node rules name.
fn permissioned(validators: usize, followers: usize, extra: &[&str]) -> Net {
    let admin = admin().address.to_string();
    let mut args = vec!["--permissioning-admin", admin.as_str()];
    args.extend_from_slice(extra);
    let base = free_port_run((validators + followers) as u16);
    Net::generate(validators, followers, 250, &args, Some(base))
}

/// `healthchain permissions ARGS` against node `i`, signed by the admin.
fn permissions(net: &Net, i: usize, args: &[&str]) -> String {
    let key = net.nodes[i].dir.join("admin.key");
    std::fs::write(&key, admin().private_key).unwrap();
    let out = std::process::Command::new(bin())
        .args([
            "permissions",
            "--rpc-url",
            &format!("http://127.0.0.1:{}", net.nodes[i].rpc),
            "--key-file",
            key.to_str().unwrap(),
        ])
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "permissions {args:?} failed: {}{}\n{}",
        stdout,
        String::from_utf8_lossy(&out.stderr),
        net.logs()
    );
    stdout
}

/// The enode `genesis new` wrote into node `i`'s config header.
fn enode(net: &Net, i: usize) -> String {
    let config = std::fs::read_to_string(net.nodes[i].dir.join("config.toml")).unwrap();
    config
        .lines()
        .find_map(|l| l.strip_prefix("# Enode: "))
        .expect("no enode in the config header")
        .to_string()
}

fn peer_count(net: &Net, i: usize) -> u64 {
    net.try_rpc(i, "net_peerCount", json!([]))
        .and_then(|v| u64::from_str_radix(v.as_str()?.trim_start_matches("0x"), 16).ok())
        .unwrap_or(0)
}

#[test]
fn a_node_outside_the_rules_cannot_peer_until_added_and_is_dropped_when_removed() {
    // Four validators listed in the genesis node rules; node 4 (a follower) is not.
    let mut net = permissioned(4, 1, &["--permit-nodes", "validators"]);
    for i in 0..4 {
        net.start(i);
    }
    net.wait_head(&[0, 1, 2, 3], 3, MINUTE);
    net.start(4);
    // It dials the validators (they are its static peers) and they dial it: every attempt
    // is refused while the rules do not list it.
    let h0 = net.head(0).unwrap();
    net.wait_head(&[0], h0 + 12, MINUTE);
    assert_eq!(
        peer_count(&net, 4),
        0,
        "an unlisted node peered\n{}",
        net.logs()
    );
    assert_eq!(net.head(4), Some(0), "an unlisted node got blocks");
    let listed = permissions(&net, 0, &["nodes"]);
    assert_eq!(listed.lines().count(), 4, "{listed}");

    let follower = enode(&net, 4);
    permissions(&net, 0, &["add-node", &follower]);
    assert!(permissions(&net, 0, &["nodes"]).contains(&follower));
    net.wait("the added node connects", MINUTE, |net| {
        peer_count(net, 4) >= 1
    });
    let target = net.head(0).unwrap();
    net.wait_head(&[4], target, MINUTE);
    net.assert_same_chain(&[0, 4], target);

    permissions(&net, 0, &["remove-node", &follower]);
    // Live connections are re-checked after every block: the follower is dropped, and its
    // redials are refused.
    net.wait("the removed node is disconnected", MINUTE, |net| {
        peer_count(net, 4) == 0
    });
    let frozen = net.head(4).unwrap();
    let h1 = net.head(0).unwrap();
    net.wait_head(&[0], h1 + 12, MINUTE);
    assert_eq!(
        peer_count(&net, 4),
        0,
        "the removed node reconnected\n{}",
        net.logs()
    );
    assert!(
        net.head(4).unwrap() <= frozen + 1,
        "the removed node kept receiving blocks"
    );
}

/// A zero-fee transfer from an account no rule lists (an unfunded sender can pay for it on
/// this free-gas chain, so only permissioning stands in its way).
fn stranger_transfer() -> (String, String) {
    let stranger = healthchain_fixtures::DevAccount::new(7_777);
    let tx = TxEip1559 {
        chain_id: 1337,
        nonce: 0,
        gas_limit: 21_000,
        max_fee_per_gas: 0,
        max_priority_fee_per_gas: 0,
        to: TxKind::Call(Address::repeat_byte(0x42)),
        value: U256::ZERO,
        ..Default::default()
    };
    let signed: TxEnvelope = stranger.sign(tx);
    (
        format!("0x{}", alloy_primitives::hex::encode(signed.encoded_2718())),
        format!("{:#x}", signed.tx_hash()),
    )
}

#[test]
fn an_unlisted_sender_is_refused_and_a_byzantine_proposer_including_it_is_outvoted() {
    let mut net = permissioned(4, 0, &[]);
    // Validator 3 runs without account permissioning: it pools and proposes anything.
    let path = net.nodes[3].dir.join("config.toml");
    let config = std::fs::read_to_string(&path).unwrap();
    assert!(config.contains("accounts-contract-enabled = true"));
    std::fs::write(
        &path,
        config.replace(
            "accounts-contract-enabled = true",
            "accounts-contract-enabled = false",
        ),
    )
    .unwrap();
    for i in 0..4 {
        net.start(i);
    }
    net.wait_head(&[0, 1, 2, 3], 3, MINUTE);

    let (raw, hash) = stranger_transfer();
    let refused = rpc_response(net.nodes[0].rpc, "eth_sendRawTransaction", json!([raw])).unwrap();
    assert_eq!(refused["error"]["code"], -32007, "{refused}");
    assert_eq!(
        refused["error"]["message"],
        "Sender account not authorized to send transactions"
    );
    let admitted = rpc_response(net.nodes[3].rpc, "eth_sendRawTransaction", json!([raw])).unwrap();
    assert_eq!(
        admitted["result"],
        Value::String(hash.clone()),
        "{admitted}"
    );

    // Enough heights for validator 3 to be the proposer several times.
    let h0 = net.head(0).unwrap();
    let target = h0 + 16;
    net.wait_head(&[0, 1, 2, 3], target, Duration::from_secs(180));
    net.assert_same_chain(&[0, 1, 2, 3], target);
    for i in 0..4 {
        let receipt = net.rpc(i, "eth_getTransactionReceipt", json!([hash]));
        assert!(
            receipt.is_null(),
            "node {i} included the stranger's transaction: {receipt}"
        );
    }
    // The honest validators saw the byzantine proposals and rejected them for this reason.
    let rejected = (0..3).any(|i| {
        std::fs::read_to_string(net.nodes[i].dir.join("node.log"))
            .unwrap_or_default()
            .contains("is not permitted by the account rules")
    });
    assert!(
        rejected,
        "no honest validator rejected a proposal\n{}",
        net.logs()
    );
}
