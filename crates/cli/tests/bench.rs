//! The load tool against four real validator processes (250 ms blocks, on-chain account
//! permissioning, the health contracts in genesis): a few-second smoke run of each load
//! shape, the report files, and a small bulk import checked on chain. The full runs are
//! `scripts/bench-network` (docs/benchmarks.md).

mod common;

use std::path::Path;
use std::process::Command;

use common::free_port_run;
use common::net::{MINUTE, Net, bin};
use serde_json::Value;

const RECORDS: &str = "0x0000000000000000000000000000000000001002";

fn network() -> Net {
    let admin = healthchain_cli::dev_keys().unwrap().accounts[0]
        .address
        .to_string();
    let base = free_port_run(4);
    let mut net = Net::generate(
        4,
        0,
        250,
        &["--health-admin", &admin, "--permissioning-admin", &admin],
        Some(base),
    );
    for i in 0..4 {
        net.start(i);
    }
    net.wait_head(&[0, 1, 2, 3], 2, MINUTE);
    net
}

fn endpoints(net: &Net) -> Vec<String> {
    let node = &net.nodes[0];
    vec![
        "--rpc-url".into(),
        format!("http://127.0.0.1:{}", node.rpc),
        "--ws-url".into(),
        format!("ws://127.0.0.1:{}", node.ws),
    ]
}

