//! Eth-style JSON-RPC for HealthChain over HTTP and WebSocket (jsonrpsee), so ethers.js,
//! viem, web3.py and hardhat work unchanged.
//!
//! One jsonrpsee trait per namespace: [`eth::EthApiServer`], [`misc::NetApiServer`],
//! [`misc::Web3ApiServer`], [`misc::TxpoolApiServer`], [`ibft::IbftApiServer`],
//! [`misc::AdminApiServer`], [`debug::DebugApiServer`], [`perm::PermApiServer`]. All of them
//! read one shared [`RpcBackend`] (the store, chain config, pool, chain events and local
//! allowlists); the node builds it and
//! calls [`start`]. Semantics and error codes follow Besu (see `docs/rpc.md` for where we
//! deliberately differ). Limits on request and response size, batch size, connections,
//! filters and log ranges live in [`RpcConfig`].

pub mod auth;
mod backend;
pub mod debug;
pub mod error;
pub mod eth;
mod fees;
pub mod filters;
pub mod ibft;
pub mod misc;
pub mod perm;
mod pubsub;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use auth::JwtAlgorithm;
pub use backend::{
    BlockRef, BlockState, ChainEvents, NewBlock, NodeStatus, NodeSummary, PeerSummary, RpcBackend,
    Standalone, TxGossip,
};
use jsonrpsee::server::{
    BatchRequestConfig, RpcModule, Server, ServerConfig, ServerHandle,
    middleware::http::HostFilterLayer,
};
use jsonrpsee::{core::traits::IdProvider, types::SubscriptionId};
use serde::{Deserialize, Serialize};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::debug::{DebugApiServer, DebugRpc};
use crate::eth::{EthApiServer, EthRpc};
use crate::filters::FilterManager;
use crate::ibft::{IbftApiServer, IbftRpc};
use crate::misc::{AdminApiServer, MiscRpc, NetApiServer, TxpoolApiServer, Web3ApiServer};
use crate::perm::{PermApiServer, PermRpc};

/// Namespaces this server can expose.
/// `perm` is never on by default, as in Besu.
pub const KNOWN_APIS: &[&str] = &[
    "eth", "net", "web3", "txpool", "ibft", "admin", "debug", "perm",
];

/// JSON-RPC server settings (`[rpc]` in the node's config file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct RpcConfig {
    /// Serve JSON-RPC over HTTP.
    pub http_enabled: bool,
    /// HTTP listen address.
    pub http_addr: SocketAddr,
    /// Serve JSON-RPC over WebSocket (needed for `eth_subscribe`).
    pub ws_enabled: bool,
    /// WebSocket listen address.
    pub ws_addr: SocketAddr,
    /// Namespaces to expose (any of `eth`, `net`, `web3`, `txpool`, `ibft`, `admin`, `debug`,
    /// `perm`).
    pub apis: Vec<String>,
    /// Origins browsers may call from (`*` for any; empty: no CORS headers).
    pub cors_origins: Vec<String>,
    /// Host header values accepted (`*` for any), against DNS rebinding.
    pub host_allowlist: Vec<String>,
    /// Largest request body, in bytes.
    pub max_request_bytes: u32,
    /// Largest response body, in bytes.
    pub max_response_bytes: u32,
    /// Most calls in one batch.
    pub max_batch_size: u32,
    /// Most simultaneous connections per transport.
    pub max_connections: u32,
    /// Most subscriptions per WebSocket connection.
    pub max_subscriptions_per_connection: u32,
    /// Widest block range of one `eth_getLogs` (Besu's `--rpc-max-logs-range`).
    pub max_logs_range: u64,
    /// Most logs one query may return.
    pub max_logs: usize,
    /// Most installed polling filters.
    pub max_filters: usize,
    /// Seconds a filter lives without being polled.
    pub filter_timeout_secs: u64,
    /// Gas ceiling of `eth_call` and `eth_estimateGas`.
    pub gas_cap: u64,
    /// Most expensive calls (`eth_call`, `eth_estimateGas`, `eth_getLogs`, `eth_getProof`)
    /// running at once; more wait their turn. They run off the async workers either way.
    pub max_concurrent_heavy_calls: usize,
    /// Priority fee `eth_maxPriorityFeePerGas` suggests, in wei.
    pub suggested_priority_fee: u64,
    /// Most storage keys in one `eth_getProof`.
    pub max_proof_keys: usize,
    /// Require a JWT for every method outside `authentication-methods-no-auth`, on both
    /// transports (Besu's `--rpc-http-authentication-enabled`).
    pub authentication_enabled: bool,
    /// File with the HS256 shared secret: hex (optional `0x`), at least 32 bytes.
    pub authentication_jwt_secret_file: Option<PathBuf>,
    /// PEM public key file verifying tokens signed with `authentication-jwt-algorithm`.
    pub authentication_jwt_public_key_file: Option<PathBuf>,
    /// Algorithm of the public key (`RS256`, `RS384`, `RS512`, `ES256`, `ES384`).
    pub authentication_jwt_algorithm: JwtAlgorithm,
    /// Methods callable without a token (Besu's `--rpc-http-api-methods-no-auth`).
    pub authentication_methods_no_auth: Vec<String>,
}

