//! The node's configuration file: one TOML document of per-component sections. Every
//! section rejects unknown keys and every key has a documented default (see
//! `docs/configuration.md` and `genesis/node.example.toml`).

use std::path::{Path, PathBuf};

use alloy_primitives::U256;
use healthchain_network::NetworkConfig;
use healthchain_permissioning::PermissionsConfig;
use healthchain_rpc::RpcConfig;
use serde::{Deserialize, Serialize};

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct NodeConfig {
    /// Data directory and chain.
    pub node: NodeSection,
    /// Database settings.
    pub storage: StorageConfig,
    /// JSON-RPC servers.
    pub rpc: RpcConfig,
    /// Transaction pool.
    pub txpool: TxPoolConfig,
    /// Peer-to-peer network.
    pub network: NetworkConfig,
    /// IBFT 2.0 settings that are this node's own (the chain's are in the genesis).
    pub consensus: ConsensusConfig,
    /// Prometheus metrics.
    pub metrics: MetricsConfig,
    /// Node and account permissioning (local allowlists and on-chain rules).
    pub permissions: PermissionsConfig,
    /// The encrypted record (blob) store.
    pub blobs: crate::BlobsConfig,
}

/// `[node]`: where the data lives and which chain it is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct NodeSection {
    /// Data directory (required unless given by `--datadir`).
    pub datadir: Option<PathBuf>,
    /// Besu-format genesis file; needed the first time, checked against the database after.
    pub genesis: Option<PathBuf>,
    /// The node key (hex secp256k1 private key): the node's p2p identity and, when its
    /// address is in the validator set, its validator key. Default `<datadir>/key`,
    /// created on first start.
    pub key_file: Option<PathBuf>,
}

/// `[storage]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct StorageConfig {
    /// `durable` (fsync every block) or `safe-no-sync` (flush at most every 10 s).
    pub durability: DurabilitySetting,
}

/// How hard each block is pushed to disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DurabilitySetting {
    /// fsync on every commit.
    #[default]
    Durable,
    /// Commits survive a process crash; an OS crash may lose the last seconds.
    SafeNoSync,
}

/// `[txpool]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct TxPoolConfig {
    /// Most transactions held, pending and queued together.
    pub max_transactions: usize,
    /// Most transactions per sender waiting behind a nonce gap. A sender's contiguous run
    /// of executable transactions is limited only by `max-transactions`.
    pub max_queued_per_sender: usize,
    /// Furthest a nonce may be ahead of the sender's account nonce.
    pub max_nonce_distance: u64,
    /// Largest encoded transaction, in bytes.
    pub max_tx_bytes: usize,
    /// Percentage a replacement must raise the fees by (forced to 0 on zero-base-fee
    /// chains, as Besu does).
    pub price_bump_percent: u64,
    /// Lowest gas price accepted, in wei (Besu's `--min-gas-price`; 0 for free-gas chains).
    pub min_gas_price: u64,
    /// Most fee (gas x price) one RPC-submitted transaction may pay, in wei; 0 disables the
    /// cap (Besu's `--rpc-tx-feecap`).
    pub tx_fee_cap: U256,
    /// Accept legacy transactions signed without a chain id.
    pub allow_unprotected: bool,
}

impl Default for TxPoolConfig {
    /// The pool's own defaults (`healthchain_txpool::PoolConfig`), in config-file units.
    fn default() -> Self {
        let pool = healthchain_txpool::PoolConfig::default();
        Self {
            max_transactions: pool.max_transactions,
            max_queued_per_sender: pool.max_queued_per_sender,
            max_nonce_distance: pool.max_nonce_distance,
            max_tx_bytes: pool.max_tx_bytes,
            price_bump_percent: pool.price_bump_percent,
            min_gas_price: u64::try_from(pool.min_gas_price).unwrap_or(u64::MAX),
            tx_fee_cap: pool.tx_fee_cap_wei.unwrap_or_default(),
            allow_unprotected: pool.allow_unprotected,
        }
    }
}

