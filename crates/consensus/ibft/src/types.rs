//! Heights, rounds, round identifiers and the quorum arithmetic (ibft2.md §4.2, §4.5).

use std::fmt;

/// A block number being agreed on (Besu's "sequence").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Height(pub u64);

/// A round within a height; round 0 is the first attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Round(pub u32);

impl Round {
    /// The round after this one (saturating: round 2^32−1 is never reached in practice).
    pub fn next(self) -> Self {
        Self(self.0.saturating_add(1))
    }
}

impl fmt::Display for Height {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for Round {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// `ConsensusRoundIdentifier`: a height and a round, ordered by height then round. On the
/// wire it is two inline items, an 8-byte fixed height and a 4-byte fixed round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct RoundId {
    /// The height.
    pub height: Height,
    /// The round.
    pub round: Round,
}

impl RoundId {
    /// `(height, round)`.
    pub const fn new(height: u64, round: u32) -> Self {
        Self {
            height: Height(height),
            round: Round(round),
        }
    }
}

impl fmt::Display for RoundId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.height, self.round)
    }
}

/// `calculateRequiredValidatorQuorum`: ceil(2n/3), computed as `(2n − 1) / 3 + 1`.
pub fn quorum(validators: usize) -> usize {
    if validators == 0 {
        return 0;
    }
    (2 * validators - 1) / 3 + 1
}

/// The number of faulty validators tolerated: f = ⌊(n − 1) / 3⌋.
pub fn max_faulty(validators: usize) -> usize {
    validators.saturating_sub(1) / 3
}
