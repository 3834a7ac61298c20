//! Building a block on top of the head: execute transactions, then fill in every root.

use alloy_consensus::EMPTY_OMMER_ROOT_HASH;
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B64, B256, Bytes, U256};
use healthchain_chainspec::{ChainConfig, Hardfork};
use healthchain_primitives::{BlockBody, Header, Transaction};
use healthchain_storage_api::{BlockBatch, BlockReader, StateReader};

use crate::{
    BlockError, BlockRules, ExecutionOutput, TransactionSource, apply_state_changes,
    execute_selected, execute_transactions,
};

/// Header fields the proposer chooses; everything else is derived.
#[derive(Debug, Clone, Default)]
pub struct BlockTemplate {
    /// Fee recipient (the proposer on IBFT 2.0 chains).
    pub beneficiary: Address,
    /// Block timestamp; must exceed the parent's.
    pub timestamp: u64,
    /// Gas limit; must be within the parent's bound.
    pub gas_limit: u64,
    /// Extra data (the IBFT 2.0 extraData on IBFT chains).
    pub extra_data: Bytes,
    /// Mix hash (PREVRANDAO after the merge; IBFT 2.0's fixed digest).
    pub mix_hash: B256,
    /// Difficulty (zero after the merge, one on IBFT 2.0 chains).
    pub difficulty: U256,
}

/// Executes `transactions` (with recovered `senders`) as the child of the store's head and
/// returns the complete block batch. Any invalid transaction fails the whole build (use
/// [`build_block_from`] to select from a pool instead).
pub fn build_block<S: StateReader + BlockReader + ?Sized>(
    config: &ChainConfig,
    store: &S,
    template: BlockTemplate,
    transactions: Vec<Transaction>,
    senders: Vec<Address>,
) -> Result<BlockBatch, BlockError> {
    let ChildHeader {
        header,
        parent_state_root,
        credits,
    } = child_header(config, store, template)?;
    let output = execute_transactions(config, store, &header, &transactions, &senders, &credits)?;
    seal_roots(
        config,
        store,
        header,
        parent_state_root,
        output,
        transactions,
        senders,
    )
}

/// Builds the child of the store's head from candidates supplied by `source` (best first),
/// leaving out transactions that are invalid or do not fit; the source hears about each one
/// left out so it can skip that sender's later nonces.
pub fn build_block_from<S: StateReader + BlockReader + ?Sized>(
    config: &ChainConfig,
    store: &S,
    template: BlockTemplate,
    source: &mut dyn TransactionSource,
) -> Result<BlockBatch, BlockError> {
    let ChildHeader {
        header,
        parent_state_root,
        credits,
    } = child_header(config, store, template)?;
    let (output, transactions, senders) =
        execute_selected(config, store, &header, source, &credits)?;
    seal_roots(
        config,
        store,
        header,
        parent_state_root,
        output,
        transactions,
        senders,
    )
}

/// The new block's header before execution, its parent's state root and the end-of-block
/// credits.
fn child_header<S: StateReader + BlockReader + ?Sized>(
    config: &ChainConfig,
    store: &S,
    template: BlockTemplate,
) -> Result<ChildHeader, BlockError> {
    let head = store.head()?;
    let (_, parent_hash) = head.ok_or(BlockError::UnknownParent {
        parent: B256::ZERO,
        head,
    })?;
    let parent = store
        .header(parent_hash)?
        .ok_or(BlockError::UnknownParent {
            parent: parent_hash,
            head,
        })?;
    let number = parent.number + 1;
    let rules = BlockRules::new(config, number, template.timestamp);
    let cancun = rules.is_active(Hardfork::Cancun);
    let shanghai = rules.is_active(Hardfork::Shanghai);

    let header = Header {
        parent_hash,
        ommers_hash: EMPTY_OMMER_ROOT_HASH,
        beneficiary: template.beneficiary,
        number,
        gas_limit: template.gas_limit,
        timestamp: template.timestamp,
        extra_data: template.extra_data,
        mix_hash: template.mix_hash,
        nonce: B64::ZERO,
        difficulty: template.difficulty,
        base_fee_per_gas: rules.expected_base_fee(&parent, number),
        withdrawals_root: shanghai.then_some(healthchain_trie::EMPTY_ROOT),
        parent_beacon_block_root: cancun.then_some(B256::ZERO),
        excess_blob_gas: crate::blob_params(rules.fork).map(|params| {
            params.next_block_excess_blob_gas_osaka(
                parent.excess_blob_gas.unwrap_or(0),
                parent.blob_gas_used.unwrap_or(0),
                parent.base_fee_per_gas.unwrap_or(0),
            )
        }),
        requests_hash: rules
            .is_active(Hardfork::Prague)
            .then_some(alloy_eips::eip7685::EMPTY_REQUESTS_HASH),
        ..Default::default()
    };
    let credits = rules.end_of_block_credits(&header, &[], &[]);
    Ok(ChildHeader {
        header,
        parent_state_root: parent.state_root,
        credits,
    })
}

struct ChildHeader {
    header: Header,
    parent_state_root: B256,
    credits: Vec<(Address, U256)>,
}

/// Fills in the roots and totals that execution determined and assembles the batch.
fn seal_roots<S: StateReader + ?Sized>(
    config: &ChainConfig,
    store: &S,
    mut header: Header,
    parent_state_root: B256,
    output: ExecutionOutput,
    transactions: Vec<Transaction>,
    senders: Vec<Address>,
) -> Result<BlockBatch, BlockError> {
    let cancun = header.parent_beacon_block_root.is_some();
    let withdrawals = header.withdrawals_root.map(|_| Default::default());
    header.gas_used = output.gas_used;
    header.blob_gas_used = cancun.then_some(output.blob_gas_used);
    header.logs_bloom = output.logs_bloom();
    header.receipts_root = healthchain_trie::ordered_trie_root(
        output.receipts.iter().map(Encodable2718::encoded_2718),
    );
    header.transactions_root =
        healthchain_trie::ordered_trie_root(transactions.iter().map(Encodable2718::encoded_2718));
    let (state_root, state) = apply_state_changes(store, parent_state_root, output.changes)?;
    header.state_root = state_root;
    let hash = crate::block_hash(config, &header)?;
    Ok(BlockBatch {
        header,
        hash,
        body: BlockBody {
            transactions,
            ommers: Vec::new(),
            withdrawals,
        },
        senders,
        receipts: output.receipts,
        state,
    })
}
