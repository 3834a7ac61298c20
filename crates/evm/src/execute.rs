//! Transaction execution over revm and the state-root computation that follows it.

use alloy_consensus::{
    Eip658Value, Receipt as ReceiptBody, ReceiptWithBloom, Transaction as _, TxReceipt, TxType,
    Typed2718,
};
use alloy_eips::eip4788::BEACON_ROOTS_ADDRESS;
use alloy_primitives::{Address, B256, Bloom, U256, keccak256};
use healthchain_chainspec::{ChainConfig, Hardfork};
use healthchain_primitives::{Account, Header, Receipt, Transaction};
use healthchain_storage_api::{BlockReader, StateChanges, StateNodes, StateReader, StorageChange};
use healthchain_trie::{EMPTY_ROOT, TrieOverlay, apply_changes};
use revm::database::{OriginalValuesKnown, states::StateChangeset};
use revm::{
    Context, Database, DatabaseCommit, ExecuteCommitEvm, MainBuilder, MainContext,
    SystemCallCommitEvm,
    context::{BlockEnv, TxEnv},
    context_interface::block::BlobExcessGasAndPrice,
    context_interface::either::Either,
    database::{State, StateBuilder, states::bundle_state::BundleRetention},
    database_interface::WrapDatabaseRef,
};

use crate::{
    BlockError,
    db::{StateDb, storage_error},
    rules::{BlockRules, blob_params, spec_id},
};

/// What executing a block's transactions produced, before the state root is computed.
#[derive(Debug)]
pub struct ExecutionOutput {
    /// One receipt per transaction.
    pub receipts: Vec<Receipt>,
    /// Total gas used.
    pub gas_used: u64,
    /// Total blob gas used.
    pub blob_gas_used: u64,
    /// Net state changes of the block.
    pub changes: StateChangeset,
}

impl ExecutionOutput {
    /// The block's logs bloom: the union of the receipts' blooms.
    pub fn logs_bloom(&self) -> Bloom {
        self.receipts
            .iter()
            .fold(Bloom::ZERO, |acc, r| acc | r.bloom())
    }
}

/// revm's transaction environment for a signed transaction and its recovered sender.
pub fn tx_env(tx: &Transaction, sender: Address) -> TxEnv {
    TxEnv {
        tx_type: tx.ty(),
        caller: sender,
        gas_limit: tx.gas_limit(),
        // For legacy and access-list transactions this is the gas price.
        gas_price: tx.max_fee_per_gas(),
        kind: tx.kind(),
        value: tx.value(),
        data: tx.input().clone(),
        nonce: tx.nonce(),
        chain_id: tx.chain_id(),
        access_list: tx.access_list().cloned().unwrap_or_default(),
        gas_priority_fee: tx.max_priority_fee_per_gas(),
        blob_hashes: tx
            .blob_versioned_hashes()
            .map(<[B256]>::to_vec)
            .unwrap_or_default(),
        max_fee_per_blob_gas: tx.max_fee_per_blob_gas().unwrap_or_default(),
        authorization_list: tx
            .authorization_list()
            .map(|list| list.iter().cloned().map(Either::Left).collect())
            .unwrap_or_default(),
    }
}

/// Sets revm's configuration for the chain and the block's fork.
pub(crate) fn configure(
    cfg: &mut revm::context::CfgEnv,
    config: &ChainConfig,
    rules: &BlockRules<'_>,
) {
    cfg.spec = spec_id(rules.fork);
    cfg.chain_id = config.chain_id;
    cfg.limit_contract_code_size = config.contract_size_limit;
    if let Some(limit) = config.contract_size_limit {
        // EIP-3860 ties the init code limit to twice the code size limit.
        cfg.limit_contract_initcode_size = Some(limit.saturating_mul(2));
    }
}

