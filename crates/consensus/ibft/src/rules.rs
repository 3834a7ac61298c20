//! The pure rules the state machine applies to one height: proposer selection (§5.2), the
//! proposal/block consistency rule (§4.5-5), prepared certificates and round-change
//! certificates (§4.5-4 and the RoundChange rules), and the re-proposal rule (§5.6).

use alloy_primitives::{Address, B256};
use healthchain_primitives::{
    Block,
    ibft::{IbftCodecError, IbftExtraData, commit_seal_digest},
};

use crate::{
    messages::{
        PreparedCertificate, RoundChange, RoundChangeCertificate, RoundChangePayload, Signed,
    },
    types::{Height, Round, RoundId, quorum},
};

/// Why a certificate or proposed block was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// The block's extraData does not decode.
    #[error("proposed block: {0}")]
    ExtraData(#[from] IbftCodecError),
    /// `digest != commitSealHash(block)`.
    #[error("digest does not match the block's commit-seal hash")]
    Digest,
    /// `block.number != height`.
    #[error("block number {got} is not the height {expected}")]
    Number {
        /// The block's number.
        got: u64,
        /// The height.
        expected: u64,
    },
    /// `extraData.round != round`.
    #[error("block round {got} is not the message round {expected}")]
    BlockRound {
        /// The block's round.
        got: u32,
        /// The message's round.
        expected: u32,
    },
    /// A prepared certificate breaks a rule.
    #[error("prepared certificate: {0}")]
    Prepared(&'static str),
    /// A round-change certificate breaks a rule.
    #[error("round-change certificate: {0}")]
    RoundChangeCertificate(&'static str),
    /// A round change carries a block without a certificate or the reverse.
    #[error("round change: a block is present exactly when a prepared certificate is")]
    BlockWithoutCertificate,
    /// The body does not match the header's transactions root, ommers hash or withdrawals
    /// root: the signatures cover only the header, so a relay may have swapped it.
    #[error("block body does not match its header ({0})")]
    Body(&'static str),
}

/// HC: the body a proposal or round change carries matches its header's commitments. The
/// signed digest covers only the header, so without this a relay (or a byzantine sender of
/// round changes) could attach another body and make honest validators reject the block.
pub fn check_body(block: &Block) -> Result<(), RuleError> {
    use alloy_consensus::proofs::{
        calculate_ommers_root, calculate_transaction_root, calculate_withdrawals_root,
    };
    let header = &block.header;
    let body = &block.body;
    if calculate_transaction_root(&body.transactions) != header.transactions_root {
        return Err(RuleError::Body("transactions root"));
    }
    if calculate_ommers_root(&body.ommers) != header.ommers_hash {
        return Err(RuleError::Body("ommers hash"));
    }
    let withdrawals_root = body
        .withdrawals
        .as_ref()
        .map(|w| calculate_withdrawals_root(w));
    if withdrawals_root != header.withdrawals_root {
        return Err(RuleError::Body("withdrawals root"));
    }
    Ok(())
}

/// The proposer of `round` (`BftProposerSelector` with `changeEachBlock = true`):
/// `validators` ascending, `previous` the coinbase of the parent block.
///
/// If the previous proposer is a validator, the next one after it (plus the round);
/// otherwise the first validator above it (wrapping), plus the round and **no** +1.
pub fn proposer(validators: &[Address], previous: Address, round: Round) -> Option<Address> {
    let n = validators.len();
    if n == 0 {
        return None;
    }
    let base = match validators.binary_search(&previous) {
        Ok(index) => index + 1,
        Err(above) => above % n,
    };
    let index = (base as u64 + u64::from(round.0)) % n as u64;
    validators.get(index as usize).copied()
}

/// The validator set and parent a height is agreed on, with the derived values.
#[derive(Debug, Clone)]
pub struct HeightContext {
    /// The height.
    pub height: Height,
    /// The parent's hash (on-chain form).
    pub parent_hash: B256,
    /// The parent's coinbase: the previous proposer.
    pub previous_proposer: Address,
    /// The validators for this height, ascending.
    pub validators: Vec<Address>,
    /// `quorum(validators.len())`.
    pub quorum: usize,
}

impl HeightContext {
    /// The context for `height` with `validators` (sorted and deduplicated here).
    pub fn new(
        height: Height,
        parent_hash: B256,
        previous_proposer: Address,
        mut validators: Vec<Address>,
    ) -> Self {
        validators.sort();
        validators.dedup();
        let quorum = quorum(validators.len());
        Self {
            height,
            parent_hash,
            previous_proposer,
            validators,
            quorum,
        }
    }

    /// Whether `address` validates this height.
    pub fn is_validator(&self, address: &Address) -> bool {
        self.validators.binary_search(address).is_ok()
    }

    /// The proposer of `round` at this height.
    pub fn proposer(&self, round: Round) -> Option<Address> {
        proposer(&self.validators, self.previous_proposer, round)
    }

    /// `ProposalBlockConsistencyValidator`: the digest is the block's commit-seal hash, the
    /// block is at this height and its extraData names `round`.
    pub fn check_block(&self, block: &Block, digest: B256, round: Round) -> Result<(), RuleError> {
        if block.header.number != self.height.0 {
            return Err(RuleError::Number {
                got: block.header.number,
                expected: self.height.0,
            });
        }
        let extra = IbftExtraData::of(&block.header)?;
        if extra.round != round.0 {
            return Err(RuleError::BlockRound {
                got: extra.round,
                expected: round.0,
            });
        }
        if commit_seal_digest(&block.header)? != digest {
            return Err(RuleError::Digest);
        }
        Ok(())
    }

    /// A prepared certificate carried in a RoundChange for `target`: the proposal is at this
    /// height, below the target round, from that round's proposer, with quorum − 1 prepares
    /// from distinct validators other than the proposer, all for the same round and digest.
    pub fn check_prepared(
        &self,
        pc: &PreparedCertificate,
        target: RoundId,
    ) -> Result<(), RuleError> {
        let proposal = pc.proposal.payload();
        if proposal.id.height != self.height || proposal.id.height != target.height {
            return Err(RuleError::Prepared("proposal is for another height"));
        }
        if proposal.id.round >= target.round {
            return Err(RuleError::Prepared(
                "prepared round is not below the target round",
            ));
        }
        let proposer = self.proposer(proposal.id.round);
        if proposer != Some(pc.proposal.author()) {
            return Err(RuleError::Prepared(
                "proposal is not from that round's proposer",
            ));
        }
        let mut authors: Vec<Address> = Vec::with_capacity(pc.prepares.len());
        for prepare in &pc.prepares {
            let author = prepare.author();
            if !self.is_validator(&author) {
                return Err(RuleError::Prepared("prepare from a non-validator"));
            }
            if Some(author) == proposer {
                return Err(RuleError::Prepared("prepare from the proposer"));
            }
            if prepare.payload().id != proposal.id || prepare.payload().digest != proposal.digest {
                return Err(RuleError::Prepared("prepare for another round or digest"));
            }
            if authors.contains(&author) {
                return Err(RuleError::Prepared("two prepares from one validator"));
            }
            authors.push(author);
        }
        if authors.len() + 1 < self.quorum {
            return Err(RuleError::Prepared("fewer than quorum - 1 prepares"));
        }
        Ok(())
    }

    /// A RoundChange message (`RoundChangeMessageValidator`): its prepared certificate, if
    /// any, is valid and the attached block is the prepared one.
    pub fn check_round_change(&self, rc: &RoundChange) -> Result<(), RuleError> {
        let payload = rc.signed.payload();
        match (&payload.prepared, &rc.block) {
            (None, None) => Ok(()),
            (Some(pc), Some(block)) => {
                self.check_prepared(pc, payload.id)?;
                self.check_block(block, pc.digest(), pc.round())?;
                check_body(block)
            }
            _ => Err(RuleError::BlockWithoutCertificate),
        }
    }

    /// A round-change certificate justifying a proposal of `block` for `id`
    /// (`RoundChangeCertificateValidator`): quorum RoundChanges from distinct validators,
    /// all targeting `id`, each with a valid certificate; and if any carries a prepared
    /// certificate, the block must be the one of the highest (first on ties), with only its
    /// round changed.
    pub fn check_round_change_certificate(
        &self,
        rcc: &RoundChangeCertificate,
        id: RoundId,
        block: &Block,
    ) -> Result<(), RuleError> {
        let mut authors: Vec<Address> = Vec::with_capacity(rcc.round_changes.len());
        for rc in &rcc.round_changes {
            let author = rc.author();
            if !self.is_validator(&author) {
                return Err(RuleError::RoundChangeCertificate(
                    "round change from a non-validator",
                ));
            }
            if authors.contains(&author) {
                return Err(RuleError::RoundChangeCertificate(
                    "two round changes from one validator",
                ));
            }
            authors.push(author);
            if rc.payload().id != id {
                return Err(RuleError::RoundChangeCertificate(
                    "round change for another round",
                ));
            }
            if let Some(pc) = &rc.payload().prepared {
                self.check_prepared(pc, id)?;
            }
        }
        if authors.len() < self.quorum {
            return Err(RuleError::RoundChangeCertificate(
                "fewer than quorum round changes",
            ));
        }
        if let Some(best) = best_prepared(rcc.round_changes.iter().map(Signed::payload)) {
            let reproposed = with_round(block, best.round())?;
            if commit_seal_digest(&reproposed.header)? != best.digest() {
                return Err(RuleError::RoundChangeCertificate(
                    "block is not the one of the highest prepared certificate",
                ));
            }
        }
        Ok(())
    }
}

/// The prepared certificate with the highest round among `round_changes`, the first one
/// on ties (`RoundChangeArtifacts.create`, `RoundChangeCertificateValidator`).
pub fn best_prepared<'a>(
    round_changes: impl IntoIterator<Item = &'a RoundChangePayload>,
) -> Option<&'a PreparedCertificate> {
    let mut best: Option<&PreparedCertificate> = None;
    for pc in round_changes
        .into_iter()
        .filter_map(|rc| rc.prepared.as_ref())
    {
        if best.is_none_or(|b| pc.round() > b.round()) {
            best = Some(pc);
        }
    }
    best
}

/// `block` with only the extraData round replaced (`BftBlockInterface.replaceRoundInBlock`):
/// the digest changes, the on-chain hash does not.
pub fn with_round(block: &Block, round: Round) -> Result<Block, IbftCodecError> {
    let mut extra = IbftExtraData::of(&block.header)?;
    extra.round = round.0;
    let mut out = block.clone();
    out.header.extra_data = extra.encode();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(n: u8) -> Address {
        Address::with_last_byte(n)
    }

    #[test]
    fn proposer_follows_the_previous_one() {
        let v = [a(2), a(4), a(6), a(8)];
        // Previous proposer is a validator: the next one, plus the round.
        assert_eq!(proposer(&v, a(4), Round(0)), Some(a(6)));
        assert_eq!(proposer(&v, a(4), Round(1)), Some(a(8)));
        assert_eq!(proposer(&v, a(4), Round(2)), Some(a(2)));
        assert_eq!(proposer(&v, a(8), Round(0)), Some(a(2)));
        // Previous proposer is not a validator: the first above it, no +1.
        assert_eq!(proposer(&v, a(5), Round(0)), Some(a(6)));
        assert_eq!(proposer(&v, a(5), Round(3)), Some(a(4)));
        assert_eq!(proposer(&v, a(9), Round(0)), Some(a(2)));
        assert_eq!(proposer(&v, Address::ZERO, Round(0)), Some(a(2)));
        assert_eq!(
            proposer(&v, Address::ZERO, Round(u32::MAX)),
            Some(v[u32::MAX as usize % 4])
        );
        assert_eq!(proposer(&[], a(1), Round(0)), None);
    }
}
