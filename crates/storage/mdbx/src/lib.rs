//! The MDBX implementation of HealthChain's storage traits.
//!
//! Sits below the node: it implements `healthchain-storage-api`'s `StateReader`,
//! `BlockReader` and `BlockWriter` over an MDBX environment through `signet-libmdbx`
//! (reth's wrapper). Every table is declared in [`tables`]. Each block is committed in one
//! MDBX write transaction, so a crash leaves the database at the previous or the next
//! block, never between. See `docs/database.md`.

pub mod tables;

use alloy_primitives::{Address, B256, Bytes, U256};
use healthchain_primitives::{Account, BlockBody, Header, Receipt};
use healthchain_storage_api::{
    BlockBatch, BlockReader, BlockWriter, StateReader, StorageError, StorageResult, TxLocation,
    check_extends_head,
};
use signet_libmdbx::{
    DatabaseFlags, Environment, EnvironmentFlags, Geometry, Mode, SyncMode, WriteFlags,
};
use std::path::{Path, PathBuf};
use tables::Table;

/// How commits reach the disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// Flush data and metadata on every commit: a committed block survives power loss.
    #[default]
    Durable,
    /// MDBX `SafeNoSync`: no flush per commit. A process crash loses nothing (the OS has the
    /// pages); an OS crash or power loss may roll back to the last flushed commit, but
    /// never corrupts the database.
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
    /// Bytes in its pages.
    pub bytes: u64,
}

/// Largest size the database file may grow to.
const MAX_SIZE: usize = 4 << 40;
/// Growth step of the file.
const GROWTH_STEP: isize = 256 << 20;

/// A chain store in an MDBX environment.
#[derive(Debug)]
pub struct MdbxStore {
    env: Environment,
    path: PathBuf,
}

fn db_err(err: impl std::fmt::Display) -> StorageError {
    StorageError::Database(err.to_string())
}

impl MdbxStore {
    /// Opens (creating if needed) the environment at `path`.
    pub fn open(path: &Path, config: DatabaseConfig) -> StorageResult<Self> {
        std::fs::create_dir_all(path)
            .map_err(|e| db_err(format!("creating {}: {e}", path.display())))?;
        let sync_mode = match config.durability {
            Durability::Durable => SyncMode::Durable,
            Durability::SafeNoSync => SyncMode::SafeNoSync,
        };
        let env = Environment::builder()
            .set_max_dbs(tables::ALL.len() + 1)
            .set_geometry(Geometry {
                size: Some(0..MAX_SIZE),
                growth_step: Some(GROWTH_STEP),
                ..Default::default()
            })
            .set_flags(EnvironmentFlags {
                mode: Mode::ReadWrite { sync_mode },
                ..Default::default()
            })
            .open(path)
            .map_err(|e| db_err(format!("opening {}: {e}", path.display())))?;
        let tx = env.begin_rw_unsync().map_err(db_err)?;
        for table in tables::ALL {
            tx.create_db(Some(table.name), DatabaseFlags::empty())
                .map_err(db_err)?;
        }
        let meta = tx.open_db(Some(tables::META.name)).map_err(db_err)?;
        let version: Option<Vec<u8>> = tx.get(meta.dbi(), tables::META_SCHEMA).map_err(db_err)?;
        match version {
            None => tx
                .put(
                    meta,
                    tables::META_SCHEMA,
                    tables::SCHEMA_VERSION.to_be_bytes(),
                    WriteFlags::empty(),
                )
                .map_err(db_err)?,
            Some(v) if v.as_slice() == tables::SCHEMA_VERSION.to_be_bytes() => {}
            Some(v) => {
                return Err(tables::corrupt(
                    tables::META,
                    format!("unsupported schema version {v:?}"),
                ));
            }
        }
        tx.commit().map_err(db_err)?;
        Ok(Self {
            env,
            path: path.to_path_buf(),
        })
    }