/// `[consensus]`: this node's IBFT 2.0 settings. The block period, round timeout base and
/// epoch come from the genesis `ibft2` section, as in Besu.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ConsensusConfig {
    /// Cap on the doubling round timeout, in milliseconds (Besu has none; see
    /// `docs/consensus.md`).
    pub max_round_timeout_ms: u64,
    /// Move to a higher round once f + 1 validators ask for it.
    pub round_catch_up: bool,
}

impl Default for ConsensusConfig {
    fn default() -> Self {
        let ibft = healthchain_ibft::IbftConfig::default();
        Self {
            max_round_timeout_ms: ibft.max_round_timeout_ms,
            round_catch_up: ibft.round_catch_up,
        }
    }
}

/// `[metrics]`: Prometheus text on `http://<addr>/metrics`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct MetricsConfig {
    /// Serve metrics.
    pub enabled: bool,
    /// Listen address.
    pub addr: std::net::SocketAddr,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], 9545)),
        }
    }
}

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is malformed, has an unknown key or a wrongly typed value.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, naming the key and line.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("invalid config: {0}")]
    Invalid(String),
}

impl NodeConfig {
    /// Reads a config file; relative paths inside it are taken relative to the file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = Self::from_toml(&text).map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &mut Option<PathBuf>| {
            if let Some(p) = p.as_mut().filter(|p| p.is_relative()) {
                *p = base.join(&*p);
            }
        };
        resolve(&mut config.node.datadir);
        resolve(&mut config.node.genesis);
        resolve(&mut config.node.key_file);
        resolve(&mut config.permissions.config_file);
        resolve(&mut config.blobs.dir);
        resolve(&mut config.rpc.authentication_jwt_secret_file);
        resolve(&mut config.rpc.authentication_jwt_public_key_file);
        Ok(config)
    }

    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.rpc
            .validate()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if self.node.datadir.is_none() {
            return Err(ConfigError::Invalid(
                "no data directory: set [node] datadir or pass --datadir".into(),
            ));
        }
        let capacities = [
            (
                "[txpool] max-transactions",
                self.txpool.max_transactions as u64,
            ),
            ("[txpool] max-tx-bytes", self.txpool.max_tx_bytes as u64),
            (
                "[rpc] max-request-bytes",
                u64::from(self.rpc.max_request_bytes),
            ),
            (
                "[rpc] max-response-bytes",
                u64::from(self.rpc.max_response_bytes),
            ),
            ("[rpc] max-batch-size", u64::from(self.rpc.max_batch_size)),
            ("[rpc] max-connections", u64::from(self.rpc.max_connections)),
            ("[rpc] max-filters", self.rpc.max_filters as u64),
            ("[rpc] max-logs", self.rpc.max_logs as u64),
            ("[rpc] gas-cap", self.rpc.gas_cap),
            ("[blobs] max-blob-bytes", self.blobs.max_blob_bytes),
        ];
        if let Some((key, _)) = capacities.iter().find(|(_, value)| *value == 0) {
            return Err(ConfigError::Invalid(format!("{key} must be at least 1")));
        }
        if self.consensus.max_round_timeout_ms == 0 {
            return Err(ConfigError::Invalid(
                "[consensus] max-round-timeout-ms must be at least 1".into(),
            ));
        }
        if self.network.max_message_bytes < 64 * 1024 {
            return Err(ConfigError::Invalid(
                "[network] max-message-bytes must be at least 65536".into(),
            ));
        }
        for node in self
            .network
            .bootnodes
            .iter()
            .chain(&self.network.static_peers)
        {
            healthchain_network::PeerAddr::parse(node)
                .map_err(|e| ConfigError::Invalid(format!("[network] {e}")))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_documented_defaults() {
        let config = NodeConfig::from_toml("").unwrap();
        assert_eq!(config, NodeConfig::default());
        assert_eq!(config.rpc.http_addr.port(), 8545);
        assert_eq!(config.rpc.ws_addr.port(), 8546);
        assert_eq!(config.txpool.min_gas_price, 1_000);
        assert_eq!(config.storage.durability, DurabilitySetting::Durable);
    }

    #[test]
    fn sections_parse() {
        let config = NodeConfig::from_toml(
            r#"
            [node]
            datadir = "/data"
            [storage]
            durability = "safe-no-sync"
            [rpc]
            http-addr = "127.0.0.1:9545"
            apis = ["eth", "net"]
            [txpool]
            min-gas-price = 0
            tx-fee-cap = "0x0"
            [network]
            listen-addr = "127.0.0.1:30304"
            bootnodes = ["enode://79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8@127.0.0.1:30303"]
            [consensus]
            max-round-timeout-ms = 30000
            [metrics]
            enabled = true
            "#,
        )
        .unwrap();
        assert_eq!(config.node.datadir, Some(PathBuf::from("/data")));
        assert_eq!(config.storage.durability, DurabilitySetting::SafeNoSync);
        assert_eq!(config.rpc.http_addr.port(), 9545);
        assert_eq!(config.rpc.apis, vec!["eth", "net"]);
        assert_eq!(config.txpool.tx_fee_cap, U256::ZERO);
        assert_eq!(config.network.listen_addr.port(), 30304);
        assert_eq!(config.consensus.max_round_timeout_ms, 30_000);
        assert!(config.metrics.enabled);
        config.validate().unwrap();
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        for (text, key) in [
            (
                "[rpc]
http-adr = \"127.0.0.1:1\"",
                "http-adr",
            ),
            (
                "[txpool]
max-txs = 5",
                "max-txs",
            ),
            (
                "[nonsense]
a = 1",
                "nonsense",
            ),
            ("datadir = \"x\"", "datadir"),
        ] {
            let err = NodeConfig::from_toml(text).unwrap_err();
            assert!(err.contains(key), "{text:?}: {err}");
        }
    }

    #[test]
    fn wrong_types_are_rejected() {
        let err = NodeConfig::from_toml(
            "[rpc]
http-addr = 8545",
        )
        .unwrap_err();
        assert!(err.contains("http-addr"), "{err}");
        let err = NodeConfig::from_toml(
            "[storage]
durability = \"sometimes\"",
        )
        .unwrap_err();
        assert!(err.contains("sometimes"), "{err}");
    }

    #[test]
    fn inconsistent_values_are_rejected() {
        let mut config = NodeConfig::default();
        assert!(config.validate().is_err(), "no datadir");
        config.node.datadir = Some("/d".into());
        config.validate().unwrap();
        config.rpc.apis.push("bogus".into());
        assert!(config.validate().unwrap_err().to_string().contains("bogus"));
        config.rpc.apis.pop();
        config.network.bootnodes = vec!["enode://1234@127.0.0.1:1".into()];
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("enode://1234")
        );
    }

    #[test]
    fn the_example_file_shows_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../genesis/node.example.toml");
        let config = NodeConfig::load(&path).unwrap();
        let defaults = NodeConfig::default();
        assert_eq!(config.storage, defaults.storage);
        assert_eq!(config.txpool, defaults.txpool);
        assert_eq!(config.network, defaults.network);
        assert_eq!(config.consensus, defaults.consensus);
        assert_eq!(config.metrics, defaults.metrics);
        // Only the values marked "example value" differ.
        let mut rpc = config.rpc.clone();
        rpc.max_concurrent_heavy_calls = defaults.rpc.max_concurrent_heavy_calls;
        assert_eq!(rpc, defaults.rpc);
    }

    #[test]
    fn relative_paths_resolve_against_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(
            &path,
            "[node]\ndatadir = \"data\"\ngenesis = \"/abs/g.json\"\n\
             [rpc]\nauthentication-jwt-secret-file = \"jwt.hex\"\n\
             [permissions]\nconfig-file = \"perms.toml\"",
        )
        .unwrap();
        let config = NodeConfig::load(&path).unwrap();
        assert_eq!(config.node.datadir, Some(dir.path().join("data")));
        assert_eq!(config.node.genesis, Some(PathBuf::from("/abs/g.json")));
        assert_eq!(
            config.rpc.authentication_jwt_secret_file,
            Some(dir.path().join("jwt.hex"))
        );
        assert_eq!(
            config.permissions.config_file,
            Some(dir.path().join("perms.toml"))
        );
    }
}
