//! HealthChain's chain data types: alloy's block, transaction and receipt types named once
//! for the whole workspace, plus the small additions alloy does not have.
//!
//! [`ibft`] holds the IBFT 2.0 header conventions (extraData codec, block hash, commit-seal
//! digest) that execution, storage and consensus all need.
//!
//! Pure crate.

pub mod ibft;
mod rlp;

pub use alloy_consensus::{Header, TrieAccount as Account, TxEnvelope as Transaction};
use alloy_primitives::{Address, B256};
pub use rlp::RlpItem;

/// A block with full transactions.
pub type Block = alloy_consensus::Block<Transaction>;
/// A block body: transactions, ommers and (from Shanghai) withdrawals.
pub type BlockBody = alloy_consensus::BlockBody<Transaction>;
/// A typed receipt with its bloom.
pub type Receipt = alloy_consensus::ReceiptEnvelope<alloy_primitives::Log>;

/// A block whose transaction senders have been recovered, each exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredBlock {
    /// The block.
    pub block: Block,
    /// keccak256 of the header RLP.
    pub hash: B256,
    /// The sender of each transaction, in order.
    pub senders: Vec<Address>,
}
