//! `healthchain node` and `healthchain dev`: run a node until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use healthchain_node::{GenesisFile, NodeConfig, NodeHandle};

use crate::DurabilityArg;

/// Flags that override the config file.
#[derive(Debug, Clone, Default, Args)]
pub struct NodeArgs {
    /// Data directory (overrides `[node] datadir`).
    #[arg(long)]
    pub datadir: Option<PathBuf>,
    /// Genesis file (overrides `[node] genesis`).
    #[arg(long)]
    pub genesis: Option<PathBuf>,
    /// HTTP JSON-RPC address (overrides `[rpc] http-addr`).
    #[arg(long)]
    pub rpc_http_addr: Option<SocketAddr>,
    /// WebSocket JSON-RPC address (overrides `[rpc] ws-addr`).
    #[arg(long)]
    pub rpc_ws_addr: Option<SocketAddr>,
    /// Commit durability (overrides `[storage] durability`).
    #[arg(long, value_enum)]
    pub durability: Option<DurabilityArg>,
    /// Lowest gas price the pool accepts, in wei (overrides `[txpool] min-gas-price`).
    #[arg(long)]
    pub min_gas_price: Option<u64>,
    /// Node key file (overrides `[node] key-file`).
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// P2P listen address (overrides `[network] listen-addr`).
    #[arg(long)]
    pub p2p_addr: Option<SocketAddr>,
    /// Bootnodes, `enode://…` or multiaddrs, comma-separated (overrides `[network]
    /// bootnodes`).
    #[arg(long, value_delimiter = ',')]
    pub bootnodes: Option<Vec<String>>,
    /// Metrics address; enables metrics (overrides `[metrics]`).
    #[arg(long)]
    pub metrics_addr: Option<SocketAddr>,
}

impl NodeArgs {
    fn apply(&self, config: &mut NodeConfig) {
        if let Some(dir) = &self.datadir {
            config.node.datadir = Some(dir.clone());
        }
        if let Some(genesis) = &self.genesis {
            config.node.genesis = Some(genesis.clone());
        }
        if let Some(addr) = self.rpc_http_addr {
            config.rpc.http_addr = addr;
        }
        if let Some(addr) = self.rpc_ws_addr {
            config.rpc.ws_addr = addr;
        }
        if let Some(durability) = self.durability {
            config.storage.durability = durability.into();
        }
        if let Some(price) = self.min_gas_price {
            config.txpool.min_gas_price = price;
        }
        if let Some(key) = &self.key_file {
            config.node.key_file = Some(key.clone());
        }
        if let Some(addr) = self.p2p_addr {
            config.network.listen_addr = addr;
        }
        if let Some(nodes) = &self.bootnodes {
            config.network.bootnodes = nodes.clone();
        }
        if let Some(addr) = self.metrics_addr {
            config.metrics.enabled = true;
            config.metrics.addr = addr;
        }
    }
}

/// `healthchain node`.
pub(crate) fn node(config_path: Option<&Path>, args: &NodeArgs) -> anyhow::Result<()> {
    let mut config = match config_path {
        Some(path) => NodeConfig::load(path)?,
        None => NodeConfig::default(),
    };
    args.apply(&mut config);
    config.validate()?;
    run_node(config)
}

/// The development chain's genesis, compiled in so `dev` runs from anywhere.
const DEV_GENESIS: &str = include_str!("../../../genesis/dev.json");
/// Its public test keys.
const DEV_KEYS: &str = include_str!("../../../genesis/dev-keys.json");

/// One funded development account.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DevKey {
    /// Address.
    pub address: alloy_primitives::Address,
    /// Private key hex.
    pub private_key: String,
}

/// The development keys file.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct DevKeys {
    /// Funded accounts.
    pub accounts: Vec<DevKey>,
    /// Validator keys.
    pub validators: Vec<DevKey>,
}

/// The compiled-in development keys.
pub fn dev_keys() -> anyhow::Result<DevKeys> {
    serde_json::from_str::<DevKeys>(DEV_KEYS).context("genesis/dev-keys.json")
}

/// The development chain's first ministry admin: Account #0 of the public test keys.
pub fn dev_admin() -> anyhow::Result<alloy_primitives::Address> {
    dev_keys()?
        .accounts
        .first()
        .map(|k| k.address)
        .context("genesis/dev-keys.json lists no account")
}

/// The identity commitment genesis records for an admin registered by a genesis (no
/// off-chain identity record exists for it yet): keccak256 of a fixed label and the address.
pub fn genesis_admin_ref(admin: alloy_primitives::Address) -> alloy_primitives::B256 {
    alloy_primitives::keccak256(
        [b"healthchain genesis admin".as_slice(), admin.as_slice()].concat(),
    )
}

