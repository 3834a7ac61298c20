//! The bounded buffer of messages for heights above the current one
//! (`FutureMessageBuffer`, ibft2.md §5.5).

use std::collections::{BTreeMap, HashMap, VecDeque};

use alloy_primitives::Address;

use crate::messages::Message;

/// Future-height messages, replayed when their height becomes current.
#[derive(Debug, Default)]
pub(crate) struct FutureMessages {
    by_height: BTreeMap<u64, VecDeque<Message>>,
    per_author: HashMap<Address, usize>,
    total: usize,
    bytes: usize,
}

/// Roughly how many bytes `message` holds (its block dominates).
fn size_of(message: &Message) -> usize {
    use alloy_rlp::Encodable;
    let block = match message {
        Message::Proposal(p) => p.block.length(),
        Message::RoundChange(rc) => rc.block.as_ref().map_or(0, Encodable::length),
        Message::Prepare(_) | Message::Commit(_) => 0,
    };
    block + 256
}

impl FutureMessages {
    /// Offers `message` for `height`. Besu's overflow rule: past `limit` in total, the whole
    /// list of the highest buffered height is dropped, or with a single height its oldest
    /// message. In addition each author may hold at most `per_author` messages, so one
    /// validator's spam cannot evict everyone else's. Returns whether it was kept.
    pub(crate) fn add(
        &mut self,
        height: u64,
        message: Message,
        limit: usize,
        per_author: usize,
        max_bytes: usize,
    ) -> bool {
        if limit == 0 {
            return false;
        }
        let author = message.author();
        let held = self.per_author.get(&author).copied().unwrap_or(0);
        if held >= per_author {
            return false;
        }
        let list = self.by_height.entry(height).or_default();
        if list.contains(&message) {
            return false;
        }
        self.bytes += size_of(&message);
        list.push_back(message);
        *self.per_author.entry(author).or_default() += 1;
        self.total += 1;
        while self.total > limit || self.bytes > max_bytes {
            if self.by_height.len() > 1 {
                if let Some((_, dropped)) = self.by_height.pop_last() {
                    for m in &dropped {
                        self.forget(m);
                    }
                    self.total -= dropped.len();
                }
            } else if let Some(mut entry) = self.by_height.first_entry() {
                let oldest = entry.get_mut().pop_front();
                if entry.get().is_empty() {
                    entry.remove();
                }
                if let Some(m) = oldest {
                    self.forget(&m);
                    self.total -= 1;
                }
            } else {
                break;
            }
        }
        true
    }

    fn forget(&mut self, message: &Message) {
        self.bytes = self.bytes.saturating_sub(size_of(message));
        let author = message.author();
        if let Some(count) = self.per_author.get_mut(&author) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_author.remove(&author);
            }
        }
    }

    /// Removes and returns the messages for `height`, dropping every lower height.
    pub(crate) fn take(&mut self, height: u64) -> Vec<Message> {
        let mut out = Vec::new();
        while let Some(entry) = self.by_height.first_entry() {
            if *entry.key() > height {
                break;
            }
            let (h, messages) = entry.remove_entry();
            for m in &messages {
                self.forget(m);
            }
            self.total -= messages.len();
            if h == height {
                out.extend(messages);
            }
        }
        out
    }

    /// Messages held.
    pub(crate) fn len(&self) -> usize {
        self.total
    }
}
