//! The HealthChain node: opens the data directory, initialises or checks the genesis block,
//! and wires the transaction pool, the libp2p network, the IBFT 2.0 engine, JSON-RPC, the
//! encrypted blob store ([`BlobsConfig`]: HTTP API, read rules, replication) and the
//! metrics endpoint together; then shuts all of it down in order.
//!
//! Only this crate picks the MDBX store; everything it wires together sees the storage
//! traits. See `docs/architecture.md`.

mod blobs;
mod config;
mod datadir;
mod key;
mod metrics;
mod permissions;
mod wiring;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::{Address, B256};
use healthchain_chainspec::ChainConfig;
use healthchain_engine::{Chain, EngineHandle};
use healthchain_ibft::{BlockPeriod, IbftConfig};
use healthchain_network::{AllowAll, ConnectionGate, NetworkHandle};
use healthchain_rpc::{ChainEvents, RpcBackend, RpcServerHandle};
use healthchain_storage_api::{ChainStore, StorageError};
use healthchain_storage_mdbx::{DatabaseConfig, Durability, MdbxStore};
use healthchain_txpool::SharedPool;

pub use blobs::BlobsConfig;
pub use config::{
    ConfigError, ConsensusConfig, DurabilitySetting, MetricsConfig, NodeConfig, NodeSection,
    StorageConfig, TxPoolConfig,
};
pub use datadir::{DataDir, GenesisError, GenesisFile, init_genesis, load_genesis};
pub use healthchain_permissioning::PermissionsConfig;
pub use key::{NodeKeyError, key_from_hex, load_key, random_key, write_key};
pub use permissions::PERMISSIONS_FILE;

