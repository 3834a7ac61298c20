//! Cost of one on-chain rules call as the node makes it: `transactionAllowed` (pool
//! admission, block building and block import each make one per transaction) and
//! `connectionAllowed` (per connection and re-check), on a memory store holding the
//! genesis contracts. Excludes store I/O; MDBX adds its read-transaction cost.
//!
//! Run: `cargo bench -p healthchain-permissioning --bench rules` (env: `CALLS`).

use std::time::Instant;

use alloy_primitives::U256;

#[path = "../tests/common/mod.rs"]
mod common;
use common::{TARGET, chain, listed, node_id, rules, stranger};

fn main() {
    let calls: u32 = std::env::var("CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let (store, config) = chain(&[]);
    let rules = rules(&store, &config);
    let cases = [
        ("transactionAllowed, listed sender", listed()),
        ("transactionAllowed, unlisted sender", stranger()),
    ];
    println!("| call | µs per call |\n|---|---|");
    for (name, account) in cases {
        let tx = account.transfer(0, TARGET, U256::from(1));
        let start = Instant::now();
        for _ in 0..calls {
            std::hint::black_box(rules.transaction_allowed(&tx, account.address).unwrap());
        }
        let per = start.elapsed().as_secs_f64() * 1e6 / f64::from(calls);
        println!("| {name} | {per:.1} |");
    }
    let id = node_id("a");
    for (name, port) in [
        ("connectionAllowed, outbound", 30303),
        ("connectionAllowed, inbound (port 0)", 0),
    ] {
        let start = Instant::now();
        for _ in 0..calls {
            std::hint::black_box(rules.connection_allowed(&id, "10.0.0.1", port).unwrap());
        }
        let per = start.elapsed().as_secs_f64() * 1e6 / f64::from(calls);
        println!("| {name} | {per:.1} |");
    }
}
