//! Peer scores: offences lower a peer's score, time slowly restores it, and a peer at the
//! ban threshold is disconnected and refused for the ban period.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;

/// Something a peer did wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offence {
    /// Bytes that do not decode.
    Malformed,
    /// A well-formed message that is invalid (bad signature, not from a validator, a block
    /// that fails validation).
    Invalid,
    /// A sync response that does not answer the request or fails validation.
    BadResponse,
    /// Too many messages, or messages nobody asked for.
    Spam,
}

impl Offence {
    fn weight(self) -> i32 {
        match self {
            Self::Malformed => 40,
            Self::Invalid => 25,
            Self::BadResponse => 40,
            Self::Spam => 5,
        }
    }
}

/// A peer whose score falls to this is banned.
pub(crate) const BAN_THRESHOLD: i32 = -100;
/// Points a negative score regains per [`DECAY_EVERY`].
const DECAY_POINTS: i32 = 5;
/// How often scores decay towards zero.
pub(crate) const DECAY_EVERY: Duration = Duration::from_secs(10);

/// Scores and bans.
#[derive(Debug, Default)]
pub(crate) struct Scores {
    scores: HashMap<PeerId, i32>,
    banned: HashMap<PeerId, Instant>,
}

impl Scores {
    /// Records `offence`; returns true if `peer` is now banned (until `now + ban`).
    pub(crate) fn penalize(
        &mut self,
        peer: PeerId,
        offence: Offence,
        now: Instant,
        ban: Duration,
    ) -> bool {
        let score = self.scores.entry(peer).or_default();
        *score = score.saturating_sub(offence.weight());
        if *score <= BAN_THRESHOLD {
            self.scores.remove(&peer);
            self.banned.insert(peer, now + ban);
            return true;
        }
        false
    }

    /// Whether `peer` is banned at `now`.
    pub(crate) fn is_banned(&self, peer: &PeerId, now: Instant) -> bool {
        self.banned.get(peer).is_some_and(|until| *until > now)
    }

    /// Moves scores back towards zero and lifts expired bans.
    pub(crate) fn decay(&mut self, now: Instant) {
        self.scores.retain(|_, score| {
            *score = (*score + DECAY_POINTS).min(0);
            *score < 0
        });
        self.banned.retain(|_, until| *until > now);
    }

    /// The current score of `peer` (0 if none).
    #[cfg(test)]
    pub(crate) fn score(&self, peer: &PeerId) -> i32 {
        self.scores.get(peer).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: u8) -> PeerId {
        let mut secret = [0u8; 32];
        secret[31] = n;
        crate::keypair_from_secret(&secret)
            .unwrap()
            .public()
            .to_peer_id()
    }

    #[test]
    fn offences_ban_and_bans_expire() {
        let mut scores = Scores::default();
        let peer = peer(1);
        let now = Instant::now();
        let ban = Duration::from_secs(60);
        assert!(!scores.penalize(peer, Offence::Malformed, now, ban));
        assert!(!scores.penalize(peer, Offence::Malformed, now, ban));
        assert_eq!(scores.score(&peer), -80);
        assert!(scores.penalize(peer, Offence::Invalid, now, ban));
        assert!(scores.is_banned(&peer, now));
        scores.decay(now + Duration::from_secs(61));
        assert!(!scores.is_banned(&peer, now + Duration::from_secs(61)));
        // Spam alone needs many offences, and decay forgives slowly.
        let other = self::peer(2);
        for _ in 0..10 {
            scores.penalize(other, Offence::Spam, now, ban);
        }
        assert_eq!(scores.score(&other), -50);
        scores.decay(now);
        assert_eq!(scores.score(&other), -45);
    }
}
