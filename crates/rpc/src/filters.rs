//! `eth_getLogs` and the polling filters (`eth_newFilter` and friends). Filters expire when
//! not polled for the configured time; their number is bounded.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_primitives::{B256, U256};
use alloy_rpc_types_eth::{Filter, FilterBlockOption, FilterChanges, Log};
use parking_lot::Mutex;
use tokio::sync::broadcast::error::RecvError;

use crate::{
    backend::{BlockRef, RpcBackend, block_logs},
    error::{
        RpcResult, block_not_found, filter_not_found, invalid_params, range_too_large, storage,
    },
};

/// Pending-transaction hashes kept per filter between polls; older ones are dropped. With
/// the default 4,096 filters this bounds their memory to 128 MiB even if nobody polls.
const MAX_PENDING_PER_FILTER: usize = 1_024;

/// How often (in pending transactions fed) expired filters are swept out by the feed, so
/// abandoned pending filters stop collecting hashes without waiting for a new `install`.
const SWEEP_EVERY: u64 = 256;

enum Kind {
    Blocks { next: u64 },
    Logs { filter: Box<Filter>, next: u64 },
    Pending { hashes: VecDeque<B256> },
}

struct Installed {
    kind: Kind,
    last_poll: Instant,
}

/// The installed polling filters.
#[derive(Debug)]
pub struct FilterManager {
    inner: Mutex<Inner>,
    max_filters: usize,
    timeout: Duration,
    ids: std::collections::hash_map::RandomState,
}

#[derive(Default)]
struct Inner {
    filters: HashMap<U256, Installed>,
    next_id: u64,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("filters", &self.filters.len())
            .finish()
    }
}

impl FilterManager {
    /// At most `max_filters` installed; each expires after `timeout` without a poll.
    pub fn new(max_filters: usize, timeout: Duration) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            max_filters,
            timeout,
            ids: Default::default(),
        }
    }

    /// Feeds pending-transaction hashes to the pending filters until the channel closes.
    pub fn spawn_pending_feed(self: &Arc<Self>, backend: &RpcBackend) {
        let mut pending = backend.events.pending.subscribe();
        let this = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut fed = 0u64;
            loop {
                let hash = match pending.recv().await {
                    Ok(hash) => hash,
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return,
                };
                let Some(this) = this.upgrade() else { return };
                let mut inner = this.inner.lock();
                fed += 1;
                if fed.is_multiple_of(SWEEP_EVERY) {
                    let timeout = this.timeout;
                    inner.filters.retain(|_, f| f.last_poll.elapsed() < timeout);
                }
                for installed in inner.filters.values_mut() {
                    if let Kind::Pending { hashes } = &mut installed.kind {
                        if hashes.len() == MAX_PENDING_PER_FILTER {
                            hashes.pop_front();
                        }
                        hashes.push_back(hash);
                    }
                }
            }
        });
    }

    fn install(&self, kind: Kind) -> RpcResult<U256> {
        let mut inner = self.inner.lock();
        let now = Instant::now();
        let timeout = self.timeout;
        inner
            .filters
            .retain(|_, f| now.duration_since(f.last_poll) < timeout);
        if inner.filters.len() >= self.max_filters {
            return Err(crate::error::server_error("Too many installed filters"));
        }
        inner.next_id += 1;
        // A keyed hash of the counter: ids do not reveal how many filters exist and one
        // client does not stumble on another's filter by counting.
        let id = (U256::from(self.ids.hash_one(inner.next_id)) << 64) | U256::from(inner.next_id);
        inner.filters.insert(
            id,
            Installed {
                kind,
                last_poll: now,
            },
        );
        Ok(id)
    }

    /// Installs a log filter starting after the current head (or at its `fromBlock`).
    pub fn new_log_filter(&self, backend: &RpcBackend, filter: Filter) -> RpcResult<U256> {
        let (head, _) = backend.head()?;
        let next = match filter.block_option {
            FilterBlockOption::Range {
                from_block: Some(from),
                ..
            } => backend.resolve_number(from)?.unwrap_or(head + 1),
            _ => head + 1,
        };
        self.install(Kind::Logs {
            filter: Box::new(filter),
            next,
        })
    }

    /// Installs a block filter starting after the current head.
    pub fn new_block_filter(&self, backend: &RpcBackend) -> RpcResult<U256> {
        let (head, _) = backend.head()?;
        self.install(Kind::Blocks { next: head + 1 })
    }

    /// Installs a pending-transaction filter.
    pub fn new_pending_filter(&self) -> RpcResult<U256> {
        self.install(Kind::Pending {
            hashes: VecDeque::new(),
        })
    }

    /// Removes a filter; `false` if there was none.
    pub fn uninstall(&self, id: U256) -> bool {
        self.inner.lock().filters.remove(&id).is_some()
    }

    /// What the filter saw since the last poll.
    pub fn changes(&self, backend: &RpcBackend, id: U256) -> RpcResult<FilterChanges> {
        let (head, _) = backend.head()?;
        // Take what is needed under the lock, read the store outside it.
        let work = {
            let mut inner = self.inner.lock();
            let timeout = self.timeout;
            let installed = inner
                .filters
                .get_mut(&id)
                .filter(|f| f.last_poll.elapsed() < timeout)
                .ok_or_else(filter_not_found)?;
            installed.last_poll = Instant::now();
            match &mut installed.kind {
                Kind::Pending { hashes } => {
                    return Ok(FilterChanges::Hashes(hashes.drain(..).collect()));
                }
                Kind::Blocks { next } => {
                    let from = *next;
                    *next = head + 1;
                    (None, from)
                }
                Kind::Logs { filter, next } => {
                    if let FilterBlockOption::AtBlockHash(_) = filter.block_option {
                        // A one-block filter: its logs on the first poll, nothing after.
                        if *next == u64::MAX {
                            return Ok(FilterChanges::Logs(Vec::new()));
                        }
                        *next = u64::MAX;
                        let filter = filter.clone();
                        drop(inner);
                        return logs(backend, &filter).map(FilterChanges::Logs);
                    }
                    let from = *next;
                    let to = match filter.block_option {
                        FilterBlockOption::Range {
                            to_block: Some(to), ..
                        } => backend.resolve_number(to)?.unwrap_or(head).min(head),
                        _ => head,
                    };
                    // One poll covers at most max-logs-range blocks; the rest come next poll.
                    let to = to.min(from.saturating_add(backend.config.max_logs_range));
                    *next = (*next).max(to.saturating_add(1));
                    (Some((filter.clone(), to)), from)
                }
            }
        };
        match work {
            (None, from) => {
                let mut hashes = Vec::new();
                for number in from..=head {
                    if let Some(hash) = backend.store.canonical_hash(number).map_err(storage)? {
                        hashes.push(hash);
                    }
                }
                Ok(FilterChanges::Hashes(hashes))
            }
            (Some((filter, to)), from) => {
                if from > to {
                    return Ok(FilterChanges::Logs(Vec::new()));
                }
                Ok(FilterChanges::Logs(logs_in_range(
                    backend, &filter, from, to,
                )?))
            }
        }
    }

    /// Every log a log filter matches, over its whole range.
    pub fn all_logs(&self, backend: &RpcBackend, id: U256) -> RpcResult<Vec<Log>> {
        let filter = {
            let mut inner = self.inner.lock();
            let timeout = self.timeout;
            let installed = inner
                .filters
                .get_mut(&id)
                .filter(|f| f.last_poll.elapsed() < timeout)
                .ok_or_else(filter_not_found)?;
            installed.last_poll = Instant::now();
            match &installed.kind {
                Kind::Logs { filter, .. } => filter.clone(),
                _ => return Err(filter_not_found()),
            }
        };
        logs(backend, &filter)
    }
}

