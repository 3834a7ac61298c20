//! Storage capabilities as small traits, and an in-memory implementation for tests.
//!
//! Pure crate: consumers (the executor, RPC) depend on these traits; only the node picks the
//! MDBX implementation. State is kept twice: flat (latest account and slot values, for fast
//! execution) and as an archive of trie nodes (every historical state root stays readable,
//! which historical queries and `eth_getProof` need).

mod history;
mod memory;

pub use history::StateAtRoot;
pub use memory::MemoryStore;

use alloy_primitives::{Address, B256, Bytes, U256};
use healthchain_primitives::{Account, BlockBody, Header, Receipt};
use healthchain_trie::NodeSource;

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database engine reported an error.
    #[error("database error: {0}")]
    Database(String),
    /// A stored value failed to decode: the database is corrupt.
    #[error("corrupt {table} entry: {reason}")]
    Corrupt {
        /// Table holding the bad value.
        table: &'static str,
        /// What failed.
        reason: String,
    },
    /// A block batch does not extend the current head.
    #[error("block {number} ({hash}) does not extend the head {head:?}")]
    NotChild {
        /// Number of the rejected block.
        number: u64,
        /// Hash of the rejected block.
        hash: B256,
        /// The head at the time.
        head: Option<(u64, B256)>,
    },
}

/// Result alias for storage calls.
pub type StorageResult<T> = Result<T, StorageError>;

/// Latest state, flat, plus the archive of trie nodes.
pub trait StateReader: Send + Sync {
    /// The account at `address` in the latest state.
    fn account(&self, address: Address) -> StorageResult<Option<Account>>;
    /// A storage slot in the latest state (zero when absent).
    fn storage(&self, address: Address, slot: B256) -> StorageResult<U256>;
    /// Contract code by hash.
    fn bytecode(&self, code_hash: B256) -> StorageResult<Option<Bytes>>;
    /// A trie node by hash, from any block's state.
    fn trie_node(&self, hash: B256) -> StorageResult<Option<Vec<u8>>>;
}

/// A reference reads what it points to (lets `&dyn ChainStore` go where a sized reader is
/// expected).
impl<T: StateReader + ?Sized> StateReader for &T {
    fn account(&self, address: Address) -> StorageResult<Option<Account>> {
        (**self).account(address)
    }
    fn storage(&self, address: Address, slot: B256) -> StorageResult<U256> {
        (**self).storage(address, slot)
    }
    fn bytecode(&self, code_hash: B256) -> StorageResult<Option<Bytes>> {
        (**self).bytecode(code_hash)
    }
    fn trie_node(&self, hash: B256) -> StorageResult<Option<Vec<u8>>> {
        (**self).trie_node(hash)
    }
}

/// Where a transaction sits in the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxLocation {
    /// Hash of the containing block.
    pub block_hash: B256,
    /// Number of the containing block.
    pub block_number: u64,
    /// Index within the block.
    pub index: u64,
}

/// Blocks, receipts and indexes of the canonical chain.
pub trait BlockReader: Send + Sync {
    /// Number and hash of the latest block, `None` before genesis is written.
    fn head(&self) -> StorageResult<Option<(u64, B256)>>;
    /// Canonical block hash at `number`.
    fn canonical_hash(&self, number: u64) -> StorageResult<Option<B256>>;
    /// Header by block hash.
    fn header(&self, hash: B256) -> StorageResult<Option<Header>>;
    /// Body by block hash.
    fn body(&self, hash: B256) -> StorageResult<Option<BlockBody>>;
    /// Recovered senders of a block's transactions.
    fn senders(&self, hash: B256) -> StorageResult<Option<Vec<Address>>>;
    /// Receipts by block hash.
    fn receipts(&self, hash: B256) -> StorageResult<Option<Vec<Receipt>>>;
    /// Location of a transaction by hash.
    fn transaction_location(&self, tx_hash: B256) -> StorageResult<Option<TxLocation>>;
}

impl<T: BlockReader + ?Sized> BlockReader for &T {
    fn head(&self) -> StorageResult<Option<(u64, B256)>> {
        (**self).head()
    }
    fn canonical_hash(&self, number: u64) -> StorageResult<Option<B256>> {
        (**self).canonical_hash(number)
    }
    fn header(&self, hash: B256) -> StorageResult<Option<Header>> {
        (**self).header(hash)
    }
    fn body(&self, hash: B256) -> StorageResult<Option<BlockBody>> {
        (**self).body(hash)
    }
    fn senders(&self, hash: B256) -> StorageResult<Option<Vec<Address>>> {
        (**self).senders(hash)
    }
    fn receipts(&self, hash: B256) -> StorageResult<Option<Vec<Receipt>>> {
        (**self).receipts(hash)
    }
    fn transaction_location(&self, tx_hash: B256) -> StorageResult<Option<TxLocation>> {
        (**self).transaction_location(tx_hash)
    }
}

