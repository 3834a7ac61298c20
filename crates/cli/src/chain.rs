//! An opened data directory: the chain config and the MDBX store.

use anyhow::{Context, bail};
use healthchain_chainspec::Genesis;
use healthchain_storage_mdbx::{DatabaseConfig, Durability, MdbxStore};
use std::path::Path;

use crate::{DataDir, DbArgs, DurabilityArg};

/// A chain opened from its data directory.
pub struct Chain {
    /// Parsed genesis (chain config and allocation).
    pub genesis: Genesis,
    /// The block and state store.
    pub store: MdbxStore,
}

impl Chain {
    /// Opens an initialised data directory.
    pub fn open(args: &DbArgs) -> anyhow::Result<Self> {
        let dir = DataDir::new(&args.datadir);
        let genesis_path = dir.genesis();
        if !genesis_path.exists() {
            bail!(
                "{} is not initialised: run `healthchain init --genesis FILE --datadir {}` first",
                dir.path().display(),
                dir.path().display()
            );
        }
        let genesis = load_genesis(&genesis_path)?;
        let store = open_store(args)?;
        Ok(Self { genesis, store })
    }
}

/// Reads and parses a genesis file.
pub(crate) fn load_genesis(path: &Path) -> anyhow::Result<Genesis> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Genesis::from_json(&text).with_context(|| format!("loading genesis {}", path.display()))
}

/// Opens (creating if needed) the store of a data directory.
pub(crate) fn open_store(args: &DbArgs) -> anyhow::Result<MdbxStore> {
    let durability = match args.durability {
        DurabilityArg::Durable => Durability::Durable,
        DurabilityArg::SafeNoSync => Durability::SafeNoSync,
    };
    let path = DataDir::new(&args.datadir).db();
    MdbxStore::open(&path, DatabaseConfig { durability })
        .with_context(|| format!("opening database {}", path.display()))
}