/// `web3_clientVersion`: name, version and platform, as other clients report them.
pub fn client_version() -> String {
    format!(
        "healthchain/v{}/{}-{}",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

/// Why the node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Genesis missing or mismatched.
    #[error(transparent)]
    Genesis(#[from] GenesisError),
    /// The database failed.
    #[error("database: {0}")]
    Storage(#[from] StorageError),
    /// The RPC server could not start.
    #[error("JSON-RPC: {0}")]
    Rpc(#[from] healthchain_rpc::RpcError),
    /// The node key is unusable.
    #[error(transparent)]
    Key(#[from] NodeKeyError),
    /// The network could not start.
    #[error("p2p: {0}")]
    Network(#[from] healthchain_network::NetworkError),
    /// The blob store or its HTTP API could not start.
    #[error("blobs: {0}")]
    Blobs(String),
    /// The metrics endpoint could not start.
    #[error("metrics: cannot listen on {addr}: {reason}")]
    Metrics {
        /// The address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
}

/// A running node.
#[derive(Debug)]
pub struct NodeHandle {
    /// Bound HTTP JSON-RPC address.
    pub http_addr: Option<SocketAddr>,
    /// Bound WebSocket JSON-RPC address.
    pub ws_addr: Option<SocketAddr>,
    /// Bound p2p address.
    pub p2p_addr: Option<SocketAddr>,
    /// The node's `enode://` URL, when it runs the network.
    pub enode: Option<String>,
    /// Bound metrics address.
    pub metrics_addr: Option<SocketAddr>,
    /// Bound blob HTTP API address.
    pub blobs_addr: Option<SocketAddr>,
    /// The genesis block hash.
    pub genesis_hash: B256,
    /// The node key's address (it validates while this is in the validator set).
    pub address: Address,
    /// The data directory.
    pub datadir: PathBuf,
    /// The consensus engine.
    pub engine: EngineHandle,
    network: Option<NetworkHandle>,
    rpc: RpcServerHandle,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    store: Arc<MdbxStore>,
}

impl NodeHandle {
    /// Stops RPC, the network and consensus (finishing a block import in progress), then
    /// flushes and closes the database.
    pub async fn shutdown(self) -> Result<(), NodeError> {
        self.rpc.stop().await;
        if let Some(network) = &self.network {
            network.shutdown().await;
        }
        self.engine.shutdown().await;
        for task in self.tasks {
            task.abort();
            let _ = task.await;
        }
        drop(self.network);
        drop(self.engine);
        self.store.flush()?;
        // Connection and subscription tasks may still hold the store for a moment after
        // the servers report stopped; wait (bounded) so the database is closed when this
        // returns and a restart in the same process can reopen it.
        let store = self.store;
        for _ in 0..500 {
            if Arc::strong_count(&store) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if Arc::strong_count(&store) > 1 {
            tracing::warn!("database still in use 5 s after shutdown; closing when released");
        }
        drop(store);
        tracing::info!("node stopped");
        Ok(())
    }
}

/// The state machine's settings: the chain's (genesis `ibft2`) and this node's.
pub fn ibft_config(chain: &ChainConfig, consensus: &ConsensusConfig) -> IbftConfig {
    let defaults = IbftConfig::default();
    let Some(ibft) = &chain.ibft2 else {
        return defaults;
    };
    IbftConfig {
        request_timeout_ms: ibft.request_timeout_seconds.saturating_mul(1000).max(1),
        max_round_timeout_ms: consensus.max_round_timeout_ms,
        block_period: match ibft.block_period_ms {
            Some(ms) => BlockPeriod::Millis(ms),
            None => BlockPeriod::Seconds(ibft.block_period_seconds),
        },
        future_messages_limit: usize::try_from(ibft.future_messages_limit).unwrap_or(usize::MAX),
        future_messages_max_distance: ibft.future_messages_max_distance,
        round_catch_up: consensus.round_catch_up,
        ..defaults
    }
}

/// Starts a node. `genesis` overrides `[node] genesis` (the dev command passes its own).
pub async fn launch(
    config: NodeConfig,
    genesis: Option<GenesisFile>,
) -> Result<NodeHandle, NodeError> {
    config.validate()?;
    let datadir = DataDir::new(config.node.datadir.clone().unwrap_or_default());
    let durability = match config.storage.durability {
        DurabilitySetting::Durable => Durability::Durable,
        DurabilitySetting::SafeNoSync => Durability::SafeNoSync,
    };
    let genesis = match genesis {
        Some(genesis) => Some(genesis),
        None => config
            .node
            .genesis
            .as_deref()
            .map(datadir::load_genesis)
            .transpose()?,
    };
    std::fs::create_dir_all(datadir.path())
        .map_err(|e| GenesisError::Io(format!("creating {}: {e}", datadir.path().display())))?;
    let key = match &config.node.key_file {
        Some(path) => load_key(path, false)?,
        None => load_key(&datadir.path().join("key"), true)?,
    };
    let store = Arc::new(MdbxStore::open(
        &datadir.db(),
        DatabaseConfig { durability },
    )?);
    let (genesis, genesis_hash) = init_genesis(&datadir, store.as_ref(), genesis)?;
    let chain = Arc::new(genesis.config.clone());
    if chain.ibft2.is_none() {
        return Err(GenesisError::Io(
            "the genesis has no config.ibft2 section: HealthChain runs IBFT 2.0 chains".into(),
        )
        .into());
    }

    let permissions = permissions::build(
        &config.permissions,
        datadir.path(),
        &config.network,
        store.clone() as Arc<dyn ChainStore>,
        chain.clone(),
    )?;
    let mut pool = SharedPool::new(pool_config(&config.txpool, &chain), store.as_ref(), &chain)?;
    if let Some(permissions) = permissions.as_ref().filter(|p| p.checks_accounts()) {
        pool = pool.with_filter(permissions.clone());
    }
    let pool = Arc::new(pool);
    let events = ChainEvents::new(1024);
    let gate = match permissions.as_ref().filter(|p| p.checks_nodes()) {
        Some(permissions) => Some(Arc::new(permissions::PermissionGate {
            permissions: permissions.clone(),
            fixed: permissions::fixed_nodes(&config.network)?
                .into_iter()
                .map(|(node, _)| node)
                .collect(),
            metrics: std::sync::OnceLock::new(),
        })),
        None => None,
    };

    let network = if config.network.enabled {
        let tag = format!("{:x}", genesis_hash)
            .chars()
            .take(16)
            .collect::<String>();
        let secret: [u8; 32] = key.secret_bytes().0;
        let gate: Arc<dyn ConnectionGate> = match &gate {
            Some(gate) => gate.clone(),
            None => Arc::new(AllowAll),
        };
        let (handle, network_events) =
            healthchain_network::start(config.network.clone(), &secret, &tag, gate).await?;
        Some((handle, network_events))
    } else {
        None
    };
    let network_handle = network.as_ref().map(|(h, _)| h.clone());

    let engine_chain = Arc::new(
        Chain::new(
            store.clone(),
            chain.clone(),
            pool.clone(),
            Arc::new(wiring::Observer {
                events: events.clone(),
                // Besu re-checks live connections after every block.
                recheck: network_handle.clone().filter(|_| gate.is_some()),
            }),
        )
        .with_max_message_bytes(config.network.max_message_bytes),
    );
    let engine = healthchain_engine::spawn(
        engine_chain,
        ibft_config(&chain, &config.consensus),
        key.clone(),
        network_handle.clone(),
        genesis_hash,
    );
    if let Some(gate) = &gate {
        let _ = gate.metrics.set(engine.metrics.clone());
    }
    if let (Some(local), Some(network)) = (
        permissions.as_ref().and_then(|p| p.local()),
        network_handle.clone(),
    ) {
        local.set_on_nodes_changed(Box::new(move || network.recheck()));
    }

    let blobs = if config.blobs.enabled {
        let dir = config
            .blobs
            .dir
            .clone()
            .unwrap_or_else(|| datadir.path().join("blobs"));
        Some(blobs::BlobService::open(
            &config.blobs,
            dir,
            store.clone(),
            chain.clone(),
            network_handle.clone(),
        )?)
    } else {
        None
    };

    let mut tasks = Vec::new();
    if let Some((handle, network_events)) = network {
        tasks.push(tokio::spawn(wiring::dispatch(
            network_events,
            wiring::Dispatch {
                network: handle,
                engine: engine.clone(),
                store: store.clone(),
                pool: pool.clone(),
                chain_events: events.clone(),
                genesis: genesis_hash,
                blobs: blobs.clone(),
                // Room for the response framing.
                max_response_bytes: config.network.max_message_bytes.saturating_sub(64 * 1024),
            },
        )));
    }

    let status = Arc::new(wiring::Status {
        network: network_handle.clone(),
        metrics: engine.metrics.clone(),
    });
    let tx_gossip: Option<healthchain_rpc::TxGossip> = network_handle.clone().map(|net| {
        Arc::new(move |raw: &[u8]| {
            net.publish(healthchain_network::Topic::Transactions, raw.to_vec())
        }) as healthchain_rpc::TxGossip
    });
    let backend = Arc::new(
        RpcBackend {
            store: store.clone(),
            chain: chain.clone(),
            pool: pool.clone(),
            events,
            config: config.rpc.clone(),
            node: status.clone(),
            tx_gossip,
            votes: Some(engine.votes.clone()),
            client_version: client_version(),
        }
        .with_permissions(permissions.as_ref().and_then(|p| p.local().cloned())),
    );
    let rpc = healthchain_rpc::start(backend).await?;
    if let Some(addr) = rpc.http_addr {
        tracing::info!(%addr, "JSON-RPC over HTTP");
    }
    if let Some(addr) = rpc.ws_addr {
        tracing::info!(%addr, "JSON-RPC over WebSocket");
    }

    let blobs_addr = match blobs.filter(|_| config.blobs.http_enabled) {
        Some(service) => {
            let (addr, task) = blobs::serve(config.blobs.http_addr, service).await?;
            tracing::info!(%addr, "blob store on /blobs and /keys");
            tasks.push(task);
            Some(addr)
        }
        None => None,
    };

    let metrics_addr = if config.metrics.enabled {
        let (addr, task) = metrics::serve(
            config.metrics.addr,
            engine.metrics.clone(),
            status,
            store.clone(),
        )
        .await?;
        tracing::info!(%addr, "metrics on /metrics");
        tasks.push(task);
        Some(addr)
    } else {
        None
    };

    let p2p_addr = network_handle.as_ref().map(|n| n.local().listen);
    let enode = network_handle
        .as_ref()
        .map(|n| n.local().node.enode_url(n.local().listen));
    tracing::info!(address = %key.address(), enode = ?enode, "node key");
    Ok(NodeHandle {
        http_addr: rpc.http_addr,
        ws_addr: rpc.ws_addr,
        p2p_addr,
        enode,
        metrics_addr,
        blobs_addr,
        genesis_hash,
        address: key.address(),
        datadir: datadir.path().to_path_buf(),
        engine,
        network: network_handle,
        rpc,
        tasks,
        store,
    })
}

fn pool_config(config: &TxPoolConfig, chain: &ChainConfig) -> healthchain_txpool::PoolConfig {
    healthchain_txpool::PoolConfig {
        max_transactions: config.max_transactions,
        max_queued_per_sender: config.max_queued_per_sender,
        max_nonce_distance: config.max_nonce_distance,
        max_tx_bytes: config.max_tx_bytes,
        // Besu forces the bump to zero on zero-base-fee chains.
        price_bump_percent: if chain.zero_base_fee {
            0
        } else {
            config.price_bump_percent
        },
        min_gas_price: u128::from(config.min_gas_price),
        tx_fee_cap_wei: (!config.tx_fee_cap.is_zero()).then_some(config.tx_fee_cap),
        allow_unprotected: config.allow_unprotected,
    }
}
