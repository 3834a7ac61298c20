//! Client-side encryption of a record payload, done before anything leaves the client.
//!
//! A payload is encrypted once with a fresh 256-bit content key: ChaCha20-Poly1305 in the
//! STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár 2015; `aead::stream`, 32-bit
//! big-endian counter and last-block flag), 64 KiB per chunk, so 20 MB is never held
//! whole and a truncated, reordered or altered chunk fails to decrypt. The blob is
//! `MAGIC ‖ nonce prefix (7 bytes) ‖ chunk₀ ‖ … ‖ chunkₙ`, each chunk its ciphertext and
//! 16-byte tag.
//!
//! The content key is wrapped for each permitted reader with ECIES over secp256k1: an
//! ephemeral key, ECDH with the reader's public key, HKDF-SHA256 (salt: the ephemeral
//! public key, info: [`WRAP_INFO`]) to a key-encryption key, and ChaCha20-Poly1305 of the
//! content key with the CID as associated data, so a wrap cannot be moved to another blob.
//! A wrap is [`WRAPPED_KEY_LEN`] bytes: compressed ephemeral key (33) ‖ ciphertext and tag
//! (48). Granting a new reader is one more wrap; the payload is not touched.

use std::io::{self, Read, Write};

use chacha20poly1305::aead::stream::{DecryptorBE32, EncryptorBE32};
use chacha20poly1305::aead::{Aead, KeyInit, OsRng, Payload, rand_core::RngCore};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use k256::elliptic_curve::sec1::ToEncodedPoint;
use k256::{PublicKey, SecretKey};
use sha2::Sha256;

use crate::Cid;

/// The first bytes of every encrypted blob (format version 1).
pub const MAGIC: &[u8; 4] = b"HCE1";
/// Plaintext bytes per chunk.
pub const CHUNK: usize = 64 * 1024;
/// Ciphertext bytes per full chunk (plaintext and the Poly1305 tag).
const SEALED_CHUNK: usize = CHUNK + 16;
/// Length of the STREAM nonce prefix (12-byte nonce less the 5-byte counter and flag).
const PREFIX_LEN: usize = 7;
/// Bytes before the first chunk.
pub const HEADER_LEN: usize = MAGIC.len() + PREFIX_LEN;
/// HKDF info for key wraps.
pub const WRAP_INFO: &[u8] = b"healthchain blob key wrap v1";
/// Length of a wrapped content key.
pub const WRAPPED_KEY_LEN: usize = 33 + 32 + 16;

/// Why a payload or a key could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// Reading or writing failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// Not a HealthChain encrypted blob (wrong magic or too short).
    #[error("not a HealthChain encrypted blob (format HCE1)")]
    NotABlob,
    /// A chunk failed authentication: wrong key, or altered, reordered or truncated data.
    #[error("decryption failed at chunk {chunk}: wrong key or altered data")]
    Tampered {
        /// The chunk's index.
        chunk: u64,
    },
    /// The wrap is not for this key, blob or reader, or is malformed.
    #[error("the key wrap does not open with this key for this blob")]
    BadWrap,
    /// A public key that is not a secp256k1 point.
    #[error("not a secp256k1 public key (64 bytes, or SEC1 33 or 65 bytes)")]
    BadPublicKey,
}

/// A payload's symmetric key. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct ContentKey([u8; 32]);

impl std::fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContentKey(..)")
    }
}

impl ContentKey {
    /// A fresh random key (operating-system randomness).
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        Self(key)
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(&Key::from(self.0))
    }
}