    /// The environment's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Entries and bytes per table.
    pub fn stats(&self) -> StorageResult<Vec<TableStats>> {
        let tx = self.env.begin_ro_unsync().map_err(db_err)?;
        let mut out = Vec::with_capacity(tables::ALL.len());
        for table in tables::ALL {
            let db = tx.open_db(Some(table.name)).map_err(db_err)?;
            let stat = tx.db_stat(&db).map_err(db_err)?;
            let pages = stat.branch_pages() + stat.leaf_pages() + stat.overflow_pages();
            out.push(TableStats {
                name: table.name,
                entries: stat.entries(),
                bytes: pages as u64 * u64::from(stat.page_size()),
            });
        }
        Ok(out)
    }

    /// Reads one value.
    fn get(&self, table: Table, key: &[u8]) -> StorageResult<Option<Vec<u8>>> {
        let tx = self.env.begin_ro_unsync().map_err(db_err)?;
        let db = tx.open_db(Some(table.name)).map_err(db_err)?;
        tx.get::<Vec<u8>>(db.dbi(), key).map_err(db_err)
    }

    /// Writes one raw value outside any block, to test how corrupt data is handled.
    #[doc(hidden)]
    pub fn put_raw_for_tests(&self, table: Table, key: &[u8], value: &[u8]) -> StorageResult<()> {
        let tx = self.env.begin_rw_unsync().map_err(db_err)?;
        let db = tx.open_db(Some(table.name)).map_err(db_err)?;
        tx.put(db, key, value, WriteFlags::empty())
            .map_err(db_err)?;
        tx.commit().map_err(db_err)
    }
}

impl StateReader for MdbxStore {
    fn account(&self, address: Address) -> StorageResult<Option<Account>> {
        self.get(tables::ACCOUNTS, address.as_slice())?
            .map(|v| tables::unrlp(tables::ACCOUNTS, &v))
            .transpose()
    }

    fn storage(&self, address: Address, slot: B256) -> StorageResult<U256> {
        Ok(
            match self.get(tables::STORAGES, &tables::storage_key(address, slot))? {
                Some(v) => tables::decode_slot_value(&v)?,
                None => U256::ZERO,
            },
        )
    }

    fn bytecode(&self, code_hash: B256) -> StorageResult<Option<Bytes>> {
        Ok(self
            .get(tables::BYTECODES, code_hash.as_slice())?
            .map(Bytes::from))
    }

    fn trie_node(&self, hash: B256) -> StorageResult<Option<Vec<u8>>> {
        self.get(tables::TRIE_NODES, hash.as_slice())
    }
}

impl BlockReader for MdbxStore {
    fn head(&self) -> StorageResult<Option<(u64, B256)>> {
        self.get(tables::META, tables::META_HEAD)?
            .map(|v| tables::decode_head(&v))
            .transpose()
    }

    fn canonical_hash(&self, number: u64) -> StorageResult<Option<B256>> {
        self.get(tables::CANONICAL_HASHES, &number.to_be_bytes())?
            .map(|v| tables::fixed::<32>(tables::CANONICAL_HASHES, &v).map(B256::from))
            .transpose()
    }

    fn header(&self, hash: B256) -> StorageResult<Option<Header>> {
        self.get(tables::HEADERS, hash.as_slice())?
            .map(|v| tables::unrlp(tables::HEADERS, &v))
            .transpose()
    }

    fn body(&self, hash: B256) -> StorageResult<Option<BlockBody>> {
        self.get(tables::BODIES, hash.as_slice())?
            .map(|v| tables::unrlp(tables::BODIES, &v))
            .transpose()
    }

    fn senders(&self, hash: B256) -> StorageResult<Option<Vec<Address>>> {
        self.get(tables::SENDERS, hash.as_slice())?
            .map(|v| tables::decode_senders(&v))
            .transpose()
    }

