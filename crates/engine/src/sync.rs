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
/// How long a status answer may take before the peer is left out of this round.
const STATUS_TIMEOUT: Duration = Duration::from_secs(2);
/// Blocks handed to consensus at a time, so its own messages are not held up for long.
const IMPORT_CHUNK: usize = 32;

/// Answers a peer's sync request from `store`; body answers stop short of `max_bytes` (the
/// network's message limit, less room for framing) unless a single body is larger, which
/// cannot happen for blocks built under the same limit.
pub fn answer<S: BlockReader + ?Sized>(
    store: &S,
    genesis: B256,
    request: &SyncRequest,
    max_bytes: usize,
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
                    if size > max_bytes && !bodies.is_empty() {
                        break;
                    }
                    bodies.push(body);
                }
                SyncResponse::Bodies(bodies)
            }
            SyncRequest::Blob { .. } => {
                SyncResponse::Refused("blobs are served by the blob store".into())
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

    /// Every peer's status, asked at once; peers on another chain or answering nonsense
    /// are penalised. Sorted with the furthest ahead first.
    async fn statuses(&self) -> Vec<(PeerId, u64)> {
        let asks = self.network.peers().into_iter().map(|peer| {
            let network = self.network.clone();
            async move {
                let answer = tokio::time::timeout(
                    STATUS_TIMEOUT,
                    network.request(peer.peer_id, SyncRequest::Status),
                )
                .await;
                (peer.peer_id, answer)
            }
        });
        let mut ahead = Vec::new();
        for (peer, answer) in futures::future::join_all(asks).await {
            match answer {
                Ok(Ok(SyncResponse::Status(status))) if status.genesis == self.genesis => {
                    ahead.push((peer, status.head_number));
                }
                Ok(Ok(SyncResponse::Status(_))) => {
                    tracing::warn!(%peer, "peer is on another chain");
                    self.network.penalize(peer, Offence::BadResponse);
                }
                // Busy or shutting down: not an offence.
                Ok(Ok(SyncResponse::Refused(_))) => {}
                Ok(Ok(_)) => self.network.penalize(peer, Offence::BadResponse),
                Ok(Err(err)) => tracing::debug!(%peer, %err, "status request failed"),
                Err(_) => tracing::debug!(%peer, "status request timed out"),
            }
        }
        ahead.sort_by_key(|(_, head)| std::cmp::Reverse(*head));
        ahead
    }

    /// One pass: fetch the next batch from the peer furthest ahead, falling back to the next
    /// one if it fails, and import it. True if it made progress and there may be more.
    async fn round(&mut self) -> bool {
        let head = self.head();
        let peers = self.statuses().await;
        // What the peers say now (a peer that lied and left no longer counts); consensus
        // raises it between rounds from validators' messages.
        let highest = peers.first().map_or(head, |(_, n)| *n);
        self.metrics.highest_seen.store(highest, Ordering::Relaxed);
        if highest <= head {
            self.metrics.sync_start.store(0, Ordering::Relaxed);
            if !peers.is_empty() {
                self.metrics.synced_once.store(true, Ordering::Relaxed);
            }
            return false;
        }
        if self.metrics.sync_start.load(Ordering::Relaxed) == 0 {
            self.metrics
                .sync_start
                .store(head.max(1), Ordering::Relaxed);
        }
        for (peer, peer_head) in peers.into_iter().filter(|(_, n)| *n > head) {
            let blocks = match self.fetch(peer, head + 1, peer_head).await {
                Ok(blocks) if !blocks.is_empty() => blocks,
                Ok(_) => continue,
                Err(offence) => {
                    self.network.penalize(peer, offence);
                    continue;
                }
            };
            let expected = blocks.len();
            let mut imported = 0;
            for chunk in blocks.chunks(IMPORT_CHUNK) {
                match self.import(chunk.to_vec()).await {
                    Some(Ok(n)) => {
                        imported += n;
                        if n < chunk.len() {
                            break;
                        }
                    }
                    Some(Err(err)) => {
                        tracing::warn!(%peer, %err, "peer sent blocks that do not import");
                        self.network.penalize(peer, Offence::BadResponse);
                        break;
                    }
                    // Consensus has stopped.
                    None => return false,
                }
            }
            if imported > 0 {
                tracing::info!(%peer, imported, head = self.head(), highest, "synced blocks");
                return imported == expected;
            }
        }
        false
    }

    /// Hands `blocks` to consensus and waits for the count imported; `None` if it is gone.
    async fn import(&self, blocks: Vec<Block>) -> Option<Result<usize, crate::EngineError>> {
        let (reply, answer) = oneshot::channel();
        self.engine
            .send(EngineInput::Synced { blocks, reply })
            .await
            .ok()?;
        answer.await.ok()
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
            Ok(SyncResponse::Refused(_)) => return Ok(Vec::new()),
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
                Ok(SyncResponse::Refused(_)) | Err(_) => break,
                Ok(_) => return Err(Offence::BadResponse),
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