/// Fills `buf` from `reader` as far as it goes; the count is short only at the end.
fn fill(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Encrypts everything `plain` yields into `sealed`; returns the bytes written.
pub fn encrypt(
    key: &ContentKey,
    plain: &mut impl Read,
    sealed: &mut impl Write,
) -> io::Result<u64> {
    let mut prefix = [0u8; PREFIX_LEN];
    OsRng.fill_bytes(&mut prefix);
    sealed.write_all(MAGIC)?;
    sealed.write_all(&prefix)?;
    let mut written = HEADER_LEN as u64;
    let mut stream = EncryptorBE32::from_aead(key.cipher(), (&prefix).into());
    let (mut current, mut next) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
    let mut len = fill(plain, &mut current)?;
    let seal_failed = || io::Error::other("chunk counter exhausted");
    loop {
        // Read ahead: a chunk is the last when nothing follows it.
        let next_len = if len == CHUNK {
            fill(plain, &mut next)?
        } else {
            0
        };
        if next_len == 0 {
            let out = stream
                .encrypt_last(&current[..len])
                .map_err(|_| seal_failed())?;
            sealed.write_all(&out)?;
            return Ok(written + out.len() as u64);
        }
        let out = stream
            .encrypt_next(&current[..len])
            .map_err(|_| seal_failed())?;
        sealed.write_all(&out)?;
        written += out.len() as u64;
        std::mem::swap(&mut current, &mut next);
        len = next_len;
    }
}

/// Decrypts a blob from `sealed` into `plain`; returns the plaintext length. Chunks are
/// written as they authenticate, so on an error `plain` holds a verified prefix only:
/// write to a temporary file and keep it only on success.
pub fn decrypt(
    key: &ContentKey,
    sealed: &mut impl Read,
    plain: &mut impl Write,
) -> Result<u64, EnvelopeError> {
    let mut header = [0u8; HEADER_LEN];
    if fill(sealed, &mut header)? != HEADER_LEN || &header[..MAGIC.len()] != MAGIC {
        return Err(EnvelopeError::NotABlob);
    }
    let prefix: [u8; PREFIX_LEN] = header[MAGIC.len()..].try_into().expect("7 bytes");
    let mut stream = DecryptorBE32::from_aead(key.cipher(), (&prefix).into());
    let (mut current, mut next) = (vec![0u8; SEALED_CHUNK], vec![0u8; SEALED_CHUNK]);
    let mut len = fill(sealed, &mut current)?;
    let mut total = 0u64;
    let mut chunk = 0u64;
    loop {
        let next_len = if len == SEALED_CHUNK {
            fill(sealed, &mut next)?
        } else {
            0
        };
        let tampered = |_| EnvelopeError::Tampered { chunk };
        if next_len == 0 {
            let out = stream.decrypt_last(&current[..len]).map_err(tampered)?;
            plain.write_all(&out)?;
            return Ok(total + out.len() as u64);
        }
        let out = stream.decrypt_next(&current[..len]).map_err(tampered)?;
        plain.write_all(&out)?;
        total += out.len() as u64;
        chunk += 1;
        std::mem::swap(&mut current, &mut next);
        len = next_len;
    }
}

/// Parses a reader's public key: 64 bytes (an enode id, no prefix) or SEC1 (33 or 65).
pub fn parse_public_key(bytes: &[u8]) -> Result<PublicKey, EnvelopeError> {
    let sec1 = if bytes.len() == 64 {
        [&[0x04], bytes].concat()
    } else {
        bytes.to_vec()
    };
    PublicKey::from_sec1_bytes(&sec1).map_err(|_| EnvelopeError::BadPublicKey)
}

/// A content key wrapped for one reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey(pub [u8; WRAPPED_KEY_LEN]);

impl WrappedKey {
    /// From its bytes; any other length is refused.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        Ok(Self(bytes.try_into().map_err(|_| EnvelopeError::BadWrap)?))
    }
}

fn key_encryption_key(shared: &k256::ecdh::SharedSecret, ephemeral: &[u8]) -> ChaCha20Poly1305 {
    let mut kek = [0u8; 32];
    shared
        .extract::<Sha256>(Some(ephemeral))
        .expand(WRAP_INFO, &mut kek)
        .expect("32 bytes is a valid HKDF-SHA256 length");
    ChaCha20Poly1305::new(&Key::from(kek))
}

/// Wraps `key` of the blob `cid` for the holder of `reader`.
pub fn wrap(key: &ContentKey, cid: &Cid, reader: &PublicKey) -> WrappedKey {
    let ephemeral = SecretKey::random(&mut OsRng);
    let ephemeral_public = ephemeral.public_key().to_encoded_point(true);
    let shared = k256::ecdh::diffie_hellman(ephemeral.to_nonzero_scalar(), reader.as_affine());
    let kek = key_encryption_key(&shared, ephemeral_public.as_bytes());
    // The key-encryption key is fresh per wrap, so the all-zero nonce is used once.
    let sealed = kek
        .encrypt(
            &Nonce::default(),
            Payload {
                msg: &key.0,
                aad: &cid.to_bytes(),
            },
        )
        .expect("encrypting 32 bytes cannot fail");
    let mut out = [0u8; WRAPPED_KEY_LEN];
    out[..33].copy_from_slice(ephemeral_public.as_bytes());
    out[33..].copy_from_slice(&sealed);
    WrappedKey(out)
}

