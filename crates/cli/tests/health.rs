//! The operator workflows of `healthchain deploy` and `healthchain health` against a live
//! `healthchain dev` network, as a hospital operator types them: register, consent, records,
//! history and the audit trail, with refusals decoded.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::operator::Operator;
use common::{block_number, dev_command, free_port};

/// A dev network that is killed when the test ends, however it ends.
struct Dev(Child);

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_dev(datadir: &Path) -> (Dev, u16) {
    let (http, ws) = (free_port(), free_port());
    let child = dev_command(datadir, http, ws)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let dev = Dev(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    while block_number(http).is_none_or(|n| n < 1) {
        assert!(Instant::now() < deadline, "the dev network sealed no block");
        std::thread::sleep(Duration::from_millis(100));
    }
    (dev, http)
}

#[test]
fn operator_registers_grants_writes_corrects_revokes_and_audits() {
    let dir = tempfile::tempdir().unwrap();
    let (_dev, http) = start_dev(&dir.path().join("chain"));
    let keys = healthchain_cli::dev_keys().unwrap();
    let names = ["admin", "hospital", "doctor", "patient"];
    let mut address = std::collections::HashMap::new();
    for (name, key) in names.iter().zip(&keys.accounts) {
        std::fs::write(dir.path().join(format!("{name}.key")), &key.private_key).unwrap();
        address.insert(*name, key.address.to_string());
    }
    let at = |name: &str| address[name].as_str();
    let op = Operator {
        rpc: format!("http://127.0.0.1:{http}"),
        dir: dir.path().to_path_buf(),
    };

    // Deploy on a chain whose genesis has the contracts: recorded, nothing sent; again: same.
    let out = op.ok(Some("admin"), &["deploy"]);
    assert!(out.contains("in genesis"), "{out}");
    let record = dir.path().join("contracts/deployments/1337.json");
    let first = std::fs::read_to_string(&record).unwrap();
    assert!(
        first.contains("0x0000000000000000000000000000000000001001"),
        "{first}"
    );
    op.ok(Some("admin"), &["deploy"]);
    assert_eq!(std::fs::read_to_string(&record).unwrap(), first);

    // Registrations: the admin a hospital, the hospital a doctor (from an identity file) and
    // a patient. A doctor cannot register a hospital.
    let reference = format!("0x{}", "ab".repeat(32));
    op.ok(
        Some("admin"),
        &[
            "health",
            "register",
            "--role",
            "hospital",
            at("hospital"),
            "--ref",
            &reference,
        ],
    );
    std::fs::write(
        dir.path().join("doctor.id.enc"),
        b"\x01ciphertext of an identity",
    )
    .unwrap();
    op.ok(
        Some("hospital"),
        &[
            "health",
            "register",
            "--role",
            "doctor",
            at("doctor"),
            "--identity-file",
            "doctor.id.enc",
        ],
    );
    op.ok(
        Some("hospital"),
        &[
            "health",
            "register",
            "--role",
            "patient",
            at("patient"),
            "--ref",
            &reference,
        ],
    );
    let err = op.refused(
        Some("doctor"),
        &[
            "health",
            "register",
            "--role",
            "hospital",
            at("doctor"),
            "--ref",
            &reference,
        ],
    );
    assert!(err.contains("CallerNotRole"), "{err}");
    let whois = op.ok(None, &["health", "whois", at("doctor")]);
    assert!(whois.contains("doctor"), "{whois}");
    assert!(whois.contains(at("hospital")), "{whois}");

    // No consent: refused with the contract's reason. Grant: written. Correct it.
    std::fs::write(dir.path().join("dx.enc"), b"\x02encrypted diagnosis").unwrap();
    std::fs::write(dir.path().join("dx2.enc"), b"\x03encrypted correction").unwrap();
    let write = |file: &str, supersedes: Option<&str>| {
        let mut args = vec![
            "health",
            "add-record",
            "--patient",
            at("patient"),
            "--kind",
            "diagnosis",
            "--payload",
            file,
        ];
        if let Some(id) = supersedes {
            args.extend(["--supersedes", id]);
        }
        op.run(Some("doctor"), &args)
    };
    let refused = write("dx.enc", None);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("NoConsent"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    op.ok(
        Some("patient"),
        &[
            "health",
            "grant",
            "--grantee",
            at("doctor"),
            "--kinds",
            "diagnosis,prescription",
            "--valid-for",
            "30d",
        ],
    );
    let first_write = write("dx.enc", None);
    let text = String::from_utf8_lossy(&first_write.stdout);
    assert!(first_write.status.success(), "{text}");
    assert!(text.contains("record #1"), "{text}");
    assert!(write("dx2.enc", Some("1")).status.success());
    let history = op.ok(None, &["health", "history", "--patient", at("patient")]);
    assert!(history.contains("2 record(s)"), "{history}");
    assert!(history.contains("#1 diagnosis"), "{history}");
    assert!(history.contains("superseded by #2"), "{history}");
    assert!(history.contains("corrects #1"), "{history}");

    // Revoke: the doctor is refused again.
    op.ok(
        Some("patient"),
        &[
            "health",
            "revoke",
            "--grantee",
            at("doctor"),
            "--kinds",
            "all",
        ],
    );
    let after = write("dx.enc", None);
    assert!(!after.status.success());
    assert!(String::from_utf8_lossy(&after.stderr).contains("NoConsent"));

    // The audit trail, from logs alone: every action above, in order, nothing refused.
    let audit = op.ok(None, &["health", "audit", "--json"]);
    let events: Vec<String> = audit
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            value["event"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        events,
        [
            "Registered",
            "Registered",
            "Registered",
            "ConsentGranted",
            "RecordAdded",
            "RecordAdded",
            "ConsentRevoked"
        ],
        "{audit}"
    );
    let mine = op.ok(None, &["health", "audit", "--account", at("doctor")]);
    // Text: the doctor's registration, grant, two records and the revoke, then a summary.
    assert_eq!(mine.lines().count(), 6, "{mine}");
    assert!(mine.contains("5 audit entries"), "{mine}");
}
