//! Read-only execution for `eth_call` and `eth_estimateGas`: one transaction on top of a
//! block's state, optionally with overridden accounts, never committed.

use alloy_primitives::{Address, B256, Bytes, U256};
use healthchain_chainspec::ChainConfig;
use healthchain_primitives::Header;
use healthchain_storage_api::{BlockReader, StateReader, StorageError};
use revm::{
    Context, ExecuteEvm, MainBuilder, MainContext,
    bytecode::Bytecode,
    context::TxEnv,
    context::result::{EVMError, ExecutionResult, InvalidTransaction},
    database::CacheDB,
    database_interface::WrapDatabaseRef,
    state::AccountInfo,
};

use crate::{
    BlockRules,
    db::StateDb,
    execute::{block_env, configure},
};

/// Replacement state for one account during a call (`eth_call`'s state override).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountOverride {
    /// New balance.
    pub balance: Option<U256>,
    /// New nonce.
    pub nonce: Option<u64>,
    /// New runtime code.
    pub code: Option<Bytes>,
    /// Storage replaced wholesale: every slot not listed reads zero.
    pub state: Option<Vec<(B256, B256)>>,
    /// Storage slots changed; the others keep their values.
    pub state_diff: Option<Vec<(B256, B256)>>,
}

/// Options of a call that differ from block execution.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallOptions {
    /// Skip the balance check (Besu does when the call names no gas price).
    pub skip_balance_check: bool,
    /// Skip the base-fee check (a call with no gas price runs at price zero).
    pub skip_base_fee: bool,
}

/// Why a call produced no execution result.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The transaction is invalid on this state (nonce, balance, gas, ...).
    #[error("{0}")]
    Invalid(InvalidTransaction),
    /// The block environment is unusable.
    #[error("invalid block environment: {0}")]
    Header(String),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A state override's code is not valid bytecode (e.g. a malformed EIP-7702 delegation).
    #[error("invalid override code for {address}: {reason}")]
    InvalidOverrideCode {
        /// The overridden account.
        address: Address,
        /// Why revm refused the code.
        reason: String,
    },
}

/// Why a read-only call at the head returned no data.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// The store failed or has no head.
    #[error("state unavailable: {0}")]
    State(String),
    /// No code at the address.
    #[error("no contract at {0}")]
    NoContract(Address),
    /// The call reverted (its revert data).
    #[error("reverted {0}")]
    Reverted(Bytes),
    /// The call halted or could not run.
    #[error("failed: {0}")]
    Failed(String),
}

/// A read-only call from the zero address to `to` on the head block's state, with at most
/// `gas` (and never more than the head's gas limit): its return data. How the node asks
/// its own contracts (permissioning rules, record read rules); nothing is written.
pub fn view_at_head<S: StateReader + BlockReader + ?Sized>(
    config: &ChainConfig,
    store: &S,
    to: Address,
    data: Bytes,
    gas: u64,
) -> Result<Bytes, ViewError> {
    let state = |e: StorageError| ViewError::State(e.to_string());
    let (_, head) = store
        .head()
        .map_err(state)?
        .ok_or_else(|| ViewError::State("no head block".into()))?;
    let header = store
        .header(head)
        .map_err(state)?
        .ok_or_else(|| ViewError::State(format!("head header {head} missing")))?;
    if store.account(to).map_err(state)?.is_none() {
        return Err(ViewError::NoContract(to));
    }
    let tx = TxEnv {
        caller: Address::ZERO,
        gas_limit: gas.min(header.gas_limit),
        kind: revm::primitives::TxKind::Call(to),
        data,
        chain_id: Some(config.chain_id),
        ..Default::default()
    };
    let options = CallOptions {
        skip_balance_check: true,
        skip_base_fee: true,
    };
    match call(config, store, &header, tx, &[], options) {
        Ok(ExecutionResult::Success { output, .. }) => Ok(output.into_data()),
        Ok(ExecutionResult::Revert { output, .. }) => Err(ViewError::Reverted(output)),
        Ok(ExecutionResult::Halt { reason, .. }) => {
            Err(ViewError::Failed(format!("halted: {reason:?}")))
        }
        Err(err) => Err(ViewError::Failed(err.to_string())),
    }
}

/// Executes `tx` on the state `store` holds (the state after `header`'s block) in the
/// environment of `header`, with `overrides` applied first. Nothing is written.
pub fn call<S: StateReader + BlockReader + ?Sized>(
    config: &ChainConfig,
    store: &S,
    header: &Header,
    tx: TxEnv,
    overrides: &[(Address, AccountOverride)],
    options: CallOptions,
) -> Result<ExecutionResult, CallError> {
    let rules = BlockRules::new(config, header.number, header.timestamp);
    let mut db = CacheDB::new(WrapDatabaseRef(StateDb::new(store)));
    for (address, change) in overrides {
        apply_override(&mut db, *address, change)?;
    }
    let mut evm = Context::mainnet()
        .with_db(db)
        .modify_cfg_chained(|cfg| {
            configure(cfg, config, &rules);
            // A call runs whatever nonce the caller gives, like geth and Besu.
            cfg.disable_nonce_check = true;
            cfg.disable_balance_check = options.skip_balance_check;
            cfg.disable_base_fee = options.skip_base_fee;
            // Calls from contract addresses are allowed (EIP-3607 guards only real txs).
            cfg.disable_eip3607 = true;
        })
        .with_block(block_env(&rules, header))
        .build_mainnet();
    evm.transact_one(tx).map_err(|err| match err {
        EVMError::Transaction(reason) => CallError::Invalid(reason),
        EVMError::Header(reason) => CallError::Header(reason.to_string()),
        EVMError::Database(db) => CallError::Storage(db.0),
        EVMError::Custom(reason) => CallError::Header(reason),
        EVMError::CustomAny(reason) => CallError::Header(reason.to_string()),
    })
}

type CallDb<'a, S> = CacheDB<WrapDatabaseRef<StateDb<'a, S>>>;

fn apply_override<S: StateReader + BlockReader + ?Sized>(
    db: &mut CallDb<'_, S>,
    address: Address,
    change: &AccountOverride,
) -> Result<(), CallError> {
    let existing = db
        .load_account(address)
        .map_err(|e| CallError::Storage(e.0))?
        .info
        .clone();
    let mut info = AccountInfo {
        balance: change.balance.unwrap_or(existing.balance),
        nonce: change.nonce.unwrap_or(existing.nonce),
        ..existing
    };
    if let Some(code) = &change.code {
        let bytecode = Bytecode::new_raw_checked(code.clone()).map_err(|e| {
            CallError::InvalidOverrideCode {
                address,
                reason: e.to_string(),
            }
        })?;
        info.code_hash = bytecode.hash_slow();
        info.code = Some(bytecode);
    }
    db.insert_account_info(address, info);
    if let Some(state) = &change.state {
        let slots = state
            .iter()
            .map(|(slot, value)| (U256::from_be_bytes(slot.0), U256::from_be_bytes(value.0)));
        db.replace_account_storage(address, slots.collect())
            .map_err(|e| CallError::Storage(e.0))?;
    }
    for (slot, value) in change.state_diff.iter().flatten() {
        db.insert_account_storage(
            address,
            U256::from_be_bytes(slot.0),
            U256::from_be_bytes(value.0),
        )
        .map_err(|e| CallError::Storage(e.0))?;
    }
    Ok(())
}
