//! Encrypted off-chain records: what a hospital's patient data becomes before it leaves
//! the client, and how a node keeps and serves it.
//!
//! - [`cid`]: content ids as IPFS writes them: the record's CIDv1 (raw, sha2-256, base32)
//!   and the UnixFS file CID that `ipfs add` and `ipfs_cid` give the same bytes.
//! - [`envelope`]: client-side encryption (ChaCha20-Poly1305, chunked STREAM) under a
//!   fresh content key, and ECIES key wraps for each permitted reader.
//! - [`store`]: the node's blob store (files named by CID, written atomically, re-hashed
//!   on every read) and its key wraps.
//! - [`request`]: the signed request a reader sends to fetch (or an author to upload or
//!   share), which the node checks against the chain's read rules.
//! - [`audit`]: the node's hash-chained log of every serve, refusal, upload and share.
//! - [`announce`]: the gossip messages that replicate blobs and wraps between nodes.
//!
//! The node never sees a plaintext or a content key: it stores ciphertext, checks
//! signatures and asks the chain. No I/O stack here beyond files; the node crate serves it
//! over HTTP and libp2p.

pub mod announce;
pub mod audit;
pub mod cid;
pub mod envelope;
pub mod request;
pub mod store;

pub use announce::Announcement;
pub use audit::{AuditAction, AuditEvent, AuditLog};
pub use cid::{Cid, CidError, UnixfsHasher, unixfs_cid};
pub use envelope::{ContentKey, EnvelopeError, WrappedKey};
pub use request::{Action, BlobRequest, RequestError};
pub use store::{BlobReader, BlobStore, BlobWriter, StoreError};
