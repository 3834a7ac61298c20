//! The node's blob store: one file per blob under `blobs/`, named by its CID, and the key
//! wraps under `keys/<cid>/<reader address>`.
//!
//! Files, not MDBX (`docs/blobs.md` has the measurement): a blob is written once and read
//! whole, by streaming, which files do without holding it in memory, and large values in
//! the chain database would grow its B-tree pages and its copy-on-write cost for no query
//! it can answer. A blob is written to `tmp/`, hashed as it streams, fsynced and only
//! then renamed to its CID, so a crash or a refused upload leaves nothing behind under
//! `blobs/`. Every read re-hashes: [`BlobStore::verify`] before serving, and
//! [`BlobReader`] fails at its end if the bytes it streamed do not match. A corrupt blob
//! is moved to `corrupt/` for inspection and reported missing.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use alloy_primitives::{Address, B256};
use sha2::{Digest, Sha256};

use crate::{Cid, WrappedKey};

/// Why the store refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The filesystem failed.
    #[error("blob store I/O at {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// An upload larger than the limit.
    #[error("blob larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// The uploaded bytes are not the content the CID names.
    #[error("content does not match its CID: expected {expected}, got {actual}")]
    CidMismatch {
        /// The CID claimed.
        expected: Cid,
        /// The CID of the bytes received.
        actual: Cid,
    },
    /// A stored blob whose bytes no longer hash to its CID (moved to `corrupt/`).
    #[error("stored blob {cid} failed its integrity check and was quarantined")]
    Corrupt {
        /// The blob.
        cid: Cid,
    },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Blobs and key wraps in a directory.
#[derive(Debug)]
pub struct BlobStore {
    root: PathBuf,
    max_bytes: u64,
    counter: AtomicU64,
}

impl BlobStore {
    /// Opens (creating) the store at `root`, refusing blobs over `max_bytes`. Leftover
    /// temporary files from an interrupted upload are removed.
    pub fn open(root: impl Into<PathBuf>, max_bytes: u64) -> Result<Self, StoreError> {
        let root = root.into();
        for dir in ["blobs", "keys", "tmp", "corrupt"] {
            let path = root.join(dir);
            fs::create_dir_all(&path).map_err(io_at(&path))?;
        }
        let tmp = root.join("tmp");
        for entry in fs::read_dir(&tmp).map_err(io_at(&tmp))?.flatten() {
            let _ = fs::remove_file(entry.path());
        }
        Ok(Self {
            root,
            max_bytes,
            counter: AtomicU64::new(0),
        })
    }

    /// The largest blob accepted.
    pub const fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    fn blob_path(&self, cid: &Cid) -> PathBuf {
        self.root.join("blobs").join(cid.to_string())
    }

    /// Whether the blob is here (not checked; [`Self::verify`] checks).
    pub fn contains(&self, cid: &Cid) -> bool {
        self.blob_path(cid).is_file()
    }

