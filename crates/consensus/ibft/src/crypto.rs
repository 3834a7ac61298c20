//! The validator's node key: signs consensus messages and commit seals deterministically
//! (RFC 6979 over SHA-256, low S), as Besu's SECP256K1 signer does (ibft2.md §1.1).

use alloy_primitives::{Address, B256, U256, keccak256};
use healthchain_primitives::ibft::Signature65;
use k256::ecdsa::SigningKey;

/// A secp256k1 private key and the address it signs as.
#[derive(Clone)]
pub struct NodeKey {
    key: SigningKey,
    address: Address,
    public: [u8; 64],
}

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("NodeKey")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// A private key that is not a valid secp256k1 scalar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid secp256k1 private key (must be 32 bytes, in [1, n))")]
pub struct InvalidKey;

impl NodeKey {
    /// The key with this 32-byte secret.
    pub fn from_secret(secret: &[u8]) -> Result<Self, InvalidKey> {
        // k256 accepts shorter slices (left-padding them); a key file must hold all 32 bytes.
        if secret.len() != 32 {
            return Err(InvalidKey);
        }
        let key = SigningKey::from_slice(secret).map_err(|_| InvalidKey)?;
        let point = key.verifying_key().to_encoded_point(false);
        let mut public = [0u8; 64];
        public.copy_from_slice(&point.as_bytes()[1..]);
        let address = Address::from_slice(&keccak256(public)[12..]);
        Ok(Self {
            key,
            address,
            public,
        })
    }

    /// The address: the last 20 bytes of keccak256 of the 64-byte public key.
    pub const fn address(&self) -> Address {
        self.address
    }

    /// The uncompressed public key without its `0x04` prefix (Besu's enode id).
    pub const fn public_key(&self) -> &[u8; 64] {
        &self.public
    }

    /// The secret's 32 bytes (for writing key files).
    pub fn secret_bytes(&self) -> B256 {
        B256::from_slice(&self.key.to_bytes())
    }

    /// Signs a 32-byte hash: deterministic, low S, recovery id 0 or 1. k256 signs with
    /// RFC 6979 and normalises to low S, adjusting the recovery id. `None` only if the
    /// signer fails, which k256 0.13 does not do for a 32-byte prehash and a valid key.
    pub fn sign(&self, hash: B256) -> Option<Signature65> {
        let (signature, recovery) = self.key.sign_prehash_recoverable(hash.as_slice()).ok()?;
        let bytes = signature.to_bytes();
        Some(Signature65::new(alloy_primitives::Signature::new(
            U256::from_be_slice(&bytes[..32]),
            U256::from_be_slice(&bytes[32..]),
            recovery.is_y_odd(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_one_has_the_well_known_address() {
        let mut secret = [0u8; 32];
        secret[31] = 1;
        let key = NodeKey::from_secret(&secret).unwrap();
        assert_eq!(
            key.address(),
            "0x7e5f4552091a69125d5dfcb7b8c2659029395bdf"
                .parse::<Address>()
                .unwrap()
        );
        let hash = keccak256(b"x");
        let signature = key.sign(hash).unwrap();
        assert!(signature.is_low_s());
        assert_eq!(
            healthchain_primitives::ibft::recover_low_s(&signature, hash),
            Some(key.address())
        );
        assert_eq!(key.sign(hash), Some(signature), "deterministic");
    }

    #[test]
    fn invalid_secrets_are_refused() {
        assert_eq!(NodeKey::from_secret(&[0u8; 32]).unwrap_err(), InvalidKey);
        assert!(NodeKey::from_secret(&[1u8; 31]).is_err());
        assert!(NodeKey::from_secret(&[0xff; 32]).is_err());
    }
}
