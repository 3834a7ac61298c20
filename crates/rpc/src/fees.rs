//! `eth_feeHistory`: base fees, gas-used ratios and priority-fee percentiles weighted by gas.

use alloy_consensus::Transaction as _;
use alloy_eips::BlockNumberOrTag;
use alloy_rpc_types_eth::FeeHistory;
use healthchain_evm::BlockRules;

use crate::{
    backend::RpcBackend,
    error::{RpcResult, invalid_params, storage, unknown_block},
};

/// Most blocks one request may cover (geth and Besu use 1024).
const MAX_BLOCK_COUNT: u64 = 1024;
/// Most percentiles one request may ask for.
const MAX_PERCENTILES: usize = 100;

/// Fee history of `block_count` blocks ending at `newest`.
pub(crate) fn fee_history(
    backend: &RpcBackend,
    block_count: u64,
    newest: BlockNumberOrTag,
    percentiles: Option<Vec<f64>>,
) -> RpcResult<FeeHistory> {
    let percentiles = percentiles.unwrap_or_default();
    if percentiles.len() > MAX_PERCENTILES
        || percentiles.iter().any(|p| !(0.0..=100.0).contains(p))
        || percentiles.windows(2).any(|w| w[0] > w[1])
    {
        return Err(invalid_params("Invalid reward percentiles"));
    }
    let newest = backend.resolve_number(newest)?.ok_or_else(unknown_block)?;
    let count = block_count.clamp(1, MAX_BLOCK_COUNT).min(newest + 1);
    let oldest = newest + 1 - count;

    let mut history = FeeHistory {
        oldest_block: oldest,
        reward: (!percentiles.is_empty()).then(Vec::new),
        ..Default::default()
    };
    let mut last_header = None;
    for number in oldest..=newest {
        let block = backend.block_at(number)?.ok_or_else(unknown_block)?;
        let header = &block.header;
        history
            .base_fee_per_gas
            .push(u128::from(header.base_fee_per_gas.unwrap_or_default()));
        history.gas_used_ratio.push(if header.gas_limit == 0 {
            0.0
        } else {
            header.gas_used as f64 / header.gas_limit as f64
        });
        if let Some(rewards) = history.reward.as_mut() {
            rewards.push(block_rewards(backend, &block, &percentiles)?);
        }
        last_header = Some(block.header);
    }
    // One more entry: the base fee of the block after the newest.
    if let Some(parent) = last_header {
        let rules = BlockRules::new(&backend.chain, parent.number + 1, parent.timestamp + 1);
        let next = rules
            .expected_base_fee(&parent, parent.number + 1)
            .unwrap_or_default();
        history.base_fee_per_gas.push(u128::from(next));
    }
    Ok(history)
}

fn block_rewards(
    backend: &RpcBackend,
    block: &crate::backend::BlockRef,
    percentiles: &[f64],
) -> RpcResult<Vec<u128>> {
    let (Some(body), Some(receipts)) = (
        backend.store.body(block.hash).map_err(storage)?,
        backend.store.receipts(block.hash).map_err(storage)?,
    ) else {
        return Ok(vec![0; percentiles.len()]);
    };
    let base_fee = block.header.base_fee_per_gas;
    let mut previous = 0;
    let mut tips: Vec<(u128, u64)> = body
        .transactions
        .iter()
        .zip(&receipts)
        .map(|(tx, receipt)| {
            let used = receipt.cumulative_gas_used() - previous;
            previous = receipt.cumulative_gas_used();
            (
                tx.effective_tip_per_gas(base_fee.unwrap_or_default())
                    .unwrap_or_default(),
                used,
            )
        })
        .collect();
    if tips.is_empty() {
        return Ok(vec![0; percentiles.len()]);
    }
    tips.sort_unstable_by_key(|(tip, _)| *tip);
    let total: u64 = tips.iter().map(|(_, used)| used).sum();
    let mut out = Vec::with_capacity(percentiles.len());
    for p in percentiles {
        let threshold = (total as f64 * p / 100.0) as u64;
        let mut acc = 0u64;
        let mut chosen = tips.last().map(|(tip, _)| *tip).unwrap_or_default();
        for (tip, used) in &tips {
            acc += used;
            if acc >= threshold {
                chosen = *tip;
                break;
            }
        }
        out.push(chosen);
    }
    Ok(out)
}
