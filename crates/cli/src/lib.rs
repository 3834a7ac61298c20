//! The `healthchain` command line: argument parsing and the commands behind it.
//!
//! Sits at the top of the stack: it picks the MDBX store and wires the chain spec and
//! executor together. Nothing depends on it.

mod bench;
mod chain;
mod client;
mod commands;
mod genesis;
mod health;
mod node;
mod permissions;
mod records;
mod rlp;

pub use chain::Chain;
pub use healthchain_node::DataDir;
pub use node::{
    DevArgs, DevKey, DevKeys, NodeArgs, add_health_contracts, add_permissioning_contracts,
    dev_admin, dev_genesis, dev_keys, dev_permissioning, genesis_admin_ref, key_matches,
};

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// HealthChain: an IBFT 2.0 private chain client for hospital consortia.
#[derive(Debug, Parser)]
#[command(name = "healthchain", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log more (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
}

impl Cli {
    /// The log level asked for on the command line.
    pub fn verbosity(&self) -> u8 {
        self.verbose
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a local development network: the contracts' chain with funded public test
    /// accounts, JSON-RPC on 127.0.0.1:8545 (HTTP) and 8546 (WebSocket).
    Dev(DevArgs),
    /// Run a node from a configuration file (flags override it).
    Node {
        /// TOML configuration file (see genesis/node.example.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        args: NodeArgs,
    },
    /// Write the genesis block of GENESIS into a new data directory.
    Init {
        /// Besu- or geth-format genesis.json.
        #[arg(long)]
        genesis: PathBuf,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Import concatenated RLP blocks, validating and executing each.
    Import {
        /// File of concatenated RLP-encoded blocks.
        file: PathBuf,
        /// Log a line every N imported blocks.
        #[arg(long, default_value_t = 1000)]
        log_every: u64,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Export canonical blocks as concatenated RLP.
    Export {
        /// Output file.
        file: PathBuf,
        /// First block to export.
        #[arg(long, default_value_t = 1)]
        from: u64,
        /// Last block to export (the head when absent).
        #[arg(long)]
        to: Option<u64>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Write a test chain: a genesis of public development keys and valid blocks of
    /// transfers or record writes (for demos, benchmarks and crash tests).
    Testchain {
        /// Output directory (gets genesis.json and blocks.rlp).
        #[arg(long)]
        out: PathBuf,
        /// Number of blocks.
        #[arg(long, default_value_t = 100)]
        blocks: u64,
        /// Transactions per block.
        #[arg(long, default_value_t = 50)]
        txs: u64,
        /// Distinct sending accounts.
        #[arg(long, default_value_t = 64)]
        senders: u64,
        /// What the transactions do.
        #[arg(long, value_enum, default_value_t = WorkloadArg::Records)]
        workload: WorkloadArg,
    },
    /// Database maintenance.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Network set-up.
    Genesis {
        #[command(subcommand)]
        command: GenesisCommand,
    },
    /// Deploy the health contracts over JSON-RPC (idempotent: addresses are recorded per
    /// chain id and reused).
    Deploy(health::DeployArgs),
    /// Health operator workflows: register, grant and revoke consent, admit, add records,
    /// request access, record history, audit trail.
    Health(health::HealthArgs),
    /// On-chain permissioning admin: list, add and remove the accounts that may transact,
    /// the nodes that may connect, and the admins.
    Permissions(permissions::PermissionsArgs),
    /// Encrypted record payloads: put (encrypt, upload, write the reference, share the
    /// key), get (fetch, decrypt), share (wrap the key for another reader), cid.
    Records(records::RecordsArgs),
    /// Load a running network and measure it: transfers, record writes and reads, a mix,
    /// or the papers' ramp-up profile; latency to a committed block from `newHeads`,
    /// throughput, failures, node CPU and RSS (JSON, markdown, SVG plots).
    Bench(bench::BenchArgs),
    /// Genesis extraData, as `besu rlp encode|decode` (JSON list of validators ⇄ hex).
    Rlp {
        #[command(subcommand)]
        command: RlpCommand,
    },
}

#[derive(Debug, Subcommand)]
enum GenesisCommand {
    /// Write a genesis, one node key per validator and a config per node (on loopback).
    New(genesis::GenesisNewArgs),
}

#[derive(Debug, Subcommand)]
enum RlpCommand {
    /// Encode a JSON list of validator addresses as genesis extraData (order kept).
    Encode(RlpArgs),
    /// Decode extraData hex and print its validators.
    Decode(RlpArgs),
}

/// Options shared by `rlp encode` and `rlp decode`, named as Besu names them.
#[derive(Debug, Args)]
struct RlpArgs {
    /// Input file (standard input when absent).
    #[arg(long)]
    from: Option<PathBuf>,
    /// Output file (standard output when absent).
    #[arg(long)]
    to: Option<PathBuf>,
    /// What the data is.
    #[arg(long = "type", value_enum, default_value_t = rlp::RlpType::IbftExtraData)]
    kind: rlp::RlpType,
}

#[derive(Debug, Subcommand)]
enum DbCommand {
    /// Entries and bytes per table, and the head block.
    Stats {
        #[command(flatten)]
        db: DbArgs,
    },
}

/// Where the database lives and how it syncs.
#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// Data directory (created by `init`).
    #[arg(long)]
    pub datadir: PathBuf,
    /// Commit durability: `durable` fsyncs every block; `safe-no-sync` survives process
    /// crashes but may lose the last blocks on power loss (see docs/database.md).
    #[arg(long, value_enum, default_value_t = DurabilityArg::Durable)]
    pub durability: DurabilityArg,
}

/// Command-line spelling of the test-chain workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WorkloadArg {
    /// Value transfers.
    Transfers,
    /// Record writes: 4 storage slots and a log each.
    Records,
}

/// Command-line spelling of the durability modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DurabilityArg {
    /// fsync on every commit.
    Durable,
    /// MDBX SafeNoSync.
    SafeNoSync,
}

impl From<DurabilityArg> for healthchain_node::DurabilitySetting {
    fn from(arg: DurabilityArg) -> Self {
        match arg {
            DurabilityArg::Durable => Self::Durable,
            DurabilityArg::SafeNoSync => Self::SafeNoSync,
        }
    }
}

/// Installs the tracing subscriber (logs go to stderr).
pub fn init_tracing(verbosity: u8) {
    let default = match verbosity {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colour only on a terminal: logs piped to files or other programs stay plain.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Dev(args) => node::dev(&args),
        Command::Node { config, args } => node::node(config.as_deref(), &args),
        Command::Init { genesis, db } => commands::init(&genesis, &db),
        Command::Import {
            file,
            log_every,
            db,
        } => commands::import(&file, log_every, &db),
        Command::Export { file, from, to, db } => commands::export(&file, from, to, &db),
        Command::Db {
            command: DbCommand::Stats { db },
        } => commands::db_stats(&db),
        Command::Genesis {
            command: GenesisCommand::New(args),
        } => genesis::new(&args),
        Command::Deploy(args) => health::deploy(&args),
        Command::Health(args) => health::health(&args),
        Command::Permissions(args) => permissions::permissions(&args),
        Command::Records(args) => records::records(&args),
        Command::Bench(args) => bench::bench(&args),
        Command::Rlp {
            command: RlpCommand::Encode(args),
        } => rlp::encode(args.from.as_deref(), args.to.as_deref(), args.kind),
        Command::Rlp {
            command: RlpCommand::Decode(args),
        } => rlp::decode(args.from.as_deref(), args.to.as_deref(), args.kind),
        Command::Testchain {
            out,
            blocks,
            txs,
            senders,
            workload,
        } => commands::testchain(&out, blocks, txs, senders, workload),
    }
}