    fn receipts(&self, hash: B256) -> StorageResult<Option<Vec<Receipt>>> {
        self.get(tables::RECEIPTS, hash.as_slice())?
            .map(|v| tables::unrlp(tables::RECEIPTS, &v))
            .transpose()
    }

    fn transaction_location(&self, tx_hash: B256) -> StorageResult<Option<TxLocation>> {
        self.get(tables::TX_LOOKUP, tx_hash.as_slice())?
            .map(|v| tables::decode_location(&v))
            .transpose()
    }
}

impl BlockWriter for MdbxStore {
    fn commit_block(&self, batch: BlockBatch) -> StorageResult<()> {
        let tx = self.env.begin_rw_unsync().map_err(db_err)?;
        let open = |table: Table| tx.open_db(Some(table.name)).map_err(db_err);
        let meta = open(tables::META)?;
        let head: Option<Vec<u8>> = tx.get(meta.dbi(), tables::META_HEAD).map_err(db_err)?;
        let head = head.map(|v| tables::decode_head(&v)).transpose()?;
        check_extends_head(head, &batch)?;

        let put = |table: Table, key: &[u8], value: &[u8]| -> StorageResult<()> {
            let db = tx.open_db(Some(table.name)).map_err(db_err)?;
            tx.put(db, key, value, WriteFlags::empty()).map_err(db_err)
        };
        for (tx_hash, location) in batch.tx_locations() {
            put(
                tables::TX_LOOKUP,
                tx_hash.as_slice(),
                &tables::encode_location(&location),
            )?;
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

        let accounts = open(tables::ACCOUNTS)?;
        for (address, account) in &state.accounts {
            match account {
                Some(account) => put(tables::ACCOUNTS, address.as_slice(), &tables::rlp(account))?,
                None => {
                    tx.del(accounts, address.as_slice(), None).map_err(db_err)?;
                }
            }
        }

        let storages = open(tables::STORAGES)?;
        for change in &state.storage {
            if change.wiped {
                // Collect the account's keys first, then delete: a cursor walk over the
                // address prefix.
                let mut doomed = Vec::new();
                {
                    let mut cursor = tx.cursor(storages).map_err(db_err)?;
                    let mut item = cursor
                        .set_range::<Vec<u8>, ()>(change.address.as_slice())
                        .map_err(db_err)?;
                    while let Some((key, ())) = item {
                        if !key.starts_with(change.address.as_slice()) {
                            break;
                        }
                        doomed.push(key);
                        item = cursor.next::<Vec<u8>, ()>().map_err(db_err)?;
                    }
                }
                for key in doomed {
                    tx.del(storages, &key, None).map_err(db_err)?;
                }
            }
            for (slot, value) in &change.slots {
                let key = tables::storage_key(change.address, *slot);
                if value.is_zero() {
                    tx.del(storages, key, None).map_err(db_err)?;
                } else {
                    put(tables::STORAGES, &key, &tables::encode_slot_value(*value))?;
                }
            }
        }

        for (code_hash, code) in &state.bytecodes {
            put(tables::BYTECODES, code_hash.as_slice(), code)?;
        }
        for (node_hash, node) in &state.trie_nodes {
            put(tables::TRIE_NODES, node_hash.as_slice(), node)?;
        }

        put(tables::HEADERS, hash.as_slice(), &tables::rlp(&header))?;
        put(tables::BODIES, hash.as_slice(), &tables::rlp(&body))?;
        put(
            tables::SENDERS,
            hash.as_slice(),
            &tables::encode_senders(&senders),
        )?;
        put(tables::RECEIPTS, hash.as_slice(), &tables::rlp(&receipts))?;
        put(
            tables::CANONICAL_HASHES,
            &number.to_be_bytes(),
            hash.as_slice(),
        )?;
        put(
            tables::META,
            tables::META_HEAD,
            &tables::encode_head(number, hash),
        )?;
        tx.commit().map_err(db_err)
    }
}
