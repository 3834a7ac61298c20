//! The node's access log: every blob served, refused, uploaded or shared, one JSON line
//! each, hash-chained so an auditor can tell an edited or truncated-in-the-middle log.
//!
//! Why a node log and not a transaction per read: a read must not wait for a block nor
//! cost gas, and putting who-read-what on chain would show every validator and RPC user
//! the access pattern of every patient. Reads that the consortium wants on chain
//! (regulators, researchers) are already recorded there by `PatientRecord.requestAccess`.
//! Each entry's `hash` is SHA-256 over the previous entry's hash and this entry without
//! its hash; [`verify`] walks the chain.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use alloy_primitives::{Address, B256};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Mutex;

use crate::Cid;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditAction {
    /// A blob and its key wrap were served to a reader.
    Serve,
    /// A request was refused.
    Refuse,
    /// A blob was uploaded.
    Upload,
    /// A key wrap was stored for a reader.
    Share,
}

/// One logged event, as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the log, from 0.
    pub seq: u64,
    /// Unix time, seconds.
    pub time: u64,
    /// What happened.
    pub action: AuditAction,
    /// Who asked (the request's signer), when known.
    pub actor: Option<Address>,
    /// The blob.
    pub cid: Option<Cid>,
    /// The on-chain record id the request named.
    pub record: Option<u64>,
    /// For a share: the reader the key was wrapped for.
    pub reader: Option<Address>,
    /// Why it was refused, or a note.
    pub detail: Option<String>,
    /// The previous entry's hash (zero for the first).
    pub prev: B256,
    /// SHA-256 of `prev` and this entry's JSON without `hash`.
    #[serde(default)]
    pub hash: B256,
}

/// What the caller provides for an entry; the log adds seq, time and the chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditEvent {
    /// Who asked.
    pub actor: Option<Address>,
    /// The blob.
    pub cid: Option<Cid>,
    /// The record.
    pub record: Option<u64>,
    /// For a share: the reader.
    pub reader: Option<Address>,
    /// Refusal reason or note.
    pub detail: Option<String>,
}

/// Why the log cannot be written or does not verify.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The file failed.
    #[error("audit log {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A line that is not an entry, or breaks the chain.
    #[error("audit log {path} line {line}: {reason}")]
    Broken {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// What is wrong.
        reason: String,
    },
}

fn entry_hash(entry: &AuditEntry) -> B256 {
    let mut unhashed = entry.clone();
    unhashed.hash = B256::ZERO;
    let json = serde_json::to_vec(&unhashed).expect("entries serialize");
    let mut hasher = Sha256::new();
    hasher.update(entry.prev);
    hasher.update(&json);
    B256::from_slice(&hasher.finalize())
}

/// Walks the log: every line parses, follows its predecessor and hashes right. Returns
/// the entries.
pub fn verify(path: &Path) -> Result<Vec<AuditEntry>, AuditError> {
    let file = File::open(path).map_err(|source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut entries: Vec<AuditEntry> = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let broken = |reason: String| AuditError::Broken {
            path: path.to_path_buf(),
            line: i as u64 + 1,
            reason,
        };
        let line = line.map_err(|source| AuditError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let entry: AuditEntry = serde_json::from_str(&line).map_err(|e| broken(e.to_string()))?;
        let (seq, prev) = entries
            .last()
            .map_or((0, B256::ZERO), |last| (last.seq + 1, last.hash));
        if entry.seq != seq || entry.prev != prev {
            return Err(broken(format!("expected seq {seq} after {prev}")));
        }
        if entry_hash(&entry) != entry.hash {
            return Err(broken("hash does not match the entry".into()));
        }
        entries.push(entry);
    }
    Ok(entries)
}

/// The open log.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    state: Mutex<(File, u64, B256)>,
}

impl AuditLog {
    /// Opens (creating) the log, checking the existing chain so new entries extend it.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, AuditError> {
        let path = path.into();
        let io = |source| AuditError::Io {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        let entries = verify(&path)?;
        let (seq, prev) = entries
            .last()
            .map_or((0, B256::ZERO), |last| (last.seq + 1, last.hash));
        Ok(Self {
            path,
            state: Mutex::new((file, seq, prev)),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends an entry and syncs it to disk.
    pub fn record(&self, action: AuditAction, event: AuditEvent) -> Result<(), AuditError> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (file, seq, prev) = &mut *state;
        let mut entry = AuditEntry {
            seq: *seq,
            time: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            action,
            actor: event.actor,
            cid: event.cid,
            record: event.record,
            reader: event.reader,
            detail: event.detail,
            prev: *prev,
            hash: B256::ZERO,
        };
        entry.hash = entry_hash(&entry);
        let mut line = serde_json::to_vec(&entry).expect("entries serialize");
        line.push(b'\n');
        file.write_all(&line)
            .and_then(|()| file.sync_data())
            .map_err(|source| AuditError::Io {
                path: self.path.clone(),
                source,
            })?;
        *seq += 1;
        *prev = entry.hash;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_chain_across_reopen_and_edits_are_caught() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let event = |detail: &str| AuditEvent {
            actor: Some(Address::repeat_byte(1)),
            cid: Some(Cid::of(b"blob")),
            record: Some(3),
            reader: None,
            detail: Some(detail.into()),
        };
        let log = AuditLog::open(&path).unwrap();
        log.record(AuditAction::Serve, event("ok")).unwrap();
        log.record(AuditAction::Refuse, event("no consent"))
            .unwrap();
        drop(log);
        AuditLog::open(&path)
            .unwrap()
            .record(AuditAction::Upload, event("again"))
            .unwrap();
        let entries = verify(&path).unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[2].seq, 2);
        assert_eq!(entries[1].action, AuditAction::Refuse);

        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replacen("no consent", "consent ok", 1)).unwrap();
        let err = verify(&path).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        let lines: Vec<&str> = text.lines().collect();
        std::fs::write(&path, format!("{}\n{}\n", lines[0], lines[2])).unwrap();
        assert!(verify(&path).is_err());
        assert!(AuditLog::open(&path).is_err());
    }
}
