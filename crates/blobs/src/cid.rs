//! Content ids as IPFS writes them.
//!
//! [`Cid`] is the record's content id: CIDv1, `raw` codec (0x55), sha2-256 multihash (0x12,
//! 32 bytes), multibase base32 lower case without padding (`bafkrei…`). Its digest is the
//! SHA-256 of the bytes, which the on-chain record also holds, so one hash checks both.
//! Kubo gives this CID to `ipfs block put --cid-codec raw` of the bytes and to
//! `ipfs add --cid-version 1 --raw-leaves` of a file of one chunk (≤ 256 KiB).
//!
//! [`UnixfsHasher`] computes the CID of the same bytes *as a file*: the UnixFS dag-pb DAG
//! that `ipfs add` builds by default (256 KiB chunks, balanced layout, 174 links per node)
//! and that Debian's `ipfs-cid` (`ipfs_cid`) prints as `CIDv1` (`bafybei…`). The node
//! reports it beside the raw CID so a blob can be found again in an IPFS network or
//! checked with `ipfs_cid`.

use std::fmt;
use std::str::FromStr;

use alloy_primitives::B256;
use sha2::{Digest, Sha256};

/// The binary prefix: version 1, codec raw, multihash sha2-256 of 32 bytes.
const PREFIX: [u8; 4] = [0x01, 0x55, 0x12, 0x20];

/// A CIDv1 (raw, sha2-256): the SHA-256 of the content it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cid(B256);

/// Why a text is not a CID this store accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidError {
    /// Not multibase base32 lower case (`b…`).
    #[error("CID {0:?} is not base32 (it must start with 'b', as CIDv1 text does)")]
    NotBase32(String),
    /// Base32 that does not decode.
    #[error("CID {0:?} is not valid base32")]
    BadBase32(String),
    /// A CID of another version, codec or hash.
    #[error("CID {0:?} is not CIDv1 raw sha2-256 (the only kind HealthChain stores)")]
    Unsupported(String),
}

impl Cid {
    /// The CID of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(B256::from_slice(&Sha256::digest(bytes)))
    }

    /// The CID whose content has this SHA-256.
    pub const fn from_sha256(digest: B256) -> Self {
        Self(digest)
    }

    /// The content's SHA-256 (what the on-chain record holds as `contentHash`).
    pub const fn sha256(&self) -> B256 {
        self.0
    }

    /// The binary CID: prefix and digest.
    pub fn to_bytes(&self) -> [u8; 36] {
        let mut out = [0u8; 36];
        out[..4].copy_from_slice(&PREFIX);
        out[4..].copy_from_slice(self.0.as_slice());
        out
    }
}

/// Multibase base32 lower case without padding: `b` and the encoding.
fn base32_multibase(bytes: &[u8]) -> String {
    let text = data_encoding::BASE32_NOPAD.encode(bytes);
    format!("b{}", text.to_ascii_lowercase())
}

impl fmt::Display for Cid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&base32_multibase(&self.to_bytes()))
    }
}

impl FromStr for Cid {
    type Err = CidError;

    fn from_str(text: &str) -> Result<Self, CidError> {
        let body = text
            .strip_prefix('b')
            .filter(|b| b.bytes().all(|c| matches!(c, b'a'..=b'z' | b'2'..=b'7')))
            .ok_or_else(|| CidError::NotBase32(text.to_string()))?;
        let bytes = data_encoding::BASE32_NOPAD
            .decode(body.to_ascii_uppercase().as_bytes())
            .map_err(|_| CidError::BadBase32(text.to_string()))?;
        if bytes.len() != 36 || bytes[..4] != PREFIX {
            return Err(CidError::Unsupported(text.to_string()));
        }
        Ok(Self(B256::from_slice(&bytes[4..])))
    }
}

/// Bytes per UnixFS leaf (`ipfs add`'s default `size-262144` chunker).
const UNIXFS_CHUNK: usize = 256 * 1024;
/// Links per UnixFS node in the balanced layout.
const UNIXFS_LINKS: usize = 174;

