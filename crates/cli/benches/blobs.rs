//! Encrypted record upload and fetch across release `healthchain node` processes on
//! 127.0.0.1 (three validators, 250 ms blocks, and a fourth node started after each
//! upload), for a 200 KB and a 20 MB payload, as an operator runs them:
//! - put: `records put` through node 0 — encrypt, upload, the on-chain record (mined),
//!   two key wraps;
//! - get, node 0: `records get` from the node that took the upload;
//! - get, node 1: from a validator that replicated it on the announcement;
//! - get, node 3: from a node that never saw it, so it fetches blob and key from peers
//!   first.
//!
//! Every get decrypts and checks the whole payload. Run:
//! `cargo bench -p healthchain-cli --bench blobs` (env `RUNS`, default 3; median shown).

use std::time::{Duration, Instant};

#[allow(dead_code)]
#[path = "../tests/common/mod.rs"]
mod common;
use common::net::MINUTE;
use common::records::Scenario;

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let mut s = Scenario::start(250);
    println!(
        "| payload | put (encrypt, upload, record mined, 2 wraps) | get, node 0 | get, node 1 (replicated) | get, node 3 (fetched from peers) |"
    );
    println!("|---|---|---|---|---|");
    for (label, size) in [("200 KB", 200_000usize), ("20 MB", 20_000_000)] {
        let mut columns: [Vec<Duration>; 4] = Default::default();
        for run in 0..runs {
            // Deterministic, incompressible enough: a xorshift stream.
            let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ (size as u64) ^ run as u64;
            let plain: Vec<u8> = (0..size)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let file = format!("payload-{size}-{run}.bin");
            std::fs::write(s.work.path().join(&file), &plain).unwrap();
            if s.net.nodes[3].child.is_some() {
                s.net.stop(3);
            }
            let start = Instant::now();
            let (record, cid) = s.put(0, &file);
            columns[0].push(start.elapsed());
            // Let the announcement-driven replication finish (bounded) so node 1 is warm.
            let deadline = Instant::now() + MINUTE;
            while !s.blob_file(1, &cid).is_file() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            for (column, node) in [(1, 0), (2, 1)] {
                let start = Instant::now();
                let got = s.get(node, "doctor", &record, &format!("out-{node}-{file}"));
                columns[column].push(start.elapsed());
                assert!(got == plain, "node {node} returned other bytes");
            }
            s.net.start(3);
            let head = s.net.head(0).unwrap();
            s.net.wait_head(&[3], head, MINUTE);
            assert!(!s.blob_file(3, &cid).exists());
            let start = Instant::now();
            let got = s.get(3, "doctor", &record, &format!("out-3-{file}"));
            columns[3].push(start.elapsed());
            assert!(got == plain, "node 3 returned other bytes");
        }
        let cells: Vec<String> = columns
            .into_iter()
            .map(|c| format!("{:.0} ms", median(c).as_secs_f64() * 1e3))
            .collect();
        println!("| {label} | {} |", cells.join(" | "));
    }
}
