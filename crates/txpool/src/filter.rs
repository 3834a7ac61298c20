//! The hook account permissioning plugs into: which senders may have their transactions
//! pooled, put in a block, or accepted in an imported block.

use alloy_primitives::Address;
use healthchain_primitives::Transaction;

/// Where a transaction is being checked (Besu's `TransactionValidationParams`: local
/// allowlists apply to the first two only, on-chain rules to all three).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckPoint {
    /// Admission to the pool, from JSON-RPC or a peer.
    Pool,
    /// Selection into a block this node proposes.
    BlockBuilding,
    /// A block proposed by another validator or imported from a peer: consensus-critical.
    BlockImport,
}

/// Decides whether `sender` may send `tx`. Implementations read the chain head's state.
pub trait TransactionFilter: Send + Sync {
    /// Whether the transaction is permitted at `at`.
    fn permitted(&self, tx: &Transaction, sender: Address, at: CheckPoint) -> bool;
}
