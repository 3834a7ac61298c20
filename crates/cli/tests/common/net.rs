//! The process-test harness: a network of real `healthchain node` processes on 127.0.0.1
//! from `healthchain genesis new`, with bounded waits that print each node's log tail.
#![allow(dead_code)] // each test binary uses part of it

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::free_port;

/// The usual bound of a wait.
pub(crate) const MINUTE: Duration = Duration::from_secs(60);

pub(crate) fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_healthchain")
}

pub(crate) struct Node {
    pub(crate) dir: PathBuf,
    pub(crate) rpc: u16,
    /// The WebSocket JSON-RPC port.
    pub(crate) ws: u16,
    pub(crate) metrics: u16,
    /// The blob API port.
    pub(crate) blobs: u16,
    pub(crate) child: Option<Child>,
}

pub(crate) struct Net {
    _root: tempfile::TempDir,
    pub(crate) nodes: Vec<Node>,
}

impl Drop for Net {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

impl Net {
    /// `validators` + `followers` nodes from `genesis new`, none started.
    pub(crate) fn new(validators: usize, followers: usize, block_period_ms: u64) -> Self {
        Self::generate(validators, followers, block_period_ms, &[], None)
    }

    /// As [`Net::new`] with more `genesis new` arguments. With `p2p_base`, the nodes listen
    /// on those ports as generated (a permissioned genesis names them in its node rules);
    /// otherwise every p2p port is swapped for a free one too.
    pub(crate) fn generate(
        validators: usize,
        followers: usize,
        block_period_ms: u64,
        extra: &[&str],
        p2p_base: Option<u16>,
    ) -> Self {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("net");
        let n = (validators + followers) as u16;
        // Generated with placeholder ranges, then every port is swapped for one the OS hands
        // out, in every config file (static peers name the other nodes' ports).
        let (rpc, metrics, blobs) = (41_000u16, 43_000u16, 44_000u16);
        let p2p = p2p_base.unwrap_or(42_000);
        let status = Command::new(bin())
            .args([
                "genesis",
                "new",
                "--validators",
                &validators.to_string(),
                "--followers",
                &followers.to_string(),
                "--out",
                out.to_str().unwrap(),
                "--dev-accounts",
                "--block-period-ms",
                &block_period_ms.to_string(),
                "--request-timeout-seconds",
                "1",
                "--rpc-base-port",
                &rpc.to_string(),
                "--p2p-base-port",
                &p2p.to_string(),
                "--metrics-base-port",
                &metrics.to_string(),
                "--blobs-base-port",
                &blobs.to_string(),
            ])
            .args(extra)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "genesis new failed");
        let mut swaps = Vec::new();
        let mut nodes = Vec::new();
        for i in 0..n {
            let (r, w, p, m, b) = (
                free_port(),
                free_port(),
                free_port(),
                free_port(),
                free_port(),
            );
            swaps.push((rpc + 2 * i, r));
            swaps.push((rpc + 2 * i + 1, w));
            if p2p_base.is_none() {
                swaps.push((p2p + i, p));
            }
            swaps.push((metrics + i, m));
            swaps.push((blobs + i, b));
            nodes.push(Node {
                dir: out.join(format!("node{i}")),
                rpc: r,
                ws: w,
                metrics: m,
                blobs: b,
                child: None,
            });
        }
        for node in &nodes {
            let path = node.dir.join("config.toml");
            let mut text = std::fs::read_to_string(&path).unwrap();
            for (old, new) in &swaps {
                text = text.replace(&format!("127.0.0.1:{old}\""), &format!("127.0.0.1:{new}\""));
            }
            std::fs::write(&path, text).unwrap();
        }
        Self { _root: root, nodes }
    }

    pub(crate) fn start(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        assert!(node.child.is_none(), "node {i} already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.dir.join("node.log"))
            .unwrap();
        let child = Command::new(bin())
            .args([
                "node",
                "--config",
                node.dir.join("config.toml").to_str().unwrap(),
            ])
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        node.child = Some(child);
    }

    /// SIGTERM, then wait for a clean exit.
    pub(crate) fn stop(&mut self, i: usize) {
        let mut child = self.nodes[i].child.take().expect("not running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "node {i} exited with {status}\n{}",
                    self.logs()
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node {i} did not stop\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn kill9(&mut self, i: usize) {
        let mut child = self.nodes[i].child.take().expect("not running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    pub(crate) fn logs(&self) -> String {
        let mut out = String::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let text = std::fs::read_to_string(node.dir.join("node.log")).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            out.push_str(&format!("---- node {i} ----\n"));
            for line in tail.into_iter().rev() {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    pub(crate) fn try_rpc(&self, i: usize, method: &str, params: Value) -> Option<Value> {
        super::rpc(self.nodes[i].rpc, method, params)
    }

    pub(crate) fn rpc(&self, i: usize, method: &str, params: Value) -> Value {
        self.try_rpc(i, method, params)
            .unwrap_or_else(|| panic!("node {i}: {method} failed\n{}", self.logs()))
    }

    pub(crate) fn head(&self, i: usize) -> Option<u64> {
        let v = self.try_rpc(i, "eth_blockNumber", json!([]))?;
        u64::from_str_radix(v.as_str()?.trim_start_matches("0x"), 16).ok()
    }

    pub(crate) fn block(&self, i: usize, number: u64) -> Value {
        self.rpc(
            i,
            "eth_getBlockByNumber",
            json!([format!("0x{number:x}"), false]),
        )
    }

    /// Waits (bounded) until `f` holds.
    pub(crate) fn wait(&self, what: &str, timeout: Duration, mut f: impl FnMut(&Self) -> bool) {
        let deadline = Instant::now() + timeout;
        while !f(self) {
            assert!(
                Instant::now() < deadline,
                "timed out: {what}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub(crate) fn wait_head(&self, nodes: &[usize], at_least: u64, timeout: Duration) {
        self.wait(
            &format!("nodes {nodes:?} at block {at_least}"),
            timeout,
            |net| {
                nodes
                    .iter()
                    .all(|&i| net.head(i).is_some_and(|h| h >= at_least))
            },
        );
    }

    /// Every node in `nodes` has the same block hash at each height up to `to`.
    pub(crate) fn assert_same_chain(&self, nodes: &[usize], to: u64) {
        for number in 1..=to {
            let hashes: Vec<Value> = nodes
                .iter()
                .map(|&i| self.block(i, number)["hash"].clone())
                .collect();
            assert!(
                hashes.windows(2).all(|w| w[0] == w[1] && !w[0].is_null()),
                "fork at block {number}: {hashes:?}"
            );
        }
    }

    pub(crate) fn address(&self, i: usize) -> String {
        let key = std::fs::read_to_string(self.nodes[i].dir.join("key")).unwrap();
        format!(
            "{:#x}",
            healthchain_node::key_from_hex(&key).unwrap().address()
        )
    }

    pub(crate) fn validators(&self, i: usize) -> Vec<String> {
        self.rpc(i, "ibft_getValidatorsByBlockNumber", json!(["latest"]))
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    }
}