/// Runs `healthchain bench ARGS --out DIR` (ARGS split at spaces) and returns
/// results.json.
fn bench(net: &Net, out: &Path, args: &str) -> Value {
    let mut command = Command::new(bin());
    command
        .arg("bench")
        .args(endpoints(net))
        .args(args.split_whitespace());
    command.args(["--quiet", "--drain", "10", "--out", out.to_str().unwrap()]);
    for node in &net.nodes {
        let pid = node.child.as_ref().unwrap().id();
        command.args(["--pid", &pid.to_string()]);
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "bench {args:?} failed:\n{}\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        net.logs()
    );
    for file in [
        "results.json",
        "results.md",
        "throughput.svg",
        "latency.svg",
    ] {
        let path = out.join(file);
        let len = std::fs::metadata(&path).map_or(0, |m| m.len());
        assert!(len > 100, "{} is missing or empty", path.display());
    }
    let text = std::fs::read_to_string(out.join("results.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// `healthchain records import FILE --keys KEYS` through node 1.
fn import(net: &Net, file: &Path, keys: &Path) -> std::process::Output {
    Command::new(bin())
        .args([
            "records",
            "--rpc-url",
            &format!("http://127.0.0.1:{}", net.nodes[1].rpc),
        ])
        .args([
            "import",
            file.to_str().unwrap(),
            "--keys",
            keys.to_str().unwrap(),
            "--quiet",
        ])
        .args(["--ws-url", &format!("ws://127.0.0.1:{}", net.nodes[1].ws)])
        .output()
        .unwrap()
}

/// An `eth_call` to PatientRecord on node 0 returning one uint.
fn records_call(net: &Net, data: &str) -> u64 {
    let out = net.rpc(
        0,
        "eth_call",
        serde_json::json!([{ "to": RECORDS, "data": data }, "latest"]),
    );
    u64::from_str_radix(out.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

fn op<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["ops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["op"] == name)
        .unwrap_or_else(|| panic!("no {name} in {report:#}"))
}

fn assert_clean(report: &Value, name: &str, at_least: u64) {
    let o = op(report, name);
    let ok = o["ok"].as_u64().unwrap();
    assert!(
        ok >= at_least,
        "{name}: {ok} ok, expected at least {at_least}: {o:#}"
    );
    assert_eq!(o["failures"], serde_json::json!({}), "{name} failed: {o:#}");
    assert_eq!(o["total"].as_u64().unwrap(), ok, "{o:#}");
    let (p50, p99, max) = (
        o["p50_ms"].as_f64().unwrap(),
        o["p99_ms"].as_f64().unwrap(),
        o["max_ms"].as_f64().unwrap(),
    );
    assert!(p50 > 0.0 && p50 <= p99 && p99 <= max, "{o:#}");
}

#[test]
fn the_load_tool_measures_every_load_shape_and_imports_records() {
    let net = network();
    let out = tempfile::tempdir().unwrap();

    // Open loop, record writes: every write is included (1 s warm-up left out of the
    // latency, 3 s at 40/s), timed to its block, well under the 250 ms blocks' worst case.
    let writes = bench(
        &net,
        &out.path().join("writes"),
        "--workload writes --rate 40 --duration 4 --warmup 1 --senders 8",
    );
    assert_clean(&writes, "write", 100);
    assert!(
        op(&writes, "write")["p99_ms"].as_f64().unwrap() < 5_000.0,
        "{writes:#}"
    );
    assert!(writes["blocks"].as_u64().unwrap() >= 4, "{writes:#}");
    let nodes = writes["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 5, "four nodes and the tool: {nodes:#?}");
    for node in &nodes[..4] {
        assert!(node["rss_max_mb"].as_f64().unwrap() > 1.0, "{node:#}");
    }
    // The same seed reuses the accounts: a second run needs no set-up but still works.
    let again = bench(
        &net,
        &out.path().join("again"),
        "--workload writes --rate 20 --duration 2 --warmup 0 --senders 8",
    );
    assert_clean(&again, "write", 30);

    // Closed loop, transfers: 4 users, each waits for its block before the next.
    let transfers = bench(
        &net,
        &out.path().join("transfers"),
        "--workload transfers --users 4 --duration 3 --warmup 0 --seed 2",
    );
    assert_clean(&transfers, "transfer", 8);

    // Mixed open loop: reads answered, writes and transfers included.
    let mix = bench(
        &net,
        &out.path().join("mix"),
        "--workload mix --rate 60 --duration 3 --warmup 0 --senders 6 --seed 3",
    );
    for name in ["write", "read", "transfer"] {
        assert_clean(&mix, name, 5);
    }

    // The profile: users ramp up and run create / read / update / history rounds.
    let profile = bench(
        &net,
        &out.path().join("profile"),
        "--workload profile --ramp-from 2 --ramp-to 6 --ramp-seconds 2 --duration 4 --warmup 0 --seed 4",
    );
    for name in ["write", "read", "update", "history"] {
        assert_clean(&profile, name, 2);
    }
    let users: Vec<u64> = profile["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["users"].as_u64().unwrap())
        .collect();
    assert!(users.contains(&6), "the ramp reached 6 users: {users:?}");

    // Bulk import: prepare 300 records for 3 doctors' patients, import them, count them.
    let file = out.path().join("records.csv");
    let keys = out.path().join("doctors.keys");
    let mut prepare = Command::new(bin());
    prepare.args(["bench", "prepare-import"]);
    prepare.args([
        "--rpc-url",
        &format!("http://127.0.0.1:{}", net.nodes[0].rpc),
    ]);
    prepare.args(["--ws-url", &format!("ws://127.0.0.1:{}", net.nodes[0].ws)]);
    prepare.args([
        "--records",
        "300",
        "--patients",
        "3",
        "--out",
        file.to_str().unwrap(),
    ]);
    prepare.args(["--keys-out", keys.to_str().unwrap()]);
    let done = prepare.output().unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let imported = import(&net, &file, &keys);
    let stdout = String::from_utf8_lossy(&imported.stdout);
    assert!(
        imported.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    assert!(stdout.contains("imported 300 of 300 records"), "{stdout}");
    // On chain: each of the 3 patients now has 100 records.
    let text = std::fs::read_to_string(&file).unwrap();
    let patients: std::collections::BTreeSet<&str> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(patients.len(), 3);
    for patient in patients {
        let data = format!(
            "0xc7ac29b0{:0>64}",
            patient.trim_start_matches("0x").to_lowercase()
        );
        let count = records_call(&net, &data);
        assert_eq!(count, 100, "records of {patient}");
    }

    // A bad file changes nothing: the bad line is named and no record is sent.
    let total = || records_call(&net, "0x900407bc");
    let before = total();
    let bad = out.path().join("bad.csv");
    let mut lines: Vec<String> = text.lines().take(6).map(String::from).collect();
    lines[4] = lines[4].replace("prescription", "recipe");
    std::fs::write(&bad, lines.join("\n")).unwrap();
    let refused = import(&net, &bad, &keys);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("line 5"),
        "{stderr}"
    );
    net.wait_head(&[0], net.head(0).unwrap() + 2, MINUTE);
    assert_eq!(total(), before, "a refused file wrote records");
}
