//! The small namespaces: `net_`, `web3_` and `txpool_`.

use std::sync::Arc;

use alloy_primitives::{B256, Bytes, U64, keccak256};
use jsonrpsee::{core::async_trait, proc_macros::rpc};
use serde::Serialize;

use crate::{backend::RpcBackend, error::RpcResult};

/// The `net_` methods.
#[rpc(server, namespace = "net")]
pub trait NetApi {
    /// Network id: the chain id, as a decimal string.
    #[method(name = "version")]
    async fn version(&self) -> RpcResult<String>;
    /// Whether the node accepts peer connections.
    #[method(name = "listening")]
    async fn listening(&self) -> RpcResult<bool>;
    /// Connected peers.
    #[method(name = "peerCount")]
    async fn peer_count(&self) -> RpcResult<U64>;
}

/// The `web3_` methods.
#[rpc(server, namespace = "web3")]
pub trait Web3Api {
    /// Client name and version.
    #[method(name = "clientVersion")]
    async fn client_version(&self) -> RpcResult<String>;
    /// Keccak-256 of the input.
    #[method(name = "sha3")]
    async fn sha3(&self, input: Bytes) -> RpcResult<B256>;
}

/// The `admin_` methods (read-only: peers and node identity).
#[rpc(server, namespace = "admin")]
pub trait AdminApi {
    /// Connected peers, in Besu's shape.
    #[method(name = "peers")]
    async fn peers(&self) -> RpcResult<Vec<serde_json::Value>>;
    /// This node: enode URL, id, listen address and chain.
    #[method(name = "nodeInfo")]
    async fn node_info(&self) -> RpcResult<serde_json::Value>;
}

/// Pending and queued counts (geth's `txpool_status`).
#[derive(Debug, Clone, Serialize)]
pub struct TxpoolStatus {
    /// Executable transactions.
    pub pending: U64,
    /// Transactions waiting for a nonce gap to fill.
    pub queued: U64,
}

/// Besu's `txpool_besuStatistics`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TxpoolStatistics {
    /// Pool capacity.
    pub max_size: u64,
    /// Transactions received over RPC.
    pub local_count: u64,
    /// Transactions received from peers.
    pub remote_count: u64,
}

/// One entry of Besu's `txpool_besuTransactions`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TxpoolTransaction {
    /// Transaction hash.
    pub hash: B256,
    /// Received over this node's RPC.
    pub is_received_from_local_source: bool,
    /// When it entered the pool (RFC 3339, UTC).
    pub added_to_pool_at: String,
}

/// The `txpool_` methods.
#[rpc(server, namespace = "txpool")]
pub trait TxpoolApi {
    /// Pending and queued counts.
    #[method(name = "status")]
    async fn status(&self) -> RpcResult<TxpoolStatus>;
    /// Besu's pool statistics.
    #[method(name = "besuStatistics")]
    async fn besu_statistics(&self) -> RpcResult<TxpoolStatistics>;
    /// Besu's list of pooled transactions.
    #[method(name = "besuTransactions")]
    async fn besu_transactions(&self) -> RpcResult<Vec<TxpoolTransaction>>;
}

/// Implementation of the small namespaces.
#[derive(Debug, Clone)]
pub struct MiscRpc {
    backend: Arc<RpcBackend>,
}

impl MiscRpc {
    /// The namespaces over `backend`.
    pub fn new(backend: Arc<RpcBackend>) -> Self {
        Self { backend }
    }
}

#[async_trait]
impl NetApiServer for MiscRpc {
    async fn version(&self) -> RpcResult<String> {
        Ok(self.backend.chain.chain_id.to_string())
    }
    async fn listening(&self) -> RpcResult<bool> {
        Ok(self.backend.node.listening())
    }
    async fn peer_count(&self) -> RpcResult<U64> {
        Ok(U64::from(self.backend.node.peer_count()))
    }
}

#[async_trait]
impl AdminApiServer for MiscRpc {
    async fn peers(&self) -> RpcResult<Vec<serde_json::Value>> {
        let (_, head) = self.backend.head()?;
        Ok(self
            .backend
            .node
            .peers()
            .into_iter()
            .map(|peer| {
                let port = peer
                    .remote_address
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.parse::<u16>().ok())
                    .unwrap_or_default();
                serde_json::json!({
                    "version": "0x1",
                    "name": "healthchain",
                    "caps": ["ibft/1", "sync/1"],
                    "network": {
                        "localAddress": peer.local_address,
                        "remoteAddress": peer.remote_address,
                        "inbound": peer.inbound,
                    },
                    "port": format!("0x{port:x}"),
                    "id": format!("0x{}", peer.id),
                    "enode": peer.enode,
                    "peerId": peer.peer_id,
                    "protocols": {"eth": {"head": head, "difficulty": "0x1", "version": 1}},
                })
            })
            .collect())
    }

    async fn node_info(&self) -> RpcResult<serde_json::Value> {
        let (head_number, head) = self.backend.head()?;
        let genesis = self
            .backend
            .block_at(0)?
            .map(|b| b.hash)
            .unwrap_or_default();
        let chain = serde_json::json!({
            "network": self.backend.chain.chain_id,
            "genesis": genesis,
            "head": head,
            "headNumber": format!("0x{head_number:x}"),
            "difficulty": format!("0x{:x}", head_number + 1),
        });
        let Some(info) = self.backend.node.node_info() else {
            return Err(jsonrpsee::types::ErrorObject::owned(
                -32000,
                "P2P has been disabled. This functionality is not available",
                None::<()>,
            ));
        };
        Ok(serde_json::json!({
            "enode": info.enode,
            "id": info.id,
            "ip": info.ip,
            "listenAddr": format!("{}:{}", info.ip, info.port),
            "name": self.backend.client_version,
            "peerId": info.peer_id,
            "ports": {"discovery": 0, "listener": info.port},
            "protocols": {"eth": chain},
        }))
    }
}

#[async_trait]
impl Web3ApiServer for MiscRpc {
    async fn client_version(&self) -> RpcResult<String> {
        Ok(self.backend.client_version.clone())
    }
    async fn sha3(&self, input: Bytes) -> RpcResult<B256> {
        Ok(keccak256(input))
    }
}

#[async_trait]
impl TxpoolApiServer for MiscRpc {
    async fn status(&self) -> RpcResult<TxpoolStatus> {
        let status = self.backend.pool.status();
        Ok(TxpoolStatus {
            pending: U64::from(status.pending),
            queued: U64::from(status.queued),
        })
    }
    async fn besu_statistics(&self) -> RpcResult<TxpoolStatistics> {
        let stats = self.backend.pool.statistics();
        Ok(TxpoolStatistics {
            max_size: stats.max_size as u64,
            local_count: stats.local_count as u64,
            remote_count: stats.remote_count as u64,
        })
    }
    async fn besu_transactions(&self) -> RpcResult<Vec<TxpoolTransaction>> {
        Ok(self
            .backend
            .pool
            .transactions()
            .into_iter()
            .map(|info| TxpoolTransaction {
                hash: info.hash,
                is_received_from_local_source: info.is_local,
                added_to_pool_at: rfc3339(info.added_at_ms),
            })
            .collect())
    }
}

/// Milliseconds since the Unix epoch as an RFC 3339 UTC timestamp.
fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn timestamps_format_as_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        // 2024-02-29T12:34:56.789Z (a leap day)
        assert_eq!(rfc3339(1_709_210_096_789), "2024-02-29T12:34:56.789Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