/// Adds the health contracts' pre-deployment (with `admin` as the first ministry admin) to
/// a genesis JSON's `alloc`; an address already allocated there is an error.
pub fn add_health_contracts(
    genesis: &mut serde_json::Value,
    admin: alloy_primitives::Address,
) -> anyhow::Result<()> {
    let timestamp = match &genesis["timestamp"] {
        serde_json::Value::String(s) => u64::from_str_radix(s.trim_start_matches("0x"), 16)
            .with_context(|| format!("genesis timestamp {s:?}"))?,
        serde_json::Value::Number(n) => n.as_u64().context("genesis timestamp")?,
        _ => 0,
    };
    let contracts =
        healthchain_contracts::predeploy_alloc_json(admin, genesis_admin_ref(admin), timestamp)?;
    insert_alloc(genesis, contracts)
}

/// Adds the permissioning contracts (the ingress contracts at 0x…8888 and 0x…9999, their
/// admin list and rules) with their initial admins, accounts and nodes to a genesis JSON's
/// `alloc`; an address already allocated there is an error.
pub fn add_permissioning_contracts(
    genesis: &mut serde_json::Value,
    initial: &healthchain_contracts::permissioning::PermissioningGenesis,
) -> anyhow::Result<()> {
    let contracts = healthchain_contracts::permissioning::permissioning_alloc_json(initial)?;
    insert_alloc(genesis, contracts)
}

fn insert_alloc(
    genesis: &mut serde_json::Value,
    accounts: serde_json::Map<String, serde_json::Value>,
) -> anyhow::Result<()> {
    let alloc = genesis
        .as_object_mut()
        .context("genesis is not a JSON object")?
        .entry("alloc")
        .or_insert_with(|| serde_json::json!({}))
        .as_object_mut()
        .context("genesis alloc is not an object")?;
    for (address, account) in accounts {
        let taken = alloc.keys().any(|k| {
            k.eq_ignore_ascii_case(&address)
                || k.eq_ignore_ascii_case(address.trim_start_matches("0x"))
        });
        anyhow::ensure!(!taken, "genesis alloc already has an account at {address}");
        alloc.insert(address, account);
    }
    Ok(())
}

/// The compiled-in development genesis, with the health contracts pre-deployed (ministry
/// admin: Account #0) and permissioning for validators listening on 127.0.0.1 from
/// [`DEV_P2P_PORT`].
pub fn dev_genesis() -> anyhow::Result<GenesisFile> {
    dev_genesis_with(None, DEV_P2P_PORT)
}

/// Validator 0's p2p port in `healthchain dev`; validator i listens on this + i.
pub(crate) const DEV_P2P_PORT: u16 = 30303;

