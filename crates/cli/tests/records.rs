//! Encrypted records across real `healthchain node` processes on 127.0.0.1: a doctor with
//! consent writes a prescription with `healthchain records put` (encrypted on the client,
//! uploaded to node 0, referenced on chain) and reads it back through other nodes; a
//! doctor without consent is refused; a node started after the upload serves it after
//! fetching it from its peers; a tampered copy is caught and replaced; the patient grants
//! a second doctor and wraps the key for them (no re-upload), then revokes and that doctor
//! is refused; no plaintext is in any node's files; the audit logs verify and record the
//! serves and refusals.

mod common;
use common::net::MINUTE;
use common::records::{MARKER, Scenario, contains, files, pubkey};

#[test]
fn records_are_encrypted_replicated_and_served_only_to_permitted_readers() {
    let mut s = Scenario::start(250);

    // The doctor writes a prescription through node 0, sharing the key with the patient.
    let plain: Vec<u8> = (0..3000)
        .flat_map(|i| format!("{MARKER} line {i}\n").into_bytes())
        .collect();
    std::fs::write(s.work.path().join("rx.txt"), &plain).unwrap();
    let (record, cid) = s.put(0, "rx.txt");
    assert!(cid.starts_with("bafkrei"), "{cid}");
    assert!(s.blob_file(0, &cid).is_file());

    // Through node 1 (replicated by announcement or fetched on demand) it decrypts.
    assert!(s.get(1, "doctor", &record, "got1.txt") == plain);
    // A registered doctor without the patient's consent is refused.
    let err = s.refused(0, "other-doctor", &record, "nope.txt");
    assert!(err.contains("may not read"), "{err}");

    // Node 3 starts after the upload and never saw its announcement: it syncs the chain,
    // then serves the record after fetching the blob and the key wrap from its peers.
    assert!(!s.blob_file(3, &cid).exists());
    s.net.start(3);
    let head = s.net.head(0).unwrap();
    s.net.wait_head(&[3], head, MINUTE);
    assert!(s.get(3, "doctor", &record, "got3.txt") == plain);
    assert!(s.blob_file(3, &cid).is_file());
    // The patient reads their own record.
    assert!(s.get(2, "patient", &record, "mine.txt") == plain);

    // A tampered copy on node 1 is caught on read, quarantined and replaced from a peer.
    let path = s.blob_file(1, &cid);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[100] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    assert!(s.get(1, "patient", &record, "again.txt") == plain);
    let corrupt = s.net.nodes[1].dir.join("data/blobs/corrupt");
    assert_eq!(std::fs::read_dir(&corrupt).unwrap().count(), 1);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        std::fs::read(s.blob_file(0, &cid)).unwrap()
    );

    // Doctor 2 is granted access: the patient wraps the key for them through node 2 (no
    // re-upload), and they read it through node 1. Then the patient revokes: refused.
    s.health(
        "patient",
        &[
            "grant",
            "--grantee",
            &s.at(4),
            "--kinds",
            "prescription",
            "--valid-for",
            "1d",
        ],
    );
    let share = s.records(
        2,
        "patient",
        &[
            "share",
            "--record",
            &record,
            "--reader-pubkey",
            &pubkey(&s.keys.accounts[4].private_key),
        ],
    );
    assert!(
        share.status.success(),
        "{}",
        String::from_utf8_lossy(&share.stderr)
    );
    assert!(s.get(1, "other-doctor", &record, "granted.txt") == plain);
    s.health(
        "patient",
        &["revoke", "--grantee", &s.at(4), "--kinds", "all"],
    );
    let err = s.refused(1, "other-doctor", &record, "late.txt");
    assert!(err.contains("may not read"), "{err}");

    // No plaintext in chain data, blob stores or logs of any node.
    for node in &s.net.nodes {
        for file in files(&node.dir) {
            let content = std::fs::read(&file).unwrap_or_default();
            assert!(
                !contains(&content, MARKER.as_bytes()),
                "plaintext in {}",
                file.display()
            );
        }
    }

    // The audit log of node 0 verifies and holds the upload, share, serves and refusals.
    let log = s.net.nodes[0].dir.join("data/blobs/audit.log");
    let entries = healthchain_blobs::audit::verify(&log).unwrap();
    use healthchain_blobs::AuditAction as A;
    let doctor: alloy_primitives::Address = s.at(2).parse().unwrap();
    let other: alloy_primitives::Address = s.at(4).parse().unwrap();
    let has = |action, actor| {
        entries
            .iter()
            .any(|e| e.action == action && e.actor == Some(actor))
    };
    assert!(has(A::Upload, doctor));
    assert!(has(A::Share, doctor));
    assert!(has(A::Refuse, other));
    // Node 1 served doctor 2 once granted, and refused them after the revoke.
    let log = s.net.nodes[1].dir.join("data/blobs/audit.log");
    let of_other: Vec<_> = healthchain_blobs::audit::verify(&log)
        .unwrap()
        .into_iter()
        .filter(|e| e.actor == Some(other))
        .map(|e| e.action)
        .collect();
    assert_eq!(of_other, [A::Serve, A::Refuse]);
}