impl Default for RpcConfig {
    fn default() -> Self {
        Self {
            http_enabled: true,
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8545)),
            ws_enabled: true,
            ws_addr: SocketAddr::from(([127, 0, 0, 1], 8546)),
            apis: ["eth", "net", "web3", "txpool", "ibft", "admin", "debug"]
                .map(String::from)
                .to_vec(),
            cors_origins: Vec::new(),
            host_allowlist: vec!["localhost".into(), "127.0.0.1".into()],
            max_request_bytes: 5 * 1024 * 1024,
            max_response_bytes: 32 * 1024 * 1024,
            max_batch_size: 1024,
            max_connections: 512,
            max_subscriptions_per_connection: 1024,
            max_logs_range: 5000,
            max_logs: 20_000,
            max_filters: 4096,
            filter_timeout_secs: 300,
            gas_cap: 50_000_000,
            max_concurrent_heavy_calls: std::thread::available_parallelism()
                .map_or(2, std::num::NonZeroUsize::get),
            suggested_priority_fee: 0,
            max_proof_keys: 1024,
            authentication_enabled: false,
            authentication_jwt_secret_file: None,
            authentication_jwt_public_key_file: None,
            authentication_jwt_algorithm: JwtAlgorithm::default(),
            authentication_methods_no_auth: Vec::new(),
        }
    }
}

/// A configuration the server cannot start with.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// An unknown namespace in `apis`.
    #[error("unknown RPC api {0:?}; known: eth, net, web3, txpool, ibft, admin, debug, perm")]
    UnknownApi(String),
    /// A bad host allowlist entry.
    #[error("invalid host allowlist entry: {0}")]
    HostAllowlist(String),
    /// A bad CORS origin.
    #[error("invalid CORS origin {0:?}")]
    CorsOrigin(String),
    /// `authentication-enabled` without a key to verify tokens with.
    #[error(
        "[rpc] authentication-enabled needs [rpc] authentication-jwt-secret-file or \
         authentication-jwt-public-key-file"
    )]
    AuthKeyMissing,
    /// Both a secret and a public key were given.
    #[error(
        "[rpc] authentication-jwt-secret-file and authentication-jwt-public-key-file \
         exclude each other; set one"
    )]
    AuthKeyConflict,
    /// A key file could not be read.
    #[error("{option}: cannot read {}: {source}", path.display())]
    AuthKeyFile {
        /// The config key naming the file.
        option: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A key file does not hold a usable key.
    #[error("{option}: {}: {reason}", path.display())]
    AuthKeyMalformed {
        /// The config key naming the file.
        option: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The HS256 secret is too short to be safe.
    #[error(
        "[rpc] authentication-jwt-secret-file: {}: secret has {got} bytes, need at least {min}",
        path.display()
    )]
    AuthSecretTooShort {
        /// The file.
        path: PathBuf,
        /// Bytes in the file's secret.
        got: usize,
        /// Bytes required.
        min: usize,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

impl RpcConfig {
    /// Checks the settings that could otherwise fail only at start.
    pub fn validate(&self) -> Result<(), RpcError> {
        if let Some(api) = self
            .apis
            .iter()
            .find(|api| !KNOWN_APIS.contains(&api.as_str()))
        {
            return Err(RpcError::UnknownApi(api.clone()));
        }
        self.cors_layer()?;
        self.host_filter()?;
        auth::Auth::from_config(self)?;
        Ok(())
    }

    /// The Host-header filter, or `None` when any host is allowed.
    fn host_filter(&self) -> Result<Option<HostFilterLayer>, RpcError> {
        if self.host_allowlist.iter().any(|h| h == "*") {
            return Ok(None);
        }
        // Accept each allowed host with any port, as Besu does.
        let patterns = self
            .host_allowlist
            .iter()
            .flat_map(|h| [h.clone(), format!("{h}:*")])
            .collect::<Vec<_>>();
        HostFilterLayer::new(patterns)
            .map(Some)
            .map_err(|e| RpcError::HostAllowlist(e.to_string()))
    }

    fn cors_layer(&self) -> Result<Option<CorsLayer>, RpcError> {
        if self.cors_origins.is_empty() {
            return Ok(None);
        }
        let origin = if self.cors_origins.iter().any(|o| o == "*") {
            AllowOrigin::any()
        } else {
            let origins = self
                .cors_origins
                .iter()
                .map(|o| o.parse().map_err(|_| RpcError::CorsOrigin(o.clone())))
                .collect::<Result<Vec<_>, _>>()?;
            AllowOrigin::list(origins)
        };
        Ok(Some(
            CorsLayer::new()
                .allow_origin(origin)
                .allow_methods([http::Method::POST, http::Method::GET])
                .allow_headers([http::header::CONTENT_TYPE]),
        ))
    }
}

/// The running servers.
#[derive(Debug)]
pub struct RpcServerHandle {
    /// Bound HTTP address, if serving HTTP.
    pub http_addr: Option<SocketAddr>,
    /// Bound WebSocket address, if serving WebSocket.
    pub ws_addr: Option<SocketAddr>,
    handles: Vec<ServerHandle>,
}

impl RpcServerHandle {
    /// Stops accepting requests and waits until the servers have stopped.
    pub async fn stop(self) {
        for handle in &self.handles {
            // Already stopped is fine.
            let _ = handle.stop();
        }
        for handle in self.handles {
            handle.stopped().await;
        }
    }
}

/// Subscription ids like geth's and Besu's: `0x` and 32 hex digits.
#[derive(Debug)]
struct HexIdProvider(std::collections::hash_map::RandomState);

impl IdProvider for HexIdProvider {
    fn next_id(&self) -> SubscriptionId<'static> {
        use std::hash::BuildHasher;
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let id = (u128::from(self.0.hash_one(n)) << 64) | u128::from(n);
        SubscriptionId::Str(format!("0x{id:032x}").into())
    }
}

