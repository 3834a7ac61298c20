//! In-memory [`ChainStore`](crate::ChainStore) for tests.

use std::collections::BTreeMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use alloy_primitives::{Address, B256, Bytes, U256};
use healthchain_primitives::{Account, BlockBody, Header, Receipt};

use crate::{
    BlockBatch, BlockReader, BlockWriter, StateReader, StorageError, StorageResult, TxLocation,
    VoteStore, check_extends_head,
};

#[derive(Debug, Default)]
struct Inner {
    head: Option<(u64, B256)>,
    canonical: BTreeMap<u64, B256>,
    headers: BTreeMap<B256, Header>,
    bodies: BTreeMap<B256, BlockBody>,
    senders: BTreeMap<B256, Vec<Address>>,
    receipts: BTreeMap<B256, Vec<Receipt>>,
    tx_lookup: BTreeMap<B256, TxLocation>,
    accounts: BTreeMap<Address, Account>,
    storage: BTreeMap<(Address, B256), U256>,
    bytecodes: BTreeMap<B256, Bytes>,
    trie_nodes: BTreeMap<B256, Vec<u8>>,
    votes: BTreeMap<u64, Vec<Vec<u8>>>,
}

/// A chain store in memory; commits are atomic under one lock.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: RwLock<Inner>,
    /// Fault injection: vote appends fail (a full or failing disk).
    fail_vote_writes: AtomicBool,
}

impl MemoryStore {
    /// Makes every later [`VoteStore::append_vote`] fail (or succeed again), to test what
    /// a validator does when it cannot record its votes.
    pub fn fail_vote_writes(&self, fail: bool) {
        self.fail_vote_writes.store(fail, Ordering::SeqCst);
    }

    fn read<T>(&self, f: impl FnOnce(&Inner) -> T) -> StorageResult<T> {
        let guard = self
            .inner
            .read()
            .map_err(|_| StorageError::Database("lock poisoned".into()))?;
        Ok(f(&guard))
    }
}

impl StateReader for MemoryStore {
    fn account(&self, address: Address) -> StorageResult<Option<Account>> {
        self.read(|s| s.accounts.get(&address).copied())
    }

    fn storage(&self, address: Address, slot: B256) -> StorageResult<U256> {
        self.read(|s| s.storage.get(&(address, slot)).copied().unwrap_or_default())
    }

    fn bytecode(&self, code_hash: B256) -> StorageResult<Option<Bytes>> {
        self.read(|s| s.bytecodes.get(&code_hash).cloned())
    }

    fn trie_node(&self, hash: B256) -> StorageResult<Option<Vec<u8>>> {
        self.read(|s| s.trie_nodes.get(&hash).cloned())
    }
}

impl BlockReader for MemoryStore {
    fn head(&self) -> StorageResult<Option<(u64, B256)>> {
        self.read(|s| s.head)
    }

    fn canonical_hash(&self, number: u64) -> StorageResult<Option<B256>> {
        self.read(|s| s.canonical.get(&number).copied())
    }

    fn header(&self, hash: B256) -> StorageResult<Option<Header>> {
        self.read(|s| s.headers.get(&hash).cloned())
    }

    fn body(&self, hash: B256) -> StorageResult<Option<BlockBody>> {
        self.read(|s| s.bodies.get(&hash).cloned())
    }

    fn senders(&self, hash: B256) -> StorageResult<Option<Vec<Address>>> {
        self.read(|s| s.senders.get(&hash).cloned())
    }

    fn receipts(&self, hash: B256) -> StorageResult<Option<Vec<Receipt>>> {
        self.read(|s| s.receipts.get(&hash).cloned())
    }

    fn transaction_location(&self, tx_hash: B256) -> StorageResult<Option<TxLocation>> {
        self.read(|s| s.tx_lookup.get(&tx_hash).copied())
    }
}

impl VoteStore for MemoryStore {
    fn append_vote(&self, height: u64, record: &[u8]) -> StorageResult<()> {
        if self.fail_vote_writes.load(Ordering::SeqCst) {
            return Err(StorageError::Database("injected: vote write failed".into()));
        }
        let mut s = self
            .inner
            .write()
            .map_err(|_| StorageError::Database("lock poisoned".into()))?;
        s.votes.entry(height).or_default().push(record.to_vec());
        Ok(())
    }

    fn votes(&self, height: u64) -> StorageResult<Vec<Vec<u8>>> {
        self.read(|s| s.votes.get(&height).cloned().unwrap_or_default())
    }

    fn prune_votes(&self, below: u64) -> StorageResult<()> {
        let mut s = self
            .inner
            .write()
            .map_err(|_| StorageError::Database("lock poisoned".into()))?;
        s.votes = s.votes.split_off(&below);
        Ok(())
    }
}

impl BlockWriter for MemoryStore {
    fn commit_block(&self, batch: BlockBatch) -> StorageResult<()> {
        let mut s = self
            .inner
            .write()
            .map_err(|_| StorageError::Database("lock poisoned".into()))?;
        check_extends_head(s.head, &batch)?;
        let locations: Vec<_> = batch.tx_locations().collect();
        s.tx_lookup.extend(locations);
        let BlockBatch {
            header,
            hash,
            body,
            senders,
            receipts,
            state,
        } = batch;
        let number = header.number;
        for (address, account) in state.accounts {
            match account {
                Some(account) => s.accounts.insert(address, account),
                None => s.accounts.remove(&address),
            };
        }
        for change in state.storage {
            if change.wiped {
                s.storage.retain(|(a, _), _| *a != change.address);
            }
            for (slot, value) in change.slots {
                if value.is_zero() {
                    s.storage.remove(&(change.address, slot));
                } else {
                    s.storage.insert((change.address, slot), value);
                }
            }
        }
        s.bytecodes.extend(state.bytecodes);
        s.trie_nodes.extend(state.trie_nodes);
        s.canonical.insert(number, hash);
        s.headers.insert(hash, header);
        s.bodies.insert(hash, body);
        s.senders.insert(hash, senders);
        s.receipts.insert(hash, receipts);
        s.head = Some((number, hash));
        Ok(())
    }
}
