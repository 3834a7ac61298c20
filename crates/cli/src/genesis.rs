//! `healthchain genesis new`: a Besu-compatible IBFT 2.0 genesis, one node key per
//! validator and a ready-to-run config for each node on loopback.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use alloy_primitives::{Address, U256};
use anyhow::{Context, bail, ensure};
use clap::Args;
use healthchain_ibft::NodeKey;
use healthchain_network::NodeId;
use healthchain_primitives::ibft::{IBFT_MIX_HASH, IbftExtraData};

/// Options of `healthchain genesis new`.
#[derive(Debug, Clone, Args)]
pub(crate) struct GenesisNewArgs {
    /// Number of validators (nodes) to create.
    #[arg(long)]
    pub(crate) validators: usize,
    /// Extra nodes outside the validator set (they follow the chain; a vote can add them).
    #[arg(long, default_value_t = 0)]
    pub(crate) followers: usize,
    /// Output directory (must not exist, or be empty).
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// EIP-155 chain id.
    #[arg(long, default_value_t = 1337)]
    pub(crate) chain_id: u64,
    /// Block period in seconds (`blockperiodseconds`).
    #[arg(long, default_value_t = 1)]
    pub(crate) block_period_seconds: u64,
    /// Sub-second block period in milliseconds (`xblockperiodmilliseconds`), replacing the
    /// seconds period.
    #[arg(long)]
    pub(crate) block_period_ms: Option<u64>,
    /// Base round timeout in seconds (`requesttimeoutseconds`).
    #[arg(long, default_value_t = 4)]
    pub(crate) request_timeout_seconds: u64,
    /// Blocks between vote resets (`epochlength`).
    #[arg(long, default_value_t = 30_000)]
    pub(crate) epoch_length: u64,
    /// Fund the 20 public development accounts (test networks only).
    #[arg(long)]
    pub(crate) dev_accounts: bool,
    /// Fund an account: `ADDRESS=WEI` (repeatable).
    #[arg(long = "fund", value_name = "ADDRESS=WEI")]
    pub(crate) fund: Vec<String>,
    /// Pre-deploy the health contracts (HealthRegistry at 0x…1001, PatientRecord at
    /// 0x…1002) with this account as the first ministry admin.
    #[arg(long, value_name = "ADDRESS")]
    pub(crate) health_admin: Option<Address>,
    /// Pre-deploy the permissioning contracts (AccountIngress at 0x…8888, NodeIngress at
    /// 0x…9999, their admin list and rules) with this account as an admin (repeatable);
    /// the generated configs then enforce the on-chain account and node rules. Admins may
    /// transact; so may the `--permit-account` accounts and, with `--dev-accounts`, the
    /// development accounts.
    #[arg(long = "permissioning-admin", value_name = "ADDRESS")]
    pub(crate) permissioning_admins: Vec<Address>,
    /// An account the genesis account rules let transact (repeatable).
    #[arg(
        long = "permit-account",
        value_name = "ADDRESS",
        requires = "permissioning_admins"
    )]
    pub(crate) permit_accounts: Vec<Address>,
    /// Which generated nodes the genesis node rules list: `all`, or `validators` (followers
    /// then need an admin's `addEnode` before they can peer).
    #[arg(long, default_value = "all", value_parser = ["all", "validators"], requires = "permissioning_admins")]
    pub(crate) permit_nodes: String,
    /// JSON-RPC HTTP port of node 0; node i uses base + 2i (WebSocket: + 1).
    #[arg(long, default_value_t = 8545)]
    pub(crate) rpc_base_port: u16,
    /// P2P port of node 0; node i uses base + i.
    #[arg(long, default_value_t = 30303)]
    pub p2p_base_port: u16,
    /// Metrics port of node 0; node i uses base + i.
    #[arg(long, default_value_t = 9545)]
    pub(crate) metrics_base_port: u16,
    /// Blob API port of node 0; node i uses base + i.
    #[arg(long, default_value_t = 8645)]
    pub(crate) blobs_base_port: u16,
}

fn port(base: u16, offset: usize) -> anyhow::Result<u16> {
    u16::try_from(usize::from(base) + offset).context("port out of range: choose a lower base port")
}

