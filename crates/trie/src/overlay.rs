//! Node storage seen by trie-db: a read-only [`NodeSource`] plus a write overlay.

use alloy_primitives::{B256, keccak256, map::B256Map};
use hash_db::{AsHashDB, HashDB, HashDBRef, Prefix};

use crate::{EMPTY_ROOT, KeccakHasher};

/// Where committed trie nodes are read from, keyed by keccak256 of their RLP.
pub trait NodeSource: Send + Sync {
    /// The node whose hash is `hash`, if stored.
    fn node(&self, hash: &B256) -> Option<Vec<u8>>;
}

/// An in-memory node store, for tests and one-shot computations.
#[derive(Debug, Default, Clone)]
pub struct MemoryNodes(B256Map<Vec<u8>>);

impl MemoryNodes {
    /// Adds nodes to the store.
    pub fn extend(&mut self, nodes: impl IntoIterator<Item = (B256, Vec<u8>)>) {
        self.0.extend(nodes);
    }

    /// Number of stored nodes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the store holds no nodes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl NodeSource for MemoryNodes {
    fn node(&self, hash: &B256) -> Option<Vec<u8>> {
        self.0.get(hash).cloned()
    }
}

/// Nodes written by trie updates, layered over a [`NodeSource`].
///
/// The store is an archive: nodes are never deleted from the source, so every historical
/// root stays readable (historical `eth_getProof` and state reads need this). A node that
/// trie-db creates and then discards within one overlay is reference-counted away and never
/// written.
pub struct TrieOverlay<'a> {
    source: &'a dyn NodeSource,
    written: B256Map<(Vec<u8>, i32)>,
}

impl core::fmt::Debug for TrieOverlay<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TrieOverlay")
            .field("written", &self.written.len())
            .finish()
    }
}

impl<'a> TrieOverlay<'a> {
    /// An empty overlay over `source`.
    pub fn new(source: &'a dyn NodeSource) -> Self {
        Self {
            source,
            written: B256Map::default(),
        }
    }

    /// The nodes to persist: everything inserted and still referenced.
    pub fn into_nodes(self) -> impl Iterator<Item = (B256, Vec<u8>)> {
        self.written
            .into_iter()
            .filter(|(_, (_, rc))| *rc > 0)
            .map(|(h, (data, _))| (h, data))
    }

    /// Number of live nodes written so far.
    pub fn len(&self) -> usize {
        self.written.values().filter(|(_, rc)| *rc > 0).count()
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lookup(&self, key: &B256) -> Option<Vec<u8>> {
        if *key == EMPTY_ROOT {
            return Some(vec![alloy_rlp::EMPTY_STRING_CODE]);
        }
        match self.written.get(key) {
            Some((data, rc)) if *rc > 0 => Some(data.clone()),
            _ => self.source.node(key),
        }
    }
}

impl HashDB<KeccakHasher, Vec<u8>> for TrieOverlay<'_> {
    fn get(&self, key: &B256, _prefix: Prefix<'_>) -> Option<Vec<u8>> {
        self.lookup(key)
    }

    fn contains(&self, key: &B256, prefix: Prefix<'_>) -> bool {
        HashDB::get(self, key, prefix).is_some()
    }

    fn insert(&mut self, prefix: Prefix<'_>, value: &[u8]) -> B256 {
        let hash = keccak256(value);
        self.emplace(hash, prefix, value.to_vec());
        hash
    }

    fn emplace(&mut self, key: B256, _prefix: Prefix<'_>, value: Vec<u8>) {
        let entry = self.written.entry(key).or_insert_with(|| (Vec::new(), 0));
        if entry.1 <= 0 {
            entry.0 = value;
        }
        entry.1 += 1;
    }

    fn remove(&mut self, key: &B256, _prefix: Prefix<'_>) {
        // Archive store: only nodes created in this overlay can be dropped.
        if let Some(entry) = self.written.get_mut(key) {
            entry.1 -= 1;
        }
    }
}

impl HashDBRef<KeccakHasher, Vec<u8>> for TrieOverlay<'_> {
    fn get(&self, key: &B256, _prefix: Prefix<'_>) -> Option<Vec<u8>> {
        self.lookup(key)
    }

    fn contains(&self, key: &B256, _prefix: Prefix<'_>) -> bool {
        self.lookup(key).is_some()
    }
}

impl AsHashDB<KeccakHasher, Vec<u8>> for TrieOverlay<'_> {
    fn as_hash_db(&self) -> &dyn HashDB<KeccakHasher, Vec<u8>> {
        self
    }

    fn as_hash_db_mut<'b>(&'b mut self) -> &'b mut (dyn HashDB<KeccakHasher, Vec<u8>> + 'b) {
        self
    }
}

/// Read-only adapter of a [`NodeSource`] for trie-db readers.
pub(crate) struct SourceRef<'a>(pub(crate) &'a dyn NodeSource);

impl HashDBRef<KeccakHasher, Vec<u8>> for SourceRef<'_> {
    fn get(&self, key: &B256, _prefix: Prefix<'_>) -> Option<Vec<u8>> {
        if *key == EMPTY_ROOT {
            return Some(vec![alloy_rlp::EMPTY_STRING_CODE]);
        }
        self.0.node(key)
    }

    fn contains(&self, key: &B256, prefix: Prefix<'_>) -> bool {
        HashDBRef::get(self, key, prefix).is_some()
    }
}
