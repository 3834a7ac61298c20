//! revm's database interface over HealthChain's storage traits.

use alloy_primitives::{Address, B256};
use healthchain_storage_api::{BlockReader, StateReader, StorageError};
use revm::{
    DatabaseRef,
    bytecode::Bytecode,
    database_interface::DBErrorMarker,
    primitives::{KECCAK_EMPTY, StorageKey, StorageValue},
    state::AccountInfo,
};

/// A storage error seen by revm.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct DbError(#[from] pub StorageError);

impl DBErrorMarker for DbError {}

/// The latest state of a store, read by revm.
///
/// Reads the flat state, so it must only execute children of the store's head.
#[derive(Debug, Clone, Copy)]
pub struct StateDb<'a, S: ?Sized> {
    store: &'a S,
}

impl<'a, S: StateReader + BlockReader + ?Sized> StateDb<'a, S> {
    /// Wraps `store`.
    pub fn new(store: &'a S) -> Self {
        Self { store }
    }
}

impl<S: StateReader + BlockReader + ?Sized> DatabaseRef for StateDb<'_, S> {
    type Error = DbError;

    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, DbError> {
        Ok(self.store.account(address)?.map(|account| {
            AccountInfo {
                balance: account.balance,
                nonce: account.nonce,
                code_hash: account.code_hash,
                // Loaded lazily through `code_by_hash_ref`.
                code: None,
                ..Default::default()
            }
        }))
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, DbError> {
        if code_hash == KECCAK_EMPTY {
            return Ok(Bytecode::default());
        }
        let code = self.store.bytecode(code_hash)?.ok_or_else(|| {
            DbError(StorageError::Corrupt {
                table: "Bytecodes",
                reason: format!("code {code_hash} referenced by an account is missing"),
            })
        })?;
        Bytecode::new_raw_checked(code).map_err(|e| {
            DbError(StorageError::Corrupt {
                table: "Bytecodes",
                reason: format!("code {code_hash} is not valid bytecode: {e}"),
            })
        })
    }

    fn storage_ref(&self, address: Address, index: StorageKey) -> Result<StorageValue, DbError> {
        Ok(self.store.storage(address, B256::from(index))?)
    }

    fn block_hash_ref(&self, number: u64) -> Result<B256, DbError> {
        // BLOCKHASH only reaches the last 256 blocks, all canonical ancestors of the head.
        Ok(self.store.canonical_hash(number)?.unwrap_or_default())
    }
}

/// The storage error inside revm's database error wrapper.
pub(crate) fn storage_error(
    err: revm::database_interface::bal::EvmDatabaseError<DbError>,
) -> crate::BlockError {
    match err {
        revm::database_interface::bal::EvmDatabaseError::Database(db) => {
            crate::BlockError::Storage(db.0)
        }
        revm::database_interface::bal::EvmDatabaseError::Bal(bal) => crate::BlockError::Storage(
            StorageError::Database(format!("block access list: {bal:?}")),
        ),
    }
}
