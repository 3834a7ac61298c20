//! What the node's integration tests share: the single-validator fixture chain, a node
//! config on loopback ports, raw HTTP posts and blocking calls off the node's runtime.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use healthchain_node::{GenesisFile, NodeConfig};

/// Most time any wait in these tests may take.
pub(crate) const WAIT: Duration = Duration::from_secs(30);

/// The fixture chain with 100 ms blocks; its one validator is the fixtures' validator.
pub(crate) fn genesis() -> GenesisFile {
    GenesisFile::parse(
        healthchain_fixtures::genesis_json_with_period_ms(8, 100),
        std::path::Path::new("fixtures"),
    )
    .unwrap()
}

/// A config for the fixtures' validator with its data in `datadir`, RPC on free loopback
/// ports and no p2p (a single validator needs no peers).
pub(crate) fn config(datadir: &std::path::Path) -> NodeConfig {
    let mut config = NodeConfig::default();
    config.node.datadir = Some(datadir.to_path_buf());
    config.rpc.http_addr = "127.0.0.1:0".parse().unwrap();
    config.rpc.ws_addr = "127.0.0.1:0".parse().unwrap();
    std::fs::create_dir_all(datadir).unwrap();
    let key = datadir.join("validator.key");
    std::fs::write(&key, healthchain_fixtures::validator().secret_hex()).unwrap();
    config.node.key_file = Some(key);
    config.network.enabled = false;
    config
}

/// Posts raw bytes to the HTTP endpoint with extra header lines (each ending in `\r\n`);
/// returns the status code and the body.
pub(crate) fn post_raw(addr: SocketAddr, headers: &str, body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    // The server may answer (401, 413) and close before reading the body.
    let _ = stream.write_all(body);
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Runs blocking HTTP calls off the runtime the node runs on.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}