/// Flat-state changes of one block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateChanges {
    /// New account values (`None` deletes the account).
    pub accounts: Vec<(Address, Option<Account>)>,
    /// Storage changes per account; `wiped` clears all slots first (self-destruct).
    pub storage: Vec<StorageChange>,
    /// New contract code by hash.
    pub bytecodes: Vec<(B256, Bytes)>,
    /// New trie nodes by hash (the archive only grows).
    pub trie_nodes: Vec<(B256, Vec<u8>)>,
}

/// Storage changes of one account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageChange {
    /// The account.
    pub address: Address,
    /// Whether all existing slots are cleared before `slots` are applied.
    pub wiped: bool,
    /// New slot values (zero deletes).
    pub slots: Vec<(B256, U256)>,
}

/// Everything one block writes, committed atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockBatch {
    /// The block header.
    pub header: Header,
    /// Its hash.
    pub hash: B256,
    /// The block body.
    pub body: BlockBody,
    /// Transaction senders, in order.
    pub senders: Vec<Address>,
    /// Receipts, in order.
    pub receipts: Vec<Receipt>,
    /// State changes.
    pub state: StateChanges,
}

impl BlockBatch {
    /// Each transaction's hash and location, for the transaction index.
    pub fn tx_locations(&self) -> impl Iterator<Item = (B256, TxLocation)> + '_ {
        self.body
            .transactions
            .iter()
            .enumerate()
            .map(|(index, tx)| {
                let location = TxLocation {
                    block_hash: self.hash,
                    block_number: self.header.number,
                    index: index as u64,
                };
                (*tx.tx_hash(), location)
            })
    }
}

/// Commits blocks.
pub trait BlockWriter: Send + Sync {
    /// Writes `batch` in one atomic transaction: afterwards the store holds all of it or,
    /// after an error or a crash, none of it. The block must be the genesis of an empty
    /// store or a child of the head.
    fn commit_block(&self, batch: BlockBatch) -> StorageResult<()>;
}

/// A validator's own consensus votes (encoded `VoteRecord`s of `healthchain-ibft`), kept so
/// that after a crash it never signs anything conflicting with what it already sent.
pub trait VoteStore: Send + Sync {
    /// Appends `record` to the records of `height` and returns only once it is on disk
    /// (whatever the store's block durability): the vote is sent right after.
    fn append_vote(&self, height: u64, record: &[u8]) -> StorageResult<()>;
    /// The records of `height`, in the order they were appended.
    fn votes(&self, height: u64) -> StorageResult<Vec<Vec<u8>>>;
    /// Deletes the records of every height below `height`.
    fn prune_votes(&self, below: u64) -> StorageResult<()>;
}

/// A full chain store.
pub trait ChainStore: StateReader + BlockReader + BlockWriter {}
impl<T: StateReader + BlockReader + BlockWriter> ChainStore for T {}

/// Checks that `batch` may follow `head` (shared by every implementation).
pub fn check_extends_head(head: Option<(u64, B256)>, batch: &BlockBatch) -> StorageResult<()> {
    let ok = match head {
        None => batch.header.number == 0 || batch.header.parent_hash.is_zero(),
        Some((number, hash)) => {
            batch.header.number == number + 1 && batch.header.parent_hash == hash
        }
    };
    if ok {
        Ok(())
    } else {
        Err(StorageError::NotChild {
            number: batch.header.number,
            hash: batch.hash,
            head,
        })
    }
}

/// A [`StateReader`]'s trie nodes as a [`NodeSource`] for trie reads and updates.
///
/// trie-db cannot carry storage errors, so a failed read is remembered here and surfaces as a
/// missing node; callers check [`StateNodes::take_error`] after a trie operation.
pub struct StateNodes<'a, S: ?Sized> {
    reader: &'a S,
    error: std::sync::Mutex<Option<StorageError>>,
}

impl<'a, S: StateReader + ?Sized> StateNodes<'a, S> {
    /// Wraps `reader`.
    pub fn new(reader: &'a S) -> Self {
        Self {
            reader,
            error: std::sync::Mutex::new(None),
        }
    }

    /// The first storage error met since the last call, if any.
    pub fn take_error(&self) -> Option<StorageError> {
        self.error.lock().map(|mut e| e.take()).unwrap_or(None)
    }
}

impl<S: StateReader + ?Sized> NodeSource for StateNodes<'_, S> {
    fn node(&self, hash: &B256) -> Option<Vec<u8>> {
        match self.reader.trie_node(*hash) {
            Ok(node) => node,
            Err(err) => {
                if let Ok(mut slot) = self.error.lock() {
                    slot.get_or_insert(err);
                }
                None
            }
        }
    }
}