    /// Starts an upload.
    pub fn writer(&self) -> Result<BlobWriter, StoreError> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .root
            .join("tmp")
            .join(format!("{}-{n}", std::process::id()));
        let file = File::create(&tmp).map_err(io_at(&tmp))?;
        Ok(BlobWriter {
            file: Some(file),
            tmp,
            blobs: self.root.join("blobs"),
            hasher: Sha256::new(),
            len: 0,
            max: self.max_bytes,
        })
    }

    /// Re-hashes the stored blob: its size when it matches, `None` when absent. A
    /// mismatch quarantines the file and is [`StoreError::Corrupt`].
    pub fn verify(&self, cid: &Cid) -> Result<Option<u64>, StoreError> {
        let path = self.blob_path(cid);
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_at(&path)(e)),
        };
        let mut hasher = Sha256::new();
        let len = io::copy(&mut file, &mut hasher).map_err(io_at(&path))?;
        if B256::from_slice(&hasher.finalize()) != cid.sha256() {
            self.quarantine(cid);
            return Err(StoreError::Corrupt { cid: *cid });
        }
        Ok(Some(len))
    }

    fn quarantine(&self, cid: &Cid) {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let to = self.root.join("corrupt").join(format!("{cid}-{n}"));
        tracing::error!(%cid, to = %to.display(), "stored blob failed its integrity check; quarantined");
        let _ = fs::rename(self.blob_path(cid), to);
    }

    /// Opens the blob for streaming, or `None` when absent. The reader checks the hash at
    /// its end; call [`Self::verify`] first to refuse before sending anything.
    pub fn open_blob(&self, cid: &Cid) -> Result<Option<BlobReader>, StoreError> {
        let path = self.blob_path(cid);
        match File::open(&path) {
            Ok(file) => {
                let len = file.metadata().map_err(io_at(&path))?.len();
                Ok(Some(BlobReader {
                    file,
                    hasher: Sha256::new(),
                    expected: *cid,
                    len,
                    done: false,
                }))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_at(&path)(e)),
        }
    }

    /// Bytes `offset..offset + len` of a blob (fewer at its end) and its full size, for a
    /// peer fetching it in chunks; `None` when absent. The peer verifies the whole.
    pub fn read_range(
        &self,
        cid: &Cid,
        offset: u64,
        len: u32,
    ) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        let path = self.blob_path(cid);
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_at(&path)(e)),
        };
        let total = file.metadata().map_err(io_at(&path))?.len();
        let mut data = Vec::new();
        if offset < total {
            file.seek(SeekFrom::Start(offset)).map_err(io_at(&path))?;
            file.take(u64::from(len))
                .read_to_end(&mut data)
                .map_err(io_at(&path))?;
        }
        Ok(Some((total, data)))
    }

    fn key_path(&self, cid: &Cid, reader: Address) -> PathBuf {
        self.root
            .join("keys")
            .join(cid.to_string())
            .join(format!("{reader:#x}"))
    }

    /// Stores the wrap of `cid`'s key for `reader`. The first wrap stays (a payload's key
    /// never changes, so a valid wrap never needs replacing); returns whether it was new.
    pub fn put_key(
        &self,
        cid: &Cid,
        reader: Address,
        key: &WrappedKey,
    ) -> Result<bool, StoreError> {
        let path = self.key_path(cid, reader);
        if path.is_file() {
            return Ok(false);
        }
        let dir = path.parent().expect("key paths have a parent");
        fs::create_dir_all(dir).map_err(io_at(dir))?;
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .root
            .join("tmp")
            .join(format!("key-{}-{n}", std::process::id()));
        let write = || -> io::Result<()> {
            let mut file = File::create(&tmp)?;
            file.write_all(&key.0)?;
            file.sync_all()?;
            fs::rename(&tmp, &path)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            io_at(&path)(e)
        })?;
        Ok(true)
    }

    /// The wrap of `cid`'s key for `reader`, if stored.
    pub fn key(&self, cid: &Cid, reader: Address) -> Result<Option<WrappedKey>, StoreError> {
        let path = self.key_path(cid, reader);
        match fs::read(&path) {
            Ok(bytes) => WrappedKey::from_slice(&bytes).map(Some).map_err(|_| {
                io_at(&path)(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "malformed key wrap",
                ))
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_at(&path)(e)),
        }
    }
}

/// An upload in progress: bytes go to a temporary file and are hashed as they come.
/// Dropped unfinished, it leaves nothing.
#[derive(Debug)]
pub struct BlobWriter {
    file: Option<File>,
    tmp: PathBuf,
    blobs: PathBuf,
    hasher: Sha256,
    len: u64,
    max: u64,
}

impl BlobWriter {
    /// Appends bytes; refuses once the total passes the limit.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.len += bytes.len() as u64;
        if self.len > self.max {
            return Err(StoreError::TooLarge { limit: self.max });
        }
        self.hasher.update(bytes);
        let file = self.file.as_mut().expect("open until finished");
        file.write_all(bytes).map_err(io_at(&self.tmp))
    }

    /// Bytes so far.
    pub const fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was written yet.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Checks the content against `expected` (when given), makes it durable and names it
    /// by its CID. Returns the CID and whether the blob is new to this store.
    pub fn finish(mut self, expected: Option<&Cid>) -> Result<(Cid, bool), StoreError> {
        let actual = Cid::from_sha256(B256::from_slice(&self.hasher.clone().finalize()));
        if let Some(expected) = expected
            && *expected != actual
        {
            return Err(StoreError::CidMismatch {
                expected: *expected,
                actual,
            });
        }
        let file = self.file.take().expect("open until finished");
        file.sync_all().map_err(io_at(&self.tmp))?;
        drop(file);
        let path = self.blobs.join(actual.to_string());
        if path.is_file() {
            return Ok((actual, false));
        }
        fs::rename(&self.tmp, &path).map_err(io_at(&path))?;
        if let Ok(dir) = File::open(&self.blobs) {
            let _ = dir.sync_all();
        }
        Ok((actual, true))
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        // After a successful rename the temporary name no longer exists.
        let _ = fs::remove_file(&self.tmp);
    }
}

