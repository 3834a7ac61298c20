//! Helpers shared by the process tests.

pub(crate) mod net;
pub(crate) mod operator;
pub(crate) mod records;

use std::sync::atomic::{AtomicU32, Ordering};

/// First port handed to test nodes; the range ends below Linux's default ephemeral range
/// (32768–60999), so no outgoing connection — of this test or of any other running beside
/// it — can be given one of these ports between our choosing it and the node binding it.
/// (Asking the OS for port 0 and releasing it has exactly that race, and it failed CI.)
const FIRST: u16 = 10_000;
/// Ports per block: each test process starts in a block chosen by its pid and claims each
/// port with a lock file ([`claim`]), so processes whose pids share a block still never
/// get the same port; threads of one process share the sequence through [`NEXT`].
const BLOCK: u16 = 200;
const BLOCKS: u16 = (32_000 - FIRST) / BLOCK;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Lock files of the ports this process holds: another test process skips a port whose
/// lock is held, so two processes whose pids share a block never get the same port. The
/// locks go when the process exits.
static HELD: std::sync::Mutex<Vec<std::fs::File>> = std::sync::Mutex::new(Vec::new());

/// Claims `port` for this process: its lock file, held until exit.
fn claim(port: u16) -> bool {
    let dir = std::env::temp_dir().join("healthchain-test-ports");
    let _ = std::fs::create_dir_all(&dir);
    let Ok(file) = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(port.to_string()))
    else {
        return false;
    };
    if file.try_lock().is_err() {
        return false;
    }
    HELD.lock().unwrap_or_else(|e| e.into_inner()).push(file);
    true
}

/// A loopback port not used by anything now, not handed out before by this process and
/// not claimed by another test process.
pub(crate) fn free_port() -> u16 {
    let own = std::process::id() % u32::from(BLOCKS);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(
            n < u32::from(BLOCK) * 20,
            "no free test port after {n} tries"
        );
        // The process's own block first, then the next ones.
        let block = (own + n / u32::from(BLOCK)) % u32::from(BLOCKS);
        let port = FIRST + (block * u32::from(BLOCK) + n % u32::from(BLOCK)) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() && claim(port) {
            return port;
        }
    }
}

/// `n` consecutive free loopback ports (a dev network's validators listen on a base + i).
#[allow(dead_code)] // not every test binary needs a run of ports
pub(crate) fn free_port_run(n: u16) -> u16 {
    loop {
        let base = free_port();
        if (1..n).all(|i| free_port() == base + i) {
            return base;
        }
    }
}

/// The whole JSON-RPC response to one call to the node serving HTTP on `port`, or `None`
/// while it does not answer (a raw request: the process tests need no HTTP client).
#[allow(dead_code)] // not every test binary calls a node
pub(crate) fn rpc_response(
    port: u16,
    method: &str,
    params: serde_json::Value,
) -> Option<serde_json::Value> {
    use std::io::{Read, Write};
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        .to_string();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    serde_json::from_str(response.split_once("\r\n\r\n")?.1).ok()
}

/// The `result` of one JSON-RPC call to the node serving HTTP on `port`, or `None` while it
/// does not answer or answers with an error.
#[allow(dead_code)] // not every test binary calls a node
pub(crate) fn rpc(port: u16, method: &str, params: serde_json::Value) -> Option<serde_json::Value> {
    rpc_response(port, method, params)?.get("result").cloned()
}

/// `eth_blockNumber` of the node serving HTTP JSON-RPC on `port`.
#[allow(dead_code)] // not every test binary polls a node
pub(crate) fn block_number(port: u16) -> Option<u64> {
    let v = rpc(port, "eth_blockNumber", serde_json::json!([]))?;
    u64::from_str_radix(v.as_str()?.trim_start_matches("0x"), 16).ok()
}

/// `healthchain dev` in `datadir` with JSON-RPC on these loopback ports and 200 ms blocks.
#[allow(dead_code)] // not every test binary runs a dev network
pub(crate) fn dev_command(datadir: &std::path::Path, http: u16, ws: u16) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_healthchain"));
    cmd.env("RUST_LOG", "info")
        .env_remove("RUST_BACKTRACE")
        .arg("dev")
        .arg("--datadir")
        .arg(datadir)
        .args([
            "--rpc-http-addr",
            &format!("127.0.0.1:{http}"),
            "--rpc-ws-addr",
            &format!("127.0.0.1:{ws}"),
            "--block-period-ms",
            "200",
            "--p2p-port",
            &free_port_run(4).to_string(),
            "--blobs-addr",
            &format!("127.0.0.1:{}", free_port()),
        ]);
    cmd
}
