//! The `debug_` namespace: state inspection that geth and Besu tooling relies on.

use std::collections::BTreeMap;

use alloy_eips::BlockId;
use alloy_primitives::{Address, B256, Bytes, U256};
use alloy_rlp::Decodable;
use healthchain_storage_api::StateNodes;
use jsonrpsee::proc_macros::rpc;
use serde::Serialize;

use crate::{
    error::{RpcResult, internal, invalid_params, storage},
    eth::EthRpc,
};

/// Most slots one `debug_storageRangeAt` page returns (geth and Besu have no cap; a
/// contract with millions of slots must not become one response).
pub const MAX_STORAGE_RANGE: usize = 1024;

/// The `debug_` methods.
#[rpc(server, namespace = "debug")]
pub trait DebugApi {
    /// A page of an account's storage as it was before transaction `tx_index` of the block
    /// `block_hash`, in hashed-key order, from `start_key` (a hashed slot key).
    #[method(name = "storageRangeAt")]
    async fn storage_range_at(
        &self,
        block_hash: B256,
        tx_index: u64,
        address: Address,
        start_key: Bytes,
        max_result: usize,
    ) -> RpcResult<StorageRange>;
}

/// One slot of a [`StorageRange`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StorageEntry {
    /// The slot's preimage; `null`, as in geth without preimage recording.
    pub key: Option<B256>,
    /// The slot's value, 32 bytes.
    pub value: B256,
}

/// Result of `debug_storageRangeAt` (geth's shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageRange {
    /// Slots keyed by `keccak256(slot)`.
    pub storage: BTreeMap<B256, StorageEntry>,
    /// The hashed key the next page starts at, or `null` at the end.
    pub next_key: Option<B256>,
}

/// Implementation of [`DebugApiServer`]; shares the `eth_` namespace's backend and its
/// bound on concurrent heavy calls.
#[derive(Debug, Clone)]
pub struct DebugRpc {
    eth: EthRpc,
}

impl DebugRpc {
    /// The namespace over the same backend and worker bound as `eth`.
    pub fn new(eth: EthRpc) -> Self {
        Self { eth }
    }
}

#[jsonrpsee::core::async_trait]
impl DebugApiServer for DebugRpc {
    async fn storage_range_at(
        &self,
        block_hash: B256,
        tx_index: u64,
        address: Address,
        start_key: Bytes,
        max_result: usize,
    ) -> RpcResult<StorageRange> {
        if start_key.len() > 32 {
            return Err(invalid_params("Invalid start key: longer than 32 bytes"));
        }
        if tx_index != 0 {
            // Per-transaction intermediate states are not kept; re-executing the block's
            // prefix is future work (docs/rpc.md).
            return Err(invalid_params(
                "Only txIndex 0 (the state before the block's first transaction) is supported",
            ));
        }
        let limit = max_result.min(MAX_STORAGE_RANGE);
        self.eth
            .heavy(move |this| storage_range(this, block_hash, address, &start_key, limit))
            .await
    }
}

/// The page, on a blocking thread.
fn storage_range(
    eth: &EthRpc,
    block_hash: B256,
    address: Address,
    start_key: &[u8],
    limit: usize,
) -> RpcResult<StorageRange> {
    let backend = eth.backend();
    let block = backend
        .block_by_hash(block_hash)?
        .ok_or_else(|| invalid_params("Block not found"))?;
    // Before the first transaction is the parent's post-state; genesis has no parent.
    let pre_state = if block.header.number == 0 {
        block.hash
    } else {
        block.header.parent_hash
    };
    let (state, _) = backend
        .state_at(Some(BlockId::hash(pre_state)))?
        .ok_or_else(|| internal(format!("no state for block {pre_state}")))?;
    let account = state.account_or_empty(address)?;
    let nodes = StateNodes::new(&state);
    let page = healthchain_trie::range(&nodes, account.storage_root, start_key, limit);
    if let Some(err) = nodes.take_error() {
        return Err(storage(err));
    }
    let page = page.map_err(internal)?;
    let mut storage = BTreeMap::new();
    for (key, value) in page.entries {
        let value = U256::decode(&mut value.as_slice()).map_err(internal)?;
        storage.insert(
            hashed_key(&key)?,
            StorageEntry {
                key: None,
                value: value.into(),
            },
        );
    }
    let next_key = page.next.as_deref().map(hashed_key).transpose()?;
    Ok(StorageRange { storage, next_key })
}

/// A storage trie key, which is always `keccak256(slot)`.
fn hashed_key(key: &[u8]) -> RpcResult<B256> {
    B256::try_from(key).map_err(|_| internal(format!("storage trie key of {} bytes", key.len())))
}
