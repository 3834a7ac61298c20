//! Byzantine behaviours. A faulty validator runs the real state machine (so it knows the
//! height and round) but its messages are tampered with, duplicated or withheld, and it
//! injects messages of its own.

use alloy_primitives::{B256, keccak256};
use healthchain_ibft::{
    Message, NodeKey, RoundId, WireLayout,
    messages::{
        CommitPayload, PreparePayload, Proposal, ProposalPayload, RoundChange, RoundChangePayload,
        Signed,
    },
};
use healthchain_primitives::ibft::commit_seal_digest;

use crate::{Event, Rng, Sim};

/// What a byzantine validator does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Never sends anything (crashed for good).
    Silent,
    /// As proposer, sends different blocks to different peers.
    EquivocatingProposer,
    /// Sends a second, conflicting Prepare and Commit for every one it sends.
    DoubleSigner,
    /// Sends copies with broken signatures and others' proposals re-signed as its own.
    Forger,
    /// Replays old messages (earlier rounds and heights) it has seen.
    Replayer,
    /// Floods future heights and rounds with signed messages.
    FutureSpammer,
    /// Sends malformed bytes: random, truncated and bit-flipped messages.
    Malformed,
    /// Relays others' proposals and round changes with another block body under the
    /// same signatures (which cover only the header).
    BodySwapper,
}

impl Fault {
    /// A fault drawn from `rng`.
    pub fn random(rng: &mut Rng) -> Self {
        match rng.below(8) {
            0 => Self::Silent,
            1 => Self::EquivocatingProposer,
            2 => Self::DoubleSigner,
            3 => Self::Forger,
            4 => Self::Replayer,
            5 => Self::FutureSpammer,
            6 => Self::BodySwapper,
            _ => Self::Malformed,
        }
    }
}

impl Sim {
    /// What a faulty validator sends instead of `message`.
    pub(crate) fn byzantine_broadcast(&mut self, i: usize, fault: Fault, message: &Message) {
        let key = self.nodes[i].key.clone();
        match fault {
            Fault::Silent => {}
            Fault::EquivocatingProposer => match message {
                Message::Proposal(p) => {
                    let Some(other) = conflicting_proposal(p, &key) else {
                        return self.send_from(i, message);
                    };
                    let (code, a) = wire(message);
                    let (_, b) = wire(&other);
                    for to in 0..self.nodes.len() {
                        if to != i {
                            let data = if to % 2 == 0 { a.clone() } else { b.clone() };
                            self.send(Some(i), to, code, data);
                        }
                    }
                }
                _ => self.send_from(i, message),
            },
            Fault::DoubleSigner => {
                self.send_from(i, message);
                let digest = B256::from(self.rng.next_u64_bytes());
                let id = message.id();
                let second = match message {
                    Message::Prepare(_) => {
                        Signed::sign(PreparePayload { id, digest }, &key).map(Message::Prepare)
                    }
                    Message::Commit(_) => key.sign(digest).and_then(|seal| {
                        Signed::sign(CommitPayload { id, digest, seal }, &key).map(Message::Commit)
                    }),
                    _ => None,
                };
                if let Some(second) = second {
                    let (code, data) = wire(&second);
                    for to in 0..self.nodes.len() {
                        if to != i && self.rng.chance(0.5) {
                            self.send(Some(i), to, code, data.clone());
                        }
                    }
                }
            }
            Fault::Forger => {
                self.send_from(i, message);
                let (code, mut data) = wire(message);
                // Flip a byte inside the trailing signature.
                if let Some(last) = data.len().checked_sub(2) {
                    data[last] ^= 0x5a;
                }
                for to in 0..self.nodes.len() {
                    if to != i {
                        self.send(Some(i), to, code, data.clone());
                    }
                }
            }
            Fault::Replayer | Fault::FutureSpammer | Fault::Malformed | Fault::BodySwapper => {
                self.send_from(i, message)
            }
        }
    }

