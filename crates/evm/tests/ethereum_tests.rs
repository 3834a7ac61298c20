//! ethereum/tests `BlockchainTests` and `GeneralStateTests`, current and legacy forks.

use alloy_consensus::transaction::SignerRecoverable;
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::{Address, B256, U256, keccak256};
use alloy_rlp::Decodable;
use healthchain_chainspec::{ChainConfig, ForkSchedule, GenesisAccount, Hardfork, parse_alloc};
use healthchain_evm::{
    BlockRules, apply_state_changes, execute_block, execute_transactions, genesis_state,
};
use healthchain_primitives::{Block, BlockBody, Header, Transaction};
use healthchain_storage_api::{BlockBatch, BlockReader, BlockWriter, MemoryStore, StateReader};
use healthchain_vectors::{hex, json};
use serde_json::Value;
use std::collections::BTreeMap;

fn b256(v: &Value) -> B256 {
    let bytes = hex(v.as_str().expect("hex string"));
    let mut out = B256::ZERO;
    out[32 - bytes.len()..].copy_from_slice(&bytes);
    out
}

fn u64v(v: &Value) -> u64 {
    u64::try_from(U256::from_be_slice(&hex(v.as_str().unwrap()))).unwrap()
}

/// A config with every fork up to `network` active from genesis; `None` for transition
/// networks (e.g. `BerlinToLondonAt5`), which HealthChain's chains never use.
fn config_for(network: &str) -> Option<ChainConfig> {
    let fork = Hardfork::from_test_name(network)?;
    Some(ChainConfig::new(1, ForkSchedule::all_up_to(fork)))
}

/// Writes the `pre` allocation as a genesis with `header`, checking its state root.
fn store_with_genesis(
    pre: &BTreeMap<Address, GenesisAccount>,
    header: Header,
    body: BlockBody,
) -> MemoryStore {
    let (root, state) = genesis_state(pre).unwrap();
    assert_eq!(root, header.state_root, "genesis state root from `pre`");
    let store = MemoryStore::default();
    let hash = header.hash_slow();
    store
        .commit_block(BlockBatch {
            header,
            hash,
            body,
            senders: vec![],
            receipts: vec![],
            state,
        })
        .unwrap();
    store
}

fn check_post_state(store: &MemoryStore, post: &BTreeMap<Address, GenesisAccount>, name: &str) {
    for (address, expected) in post {
        let account = store
            .account(*address)
            .unwrap()
            .unwrap_or_else(|| panic!("{name}: {address} missing"));
        assert_eq!(
            account.balance, expected.balance,
            "{name}: balance of {address}"
        );
        assert_eq!(account.nonce, expected.nonce, "{name}: nonce of {address}");
        assert_eq!(
            account.code_hash,
            expected.code_hash(),
            "{name}: code of {address}"
        );
        for (slot, value) in &expected.storage {
            assert_eq!(
                store.storage(*address, *slot).unwrap(),
                *value,
                "{name}: {address} slot {slot}"
            );
        }
        assert_eq!(
            account.storage_root,
            expected.storage_root(),
            "{name}: storage root of {address}"
        );
    }
}

/// Runs every case of a BlockchainTests file; returns how many ran.
fn run_blockchain_file(file: &str) -> usize {
    let cases = json(file);
    let mut ran = 0;
    for (name, case) in cases.as_object().unwrap() {
        let network = case["network"].as_str().unwrap();
        let Some(config) = config_for(network) else {
            continue;
        };
        let pre = parse_alloc(&case["pre"], "pre").unwrap();
        let genesis = Block::decode(&mut hex(case["genesisRLP"].as_str().unwrap()).as_slice())
            .unwrap_or_else(|e| panic!("{name}: genesis RLP: {e}"));
        assert_eq!(
            genesis.header.hash_slow(),
            b256(&case["genesisBlockHeader"]["hash"]),
            "{name}"
        );
        let store = store_with_genesis(&pre, genesis.header, genesis.body);

        for (i, block) in case["blocks"].as_array().unwrap().iter().enumerate() {
            let expect_failure = block.get("expectException").is_some();
            let bytes = hex(block["rlp"].as_str().unwrap());
            let head_before = store.head().unwrap();
            let result = Block::decode(&mut bytes.as_slice())
                .map_err(|e| e.to_string())
                .and_then(|b| execute_block(&config, &store, b).map_err(|e| e.to_string()));
            match (result, expect_failure) {
                (Ok(batch), false) => store.commit_block(batch).unwrap(),
                (Err(e), false) => panic!("{name}: block {i} rejected: {e}"),
                (Ok(_), true) => panic!(
                    "{name}: block {i} accepted but expected {}",
                    block["expectException"]
                ),
                (Err(_), true) => {
                    assert_eq!(store.head().unwrap(), head_before, "{name}: chain changed")
                }
            }
        }
        let (_, head) = store.head().unwrap().unwrap();
        assert_eq!(
            head,
            b256(&case["lastblockhash"]),
            "{name}: last block hash"
        );
        let post = parse_alloc(&case["postState"], "postState").unwrap();
        check_post_state(&store, &post, name);
        // The head's state root commits to exactly the post state: no extra accounts.
        let (post_root, _) = genesis_state(&post).unwrap();
        assert_eq!(
            store.header(head).unwrap().unwrap().state_root,
            post_root,
            "{name}: post root"
        );
        ran += 1;
    }
    ran
}

