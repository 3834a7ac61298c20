//! Our CIDs against Debian's `ipfs_cid` (package `ipfs-cid`, installed by `scripts/test`):
//! for the same bytes, [`unixfs_cid`] is the `CIDv1` it prints, at every chunk boundary and
//! past the 174-link fan-out; and the raw [`Cid`] is its digest as a raw-codec CID.
//! `IPFS_CID` names another binary.

use std::process::Command;

use healthchain_blobs::{Cid, unixfs_cid};

fn ipfs_cid(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    std::fs::write(&path, bytes).unwrap();
    let program = std::env::var("IPFS_CID").unwrap_or_else(|_| "ipfs_cid".into());
    let out = Command::new(&program).arg(&path).output().unwrap_or_else(|e| {
        panic!("cannot run {program} ({e}): install the Debian package ipfs-cid (scripts/test does)")
    });
    assert!(out.status.success(), "{program} failed: {out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json["CIDv1"].as_str().unwrap().to_string()
}

#[test]
fn unixfs_cids_are_what_ipfs_cid_prints() {
    const CHUNK: usize = 256 * 1024;
    for len in [
        0,
        1,
        5,
        CHUNK - 1,
        CHUNK,
        CHUNK + 1,
        3 * CHUNK + 17,
        174 * CHUNK + 1,
    ] {
        let bytes: Vec<u8> = (0..len)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        assert_eq!(unixfs_cid(&bytes), ipfs_cid(&bytes), "{len} bytes");
    }
}

#[test]
fn the_raw_cid_is_the_sha256_as_ipfs_names_a_raw_block() {
    // `ipfs block put --cid-codec raw --mhtype sha2-256` of "hello".
    let cid = Cid::of(b"hello");
    assert_eq!(
        cid.to_string(),
        "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"
    );
    assert_eq!(
        cid.sha256().to_string(),
        "0x2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    );
}