/// revm's block environment for a header.
pub fn block_env(rules: &BlockRules<'_>, header: &Header) -> BlockEnv {
    let blob = blob_params(rules.fork).map(|params| {
        BlobExcessGasAndPrice::new(
            header.excess_blob_gas.unwrap_or_default(),
            u64::try_from(params.update_fraction).unwrap_or(u64::MAX),
        )
    });
    BlockEnv {
        number: U256::from(header.number),
        beneficiary: header.beneficiary,
        timestamp: U256::from(header.timestamp),
        gas_limit: header.gas_limit,
        basefee: header.base_fee_per_gas.unwrap_or_default(),
        difficulty: header.difficulty,
        // After the merge DIFFICULTY reads PREVRANDAO, carried in mixHash (EIP-4399).
        prevrandao: rules.is_active(Hardfork::Paris).then_some(header.mix_hash),
        blob_excess_gas_and_price: blob,
        ..Default::default()
    }
}

/// Executes `transactions` (with their recovered `senders`) on top of the store's head
/// state, then applies the end-of-block `credits` (see [`BlockRules::end_of_block_credits`]).
/// Reads only; returns the changes.
pub fn execute_transactions<S: StateReader + BlockReader + ?Sized>(
    config: &ChainConfig,
    store: &S,
    header: &Header,
    transactions: &[Transaction],
    senders: &[Address],
    credits: &[(Address, U256)],
) -> Result<ExecutionOutput, BlockError> {
    let (output, _) = execute_inner(
        config,
        store,
        header,
        Selection::Strict(transactions, senders),
        credits,
    )?;
    Ok(output)
}

/// Candidate transactions for a block being built, best first (the pool's ordering).
pub trait TransactionSource {
    /// The next candidate and its sender, or `None` when the builder should stop.
    fn next_transaction(&mut self) -> Option<(Transaction, Address)>;
    /// The last candidate was left out; `invalid` says whether it can never be included
    /// on this state (bad nonce, balance, ...) rather than merely not fitting the block.
    /// Either way no later transaction of the same sender can follow it in this block.
    fn skip_sender(&mut self, sender: Address, hash: B256, invalid: Option<String>);
}

/// A transaction the builder could not include.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedTransaction {
    /// Its hash.
    pub hash: B256,
    /// Its sender.
    pub sender: Address,
    /// Why it is invalid on this state; `None` if it only did not fit the block's gas.
    pub invalid: Option<String>,
}

/// Executes candidates from `source` in order as the transactions of `header`, leaving out
/// any that are invalid or do not fit the remaining gas (reported through
/// [`TransactionSource::skip_sender`]). Returns the output and the included transactions
/// with their senders.
pub fn execute_selected<S: StateReader + BlockReader + ?Sized>(
    config: &ChainConfig,
    store: &S,
    header: &Header,
    source: &mut dyn TransactionSource,
    credits: &[(Address, U256)],
) -> Result<(ExecutionOutput, Vec<Transaction>, Vec<Address>), BlockError> {
    let (output, included) =
        execute_inner(config, store, header, Selection::Select(source), credits)?;
    let (transactions, senders) = included.into_iter().unzip();
    Ok((output, transactions, senders))
}

enum Selection<'a> {
    /// Import: every transaction must be valid.
    Strict(&'a [Transaction], &'a [Address]),
    /// Build: take what is valid and fits.
    Select(&'a mut dyn TransactionSource),
}

/// Cheapest possible transaction: once less gas than this remains, building stops.
const MIN_TX_GAS: u64 = 21_000;

