//! Validator-set changes by header votes (ibft2.md §6): the tally across blocks with its
//! epoch reset, the node's own vote proposals (`ibft_proposeValidatorVote` and friends) and
//! the per-signer metrics `ibft_getSignerMetrics` reports.

use std::collections::{BTreeMap, BTreeSet};

use alloy_primitives::Address;
use healthchain_primitives::{
    Header,
    ibft::{IbftCodecError, IbftExtraData, Vote, VoteKind},
};

/// The validator set after some block, with the votes still pending (`VoteTally`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VoteTally {
    validators: BTreeSet<Address>,
    /// subject → voters who voted to add it.
    add: BTreeMap<Address, BTreeSet<Address>>,
    /// subject → voters who voted to drop it.
    drop: BTreeMap<Address, BTreeSet<Address>>,
}

impl VoteTally {
    /// A fresh tally: `validators` and no pending votes (the state after an epoch block).
    pub fn new(validators: impl IntoIterator<Item = Address>) -> Self {
        Self {
            validators: validators.into_iter().collect(),
            ..Self::default()
        }
    }

    /// The validators, ascending by address.
    pub fn validators(&self) -> Vec<Address> {
        self.validators.iter().copied().collect()
    }

    /// Whether `address` is a validator.
    pub fn is_validator(&self, address: &Address) -> bool {
        self.validators.contains(address)
    }

    /// Voters with a live vote to add `subject`.
    pub fn add_votes_for(&self, subject: &Address) -> impl Iterator<Item = &Address> {
        self.add.get(subject).into_iter().flatten()
    }

    /// Voters with a live vote to drop `subject`.
    pub fn drop_votes_for(&self, subject: &Address) -> impl Iterator<Item = &Address> {
        self.drop.get(subject).into_iter().flatten()
    }

    fn has_voted(&self, voter: &Address, subject: &Address, kind: VoteKind) -> bool {
        let votes = match kind {
            VoteKind::Add => &self.add,
            VoteKind::Drop => &self.drop,
        };
        votes.get(subject).is_some_and(|v| v.contains(voter))
    }

    /// Applies one vote (`VoteTally.addVote`).
    pub fn add_vote(&mut self, voter: Address, vote: Vote) {
        let subject = vote.recipient;
        // A voter has at most one live vote per subject: the new one replaces the other kind.
        let (to, from) = match vote.kind {
            VoteKind::Add => (&mut self.add, &mut self.drop),
            VoteKind::Drop => (&mut self.drop, &mut self.add),
        };
        to.entry(subject).or_default().insert(voter);
        if let Some(voters) = from.get_mut(&subject) {
            voters.remove(&voter);
        }
        // More than half of the current validators decide.
        let limit = self.validators.len() / 2 + 1;
        let count =
            |map: &BTreeMap<Address, BTreeSet<Address>>| map.get(&subject).map_or(0, BTreeSet::len);
        if count(&self.add) >= limit {
            self.validators.insert(subject);
            self.clear_votes_about(&subject);
        } else if count(&self.drop) >= limit {
            self.validators.remove(&subject);
            self.clear_votes_about(&subject);
            // A dropped validator's own votes no longer count.
            for voters in self.add.values_mut().chain(self.drop.values_mut()) {
                voters.remove(&subject);
            }
        }
    }

    fn clear_votes_about(&mut self, subject: &Address) {
        self.add.remove(subject);
        self.drop.remove(subject);
    }

    /// The tally after `header`, this being the tally after its parent: an epoch block
    /// (number divisible by `epoch_length`) resets to the validators its extraData lists and
    /// its own vote is ignored; any other block adds its vote, cast by its coinbase.
    pub fn after_block(&self, header: &Header, epoch_length: u64) -> Result<Self, IbftCodecError> {
        let extra = IbftExtraData::of(header)?;
        if epoch_length == 0 || header.number.is_multiple_of(epoch_length) {
            return Ok(Self::new(extra.validators));
        }
        let mut next = self.clone();
        if let Some(vote) = extra.vote {
            next.add_vote(header.beneficiary, vote);
        }
        Ok(next)
    }
}

/// This node's vote proposals, written into the blocks it proposes (`VoteProposer`). Not
/// persisted, as in Besu.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VoteProposer {
    proposals: BTreeMap<Address, VoteKind>,
    position: usize,
}

impl VoteProposer {
    /// `ibft_proposeValidatorVote`: vote to add (`Add`) or drop `address`.
    pub fn propose(&mut self, address: Address, kind: VoteKind) {
        self.proposals.insert(address, kind);
    }

    /// `ibft_discardValidatorVote`.
    pub fn discard(&mut self, address: &Address) {
        self.proposals.remove(address);
    }

