//! The on-chain rules as the node consults them: genesis with the permissioning contracts
//! pre-deployed into a store, then `OnchainRules` / `Permissions` asked at its head — the
//! calls the pool, the block builder, block import and the connection gate make.

use std::sync::Arc;

use alloy_primitives::{Address, Bytes, U256};
use healthchain_chainspec::GenesisAccount;
use healthchain_contracts::permissioning::ACCOUNT_INGRESS_ADDRESS;
use healthchain_permissioning::{
    LocalPermissions, LocalPermissionsConfig, OnchainRules, Permissions, RulesError,
};
use healthchain_storage_api::{BlockWriter, ChainStore, MemoryStore};
use healthchain_txpool::{CheckPoint, TransactionFilter};

mod common;
use common::{TARGET, chain, listed, node_id, rules, stranger};

#[test]
fn listed_senders_are_allowed_and_others_refused() {
    let (store, chain) = chain(&[]);
    let rules = rules(&store, &chain);
    let tx = listed().transfer(0, TARGET, U256::from(1));
    assert!(rules.transaction_allowed(&tx, listed().address).unwrap());
    let tx = stranger().transfer(0, TARGET, U256::from(1));
    assert!(!rules.transaction_allowed(&tx, stranger().address).unwrap());
}

#[test]
fn the_reference_rules_are_asked_once_per_sender_per_block() {
    let (store, chain) = chain(&[]);
    let rules = rules(&store, &chain);
    for nonce in 0..5 {
        let tx = listed().transfer(nonce, Address::repeat_byte(nonce as u8 + 1), U256::from(1));
        assert!(rules.transaction_allowed(&tx, listed().address).unwrap());
        let tx = stranger().transfer(nonce, TARGET, U256::from(1));
        assert!(!rules.transaction_allowed(&tx, stranger().address).unwrap());
    }
    assert_eq!(rules.account_rule_calls(), 2, "one EVM call per sender");
}

#[test]
fn other_rules_contracts_are_asked_for_every_transaction() {
    // A rules contract (behind the genesis ingress) that allows by target, not by sender:
    // PUSH1 0x24 CALLDATALOAD PUSH20 TARGET EQ PUSH1 0 MSTORE PUSH1 0x20 PUSH1 0 RETURN.
    let mut code = vec![0x60, 0x24, 0x35, 0x73];
    code.extend_from_slice(TARGET.as_slice());
    code.extend_from_slice(&[0x14, 0x60, 0x00, 0x52, 0x60, 0x20, 0x60, 0x00, 0xf3]);
    let by_target = GenesisAccount {
        code: code.into(),
        nonce: 1,
        ..Default::default()
    };
    let (store, chain) = chain(&[(
        healthchain_contracts::permissioning::ACCOUNT_RULES_ADDRESS,
        by_target,
    )]);
    let rules = rules(&store, &chain);
    let sender = stranger().address;
    let to_target = stranger().transfer(0, TARGET, U256::from(1));
    let elsewhere = stranger().transfer(0, Address::repeat_byte(9), U256::from(1));
    assert!(rules.transaction_allowed(&to_target, sender).unwrap());
    assert!(!rules.transaction_allowed(&elsewhere, sender).unwrap());
    assert!(rules.transaction_allowed(&to_target, sender).unwrap());
    assert_eq!(rules.account_rule_calls(), 3, "no answer was reused");
}

#[test]
fn node_rules_match_id_host_and_port_and_inbound_port_zero() {
    let (store, chain) = chain(&[]);
    let rules = rules(&store, &chain);
    let a = node_id("a");
    assert!(rules.connection_allowed(&a, "10.0.0.1", 30303).unwrap());
    // Inbound: the listening port is unknown, port 0 matches any port of id and host.
    assert!(rules.connection_allowed(&a, "10.0.0.1", 0).unwrap());
    assert!(!rules.connection_allowed(&a, "10.0.0.1", 30304).unwrap());
    assert!(!rules.connection_allowed(&a, "10.0.0.2", 30303).unwrap());
    assert!(
        !rules
            .connection_allowed(&node_id("b"), "10.0.0.1", 30303)
            .unwrap()
    );
}

