//! Signed blob requests: the reader proves who asks by signing, with the same key as its
//! account, a short text naming the chain, the action, the blob, the record and an expiry
//! (EIP-191 `personal_sign`, so a wallet can sign it too). The node recovers the signer
//! and asks the chain whether that account may have it.
//!
//! Over HTTP the fields travel as headers: [`HEADER_RECORD`], [`HEADER_READER`] (shares),
//! [`HEADER_EXPIRES`] and [`HEADER_SIGNATURE`]; the CID is in the path.

use std::fmt;

use alloy_primitives::{Address, B256, eip191_hash_message};
use healthchain_ibft::NodeKey;
use healthchain_primitives::ibft::{Signature65, recover_low_s};

use crate::Cid;

/// The record id the request is for.
pub const HEADER_RECORD: &str = "x-healthchain-record";
/// For a share: the reader the key is wrapped for.
pub const HEADER_READER: &str = "x-healthchain-reader";
/// Unix time (seconds) after which the signature is refused.
pub const HEADER_EXPIRES: &str = "x-healthchain-expires";
/// The 65-byte signature, hex.
pub const HEADER_SIGNATURE: &str = "x-healthchain-signature";
/// On a served blob: the requester's key wrap, hex.
pub const HEADER_KEY: &str = "x-healthchain-key";
/// The longest validity a node accepts, seconds: a leaked signature is soon useless.
pub const MAX_VALIDITY_SECS: u64 = 600;

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Upload a blob.
    Put,
    /// Fetch a blob and one's key wrap.
    Get,
    /// Store a key wrap for another reader.
    Share,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Put => "put",
            Self::Get => "get",
            Self::Share => "share",
        })
    }
}

/// The signed fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRequest {
    /// What.
    pub action: Action,
    /// The chain id (a signature for one network is useless on another).
    pub chain_id: u64,
    /// The blob.
    pub cid: Cid,
    /// The on-chain record (0 for an upload, made before the record exists).
    pub record: u64,
    /// For a share: whose key wrap.
    pub reader: Option<Address>,
    /// Unix time after which the node refuses it.
    pub expires: u64,
}

/// Why a signed request is refused before the chain is asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The signature does not recover (or has a high S).
    #[error("the request signature is invalid")]
    BadSignature,
    /// Past its expiry.
    #[error("the request expired at {expires} (now {now})")]
    Expired {
        /// Its expiry.
        expires: u64,
        /// The node's clock.
        now: u64,
    },
    /// Valid for longer than a node accepts.
    #[error("the request is valid for more than {MAX_VALIDITY_SECS} s")]
    TooLong,
}

impl BlobRequest {
    /// The text that is signed.
    pub fn message(&self) -> String {
        let mut text = format!(
            "HealthChain blob {}\nchain: {}\ncid: {}\nrecord: {}\nexpires: {}",
            self.action, self.chain_id, self.cid, self.record, self.expires
        );
        if let Some(reader) = self.reader {
            text.push_str(&format!("\nreader: {reader:#x}"));
        }
        text
    }

    fn digest(&self) -> B256 {
        eip191_hash_message(self.message())
    }

    /// Signs with the requester's key; the hex of the 65-byte signature.
    pub fn sign(&self, key: &NodeKey) -> String {
        let signature = key
            .sign(self.digest())
            .expect("k256 signs a 32-byte prehash");
        alloy_primitives::hex::encode_prefixed(signature.to_bytes())
    }

    /// The account that signed `signature` (hex), if the request is current at `now`.
    pub fn signer(&self, signature: &str, now: u64) -> Result<Address, RequestError> {
        if self.expires < now {
            return Err(RequestError::Expired {
                expires: self.expires,
                now,
            });
        }
        if self.expires - now > MAX_VALIDITY_SECS {
            return Err(RequestError::TooLong);
        }
        let mut bytes = alloy_primitives::hex::decode(signature.trim())
            .map_err(|_| RequestError::BadSignature)?;
        // Wallets' personal_sign writes v as 27 or 28.
        if let Some(v @ (27 | 28)) = bytes.get(64).copied() {
            bytes[64] = v - 27;
        }
        let signature = Signature65::from_bytes(&bytes).map_err(|_| RequestError::BadSignature)?;
        recover_low_s(&signature, self.digest()).ok_or(RequestError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> NodeKey {
        NodeKey::from_secret(&[byte; 32]).unwrap()
    }

    fn request() -> BlobRequest {
        BlobRequest {
            action: Action::Get,
            chain_id: 1337,
            cid: Cid::of(b"blob"),
            record: 4,
            reader: None,
            expires: 1_000,
        }
    }

    #[test]
    fn the_signer_is_recovered_and_every_field_is_bound() {
        let (alice, request) = (key(1), request());
        let signature = request.sign(&alice);
        assert_eq!(request.signer(&signature, 900), Ok(alice.address()));
        let changed = [
            BlobRequest {
                action: Action::Put,
                ..request.clone()
            },
            BlobRequest {
                chain_id: 1,
                ..request.clone()
            },
            BlobRequest {
                cid: Cid::of(b"other"),
                ..request.clone()
            },
            BlobRequest {
                record: 5,
                ..request.clone()
            },
            BlobRequest {
                reader: Some(Address::ZERO),
                ..request.clone()
            },
            BlobRequest {
                expires: 1_001,
                ..request.clone()
            },
        ];
        for other in changed {
            assert_ne!(
                other.signer(&signature, 900),
                Ok(alice.address()),
                "{other:?}"
            );
        }
    }

    #[test]
    fn expired_long_lived_and_malformed_are_refused() {
        let request = request();
        let signature = request.sign(&key(1));
        assert!(matches!(
            request.signer(&signature, 1_001),
            Err(RequestError::Expired { .. })
        ));
        assert_eq!(request.signer(&signature, 1), Err(RequestError::TooLong));
        for bad in ["", "0x12", "zz", &"00".repeat(65)] {
            assert_eq!(
                request.signer(bad, 900),
                Err(RequestError::BadSignature),
                "{bad}"
            );
        }
    }
}