fn varint(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A protobuf length-delimited field.
fn field_bytes(out: &mut Vec<u8>, field: u8, bytes: &[u8]) {
    out.push(field << 3 | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A protobuf varint field.
fn field_varint(out: &mut Vec<u8>, field: u8, n: u64) {
    out.push(field << 3);
    varint(out, n);
}

/// A DAG node summarised for its parent: hash, encoded size of its subtree, file bytes.
#[derive(Debug, Clone, Copy)]
struct DagNode {
    hash: B256,
    tree_size: u64,
    file_size: u64,
}

/// The UnixFS `Data` message of a file node (`Type = File`).
fn unixfs_file(data: &[u8], file_size: u64, block_sizes: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 16);
    field_varint(&mut out, 1, 2);
    if !data.is_empty() {
        field_bytes(&mut out, 2, data);
    }
    field_varint(&mut out, 3, file_size);
    for size in block_sizes {
        field_varint(&mut out, 4, *size);
    }
    out
}

fn leaf(chunk: &[u8]) -> DagNode {
    let mut node = Vec::with_capacity(chunk.len() + 24);
    field_bytes(&mut node, 1, &unixfs_file(chunk, chunk.len() as u64, &[]));
    DagNode {
        hash: B256::from_slice(&Sha256::digest(&node)),
        tree_size: node.len() as u64,
        file_size: chunk.len() as u64,
    }
}

fn parent(children: &[DagNode]) -> DagNode {
    // dag-pb writes the links (field 2) before the data (field 1).
    let mut node = Vec::new();
    for child in children {
        let mut link = Vec::with_capacity(48);
        field_bytes(
            &mut link,
            1,
            &[&[0x12, 0x20][..], child.hash.as_slice()].concat(),
        );
        field_bytes(&mut link, 2, b"");
        field_varint(&mut link, 3, child.tree_size);
        field_bytes(&mut node, 2, &link);
    }
    let file_size = children.iter().map(|c| c.file_size).sum();
    let sizes: Vec<u64> = children.iter().map(|c| c.file_size).collect();
    field_bytes(&mut node, 1, &unixfs_file(&[], file_size, &sizes));
    DagNode {
        hash: B256::from_slice(&Sha256::digest(&node)),
        tree_size: node.len() as u64 + children.iter().map(|c| c.tree_size).sum::<u64>(),
        file_size,
    }
}

/// Streams bytes into the UnixFS CID `ipfs add` (and `ipfs_cid`) gives them as a file.
/// Holds one chunk and one 32-byte summary per chunk.
#[derive(Debug, Default)]
pub struct UnixfsHasher {
    chunk: Vec<u8>,
    leaves: Vec<DagNode>,
}

impl UnixfsHasher {
    /// A hasher with nothing in it.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes.
    pub fn update(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let take = (UNIXFS_CHUNK - self.chunk.len()).min(bytes.len());
            self.chunk.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.chunk.len() == UNIXFS_CHUNK {
                self.leaves.push(leaf(&self.chunk));
                self.chunk.clear();
            }
        }
    }

    /// The CIDv1 (dag-pb, sha2-256, base32) of everything added.
    pub fn finish(mut self) -> String {
        if !self.chunk.is_empty() || self.leaves.is_empty() {
            self.leaves.push(leaf(&self.chunk));
        }
        let mut level = self.leaves;
        while level.len() > 1 {
            level = level.chunks(UNIXFS_LINKS).map(parent).collect();
        }
        let mut bytes = vec![0x01, 0x70, 0x12, 0x20];
        bytes.extend_from_slice(level[0].hash.as_slice());
        base32_multibase(&bytes)
    }
}

/// The UnixFS CID of `bytes` (see [`UnixfsHasher`]).
pub fn unixfs_cid(bytes: &[u8]) -> String {
    let mut hasher = UnixfsHasher::new();
    hasher.update(bytes);
    hasher.finish()
}

impl serde::Serialize for Cid {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Cid {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_ipfs_cids() {
        // `echo -n hello | ipfs-cid` and the IPFS docs' raw-leaf CID of the empty file.
        assert_eq!(
            Cid::of(b"hello").to_string(),
            "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"
        );
        assert_eq!(
            Cid::of(b"").to_string(),
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
        );
    }

    #[test]
    fn unixfs_cids_match_ipfs_add() {
        // `ipfs add --cid-version 1 --raw-leaves=false` (= `ipfs_cid`'s CIDv1).
        assert_eq!(
            unixfs_cid(b"hello"),
            "bafybeid3weurg3gvyoi7nisadzolomlvoxoppe2sesktnpvdve3256n5tq"
        );
        assert_eq!(
            unixfs_cid(b""),
            "bafybeif7ztnhq65lumvvtr4ekcwd2ifwgm3awq4zfr3srh462rwyinlb4y"
        );
        // Fed in odd pieces, the same as whole.
        let bytes: Vec<u8> = (0..700_000u32).map(|i| (i % 253) as u8).collect();
        let mut hasher = UnixfsHasher::new();
        for piece in bytes.chunks(77_777) {
            hasher.update(piece);
        }
        assert_eq!(hasher.finish(), unixfs_cid(&bytes));
    }

    #[test]
    fn text_round_trips_and_bad_text_is_refused() {
        let cid = Cid::of(b"record");
        assert_eq!(cid.to_string().parse::<Cid>(), Ok(cid));
        assert_eq!(cid.to_string().len(), 59);
        for bad in [
            "",
            "Qmfoo",
            "bafkreiBM6",
            "b1",
            "bafybeibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq",
        ] {
            assert!(bad.parse::<Cid>().is_err(), "{bad}");
        }
        // A CIDv1 dag-pb (0x70) of the same digest is another kind.
        let mut dag = cid.to_bytes();
        dag[1] = 0x70;
        let text = base32_multibase(&dag);
        assert!(matches!(text.parse::<Cid>(), Err(CidError::Unsupported(_))));
    }
}
