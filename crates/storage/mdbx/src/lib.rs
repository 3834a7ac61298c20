//! The MDBX implementation of HealthChain's storage traits.
//!
//! Sits below the node: [`MdbxStore`] implements `healthchain-storage-api`'s
//! [`StateReader`], [`BlockReader`] and [`BlockWriter`] over one MDBX environment through
//! `signet-libmdbx` (reth's libmdbx wrapper), and must read exactly like the API crate's
//! in-memory `MemoryStore`. Every table, with its key layout and value codec, is declared in
//! [`tables`]. Each block is committed in one MDBX write transaction, so a crash leaves the
//! database at the previous or the next block, never between. See `docs/database.md`.

pub mod tables;

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::Duration;

use alloy_primitives::{Address, B256, Bytes, U256};
use healthchain_primitives::{Account, BlockBody, Header, Receipt};
use healthchain_storage_api::{
    BlockBatch, BlockReader, BlockWriter, StateReader, StorageError, StorageResult, TxLocation,
    VoteStore, check_extends_head,
};
use signet_libmdbx::tx::aliases::RwTxUnsync;
use signet_libmdbx::{
    Database, DatabaseFlags, Environment, EnvironmentFlags, Geometry, Mode, SyncMode, WriteFlags,
};
use tables::{Meta, MetaKey, StorageKey, StorageValue, Table, TableKey, TableValue, VoteKey};

/// How commits reach the disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// MDBX `SyncMode::Durable`: every commit flushes the data pages, then the meta page.
    /// A committed block survives a process crash, an OS crash and power loss.
    #[default]
    Durable,
    /// MDBX `SyncMode::SafeNoSync`: a commit does not flush. A process crash loses nothing
    /// (the committed pages are in the OS page cache); an OS crash or power loss rolls the
    /// database back to the last flushed ("steady") commit, but never corrupts it. A commit
    /// made [`SAFE_NO_SYNC_PERIOD`] or more after the oldest unflushed one flushes, and so
    /// do closing the store and [`MdbxStore::flush`].
    SafeNoSync,
}

/// Store settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DatabaseConfig {
    /// Commit durability.
    pub durability: Durability,
}

/// Size of one table, for `healthchain db stats`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableStats {
    /// Table name.
    pub name: &'static str,
    /// Number of entries.
    pub entries: usize,
    /// Bytes in its pages (branch, leaf and overflow).
    pub bytes: u64,
}

/// Largest size the database file may grow to (address space is reserved, not disk).
pub const MAX_SIZE: usize = 4 << 40;
/// Step by which the file grows.
pub const GROWTH_STEP: usize = 256 << 20;
/// In [`Durability::SafeNoSync`], a commit made this long after the oldest unflushed one
/// flushes everything (MDBX `sync_period`), bounding what power loss can take.
pub const SAFE_NO_SYNC_PERIOD: Duration = Duration::from_secs(10);

/// Number of tables, see [`tables::ALL`].
const TABLES: usize = tables::ALL.len();

/// A chain store in an MDBX environment.
///
/// Cloning is cheap and shares the environment.
#[derive(Debug, Clone)]
pub struct MdbxStore {
    env: Environment,
    /// One handle per table, in [`tables::ALL`] order; handles opened by a committed
    /// transaction stay valid for the environment's lifetime.
    dbs: [Database; TABLES],
    path: PathBuf,
}

fn db_err(err: impl std::fmt::Display) -> StorageError {
    StorageError::Database(err.to_string())
}