    /// `ibft_getPendingVotes`: address → add (`true`) or drop.
    pub fn pending(&self) -> &BTreeMap<Address, VoteKind> {
        &self.proposals
    }

    /// The vote for a new block by `local` on top of `tally`: among proposals not yet cast
    /// (`voteNotYetCast`), the next in turn.
    pub fn next_vote(&mut self, local: Address, tally: &VoteTally) -> Option<Vote> {
        let candidates: Vec<Vote> = self
            .proposals
            .iter()
            .filter(|(subject, kind)| match kind {
                // ADD of a non-validator we have not voted to add, or of someone we voted
                // to drop.
                VoteKind::Add => {
                    (!tally.is_validator(subject)
                        && !tally.has_voted(&local, subject, VoteKind::Add))
                        || tally.has_voted(&local, subject, VoteKind::Drop)
                }
                // DROP of a validator we have not voted to drop, or of someone we voted to add.
                VoteKind::Drop => {
                    (tally.is_validator(subject)
                        && !tally.has_voted(&local, subject, VoteKind::Drop))
                        || tally.has_voted(&local, subject, VoteKind::Add)
                }
            })
            .map(|(recipient, kind)| Vote {
                recipient: *recipient,
                kind: *kind,
            })
            .collect();
        if candidates.is_empty() {
            return None;
        }
        self.position = (self.position + 1) % candidates.len();
        candidates.get(self.position).copied()
    }
}

/// One row of `ibft_getSignerMetrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignerMetric {
    /// The validator.
    pub address: Address,
    /// Blocks it proposed in the range.
    pub proposed_block_count: u64,
    /// The last of them (0 if none).
    pub last_proposed_block_number: u64,
}

