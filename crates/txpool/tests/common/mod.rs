//! What the pool tests share: an in-memory account table and the next block's environment.

use std::collections::HashMap;

use alloy_primitives::{Address, B256, Bytes, KECCAK256_EMPTY, U256};
use healthchain_chainspec::Hardfork;
use healthchain_fixtures::CHAIN_ID;
use healthchain_primitives::Account;
use healthchain_storage_api::{StateReader, StorageResult};
use healthchain_txpool::PoolEnv;

/// Accounts only: no storage, code or trie nodes.
#[derive(Default)]
pub(crate) struct State(pub(crate) HashMap<Address, Account>);

impl State {
    /// Gives `who` a large balance at `nonce`.
    pub(crate) fn fund(&mut self, who: Address, nonce: u64) {
        self.0.insert(
            who,
            Account {
                nonce,
                balance: U256::from(10u64).pow(U256::from(24u64)),
                storage_root: alloy_trie::EMPTY_ROOT_HASH,
                code_hash: KECCAK256_EMPTY,
            },
        );
    }
}

impl StateReader for State {
    fn account(&self, address: Address) -> StorageResult<Option<Account>> {
        Ok(self.0.get(&address).copied())
    }
    fn storage(&self, _: Address, _: B256) -> StorageResult<U256> {
        Ok(U256::ZERO)
    }
    fn bytecode(&self, _: B256) -> StorageResult<Option<Bytes>> {
        Ok(None)
    }
    fn trie_node(&self, _: B256) -> StorageResult<Option<Vec<u8>>> {
        Ok(None)
    }
}

/// A London block 1 with a 30M gas limit and a zero base fee.
pub(crate) fn env() -> PoolEnv {
    PoolEnv {
        chain_id: CHAIN_ID,
        fork: Hardfork::London,
        block_gas_limit: 30_000_000,
        base_fee: Some(0),
        number: 1,
        timestamp: 1,
    }
}