/// `eth_getLogs`: Besu's parameter rules and range limit.
pub fn logs(backend: &RpcBackend, filter: &Filter) -> RpcResult<Vec<Log>> {
    match filter.block_option {
        FilterBlockOption::AtBlockHash(hash) => {
            let block = backend.block_by_hash(hash)?.ok_or_else(block_not_found)?;
            let mut out = Vec::new();
            collect_block_logs(backend, filter, &block, &mut out)?;
            Ok(out)
        }
        FilterBlockOption::Range {
            from_block,
            to_block,
        } => {
            let (head, _) = backend.head()?;
            let resolve = |tag: Option<alloy_eips::BlockNumberOrTag>| -> RpcResult<u64> {
                match tag {
                    None => Ok(head),
                    Some(alloy_eips::BlockNumberOrTag::Number(n)) => Ok(n),
                    Some(tag) => backend
                        .resolve_number(tag)?
                        .ok_or_else(|| invalid_params("Invalid block number params")),
                }
            };
            let from = resolve(from_block)?;
            let to = resolve(to_block)?;
            if from > to || to > head {
                return Err(invalid_params("Invalid params"));
            }
            if to - from > backend.config.max_logs_range {
                return Err(range_too_large());
            }
            logs_in_range(backend, filter, from, to)
        }
    }
}

fn logs_in_range(backend: &RpcBackend, filter: &Filter, from: u64, to: u64) -> RpcResult<Vec<Log>> {
    let mut out = Vec::new();
    for number in from..=to {
        let Some(block) = backend.block_at(number)? else {
            break;
        };
        collect_block_logs(backend, filter, &block, &mut out)?;
        if out.len() > backend.config.max_logs {
            return Err(crate::error::server_error(format!(
                "Query returned more than {} results",
                backend.config.max_logs
            )));
        }
    }
    Ok(out)
}

fn collect_block_logs(
    backend: &RpcBackend,
    filter: &Filter,
    block: &BlockRef,
    out: &mut Vec<Log>,
) -> RpcResult<()> {
    if !filter.matches_bloom(block.header.logs_bloom) {
        return Ok(());
    }
    let (Some(body), Some(receipts)) = (
        backend.store.body(block.hash).map_err(storage)?,
        backend.store.receipts(block.hash).map_err(storage)?,
    ) else {
        return Ok(());
    };
    out.extend(
        block_logs(block, &body, &receipts)
            .into_iter()
            .filter(|log| filter.matches(&log.inner)),
    );
    Ok(())
}
