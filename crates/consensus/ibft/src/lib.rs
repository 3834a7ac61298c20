//! IBFT 2.0 consensus as Hyperledger Besu implements it, as pure code.
//!
//! - [`messages`]: Proposal, Prepare, Commit and RoundChange with Besu's payloads, signing
//!   hash and wire layout (pre-26.1 by default), certificates included.
//! - [`rules`]: proposer selection, the proposal/block consistency rule, prepared and
//!   round-change certificates, the re-proposal rule.
//! - [`machine`]: the per-height state machine [`Ibft`]: inputs in, outputs out. It reads no
//!   clock, does no IO and draws no randomness; timers, block building and validation,
//!   persistence, broadcast and import are outputs the host (the engine) carries out.
//! - [`votes`]: validator-set changes by header votes, the epoch reset, the local vote
//!   proposals and signer metrics behind the `ibft_*` JSON-RPC methods.
//! - [`validation`]: the IBFT header rules and commit-seal checks used at import.
//! - [`record`]: what a validator persists before sending, to stay safe across restarts.
//!
//! The extraData codec and the block-hash/commit-seal hashing rules live in
//! `healthchain_primitives::ibft`, since execution and storage need them too. The protocol
//! as implemented, and where it deliberately differs from Besu, is in `docs/consensus.md`.
//! Pure crate: no tokio, libp2p, MDBX or jsonrpsee.

pub mod crypto;
mod future;
pub mod machine;
pub mod messages;
pub mod record;
pub mod rules;
pub mod types;
pub mod validation;
pub mod votes;

pub use crypto::{InvalidKey, NodeKey};
pub use machine::{
    BlockPeriod, ChainHead, CommittedBlock, Ibft, IbftConfig, Input, Output, Rejection,
    RoundReason, TimerAt, Verdict,
};
pub use messages::{Message, MessageError, WireLayout};
pub use record::{PreparedArtifacts, VoteRecord};
pub use types::{Height, Round, RoundId, max_faulty, quorum};
