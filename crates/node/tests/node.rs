//! A real node on loopback ports: transactions go in over JSON-RPC, sealed blocks come out,
//! bad requests get Besu's errors and the node keeps serving, restarts keep the chain.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, U256};
use healthchain_fixtures::DevAccount;
use healthchain_node::{GenesisFile, NodeConfig, NodeHandle, launch};
use serde_json::{Value, json};

mod common;
use common::{WAIT, blocking, genesis, post_raw};

fn config(datadir: &std::path::Path) -> NodeConfig {
    let mut config = common::config(datadir);
    config.txpool.min_gas_price = 0;
    config
}

fn rpc(addr: SocketAddr, method: &str, params: Value) -> Value {
    let request = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let (status, body) = post_raw(addr, "", request.to_string().as_bytes());
    assert_eq!(status, 200, "{method}: HTTP {status}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{method}: {e}: {body}"))
}

fn result(addr: SocketAddr, method: &str, params: Value) -> Value {
    let response = rpc(addr, method, params);
    assert!(
        response.get("error").is_none(),
        "{method} failed: {response}"
    );
    response["result"].clone()
}

fn error_code(response: &Value) -> i64 {
    response["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("expected an error, got {response}"))
}

fn quantity(value: &Value) -> u64 {
    u64::from_str_radix(value.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

async fn start(datadir: &std::path::Path) -> (NodeHandle, SocketAddr) {
    let node = launch(config(datadir), Some(genesis())).await.unwrap();
    let addr = node.http_addr.unwrap();
    (node, addr)
}

fn wait_for_receipt(addr: SocketAddr, hash: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let receipt = result(addr, "eth_getTransactionReceipt", json!([hash]));
        if !receipt.is_null() {
            return receipt;
        }
        assert!(Instant::now() < deadline, "no receipt for {hash}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn raw(tx: &healthchain_primitives::Transaction) -> String {
    format!("0x{}", alloy_primitives::hex::encode(tx.encoded_2718()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_submitted_over_rpc_are_sealed_into_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let (node, addr) = start(dir.path()).await;
    blocking(move || {
        let chain_id = quantity(&result(addr, "eth_chainId", json!([])));
        assert_eq!(chain_id, healthchain_fixtures::CHAIN_ID);
        let alice = DevAccount::new(0);
        let bob = Address::repeat_byte(0xb0);
        let mut hashes = Vec::new();
        for nonce in 0..5 {
            let tx = alice.transfer(nonce, bob, U256::from(1000 + nonce));
            let hash = result(addr, "eth_sendRawTransaction", json!([raw(&tx)]));
            assert_eq!(hash.as_str().unwrap(), tx.tx_hash().to_string());
            hashes.push(hash.as_str().unwrap().to_string());
        }
        // The pool counts the pending run for `pending` but not for `latest`.
        let pending = quantity(&result(
            addr,
            "eth_getTransactionCount",
            json!([alice.address, "pending"]),
        ));
        let latest = quantity(&result(
            addr,
            "eth_getTransactionCount",
            json!([alice.address, "latest"]),
        ));
        assert!(pending >= latest);
        assert_eq!(pending, 5, "pending nonce counts every submitted tx");

        let mut block_numbers = Vec::new();
        for hash in &hashes {
            let receipt = wait_for_receipt(addr, hash);
            assert_eq!(receipt["status"], "0x1", "{receipt}");
            assert_eq!(
                receipt["from"].as_str().unwrap().to_lowercase(),
                alice.address.to_string().to_lowercase()
            );
            assert_eq!(quantity(&receipt["gasUsed"]), 21_000);
            block_numbers.push(quantity(&receipt["blockNumber"]));
        }
        let balance = result(addr, "eth_getBalance", json!([bob, "latest"]));
        assert_eq!(
            U256::from_str_radix(balance.as_str().unwrap().trim_start_matches("0x"), 16).unwrap(),
            U256::from(1000 + 1001 + 1002 + 1003 + 1004)
        );
        let nonce = quantity(&result(
            addr,
            "eth_getTransactionCount",
            json!([alice.address, "latest"]),
        ));
        assert_eq!(nonce, 5);

        // The block holding the first transaction lists it and links to its parent.
        let number = block_numbers[0];
        let block = result(
            addr,
            "eth_getBlockByNumber",
            json!([format!("0x{number:x}"), true]),
        );
        let parent = result(
            addr,
            "eth_getBlockByNumber",
            json!([format!("0x{:x}", number - 1), false]),
        );
        assert_eq!(block["parentHash"], parent["hash"]);
        assert!(quantity(&block["timestamp"]) > quantity(&parent["timestamp"]));
        let txs = block["transactions"].as_array().unwrap();
        assert!(
            txs.iter().any(|t| t["hash"] == hashes[0].as_str()),
            "{block}"
        );
        let by_hash = result(addr, "eth_getBlockByHash", json!([block["hash"], false]));
        assert_eq!(by_hash["number"], block["number"]);
        let tx = result(addr, "eth_getTransactionByHash", json!([hashes[0]]));
        assert_eq!(tx["blockHash"], block["hash"]);
        let receipts = result(addr, "eth_getBlockReceipts", json!([block["number"]]));
        assert_eq!(receipts.as_array().unwrap().len(), txs.len());
        // Blocks above the head are null, as in Besu.
        let head = quantity(&result(addr, "eth_blockNumber", json!([])));
        let future = result(
            addr,
            "eth_getBlockByNumber",
            json!([format!("0x{:x}", head + 1000), false]),
        );
        assert!(future.is_null());
    })
    .await;
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_errors_and_the_node_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let (node, addr) = start(dir.path()).await;
    blocking(move || {
        let still_serving = || {
            let n = result(addr, "eth_blockNumber", json!([]));
            assert!(n.as_str().unwrap().starts_with("0x"));
        };
        // Malformed JSON.
        let (_, body) = post_raw(addr, "", b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":");
        let response: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(error_code(&response), -32700, "{body}");
        still_serving();
        // Unknown method.
        assert_eq!(
            error_code(&rpc(addr, "eth_noSuchMethod", json!([]))),
            -32601
        );
        // Wrong parameter type and count.
        assert_eq!(
            error_code(&rpc(addr, "eth_getBalance", json!([42]))),
            -32602
        );
        assert_eq!(
            error_code(&rpc(addr, "eth_getBlockByNumber", json!([]))),
            -32602
        );
        still_serving();
        // Undecodable transaction bytes.
        let response = rpc(addr, "eth_sendRawTransaction", json!(["0xdeadbeef"]));
        assert!(response.get("error").is_some(), "{response}");
        // A transaction signed for another chain.
        let alice = DevAccount::new(1);
        let mut tx = alloy_consensus::TxEip1559 {
            chain_id: 999,
            nonce: 0,
            gas_limit: 21_000,
            to: alloy_primitives::TxKind::Call(Address::repeat_byte(1)),
            ..Default::default()
        };
        tx.max_fee_per_gas = 0;
        let signed = alice.sign(tx);
        let response = rpc(addr, "eth_sendRawTransaction", json!([raw(&signed)]));
        assert_eq!(response["error"]["message"], "Wrong chainId", "{response}");
        // eth_sendTransaction is not supported.
        assert_eq!(
            error_code(&rpc(addr, "eth_sendTransaction", json!([{}]))),
            -32604
        );
        // An oversized body is refused without taking the server down.
        let huge = vec![b' '; 6 * 1024 * 1024];
        let (status, _) = post_raw(addr, "", &huge);
        assert_ne!(status, 200);
        still_serving();
        // A batch answers each call.
        let batch = json!([
            {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
            {"jsonrpc": "2.0", "id": 2, "method": "nope", "params": []},
        ]);
        let (_, body) = post_raw(addr, "", batch.to_string().as_bytes());
        let answers: Vec<Value> = serde_json::from_str(&body).unwrap();
        assert_eq!(answers.len(), 2);
        still_serving();
    })
    .await;
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_keeps_its_chain_and_refuses_another_genesis() {
    let dir = tempfile::tempdir().unwrap();
    let (node, addr) = start(dir.path()).await;
    let head = blocking(move || {
        let deadline = Instant::now() + WAIT;
        loop {
            let head = quantity(&result(addr, "eth_blockNumber", json!([])));
            if head >= 3 {
                return head;
            }
            assert!(Instant::now() < deadline, "no blocks sealed");
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await;
    let genesis_hash = node.genesis_hash;
    node.shutdown().await.unwrap();

    // Restarted without a genesis: the data directory remembers it.
    let mut restarted_config = config(dir.path());
    // Not the validator any more: the node only serves what it has.
    let other_key = dir.path().join("other.key");
    std::fs::write(&other_key, DevAccount::new(7).secret_hex()).unwrap();
    restarted_config.node.key_file = Some(other_key);
    let node = launch(restarted_config, None).await.unwrap();
    assert_eq!(node.genesis_hash, genesis_hash);
    let addr = node.http_addr.unwrap();
    let after = blocking(move || quantity(&result(addr, "eth_blockNumber", json!([])))).await;
    assert!(after >= head, "head went back from {head} to {after}");
    node.shutdown().await.unwrap();

    // Another chain's genesis is refused.
    let other = GenesisFile::parse(
        healthchain_fixtures::genesis_json(3),
        std::path::Path::new("other"),
    )
    .unwrap();
    let err = launch(config(dir.path()), Some(other)).await.unwrap_err();
    assert!(err.to_string().contains("holds genesis"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_filters_page_through_long_ranges_and_block_hash_filters_answer_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    // Each poll may cover at most 3 blocks (from..=from+2).
    config.rpc.max_logs_range = 2;
    let node = launch(config, Some(genesis())).await.unwrap();
    let addr = node.http_addr.unwrap();
    blocking(move || {
        let writer = DevAccount::new(3);
        // Six record writes, each waited for, so they land in (at least) six blocks.
        let mut blocks = Vec::new();
        for nonce in 0..6 {
            let tx = writer.write_record(nonce, nonce + 1);
            let hash = result(addr, "eth_sendRawTransaction", json!([raw(&tx)]));
            let receipt = wait_for_receipt(addr, hash.as_str().unwrap());
            assert_eq!(receipt["logs"].as_array().unwrap().len(), 1, "{receipt}");
            blocks.push(receipt["blockHash"].clone());
        }
        let filter = result(
            addr,
            "eth_newFilter",
            json!([{"fromBlock": "0x0", "address": healthchain_fixtures::RECORD_CONTRACT}]),
        );
        // Polls page through the range; none is skipped and none is repeated.
        let mut seen = Vec::new();
        for _ in 0..100 {
            let changes = result(addr, "eth_getFilterChanges", json!([filter]));
            let changes = changes.as_array().unwrap();
            if changes.is_empty() && seen.len() >= 6 {
                break;
            }
            seen.extend(changes.iter().map(|log| log["transactionHash"].clone()));
        }
        assert_eq!(seen.len(), 6, "{seen:?}");
        let unique: std::collections::HashSet<String> =
            seen.iter().map(|h| h.to_string()).collect();
        assert_eq!(unique.len(), 6);

        // A blockHash filter answers that block's logs on the first poll, then nothing.
        let filter = result(addr, "eth_newFilter", json!([{"blockHash": blocks[2]}]));
        let first = result(addr, "eth_getFilterChanges", json!([filter]));
        assert_eq!(first.as_array().unwrap().len(), 1, "{first}");
        assert_eq!(first[0]["blockHash"], blocks[2]);
        let second = result(addr, "eth_getFilterChanges", json!([filter]));
        assert_eq!(second, json!([]));
    })
    .await;
    node.shutdown().await.unwrap();
}