#[test]
fn missing_ingress_allows_transactions_and_refuses_connections() {
    // A chain without the contracts, asked at the usual addresses.
    let mut genesis = healthchain_fixtures::genesis(1);
    genesis.alloc.remove(&ACCOUNT_INGRESS_ADDRESS);
    let store = MemoryStore::default();
    store
        .commit_block(healthchain_evm::genesis_batch(&genesis).unwrap())
        .unwrap();
    let store: Arc<dyn ChainStore> = Arc::new(store);
    let rules = rules(&store, &Arc::new(genesis.config));
    let tx = stranger().transfer(0, TARGET, U256::from(1));
    assert!(rules.transaction_allowed(&tx, stranger().address).unwrap());
    assert!(
        !rules
            .connection_allowed(&node_id("a"), "10.0.0.1", 30303)
            .unwrap()
    );
}

#[test]
fn a_rules_contract_that_reverts_or_answers_garbage_is_an_error() {
    // PUSH1 0 PUSH1 0 REVERT, and: return 64 zero bytes (not one ABI bool).
    let revert = Bytes::from_static(&[0x60, 0x00, 0x60, 0x00, 0xfd]);
    let garbage = Bytes::from_static(&[0x60, 0x40, 0x60, 0x00, 0xf3]);
    let (reverting, odd) = (Address::repeat_byte(0xe1), Address::repeat_byte(0xe2));
    let code = |code: &Bytes| GenesisAccount {
        code: code.clone(),
        nonce: 1,
        ..Default::default()
    };
    let (store, chain) = chain(&[(reverting, code(&revert)), (odd, code(&garbage))]);
    let tx = listed().transfer(0, TARGET, U256::from(1));
    let reverts = OnchainRules::new(store.clone(), chain.clone(), Some(reverting), None);
    assert!(matches!(
        reverts.transaction_allowed(&tx, listed().address),
        Err(RulesError::CallFailed { .. })
    ));
    let odd_rules = OnchainRules::new(store.clone(), chain.clone(), None, Some(odd));
    assert!(matches!(
        odd_rules.connection_allowed(&node_id("a"), "10.0.0.1", 30303),
        Err(RulesError::BadResult { .. })
    ));
    // As a filter, an error refuses at every check point.
    let filter = Permissions::new(None, reverts);
    for at in [
        CheckPoint::Pool,
        CheckPoint::BlockBuilding,
        CheckPoint::BlockImport,
    ] {
        assert!(!filter.permitted(&tx, listed().address, at), "{at:?}");
    }
}

#[test]
fn local_account_lists_apply_before_import_and_on_chain_rules_everywhere() {
    let (store, chain) = chain(&[]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("permissions_config.toml");
    // The local list names only the stranger: the on-chain rules still refuse it, and the
    // listed account is refused locally but not at import (Besu #1510).
    std::fs::write(
        &file,
        format!("accounts-allowlist = [\"{:#x}\"]\n", stranger().address),
    )
    .unwrap();
    let local = LocalPermissions::load(LocalPermissionsConfig {
        accounts_file: Some(file),
        nodes_file: None,
        fixed_nodes: Vec::new(),
    })
    .unwrap();
    let filter = Permissions::new(Some(Arc::new(local)), rules(&store, &chain));
    let ok = listed().transfer(0, TARGET, U256::from(1));
    let stranger_tx = stranger().transfer(0, TARGET, U256::from(1));
    for at in [CheckPoint::Pool, CheckPoint::BlockBuilding] {
        assert!(!filter.permitted(&ok, listed().address, at), "{at:?}");
        assert!(
            !filter.permitted(&stranger_tx, stranger().address, at),
            "{at:?}"
        );
    }
    assert!(filter.permitted(&ok, listed().address, CheckPoint::BlockImport));
    assert!(!filter.permitted(&stranger_tx, stranger().address, CheckPoint::BlockImport));
}
