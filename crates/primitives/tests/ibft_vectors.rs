//! IBFT 2.0 extraData and header-hashing vectors from `shared/vectors/ibft2` and
//! `shared/vectors/ibft2-expected.json`, reproduced byte for byte.

use alloy_primitives::{Address, B256, Bloom, Bytes, U256, keccak256};
use alloy_rlp::{Decodable, Encodable};
use healthchain_primitives::{
    Header,
    ibft::{
        ExtraDataEncoding, IBFT_MIX_HASH, IbftCodecError, IbftExtraData, Signature65, Vote,
        VoteKind, block_hash, commit_seal_digest, committers, qbft_genesis_extra_data,
    },
};
use healthchain_vectors::{hex, json};
use serde_json::Value;

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("vector field {key:?} missing"))
}

fn addr(s: &str) -> Address {
    let s = s.strip_prefix("0x").unwrap_or(s);
    s.parse().unwrap_or_else(|e| panic!("bad address {s}: {e}"))
}

fn unit_test_extra() -> IbftExtraData {
    let seal = |r: u64, s: u64| {
        Signature65::new(alloy_primitives::Signature::new(
            U256::from(r),
            U256::from(s),
            false,
        ))
    };
    IbftExtraData {
        vanity: Bytes::from((1u8..=32).collect::<Vec<_>>()),
        validators: vec![Address::with_last_byte(1), Address::with_last_byte(2)],
        vote: Some(Vote {
            recipient: Address::with_last_byte(1),
            kind: VoteKind::Add,
        }),
        round: 0x00fe_dcba,
        seals: vec![seal(1, 10), seal(10, 1)],
    }
}

#[test]
fn besu_extradata_encoder_test_round_trips() {
    let v = json("ibft2/besu_asserted/ibft_extradata_rlp_encoder_test.json");
    let raw = hex(s(&v, "hex"));
    let expected = unit_test_extra();
    assert_eq!(expected.encode().as_ref(), raw.as_slice(), "encode");
    assert_eq!(IbftExtraData::decode(&raw).expect("decode"), expected);
    for (i, seal) in v["decoded"]["seals"].as_array().unwrap().iter().enumerate() {
        assert_eq!(
            expected.seals[i].to_bytes().as_slice(),
            hex(s(seal, "encoded65")).as_slice()
        );
    }
}

#[test]
fn besu_extradata_negative_cases_are_errors() {
    let v = json("ibft2/besu_asserted/ibft_extradata_rlp_encoder_test.json");
    let raw_hex = s(&v, "hex").trim_start_matches("0x").to_string();
    let case = |from: &str, to: &str| {
        assert!(raw_hex.contains(from), "{from} not in the vector");
        hex(&raw_hex.replacen(from, to, 1))
    };
    // A 3-byte round (and the outer length shortened by one to stay well-formed).
    let bad_round = case("8400fedcba", "83fedcba");
    let bad_round = hex(&alloy_primitives::hex::encode(&bad_round).replacen("f8f1", "f8f0", 1));
    assert_eq!(
        IbftExtraData::decode(&bad_round),
        Err(IbftCodecError::Round)
    );
    // An extra trailing element after the seals list.
    let mut trailing = hex(&raw_hex);
    trailing.push(0x80);
    let trailing = hex(&alloy_primitives::hex::encode(&trailing).replacen("f8f1", "f8f2", 1));
    assert_eq!(
        IbftExtraData::decode(&trailing),
        Err(IbftCodecError::Structure)
    );
    // Vote type byte 0xAA.
    let bad_vote = case("81ff8400fedcba", "81aa8400fedcba");
    assert_eq!(IbftExtraData::decode(&bad_vote), Err(IbftCodecError::Vote));
    // Empty extraData.
    assert_eq!(IbftExtraData::decode(&[]), Err(IbftCodecError::Empty));
    // Trailing bytes after the top-level list.
    let mut after = hex(&raw_hex);
    after.push(0x00);
    assert!(IbftExtraData::decode(&after).is_err());
    // Truncated input never panics.
    let full = hex(&raw_hex);
    for len in 0..full.len() {
        assert!(IbftExtraData::decode(&full[..len]).is_err(), "prefix {len}");
    }
}

#[test]
fn null_vote_and_drop_vote_decode() {
    let v = json("ibft2/derived/extradata_encoding_variants.json");
    let drop = hex(s(
        &v,
        "same as RAW_HEX but vote = DROP 0x..01 (vote byte 0x00)",
    ));
    let mut expected = unit_test_extra();
    expected.vote = Some(Vote {
        recipient: Address::with_last_byte(1),
        kind: VoteKind::Drop,
    });
    assert_eq!(IbftExtraData::decode(&drop).expect("drop vote"), expected);
    assert_eq!(expected.encode().as_ref(), drop.as_slice());
    expected.vote = None;
    let round_trip = IbftExtraData::decode(&expected.encode()).expect("no vote");
    assert_eq!(round_trip.vote, None);
}

