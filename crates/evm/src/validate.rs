//! Header and body checks that need no execution.

use alloy_consensus::{proofs, transaction::SignerRecoverable};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256};
use healthchain_chainspec::{ChainConfig, Hardfork};
use healthchain_primitives::{Block, Header, RecoveredBlock};

use crate::{BlockError, rules::BlockRules};

/// Minimum gas limit (Yellow Paper eq. 47).
const MIN_GAS_LIMIT: u64 = 5000;
/// Maximum gas-limit change per block is parent / 1024 (exclusive).
const GAS_LIMIT_BOUND_DIVISOR: u64 = 1024;
/// Maximum extraData length on chains other than IBFT 2.0.
const MAX_EXTRA_DATA: usize = 32;

/// The block's identity on `config`'s chain: on IBFT 2.0 chains the hash of the header
/// with extraData reduced to `[vanity, validators, vote]` (so neither the round nor the
/// commit seals change it; Besu's `calculateHashOfBftBlockOnchain`), elsewhere
/// `keccak256(rlp(header))`. Genesis is hashed as stored on both.
pub fn block_hash(config: &ChainConfig, header: &Header) -> Result<B256, BlockError> {
    if config.ibft2.is_none() || header.number == 0 {
        return Ok(header.hash_slow());
    }
    healthchain_primitives::ibft::block_hash(header)
        .map_err(|e| BlockError::header("extraData", e.to_string(), "IBFT 2.0 extraData"))
}

/// Recovers every sender once; the block's hash is computed here too.
pub fn recover_senders(config: &ChainConfig, block: Block) -> Result<RecoveredBlock, BlockError> {
    recover_senders_with(config, block, |_| Vec::new())
}

/// Blocks with at least this many unknown senders are recovered on every core.
const PARALLEL_RECOVERY: usize = 64;