impl MdbxStore {
    /// Opens the environment in the directory `path`, creating the directory, the
    /// environment and every table if needed.
    ///
    /// Fails with [`StorageError::Corrupt`] if the store was written by an unknown schema
    /// version.
    pub fn open(path: &Path, config: DatabaseConfig) -> StorageResult<Self> {
        std::fs::create_dir_all(path)
            .map_err(|e| db_err(format!("creating {}: {e}", path.display())))?;
        let sync_mode = match config.durability {
            Durability::Durable => SyncMode::Durable,
            Durability::SafeNoSync => SyncMode::SafeNoSync,
        };
        let mut builder = Environment::builder();
        builder
            .set_max_dbs(TABLES)
            .set_geometry(Geometry {
                size: Some(0..MAX_SIZE),
                growth_step: Some(GROWTH_STEP as isize),
                ..Default::default()
            })
            .set_flags(EnvironmentFlags {
                mode: Mode::ReadWrite { sync_mode },
                ..Default::default()
            });
        if config.durability == Durability::SafeNoSync {
            builder.set_sync_period(SAFE_NO_SYNC_PERIOD);
        }
        let env = builder
            .open(path)
            .map_err(|e| db_err(format!("opening {}: {e}", path.display())))?;

        let tx = env.begin_rw_unsync().map_err(db_err)?;
        let dbs: Vec<Database> = tables::ALL
            .iter()
            .map(|name| tx.create_db(Some(name), DatabaseFlags::empty()))
            .collect::<Result<_, _>>()
            .map_err(db_err)?;
        let dbs: [Database; TABLES] = dbs
            .try_into()
            .map_err(|_| db_err("table handle count mismatch"))?;
        let writer = Writer { tx, dbs: &dbs };
        match writer.get_raw::<Meta>(&MetaKey::SchemaVersion)? {
            None => writer.put_raw::<Meta>(
                &MetaKey::SchemaVersion,
                &tables::encode_schema_version(tables::SCHEMA_VERSION),
            )?,
            Some(bytes) => {
                let version = tables::decode_schema_version(&bytes)?;
                if version != tables::SCHEMA_VERSION {
                    return Err(StorageError::Corrupt {
                        table: Meta::NAME,
                        reason: format!(
                            "schema version {version}, this build reads version {}",
                            tables::SCHEMA_VERSION
                        ),
                    });
                }
            }
        }
        writer.commit()?;
        Ok(Self {
            env,
            dbs,
            path: path.to_path_buf(),
        })
    }

    /// The environment's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Entries and bytes per table, in [`tables::ALL`] order.
    pub fn stats(&self) -> StorageResult<Vec<TableStats>> {
        let tx = self.env.begin_ro_unsync().map_err(db_err)?;
        tables::ALL
            .iter()
            .zip(&self.dbs)
            .map(|(name, db)| {
                let stat = tx.db_stat(db).map_err(db_err)?;
                let pages = stat.branch_pages() + stat.leaf_pages() + stat.overflow_pages();
                Ok(TableStats {
                    name,
                    entries: stat.entries(),
                    bytes: pages as u64 * u64::from(stat.page_size()),
                })
            })
            .collect()
    }

    /// Flushes every commit to disk now. Only useful with [`Durability::SafeNoSync`] (for
    /// example at the end of an import); durable commits are already on disk.
    pub fn flush(&self) -> StorageResult<()> {
        self.env.sync(true).map(drop).map_err(db_err)
    }

    /// Reads and decodes one value in its own read transaction.
    fn read<T: Table>(&self, key: &T::Key) -> StorageResult<Option<T::Value>> {
        let tx = self.env.begin_ro_unsync().map_err(db_err)?;
        let bytes: Option<Cow<'_, [u8]>> = tx
            .get(self.dbs[T::INDEX].dbi(), key.encode_key().as_ref())
            .map_err(db_err)?;
        bytes.map(|b| tables::decode::<T>(&b)).transpose()
    }

    /// Writes raw bytes as the value of `key` in table `T`, outside any block: lets tests
    /// plant corrupt data. Not for production use.
    #[doc(hidden)]
    pub fn put_raw_for_tests<T: Table>(&self, key: &T::Key, value: &[u8]) -> StorageResult<()> {
        let writer = self.writer()?;
        writer.put_raw::<T>(key, value)?;
        writer.commit()
    }

    fn writer(&self) -> StorageResult<Writer<'_>> {
        Ok(Writer {
            tx: self.env.begin_rw_unsync().map_err(db_err)?,
            dbs: &self.dbs,
        })
    }
}

/// A write transaction with typed table access.
struct Writer<'a> {
    tx: RwTxUnsync,
    dbs: &'a [Database; TABLES],
}

