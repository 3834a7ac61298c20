//! Genesis state roots and block hashes against `genesis-expected.json` and ethereum/tests.

use alloy_consensus::{Block, BlockBody, TxEnvelope};
use alloy_primitives::{B256, keccak256};
use healthchain_chainspec::{Genesis, GenesisError, Hardfork};
use healthchain_vectors::{hex, json, read};

fn load(relative: &str) -> Genesis {
    let text = String::from_utf8(read(relative)).expect("utf-8 genesis");
    Genesis::from_json(&text).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

fn b256(s: &str) -> B256 {
    B256::from_slice(&hex(s))
}

#[test]
fn every_expected_genesis_reproduces_root_and_hash() {
    let expected = json("genesis-expected.json");
    let mut checked = 0;
    for entry in expected["entries"].as_array().unwrap() {
        let file = entry["file"].as_str().unwrap();
        let Some(state_root) = entry["stateRoot"].as_str().filter(|s| s.starts_with("0x")) else {
            continue; // entries checked by the dedicated tests below
        };
        if file.starts_with("ethereum-tests/") {
            continue;
        }
        let genesis = load(file);
        let header = genesis.header();
        assert_eq!(header.state_root, b256(state_root), "{file}: state root");
        if let Some(hash) = entry["blockHash"].as_str() {
            assert_eq!(header.hash_slow(), b256(hash), "{file}: block hash");
        }
        checked += 1;
    }
    assert!(checked >= 12, "only {checked} genesis files checked");
}

#[test]
fn mainnet_genesis_has_8893_accounts() {
    let genesis = load("ethereum-execution-specs/ethereum/assets/mainnet.json");
    assert_eq!(genesis.alloc.len(), 8893);
}

#[test]
fn mainnet_genesis_block_rlp_matches_basic_tests() {
    let case = json("ethereum-tests/BasicTests/genesishashestest.json");
    let genesis = load("ethereum-execution-specs/ethereum/assets/mainnet.json");
    let block: Block<TxEnvelope> = Block::new(genesis.header(), BlockBody::default());
    assert_eq!(
        alloy_rlp::encode(&block),
        hex(case["genesis_rlp_hex"].as_str().unwrap())
    );
    assert_eq!(
        genesis.header().hash_slow(),
        b256(case["genesis_hash"].as_str().unwrap())
    );
}

#[test]
fn genesis_tests_produce_the_stated_block_rlp() {
    let cases = json("ethereum-tests/GenesisTests/basic_genesis_tests.json");
    for (name, case) in cases.as_object().unwrap() {
        let genesis = Genesis::from_value(case).unwrap_or_else(|e| panic!("{name}: {e}"));
        let block: Block<TxEnvelope> = Block::new(genesis.header(), BlockBody::default());
        let expected = hex(case["result"].as_str().unwrap());
        assert_eq!(alloy_rlp::encode(&block), expected, "{name}");
        let header_rlp = alloy_rlp::encode(&block.header);
        assert_eq!(
            genesis.header().hash_slow(),
            keccak256(header_rlp),
            "{name}: hash"
        );
    }
}

#[test]
fn ibft2_section_is_parsed() {
    let genesis = load("besu-docs/ibft-example-genesis.json");
    let ibft = genesis.config.ibft2.expect("ibft2 section");
    assert_eq!(genesis.config.chain_id, 1981);
    assert_eq!(ibft.block_period_seconds, 2);
    assert_eq!(ibft.epoch_length, 30000);
    assert_eq!(ibft.request_timeout_seconds, 4);
    assert_eq!(
        ibft.block_reward,
        alloy_primitives::U256::from(5_000_000_000_000_000u64)
    );
    assert_eq!(
        ibft.mining_beneficiary,
        Some(
            "0xfe3b557e8fb62b89f4916b721be55ceb828dbd73"
                .parse()
                .unwrap()
        )
    );
    let quickstart = load("quorum-dev-quickstart/files/besu/config/besu/IBFTgenesis.json");
    assert!(quickstart.config.zero_base_fee);
    assert_eq!(
        quickstart.config.forks.hardfork_at(0, 0),
        Hardfork::GrayGlacier
    );
}

#[test]
fn fork_schedule_by_block_and_timestamp() {
    let sepolia = load("besu/config/src/main/resources/sepolia.json");
    let forks = &sepolia.config.forks;
    assert_eq!(forks.hardfork_at(0, 0), Hardfork::London);
    assert_eq!(
        forks.hardfork_at(2_000_000, 1_677_557_088),
        Hardfork::Shanghai
    );
    assert_eq!(
        forks.hardfork_at(5_000_000, 1_706_655_072),
        Hardfork::Cancun
    );
}

fn error_of(text: &str) -> GenesisError {
    Genesis::from_json(text).expect_err("must be rejected")
}

#[test]
fn malformed_genesis_errors_name_the_field() {
    let base = r#"{"config":{"chainId":5},"gasLimit":"0x1000","difficulty":"0x1","alloc":{}}"#;
    assert!(Genesis::from_json(base).is_ok());

    let cases = [
        (
            r#"{"config":{"chainId":5},"gasLimit":"0xzz","difficulty":"1"}"#,
            "gasLimit",
        ),
        (r#"{"config":{"chainId":5},"difficulty":"1"}"#, "gasLimit"),
        (
            r#"{"config":{"chainId":"x"},"gasLimit":"1","difficulty":"1"}"#,
            "config.chainId",
        ),
        (
            r#"{"config":{"chainId":5,"londonBlock":"soon"},"gasLimit":"1","difficulty":"1"}"#,
            "config.londonBlock",
        ),
        (
            r#"{"config":{"chainId":5},"gasLimit":"1","difficulty":"1","alloc":{"0x12":{"balance":"1"}}}"#,
            "alloc.0x12",
        ),
        (
            r#"{"config":{"chainId":5},"gasLimit":"1","difficulty":"1","alloc":{"0x1111111111111111111111111111111111111111":{"balance":"-1"}}}"#,
            "alloc.0x1111111111111111111111111111111111111111.balance",
        ),
        (
            r#"{"config":{"chainId":5,"ibft2":{"epochlength":0}},"gasLimit":"1","difficulty":"1"}"#,
            "config.ibft2.epochlength",
        ),
        (
            r#"{"config":{"chainId":5},"gasLimit":"0x1ffffffffffffffff","difficulty":"1"}"#,
            "gasLimit",
        ),
    ];
    for (text, field) in cases {
        let err = error_of(text);
        let message = err.to_string();
        assert!(
            message.contains(&format!("`{field}`")),
            "{text}: error {message:?} does not name {field}"
        );
    }
    assert!(matches!(error_of("{not json"), GenesisError::Json(_)));
}

#[test]
fn ibft2_defaults_are_besus() {
    let constants = json("ibft2/besu_asserted/constants.json");
    let defaults =
        &constants["ibft2 genesis config defaults (config/.../JsonBftConfigOptions.java)"];
    let genesis = Genesis::from_value(&serde_json::json!({
        "config": {"chainId": 7, "ibft2": {}},
        "difficulty": "0x1", "gasLimit": "0x1000000", "alloc": {}
    }))
    .unwrap();
    let ibft = genesis.config.ibft2.unwrap();
    let n = |key: &str| defaults[key].as_u64().unwrap();
    assert_eq!(ibft.block_period_seconds, n("blockperiodseconds"));
    assert_eq!(ibft.epoch_length, n("epochlength"));
    assert_eq!(ibft.request_timeout_seconds, n("requesttimeoutseconds"));
    assert_eq!(ibft.future_messages_limit, n("futuremessageslimit"));
    assert_eq!(
        ibft.future_messages_max_distance,
        n("futuremessagesmaxdistance")
    );
    assert_eq!(ibft.message_queue_limit, n("messagequeuelimit"));
    assert_eq!(ibft.duplicate_message_limit, n("duplicatemessagelimit"));
    assert_eq!(ibft.gossiped_history_limit, n("gossipedhistorylimit"));
    assert_eq!(ibft.block_period_ms, None);

    let millis = Genesis::from_value(&serde_json::json!({
        "config": {"ibft2": {"xblockperiodmilliseconds": 250, "blockperiodseconds": 1}},
        "difficulty": "0x1", "gasLimit": "0x1000000", "alloc": {}
    }))
    .unwrap();
    assert_eq!(millis.config.ibft2.unwrap().block_period_ms, Some(250));

    let err = Genesis::from_value(&serde_json::json!({
        "config": {"ibft2": {"blockperiodseconds": 0}},
        "difficulty": "0x1", "gasLimit": "0x1000000", "alloc": {}
    }))
    .unwrap_err();
    assert!(
        err.to_string().contains("config.ibft2.blockperiodseconds"),
        "{err}"
    );
}
