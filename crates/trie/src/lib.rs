//! Ethereum Merkle-Patricia trie on [`trie_db`]: the RLP node codec, one-shot roots
//! (plain, secure and ordered), incremental updates over a node store, Merkle proofs and
//! ordered range reads.
//!
//! Pure crate: no IO. Persistent node storage is reached through [`NodeSource`]; new nodes
//! collect in a [`TrieOverlay`] that the caller writes out in its own block transaction.

mod codec;
mod overlay;

pub use codec::{EthLayout, KeccakHasher, RlpNodeCodec};
pub use overlay::{MemoryNodes, NodeSource, TrieOverlay};

use alloy_primitives::{B256, Bytes, b256, keccak256};
use trie_db::{Trie, TrieDBBuilder, TrieDBMutBuilder, TrieMut};

/// Root of the empty trie: `keccak256(rlp(""))`.
pub const EMPTY_ROOT: B256 =
    b256!("56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421");

/// What can go wrong reading or updating a trie.
#[derive(Debug, thiserror::Error)]
pub enum TrieError {
    /// A node's RLP could not be read.
    #[error("malformed trie node RLP: {0}")]
    Rlp(alloy_rlp::Error),
    /// A node's RLP is well-formed but not a valid trie node.
    #[error("malformed trie node: {0}")]
    MalformedNode(&'static str),
    /// A node the trie refers to is not in the store.
    #[error("trie node {0} is missing from the store")]
    MissingNode(B256),
    /// A stored node failed to decode.
    #[error("trie node {hash} is corrupt: {reason}")]
    CorruptNode {
        /// Hash of the corrupt node.
        hash: B256,
        /// Why it could not be decoded.
        reason: String,
    },
    /// The trie library reported an inconsistency.
    #[error("trie inconsistency: {0}")]
    Inconsistent(String),
}

type TrieDbError = Box<trie_db::TrieError<B256, TrieError>>;

impl From<TrieDbError> for TrieError {
    fn from(err: TrieDbError) -> Self {
        match *err {
            trie_db::TrieError::InvalidStateRoot(hash)
            | trie_db::TrieError::IncompleteDatabase(hash) => Self::MissingNode(hash),
            trie_db::TrieError::DecoderError(hash, reason) => Self::CorruptNode {
                hash,
                reason: reason.to_string(),
            },
            other => Self::Inconsistent(format!("{other:?}")),
        }
    }
}

/// Root of a trie holding `items` (any order; a later duplicate key wins; an empty value
/// means absent).
pub fn trie_root<K, V>(items: impl IntoIterator<Item = (K, V)>) -> B256
where
    K: AsRef<[u8]> + Ord,
    V: AsRef<[u8]>,
{
    let mut sorted = std::collections::BTreeMap::new();
    for (k, v) in items {
        sorted.insert(k, v);
    }
    // trie-db's one-shot builder needs sorted, unique keys without empty values.
    sorted.retain(|_, v| !v.as_ref().is_empty());
    let mut cb = trie_db::TrieRoot::<EthLayout>::default();
    trie_db::trie_visit::<EthLayout, _, _, _, _>(sorted, &mut cb);
    cb.root.unwrap_or(EMPTY_ROOT)
}

/// Root of a secure trie: every key is replaced by its keccak256 before insertion.
pub fn secure_trie_root<K, V>(items: impl IntoIterator<Item = (K, V)>) -> B256
where
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    trie_root(items.into_iter().map(|(k, v)| (keccak256(k), v)))
}

/// Root of an ordered trie (transactions, receipts, withdrawals): key `i` is `rlp(i)`.
pub fn ordered_trie_root<V: AsRef<[u8]>>(values: impl IntoIterator<Item = V>) -> B256 {
    trie_root(
        values
            .into_iter()
            .enumerate()
            .map(|(i, v)| (alloy_rlp::encode(i), v)),
    )
}

/// Applies `changes` (key, new value or `None` to delete) to the trie at `root`, writing
/// new nodes into `overlay`; returns the new root. Keys are used as given (hash them first
/// for a secure trie).
pub fn apply_changes<K: AsRef<[u8]>>(
    overlay: &mut TrieOverlay<'_>,
    root: B256,
    changes: impl IntoIterator<Item = (K, Option<Vec<u8>>)>,
) -> Result<B256, TrieError> {
    let mut root = root;
    {
        let mut trie = if root == EMPTY_ROOT {
            TrieDBMutBuilder::<EthLayout>::new(overlay, &mut root).build()
        } else {
            TrieDBMutBuilder::<EthLayout>::from_existing(overlay, &mut root).build()
        };
        for (key, value) in changes {
            match value {
                Some(v) if !v.is_empty() => {
                    trie.insert(key.as_ref(), &v)?;
                }
                _ => {
                    trie.remove(key.as_ref())?;
                }
            }
        }
        trie.commit();
    }
    Ok(root)
}

/// Reads `key` from the trie at `root`.
pub fn get(source: &dyn NodeSource, root: B256, key: &[u8]) -> Result<Option<Vec<u8>>, TrieError> {
    let db = overlay::SourceRef(source);
    let trie = TrieDBBuilder::<EthLayout>::new(&db, &root).build();
    Ok(trie.get(key)?)
}

