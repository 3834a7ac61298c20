//! The Prometheus endpoint: `GET /metrics` on its own loopback port, plain text.

use std::net::SocketAddr;
use std::sync::Arc;

use healthchain_engine::EngineMetrics;
use healthchain_rpc::NodeStatus;
use healthchain_storage_mdbx::MdbxStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::{NodeError, wiring::Status};

/// Serves metrics on `addr`; returns the bound address and the server task.
pub(crate) async fn serve(
    addr: SocketAddr,
    metrics: Arc<EngineMetrics>,
    status: Arc<Status>,
    store: Arc<MdbxStore>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), NodeError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| NodeError::Metrics {
            addr,
            reason: e.to_string(),
        })?;
    let bound = listener.local_addr().map_err(|e| NodeError::Metrics {
        addr,
        reason: e.to_string(),
    })?;
    let task = tokio::spawn(async move {
        loop {
            let mut socket = match listener.accept().await {
                Ok((socket, _)) => socket,
                // Out of file descriptors, say: back off instead of spinning.
                Err(err) => {
                    tracing::warn!(%err, "metrics endpoint cannot accept");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let metrics = metrics.clone();
            let status = status.clone();
            let store = store.clone();
            tokio::spawn(async move {
                // One small request; anything longer than 8 KiB is not ours to serve.
                let mut request = vec![0u8; 8192];
                // A client that connects and says nothing is dropped.
                let read = tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    socket.read(&mut request),
                );
                let Ok(Ok(n)) = read.await else {
                    return;
                };
                let line = String::from_utf8_lossy(&request[..n]);
                let (status_line, body) = if line.starts_with("GET /metrics") {
                    let head = crate::wiring::head_number(&store);
                    ("200 OK", metrics.prometheus(head, status.peer_count()))
                } else {
                    ("404 Not Found", "only /metrics is served\n".to_string())
                };
                let response = format!(
                    "HTTP/1.1 {status_line}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    Ok((bound, task))
}
