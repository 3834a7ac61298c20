//! Every MDBX table HealthChain uses, with its key layout and value codec, in one place.
//!
//! Keys are fixed-width big-endian so that MDBX's byte order is numeric order. Values use
//! alloy's RLP encodings; nothing here hand-writes a format alloy has.

use alloy_primitives::{Address, B256, U256};
use alloy_rlp::{Decodable, Encodable};
use healthchain_storage_api::{StorageError, TxLocation};

/// A table: its name in the MDBX environment and what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    /// MDBX database name.
    pub name: &'static str,
    /// Key → value, for `docs/database.md` and `db stats`.
    pub doc: &'static str,
}

/// Block hash → header RLP.
pub const HEADERS: Table = Table {
    name: "Headers",
    doc: "block hash -> header RLP",
};
/// Block number (u64 BE) → canonical block hash.
pub const CANONICAL_HASHES: Table = Table {
    name: "CanonicalHashes",
    doc: "number (u64 BE) -> canonical block hash",
};
/// Block hash → body RLP (transactions, ommers, withdrawals).
pub const BODIES: Table = Table {
    name: "Bodies",
    doc: "block hash -> body RLP",
};
/// Block hash → recovered senders, 20 bytes each, in transaction order.
pub const SENDERS: Table = Table {
    name: "Senders",
    doc: "block hash -> concatenated 20-byte senders",
};
/// Block hash → RLP list of receipts.
pub const RECEIPTS: Table = Table {
    name: "Receipts",
    doc: "block hash -> RLP list of receipts",
};
/// Transaction hash → block hash, block number and index.
pub const TX_LOOKUP: Table = Table {
    name: "TxLookup",
    doc: "tx hash -> block hash ++ number (u64 BE) ++ index (u64 BE)",
};
/// Address → latest account (nonce, balance, storage root, code hash) RLP.
pub const ACCOUNTS: Table = Table {
    name: "Accounts",
    doc: "address -> latest account RLP",
};
/// Address ++ slot → latest non-zero value, big-endian without leading zeros.
pub const STORAGES: Table = Table {
    name: "Storages",
    doc: "address ++ slot -> latest value (BE, no leading zeros)",
};
/// Code hash → contract code.
pub const BYTECODES: Table = Table {
    name: "Bytecodes",
    doc: "code hash -> code",
};
/// Node hash → trie node RLP, for every state ever committed (archive).
pub const TRIE_NODES: Table = Table {
    name: "TrieNodes",
    doc: "node hash -> node RLP (archive)",
};
/// Store metadata: `head`, `schema_version`.
pub const META: Table = Table {
    name: "Meta",
    doc: "name -> value (head, schema_version)",
};

/// All tables, created when the environment opens.
pub const ALL: [Table; 11] = [
    HEADERS,
    CANONICAL_HASHES,
    BODIES,
    SENDERS,
    RECEIPTS,
    TX_LOOKUP,
    ACCOUNTS,
    STORAGES,
    BYTECODES,
    TRIE_NODES,
    META,
];

/// `Meta` key of the head: number (u64 BE) ++ hash.
pub const META_HEAD: &[u8] = b"head";
/// `Meta` key of the layout version.
pub const META_SCHEMA: &[u8] = b"schema_version";
/// Layout version written by this code.
pub const SCHEMA_VERSION: u64 = 1;

/// A `Storages` key.
pub fn storage_key(address: Address, slot: B256) -> [u8; 52] {
    let mut key = [0u8; 52];
    key[..20].copy_from_slice(address.as_slice());
    key[20..].copy_from_slice(slot.as_slice());
    key
}

/// Encodes any RLP value.
pub fn rlp<T: Encodable>(value: &T) -> Vec<u8> {
    alloy_rlp::encode(value)
}

/// Decodes an RLP value that must span all of `bytes`.
pub fn unrlp<T: Decodable>(table: Table, bytes: &[u8]) -> Result<T, StorageError> {
    let mut buf = bytes;
    let value = T::decode(&mut buf).map_err(|e| corrupt(table, e))?;
    if !buf.is_empty() {
        return Err(corrupt(table, "trailing bytes"));
    }
    Ok(value)
}

/// A corrupt-value error for `table`.
pub fn corrupt(table: Table, reason: impl ToString) -> StorageError {
    StorageError::Corrupt {
        table: table.name,
        reason: reason.to_string(),
    }
}

/// A fixed-size value.
pub fn fixed<const N: usize>(table: Table, bytes: &[u8]) -> Result<[u8; N], StorageError> {
    bytes
        .try_into()
        .map_err(|_| corrupt(table, format!("expected {N} bytes, found {}", bytes.len())))
}

/// `Meta.head` value.
pub fn encode_head(number: u64, hash: B256) -> [u8; 40] {
    let mut out = [0u8; 40];
    out[..8].copy_from_slice(&number.to_be_bytes());
    out[8..].copy_from_slice(hash.as_slice());
    out
}

/// Decodes `Meta.head`.
pub fn decode_head(bytes: &[u8]) -> Result<(u64, B256), StorageError> {
    let raw = fixed::<40>(META, bytes)?;
    let mut number = [0u8; 8];
    number.copy_from_slice(&raw[..8]);
    Ok((u64::from_be_bytes(number), B256::from_slice(&raw[8..])))
}

/// `TxLookup` value.
pub fn encode_location(location: &TxLocation) -> [u8; 48] {
    let mut out = [0u8; 48];
    out[..32].copy_from_slice(location.block_hash.as_slice());
    out[32..40].copy_from_slice(&location.block_number.to_be_bytes());
    out[40..].copy_from_slice(&location.index.to_be_bytes());
    out
}

/// Decodes a `TxLookup` value.
pub fn decode_location(bytes: &[u8]) -> Result<TxLocation, StorageError> {
    let raw = fixed::<48>(TX_LOOKUP, bytes)?;
    let mut number = [0u8; 8];
    let mut index = [0u8; 8];
    number.copy_from_slice(&raw[32..40]);
    index.copy_from_slice(&raw[40..]);
    Ok(TxLocation {
        block_hash: B256::from_slice(&raw[..32]),
        block_number: u64::from_be_bytes(number),
        index: u64::from_be_bytes(index),
    })
}

/// `Storages` value: big-endian without leading zeros (zero is never stored).
pub fn encode_slot_value(value: U256) -> Vec<u8> {
    value.to_be_bytes_trimmed_vec()
}

/// Decodes a `Storages` value.
pub fn decode_slot_value(bytes: &[u8]) -> Result<U256, StorageError> {
    if bytes.is_empty() || bytes.len() > 32 || bytes[0] == 0 {
        return Err(corrupt(
            STORAGES,
            format!("non-canonical value of {} bytes", bytes.len()),
        ));
    }
    Ok(U256::from_be_slice(bytes))
}

/// `Senders` value.
pub fn encode_senders(senders: &[Address]) -> Vec<u8> {
    senders.iter().flat_map(|a| a.0.0).collect()
}

/// Decodes a `Senders` value.
pub fn decode_senders(bytes: &[u8]) -> Result<Vec<Address>, StorageError> {
    if !bytes.len().is_multiple_of(20) {
        return Err(corrupt(
            SENDERS,
            format!("length {} is not a multiple of 20", bytes.len()),
        ));
    }
    Ok(bytes.chunks_exact(20).map(Address::from_slice).collect())
}