impl Writer<'_> {
    fn db<T: Table>(&self) -> Database {
        self.dbs[T::INDEX]
    }

    fn get_raw<T: Table>(&self, key: &T::Key) -> StorageResult<Option<Vec<u8>>> {
        self.tx
            .get(self.db::<T>().dbi(), key.encode_key().as_ref())
            .map_err(db_err)
    }

    fn put_raw<T: Table>(&self, key: &T::Key, value: &[u8]) -> StorageResult<()> {
        self.tx
            .put(self.db::<T>(), key.encode_key(), value, WriteFlags::empty())
            .map_err(db_err)
    }

    fn put<T: Table>(&self, key: &T::Key, value: &T::Value) -> StorageResult<()> {
        self.put_raw::<T>(key, &value.encode_value())
    }

    fn delete<T: Table>(&self, key: &T::Key) -> StorageResult<()> {
        self.tx
            .del(self.db::<T>(), key.encode_key(), None)
            .map(drop)
            .map_err(db_err)
    }

    /// Deletes every `Storages` entry of `address`: a cursor walk over the address prefix.
    fn wipe_storage(&self, address: Address) -> StorageResult<()> {
        let prefix = address.as_slice();
        let mut cursor = self
            .tx
            .cursor(self.db::<tables::Storages>())
            .map_err(db_err)?;
        loop {
            // Seek to the first remaining key at or after the prefix; the account's slots
            // are contiguous, so the walk ends at the first key of another account.
            let found = cursor
                .set_range::<Cow<'_, [u8]>, ()>(prefix)
                .map_err(db_err)?
                .is_some_and(|(key, ())| key.starts_with(prefix));
            if !found {
                return Ok(());
            }
            cursor.del().map_err(db_err)?;
        }
    }

    fn commit(self) -> StorageResult<()> {
        self.tx.commit().map_err(db_err)
    }
}

impl StateReader for MdbxStore {
    fn account(&self, address: Address) -> StorageResult<Option<Account>> {
        self.read::<tables::Accounts>(&address)
    }

    fn storage(&self, address: Address, slot: B256) -> StorageResult<U256> {
        Ok(self
            .read::<tables::Storages>(&StorageKey { address, slot })?
            .map_or(U256::ZERO, |v| v.0))
    }

    fn bytecode(&self, code_hash: B256) -> StorageResult<Option<Bytes>> {
        self.read::<tables::Bytecodes>(&code_hash)
    }

    fn trie_node(&self, hash: B256) -> StorageResult<Option<Vec<u8>>> {
        self.read::<tables::TrieNodes>(&hash)
    }
}

impl BlockReader for MdbxStore {
    fn head(&self) -> StorageResult<Option<(u64, B256)>> {
        self.read::<Meta>(&MetaKey::Head)?
            .map(|v| tables::decode_head(&v))
            .transpose()
    }

    fn canonical_hash(&self, number: u64) -> StorageResult<Option<B256>> {
        self.read::<tables::CanonicalHashes>(&number)
    }

    fn header(&self, hash: B256) -> StorageResult<Option<Header>> {
        self.read::<tables::Headers>(&hash)
    }

    fn body(&self, hash: B256) -> StorageResult<Option<BlockBody>> {
        self.read::<tables::Bodies>(&hash)
    }

    fn senders(&self, hash: B256) -> StorageResult<Option<Vec<Address>>> {
        self.read::<tables::Senders>(&hash)
    }

    fn receipts(&self, hash: B256) -> StorageResult<Option<Vec<Receipt>>> {
        self.read::<tables::Receipts>(&hash)
    }

    fn transaction_location(&self, tx_hash: B256) -> StorageResult<Option<TxLocation>> {
        self.read::<tables::TxLookup>(&tx_hash)
    }
}

impl MdbxStore {
    /// The `ConsensusVotes` entries of `height`, as (sequence, record), read in `cursor`'s
    /// transaction.
    fn votes_in<K: signet_libmdbx::TransactionKind>(
        cursor: &mut signet_libmdbx::Cursor<'_, K>,
        height: u64,
    ) -> StorageResult<Vec<(u32, Vec<u8>)>> {
        let prefix = height.to_be_bytes();
        let mut out = Vec::new();
        let mut next = cursor
            .set_range::<Cow<'_, [u8]>, Cow<'_, [u8]>>(&VoteKey { height, seq: 0 }.encode_key())
            .map_err(db_err)?;
        while let Some((key, value)) = next {
            if !key.starts_with(&prefix) {
                break;
            }
            let seq = key
                .get(8..12)
                .and_then(|s| <[u8; 4]>::try_from(s).ok())
                .map(u32::from_be_bytes)
                .ok_or_else(|| StorageError::Corrupt {
                    table: tables::ConsensusVotes::NAME,
                    reason: format!("key of {} bytes", key.len()),
                })?;
            out.push((seq, value.into_owned()));
            next = cursor.next().map_err(db_err)?;
        }
        Ok(out)
    }
}