#[test]
fn hashing_encodings_match_the_derived_variants() {
    let v = json("ibft2/derived/extradata_encoding_variants.json");
    let extra = unit_test_extra();
    assert_eq!(
        extra
            .encode_as(ExtraDataEncoding::ExcludeCommitSeals)
            .as_ref(),
        hex(s(
            &v,
            "encodeWithoutCommitSeals (4 elements; hashed for commit seals)"
        ))
        .as_slice()
    );
    assert_eq!(
        extra
            .encode_as(ExtraDataEncoding::ExcludeCommitSealsAndRound)
            .as_ref(),
        hex(s(
            &v,
            "encodeWithoutCommitSealsAndRoundNumber (3 elements; hashed for the on-chain block hash)"
        ))
        .as_slice()
    );
}

#[test]
fn genesis_extradata_of_cli_and_docs_vectors() {
    let rlp = json("ibft2/besu_asserted/rlp_subcommand_test.json");
    let ibft = &rlp["ibft_genesis_extradata"];
    let validators: Vec<Address> = ibft["input_json"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| addr(a.as_str().unwrap()))
        .collect();
    // Order kept, not sorted.
    assert!(validators[0] > validators[1]);
    assert_eq!(
        IbftExtraData::genesis(validators.clone()).encode().as_ref(),
        hex(s(ibft, "hex")).as_slice()
    );
    let qbft = &rlp["qbft_genesis_extradata_for_contrast"];
    assert_eq!(
        qbft_genesis_extra_data(&validators).as_ref(),
        hex(s(qbft, "hex")).as_slice()
    );
    // A QBFT extraData is not IBFT 2.0 extraData (empty-list vote, minimal round).
    assert!(IbftExtraData::decode(&hex(s(qbft, "hex"))).is_err());

    let operator = json("ibft2/besu_asserted/operator_subcommand_test.json");
    let keys = operator["public_keys_uncompressed_64_bytes"]
        .as_array()
        .unwrap();
    let addresses: Vec<Address> = keys
        .iter()
        .map(|k| Address::from_slice(&keccak256(hex(k.as_str().unwrap()))[12..]))
        .collect();
    let listed: Vec<Address> = operator["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| addr(a.as_str().unwrap()))
        .collect();
    assert_eq!(addresses, listed);
    assert_eq!(
        IbftExtraData::genesis(addresses.clone()).encode().as_ref(),
        hex(s(&operator, "ibft2_extradata")).as_slice()
    );
    assert_eq!(
        qbft_genesis_extra_data(&addresses).as_ref(),
        hex(s(&operator, "qbft_extradata")).as_slice()
    );

    let docs = json("ibft2/besu_asserted/besu_docs_genesis_examples.json");
    for example in docs["examples"].as_array().unwrap() {
        let validators: Vec<Address> = example["validators"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| addr(a.as_str().unwrap()))
            .collect();
        let extra = hex(s(example, "extraData"));
        assert_eq!(
            IbftExtraData::genesis(validators.clone()).encode().as_ref(),
            extra
        );
        assert_eq!(s(&example["genesis"], "extraData"), s(example, "extraData"));
        assert_eq!(
            IbftExtraData::decode(&extra).unwrap().validators,
            validators
        );
    }
}

#[test]
fn ibft2_expected_extradata_entries_decode_and_reencode() {
    let v = json("ibft2-expected.json");
    let mut checked = 0;
    for entry in v["extraData"].as_array().unwrap() {
        let name = s(entry, "name");
        let raw = hex(s(entry, "hex"));
        if name.contains("QBFT") {
            assert!(IbftExtraData::decode(&raw).is_err(), "{name}");
            continue;
        }
        let extra = IbftExtraData::decode(&raw).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(extra.encode().as_ref(), raw.as_slice(), "{name}");
        let decoded = &entry["decoded"];
        let validators: Vec<Address> = decoded["validators"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| addr(a.as_str().unwrap()))
            .collect();
        assert_eq!(extra.validators, validators, "{name}");
        if let Some(n) = decoded["seals"].as_array() {
            assert_eq!(extra.seals.len(), n.len(), "{name}");
        }
        if decoded["vote"].is_null() {
            assert_eq!(extra.vote, None, "{name}");
        }
        checked += 1;
    }
    assert!(checked >= 4, "only {checked} IBFT entries");
}

/// The header of Besu's `BftBlockHashingTest` with `extra` as its extraData.
fn hashing_test_header(inputs: &Value, extra: Bytes) -> Header {
    let h = |k: &str| s(inputs, k).parse::<B256>().unwrap();
    Header {
        parent_hash: h("parentHash"),
        ommers_hash: h("ommersHash"),
        beneficiary: addr(s(inputs, "coinbase")),
        state_root: h("stateRoot"),
        transactions_root: h("transactionsRoot"),
        receipts_root: h("receiptsRoot"),
        logs_bloom: Bloom::ZERO,
        difficulty: U256::from(inputs["difficulty"].as_u64().unwrap()),
        number: inputs["number"].as_u64().unwrap(),
        gas_limit: inputs["gasLimit"].as_u64().unwrap(),
        gas_used: inputs["gasUsed"].as_u64().unwrap(),
        timestamp: inputs["timestamp"].as_u64().unwrap(),
        extra_data: extra,
        mix_hash: h("mixHash"),
        nonce: Default::default(),
        ..Default::default()
    }
}

#[test]
fn bft_block_hashing_vectors() {
    let v = json("ibft2/derived/bft_block_hashing_test_derived.json");
    let inputs = &v["_inputs"];
    assert_eq!(s(inputs, "mixHash").parse::<B256>().unwrap(), IBFT_MIX_HASH);
    let keys: Vec<k256::ecdsa::SigningKey> = (1u8..=4)
        .map(|k| {
            let mut secret = [0u8; 32];
            secret[31] = k;
            k256::ecdsa::SigningKey::from_slice(&secret).unwrap()
        })
        .collect();
    for (section, round) in [
        (
            "round_0x00FEDCBA (the round used by the Besu test)",
            0x00fe_dcba,
        ),
        ("round_0 (same header, round 0)", 0),
    ] {
        let c = &v[section];
        let mut extra = IbftExtraData {
            vanity: Bytes::from((0u8..32).collect::<Vec<_>>()),
            validators: vec![Address::with_last_byte(1), Address::with_last_byte(2)],
            vote: Some(Vote {
                recipient: Address::with_last_byte(3),
                kind: VoteKind::Add,
            }),
            round,
            seals: Vec::new(),
        };
        assert_eq!(
            extra.encode().as_ref(),
            hex(s(c, "extraData as proposed (round, empty seal list)")).as_slice()
        );
        assert_eq!(
            extra
                .encode_as(ExtraDataEncoding::ExcludeCommitSeals)
                .as_ref(),
            hex(s(c, "extraData(for commit seal, no seals)")).as_slice()
        );
        let proposed = hashing_test_header(inputs, extra.encode());
        let digest = commit_seal_digest(&proposed).unwrap();
        assert_eq!(
            digest,
            s(c, "COMMIT-SEAL HASH / proposal digest")
                .parse::<B256>()
                .unwrap(),
            "{section}"
        );
        let mut seal_form = proposed.clone();
        seal_form.extra_data = extra.encode_as(ExtraDataEncoding::ExcludeCommitSeals);
        assert_eq!(
            alloy_rlp::encode(&seal_form),
            hex(s(c, "header RLP for commit-seal hash"))
        );
        let mut onchain_form = proposed.clone();
        onchain_form.extra_data = extra.encode_as(ExtraDataEncoding::ExcludeCommitSealsAndRound);
        assert_eq!(
            alloy_rlp::encode(&onchain_form),
            hex(s(c, "header RLP for onchain hash"))
        );
        let onchain = s(c, "ONCHAIN BLOCK HASH").parse::<B256>().unwrap();
        assert_eq!(block_hash(&proposed).unwrap(), onchain, "{section}");

        // Seals from keys 1..4 (RFC 6979, low S) match byte for byte.
        for (i, key) in keys.iter().enumerate() {
            let (sig, recid) = key.sign_prehash_recoverable(digest.as_slice()).unwrap();
            let seal = Signature65::new(alloy_primitives::Signature::from((sig, recid)));
            assert_eq!(
                seal.to_bytes().as_slice(),
                hex(s(c, &format!("seal by key {}", i + 1))).as_slice(),
                "{section} seal {i}"
            );
            extra.seals.push(seal);
        }
        assert_eq!(
            extra.encode().as_ref(),
            hex(s(c, "extraData sealed (4 seals)")).as_slice()
        );
        let sealed = hashing_test_header(inputs, extra.encode());
        let sealed_rlp = hex(s(c, "sealed header RLP (as stored/sent)"));
        assert_eq!(alloy_rlp::encode(&sealed), sealed_rlp);
        assert_eq!(Header::decode(&mut sealed_rlp.as_slice()).unwrap(), sealed);
        // The seals do not change the block hash; the committers recover in seal order.
        assert_eq!(block_hash(&sealed).unwrap(), onchain);
        let expected: Vec<Option<Address>> = [
            "private_key_1",
            "private_key_2",
            "private_key_3",
            "private_key_4",
        ]
        .iter()
        .map(|k| Some(addr(s(&inputs["committer addresses"], k))))
        .collect();
        assert_eq!(committers(&sealed).unwrap(), expected);
    }
}

#[test]
fn genesis_hash_is_the_plain_header_hash() {
    let v = json("ibft2/derived/docs_ibft_genesis_hash_derived.json");
    let rlp = hex(s(&v, "genesis_header_rlp"));
    let header = Header::decode(&mut rlp.as_slice()).unwrap();
    assert_eq!(header.number, 0);
    let mut encoded = Vec::new();
    header.encode(&mut encoded);
    assert_eq!(encoded, rlp);
    let expected: B256 = s(&v, "genesis_hash").parse().unwrap();
    assert_eq!(block_hash(&header).unwrap(), expected);
    assert_eq!(header.hash_slow(), expected);
}