/// Streams a stored blob, hashing as it goes; the read that reaches the end fails with
/// `InvalidData` if the bytes were not the CID's.
#[derive(Debug)]
pub struct BlobReader {
    file: File,
    hasher: Sha256,
    expected: Cid,
    len: u64,
    done: bool,
}

impl BlobReader {
    /// The blob's size.
    pub const fn len(&self) -> u64 {
        self.len
    }

    /// Whether the blob is empty.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        let n = self.file.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.done = true;
            let digest = B256::from_slice(&self.hasher.clone().finalize());
            if digest != self.expected.sha256() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("blob {} changed while it was read", self.expected),
                ));
            }
        }
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path, max: u64) -> BlobStore {
        BlobStore::open(dir, max).unwrap()
    }

    fn put(store: &BlobStore, bytes: &[u8]) -> Result<(Cid, bool), StoreError> {
        let mut writer = store.writer()?;
        for piece in bytes.chunks(1000) {
            writer.write(piece)?;
        }
        writer.finish(Some(&Cid::of(bytes)))
    }

    fn tmp_is_empty(dir: &Path) -> bool {
        fs::read_dir(dir.join("tmp")).unwrap().next().is_none()
    }

    #[test]
    fn stores_reads_and_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path(), 1 << 20);
        let bytes: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        let (cid, new) = put(&store, &bytes).unwrap();
        assert!(new);
        assert_eq!(put(&store, &bytes).unwrap(), (cid, false));
        assert_eq!(store.verify(&cid).unwrap(), Some(5000));
        let mut read = Vec::new();
        store
            .open_blob(&cid)
            .unwrap()
            .unwrap()
            .read_to_end(&mut read)
            .unwrap();
        assert_eq!(read, bytes);
        let (total, part) = store.read_range(&cid, 4990, 100).unwrap().unwrap();
        assert_eq!((total, part.as_slice()), (5000, &bytes[4990..]));
        assert!(
            store
                .read_range(&cid, 9000, 100)
                .unwrap()
                .unwrap()
                .1
                .is_empty()
        );
        let absent = Cid::of(b"absent");
        assert!(store.verify(&absent).unwrap().is_none());
        assert!(store.open_blob(&absent).unwrap().is_none());
        assert!(tmp_is_empty(dir.path()));
    }

    #[test]
    fn refused_uploads_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path(), 100);
        let err = put(&store, &[1u8; 101]).unwrap_err();
        assert!(matches!(err, StoreError::TooLarge { limit: 100 }), "{err}");
        let mut writer = store.writer().unwrap();
        writer.write(b"actual").unwrap();
        let err = writer.finish(Some(&Cid::of(b"claimed"))).unwrap_err();
        assert!(matches!(err, StoreError::CidMismatch { .. }), "{err}");
        assert!(
            fs::read_dir(dir.path().join("blobs"))
                .unwrap()
                .next()
                .is_none()
        );
        assert!(tmp_is_empty(dir.path()));
    }

    #[test]
    fn tampered_blobs_are_caught_and_quarantined() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path(), 1 << 20);
        let (cid, _) = put(&store, b"encrypted bytes").unwrap();
        // Altered after the stream was opened: the reader fails at its end.
        let mut reader = store.open_blob(&cid).unwrap().unwrap();
        fs::write(
            dir.path().join("blobs").join(cid.to_string()),
            b"encrypted bytez",
        )
        .unwrap();
        let mut sink = Vec::new();
        let err = reader.read_to_end(&mut sink).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let err = store.verify(&cid).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert!(!store.contains(&cid));
        assert_eq!(fs::read_dir(dir.path().join("corrupt")).unwrap().count(), 1);
    }

    #[test]
    fn key_wraps_first_write_wins() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path(), 100);
        let cid = Cid::of(b"x");
        let reader = Address::repeat_byte(7);
        let (a, b) = (WrappedKey([1; 81]), WrappedKey([2; 81]));
        assert!(store.key(&cid, reader).unwrap().is_none());
        assert!(store.put_key(&cid, reader, &a).unwrap());
        assert!(!store.put_key(&cid, reader, &b).unwrap());
        assert_eq!(store.key(&cid, reader).unwrap(), Some(a));
        assert!(tmp_is_empty(dir.path()));
    }
}
