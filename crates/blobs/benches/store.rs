//! Files or MDBX for the blob store: the time to store a blob durably and to read it back
//! with its integrity check, for a 200 KB and a 20 MB blob. Files: [`BlobStore`] as the
//! node uses it (hashing writer, fsync, rename; verify, then a hashing stream). MDBX: one
//! durable write transaction per blob in an environment set up like the chain database's,
//! then a read transaction whose value is copied out and hashed.
//!
//! Run: `cargo bench -p healthchain-blobs --bench store` (env `RUNS`, default 10; medians).

use std::io::Read;
use std::time::{Duration, Instant};

use healthchain_blobs::{BlobStore, Cid};
use sha2::{Digest, Sha256};
use signet_libmdbx::{
    DatabaseFlags, Environment, EnvironmentFlags, Geometry, Mode, SyncMode, WriteFlags,
};

fn median(mut times: Vec<Duration>) -> f64 {
    times.sort();
    times[times.len() / 2].as_secs_f64() * 1e3
}

fn payload(size: usize, seed: u64) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ seed;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn main() {
    let runs: u64 = std::env::var("RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let dir = tempfile::tempdir().unwrap();
    let files = BlobStore::open(dir.path().join("files"), 1 << 30).unwrap();
    let mut builder = Environment::builder();
    builder
        .set_max_dbs(1)
        .set_geometry(Geometry {
            size: Some(0..(64usize << 30)),
            growth_step: Some(256 << 20),
            ..Default::default()
        })
        .set_flags(EnvironmentFlags {
            mode: Mode::ReadWrite {
                sync_mode: SyncMode::Durable,
            },
            ..Default::default()
        });
    let env = builder.open(&dir.path().join("mdbx")).unwrap();
    let db = {
        let tx = env.begin_rw_unsync().unwrap();
        let db = tx.create_db(Some("blobs"), DatabaseFlags::empty()).unwrap();
        tx.commit().unwrap();
        db
    };
    println!("| blob | files: store | files: verified read | MDBX: store | MDBX: verified read |");
    println!("|---|---|---|---|---|");
    for (label, size) in [("200 KB", 200_000usize), ("20 MB", 20_000_000)] {
        let mut t: [Vec<Duration>; 4] = Default::default();
        for run in 0..runs {
            let bytes = payload(size, run ^ size as u64);
            let cid = Cid::of(&bytes);

            let start = Instant::now();
            let mut writer = files.writer().unwrap();
            for piece in bytes.chunks(256 * 1024) {
                writer.write(piece).unwrap();
            }
            writer.finish(Some(&cid)).unwrap();
            t[0].push(start.elapsed());
            let start = Instant::now();
            files.verify(&cid).unwrap().unwrap();
            let mut sink = Vec::with_capacity(size);
            files
                .open_blob(&cid)
                .unwrap()
                .unwrap()
                .read_to_end(&mut sink)
                .unwrap();
            t[1].push(start.elapsed());
            assert_eq!(sink.len(), size);

            let start = Instant::now();
            // Hashed on the way in, as the files path does.
            let key = Sha256::digest(&bytes);
            let tx = env.begin_rw_unsync().unwrap();
            tx.put(db, key, &bytes, WriteFlags::empty()).unwrap();
            tx.commit().unwrap();
            t[2].push(start.elapsed());
            let start = Instant::now();
            let tx = env.begin_ro_unsync().unwrap();
            let value: std::borrow::Cow<'_, [u8]> = tx.get(db.dbi(), &key).unwrap().unwrap();
            let copy = value.to_vec();
            assert_eq!(Sha256::digest(&copy), key);
            t[3].push(start.elapsed());
        }
        let cells: Vec<String> = t
            .into_iter()
            .map(|c| format!("{:.2} ms", median(c)))
            .collect();
        println!("| {label} | {} |", cells.join(" | "));
    }
}