fn execute_inner<S: StateReader + BlockReader + ?Sized>(
    config: &ChainConfig,
    store: &S,
    header: &Header,
    mut selection: Selection<'_>,
    credits: &[(Address, U256)],
) -> Result<(ExecutionOutput, Vec<(Transaction, Address)>), BlockError> {
    let rules = BlockRules::new(config, header.number, header.timestamp);
    let mut state = StateBuilder::new()
        .with_database(WrapDatabaseRef(StateDb::new(store)))
        .with_bundle_update()
        .build();

    let mut receipts = match &selection {
        Selection::Strict(transactions, _) => Vec::with_capacity(transactions.len()),
        Selection::Select(_) => Vec::new(),
    };
    let mut gas_used = 0u64;
    let mut blob_gas_used = 0u64;
    let included = {
        let mut evm = Context::mainnet()
            .with_db(&mut state)
            .modify_cfg_chained(|cfg| configure(cfg, config, &rules))
            .with_block(block_env(&rules, header))
            .build_mainnet();

        // EIP-4788: store the parent beacon block root before any transaction.
        if let Some(root) = header
            .parent_beacon_block_root
            .filter(|_| rules.is_active(Hardfork::Cancun) && header.number > 0)
        {
            let has_code = evm
                .ctx
                .journaled_state
                .database
                .basic(BEACON_ROOTS_ADDRESS)
                .map_err(storage_error)?
                .is_some_and(|info| !info.is_empty_code_hash());
            if has_code {
                evm.system_call_commit(BEACON_ROOTS_ADDRESS, root.0.into())
                    .map_err(|e| match e {
                        revm::context::result::EVMError::Database(db) => storage_error(db),
                        other => BlockError::SystemCall {
                            contract: BEACON_ROOTS_ADDRESS,
                            reason: other.to_string(),
                        },
                    })?;
            }
        }

        let mut included = Vec::new();
        let mut index = 0usize;
        loop {
            let available = header.gas_limit.saturating_sub(gas_used);
            let (tx, sender) = match &mut selection {
                Selection::Strict(transactions, senders) => {
                    let Some((tx, sender)) = transactions.get(index).zip(senders.get(index)) else {
                        break;
                    };
                    if tx.gas_limit() > available {
                        return Err(BlockError::BlockGasExceeded {
                            index,
                            needed: tx.gas_limit(),
                            available,
                        });
                    }
                    (std::borrow::Cow::Borrowed(tx), *sender)
                }
                Selection::Select(source) => {
                    if available < MIN_TX_GAS {
                        break;
                    }
                    let Some((tx, sender)) = source.next_transaction() else {
                        break;
                    };
                    if tx.gas_limit() > available {
                        source.skip_sender(sender, *tx.tx_hash(), None);
                        continue;
                    }
                    (std::borrow::Cow::Owned(tx), sender)
                }
            };
            let result = match evm.transact_commit(tx_env(&tx, sender)) {
                Ok(result) => result,
                Err(revm::context::result::EVMError::Transaction(reason))
                    if matches!(selection, Selection::Select(_)) =>
                {
                    if let Selection::Select(source) = &mut selection {
                        source.skip_sender(sender, *tx.tx_hash(), Some(reason.to_string()));
                    }
                    continue;
                }
                Err(e) => return Err(evm_error(index, *tx.tx_hash(), e)),
            };
            gas_used += result.tx_gas_used();
            blob_gas_used += tx.blob_gas_used().unwrap_or_default();
            let receipt = ReceiptBody {
                status: Eip658Value::Eip658(result.is_success()),
                cumulative_gas_used: gas_used,
                logs: result.into_logs(),
            };
            receipts.push(envelope(tx.tx_type(), ReceiptWithBloom::from(receipt)));
            if let std::borrow::Cow::Owned(tx) = tx {
                included.push((tx, sender));
            }
            index += 1;
        }
        included
    };

    credit_balances(&mut state, credits)?;

    state.merge_transitions(BundleRetention::PlainState);
    let changes = state.take_bundle().to_plain_state(OriginalValuesKnown::Yes);
    Ok((
        ExecutionOutput {
            receipts,
            gas_used,
            blob_gas_used,
            changes,
        },
        included,
    ))
}

fn envelope(ty: TxType, receipt: ReceiptWithBloom<ReceiptBody<alloy_primitives::Log>>) -> Receipt {
    match ty {
        TxType::Legacy => Receipt::Legacy(receipt),
        TxType::Eip2930 => Receipt::Eip2930(receipt),
        TxType::Eip1559 => Receipt::Eip1559(receipt),
        TxType::Eip4844 => Receipt::Eip4844(receipt),
        TxType::Eip7702 => Receipt::Eip7702(receipt),
    }
}

fn evm_error<E: core::fmt::Display>(
    index: usize,
    hash: B256,
    err: revm::context::result::EVMError<
        revm::database_interface::bal::EvmDatabaseError<crate::db::DbError>,
        E,
    >,
) -> BlockError {
    match err {
        revm::context::result::EVMError::Database(db) => storage_error(db),
        other => BlockError::InvalidTransaction {
            index,
            hash,
            reason: other.to_string(),
        },
    }
}

