//! The node key file: a hex secp256k1 private key, the node's p2p identity and, while its
//! address is in the validator set, its validator key (Besu's `key` file).

use std::io::Read;
use std::path::{Path, PathBuf};

use healthchain_ibft::NodeKey;

/// A key file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NodeKeyError {
    /// Unreadable or unwritable.
    #[error("key file {path}: {reason}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Not 32 bytes of hex, or not a valid secp256k1 scalar.
    #[error("key file {path} does not hold a secp256k1 private key (64 hex digits)")]
    Invalid {
        /// The file.
        path: PathBuf,
    },
}

/// Parses a hex private key (with or without `0x`).
pub fn key_from_hex(text: &str) -> Option<NodeKey> {
    let text = text.trim();
    let bytes = alloy_primitives::hex::decode(text.strip_prefix("0x").unwrap_or(text)).ok()?;
    NodeKey::from_secret(&bytes).ok()
}

/// Reads the key at `path`; with `create`, writes a fresh random key there first if the
/// file does not exist (readable by its owner only).
pub fn load_key(path: &Path, create: bool) -> Result<NodeKey, NodeKeyError> {
    let io = |e: std::io::Error| NodeKeyError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    if create && !path.exists() {
        let key = random_key().map_err(io)?;
        write_key(path, &key).map_err(io)?;
        tracing::info!(path = %path.display(), address = %key.address(), "generated a node key");
        return Ok(key);
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    key_from_hex(&text).ok_or_else(|| NodeKeyError::Invalid {
        path: path.to_path_buf(),
    })
}

/// Writes `key` as hex to `path`, owner-readable only.
pub fn write_key(path: &Path, key: &NodeKey) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let hex = format!("0x{}", alloy_primitives::hex::encode(key.secret_bytes()));
    std::fs::write(path, hex)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// A key from the operating system's randomness.
pub fn random_key() -> std::io::Result<NodeKey> {
    let mut urandom = std::fs::File::open("/dev/urandom")?;
    loop {
        let mut secret = [0u8; 32];
        urandom.read_exact(&mut secret)?;
        // Out-of-range scalars (probability ~2^-128) are drawn again.
        if let Ok(key) = NodeKey::from_secret(&secret) {
            return Ok(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_are_parsed_strictly() {
        let key =
            key_from_hex("0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
                .unwrap();
        assert_eq!(
            key.address(),
            "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"
                .parse::<alloy_primitives::Address>()
                .unwrap()
        );
        assert!(key_from_hex("0x1234").is_none());
        assert!(
            key_from_hex(&"00".repeat(32)).is_none(),
            "zero is not a key"
        );
        assert!(key_from_hex("zz").is_none());
        assert!(format!("{key:?}").contains("address"));
        assert!(!format!("{key:?}").contains("4c0883"));
    }

    #[test]
    fn a_missing_key_is_generated_once_and_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        assert!(load_key(&path, false).is_err());
        let first = load_key(&path, true).unwrap();
        let again = load_key(&path, true).unwrap();
        assert_eq!(first.address(), again.address());
        std::fs::write(&path, "not a key").unwrap();
        assert!(matches!(
            load_key(&path, true),
            Err(NodeKeyError::Invalid { .. })
        ));
    }
}