/// `healthchain genesis new`. Everything is written to a temporary directory beside `out`
/// first and moved into place at the end, so a failure leaves nothing half-written.
pub(crate) fn new(args: &GenesisNewArgs) -> anyhow::Result<()> {
    ensure!(
        (1..=healthchain_ibft::messages::MAX_VALIDATORS).contains(&args.validators),
        "--validators must be between 1 and {}",
        healthchain_ibft::messages::MAX_VALIDATORS
    );
    ensure!(
        args.block_period_seconds > 0,
        "--block-period-seconds must be at least 1"
    );
    ensure!(
        args.block_period_ms != Some(0),
        "--block-period-ms must be at least 1"
    );
    ensure!(
        args.request_timeout_seconds > 0,
        "--request-timeout-seconds must be at least 1"
    );
    ensure!(args.epoch_length > 0, "--epoch-length must be at least 1");
    if args.out.exists()
        && std::fs::read_dir(&args.out)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        bail!("{} exists and is not empty", args.out.display());
    }
    let mut funded: Vec<(Address, U256)> = Vec::new();
    if args.dev_accounts {
        for key in crate::dev_keys()?.accounts {
            funded.push((key.address, U256::from(10u64).pow(U256::from(22u64))));
        }
    }
    for entry in &args.fund {
        let (address, wei) = entry
            .split_once('=')
            .with_context(|| format!("--fund {entry:?}: expected ADDRESS=WEI"))?;
        let address: Address = address
            .parse()
            .with_context(|| format!("--fund {entry:?}: bad address"))?;
        let wei = U256::from_str_radix(
            wei.trim_start_matches("0x"),
            if wei.starts_with("0x") { 16 } else { 10 },
        )
        .with_context(|| format!("--fund {entry:?}: bad amount"))?;
        funded.push((address, wei));
    }

    let nodes = args.validators + args.followers;
    let mut keys = Vec::with_capacity(nodes);
    for _ in 0..nodes {
        keys.push(healthchain_node::random_key().context("drawing a node key")?);
    }
    // Node i keeps key i; the extraData lists the validators ascending, as Besu advises.
    let mut validators: Vec<Address> = keys[..args.validators]
        .iter()
        .map(NodeKey::address)
        .collect();
    validators.sort();
    let extra = IbftExtraData::genesis(validators.clone()).encode();

    let mut ibft = serde_json::json!({
        "blockperiodseconds": args.block_period_seconds,
        "epochlength": args.epoch_length,
        "requesttimeoutseconds": args.request_timeout_seconds,
    });
    if let Some(ms) = args.block_period_ms {
        ibft["xblockperiodmilliseconds"] = serde_json::json!(ms);
    }
    let alloc: serde_json::Map<String, serde_json::Value> = funded
        .iter()
        .map(|(address, wei)| {
            (
                format!("{address:#x}"),
                serde_json::json!({ "balance": wei.to_string() }),
            )
        })
        .collect();
    let mut genesis = serde_json::json!({
        "config": {
            "chainId": args.chain_id,
            "berlinBlock": 0,
            "londonBlock": 0,
            "shanghaiTime": 0,
            "cancunTime": 0,
            "zeroBaseFee": true,
            "ibft2": ibft,
        },
        "nonce": "0x0",
        "timestamp": "0x0",
        "gasLimit": "0x3b9aca00",
        "baseFeePerGas": "0x0",
        "difficulty": "0x1",
        "mixHash": format!("{IBFT_MIX_HASH}"),
        "coinbase": "0x0000000000000000000000000000000000000000",
        "extraData": format!("{extra}"),
        "alloc": alloc,
    });
    if let Some(admin) = args.health_admin {
        crate::add_health_contracts(&mut genesis, admin)?;
    }
    let permissioned = !args.permissioning_admins.is_empty();
    if permissioned {
        let listed = if args.permit_nodes == "all" {
            nodes
        } else {
            args.validators
        };
        let nodes = keys[..listed]
            .iter()
            .enumerate()
            .map(|(i, key)| {
                Ok(healthchain_contracts::permissioning::PermissionedNode {
                    id: alloy_primitives::hex::encode(key.public_key()),
                    host: "127.0.0.1".into(),
                    port: port(args.p2p_base_port, i)?,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut accounts = args.permissioning_admins.clone();
        accounts.extend(&args.permit_accounts);
        if args.dev_accounts {
            accounts.extend(crate::dev_keys()?.accounts.iter().map(|k| k.address));
        }
        accounts.extend(args.health_admin);
        accounts.sort();
        accounts.dedup();
        let initial = healthchain_contracts::permissioning::PermissioningGenesis {
            admins: args.permissioning_admins.clone(),
            accounts,
            nodes,
        };
        crate::add_permissioning_contracts(&mut genesis, &initial)?;
    }
    let permissions_section = if permissioned {
        "[permissions]\n# The genesis holds the permissioning contracts: enforce them.\naccounts-contract-enabled = true\nnodes-contract-enabled = true\n\n"
    } else {
        ""
    };
    let genesis_text = serde_json::to_string_pretty(&genesis)?;
    // The file must be one this node accepts.
    healthchain_node::GenesisFile::parse(genesis_text.clone(), Path::new("genesis.json"))?;

    let parent = args
        .out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(".healthchain-genesis-")
        .tempdir_in(parent)
        .with_context(|| format!("creating a staging directory in {}", parent.display()))?;
    std::fs::write(staging.path().join("genesis.json"), &genesis_text)?;

    let mut enodes = Vec::with_capacity(keys.len());
    for (i, key) in keys.iter().enumerate() {
        let node = NodeId::from_hex(&alloy_primitives::hex::encode(key.public_key()))
            .context("node key")?;
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port(args.p2p_base_port, i)?));
        enodes.push(node.enode_url(addr));
    }
    let mut summary = String::new();
    writeln!(
        summary,
        "IBFT 2.0 network of {} validators and {} followers, chain id {}",
        args.validators, args.followers, args.chain_id
    )?;
    for (i, key) in keys.iter().enumerate() {
        let dir = staging.path().join(format!("node{i}"));
        std::fs::create_dir_all(&dir)?;
        healthchain_node::write_key(&dir.join("key"), key)?;
        let rpc = port(args.rpc_base_port, 2 * i)?;
        let ws = port(args.rpc_base_port, 2 * i + 1)?;
        let metrics = port(args.metrics_base_port, i)?;
        let blobs = port(args.blobs_base_port, i)?;
        let peers: Vec<String> = enodes
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, e)| format!("  \"{e}\","))
            .collect();
        let role = if i < args.validators {
            "validator"
        } else {
            "follower, not a validator"
        };
        let config = format!(
            "# Node {i} ({role}) of the network in ../genesis.json, written by `healthchain genesis new`.\n\
             # Run it with: healthchain node --config node{i}/config.toml\n\
             # Validator address: {address}\n\
             # Enode: {enode}\n\n\
             [node]\ndatadir = \"data\"\ngenesis = \"../genesis.json\"\nkey-file = \"key\"\n\n\
             [rpc]\nhttp-addr = \"127.0.0.1:{rpc}\"\nws-addr = \"127.0.0.1:{ws}\"\n\n\
             [txpool]\n# The genesis sets zeroBaseFee: free gas.\nmin-gas-price = 0\n\n\
             [network]\nlisten-addr = \"127.0.0.1:{p2p}\"\nstatic-peers = [\n{peers}\n]\n\n\
             {permissions_section}[metrics]\nenabled = true\naddr = \"127.0.0.1:{metrics}\"\n\n\
             [blobs]\nhttp-enabled = true\nhttp-addr = \"127.0.0.1:{blobs}\"\n",
            address = key.address(),
            enode = enodes[i],
            p2p = port(args.p2p_base_port, i)?,
            peers = peers.join("\n"),
        );
        // Every generated config must load.
        healthchain_node::NodeConfig::from_toml(&config)
            .map_err(|e| anyhow::anyhow!("generated config for node {i} is invalid: {e}"))?;
        std::fs::write(dir.join("config.toml"), config)?;
        writeln!(
            summary,
            "  node{i} ({role}): {}  rpc http://127.0.0.1:{rpc}  blobs http://127.0.0.1:{blobs}  p2p {}",
            key.address(),
            enodes[i]
        )?;
    }
    let staged = staging.keep();
    if args.out.exists() {
        std::fs::remove_dir(&args.out)
            .with_context(|| format!("replacing the empty {}", args.out.display()))?;
    }
    std::fs::rename(&staged, &args.out)
        .with_context(|| format!("moving the network into {}", args.out.display()))?;
    if let Some(admin) = args.health_admin {
        writeln!(
            summary,
            "\nHealth contracts in genesis (ministry admin {admin}):\n  HealthRegistry {}\n  PatientRecord  {}",
            healthchain_contracts::REGISTRY_ADDRESS,
            healthchain_contracts::RECORDS_ADDRESS
        )?;
    }
    if permissioned {
        writeln!(
            summary,
            "\nPermissioning contracts in genesis (admins {}):\n  AccountIngress {}\n  NodeIngress    {}",
            args.permissioning_admins
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            healthchain_contracts::permissioning::ACCOUNT_INGRESS_ADDRESS,
            healthchain_contracts::permissioning::NODE_INGRESS_ADDRESS,
        )?;
    }
    writeln!(
        summary,
        "\nStart each node with: healthchain node --config {}/nodeI/config.toml",
        args.out.display()
    )?;
    print!("{summary}");
    Ok(())
}