/// The development chain's initial permissions: Account #0 administers them; the 20
/// development accounts may transact; the four validators at 127.0.0.1, p2p ports from
/// `p2p_port`, may connect.
pub fn dev_permissioning(
    p2p_port: u16,
) -> anyhow::Result<healthchain_contracts::permissioning::PermissioningGenesis> {
    let keys = dev_keys()?;
    let nodes = keys
        .validators
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let key = healthchain_node::key_from_hex(&v.private_key)
                .context("genesis/dev-keys.json: bad validator key")?;
            let id = alloy_primitives::hex::encode(key.public_key());
            let port = u16::try_from(usize::from(p2p_port) + i)
                .context("--p2p-port too high for four validators")?;
            Ok(healthchain_contracts::permissioning::PermissionedNode {
                id,
                host: "127.0.0.1".into(),
                port,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(healthchain_contracts::permissioning::PermissioningGenesis {
        admins: vec![dev_admin()?],
        accounts: keys.accounts.iter().map(|k| k.address).collect(),
        nodes,
    })
}

/// Options of `healthchain dev`.
#[derive(Debug, Clone, Args)]
pub struct DevArgs {
    /// Keep the chain here (a fresh temporary directory, removed on exit, by default); each
    /// validator gets `nodeI/` inside it.
    #[arg(long)]
    pub datadir: Option<PathBuf>,
    /// HTTP JSON-RPC address (of the first validator).
    #[arg(long, default_value = "127.0.0.1:8545")]
    pub rpc_http_addr: SocketAddr,
    /// WebSocket JSON-RPC address (of the first validator).
    #[arg(long, default_value = "127.0.0.1:8546")]
    pub rpc_ws_addr: SocketAddr,
    /// Block period in milliseconds (sets the genesis `xblockperiodmilliseconds`; the
    /// genesis says 1 s).
    #[arg(long)]
    pub block_period_ms: Option<u64>,
    /// Metrics address of the first validator (off by default).
    #[arg(long)]
    pub metrics_addr: Option<SocketAddr>,
    /// P2P port of validator 0 on 127.0.0.1; validator i uses this + i (the genesis node
    /// rules list exactly these).
    #[arg(long, default_value_t = DEV_P2P_PORT)]
    pub p2p_port: u16,
    /// Blob API address (of the first validator; the others keep and replicate blobs but
    /// serve no HTTP).
    #[arg(long, default_value = "127.0.0.1:8547")]
    pub blobs_addr: SocketAddr,
}

/// The dev genesis with a millisecond block period, if asked for, and the node rules for
/// validators listening from `p2p_port`.
fn dev_genesis_with(block_period_ms: Option<u64>, p2p_port: u16) -> anyhow::Result<GenesisFile> {
    let mut json: serde_json::Value =
        serde_json::from_str(DEV_GENESIS).context("genesis/dev.json")?;
    if let Some(ms) = block_period_ms {
        anyhow::ensure!(ms > 0, "--block-period-ms must be at least 1");
        json["config"]["ibft2"]["xblockperiodmilliseconds"] = serde_json::json!(ms);
    }
    add_health_contracts(&mut json, dev_admin()?)?;
    add_permissioning_contracts(&mut json, &dev_permissioning(p2p_port)?)?;
    Ok(GenesisFile::parse(
        serde_json::to_string_pretty(&json)?,
        Path::new("genesis/dev.json"),
    )?)
}

/// `healthchain dev`: the four development validators in one process, connected over
/// libp2p on loopback; JSON-RPC on the first.
pub(crate) fn dev(args: &DevArgs) -> anyhow::Result<()> {
    let keys = dev_keys()?;
    let genesis = dev_genesis_with(args.block_period_ms, args.p2p_port)?;
    let (root, temp) = match &args.datadir {
        Some(dir) => (dir.clone(), None),
        None => {
            let temp = tempfile::Builder::new()
                .prefix("healthchain-dev-")
                .tempdir()
                .context("creating a temporary data directory")?;
            (temp.path().to_path_buf(), Some(temp))
        }
    };
    anyhow::ensure!(
        !keys.validators.is_empty(),
        "genesis/dev-keys.json lists no validator"
    );
    let chain_id = genesis.genesis.config.chain_id;
    runtime()?.block_on(async {
        let mut nodes: Vec<NodeHandle> = Vec::new();
        for (i, validator) in keys.validators.iter().enumerate() {
            let datadir = root.join(format!("node{i}"));
            std::fs::create_dir_all(&datadir)
                .with_context(|| format!("creating {}", datadir.display()))?;
            let key_file = datadir.join("key");
            std::fs::write(&key_file, &validator.private_key)
                .with_context(|| format!("writing {}", key_file.display()))?;
            let mut config = NodeConfig::default();
            config.node.datadir = Some(datadir);
            config.node.key_file = Some(key_file);
            config.txpool.min_gas_price = 0;
            let p2p_port = u16::try_from(usize::from(args.p2p_port) + i)
                .context("--p2p-port too high for four validators")?;
            config.network.listen_addr = std::net::SocketAddr::from(([127, 0, 0, 1], p2p_port));
            // Permissioned as a consortium chain would be: the genesis rules list the
            // development accounts and these four nodes.
            config.permissions = healthchain_node::PermissionsConfig::onchain();
            // Each validator dials the ones started before it: a full mesh.
            config.network.bootnodes = nodes.iter().filter_map(|n| n.enode.clone()).collect();
            if i == 0 {
                config.rpc.http_addr = args.rpc_http_addr;
                config.rpc.ws_addr = args.rpc_ws_addr;
                // Browser dapps (Remix, MetaMask) call a dev node from other origins.
                config.rpc.cors_origins = vec!["*".into()];
                if let Some(addr) = args.metrics_addr {
                    config.metrics.enabled = true;
                    config.metrics.addr = addr;
                }
                config.blobs.http_enabled = true;
                config.blobs.http_addr = args.blobs_addr;
            } else {
                config.rpc.http_enabled = false;
                config.rpc.ws_enabled = false;
            }
            let node = healthchain_node::launch(config, Some(genesis.clone()))
                .await
                .with_context(|| format!("starting validator {i}"))?;
            nodes.push(node);
        }
        print_banner(&nodes, chain_id, &keys);
        let failed = futures::future::select_all(nodes.iter().map(|n| Box::pin(n.engine.failed())));
        let failure = tokio::select! {
            () = shutdown_signal() => None,
            (reason, i, _) = failed => Some(format!("validator {i}: {reason}")),
        };
        tracing::info!("shutting down");
        for node in nodes {
            node.shutdown().await?;
        }
        match failure {
            Some(reason) => Err(anyhow::anyhow!("consensus stopped on {reason}")),
            None => anyhow::Ok(()),
        }
    })?;
    drop(temp);
    Ok(())
}

fn print_banner(nodes: &[NodeHandle], chain_id: u64, keys: &DevKeys) {
    let mut out = String::new();
    let Some(first) = nodes.first() else { return };
    out.push_str(&format!(
        "\nHealthChain development network (chain id {chain_id}, genesis {})\n",
        first.genesis_hash
    ));
    if let Some(addr) = first.http_addr {
        out.push_str(&format!("JSON-RPC over HTTP:      http://{addr}\n"));
    }
    if let Some(addr) = first.ws_addr {
        out.push_str(&format!("JSON-RPC over WebSocket: ws://{addr}\n"));
    }
    if let Some(addr) = first.blobs_addr {
        out.push_str(&format!("Encrypted record blobs:  http://{addr}/blobs\n"));
    }
    if let Some(addr) = first.metrics_addr {
        out.push_str(&format!("Metrics:                 http://{addr}/metrics\n"));
    }
    out.push_str(&format!(
        "Data directory:          {}\n",
        first.datadir.parent().unwrap_or(&first.datadir).display()
    ));
    out.push_str(&format!(
        "\nValidators ({} IBFT 2.0 nodes on loopback)\n",
        nodes.len()
    ));
    for (i, node) in nodes.iter().enumerate() {
        out.push_str(&format!(
            "  #{i}: {}  {}\n",
            node.address,
            node.enode.as_deref().unwrap_or("-")
        ));
    }
    out.push_str(&format!(
        "\nHealth contracts (pre-deployed in genesis; ministry admin: Account #0)\n  \
         HealthRegistry: {}\n  PatientRecord:  {}\n",
        healthchain_contracts::REGISTRY_ADDRESS,
        healthchain_contracts::RECORDS_ADDRESS
    ));
    {
        use healthchain_contracts::permissioning as perm;
        out.push_str(&format!(
            "\nPermissioning (enforced; admin: Account #0; the accounts below and these four nodes\n\
             are allowed, others need an admin's addAccount / addEnode)\n  \
             AccountIngress: {}  AccountRules: {}\n  NodeIngress:    {}  NodeRules:    {}\n  \
             Admin:          {}\n",
            perm::ACCOUNT_INGRESS_ADDRESS,
            perm::ACCOUNT_RULES_ADDRESS,
            perm::NODE_INGRESS_ADDRESS,
            perm::NODE_RULES_ADDRESS,
            perm::PERMISSIONING_ADMIN_ADDRESS,
        ));
    }
    out.push_str("\nAccounts\n========\n\n");
    out.push_str(
        "WARNING: These are PUBLIC TEST KEYS. Anyone can sign with them. Never send real funds\n\
         to these accounts or use them on any network but a local development chain.\n\n",
    );
    for (i, key) in keys.accounts.iter().enumerate() {
        out.push_str(&format!(
            "Account #{i}: {} (10000 ETH)\nPrivate Key: {}\n\n",
            key.address, key.private_key
        ));
    }
    out.push_str("Press Ctrl-C to stop.\n");
    println!("{out}");
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Runs until Ctrl-C or SIGTERM, or until consensus stops on an error (the node then
/// shuts down and the command fails with the reason).
async fn wait_and_stop(node: NodeHandle) -> anyhow::Result<()> {
    let failure = tokio::select! {
        () = shutdown_signal() => None,
        reason = node.engine.failed() => Some(reason),
    };
    tracing::info!("shutting down");
    node.shutdown().await?;
    match failure {
        Some(reason) => Err(anyhow::anyhow!("consensus stopped: {reason}")),
        None => Ok(()),
    }
}

/// Starts a node from `config` until Ctrl-C.
pub(crate) fn run_node(config: NodeConfig) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let node = healthchain_node::launch(config, None).await?;
        tracing::info!(genesis = %node.genesis_hash, datadir = %node.datadir.display(), "node started");
        wait_and_stop(node).await
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Checks that a development key signs for its address (used by tests).
pub fn key_matches(key: &DevKey) -> bool {
    healthchain_node::key_from_hex(&key.private_key).is_some_and(|k| k.address() == key.address)
}