/// The merged module of the configured namespaces.
pub fn module(backend: Arc<RpcBackend>) -> Result<RpcModule<()>, RpcError> {
    backend.config.validate()?;
    let filters = Arc::new(FilterManager::new(
        backend.config.max_filters,
        Duration::from_secs(backend.config.filter_timeout_secs),
    ));
    filters.spawn_pending_feed(&backend);
    let mut module = RpcModule::new(());
    let misc = MiscRpc::new(backend.clone());
    let eth = EthRpc::new(backend.clone(), filters);
    for api in &backend.config.apis {
        // Method names never collide across namespaces, so merging cannot fail.
        let merged = match api.as_str() {
            "eth" => module.merge(EthApiServer::into_rpc(eth.clone())),
            "net" => module.merge(NetApiServer::into_rpc(misc.clone())),
            "web3" => module.merge(Web3ApiServer::into_rpc(misc.clone())),
            "txpool" => module.merge(TxpoolApiServer::into_rpc(misc.clone())),
            "ibft" => module.merge(IbftRpc::new(backend.clone()).into_rpc()),
            "admin" => module.merge(AdminApiServer::into_rpc(misc.clone())),
            "debug" => module.merge(DebugRpc::new(eth.clone()).into_rpc()),
            "perm" => module.merge(PermRpc::new(backend.clone()).into_rpc()),
            other => return Err(RpcError::UnknownApi(other.to_string())),
        };
        if let Err(err) = merged {
            tracing::warn!(%err, api, "duplicate RPC method");
        }
    }
    Ok(module)
}

/// Starts the HTTP and WebSocket servers the config enables.
pub async fn start(backend: Arc<RpcBackend>) -> Result<RpcServerHandle, RpcError> {
    let config = backend.config.clone();
    let module = module(backend)?;
    let mut handle = RpcServerHandle {
        http_addr: None,
        ws_addr: None,
        handles: Vec::new(),
    };
    if config.http_enabled {
        let (addr, server) =
            serve(&config, config.http_addr, Transport::Http, module.clone()).await?;
        handle.http_addr = Some(addr);
        handle.handles.push(server);
    }
    if config.ws_enabled {
        let (addr, server) = serve(&config, config.ws_addr, Transport::Ws, module).await?;
        handle.ws_addr = Some(addr);
        handle.handles.push(server);
    }
    Ok(handle)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Transport {
    Http,
    Ws,
}

async fn serve(
    config: &RpcConfig,
    addr: SocketAddr,
    transport: Transport,
    module: RpcModule<()>,
) -> Result<(SocketAddr, ServerHandle), RpcError> {
    let mut settings = ServerConfig::builder()
        .max_request_body_size(config.max_request_bytes)
        .max_response_body_size(config.max_response_bytes)
        .max_connections(config.max_connections)
        .max_subscriptions_per_connection(config.max_subscriptions_per_connection)
        .set_batch_request_config(BatchRequestConfig::Limit(config.max_batch_size))
        .set_id_provider(HexIdProvider(Default::default()));
    settings = match transport {
        Transport::Http => settings.http_only(),
        Transport::Ws => settings.ws_only(),
    };
    let hosts = config.host_filter()?;
    let auth = auth::Auth::from_config(config)?;
    // Innermost, so a 401 still carries CORS headers and foreign hosts are refused first.
    // On WebSocket the upgrade request passes here; its token covers the whole connection.
    let middleware = tower::ServiceBuilder::new()
        .option_layer(config.cors_layer()?)
        .option_layer(hosts)
        .option_layer(auth.as_ref().map(|a| a.http.clone()));
    let rpc_middleware = jsonrpsee::server::middleware::rpc::RpcServiceBuilder::new()
        .option_layer(auth.map(|a| a.rpc));
    let server = Server::builder()
        .set_config(settings.build())
        .set_http_middleware(middleware)
        .set_rpc_middleware(rpc_middleware)
        .build(addr)
        .await
        .map_err(|source| RpcError::Bind { addr, source })?;
    let local = server
        .local_addr()
        .map_err(|source| RpcError::Bind { addr, source })?;
    Ok((local, server.start(module)))
}

/// Milliseconds since the Unix epoch (pool arrival times).
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}
