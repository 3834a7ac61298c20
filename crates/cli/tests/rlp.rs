//! `healthchain rlp encode|decode` against Besu's own `besu rlp` test vectors.

use std::io::Write;
use std::process::{Command, Stdio};

use healthchain_vectors::json;

fn healthchain(args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_healthchain"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn healthchain");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn rlp_encode_matches_besu_for_ibft_and_qbft() {
    let v = json("ibft2/besu_asserted/rlp_subcommand_test.json");
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("validators.json");
    std::fs::write(
        &input,
        v["ibft_genesis_extradata"]["input_json"].to_string(),
    )
    .unwrap();
    let from = input.to_str().unwrap();

    // Default type is IBFT_EXTRA_DATA; the order given is kept.
    let (ok, out, err) = healthchain(&["rlp", "encode", "--from", from], "");
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        v["ibft_genesis_extradata"]["hex"].as_str().unwrap()
    );
    let (ok, out, _) = healthchain(
        &["rlp", "encode", "--from", from, "--type", "IBFT_EXTRA_DATA"],
        "",
    );
    assert!(ok);
    assert_eq!(
        out.trim(),
        v["ibft_genesis_extradata"]["hex"].as_str().unwrap()
    );
    let (ok, out, _) = healthchain(
        &["rlp", "encode", "--from", from, "--type", "QBFT_EXTRA_DATA"],
        "",
    );
    assert!(ok);
    assert_eq!(
        out.trim(),
        v["qbft_genesis_extradata_for_contrast"]["hex"]
            .as_str()
            .unwrap()
    );

    // Standard input and --to work as in Besu.
    let to = dir.path().join("extra.hex");
    let (ok, out, _) = healthchain(
        &["rlp", "encode", "--to", to.to_str().unwrap()],
        &v["ibft_genesis_extradata"]["input_json"].to_string(),
    );
    assert!(ok);
    assert!(out.is_empty());
    assert_eq!(
        std::fs::read_to_string(&to).unwrap().trim(),
        v["ibft_genesis_extradata"]["hex"].as_str().unwrap()
    );
}

#[test]
fn rlp_decode_prints_the_validators() {
    let v = json("ibft2/besu_asserted/rlp_subcommand_test.json");
    let (ok, out, err) = healthchain(
        &["rlp", "decode"],
        v["ibft_genesis_extradata"]["hex"].as_str().unwrap(),
    );
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        v["ibft_genesis_extradata"]["decode_output_contains"]
            .as_str()
            .unwrap()
    );
    let qbft = &v["qbft_decode_case"];
    let (ok, out, err) = healthchain(
        &["rlp", "decode", "--type", "QBFT_EXTRA_DATA"],
        qbft["hex"].as_str().unwrap(),
    );
    assert!(ok, "{err}");
    let expected: Vec<&str> = qbft["validators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(out.trim(), format!("[{}]", expected.join(", ")));
}

#[test]
fn rlp_bad_input_is_a_clear_error() {
    for (args, input, needle) in [
        (&["rlp", "encode"][..], "not json", "not JSON"),
        (&["rlp", "encode"][..], "{\"a\": 1}", "JSON list"),
        (
            &["rlp", "encode"][..],
            "[\"0x1234\"]",
            "not a 20-byte address",
        ),
        (
            &["rlp", "encode"][..],
            "[\"zz5ff6f4b66a46a2b2310a6f3a93aaddc0d9a1c1\"]",
            "not a hex address",
        ),
        (&["rlp", "decode"][..], "0xzz", "not hex"),
        (&["rlp", "decode"][..], "0xc0", "not IBFT 2.0 extraData"),
        (
            &["rlp", "encode", "--type", "CLIQUE"][..],
            "[]",
            "invalid value",
        ),
    ] {
        let (ok, out, err) = healthchain(args, input);
        assert!(!ok, "{args:?} {input:?} succeeded: {out}");
        assert!(err.contains(needle), "{args:?} {input:?}: {err}");
    }
}
