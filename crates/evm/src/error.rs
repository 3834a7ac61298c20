//! Why a block was rejected.

use alloy_primitives::{B256, U256};
use healthchain_storage_api::StorageError;
use healthchain_trie::TrieError;

/// A block failed validation or execution. The chain is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// The parent is not the current head (or is unknown).
    #[error("unknown parent {parent}: the head is {head:?}")]
    UnknownParent {
        /// The block's parent hash.
        parent: B256,
        /// The current head.
        head: Option<(u64, B256)>,
    },
    /// A header field disagrees with the rules.
    #[error("invalid header field {field}: got {got}, expected {expected}")]
    InvalidHeader {
        /// Field name.
        field: &'static str,
        /// Value in the block.
        got: String,
        /// Value the rules require.
        expected: String,
    },
    /// A root or total computed from the block disagrees with its header.
    #[error("{field} mismatch: header has {got}, computed {expected}")]
    Mismatch {
        /// Which root or total.
        field: &'static str,
        /// Value in the header.
        got: String,
        /// Value computed.
        expected: String,
    },
    /// A transaction's signature does not recover a sender.
    #[error("transaction {index}: invalid signature: {reason}")]
    InvalidSignature {
        /// Index in the block.
        index: usize,
        /// Recovery error.
        reason: String,
    },
    /// A transaction cannot be included (nonce, balance, gas, chain id, ...).
    #[error("transaction {index} ({hash}) is invalid: {reason}")]
    InvalidTransaction {
        /// Index in the block.
        index: usize,
        /// Transaction hash.
        hash: B256,
        /// revm's reason.
        reason: String,
    },
    /// A system call (EIP-4788 beacon root) failed.
    #[error("system call to {contract} failed: {reason}")]
    SystemCall {
        /// The system contract.
        contract: alloy_primitives::Address,
        /// revm's reason.
        reason: String,
    },
    /// The transactions ask for more gas than the block allows.
    #[error("transaction {index} needs {needed} gas but only {available} remain in the block")]
    BlockGasExceeded {
        /// Index in the block.
        index: usize,
        /// Gas limit of the transaction.
        needed: u64,
        /// Gas left in the block.
        available: u64,
    },
    /// A balance credit overflowed.
    #[error("balance overflow crediting {amount}")]
    BalanceOverflow {
        /// The credit.
        amount: U256,
    },
    /// The block cannot be decoded.
    #[error("undecodable block: {0}")]
    Decode(String),
    /// Reading state failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Updating the trie failed.
    #[error(transparent)]
    Trie(#[from] TrieError),
}

impl BlockError {
    pub(crate) fn mismatch(
        field: &'static str,
        got: impl ToString,
        expected: impl ToString,
    ) -> Self {
        Self::Mismatch {
            field,
            got: got.to_string(),
            expected: expected.to_string(),
        }
    }

    pub(crate) fn header(field: &'static str, got: impl ToString, expected: impl ToString) -> Self {
        Self::InvalidHeader {
            field,
            got: got.to_string(),
            expected: expected.to_string(),
        }
    }
}
