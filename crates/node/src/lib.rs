//! The HealthChain node: opens the data directory, initialises or checks the genesis block,
//! builds the transaction pool, starts JSON-RPC and (on a validator) block production, and
//! shuts all of it down in order.
//!
//! Only this crate picks the MDBX store; everything it wires together sees the storage traits.
//! Until the IBFT 2.0 engine lands, a validator node seals blocks alone on the block period
//! (a single-validator dev chain); see `docs/architecture.md`.

mod config;
mod datadir;
mod producer;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::{Address, B256};
use healthchain_chainspec::ChainConfig;
use healthchain_rpc::{ChainEvents, NetworkStatus, RpcBackend, RpcServerHandle};
use healthchain_storage_api::StorageError;
use healthchain_storage_mdbx::{DatabaseConfig, Durability, MdbxStore};
use healthchain_txpool::SharedPool;
use tokio::sync::watch;

pub use config::{
    ConfigError, DurabilitySetting, NodeConfig, NodeSection, StorageConfig, TxPoolConfig,
    ValidatorConfig,
};
pub use datadir::{DataDir, GenesisError, GenesisFile, init_genesis, load_genesis};
pub use producer::{NodeKey, NodeKeyError};

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
    /// The validator key is unusable.
    #[error(transparent)]
    Key(#[from] NodeKeyError),
}

/// A running node.
#[derive(Debug)]
pub struct NodeHandle {
    /// Bound HTTP JSON-RPC address.
    pub http_addr: Option<std::net::SocketAddr>,
    /// Bound WebSocket JSON-RPC address.
    pub ws_addr: Option<std::net::SocketAddr>,
    /// The genesis block hash.
    pub genesis_hash: B256,
    /// The sealing address, on a validator.
    pub validator: Option<Address>,
    /// The data directory.
    pub datadir: PathBuf,
    rpc: RpcServerHandle,
    producer: Option<tokio::task::JoinHandle<()>>,
    shutdown: watch::Sender<bool>,
    store: Arc<MdbxStore>,
}

impl NodeHandle {
    /// Stops block production (finishing the block in progress), then RPC, then flushes the
    /// database.
    pub async fn shutdown(self) -> Result<(), NodeError> {
        // Receivers may be gone already.
        let _ = self.shutdown.send(true);
        if let Some(producer) = self.producer
            && let Err(err) = producer.await
        {
            tracing::warn!(%err, "block producer ended abnormally");
        }
        self.rpc.stop().await;
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
    let store = Arc::new(MdbxStore::open(
        &datadir.db(),
        DatabaseConfig { durability },
    )?);
    let (genesis, genesis_hash) = init_genesis(&datadir, store.as_ref(), genesis)?;
    let chain = Arc::new(genesis.config.clone());

    let validator_key = if config.validator.enabled {
        let path = config
            .validator
            .key_file
            .as_deref()
            .ok_or_else(|| ConfigError::Invalid("[validator] enabled needs key-file".into()))?;
        Some(NodeKey::load(path)?)
    } else {
        None
    };

    let pool = Arc::new(SharedPool::new(
        pool_config(&config.txpool, &chain),
        store.as_ref(),
        &chain,
    )?);
    let events = ChainEvents::new(256);
    let mut rpc_config = config.rpc.clone();
    rpc_config.p2p_listening = false;
    let backend = Arc::new(RpcBackend {
        store: store.clone(),
        chain: chain.clone(),
        pool: pool.clone(),
        events: events.clone(),
        config: rpc_config,
        network: Arc::new(NetworkStatus::default()),
        client_version: client_version(),
    });
    let rpc = healthchain_rpc::start(backend).await?;
    if let Some(addr) = rpc.http_addr {
        tracing::info!(%addr, "JSON-RPC over HTTP");
    }
    if let Some(addr) = rpc.ws_addr {
        tracing::info!(%addr, "JSON-RPC over WebSocket");
    }

    let (shutdown, shutdown_rx) = watch::channel(false);
    let validator = validator_key.as_ref().map(NodeKey::address);
    let producer = validator_key.map(|key| {
        let period = block_period(&config.validator, &chain);
        tracing::info!(address = %key.address(), period_ms = period.as_millis() as u64, "sealing blocks");
        let producer = producer::Producer {
            store: store.clone(),
            chain: chain.clone(),
            pool: pool.clone(),
            events: events.clone(),
            beneficiary: key.address(),
            period,
        };
        tokio::spawn(producer.run(shutdown_rx))
    });

    Ok(NodeHandle {
        http_addr: rpc.http_addr,
        ws_addr: rpc.ws_addr,
        genesis_hash,
        validator,
        datadir: datadir.path().to_path_buf(),
        rpc,
        producer,
        shutdown,
        store,
    })
}

fn block_period(config: &ValidatorConfig, chain: &ChainConfig) -> Duration {
    let ms = config.block_period_ms.unwrap_or_else(|| {
        chain
            .ibft2
            .as_ref()
            .map_or(1, |ibft| ibft.block_period_seconds.max(1))
            .saturating_mul(1000)
    });
    Duration::from_millis(ms.max(1))
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
