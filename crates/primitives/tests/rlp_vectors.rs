//! ethereum/tests `RLPTests`: encoding, strict decoding and round trips.

use alloy_primitives::{Bytes, U512};
use healthchain_primitives::RlpItem;
use healthchain_vectors::{hex, json};
use serde_json::Value;

/// The test's `in` value as an RLP item: strings are bytes, integers big-endian without
/// leading zeros, `#<decimal>` big integers, arrays lists.
fn item(value: &Value) -> RlpItem {
    match value {
        Value::String(s) => match s.strip_prefix('#') {
            Some(big) => {
                // One case is 2^256, so parse wider than U256.
                let n: U512 = big.parse().unwrap();
                RlpItem::Bytes(Bytes::from(n.to_be_bytes_trimmed_vec()))
            }
            None => RlpItem::Bytes(Bytes::copy_from_slice(s.as_bytes())),
        },
        Value::Number(n) => {
            let n = n.as_u64().unwrap();
            let bytes = n.to_be_bytes();
            let first = bytes.iter().position(|b| *b != 0).unwrap_or(8);
            RlpItem::Bytes(Bytes::copy_from_slice(&bytes[first..]))
        }
        Value::Array(items) => RlpItem::List(items.iter().map(item).collect()),
        other => panic!("unexpected RLP test input {other}"),
    }
}

#[test]
fn rlptest_encodes_and_decodes_every_case() {
    let cases = json("ethereum-tests/RLPTests/rlptest.json");
    let cases = cases.as_object().unwrap();
    assert!(!cases.is_empty());
    for (name, case) in cases {
        let expected = hex(case["out"].as_str().unwrap());
        let value = item(&case["in"]);
        assert_eq!(alloy_rlp::encode(&value), expected, "{name}: encoding");
        assert_eq!(
            RlpItem::decode_exact(&expected).unwrap(),
            value,
            "{name}: decoding"
        );
    }
}

#[test]
fn invalid_rlp_is_rejected_by_strict_decoding() {
    let cases = json("ethereum-tests/RLPTests/invalidRLPTest.json");
    let cases = cases.as_object().unwrap();
    assert!(cases.len() >= 20);
    for (name, case) in cases {
        let bytes = hex(case["out"].as_str().unwrap());
        let decoded = RlpItem::decode_exact(&bytes);
        assert!(decoded.is_err(), "{name}: decoded {decoded:?}");
    }
}

#[test]
fn random_valid_rlp_round_trips() {
    let cases = json("ethereum-tests/RLPTests/RandomRLPTests/example.json");
    for (name, case) in cases.as_object().unwrap() {
        let bytes = hex(case["out"].as_str().unwrap());
        let decoded = RlpItem::decode_exact(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(alloy_rlp::encode(&decoded), bytes, "{name}: round trip");
    }
}
