//! Every MDBX table HealthChain uses, with its key layout and value codec, in one place.
//!
//! A table is a type implementing [`Table`]: its MDBX name, its key type (encoded by
//! [`TableKey`]) and its value type (encoded by [`TableValue`]). Keys are fixed-width and
//! big-endian, so MDBX's byte order is numeric order. Values use alloy's own RLP and EIP-2718
//! encodings; nothing here hand-writes a format alloy already has.
//!
//! `docs/database.md` describes the same layout in prose; keep the two in step.

use std::borrow::Cow;

use alloy_primitives::{Address, B256, Bytes, U256};
use alloy_rlp::Decodable;
use healthchain_primitives::{Account, BlockBody, Header, Receipt};
use healthchain_storage_api::{StorageError, TxLocation};

/// A table: its MDBX name, key type and value type.
pub trait Table {
    /// MDBX database name (also shown by `healthchain db stats`).
    const NAME: &'static str;
    /// Position in [`ALL`]; the store keeps one MDBX handle per table in that order.
    const INDEX: usize;
    /// What the key is.
    type Key: TableKey;
    /// What the value is.
    type Value: TableValue;
}

/// How a key type becomes MDBX key bytes.
pub trait TableKey {
    /// The encoded key.
    type Encoded: AsRef<[u8]>;
    /// Encodes the key.
    fn encode_key(&self) -> Self::Encoded;
}

/// How a value type is stored.
pub trait TableValue: Sized {
    /// Encodes the value.
    fn encode_value(&self) -> Cow<'_, [u8]>;
    /// Decodes a stored value; the error says what is wrong with the bytes.
    fn decode_value(bytes: &[u8]) -> Result<Self, String>;
}

/// Decodes a value read from table `T`; bad bytes become [`StorageError::Corrupt`].
pub fn decode<T: Table>(bytes: &[u8]) -> Result<T::Value, StorageError> {
    T::Value::decode_value(bytes).map_err(|reason| StorageError::Corrupt {
        table: T::NAME,
        reason,
    })
}

