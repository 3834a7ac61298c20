//! JSON-RPC throughput: requests per second for `eth_getBalance`, `eth_call` and
//! `eth_sendRawTransaction` (pre-signed, so signing is outside the measured window) at 1
//! and 64 concurrent keep-alive HTTP clients against an in-process node on loopback.
//!
//! `cargo bench -p healthchain-node --bench rpc` (env: `REQUESTS` per read workload,
//! default 20000; `TXS` per send workload, default 16000).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, U256};
use healthchain_fixtures::{DevAccount, RECORD_CONTRACT};
use healthchain_node::{GenesisFile, NodeConfig, launch};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A minimal keep-alive HTTP/1.1 JSON-RPC client: enough to measure the server, not the
/// client library.
struct Client {
    stream: BufReader<TcpStream>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Self {
            stream: BufReader::new(stream),
        }
    }

    async fn call(&mut self, body: &str) -> String {
        let request = format!(
            "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.stream
            .get_mut()
            .write_all(request.as_bytes())
            .await
            .expect("write");
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            self.stream.read_line(&mut line).await.expect("read header");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some(value) = line
                .to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(str::trim)
                .map(str::to_owned)
            {
                length = value.parse().expect("content-length");
            }
        }
        let mut body = vec![0u8; length];
        self.stream.read_exact(&mut body).await.expect("read body");
        String::from_utf8(body).expect("utf-8")
    }
}

struct Outcome {
    requests: usize,
    elapsed: Duration,
    errors: usize,
}

/// Sends each client's bodies in order, all clients at once.
async fn run(addr: SocketAddr, per_client: Vec<Vec<String>>) -> Outcome {
    let requests = per_client.iter().map(Vec::len).sum();
    let mut clients = Vec::new();
    for _ in 0..per_client.len() {
        clients.push(Client::connect(addr).await);
    }
    let started = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .zip(per_client)
        .map(|(mut client, bodies)| {
            tokio::spawn(async move {
                let mut errors = 0;
                for body in bodies {
                    if client.call(&body).await.contains("\"error\"") {
                        errors += 1;
                    }
                }
                errors
            })
        })
        .collect();
    let mut errors = 0;
    for task in tasks {
        errors += task.await.expect("client task");
    }
    Outcome {
        requests,
        elapsed: started.elapsed(),
        errors,
    }
}

fn split<T>(items: Vec<T>, clients: usize) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = (0..clients).map(|_| Vec::new()).collect();
    for (i, item) in items.into_iter().enumerate() {
        out[i % clients].push(item);
    }
    out
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn report(name: &str, clients: usize, outcome: &Outcome) {
    let rate = outcome.requests as f64 / outcome.elapsed.as_secs_f64();
    println!(
        "{name:<24} clients={clients:<3} requests={:<6} errors={:<4} {:>9.0} req/s  mean latency {:>7.1} µs",
        outcome.requests,
        outcome.errors,
        rate,
        outcome.elapsed.as_secs_f64() * 1e6 * clients as f64 / outcome.requests as f64
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let requests = env("REQUESTS", 20_000);
        let txs = env("TXS", 16_000);
        let senders = 64u64;
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = NodeConfig::default();
        config.node.datadir = Some(dir.path().to_path_buf());
        config.rpc.http_addr = "127.0.0.1:0".parse().expect("addr");
        config.rpc.ws_enabled = false;
        config.txpool.min_gas_price = 0;
        config.txpool.max_transactions = txs * 3;
        // No validator key and no peers: nothing is sealed, so the pool only grows.
        config.network.enabled = false;
        let genesis = GenesisFile::parse(
            healthchain_fixtures::genesis_json(senders),
            std::path::Path::new("fixtures"),
        )
        .expect("genesis");
        let node = launch(config, Some(genesis)).await.expect("launch");
        let addr = node.http_addr.expect("http");
        println!("node on {addr}; {requests} reads, {txs} transactions per workload");

        let balance = |i: usize| {
            format!(
                r#"{{"jsonrpc":"2.0","id":{i},"method":"eth_getBalance","params":["{}","latest"]}}"#,
                DevAccount::new(i as u64 % senders).address
            )
        };
        let call = |i: usize| {
            // A record write executed as a call: storage writes and a log, nothing kept.
            format!(
                r#"{{"jsonrpc":"2.0","id":{i},"method":"eth_call","params":[{{"from":"{}","to":"{RECORD_CONTRACT}","data":"0x{:064x}{:064x}"}},"latest"]}}"#,
                DevAccount::new(i as u64 % senders).address,
                i,
                i * 7 + 1
            )
        };
        // Pre-signed transfers: every sender's nonces in order, spread so each client owns
        // whole senders (nonce order per sender is preserved).
        let accounts: Vec<DevAccount> = (0..senders).map(DevAccount::new).collect();
        let per_sender = txs.div_ceil(senders as usize) as u64;
        // Two nonce ranges per sender: one for the 1-client run, one for the 64-client run.
        let mut signed_by_sender: Vec<Vec<String>> = Vec::new();
        for nonce_base in [0, per_sender] {
            for account in &accounts {
                let bodies = (nonce_base..nonce_base + per_sender)
                    .map(|nonce| {
                        let tx = account.transfer(nonce, Address::repeat_byte(0xee), U256::from(1));
                        format!(
                            r#"{{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["0x{}"]}}"#,
                            alloy_primitives::hex::encode(tx.encoded_2718())
                        )
                    })
                    .collect::<Vec<_>>();
                signed_by_sender.push(bodies);
            }
        }
        let signed_by_sender = Arc::new(signed_by_sender);

        for clients in [1usize, 64] {
            let outcome = run(addr, split((0..requests).map(balance).collect(), clients)).await;
            report("eth_getBalance", clients, &outcome);
            let outcome = run(addr, split((0..requests).map(call).collect(), clients)).await;
            report("eth_call (record write)", clients, &outcome);
        }
        // Sends: the first nonce range with 1 client, the second with 64 (each client owns
        // one sender, so nonces arrive in order).
        let first: Vec<String> = signed_by_sender[..senders as usize]
            .iter()
            .flatten()
            .cloned()
            .collect();
        let outcome = run(addr, vec![first]).await;
        report("eth_sendRawTransaction", 1, &outcome);
        let second: Vec<Vec<String>> = signed_by_sender[senders as usize..].to_vec();
        let outcome = run(addr, second).await;
        report("eth_sendRawTransaction", 64, &outcome);
        node.shutdown().await.expect("shutdown");
    });
}
