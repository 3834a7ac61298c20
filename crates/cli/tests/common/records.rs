//! A health network of real node processes for the records test and benchmark: three
//! validators and a follower (not started), the health contracts in genesis, a hospital,
//! two doctors and a patient registered, and the patient's consent for doctor 1.
#![allow(dead_code)] // each test binary uses part of it

use std::path::{Path, PathBuf};

use k256::elliptic_curve::sec1::ToEncodedPoint;

use super::net::{MINUTE, Net};
use super::operator::Operator;

pub(crate) const REGISTRY: &str = "0x0000000000000000000000000000000000001001";
pub(crate) const RECORDS: &str = "0x0000000000000000000000000000000000001002";
/// A line of "patient data" that must never appear in a node's files.
pub(crate) const MARKER: &str = "PLAINTEXT-MARKER-7f3a amoxicillin 500 mg three times daily";

pub(crate) fn pubkey(private_key: &str) -> String {
    let bytes = alloy_primitives::hex::decode(private_key.trim()).unwrap();
    let secret = k256::SecretKey::from_slice(&bytes).unwrap();
    alloy_primitives::hex::encode(&secret.public_key().to_encoded_point(false).as_bytes()[1..])
}

/// Every regular file under `dir`.
pub(crate) fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

pub(crate) struct Scenario {
    pub(crate) net: Net,
    pub(crate) work: tempfile::TempDir,
    pub(crate) keys: healthchain_cli::DevKeys,
}

impl Scenario {
    pub(crate) fn op(&self, node: usize) -> Operator {
        Operator {
            rpc: format!("http://127.0.0.1:{}", self.net.nodes[node].rpc),
            dir: self.work.path().to_path_buf(),
        }
    }

    pub(crate) fn health(&self, key: &str, args: &[&str]) -> String {
        let mut all = vec!["health", "--registry", REGISTRY, "--records", RECORDS];
        all.extend_from_slice(args);
        self.op(0).ok(Some(key), &all)
    }

    pub(crate) fn records(&self, node: usize, key: &str, args: &[&str]) -> std::process::Output {
        let url = format!("http://127.0.0.1:{}", self.net.nodes[node].blobs);
        let mut all = vec![
            "records",
            "--blobs-url",
            &url,
            "--registry",
            REGISTRY,
            "--records",
            RECORDS,
        ];
        all.extend_from_slice(args);
        self.op(node).run(Some(key), &all)
    }

    /// `records get` of `record` through `node` as `key`: the decrypted bytes (a failure
    /// panics with the command's output, never the plaintext).
    pub(crate) fn get(&self, node: usize, key: &str, record: &str, out: &str) -> Vec<u8> {
        let result = self.records(node, key, &["get", "--record", record, "--out", out]);
        assert!(
            result.status.success(),
            "get of #{record} by {key} through node {node} failed: {}\n{}",
            String::from_utf8_lossy(&result.stderr),
            self.net.logs()
        );
        std::fs::read(self.work.path().join(out)).unwrap()
    }

    /// `records get` that must be refused: its error output. Nothing is written.
    pub(crate) fn refused(&self, node: usize, key: &str, record: &str, out: &str) -> String {
        let result = self.records(node, key, &["get", "--record", record, "--out", out]);
        assert!(
            !result.status.success(),
            "get of #{record} by {key} through node {node} was served: {}\naudit log:\n{}",
            String::from_utf8_lossy(&result.stdout),
            std::fs::read_to_string(self.net.nodes[node].dir.join("data/blobs/audit.log"))
                .unwrap_or_default()
        );
        assert!(!self.work.path().join(out).exists());
        String::from_utf8_lossy(&result.stderr).into_owned()
    }

    pub(crate) fn blob_file(&self, node: usize, cid: &str) -> PathBuf {
        self.net.nodes[node].dir.join("data/blobs/blobs").join(cid)
    }
}

/// The dev accounts' roles in the scenario.
pub(crate) const NAMES: [&str; 5] = ["admin", "hospital", "doctor", "patient", "other-doctor"];

impl Scenario {
    /// Starts validators 0–2, registers the parties and grants doctor 1 prescriptions.
    pub(crate) fn start(block_period_ms: u64) -> Self {
        let keys = healthchain_cli::dev_keys().unwrap();
        let admin = keys.accounts[0].address.to_string();
        let mut net = Net::generate(3, 1, block_period_ms, &["--health-admin", &admin], None);
        for i in 0..3 {
            net.start(i);
        }
        net.wait_head(&[0, 1, 2], 1, MINUTE);
        let s = Self {
            net,
            work: tempfile::tempdir().unwrap(),
            keys,
        };
        for (name, key) in NAMES.iter().zip(&s.keys.accounts) {
            std::fs::write(s.work.path().join(format!("{name}.key")), &key.private_key).unwrap();
        }
        let reference = format!("0x{}", "ab".repeat(32));
        s.health(
            "admin",
            &[
                "register",
                "--role",
                "hospital",
                &s.at(1),
                "--ref",
                &reference,
            ],
        );
        for (role, i) in [("doctor", 2), ("patient", 3), ("doctor", 4)] {
            s.health(
                "hospital",
                &["register", "--role", role, &s.at(i), "--ref", &reference],
            );
        }
        s.health(
            "patient",
            &[
                "grant",
                "--grantee",
                &s.at(2),
                "--kinds",
                "prescription",
                "--valid-for",
                "30d",
            ],
        );
        s
    }

    /// Dev account `i`'s address.
    pub(crate) fn at(&self, i: usize) -> String {
        self.keys.accounts[i].address.to_string()
    }

    /// The doctor puts `file` (in the work dir) as a prescription of the patient, shared
    /// with the patient, through `node`: the record id and CID.
    pub(crate) fn put(&self, node: usize, file: &str) -> (String, String) {
        let patient_key = pubkey(&self.keys.accounts[3].private_key);
        let patient = self.at(3);
        let put = self.records(
            node,
            "doctor",
            &[
                "put",
                "--patient",
                &patient,
                "--kind",
                "prescription",
                "--file",
                file,
                "--share",
                &patient_key,
            ],
        );
        let text = String::from_utf8_lossy(&put.stdout).into_owned();
        assert!(
            put.status.success(),
            "put failed: {text}{}\n{}",
            String::from_utf8_lossy(&put.stderr),
            self.net.logs()
        );
        let record = text
            .split("record #")
            .nth(1)
            .and_then(|t| t.split(':').next())
            .expect("a record id")
            .to_string();
        let cid = text
            .split("cid ")
            .nth(1)
            .and_then(|t| t.split(',').next())
            .expect("a cid")
            .to_string();
        (record, cid)
    }
}
