//! Block sync: asking peers where their chains are, fetching headers then bodies from the
//! one furthest ahead, and handing the sealed blocks to the consensus task, which imports
//! each only after its seals and roots check out. Also the answers to peers' requests.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use alloy_primitives::B256;
use alloy_rlp::Encodable;
use healthchain_network::{
    ChainStatus, NetworkHandle, Offence, PeerId, SyncRequest, SyncResponse,
    sync::{MAX_BODIES, MAX_HEADERS},
};
use healthchain_primitives::Block;
use healthchain_storage_api::BlockReader;
use tokio::sync::{mpsc, oneshot, watch};

use crate::{EngineInput, EngineMetrics};

/// How often peers are asked for their status when nothing prompts it.
const POLL_EVERY: Duration = Duration::from_millis(1500);
/// Largest body payload sent in one response.
const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// Answers a peer's sync request from `store`.
pub fn answer<S: BlockReader + ?Sized>(
    store: &S,
    genesis: B256,
    request: &SyncRequest,
) -> SyncResponse {
    let result = (|| -> Result<SyncResponse, healthchain_storage_api::StorageError> {
        Ok(match request {
            SyncRequest::Status => {
                let (head_number, head_hash) = store.head()?.unwrap_or_default();
                SyncResponse::Status(ChainStatus {
                    genesis,
                    head_number,
                    head_hash,
                })
            }
            SyncRequest::Headers { start, count } => {
                let mut headers = Vec::new();
                for number in *start..start.saturating_add((*count).min(MAX_HEADERS)) {
                    let Some(hash) = store.canonical_hash(number)? else {
                        break;
                    };
                    let Some(header) = store.header(hash)? else {
                        break;
                    };
                    headers.push(header);
                }
                SyncResponse::Headers(headers)
            }
            SyncRequest::Bodies(hashes) => {
                let mut bodies = Vec::new();
                let mut size = 0;
                for hash in hashes.iter().take(MAX_BODIES) {
                    let Some(body) = store.body(*hash)? else {
                        break;
                    };
                    size += body.length();
                    if size > MAX_RESPONSE_BYTES && !bodies.is_empty() {
                        break;
                    }
                    bodies.push(body);
                }
                SyncResponse::Bodies(bodies)
            }
        })
    })();
    result.unwrap_or_else(|err| SyncResponse::Refused(err.to_string()))
}

/// The sync task.
pub(crate) struct Syncer<S: ?Sized> {
    pub(crate) store: Arc<S>,
    pub(crate) genesis: B256,
    pub(crate) network: NetworkHandle,
    pub(crate) engine: mpsc::Sender<EngineInput>,
    pub(crate) metrics: Arc<EngineMetrics>,
    /// Nudged when a peer shows up or a message hints that someone is ahead.
    pub(crate) nudge: watch::Receiver<()>,
}

impl<S: BlockReader + ?Sized + Send + Sync + 'static> Syncer<S> {
    pub(crate) async fn run(mut self) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(POLL_EVERY) => {}
                changed = self.nudge.changed() => if changed.is_err() { return },
            }
            if self.engine.is_closed() {
                return;
            }
            while self.round().await {}
        }
    }

    fn head(&self) -> u64 {
        self.store.head().ok().flatten().map_or(0, |(n, _)| n)
    }

    /// One pass: find the best peer; fetch and import one batch. True if it made progress
    /// and there may be more.
    async fn round(&mut self) -> bool {
        let head = self.head();
        let mut best: Option<(PeerId, u64)> = None;
        for peer in self.network.peers() {
            match self
                .network
                .request(peer.peer_id, SyncRequest::Status)
                .await
            {
                Ok(SyncResponse::Status(status)) => {
                    if status.genesis != self.genesis {
                        tracing::warn!(peer = %peer.peer_id, "peer is on another chain");
                        self.network.penalize(peer.peer_id, Offence::BadResponse);
                        continue;
                    }
                    if best.is_none_or(|(_, n)| status.head_number > n) {
                        best = Some((peer.peer_id, status.head_number));
                    }
                }
                Ok(_) => self.network.penalize(peer.peer_id, Offence::BadResponse),
                Err(err) => tracing::debug!(%err, "status request failed"),
            }
        }
        let Some((peer, highest)) = best else {
            return false;
        };
        self.metrics
            .highest_seen
            .fetch_max(highest, Ordering::Relaxed);
        if highest <= head {
            self.metrics.sync_start.store(0, Ordering::Relaxed);
            return false;
        }
        if self.metrics.sync_start.load(Ordering::Relaxed) == 0 {
            self.metrics
                .sync_start
                .store(head.max(1), Ordering::Relaxed);
        }
        match self.fetch(peer, head + 1, highest).await {
            Ok(blocks) if !blocks.is_empty() => {
                let expected = blocks.len();
                let (reply, answer) = oneshot::channel();
                if self
                    .engine
                    .send(EngineInput::Synced { blocks, reply })
                    .await
                    .is_err()
                {
                    return false;
                }
                match answer.await {
                    Ok(Ok(imported)) => {
                        tracing::info!(%peer, imported, head = self.head(), highest, "synced blocks");
                        imported == expected
                    }
                    Ok(Err(err)) => {
                        tracing::warn!(%peer, %err, "peer sent blocks that do not import");
                        self.network.penalize(peer, Offence::BadResponse);
                        false
                    }
                    Err(_) => false,
                }
            }
            Ok(_) => false,
            Err(offence) => {
                self.network.penalize(peer, offence);
                false
            }
        }
    }

    /// Headers `from..` (one request), then their bodies, as blocks.
    async fn fetch(&self, peer: PeerId, from: u64, highest: u64) -> Result<Vec<Block>, Offence> {
        let count = (highest - from + 1).min(MAX_HEADERS);
        let headers = match self
            .network
            .request(peer, SyncRequest::Headers { start: from, count })
            .await
        {
            Ok(SyncResponse::Headers(headers)) => headers,
            Ok(_) => return Err(Offence::BadResponse),
            Err(_) => return Ok(Vec::new()),
        };
        // They must be the contiguous run asked for; seals and links are checked at import.
        if headers.is_empty() || headers.len() as u64 > count {
            return Err(Offence::BadResponse);
        }
        if headers
            .iter()
            .enumerate()
            .any(|(i, h)| h.number != from + i as u64)
        {
            return Err(Offence::BadResponse);
        }
        let mut blocks = Vec::with_capacity(headers.len());
        for chunk in headers.chunks(MAX_BODIES) {
            let hashes: Vec<B256> = chunk
                .iter()
                .map(|h| {
                    healthchain_primitives::ibft::block_hash(h).unwrap_or_else(|_| h.hash_slow())
                })
                .collect();
            let bodies = match self
                .network
                .request(peer, SyncRequest::Bodies(hashes))
                .await
            {
                Ok(SyncResponse::Bodies(bodies)) => bodies,
                Ok(_) => return Err(Offence::BadResponse),
                Err(_) => break,
            };
            if bodies.len() > chunk.len() {
                return Err(Offence::BadResponse);
            }
            let short = bodies.len() < chunk.len();
            for (header, body) in chunk.iter().zip(bodies) {
                blocks.push(Block {
                    header: header.clone(),
                    body,
                });
            }
            if short {
                break;
            }
        }
        Ok(blocks)
    }
}