macro_rules! tables {
    ($(
        $(#[$doc:meta])*
        $name:ident: $key:ty => $value:ty;
    )*) => {
        tables!(@each 0usize; $($(#[$doc])* $name: $key => $value;)*);

        /// Names of all tables, in [`Table::INDEX`] order; all are created when the store
        /// opens.
        pub const ALL: &[&str] = &[$(stringify!($name)),*];
    };
    (@each $index:expr;) => {};
    (@each $index:expr;
        $(#[$doc:meta])*
        $name:ident: $key:ty => $value:ty;
        $($rest:tt)*
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name;

        impl Table for $name {
            const NAME: &'static str = stringify!($name);
            const INDEX: usize = $index;
            type Key = $key;
            type Value = $value;
        }

        tables!(@each $index + 1usize; $($rest)*);
    };
}

tables! {
    /// Block hash → header, RLP (alloy `Header`).
    Headers: B256 => Header;
    /// Block number (u64 big-endian) → hash of the canonical block at that height.
    CanonicalHashes: u64 => B256;
    /// Block hash → body RLP: transactions (EIP-2718 network form), ommers, withdrawals.
    Bodies: B256 => BlockBody;
    /// Block hash → recovered senders, 20 bytes each, concatenated in transaction order.
    Senders: B256 => Vec<Address>;
    /// Block hash → RLP list of receipts, each in EIP-2718 network form (as in eth/66
    /// `Receipts`).
    Receipts: B256 => Vec<Receipt>;
    /// Transaction hash → block hash (32) ++ block number (u64 BE) ++ index (u64 BE).
    TxLookup: B256 => TxLocation;
    /// Address → latest account RLP (nonce, balance, storage root, code hash).
    Accounts: Address => Account;
    /// Address (20) ++ slot (32) → latest value, big-endian without leading zeros. Zero
    /// values are deleted, never stored; the address prefix lets a self-destruct wipe one
    /// account's slots with a cursor walk.
    Storages: StorageKey => StorageValue;
    /// Code hash → contract code, raw.
    Bytecodes: B256 => Bytes;
    /// Node hash → trie node RLP, raw. An archive: nodes of every committed state root,
    /// never deleted.
    TrieNodes: B256 => Vec<u8>;
    /// Store metadata by name: `head` → number (u64 BE) ++ hash, `schema_version` → u64 BE.
    Meta: MetaKey => Vec<u8>;
    /// Height (u64 BE) ++ sequence (u32 BE) → one of this validator's consensus votes (an
    /// encoded `VoteRecord`), written and synced before the vote is sent; heights below
    /// the next one to decide are pruned.
    ConsensusVotes: VoteKey => Vec<u8>;
}

/// A `ConsensusVotes` key: the votes of one height sort together, in append order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoteKey {
    /// The height the vote is for.
    pub height: u64,
    /// Its position among that height's votes.
    pub seq: u32,
}

impl TableKey for VoteKey {
    type Encoded = [u8; 12];
    fn encode_key(&self) -> [u8; 12] {
        let mut key = [0u8; 12];
        key[..8].copy_from_slice(&self.height.to_be_bytes());
        key[8..].copy_from_slice(&self.seq.to_be_bytes());
        key
    }
}

/// Layout version written by this code, in `Meta.schema_version`.
pub const SCHEMA_VERSION: u64 = 1;

// ---------------------------------------------------------------------------------------
// Keys

impl TableKey for B256 {
    type Encoded = [u8; 32];
    fn encode_key(&self) -> [u8; 32] {
        self.0
    }
}

impl TableKey for Address {
    type Encoded = [u8; 20];
    fn encode_key(&self) -> [u8; 20] {
        self.0.0
    }
}

impl TableKey for u64 {
    type Encoded = [u8; 8];
    fn encode_key(&self) -> [u8; 8] {
        self.to_be_bytes()
    }
}

/// A `Storages` key: the account, then the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StorageKey {
    /// The account.
    pub address: Address,
    /// The slot.
    pub slot: B256,
}

impl TableKey for StorageKey {
    type Encoded = [u8; 52];
    fn encode_key(&self) -> [u8; 52] {
        let mut key = [0u8; 52];
        key[..20].copy_from_slice(self.address.as_slice());
        key[20..].copy_from_slice(self.slot.as_slice());
        key
    }
}

/// A `Meta` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaKey {
    /// `head`: number (u64 BE) ++ hash of the latest committed block. See [`encode_head`].
    Head,
    /// `schema_version`: u64 BE, see [`SCHEMA_VERSION`].
    SchemaVersion,
}

impl TableKey for MetaKey {
    type Encoded = &'static [u8];
    fn encode_key(&self) -> &'static [u8] {
        match self {
            Self::Head => b"head",
            Self::SchemaVersion => b"schema_version",
        }
    }
}

// ---------------------------------------------------------------------------------------
// Values

/// Decodes an RLP value that must span all of `bytes`.
fn decode_rlp<T: Decodable>(bytes: &[u8]) -> Result<T, String> {
    let mut buf = bytes;
    let value = T::decode(&mut buf).map_err(|e| format!("RLP: {e}"))?;
    if !buf.is_empty() {
        return Err(format!("{} trailing bytes after the RLP item", buf.len()));
    }
    Ok(value)
}

fn fixed<const N: usize>(bytes: &[u8]) -> Result<[u8; N], String> {
    bytes
        .try_into()
        .map_err(|_| format!("expected {N} bytes, found {}", bytes.len()))
}

/// Values stored as their alloy RLP encoding.
macro_rules! rlp_values {
    ($($ty:ty),*) => {$(
        impl TableValue for $ty {
            fn encode_value(&self) -> Cow<'_, [u8]> {
                Cow::Owned(alloy_rlp::encode(self))
            }
            fn decode_value(bytes: &[u8]) -> Result<Self, String> {
                decode_rlp(bytes)
            }
        }
    )*};
}

// `Receipt` (alloy `ReceiptEnvelope`) and the transactions in `BlockBody` RLP-encode in
// their EIP-2718 network form, so these are alloy's wire encodings.
rlp_values!(Header, BlockBody, Vec<Receipt>, Account);

impl TableValue for B256 {
    fn encode_value(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self.as_slice())
    }
    fn decode_value(bytes: &[u8]) -> Result<Self, String> {
        fixed::<32>(bytes).map(B256::from)
    }
}

impl TableValue for Vec<Address> {
    fn encode_value(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.iter().flat_map(|a| a.0.0).collect())
    }
    fn decode_value(bytes: &[u8]) -> Result<Self, String> {
        if !bytes.len().is_multiple_of(20) {
            return Err(format!("length {} is not a multiple of 20", bytes.len()));
        }
        Ok(bytes.chunks_exact(20).map(Address::from_slice).collect())
    }
}

impl TableValue for TxLocation {
    fn encode_value(&self) -> Cow<'_, [u8]> {
        let mut out = Vec::with_capacity(48);
        out.extend_from_slice(self.block_hash.as_slice());
        out.extend_from_slice(&self.block_number.to_be_bytes());
        out.extend_from_slice(&self.index.to_be_bytes());
        Cow::Owned(out)
    }
    fn decode_value(bytes: &[u8]) -> Result<Self, String> {
        let raw = fixed::<48>(bytes)?;
        let (hash, rest) = raw.split_at(32);
        let (number, index) = rest.split_at(8);
        Ok(Self {
            block_hash: B256::from_slice(hash),
            block_number: u64::from_be_bytes(fixed(number)?),
            index: u64::from_be_bytes(fixed(index)?),
        })
    }
}

/// A non-zero `Storages` value (zero slots are deleted instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageValue(pub U256);

