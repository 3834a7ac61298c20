//! The `ibft_` namespace with Besu's parameters and result shapes (ibft2.md §8).

use std::collections::BTreeMap;
use std::sync::Arc;

use alloy_eips::BlockNumberOrTag;
use alloy_primitives::{Address, B256, U64};
use healthchain_ibft::votes::{SignerMetric, signer_metrics};
use healthchain_primitives::ibft::{IbftExtraData, VoteKind};
use jsonrpsee::{core::async_trait, proc_macros::rpc, types::ErrorObject};
use serde::Serialize;

use crate::{
    backend::{BlockRef, RpcBackend},
    error::{RpcResult, invalid_params},
};

/// Most blocks one `ibft_getSignerMetrics` call reads (a day of 1-second blocks).
pub const MAX_SIGNER_METRICS_BLOCKS: u64 = 86_400;

/// One row of `ibft_getSignerMetrics`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignerMetricJson {
    /// The validator, lower-case hex.
    pub address: String,
    /// Blocks it proposed in the range.
    pub proposed_block_count: U64,
    /// The last of them.
    pub last_proposed_block_number: U64,
}

impl From<SignerMetric> for SignerMetricJson {
    fn from(m: SignerMetric) -> Self {
        Self {
            address: lower(&m.address),
            proposed_block_count: U64::from(m.proposed_block_count),
            last_proposed_block_number: U64::from(m.last_proposed_block_number),
        }
    }
}

fn lower(address: &Address) -> String {
    format!("{address:#x}")
}

/// The `ibft_` methods.
#[rpc(server, namespace = "ibft")]
pub trait IbftApi {
    /// The validators listed in that block's extraData (the set that validated it).
    #[method(name = "getValidatorsByBlockNumber")]
    async fn validators_by_block_number(
        &self,
        block: BlockNumberOrTag,
    ) -> RpcResult<Option<Vec<String>>>;
    /// The same, by block hash.
    #[method(name = "getValidatorsByBlockHash")]
    async fn validators_by_block_hash(&self, hash: B256) -> RpcResult<Option<Vec<String>>>;
    /// Vote to add (`true`) or drop (`false`) a validator in this node's next proposals.
    #[method(name = "proposeValidatorVote")]
    async fn propose_validator_vote(&self, address: Address, add: bool) -> RpcResult<bool>;
    /// Withdraw this node's vote proposal about `address`.
    #[method(name = "discardValidatorVote")]
    async fn discard_validator_vote(&self, address: Address) -> RpcResult<bool>;
    /// This node's vote proposals: address → add (`true`) or drop.
    #[method(name = "getPendingVotes")]
    async fn pending_votes(&self) -> RpcResult<BTreeMap<String, bool>>;
    /// Blocks proposed per validator over `[from, to)`.
    #[method(name = "getSignerMetrics")]
    async fn signer_metrics(
        &self,
        from: Option<BlockNumberOrTag>,
        to: Option<BlockNumberOrTag>,
    ) -> RpcResult<Vec<SignerMetricJson>>;
}

/// Implementation of [`IbftApiServer`].
#[derive(Debug, Clone)]
pub struct IbftRpc {
    backend: Arc<RpcBackend>,
}

impl IbftRpc {
    /// The namespace over `backend`.
    pub fn new(backend: Arc<RpcBackend>) -> Self {
        Self { backend }
    }

    fn validators_of(block: Option<BlockRef>) -> RpcResult<Option<Vec<String>>> {
        let Some(block) = block else { return Ok(None) };
        let extra =
            IbftExtraData::of(&block.header).map_err(|e| crate::error::internal(e.to_string()))?;
        Ok(Some(extra.validators.iter().map(lower).collect()))
    }

    fn votes(&self) -> RpcResult<&Arc<parking_lot::Mutex<healthchain_ibft::votes::VoteProposer>>> {
        self.backend
            .votes
            .as_ref()
            .ok_or_else(|| ErrorObject::owned(-32604, "Method not enabled", None::<()>))
    }
}

#[async_trait]
impl IbftApiServer for IbftRpc {
    async fn validators_by_block_number(
        &self,
        block: BlockNumberOrTag,
    ) -> RpcResult<Option<Vec<String>>> {
        Self::validators_of(self.backend.block_by_tag(block)?)
    }

    async fn validators_by_block_hash(&self, hash: B256) -> RpcResult<Option<Vec<String>>> {
        Self::validators_of(self.backend.block_by_hash(hash)?)
    }

    async fn propose_validator_vote(&self, address: Address, add: bool) -> RpcResult<bool> {
        let kind = if add { VoteKind::Add } else { VoteKind::Drop };
        self.votes()?.lock().propose(address, kind);
        Ok(true)
    }

    async fn discard_validator_vote(&self, address: Address) -> RpcResult<bool> {
        self.votes()?.lock().discard(&address);
        Ok(true)
    }

    async fn pending_votes(&self) -> RpcResult<BTreeMap<String, bool>> {
        Ok(self
            .votes()?
            .lock()
            .pending()
            .iter()
            .map(|(address, kind)| (lower(address), *kind == VoteKind::Add))
            .collect())
    }

    async fn signer_metrics(
        &self,
        from: Option<BlockNumberOrTag>,
        to: Option<BlockNumberOrTag>,
    ) -> RpcResult<Vec<SignerMetricJson>> {
        let (head, _) = self.backend.head()?;
        let number = |tag: BlockNumberOrTag| -> RpcResult<u64> {
            Ok(match tag {
                BlockNumberOrTag::Number(n) => n,
                tag => self.backend.resolve_number(tag)?.unwrap_or(head),
            })
        };
        let from = match from {
            Some(tag) => number(tag)?,
            None => head.saturating_sub(100),
        };
        // The end is exclusive, and clamped to the head.
        let to = match to {
            Some(tag) => number(tag)?.min(head),
            None => head,
        };
        if from >= to {
            return Err(invalid_params("Invalid block number params"));
        }
        if to - from > MAX_SIGNER_METRICS_BLOCKS {
            return Err(invalid_params(format!(
                "block range exceeds {MAX_SIGNER_METRICS_BLOCKS} blocks"
            )));
        }
        // Up to a day of headers: read off the async workers.
        let backend = self.backend.clone();
        let read = move || -> RpcResult<(Vec<(u64, Address)>, Vec<Address>)> {
            let mut blocks = Vec::with_capacity((to - from) as usize);
            for n in from..to {
                let Some(block) = backend.block_at(n)? else {
                    break;
                };
                blocks.push((n, block.header.beneficiary));
            }
            // The validators after the range's last block are those listed in block `to`.
            let validators = match backend.block_at(to)? {
                Some(block) => IbftExtraData::of(&block.header)
                    .map(|e| e.validators)
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            Ok((blocks, validators))
        };
        let (blocks, validators) = tokio::task::spawn_blocking(read)
            .await
            .map_err(|e| crate::error::internal(e.to_string()))??;
        Ok(signer_metrics(blocks, &validators)
            .into_iter()
            .map(Into::into)
            .collect())
    }
}
