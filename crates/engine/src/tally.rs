//! Validator sets by block: the header-vote tally after each block, replayed from the last
//! epoch block and cached.

use std::collections::BTreeMap;

use healthchain_ibft::votes::VoteTally;
use healthchain_primitives::Header;
use healthchain_storage_api::BlockReader;

use crate::EngineError;

/// Most tallies kept.
const CACHE: usize = 2048;

/// The tally after each recent block.
#[derive(Debug, Default)]
pub struct ValidatorSets {
    epoch_length: u64,
    after: BTreeMap<u64, VoteTally>,
}

impl ValidatorSets {
    /// Sets for a chain whose votes reset every `epoch_length` blocks.
    pub fn new(epoch_length: u64) -> Self {
        Self {
            epoch_length: epoch_length.max(1),
            after: BTreeMap::new(),
        }
    }

    /// Records the tally after `header`, given the tally after its parent.
    pub fn record(
        &mut self,
        header: &Header,
        parent_tally: &VoteTally,
    ) -> Result<VoteTally, EngineError> {
        let tally = self.tally_of(header, parent_tally)?;
        self.remember(header.number, tally.clone());
        Ok(tally)
    }

    /// The tally after `header`, given the tally after its parent (not recorded).
    pub fn tally_of(
        &self,
        header: &Header,
        parent_tally: &VoteTally,
    ) -> Result<VoteTally, EngineError> {
        parent_tally
            .after_block(header, self.epoch_length)
            .map_err(|e| EngineError::Header(format!("block {}: {e}", header.number)))
    }

    /// Records `tally` as the one after block `number`.
    pub fn remember(&mut self, number: u64, tally: VoteTally) {
        self.after.insert(number, tally);
        while self.after.len() > CACHE {
            self.after.pop_first();
        }
    }

    /// The tally after canonical block `number`, replaying stored headers from the nearest
    /// cached tally or epoch block.
    pub fn after<S: BlockReader + ?Sized>(
        &mut self,
        store: &S,
        number: u64,
    ) -> Result<VoteTally, EngineError> {
        if let Some(tally) = self.after.get(&number) {
            return Ok(tally.clone());
        }
        // Start from a cached tally below `number` or the epoch block at or below it,
        // whichever is later.
        let epoch = number - number % self.epoch_length;
        let cached = self
            .after
            .range(..number)
            .next_back()
            .map(|(n, t)| (*n, t.clone()));
        let (mut at, mut tally) = match cached {
            Some((n, t)) if n >= epoch => (n, t),
            _ => {
                let header = canonical_header(store, epoch)?;
                let tally = VoteTally::default()
                    .after_block(&header, self.epoch_length)
                    .map_err(|e| EngineError::Header(format!("block {epoch}: {e}")))?;
                self.remember(epoch, tally.clone());
                (epoch, tally)
            }
        };
        while at < number {
            at += 1;
            let header = canonical_header(store, at)?;
            tally = self.record(&header, &tally)?;
        }
        Ok(tally)
    }
}

/// The canonical header at `number`.
pub fn canonical_header<S: BlockReader + ?Sized>(
    store: &S,
    number: u64,
) -> Result<Header, EngineError> {
    let hash = store
        .canonical_hash(number)?
        .ok_or(EngineError::Missing(number))?;
    store.header(hash)?.ok_or(EngineError::Missing(number))
}
