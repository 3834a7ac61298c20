//! Block execution over revm: header validation, sender recovery (once per block),
//! transaction execution, receipts, state root, and the [`BlockBatch`] that storage commits.
//!
//! Pure crate: state is read through `healthchain-storage-api` traits. A rejected block is an
//! [`BlockError`] and leaves the store untouched; a reverted transaction is a status-0
//! receipt, not an error.

mod build;
mod call;
mod db;
mod error;
mod execute;
mod rules;
mod validate;

pub use build::{BlockTemplate, build_block, build_block_from};
pub use call::{AccountOverride, CallError, CallOptions, ViewError, call, view_at_head};
pub use db::{DbError, StateDb};
pub use error::BlockError;
pub use execute::{
    ExecutionOutput, SkippedTransaction, TransactionSource, apply_state_changes, block_env,
    execute_selected, execute_transactions, tx_env,
};
pub use rules::{BlockRules, blob_params, spec_id};
pub use validate::{
    block_hash, recover_senders, recover_senders_with, validate_body, validate_header,
};

use alloy_primitives::B256;
use healthchain_chainspec::{ChainConfig, Genesis};
use healthchain_primitives::{Block, BlockBody, RecoveredBlock};
use healthchain_storage_api::{BlockBatch, BlockReader, StateChanges, StateReader, StorageChange};
use healthchain_trie::{MemoryNodes, TrieOverlay, apply_changes};

/// The batch that writes a genesis block and its allocation into an empty store.
pub fn genesis_batch(genesis: &Genesis) -> Result<BlockBatch, BlockError> {
    let (state_root, state) = genesis_state(&genesis.alloc)?;
    let header = genesis.header_with_state_root(state_root);
    let hash = header.hash_slow();
    let withdrawals = header.withdrawals_root.map(|_| Default::default());
    Ok(BlockBatch {
        header,
        hash,
        body: BlockBody {
            transactions: Vec::new(),
            ommers: Vec::new(),
            withdrawals,
        },
        senders: Vec::new(),
        receipts: Vec::new(),
        state,
    })
}

/// The state root and writes of a genesis allocation.
pub fn genesis_state(
    alloc: &std::collections::BTreeMap<
        alloy_primitives::Address,
        healthchain_chainspec::GenesisAccount,
    >,
) -> Result<(B256, StateChanges), BlockError> {
    let source = MemoryNodes::default();
    let mut overlay = TrieOverlay::new(&source);
    let mut state = StateChanges::default();
    let mut account_updates = Vec::with_capacity(alloc.len());
    for (address, alloc) in alloc {
        let slots: Vec<_> = alloc.storage.iter().map(|(k, v)| (*k, *v)).collect();
        let storage_root = apply_changes(
            &mut overlay,
            healthchain_trie::EMPTY_ROOT,
            slots
                .iter()
                .map(|(k, v)| (alloy_primitives::keccak256(k), Some(alloy_rlp::encode(v)))),
        )?;
        let account = healthchain_primitives::Account {
            storage_root,
            ..alloc.trie_account()
        };
        if !slots.is_empty() {
            state.storage.push(StorageChange {
                address: *address,
                wiped: false,
                slots,
            });
        }
        if !alloc.code.is_empty() {
            state
                .bytecodes
                .push((account.code_hash, alloc.code.clone()));
        }
        account_updates.push((
            alloy_primitives::keccak256(address),
            Some(alloy_rlp::encode(account)),
        ));
        state.accounts.push((*address, Some(account)));
    }
    let state_root = apply_changes(&mut overlay, healthchain_trie::EMPTY_ROOT, account_updates)?;
    state.trie_nodes = overlay.into_nodes().collect();
    state.trie_nodes.sort_unstable_by_key(|(hash, _)| *hash);
    Ok((state_root, state))
}

/// Validates and executes `block` as the child of the store's head, returning the batch to
/// commit. Nothing is written: on error the chain is unchanged.
pub fn execute_block<S: StateReader + BlockReader + ?Sized>(
    config: &ChainConfig,
    store: &S,
    block: Block,
) -> Result<BlockBatch, BlockError> {
    let recovered = recover_senders(config, block)?;
    execute_recovered(config, store, recovered)
}

/// [`execute_block`] for a block whose senders are already recovered.
pub fn execute_recovered<S: StateReader + BlockReader + ?Sized>(
    config: &ChainConfig,
    store: &S,
    recovered: RecoveredBlock,
) -> Result<BlockBatch, BlockError> {
    let RecoveredBlock {
        block,
        hash,
        senders,
    } = recovered;
    let head = store.head()?;
    let parent = match head {
        Some((_, head_hash)) if head_hash == block.header.parent_hash => {
            store.header(head_hash)?.ok_or(BlockError::UnknownParent {
                parent: block.header.parent_hash,
                head,
            })?
        }
        _ => {
            return Err(BlockError::UnknownParent {
                parent: block.header.parent_hash,
                head,
            });
        }
    };
    validate_header(config, &parent, &block.header)?;
    validate_body(config, &block)?;

    let header = &block.header;
    let credits = BlockRules::new(config, header.number, header.timestamp).end_of_block_credits(
        header,
        &block.body.ommers,
        block
            .body
            .withdrawals
            .as_deref()
            .map(|w| w.as_slice())
            .unwrap_or_default(),
    );
    let output = execute_transactions(
        config,
        store,
        header,
        &block.body.transactions,
        &senders,
        &credits,
    )?;
    check(header.gas_used, output.gas_used, "gasUsed")?;
    if let Some(blob_gas_used) = header.blob_gas_used {
        check(blob_gas_used, output.blob_gas_used, "blobGasUsed")?;
    }
    let receipts_root = healthchain_trie::ordered_trie_root(
        output
            .receipts
            .iter()
            .map(alloy_eips::eip2718::Encodable2718::encoded_2718),
    );
    check(header.receipts_root, receipts_root, "receiptsRoot")?;
    check(header.logs_bloom, output.logs_bloom(), "logsBloom")?;

    let (state_root, state) = apply_state_changes(store, parent.state_root, output.changes)?;
    check(header.state_root, state_root, "stateRoot")?;

    let Block { header, body } = block;
    Ok(BlockBatch {
        header,
        hash,
        body,
        senders,
        receipts: output.receipts,
        state,
    })
}

fn check<T: PartialEq + core::fmt::Display>(
    got: T,
    expected: T,
    field: &'static str,
) -> Result<(), BlockError> {
    if got == expected {
        Ok(())
    } else {
        Err(BlockError::mismatch(field, got, expected))
    }
}