/// Merkle proof of `key` in the trie at `root`: the RLP of every hashed node on the path,
/// root first, as `eth_getProof` returns it. Proves absence when the key is not present.
pub fn proof(source: &dyn NodeSource, root: B256, key: &[u8]) -> Result<Vec<Bytes>, TrieError> {
    if root == EMPTY_ROOT {
        return Ok(Vec::new());
    }
    let db = overlay::SourceRef(source);
    let mut recorder = trie_db::Recorder::<EthLayout>::new();
    {
        let trie = TrieDBBuilder::<EthLayout>::new(&db, &root)
            .with_recorder(&mut recorder)
            .build();
        trie.get(key)?;
    }
    Ok(recorder
        .drain()
        .into_iter()
        .map(|record| Bytes::from(record.data))
        .collect())
}

/// One page of a trie's entries in key order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RangePage {
    /// At most `limit` (key, value) pairs with key >= `start`, ascending.
    pub entries: Vec<(Vec<u8>, Vec<u8>)>,
    /// The first key after the page, if there is one (the `start` of the next page).
    pub next: Option<Vec<u8>>,
}

/// Reads up to `limit` entries of the trie at `root`, in key order, from the first key
/// `>= start`. Keys are as stored (hashed, for a secure trie).
pub fn range(
    source: &dyn NodeSource,
    root: B256,
    start: &[u8],
    limit: usize,
) -> Result<RangePage, TrieError> {
    let mut page = RangePage::default();
    if root == EMPTY_ROOT {
        return Ok(page);
    }
    let db = overlay::SourceRef(source);
    let trie = TrieDBBuilder::<EthLayout>::new(&db, &root).build();
    let mut iter = trie.iter()?;
    iter.seek(start)?;
    for item in iter {
        let (key, value) = item?;
        if page.entries.len() == limit {
            page.next = Some(key);
            break;
        }
        page.entries.push((key, value));
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_root_is_keccak_of_empty_string() {
        assert_eq!(EMPTY_ROOT, keccak256([0x80]));
        assert_eq!(trie_root(Vec::<(Vec<u8>, Vec<u8>)>::new()), EMPTY_ROOT);
    }

    #[test]
    fn incremental_update_matches_one_shot_root() {
        let store = MemoryNodes::default();
        let mut overlay = TrieOverlay::new(&store);
        let items: Vec<(Vec<u8>, Vec<u8>)> = (0u32..300)
            .map(|i| {
                (
                    keccak256(i.to_be_bytes()).to_vec(),
                    vec![(i % 250) as u8 + 1; 40],
                )
            })
            .collect();
        let root = apply_changes(
            &mut overlay,
            EMPTY_ROOT,
            items.iter().map(|(k, v)| (k.clone(), Some(v.clone()))),
        )
        .unwrap();
        assert_eq!(root, trie_root(items.clone()));
        let nodes = overlay.into_nodes();
        let mut store = MemoryNodes::default();
        store.extend(nodes);
        for (k, v) in &items {
            assert_eq!(get(&store, root, k).unwrap().as_deref(), Some(v.as_slice()));
        }
        // Delete half through a second overlay over the persisted nodes.
        let mut overlay = TrieOverlay::new(&store);
        let root2 = apply_changes(
            &mut overlay,
            root,
            items.iter().step_by(2).map(|(k, _)| (k.clone(), None)),
        )
        .unwrap();
        assert_eq!(root2, trie_root(items.iter().skip(1).step_by(2).cloned()));
    }

    #[test]
    fn range_pages_through_every_entry_in_order() {
        let items: std::collections::BTreeMap<Vec<u8>, Vec<u8>> = (0u32..500)
            .map(|i| {
                (
                    keccak256(i.to_be_bytes()).to_vec(),
                    vec![(i % 200) as u8 + 1; 3],
                )
            })
            .collect();
        let empty = MemoryNodes::default();
        let mut overlay = TrieOverlay::new(&empty);
        let root = apply_changes(
            &mut overlay,
            EMPTY_ROOT,
            items.iter().map(|(k, v)| (k.clone(), Some(v.clone()))),
        )
        .unwrap();
        let mut store = MemoryNodes::default();
        store.extend(overlay.into_nodes());

        let mut seen = Vec::new();
        let mut start = Vec::new();
        let mut pages = 0;
        loop {
            let page = range(&store, root, &start, 64).unwrap();
            assert!(page.entries.len() <= 64);
            seen.extend(page.entries);
            pages += 1;
            match page.next {
                Some(next) => start = next,
                None => break,
            }
        }
        assert_eq!(pages, 8);
        assert_eq!(seen, items.into_iter().collect::<Vec<_>>());

        // A start between keys begins at the next key; past the end is empty.
        let (second, _) = seen[1].clone();
        let mut between = seen[0].0.clone();
        between.push(0);
        assert_eq!(
            range(&store, root, &between, 1).unwrap().entries[0].0,
            second
        );
        let past = range(&store, root, &[0xff; 33], 10).unwrap();
        assert_eq!(past, RangePage::default());
        assert_eq!(
            range(&store, EMPTY_ROOT, &[], 10).unwrap(),
            RangePage::default()
        );
    }

    #[test]
    fn missing_node_is_an_error_not_a_panic() {
        let store = MemoryNodes::default();
        let err = get(&store, B256::repeat_byte(7), b"key").unwrap_err();
        assert!(matches!(err, TrieError::MissingNode(h) if h == B256::repeat_byte(7)));
    }

    #[test]
    fn corrupt_node_is_reported() {
        let mut store = MemoryNodes::default();
        let junk = vec![0xc3, 0x01, 0x02, 0x03];
        let hash = keccak256(&junk);
        store.extend([(hash, junk)]);
        assert!(matches!(
            get(&store, hash, b"k"),
            Err(TrieError::CorruptNode { .. })
        ));
    }
}