/// Opens a wrap with the reader's secret key.
pub fn unwrap(
    wrapped: &WrappedKey,
    cid: &Cid,
    reader: &SecretKey,
) -> Result<ContentKey, EnvelopeError> {
    let ephemeral =
        PublicKey::from_sec1_bytes(&wrapped.0[..33]).map_err(|_| EnvelopeError::BadWrap)?;
    let shared = k256::ecdh::diffie_hellman(reader.to_nonzero_scalar(), ephemeral.as_affine());
    let kek = key_encryption_key(&shared, &wrapped.0[..33]);
    let key = kek
        .decrypt(
            &Nonce::default(),
            Payload {
                msg: &wrapped.0[33..],
                aad: &cid.to_bytes(),
            },
        )
        .map_err(|_| EnvelopeError::BadWrap)?;
    Ok(ContentKey(
        key.try_into().map_err(|_| EnvelopeError::BadWrap)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal(key: &ContentKey, plain: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let n = encrypt(key, &mut &plain[..], &mut out).unwrap();
        assert_eq!(n, out.len() as u64);
        out
    }

    fn open(key: &ContentKey, sealed: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
        let mut out = Vec::new();
        decrypt(key, &mut &sealed[..], &mut out)?;
        Ok(out)
    }

    #[test]
    fn round_trips_at_chunk_boundaries() {
        let key = ContentKey::generate();
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 7] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let sealed = seal(&key, &plain);
            let chunks = len.div_ceil(CHUNK).max(1);
            assert_eq!(sealed.len(), HEADER_LEN + len + 16 * chunks, "{len}");
            assert_eq!(open(&key, &sealed).unwrap(), plain, "{len}");
        }
    }

    #[test]
    fn same_plaintext_twice_gives_different_blobs() {
        let key = ContentKey::generate();
        assert_ne!(seal(&key, b"same"), seal(&key, b"same"));
    }

    #[test]
    fn altered_truncated_reordered_or_wrong_key_is_refused() {
        let key = ContentKey::generate();
        let plain = vec![7u8; 2 * CHUNK + 10];
        let sealed = seal(&key, &plain);
        let mut flipped = sealed.clone();
        flipped[HEADER_LEN + CHUNK + 100] ^= 1;
        assert!(matches!(
            open(&key, &flipped),
            Err(EnvelopeError::Tampered { chunk: 1 })
        ));
        // Dropping the last chunk: the new last one was not sealed as last.
        let cut = &sealed[..HEADER_LEN + 2 * SEALED_CHUNK];
        assert!(matches!(
            open(&key, cut),
            Err(EnvelopeError::Tampered { chunk: 1 })
        ));
        let mut swapped = sealed[..HEADER_LEN].to_vec();
        swapped
            .extend_from_slice(&sealed[HEADER_LEN + SEALED_CHUNK..HEADER_LEN + 2 * SEALED_CHUNK]);
        swapped.extend_from_slice(&sealed[HEADER_LEN..HEADER_LEN + SEALED_CHUNK]);
        swapped.extend_from_slice(&sealed[HEADER_LEN + 2 * SEALED_CHUNK..]);
        assert!(matches!(
            open(&key, &swapped),
            Err(EnvelopeError::Tampered { chunk: 0 })
        ));
        assert!(matches!(
            open(&ContentKey::generate(), &sealed),
            Err(EnvelopeError::Tampered { chunk: 0 })
        ));
        assert!(matches!(
            open(&key, b"HCE0xxxxxxx"),
            Err(EnvelopeError::NotABlob)
        ));
        assert!(matches!(open(&key, b"HC"), Err(EnvelopeError::NotABlob)));
    }

    #[test]
    fn wraps_open_only_for_their_reader_and_blob() {
        let key = ContentKey::generate();
        let reader = SecretKey::random(&mut OsRng);
        let other = SecretKey::random(&mut OsRng);
        let (cid, other_cid) = (Cid::of(b"blob"), Cid::of(b"another"));
        let wrapped = wrap(&key, &cid, &reader.public_key());
        assert_eq!(unwrap(&wrapped, &cid, &reader).unwrap(), key);
        assert!(matches!(
            unwrap(&wrapped, &cid, &other),
            Err(EnvelopeError::BadWrap)
        ));
        assert!(matches!(
            unwrap(&wrapped, &other_cid, &reader),
            Err(EnvelopeError::BadWrap)
        ));
        let mut bent = wrapped.clone();
        bent.0[40] ^= 1;
        assert!(matches!(
            unwrap(&bent, &cid, &reader),
            Err(EnvelopeError::BadWrap)
        ));
        assert!(WrappedKey::from_slice(&[0u8; 80]).is_err());
    }

    #[test]
    fn public_keys_parse_in_every_form() {
        let secret = SecretKey::random(&mut OsRng);
        let public = secret.public_key();
        let full = public.to_encoded_point(false);
        let compressed = public.to_encoded_point(true);
        assert_eq!(parse_public_key(full.as_bytes()).unwrap(), public);
        assert_eq!(parse_public_key(&full.as_bytes()[1..]).unwrap(), public);
        assert_eq!(parse_public_key(compressed.as_bytes()).unwrap(), public);
        assert!(parse_public_key(&[1u8; 64]).is_err());
        assert!(parse_public_key(&[]).is_err());
    }
}
