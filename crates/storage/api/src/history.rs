//! Historical state: any committed state root read through the archived trie nodes.

use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use alloy_rlp::Decodable;
use healthchain_primitives::Account;

use crate::{StateNodes, StateReader, StorageError, StorageResult};

/// The state as of `root`, read through the trie (no block replay). Slower than the flat
/// latest state; meant for queries about past blocks.
#[derive(Debug, Clone, Copy)]
pub struct StateAtRoot<'a, S: ?Sized> {
    store: &'a S,
    root: B256,
}

impl<'a, S: StateReader + ?Sized> StateAtRoot<'a, S> {
    /// The state whose root is `root` (a header's `state_root`).
    pub fn new(store: &'a S, root: B256) -> Self {
        Self { store, root }
    }

    fn trie_get(
        &self,
        root: B256,
        key: B256,
        table: &'static str,
    ) -> StorageResult<Option<Vec<u8>>> {
        let nodes = StateNodes::new(self.store);
        let value = healthchain_trie::get(&nodes, root, key.as_slice());
        if let Some(err) = nodes.take_error() {
            return Err(err);
        }
        value.map_err(|e| StorageError::Corrupt {
            table,
            reason: e.to_string(),
        })
    }
}

fn decode<T: Decodable>(bytes: &[u8], table: &'static str) -> StorageResult<T> {
    let mut buf = bytes;
    let value = T::decode(&mut buf).map_err(|e| StorageError::Corrupt {
        table,
        reason: e.to_string(),
    })?;
    if buf.is_empty() {
        Ok(value)
    } else {
        Err(StorageError::Corrupt {
            table,
            reason: "trailing bytes in trie value".into(),
        })
    }
}

impl<S: StateReader + ?Sized> StateReader for StateAtRoot<'_, S> {
    fn account(&self, address: Address) -> StorageResult<Option<Account>> {
        self.trie_get(self.root, keccak256(address), "TrieNodes")?
            .map(|bytes| decode(&bytes, "TrieNodes"))
            .transpose()
    }

    fn storage(&self, address: Address, slot: B256) -> StorageResult<U256> {
        let Some(account) = self.account(address)? else {
            return Ok(U256::ZERO);
        };
        Ok(
            match self.trie_get(account.storage_root, keccak256(slot), "TrieNodes")? {
                Some(bytes) => decode(&bytes, "TrieNodes")?,
                None => U256::ZERO,
            },
        )
    }

    fn bytecode(&self, code_hash: B256) -> StorageResult<Option<Bytes>> {
        self.store.bytecode(code_hash)
    }

    fn trie_node(&self, hash: B256) -> StorageResult<Option<Vec<u8>>> {
        self.store.trie_node(hash)
    }
}
