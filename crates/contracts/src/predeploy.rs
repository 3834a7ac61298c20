//! Genesis pre-deployment: runs constructors in revm on an empty state and returns the
//! runtime code and storage to place at fixed addresses in a genesis `alloc`, so a chain
//! starts with the contracts in place (no deployment transaction, same addresses on every
//! network built this way).

use alloy_primitives::{Address, B256, Bytes, TxKind, U256, address};
use alloy_sol_types::SolConstructor;
use revm::{
    Context, ExecuteEvm, MainBuilder, MainContext,
    context::TxEnv,
    context::result::{ExecutionResult, Output},
    database::{CacheDB, EmptyDB},
    primitives::hardfork::SpecId,
};

use crate::{Artifact, ArtifactError, HealthRegistry, PatientRecord};

/// Where genesis puts `HealthRegistry`.
pub const REGISTRY_ADDRESS: Address = address!("0x0000000000000000000000000000000000001001");
/// Where genesis puts `PatientRecord`.
pub const RECORDS_ADDRESS: Address = address!("0x0000000000000000000000000000000000001002");

/// The account that "runs" the constructors (it does not appear in the result).
const CONSTRUCTOR_CALLER: Address = address!("0x000000000000000000000000000000000000c0de");

/// A contract account for a genesis `alloc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PredeployedAccount {
    /// Name of the contract.
    pub name: &'static str,
    /// Address.
    pub address: Address,
    /// Runtime code, immutables filled in.
    pub code: Bytes,
    /// Non-zero storage slots after the constructor, ascending.
    pub storage: Vec<(B256, U256)>,
}

/// Why pre-deployment failed.
#[derive(Debug, thiserror::Error)]
pub enum PredeployError {
    /// An artifact is unreadable.
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    /// A constructor reverted or halted.
    #[error("the {name} constructor failed: {reason}")]
    Constructor {
        /// Contract.
        name: &'static str,
        /// revm's result.
        reason: String,
    },
    /// The admin address is zero or its identity commitment is zero.
    #[error("the ministry admin address and its identity commitment must be non-zero")]
    ZeroAdmin,
    /// Permissioning needs at least one admin.
    #[error("permissioning needs at least one admin")]
    NoPermissioningAdmins,
    /// A permissioning admin or allowed account is the zero address.
    #[error("a permissioning {list} entry is the zero address")]
    ZeroAddress {
        /// `admins` or `accounts`.
        list: &'static str,
    },
    /// A node id is not 128 lowercase hex characters.
    #[error("enode id {id:?} is not 128 lowercase hex characters (no 0x)")]
    InvalidEnodeId {
        /// The id given.
        id: String,
    },
    /// A node's host is empty or its port is 0.
    #[error("node {id}: host must be non-empty and port non-zero (got {host:?}:{port})")]
    InvalidNodeAddress {
        /// The node id.
        id: String,
        /// The host given.
        host: String,
        /// The port given.
        port: u16,
    },
}

/// Both contracts as genesis accounts: the registry with `admin` as its first ministry
/// admin (identity commitment `admin_ref`), and the record contract reading roles from
/// [`REGISTRY_ADDRESS`]. `timestamp` is the genesis timestamp (the admin's registration
/// time).
pub fn predeploy(
    admin: Address,
    admin_ref: B256,
    timestamp: u64,
) -> Result<Vec<PredeployedAccount>, PredeployError> {
    if admin.is_zero() || admin_ref.is_zero() {
        return Err(PredeployError::ZeroAdmin);
    }
    let registry = Artifact::registry()?;
    let records = Artifact::records()?;
    let registry_args = HealthRegistry::constructorCall {
        admin,
        adminRef: admin_ref,
    }
    .abi_encode();
    let records_args = PatientRecord::constructorCall {
        registry_: REGISTRY_ADDRESS,
    }
    .abi_encode();
    Ok(vec![
        construct(&registry, REGISTRY_ADDRESS, &registry_args, timestamp)?,
        construct(&records, RECORDS_ADDRESS, &records_args, timestamp)?,
    ])
}

/// [`predeploy`] as `alloc` entries of a genesis JSON (`{"0x…": {"balance", "code",
/// "storage"}}`).
pub fn predeploy_alloc_json(
    admin: Address,
    admin_ref: B256,
    timestamp: u64,
) -> Result<serde_json::Map<String, serde_json::Value>, PredeployError> {
    Ok(alloc_json(&predeploy(admin, admin_ref, timestamp)?))
}

/// Genesis `alloc` entries for pre-deployed accounts.
pub(crate) fn alloc_json(
    accounts: &[PredeployedAccount],
) -> serde_json::Map<String, serde_json::Value> {
    let mut alloc = serde_json::Map::new();
    for account in accounts {
        let storage: serde_json::Map<String, serde_json::Value> = account
            .storage
            .iter()
            .map(|(slot, value)| {
                (
                    slot.to_string(),
                    serde_json::Value::String(B256::from(*value).to_string()),
                )
            })
            .collect();
        alloc.insert(
            account.address.to_checksum(None),
            serde_json::json!({
                "comment": format!("{} (HealthChain genesis pre-deployment)", account.name),
                "balance": "0x0",
                "code": account.code.to_string(),
                "storage": storage,
            }),
        );
    }
    alloc
}

/// Runs `artifact`'s constructor with ABI-encoded `args` on an empty state and returns the
/// created account as if it lived at `at`.
pub(crate) fn construct(
    artifact: &Artifact,
    at: Address,
    args: &[u8],
    timestamp: u64,
) -> Result<PredeployedAccount, PredeployError> {
    let failed = |reason: String| PredeployError::Constructor {
        name: artifact.name,
        reason,
    };
    let mut data = artifact.bytecode.to_vec();
    data.extend_from_slice(args);
    let mut evm = Context::mainnet()
        .with_db(CacheDB::new(EmptyDB::default()))
        .modify_cfg_chained(|cfg| {
            cfg.spec = SpecId::CANCUN;
            cfg.disable_balance_check = true;
            cfg.disable_base_fee = true;
            cfg.disable_nonce_check = true;
        })
        .modify_block_chained(|block| {
            block.timestamp = U256::from(timestamp);
            block.gas_limit = 1_000_000_000;
        })
        .build_mainnet();
    let tx = TxEnv {
        caller: CONSTRUCTOR_CALLER,
        kind: TxKind::Create,
        data: data.into(),
        gas_limit: 100_000_000,
        gas_price: 0,
        ..Default::default()
    };
    let outcome = evm.transact(tx).map_err(|e| failed(e.to_string()))?;
    let created = match outcome.result {
        ExecutionResult::Success {
            output: Output::Create(_, Some(created)),
            ..
        } => created,
        other => return Err(failed(format!("{other:?}"))),
    };
    let account = outcome
        .state
        .get(&created)
        .ok_or_else(|| failed("no account was created".into()))?;
    let code = account
        .info
        .code
        .as_ref()
        .map(|c| c.original_bytes())
        .unwrap_or_default();
    let mut storage: Vec<(B256, U256)> = account
        .storage
        .iter()
        .filter(|(_, slot)| !slot.present_value.is_zero())
        .map(|(key, slot)| (B256::from(*key), slot.present_value))
        .collect();
    storage.sort_unstable();
    Ok(PredeployedAccount {
        name: artifact.name,
        address: at,
        code,
        storage,
    })
}