    /// A faulty validator's (or the outsider's) own initiative, every few hundred ms.
    pub(crate) fn byzantine_tick(&mut self, node: usize) {
        let next = self.now + self.rng.range(150, 600);
        if next <= self.scenario.deadline_ms {
            self.schedule(next, Event::Byzantine { node });
        }
        let n = self.nodes.len();
        if node == usize::MAX {
            // The outsider: well-formed, validly signed messages from a non-validator.
            let Some(key) = self.outsider.clone() else {
                return;
            };
            let id = self.current_id();
            for message in self.forged_set(&key, id) {
                let to = self.rng.below(n as u64) as usize;
                let (code, data) = wire(&message);
                self.send(None, to, code, data);
            }
            return;
        }
        let Some(fault) = self.nodes[node].fault else {
            return;
        };
        let key = self.nodes[node].key.clone();
        match fault {
            Fault::Replayer => {
                for _ in 0..4 {
                    if self.seen.is_empty() {
                        break;
                    }
                    let pick = self.rng.below(self.seen.len() as u64) as usize;
                    let (code, data) = self.seen[pick].clone();
                    let to = self.rng.below(n as u64) as usize;
                    self.send(Some(node), to, code, data);
                }
            }
            Fault::FutureSpammer => {
                let current = self.current_id();
                for _ in 0..20 {
                    let id = RoundId::new(
                        current.height.0 + self.rng.range(1, 15),
                        self.rng.range(0, 12) as u32,
                    );
                    for message in self.forged_set(&key, id) {
                        let to = self.rng.below(n as u64) as usize;
                        let (code, data) = wire(&message);
                        self.send(Some(node), to, code, data);
                    }
                }
            }
            Fault::Malformed => {
                for _ in 0..4 {
                    let to = self.rng.below(n as u64) as usize;
                    let code = self.rng.below(6) as u8;
                    let data = if !self.seen.is_empty() && self.rng.chance(0.6) {
                        let pick = self.rng.below(self.seen.len() as u64) as usize;
                        let (_, mut data) = self.seen[pick].clone();
                        if self.rng.chance(0.5) {
                            let cut = self.rng.below(data.len() as u64 + 1) as usize;
                            data.truncate(cut);
                        } else if !data.is_empty() {
                            let at = self.rng.below(data.len() as u64) as usize;
                            data[at] ^= 1 << self.rng.below(8);
                        }
                        data
                    } else {
                        let len = self.rng.below(300) as usize;
                        (0..len).map(|_| self.rng.next_u64() as u8).collect()
                    };
                    self.send(Some(node), to, code, data);
                }
            }
            Fault::BodySwapper => {
                // Proposals and round changes seen on the wire, re-sent with an extra ommer
                // in the block body: header, digest and signatures all still verify.
                let with_blocks: Vec<usize> = (0..self.seen.len())
                    .filter(|&k| matches!(self.seen[k].0, 0 | 3))
                    .collect();
                for _ in 0..3 {
                    if with_blocks.is_empty() {
                        break;
                    }
                    let pick = with_blocks[self.rng.below(with_blocks.len() as u64) as usize];
                    let (code, data) = self.seen[pick].clone();
                    let swapped = match Message::decode(code, &data) {
                        Ok(Message::Proposal(mut p)) => {
                            p.block.body.ommers.push(Default::default());
                            Some(Message::Proposal(p))
                        }
                        Ok(Message::RoundChange(mut rc)) => match rc.block.as_mut() {
                            Some(block) => {
                                block.body.ommers.push(Default::default());
                                Some(Message::RoundChange(rc))
                            }
                            None => None,
                        },
                        _ => None,
                    };
                    if let Some(message) = swapped {
                        let (code, data) = wire(&message);
                        for to in 0..n {
                            if to != node {
                                self.send(Some(node), to, code, data.clone());
                            }
                        }
                    }
                }
            }
            Fault::Silent | Fault::EquivocatingProposer | Fault::DoubleSigner | Fault::Forger => {}
        }
    }

    /// The height and round honest validator 0 (or any honest one) is at.
    fn current_id(&self) -> RoundId {
        self.nodes
            .iter()
            .filter(|n| n.fault.is_none())
            .filter_map(|n| n.machine.as_ref().and_then(|m| m.current()))
            .max()
            .unwrap_or(RoundId::new(1, 0))
    }

    /// Signed Prepare, Commit and RoundChange for `id` with a random digest, plus a
    /// re-signed copy of a proposal seen on the wire.
    fn forged_set(&mut self, key: &NodeKey, id: RoundId) -> Vec<Message> {
        let digest = B256::from(self.rng.next_u64_bytes());
        let mut out = Vec::new();
        if let Some(p) = Signed::sign(PreparePayload { id, digest }, key) {
            out.push(Message::Prepare(p));
        }
        if let Some(c) = key
            .sign(digest)
            .and_then(|seal| Signed::sign(CommitPayload { id, digest, seal }, key))
        {
            out.push(Message::Commit(c));
        }
        if let Some(rc) = Signed::sign(RoundChangePayload { id, prepared: None }, key) {
            out.push(Message::RoundChange(Box::new(RoundChange {
                signed: rc,
                block: None,
            })));
        }
        // Impersonation: someone else's proposal, re-signed with this key.
        let proposals: Vec<usize> = (0..self.seen.len())
            .filter(|&k| self.seen[k].0 == 0)
            .collect();
        if !proposals.is_empty() {
            let pick = proposals[self.rng.below(proposals.len() as u64) as usize];
            if let Ok(Message::Proposal(p)) = Message::decode(0, &self.seen[pick].1)
                && let Some(signed) = Signed::sign(*p.signed.payload(), key)
            {
                out.push(Message::Proposal(Box::new(Proposal {
                    signed,
                    block: p.block,
                    round_change_certificate: p.round_change_certificate,
                })));
            }
        }
        out
    }
}

/// The same proposal with another block (a different state root), signed by `key`.
fn conflicting_proposal(p: &Proposal, key: &NodeKey) -> Option<Message> {
    let mut block = p.block.clone();
    block.header.state_root = keccak256(block.header.state_root);
    let digest = commit_seal_digest(&block.header).ok()?;
    let id = p.signed.payload().id;
    let signed = Signed::sign(ProposalPayload { id, digest }, key)?;
    Some(Message::Proposal(Box::new(Proposal {
        signed,
        block,
        round_change_certificate: p.round_change_certificate.clone(),
    })))
}

fn wire(message: &Message) -> (u8, Vec<u8>) {
    (message.code(), message.encode(WireLayout::Besu25).to_vec())
}