impl TableValue for StorageValue {
    fn encode_value(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.0.to_be_bytes_trimmed_vec())
    }
    fn decode_value(bytes: &[u8]) -> Result<Self, String> {
        match bytes.first() {
            Some(&first) if first != 0 && bytes.len() <= 32 => Ok(Self(U256::from_be_slice(bytes))),
            _ => Err(format!(
                "non-canonical slot value of {} bytes (must be 1..=32 bytes, no leading zero)",
                bytes.len()
            )),
        }
    }
}

impl TableValue for Bytes {
    fn encode_value(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self)
    }
    fn decode_value(bytes: &[u8]) -> Result<Self, String> {
        Ok(Bytes::copy_from_slice(bytes))
    }
}

impl TableValue for Vec<u8> {
    fn encode_value(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self)
    }
    fn decode_value(bytes: &[u8]) -> Result<Self, String> {
        Ok(bytes.to_vec())
    }
}

// ---------------------------------------------------------------------------------------
// Meta entries

/// `Meta.head` value: number (u64 BE) ++ hash.
pub fn encode_head(number: u64, hash: B256) -> Vec<u8> {
    let mut out = Vec::with_capacity(40);
    out.extend_from_slice(&number.to_be_bytes());
    out.extend_from_slice(hash.as_slice());
    out
}

/// Decodes `Meta.head`.
pub fn decode_head(bytes: &[u8]) -> Result<(u64, B256), StorageError> {
    let raw = fixed::<40>(bytes).map_err(meta_corrupt)?;
    let (number, hash) = raw.split_at(8);
    let number = u64::from_be_bytes(fixed(number).map_err(meta_corrupt)?);
    Ok((number, B256::from_slice(hash)))
}

/// `Meta.schema_version` value.
pub fn encode_schema_version(version: u64) -> [u8; 8] {
    version.to_be_bytes()
}

/// Decodes `Meta.schema_version`.
pub fn decode_schema_version(bytes: &[u8]) -> Result<u64, StorageError> {
    fixed::<8>(bytes)
        .map(u64::from_be_bytes)
        .map_err(meta_corrupt)
}

fn meta_corrupt(reason: String) -> StorageError {
    StorageError::Corrupt {
        table: Meta::NAME,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_indexes_match_all() {
        fn check<T: Table>() {
            assert_eq!(ALL[T::INDEX], T::NAME);
        }
        check::<Headers>();
        check::<CanonicalHashes>();
        check::<Bodies>();
        check::<Senders>();
        check::<Receipts>();
        check::<TxLookup>();
        check::<Accounts>();
        check::<Storages>();
        check::<Bytecodes>();
        check::<TrieNodes>();
        check::<Meta>();
        check::<ConsensusVotes>();
        assert_eq!(ALL.len(), 12);
    }

    #[test]
    fn storage_keys_sort_by_address_then_slot() {
        let a = StorageKey {
            address: Address::repeat_byte(1),
            slot: B256::repeat_byte(0xff),
        };
        let b = StorageKey {
            address: Address::repeat_byte(2),
            slot: B256::ZERO,
        };
        assert!(a.encode_key() < b.encode_key());
        assert_eq!(&a.encode_key()[..20], a.address.as_slice());
    }

    #[test]
    fn slot_values_are_minimal_big_endian() {
        let v = StorageValue(U256::from(0x0102u64));
        assert_eq!(v.encode_value().as_ref(), &[1, 2]);
        assert_eq!(StorageValue::decode_value(&[1, 2]), Ok(v));
        assert!(StorageValue::decode_value(&[]).is_err());
        assert!(StorageValue::decode_value(&[0, 1]).is_err());
        assert!(StorageValue::decode_value(&[1; 33]).is_err());
        let max = StorageValue(U256::MAX);
        assert_eq!(StorageValue::decode_value(&max.encode_value()), Ok(max));
    }

    #[test]
    fn fixed_width_values_round_trip() {
        let location = TxLocation {
            block_hash: B256::repeat_byte(7),
            block_number: 0x0102_0304,
            index: 9,
        };
        let bytes = location.encode_value();
        assert_eq!(bytes.len(), 48);
        assert_eq!(TxLocation::decode_value(&bytes), Ok(location));
        assert!(TxLocation::decode_value(&bytes[..47]).is_err());

        let head = encode_head(5, B256::repeat_byte(2));
        assert_eq!(decode_head(&head).ok(), Some((5, B256::repeat_byte(2))));
        assert!(decode_head(&head[1..]).is_err());

        let senders = vec![Address::repeat_byte(1), Address::repeat_byte(2)];
        let bytes = senders.encode_value();
        assert_eq!(bytes.len(), 40);
        assert_eq!(Vec::<Address>::decode_value(&bytes), Ok(senders));
        assert!(Vec::<Address>::decode_value(&[0; 21]).is_err());
    }

    #[test]
    fn rlp_values_reject_trailing_bytes() {
        let header = Header::default();
        let mut bytes = header.encode_value().into_owned();
        assert_eq!(Header::decode_value(&bytes), Ok(header));
        bytes.push(0);
        assert!(Header::decode_value(&bytes).is_err());
    }
}