/// Signer metrics over `blocks` (number and coinbase of each block in `[from, to)`), with
/// every validator in `validators` (the set after the range) listed, zero if it proposed
/// nothing. Ordered by address.
pub fn signer_metrics(
    blocks: impl IntoIterator<Item = (u64, Address)>,
    validators: &[Address],
) -> Vec<SignerMetric> {
    let mut metrics: BTreeMap<Address, SignerMetric> = BTreeMap::new();
    for (number, proposer) in blocks {
        let entry = metrics.entry(proposer).or_insert(SignerMetric {
            address: proposer,
            proposed_block_count: 0,
            last_proposed_block_number: 0,
        });
        entry.proposed_block_count += 1;
        entry.last_proposed_block_number = entry.last_proposed_block_number.max(number);
    }
    for validator in validators {
        metrics.entry(*validator).or_insert(SignerMetric {
            address: *validator,
            proposed_block_count: 0,
            last_proposed_block_number: 0,
        });
    }
    metrics.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(n: u8) -> Address {
        Address::with_last_byte(n)
    }

    fn vote(n: u8, kind: VoteKind) -> Vote {
        Vote {
            recipient: a(n),
            kind,
        }
    }

    #[test]
    fn thresholds_follow_more_than_half() {
        // 1 validator needs 1 vote, 2 need 2, 4 need 3 (VoteTallyTest).
        let mut one = VoteTally::new([a(1)]);
        one.add_vote(a(1), vote(9, VoteKind::Add));
        assert!(one.is_validator(&a(9)));

        let mut two = VoteTally::new([a(1), a(2)]);
        two.add_vote(a(1), vote(9, VoteKind::Add));
        assert!(!two.is_validator(&a(9)));
        two.add_vote(a(2), vote(9, VoteKind::Add));
        assert!(two.is_validator(&a(9)));
        assert_eq!(two.add_votes_for(&a(9)).count(), 0, "votes about 9 cleared");

        let mut four = VoteTally::new([a(1), a(2), a(3), a(4)]);
        four.add_vote(a(1), vote(4, VoteKind::Drop));
        four.add_vote(a(2), vote(4, VoteKind::Drop));
        assert!(four.is_validator(&a(4)));
        four.add_vote(a(2), vote(4, VoteKind::Drop));
        assert!(four.is_validator(&a(4)), "repeated votes are idempotent");
        four.add_vote(a(3), vote(4, VoteKind::Drop));
        assert!(!four.is_validator(&a(4)));
    }

    #[test]
    fn a_new_vote_replaces_the_voters_other_vote() {
        let mut tally = VoteTally::new([a(1), a(2), a(3), a(4)]);
        tally.add_vote(a(1), vote(9, VoteKind::Add));
        tally.add_vote(a(1), vote(9, VoteKind::Drop));
        assert_eq!(tally.add_votes_for(&a(9)).count(), 0);
        assert_eq!(tally.drop_votes_for(&a(9)).count(), 1);
    }

    #[test]
    fn a_dropped_validators_votes_stop_counting() {
        let mut tally = VoteTally::new([a(1), a(2), a(3), a(4)]);
        tally.add_vote(a(4), vote(9, VoteKind::Add));
        for voter in [1, 2, 3] {
            tally.add_vote(a(voter), vote(4, VoteKind::Drop));
        }
        assert!(!tally.is_validator(&a(4)));
        assert_eq!(tally.add_votes_for(&a(9)).count(), 0);
    }

    #[test]
    fn vote_proposer_skips_votes_already_cast_and_cycles() {
        let mut tally = VoteTally::new([a(1), a(2), a(3), a(4)]);
        let mut proposer = VoteProposer::default();
        // Dropping a non-validator or adding a validator is never "not yet cast".
        proposer.propose(a(8), VoteKind::Drop);
        proposer.propose(a(2), VoteKind::Add);
        assert_eq!(proposer.next_vote(a(1), &tally), None);
        proposer.propose(a(9), VoteKind::Add);
        proposer.propose(a(3), VoteKind::Drop);
        let first = proposer.next_vote(a(1), &tally).unwrap();
        let second = proposer.next_vote(a(1), &tally).unwrap();
        assert_ne!(first, second);
        // Once cast, the add of 9 no longer qualifies.
        tally.add_vote(a(1), vote(9, VoteKind::Add));
        for _ in 0..3 {
            assert_eq!(
                proposer.next_vote(a(1), &tally),
                Some(vote(3, VoteKind::Drop))
            );
        }
        proposer.discard(&a(3));
        assert_eq!(proposer.next_vote(a(1), &tally), None);
        assert_eq!(proposer.pending().len(), 3);
    }

    fn header(
        number: u64,
        coinbase: Address,
        validators: &[Address],
        vote: Option<Vote>,
    ) -> Header {
        let mut extra = IbftExtraData::genesis(validators.to_vec());
        extra.vote = vote;
        Header {
            number,
            beneficiary: coinbase,
            extra_data: extra.encode(),
            ..Header::default()
        }
    }

    #[test]
    fn votes_tally_across_blocks_and_reset_at_epochs() {
        let v = [a(1), a(2), a(3), a(4)];
        let epoch = 4;
        let genesis = VoteTally::new([])
            .after_block(&header(0, Address::ZERO, &v, None), epoch)
            .unwrap();
        assert_eq!(genesis.validators(), v);
        // Blocks 1 and 2 vote to add 9 (voters 1, 2); block 3 by validator 3 completes it.
        let add9 = Some(vote(9, VoteKind::Add));
        let t1 = genesis
            .after_block(&header(1, a(1), &v, add9), epoch)
            .unwrap();
        let t2 = t1.after_block(&header(2, a(2), &v, add9), epoch).unwrap();
        assert!(!t2.is_validator(&a(9)));
        let t3 = t2.after_block(&header(3, a(3), &v, add9), epoch).unwrap();
        assert!(t3.is_validator(&a(9)));
        let v5 = t3.validators();
        assert_eq!(v5.len(), 5);
        // Block 4 is an epoch block: the tally restarts from its extraData and its own vote
        // is ignored; a pending drop vote from block 5 is gone after the next epoch (8).
        let drop1 = Some(vote(1, VoteKind::Drop));
        let t4 = t3.after_block(&header(4, a(4), &v5, drop1), epoch).unwrap();
        assert_eq!(
            t4.drop_votes_for(&a(1)).count(),
            0,
            "an epoch block's vote is ignored"
        );
        assert_eq!(t4.validators(), v5);
        let t5 = t4.after_block(&header(5, a(2), &v5, drop1), epoch).unwrap();
        assert_eq!(t5.drop_votes_for(&a(1)).count(), 1);
        let t6 = t5.after_block(&header(6, a(3), &v5, None), epoch).unwrap();
        let t7 = t6.after_block(&header(7, a(4), &v5, None), epoch).unwrap();
        let t8 = t7.after_block(&header(8, a(9), &v5, None), epoch).unwrap();
        assert_eq!(
            t8.drop_votes_for(&a(1)).count(),
            0,
            "pending votes end at the epoch"
        );
        assert!(t8.is_validator(&a(1)));
        // Malformed extraData is an error, not a panic.
        let mut bad = header(9, a(1), &v5, None);
        bad.extra_data = alloy_primitives::Bytes::from_static(&[0xc0]);
        assert!(t8.after_block(&bad, epoch).is_err());
    }

    #[test]
    fn signer_metrics_count_and_list_idle_validators() {
        let metrics = signer_metrics([(1, a(1)), (2, a(2)), (3, a(1))], &[a(1), a(2), a(3)]);
        assert_eq!(metrics.len(), 3);
        assert_eq!(metrics[0].proposed_block_count, 2);
        assert_eq!(metrics[0].last_proposed_block_number, 3);
        assert_eq!(metrics[2].proposed_block_count, 0);
    }
}