impl VoteStore for MdbxStore {
    fn append_vote(&self, height: u64, record: &[u8]) -> StorageResult<()> {
        let w = self.writer()?;
        let seq = {
            let mut cursor =
                w.tx.cursor(w.db::<tables::ConsensusVotes>())
                    .map_err(db_err)?;
            Self::votes_in(&mut cursor, height)?
                .last()
                .map_or(0, |(seq, _)| seq.saturating_add(1))
        };
        w.put_raw::<tables::ConsensusVotes>(&VoteKey { height, seq }, record)?;
        w.commit()?;
        // Durable whatever the block durability: the vote goes out right after this.
        self.flush()
    }

    fn votes(&self, height: u64) -> StorageResult<Vec<Vec<u8>>> {
        let tx = self.env.begin_ro_unsync().map_err(db_err)?;
        let db = self.dbs[tables::ConsensusVotes::INDEX];
        let mut cursor = tx.cursor(db).map_err(db_err)?;
        Ok(Self::votes_in(&mut cursor, height)?
            .into_iter()
            .map(|(_, record)| record)
            .collect())
    }

    fn prune_votes(&self, below: u64) -> StorageResult<()> {
        let w = self.writer()?;
        {
            let mut cursor =
                w.tx.cursor(w.db::<tables::ConsensusVotes>())
                    .map_err(db_err)?;
            let limit = below.to_be_bytes();
            while let Some((key, ())) = cursor.first::<Cow<'_, [u8]>, ()>().map_err(db_err)? {
                if key.get(..8).is_none_or(|h| h >= limit.as_slice()) {
                    break;
                }
                cursor.del().map_err(db_err)?;
            }
        }
        w.commit()
    }
}

impl BlockWriter for MdbxStore {
    /// Writes the whole batch in one MDBX write transaction, after checking inside it that
    /// the batch extends the stored head. Dropping the transaction on any error aborts it,
    /// so nothing of a failed batch is kept.
    fn commit_block(&self, batch: BlockBatch) -> StorageResult<()> {
        let w = self.writer()?;
        let head = w
            .get_raw::<Meta>(&MetaKey::Head)?
            .map(|v| tables::decode_head(&v))
            .transpose()?;
        check_extends_head(head, &batch)?;

        for (tx_hash, location) in batch.tx_locations() {
            w.put::<tables::TxLookup>(&tx_hash, &location)?;
        }
        let BlockBatch {
            header,
            hash,
            body,
            senders,
            receipts,
            state,
        } = batch;
        let number = header.number;

        for (address, account) in &state.accounts {
            match account {
                Some(account) => w.put::<tables::Accounts>(address, account)?,
                None => w.delete::<tables::Accounts>(address)?,
            }
        }
        for change in &state.storage {
            if change.wiped {
                w.wipe_storage(change.address)?;
            }
            for (slot, value) in &change.slots {
                let key = StorageKey {
                    address: change.address,
                    slot: *slot,
                };
                if value.is_zero() {
                    w.delete::<tables::Storages>(&key)?;
                } else {
                    w.put::<tables::Storages>(&key, &StorageValue(*value))?;
                }
            }
        }
        for (code_hash, code) in &state.bytecodes {
            w.put::<tables::Bytecodes>(code_hash, code)?;
        }
        for (node_hash, node) in &state.trie_nodes {
            w.put::<tables::TrieNodes>(node_hash, node)?;
        }

        w.put::<tables::Headers>(&hash, &header)?;
        w.put::<tables::Bodies>(&hash, &body)?;
        w.put::<tables::Senders>(&hash, &senders)?;
        w.put::<tables::Receipts>(&hash, &receipts)?;
        w.put::<tables::CanonicalHashes>(&number, &hash)?;
        w.put_raw::<Meta>(&MetaKey::Head, &tables::encode_head(number, hash))?;
        w.commit()
    }
}