/// Runs every (fork, index) of a GeneralStateTests file; returns how many ran.
fn run_state_test_file(file: &str) -> usize {
    let cases = json(file);
    let mut ran = 0;
    for (name, case) in cases.as_object().unwrap() {
        let env = &case["env"];
        let pre = parse_alloc(&case["pre"], "pre").unwrap();
        for (network, posts) in case["post"].as_object().unwrap() {
            let Some(config) = config_for(network) else {
                continue;
            };
            for post in posts.as_array().unwrap() {
                let (root, state) = genesis_state(&pre).unwrap();
                let parent = Header {
                    state_root: root,
                    ..Default::default()
                };
                let store = MemoryStore::default();
                store
                    .commit_block(BlockBatch {
                        hash: parent.hash_slow(),
                        header: parent,
                        body: BlockBody::default(),
                        senders: vec![],
                        receipts: vec![],
                        state,
                    })
                    .unwrap();
                let rules_fork = config.forks.hardfork_at(0, 0);
                let header = Header {
                    number: u64v(&env["currentNumber"]),
                    beneficiary: Address::from_slice(&hex(env["currentCoinbase"]
                        .as_str()
                        .unwrap())),
                    timestamp: u64v(&env["currentTimestamp"]),
                    gas_limit: u64v(&env["currentGasLimit"]),
                    difficulty: U256::from_be_slice(&hex(env["currentDifficulty"]
                        .as_str()
                        .unwrap())),
                    base_fee_per_gas: (rules_fork >= Hardfork::London)
                        .then(|| u64v(&env["currentBaseFee"])),
                    mix_hash: env.get("currentRandom").map(b256).unwrap_or_default(),
                    excess_blob_gas: (rules_fork >= Hardfork::Cancun)
                        .then(|| env.get("currentExcessBlobGas").map(u64v).unwrap_or(0)),
                    ..Default::default()
                };
                let tx = Transaction::decode_2718(
                    &mut hex(post["txbytes"].as_str().unwrap()).as_slice(),
                )
                .unwrap_or_else(|e| panic!("{name}: txbytes: {e}"));
                let sender = tx.recover_signer().unwrap();
                let label = format!("{name} {network} {}", post["indexes"]);
                // State tests credit no block reward.
                let output = execute_transactions(&config, &store, &header, &[tx], &[sender], &[])
                    .unwrap_or_else(|e| panic!("{label}: {e}"));
                let logs: Vec<_> = output
                    .receipts
                    .iter()
                    .flat_map(|r| r.logs().to_vec())
                    .collect();
                assert_eq!(
                    keccak256(alloy_rlp::encode(&logs)),
                    b256(&post["logs"]),
                    "{label}: logs"
                );
                let (state_root, _) = apply_state_changes(&store, root, output.changes).unwrap();
                assert_eq!(state_root, b256(&post["hash"]), "{label}: post state root");
                let _ = BlockRules::new(&config, header.number, header.timestamp);
                ran += 1;
            }
        }
    }
    ran
}

const BLOCKCHAIN_TESTS: &[&str] = &[
    "ValidBlocks/bcValidBlockTest/SimpleTx.json",
    "ValidBlocks/bcValidBlockTest/log1_correct.json",
    "ValidBlocks/bcValidBlockTest/eip2930.json",
    "ValidBlocks/bcValidBlockTest/emptyPostTransfer.json",
    "ValidBlocks/bcValidBlockTest/RecallSuicidedContract.json",
    "ValidBlocks/bcExample/shanghaiExample.json",
    "ValidBlocks/bcExample/basefeeExample.json",
    "ValidBlocks/bcEIP1559/transType.json",
    "ValidBlocks/bcEIP1153-transientStorage/tloadDoesNotPersistAcrossBlocks.json",
    "ValidBlocks/bcEIP4844-blobtransactions/blockWithAllTransactionTypes.json",
    "ValidBlocks/bcStateTests/blockhashTests.json",
    "ValidBlocks/bcStateTests/simpleSuicide.json",
    "ValidBlocks/bcStateTests/create2collisionwithSelfdestructSameBlock.json",
    "InvalidBlocks/bcInvalidHeaderTest/wrongStateRoot.json",
    "InvalidBlocks/bcInvalidHeaderTest/wrongReceiptTrie.json",
    "GeneralStateTests/stExample/add11.json",
];

#[test]
fn blockchain_tests_cancun() {
    let mut failures = Vec::new();
    for file in BLOCKCHAIN_TESTS {
        let path = format!("ethereum-tests/BlockchainTests/{file}");
        match std::panic::catch_unwind(|| run_blockchain_file(&path)) {
            Ok(0) => failures.push(format!("{file}: no case ran")),
            Ok(_) => {}
            Err(e) => failures.push(format!(
                "{file}: {}",
                e.downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_else(|| "panic".into())
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} files failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn general_state_test_add11() {
    assert!(run_state_test_file("ethereum-tests/GeneralStateTests/stExample/add11.json") > 0);
}

#[test]
fn legacy_blockchain_tests_istanbul_to_cancun() {
    let simple = run_blockchain_file(
        "ethereum-legacytests/Cancun/BlockchainTests/ValidBlocks/bcValidBlockTest/SimpleTx.json",
    );
    let trans = run_blockchain_file(
        "ethereum-legacytests/Cancun/BlockchainTests/ValidBlocks/bcEIP1559/transType.json",
    );
    // SimpleTx: Istanbul, Berlin, London, Paris, Shanghai, Cancun; transType: London on.
    assert!(simple >= 6, "SimpleTx ran {simple} forks");
    assert!(trans >= 4, "transType ran {trans} forks");
}

#[test]
fn legacy_state_test_add11_all_forks() {
    let ran =
        run_state_test_file("ethereum-legacytests/Cancun/GeneralStateTests/stExample/add11.json");
    assert!(ran >= 5, "add11 ran {ran} fork entries");
}
