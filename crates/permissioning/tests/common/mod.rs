//! A store holding a fixture genesis with the permissioning contracts pre-deployed, for
//! the on-chain rules tests and benchmark.
#![allow(dead_code)] // each user takes what it needs

use std::sync::Arc;

use alloy_primitives::{Address, address, keccak256};
use healthchain_chainspec::{ChainConfig, ForkSchedule, GenesisAccount, Hardfork};
use healthchain_contracts::permissioning::{
    ACCOUNT_INGRESS_ADDRESS, NODE_INGRESS_ADDRESS, PermissionedNode, PermissioningGenesis,
    permissioning_predeploy,
};
use healthchain_fixtures::DevAccount;
use healthchain_permissioning::OnchainRules;
use healthchain_storage_api::{BlockWriter, ChainStore, MemoryStore};

pub(crate) const TARGET: Address = address!("0x00000000000000000000000000000000000d0001");

pub(crate) fn listed() -> DevAccount {
    DevAccount::new(1)
}

pub(crate) fn stranger() -> DevAccount {
    DevAccount::new(2)
}

pub(crate) fn node_id(seed: &str) -> String {
    let (a, b) = (
        keccak256(format!("{seed}/0")),
        keccak256(format!("{seed}/1")),
    );
    format!(
        "{}{}",
        alloy_primitives::hex::encode(a),
        alloy_primitives::hex::encode(b)
    )
}

/// A fixture genesis plus the permissioning contracts (admin: account 0; accounts: 0 and
/// 1; one node `a` at 10.0.0.1:30303), and `extra` accounts, committed to a memory store.
pub(crate) fn chain(
    extra: &[(Address, GenesisAccount)],
) -> (Arc<dyn ChainStore>, Arc<ChainConfig>) {
    let mut genesis = healthchain_fixtures::genesis(3);
    // The contracts are compiled for Cancun (PUSH0, MCOPY), as `genesis new` schedules.
    genesis.config.forks = ForkSchedule::all_up_to(Hardfork::Cancun);
    let rules = PermissioningGenesis {
        admins: vec![DevAccount::new(0).address],
        accounts: vec![DevAccount::new(0).address, listed().address],
        nodes: vec![PermissionedNode {
            id: node_id("a"),
            host: "10.0.0.1".into(),
            port: 30303,
        }],
    };
    for account in permissioning_predeploy(&rules).unwrap() {
        genesis.alloc.insert(
            account.address,
            GenesisAccount {
                code: account.code,
                nonce: 1,
                storage: account.storage.into_iter().collect(),
                ..Default::default()
            },
        );
    }
    for (address, account) in extra {
        genesis.alloc.insert(*address, account.clone());
    }
    let store = MemoryStore::default();
    store
        .commit_block(healthchain_evm::genesis_batch(&genesis).unwrap())
        .unwrap();
    (Arc::new(store), Arc::new(genesis.config))
}

/// Both kinds of on-chain rules at the ingress addresses.
pub(crate) fn rules(store: &Arc<dyn ChainStore>, chain: &Arc<ChainConfig>) -> OnchainRules {
    OnchainRules::new(
        store.clone(),
        chain.clone(),
        Some(ACCOUNT_INGRESS_ADDRESS),
        Some(NODE_INGRESS_ADDRESS),
    )
}
