//! The data directory: `db/` (MDBX) and `genesis.json` (the genesis it was created with).

use std::path::{Path, PathBuf};

use alloy_primitives::B256;
use healthchain_chainspec::Genesis;
use healthchain_evm::genesis_batch;
use healthchain_storage_api::{BlockReader, BlockWriter};

/// The files of a data directory.
#[derive(Debug, Clone)]
pub struct DataDir(PathBuf);

impl DataDir {
    /// The directory at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self(path.into())
    }

    /// The MDBX environment.
    pub fn db(&self) -> PathBuf {
        self.0.join("db")
    }

    /// The genesis file the chain was initialised with.
    pub fn genesis(&self) -> PathBuf {
        self.0.join("genesis.json")
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

/// The genesis is missing, unreadable or belongs to another chain.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    /// A file could not be read or written.
    #[error("{0}")]
    Io(String),
    /// The genesis file does not parse.
    #[error("genesis {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the field.
        message: String,
    },
    /// Nothing to initialise from.
    #[error("{0} is not initialised: give a genesis file ([node] genesis or --genesis)")]
    Missing(PathBuf),
    /// The data directory holds another chain.
    #[error("{datadir} holds genesis {existing}, but the given genesis is {given}")]
    Mismatch {
        /// The data directory.
        datadir: PathBuf,
        /// Genesis hash in the database.
        existing: B256,
        /// Genesis hash of the given file.
        given: B256,
    },
    /// The genesis block cannot be built or written.
    #[error("writing the genesis block: {0}")]
    Build(String),
}

/// A parsed genesis with the text it came from (copied into the data directory).
#[derive(Debug, Clone)]
pub struct GenesisFile {
    /// Parsed.
    pub genesis: Genesis,
    /// Original text.
    pub text: String,
}

impl GenesisFile {
    /// Parses genesis JSON; `origin` names it in errors.
    pub fn parse(text: String, origin: &Path) -> Result<Self, GenesisError> {
        let genesis = Genesis::from_json(&text).map_err(|e| GenesisError::Parse {
            path: origin.to_path_buf(),
            message: e.to_string(),
        })?;
        Ok(Self { genesis, text })
    }
}

/// Reads and parses a genesis file.
pub fn load_genesis(path: &Path) -> Result<GenesisFile, GenesisError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| GenesisError::Io(format!("reading {}: {e}", path.display())))?;
    GenesisFile::parse(text, path)
}

/// Makes sure the store holds the genesis block: writes it on first start, checks it on
/// every later one. `given` may be omitted once the directory is initialised. Returns the
/// genesis in force and its hash.
pub fn init_genesis<S: BlockReader + BlockWriter + ?Sized>(
    datadir: &DataDir,
    store: &S,
    given: Option<GenesisFile>,
) -> Result<(Genesis, B256), GenesisError> {
    let stored = datadir
        .genesis()
        .exists()
        .then(|| load_genesis(&datadir.genesis()))
        .transpose()?;
    let file = match (given, stored) {
        (Some(given), _) => given,
        (None, Some(stored)) => stored,
        (None, None) => return Err(GenesisError::Missing(datadir.path().to_path_buf())),
    };
    let batch = genesis_batch(&file.genesis).map_err(|e| GenesisError::Build(e.to_string()))?;
    let hash = batch.hash;
    match store
        .canonical_hash(0)
        .map_err(|e| GenesisError::Build(e.to_string()))?
    {
        Some(existing) if existing == hash => {}
        Some(existing) => {
            return Err(GenesisError::Mismatch {
                datadir: datadir.path().to_path_buf(),
                existing,
                given: hash,
            });
        }
        None => {
            // The file goes first: a crash before the commit leaves a directory that simply
            // initialises again on the next start.
            std::fs::write(datadir.genesis(), &file.text).map_err(|e| {
                GenesisError::Io(format!("writing {}: {e}", datadir.genesis().display()))
            })?;
            store
                .commit_block(batch)
                .map_err(|e| GenesisError::Build(e.to_string()))?;
            tracing::info!(%hash, "initialised genesis");
        }
    }
    Ok((file.genesis, hash))
}
