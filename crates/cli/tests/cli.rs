//! The `healthchain` binary end to end: init, import, export, db stats, bad input, and
//! crash safety under `kill -9`.

use alloy_primitives::B256;
use alloy_rlp::Decodable;
use healthchain_primitives::Block;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_healthchain"));
    cmd.env("RUST_LOG", "info").env_remove("RUST_BACKTRACE");
    cmd
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("spawn healthchain")
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "healthchain {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Writes a fixture chain and returns (genesis path, blocks path).
fn testchain(dir: &Path, blocks: u64, txs: u64) -> (PathBuf, PathBuf) {
    let out = dir.join("chain");
    ok(&[
        "testchain",
        "--out",
        s(&out),
        "--blocks",
        &blocks.to_string(),
        "--txs",
        &txs.to_string(),
        "--senders",
        "32",
    ]);
    (out.join("genesis.json"), out.join("blocks.rlp"))
}

fn block_hashes(file: &Path) -> Vec<B256> {
    let bytes = std::fs::read(file).unwrap();
    let mut buf = bytes.as_slice();
    let mut hashes = Vec::new();
    while !buf.is_empty() {
        let header = Block::decode(&mut buf).unwrap().header;
        // Fixture chains are IBFT 2.0 chains: the block hash leaves out round and seals.
        hashes.push(healthchain_primitives::ibft::block_hash(&header).unwrap());
    }
    hashes
}

fn head(datadir: &Path) -> (u64, B256) {
    let stats = ok(&["db", "stats", "--datadir", s(datadir)]);
    let line = stats
        .lines()
        .find(|l| l.starts_with("head: "))
        .expect("head line");
    let mut parts = line.trim_start_matches("head: ").split_whitespace();
    let number = parts.next().unwrap().parse().unwrap();
    let hash = parts.next().unwrap().parse().unwrap();
    (number, hash)
}

#[test]
fn init_import_export_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (genesis, blocks) = testchain(dir.path(), 12, 20);
    let datadir = dir.path().join("data");
    let out = ok(&["init", "--genesis", s(&genesis), "--datadir", s(&datadir)]);
    assert!(
        out.contains("genesis hash: 0x") && out.contains("state root:   0x"),
        "{out}"
    );
    // init is idempotent for the same genesis.
    assert_eq!(
        ok(&["init", "--genesis", s(&genesis), "--datadir", s(&datadir)]),
        out
    );

    ok(&["import", s(&blocks), "--datadir", s(&datadir)]);
    let hashes = block_hashes(&blocks);
    assert_eq!(head(&datadir), (12, *hashes.last().unwrap()));
    // A second import skips every known block.
    assert!(ok(&["import", s(&blocks), "--datadir", s(&datadir)]).contains("imported 0 blocks"));

    let exported = dir.path().join("export.rlp");
    ok(&["export", s(&exported), "--datadir", s(&datadir)]);
    assert_eq!(
        std::fs::read(&exported).unwrap(),
        std::fs::read(&blocks).unwrap()
    );
    let stats = ok(&["db", "stats", "--datadir", s(&datadir)]);
    assert!(
        stats.contains("TrieNodes") || stats.contains("trie"),
        "{stats}"
    );
}

#[test]
fn malformed_genesis_is_rejected_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = dir.path().join("bad.json");
    std::fs::write(
        &genesis,
        r#"{"config":{"chainId":7},"gasLimit":"0xzz","difficulty":"0x1"}"#,
    )
    .unwrap();
    let datadir = dir.path().join("data");
    let out = run(&["init", "--genesis", s(&genesis), "--datadir", s(&datadir)]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`gasLimit`"), "{err}");
    assert!(
        !datadir.join("genesis.json").exists(),
        "a rejected genesis left files behind"
    );
}

#[test]
fn bad_block_files_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (genesis, blocks) = testchain(dir.path(), 4, 5);
    let datadir = dir.path().join("data");
    ok(&["init", "--genesis", s(&genesis), "--datadir", s(&datadir)]);
    let genesis_head = head(&datadir);
    let bytes = std::fs::read(&blocks).unwrap();

    // Truncated file: the complete blocks import, the partial one is reported.
    let truncated = dir.path().join("truncated.rlp");
    std::fs::write(&truncated, &bytes[..bytes.len() - 10]).unwrap();
    let out = run(&["import", s(&truncated), "--datadir", s(&datadir)]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("truncated"));
    assert_eq!(head(&datadir).0, 3);

    // A flipped byte inside block 4's body: rejected with a reason, head unchanged.
    let mut hashes = block_hashes(&blocks);
    let mut corrupt = bytes.clone();
    let last = corrupt.len() - 40;
    corrupt[last] ^= 0xff;
    let corrupt_path = dir.path().join("corrupt.rlp");
    std::fs::write(&corrupt_path, &corrupt).unwrap();
    let out = run(&["import", s(&corrupt_path), "--datadir", s(&datadir)]);
    assert!(!out.status.success(), "corrupt block accepted");
    assert_eq!(head(&datadir).0, 3);

    // Garbage: a clear error.
    let garbage = dir.path().join("garbage.rlp");
    std::fs::write(&garbage, b"this is not rlp").unwrap();
    let out = run(&["import", s(&garbage), "--datadir", s(&datadir)]);
    assert!(!out.status.success());
    assert_eq!(head(&datadir).0, 3);
    assert_ne!(head(&datadir), genesis_head);

    // The good file still completes the chain.
    ok(&["import", s(&blocks), "--datadir", s(&datadir)]);
    assert_eq!(head(&datadir), (4, hashes.pop().unwrap()));
}

#[test]
fn import_survives_kill_9_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let (genesis, blocks) = testchain(dir.path(), 300, 40);
    let hashes = block_hashes(&blocks);
    let datadir = dir.path().join("data");
    ok(&["init", "--genesis", s(&genesis), "--datadir", s(&datadir)]);

    // Kill the importer at several points; after each, the database must open at a block
    // of the chain no lower than the last one the importer reported as committed.
    for kill_after in [20u64, 90, 180] {
        let mut child = bin()
            .args([
                "import",
                s(&blocks),
                "--datadir",
                s(&datadir),
                "--log-every",
                "1",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let mut reported = 0u64;
        for line in stderr.lines() {
            let line = line.unwrap();
            if let Some(number) = line
                .split("number=")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
            {
                reported = number.parse().unwrap();
                if reported >= kill_after {
                    break;
                }
            }
        }
        assert!(
            reported >= kill_after,
            "import ended before block {kill_after}"
        );
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let (number, hash) = head(&datadir);
        assert!(
            number >= reported,
            "head {number} is behind the reported block {reported}"
        );
        assert_eq!(
            hash,
            hashes[number as usize - 1],
            "head {number} is not the chain's block"
        );
    }
    ok(&["import", s(&blocks), "--datadir", s(&datadir)]);
    assert_eq!(head(&datadir), (300, *hashes.last().unwrap()));
    let exported = dir.path().join("export.rlp");
    ok(&["export", s(&exported), "--datadir", s(&datadir)]);
    assert_eq!(
        std::fs::read(&exported).unwrap(),
        std::fs::read(&blocks).unwrap()
    );
}