/// [`recover_senders`] reusing senders the node already recovered: `known(hash)` gives the
/// sender of a transaction it has seen (its pool recovered each one at admission; a
/// transaction hash commits to the signature, so the same hash has the same sender). The
/// others are recovered here, split across the cores when there are many.
pub fn recover_senders_with(
    config: &ChainConfig,
    block: Block,
    known: impl Fn(&[B256]) -> Vec<Option<Address>>,
) -> Result<RecoveredBlock, BlockError> {
    let txs = &block.body.transactions;
    let hashes: Vec<B256> = txs.iter().map(|tx| *tx.tx_hash()).collect();
    let mut senders = known(&hashes);
    senders.resize(txs.len(), None);
    let missing: Vec<usize> = (0..txs.len()).filter(|i| senders[*i].is_none()).collect();
    let recover = |index: usize| {
        txs[index]
            .recover_signer()
            .map_err(|e| BlockError::InvalidSignature {
                index,
                reason: e.to_string(),
            })
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let recovered: Vec<Result<Address, BlockError>> =
        if missing.len() >= PARALLEL_RECOVERY && threads > 1 {
            let chunk = missing.len().div_ceil(threads);
            std::thread::scope(|scope| {
                let parts: Vec<_> = missing
                    .chunks(chunk)
                    .map(|part| {
                        scope.spawn(move || part.iter().map(|i| recover(*i)).collect::<Vec<_>>())
                    })
                    .collect();
                parts
                    .into_iter()
                    .flat_map(|p| match p.join() {
                        Ok(results) => results,
                        Err(panic) => std::panic::resume_unwind(panic),
                    })
                    .collect()
            })
        } else {
            missing.iter().map(|i| recover(*i)).collect()
        };
    for (index, result) in missing.iter().zip(recovered) {
        senders[*index] = Some(result?);
    }
    let senders = senders.into_iter().flatten().collect();
    let hash = block_hash(config, &block.header)?;
    Ok(RecoveredBlock {
        block,
        hash,
        senders,
    })
}

/// Checks `header` against its `parent` and the fork rules.
pub fn validate_header(
    config: &ChainConfig,
    parent: &Header,
    header: &Header,
) -> Result<(), BlockError> {
    let rules = BlockRules::new(config, header.number, header.timestamp);
    if header.number != parent.number + 1 {
        return Err(BlockError::header(
            "number",
            header.number,
            parent.number + 1,
        ));
    }
    // IBFT 2.0 (`TimestampMoreRecentThanParent`): at least the block period after the
    // parent, a rule Besu drops with millisecond periods (timestamps are whole seconds);
    // other chains: strictly after the parent.
    let earliest = match &config.ibft2 {
        Some(ibft) if ibft.block_period_ms.is_some() => parent.timestamp,
        Some(ibft) => parent.timestamp.saturating_add(ibft.block_period_seconds),
        None => parent.timestamp.saturating_add(1),
    };
    if header.timestamp < earliest {
        return Err(BlockError::header(
            "timestamp",
            header.timestamp,
            format!(">= {earliest}"),
        ));
    }
    if header.gas_used > header.gas_limit {
        return Err(BlockError::header(
            "gasUsed",
            header.gas_used,
            format!("<= {}", header.gas_limit),
        ));
    }
    // At the London fork block the parent's limit is doubled by the elasticity multiplier.
    let parent_limit = if config.forks.activation(Hardfork::London) == Some(header.number) {
        parent.gas_limit.saturating_mul(2)
    } else {
        parent.gas_limit
    };
    let bound = parent_limit / GAS_LIMIT_BOUND_DIVISOR;
    if header.gas_limit.abs_diff(parent_limit) >= bound || header.gas_limit < MIN_GAS_LIMIT {
        return Err(BlockError::header(
            "gasLimit",
            header.gas_limit,
            format!("within {bound} of {parent_limit} and >= {MIN_GAS_LIMIT}"),
        ));
    }
    if config.ibft2.is_none() && header.extra_data.len() > MAX_EXTRA_DATA {
        return Err(BlockError::header(
            "extraData",
            header.extra_data.len(),
            "<= 32 bytes",
        ));
    }
    let expected_base_fee = rules.expected_base_fee(parent, header.number);
    if header.base_fee_per_gas != expected_base_fee {
        return Err(BlockError::header(
            "baseFeePerGas",
            format!("{:?}", header.base_fee_per_gas),
            format!("{expected_base_fee:?}"),
        ));
    }
    if config.ibft2.is_some() {
        // IBFT 2.0 blocks have difficulty 1 whatever the fork (Besu's BFT difficulty
        // calculator); the other IBFT header rules are the consensus engine's.
        if header.difficulty != alloy_primitives::U256::from(1) {
            return Err(BlockError::header("difficulty", header.difficulty, 1));
        }
    } else if rules.is_active(Hardfork::Paris) {
        if !header.difficulty.is_zero() {
            return Err(BlockError::header("difficulty", header.difficulty, 0));
        }
        if !header.nonce.is_zero() {
            return Err(BlockError::header(
                "nonce",
                header.nonce,
                "0x0000000000000000",
            ));
        }
        if header.ommers_hash != alloy_consensus::EMPTY_OMMER_ROOT_HASH {
            return Err(BlockError::header(
                "ommersHash",
                header.ommers_hash,
                "empty",
            ));
        }
    }
    presence(
        "withdrawalsRoot",
        header.withdrawals_root.is_some(),
        rules.is_active(Hardfork::Shanghai),
    )?;
    let cancun = rules.is_active(Hardfork::Cancun);
    presence("blobGasUsed", header.blob_gas_used.is_some(), cancun)?;
    presence("excessBlobGas", header.excess_blob_gas.is_some(), cancun)?;
    presence(
        "parentBeaconBlockRoot",
        header.parent_beacon_block_root.is_some(),
        cancun,
    )?;
    presence(
        "requestsHash",
        header.requests_hash.is_some(),
        rules.is_active(Hardfork::Prague),
    )?;
    if let Some(params) = crate::rules::blob_params(rules.fork) {
        // The first Cancun block's parent has no blob fields: treat them as zero.
        let parent_excess = parent.excess_blob_gas.unwrap_or(0);
        let parent_used = parent.blob_gas_used.unwrap_or(0);
        let expected = params.next_block_excess_blob_gas_osaka(
            parent_excess,
            parent_used,
            parent.base_fee_per_gas.unwrap_or(0),
        );
        if header.excess_blob_gas != Some(expected) {
            return Err(BlockError::header(
                "excessBlobGas",
                format!("{:?}", header.excess_blob_gas),
                expected,
            ));
        }
        if let Some(used) = header.blob_gas_used {
            let max = params.max_blob_gas_per_block();
            if used > max {
                return Err(BlockError::header("blobGasUsed", used, format!("<= {max}")));
            }
        }
    }
    Ok(())
}

fn presence(field: &'static str, present: bool, required: bool) -> Result<(), BlockError> {
    if present == required {
        Ok(())
    } else {
        let state = |p: bool| if p { "present" } else { "absent" };
        Err(BlockError::header(field, state(present), state(required)))
    }
}

/// Checks the body against the header's commitments: transactions, ommers, withdrawals.
pub fn validate_body(config: &ChainConfig, block: &Block) -> Result<(), BlockError> {
    let header = &block.header;
    let body = &block.body;
    let tx_root =
        healthchain_trie::ordered_trie_root(body.transactions.iter().map(|tx| tx.encoded_2718()));
    if tx_root != header.transactions_root {
        return Err(BlockError::mismatch(
            "transactionsRoot",
            header.transactions_root,
            tx_root,
        ));
    }
    let ommers_hash = proofs::calculate_ommers_root(&body.ommers);
    if ommers_hash != header.ommers_hash {
        return Err(BlockError::mismatch(
            "ommersHash",
            header.ommers_hash,
            ommers_hash,
        ));
    }
    match (&body.withdrawals, header.withdrawals_root) {
        (None, None) => {}
        (Some(withdrawals), Some(root)) => {
            let computed =
                healthchain_trie::ordered_trie_root(withdrawals.iter().map(alloy_rlp::encode));
            if computed != root {
                return Err(BlockError::mismatch("withdrawalsRoot", root, computed));
            }
        }
        (body_w, header_w) => {
            return Err(BlockError::header(
                "withdrawals",
                if body_w.is_some() {
                    "in body"
                } else {
                    "not in body"
                },
                if header_w.is_some() {
                    "in body"
                } else {
                    "not in body"
                },
            ));
        }
    }
    let rules = BlockRules::new(config, header.number, header.timestamp);
    for (index, tx) in body.transactions.iter().enumerate() {
        let allowed = match tx.tx_type() {
            alloy_consensus::TxType::Legacy => true,
            alloy_consensus::TxType::Eip2930 => rules.is_active(Hardfork::Berlin),
            alloy_consensus::TxType::Eip1559 => rules.is_active(Hardfork::London),
            alloy_consensus::TxType::Eip4844 => rules.is_active(Hardfork::Cancun),
            alloy_consensus::TxType::Eip7702 => rules.is_active(Hardfork::Prague),
        };
        if !allowed {
            return Err(BlockError::InvalidTransaction {
                index,
                hash: *tx.tx_hash(),
                reason: format!("type {} not allowed before its fork", tx.tx_type() as u8),
            });
        }
    }
    Ok(())
}
