//! Access to the external test vectors in `../shared/vectors` (or `$VECTORS_DIR`).
//!
//! Test-only crate. Vectors are read at run time and never copied into the repository; a
//! missing vector is a test failure, not a skip.

use std::path::{Path, PathBuf};

/// The vectors directory: `$VECTORS_DIR`, else `../shared/vectors` beside the repository.
pub fn vectors_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("VECTORS_DIR") {
        let dir = PathBuf::from(dir);
        // A relative $VECTORS_DIR is relative to the repository root, like the default.
        return if dir.is_absolute() {
            dir
        } else {
            repo_root().join(dir)
        };
    }
    repo_root().join("../shared/vectors")
}

/// The repository root (two levels above this crate's `crates/testing/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..")
}

/// Path of a vector file, panicking with a clear message if it is absent.
pub fn vector_path(relative: &str) -> PathBuf {
    let path = vectors_dir().join(relative);
    assert!(
        path.exists(),
        "test vector {} not found (set VECTORS_DIR to the shared vectors directory)",
        path.display()
    );
    path
}

/// Reads a vector file as bytes.
pub fn read(relative: &str) -> Vec<u8> {
    let path = vector_path(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Reads and parses a JSON vector file.
pub fn json(relative: &str) -> serde_json::Value {
    serde_json::from_slice(&read(relative))
        .unwrap_or_else(|e| panic!("parsing {relative} as JSON: {e}"))
}

/// Decodes a `0x`-prefixed hex string (odd lengths allowed, as in some test files).
pub fn hex(s: &str) -> Vec<u8> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    let padded = if s.len() % 2 == 1 {
        format!("0{s}")
    } else {
        s.to_string()
    };
    alloy_primitives::hex::decode(padded).unwrap_or_else(|e| panic!("bad hex {s:?}: {e}"))
}

/// A test-file byte string: hex when it starts with `0x`, raw ASCII otherwise.
pub fn hex_or_ascii(s: &str) -> Vec<u8> {
    if s.starts_with("0x") {
        hex(s)
    } else {
        s.as_bytes().to_vec()
    }
}