fn credit_balances<S: StateReader + BlockReader + ?Sized>(
    state: &mut State<WrapDatabaseRef<StateDb<'_, S>>>,
    credits: &[(Address, U256)],
) -> Result<(), BlockError> {
    for (address, amount) in credits.iter().filter(|(_, amount)| !amount.is_zero()) {
        let mut info = state
            .basic(*address)
            .map_err(storage_error)?
            .unwrap_or_default();
        info.balance = info
            .balance
            .checked_add(*amount)
            .ok_or(BlockError::BalanceOverflow { amount: *amount })?;
        let mut account = revm::state::Account::default().with_info(info);
        account.mark_touch();
        // One commit per credit: an address credited twice (ommer and withdrawal) reads
        // its first credit back through `basic` before the second.
        state.commit(revm::primitives::AddressMap::from_iter([(
            *address, account,
        )]));
    }
    Ok(())
}

/// Applies a block's state changes to the tries over the store's head state: returns the
/// new state root and the flat and trie writes for the block batch.
pub fn apply_state_changes<S: StateReader + ?Sized>(
    store: &S,
    parent_state_root: B256,
    changes: StateChangeset,
) -> Result<(B256, StateChanges), BlockError> {
    let nodes = StateNodes::new(store);
    let mut overlay = TrieOverlay::new(&nodes);

    let mut infos = std::collections::BTreeMap::new();
    for (address, info) in changes.accounts {
        infos.insert(address, Some(info));
    }
    let mut storage_by_address = std::collections::BTreeMap::new();
    for change in changes.storage {
        infos.entry(change.address).or_insert(None);
        storage_by_address.insert(change.address, change);
    }

    let mut out = StateChanges::default();
    let mut account_updates = Vec::with_capacity(infos.len());
    for (address, new_info) in infos {
        let current = store.account(address)?;
        // `None` here means "info unchanged": only storage changed.
        let info = match new_info {
            Some(info) => info,
            None => current.map(|a| revm::state::AccountInfo {
                balance: a.balance,
                nonce: a.nonce,
                code_hash: a.code_hash,
                code: None,
                ..Default::default()
            }),
        };
        let storage = storage_by_address.remove(&address);
        let Some(info) = info else {
            // Deleted (self-destruct or EIP-161 cleanup): storage goes with it.
            out.accounts.push((address, None));
            if current.is_some() {
                out.storage.push(StorageChange {
                    address,
                    wiped: true,
                    slots: Vec::new(),
                });
            }
            account_updates.push((keccak256(address), None));
            continue;
        };
        let wiped = storage.as_ref().is_some_and(|s| s.wipe_storage);
        let base_root = match (&current, wiped) {
            (Some(account), false) => account.storage_root,
            _ => EMPTY_ROOT,
        };
        let mut storage_root = base_root;
        if let Some(storage) = storage {
            let mut slots: Vec<(B256, U256)> = storage
                .storage
                .iter()
                .map(|(k, v)| (B256::from(*k), *v))
                .collect();
            slots.sort_unstable();
            storage_root = apply_changes(
                &mut overlay,
                base_root,
                slots.iter().map(|(slot, value)| {
                    (
                        keccak256(slot),
                        (!value.is_zero()).then(|| alloy_rlp::encode(value)),
                    )
                }),
            )?;
            if let Some(err) = nodes.take_error() {
                return Err(err.into());
            }
            out.storage.push(StorageChange {
                address,
                wiped,
                slots,
            });
        }
        let account = Account {
            nonce: info.nonce,
            balance: info.balance,
            storage_root,
            code_hash: info.code_hash,
        };
        account_updates.push((keccak256(address), Some(alloy_rlp::encode(account))));
        out.accounts.push((address, Some(account)));
    }

    let state_root = apply_changes(&mut overlay, parent_state_root, account_updates)?;
    if let Some(err) = nodes.take_error() {
        return Err(err.into());
    }
    out.bytecodes = changes
        .contracts
        .into_iter()
        .map(|(hash, code)| (hash, code.original_bytes()))
        .filter(|(_, code)| !code.is_empty())
        .collect();
    out.bytecodes.sort_unstable();
    // Sorted writes make batches deterministic and MDBX inserts sequential.
    out.trie_nodes = overlay.into_nodes().collect();
    out.trie_nodes.sort_unstable_by_key(|(hash, _)| *hash);
    Ok((state_root, out))
}
