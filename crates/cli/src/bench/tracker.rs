//! Inclusion tracking from WebSocket `newHeads`: every transaction is registered (by its
//! locally computed hash) just before it is sent; each committed block's receipts are
//! fetched once and matched against the waiting set. A transaction's latency is the time
//! from its submission to the arrival of the `newHeads` notification of the block that
//! includes it: IBFT blocks are final when committed, so that is time to finality. No
//! receipt polling.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use alloy_primitives::B256;
use anyhow::Context;
use jsonrpsee_core::client::{ClientT, SubscriptionClientT};
use jsonrpsee_core::rpc_params;
use jsonrpsee_ws_client::{WsClient, WsClientBuilder};
use parking_lot::Mutex;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::report::{Op, Outcome, Sample};

/// What a waiter learns when its transaction is included.
#[derive(Debug, Clone)]
pub(crate) struct Included {
    pub(crate) ok: bool,
    pub(crate) logs: Vec<Value>,
}

struct Waiting {
    op: Option<Op>,
    sent: Instant,
    notify: Option<oneshot::Sender<Included>>,
}

/// A committed block as the tracker saw it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct BlockSeen {
    pub(crate) number: u64,
    /// Seconds since the run started, at the `newHeads` notification.
    pub(crate) at: f64,
    pub(crate) transactions: usize,
    pub(crate) gas_used: u64,
}

#[derive(Default)]
struct Inner {
    waiting: HashMap<B256, Waiting>,
    samples: Vec<Sample>,
    blocks: Vec<BlockSeen>,
}

/// The shared record of a run: waiting transactions, finished samples, blocks seen.
pub(crate) struct Tracker {
    start: Mutex<Instant>,
    inner: Mutex<Inner>,
}

impl Tracker {
    pub(crate) fn new() -> Self {
        Self {
            start: Mutex::new(Instant::now()),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Starts the measured phase: times are taken from now, earlier samples and blocks
    /// (set-up) are dropped.
    pub(crate) fn restart(&self) -> Instant {
        let now = Instant::now();
        *self.start.lock() = now;
        let mut inner = self.inner.lock();
        inner.samples.clear();
        inner.blocks.clear();
        now
    }

    pub(crate) fn secs(&self, at: Instant) -> f64 {
        at.saturating_duration_since(*self.start.lock())
            .as_secs_f64()
    }

    /// Registers a transaction about to be sent; `op` is `None` for set-up transactions,
    /// which are waited for but not measured.
    pub(crate) fn expect(
        &self,
        hash: B256,
        op: Option<Op>,
        notify: Option<oneshot::Sender<Included>>,
    ) {
        self.expect_at(hash, op, notify, Instant::now());
    }

    /// [`Tracker::expect`] with the time the transaction was due (open loop).
    pub(crate) fn expect_at(
        &self,
        hash: B256,
        op: Option<Op>,
        notify: Option<oneshot::Sender<Included>>,
        sent: Instant,
    ) {
        self.inner
            .lock()
            .waiting
            .insert(hash, Waiting { op, sent, notify });
    }

    /// The node refused a transaction at submission.
    pub(crate) fn refused(&self, hash: B256, reason: String) {
        let mut inner = self.inner.lock();
        if let Some(w) = inner.waiting.remove(&hash)
            && let Some(op) = w.op
        {
            let at = self.secs(w.sent);
            inner.samples.push(Sample {
                op,
                at,
                latency: w.sent.elapsed().as_secs_f64(),
                outcome: Outcome::Refused(reason),
            });
        }
    }

    /// A finished request measured by its caller (reads: `eth_call` round trips).
    pub(crate) fn record(&self, op: Op, sent: Instant, outcome: Outcome) {
        let sample = Sample {
            op,
            at: self.secs(sent),
            latency: sent.elapsed().as_secs_f64(),
            outcome,
        };
        self.inner.lock().samples.push(sample);
    }

    pub(crate) fn waiting(&self) -> usize {
        self.inner.lock().waiting.len()
    }

    /// (samples so far, of which succeeded, blocks seen).
    pub(crate) fn progress(&self) -> (usize, usize, usize) {
        let inner = self.inner.lock();
        let ok = inner
            .samples
            .iter()
            .filter(|s| s.outcome == Outcome::Ok)
            .count();
        (inner.samples.len(), ok, inner.blocks.len())
    }

    /// Waits until nothing is waiting or `limit` has passed.
    pub(crate) async fn drain(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.waiting() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Ends the run: whatever still waits was not included in time. Returns the samples
    /// and blocks, and resets both (set-up and measured phases share one tracker).
    pub(crate) fn finish(&self) -> (Vec<Sample>, Vec<BlockSeen>) {
        let mut inner = self.inner.lock();
        let waiting = std::mem::take(&mut inner.waiting);
        for (_, w) in waiting {
            if let Some(op) = w.op {
                let at = self.secs(w.sent);
                inner.samples.push(Sample {
                    op,
                    at,
                    latency: w.sent.elapsed().as_secs_f64(),
                    outcome: Outcome::NotIncluded,
                });
            }
        }
        (
            std::mem::take(&mut inner.samples),
            std::mem::take(&mut inner.blocks),
        )
    }

    fn on_receipts(&self, number: u64, arrived: Instant, receipts: &[Value]) {
        let mut inner = self.inner.lock();
        let mut gas_used = 0u64;
        for receipt in receipts {
            gas_used = gas_used
                .saturating_add(crate::client::hex_u64(&receipt["gasUsed"]).unwrap_or_default());
            let Some(hash) = receipt["transactionHash"]
                .as_str()
                .and_then(|h| h.parse::<B256>().ok())
            else {
                continue;
            };
            let Some(w) = inner.waiting.remove(&hash) else {
                continue;
            };
            let ok = receipt["status"].as_str() == Some("0x1");
            if let Some(op) = w.op {
                let at = self.secs(w.sent);
                inner.samples.push(Sample {
                    op,
                    at,
                    latency: arrived.saturating_duration_since(w.sent).as_secs_f64(),
                    outcome: if ok { Outcome::Ok } else { Outcome::Reverted },
                });
            }
            if let Some(notify) = w.notify {
                let logs = receipt["logs"].as_array().cloned().unwrap_or_default();
                let _ = notify.send(Included { ok, logs });
            }
        }
        let at = self.secs(arrived);
        inner.blocks.push(BlockSeen {
            number,
            at,
            transactions: receipts.len(),
            gas_used,
        });
    }
}

/// Connects to `ws_url`, subscribes to `newHeads` and feeds `tracker` until the connection
/// closes. Heads are timestamped on arrival by one task and their receipts fetched by
/// another, so a slow fetch never delays the next timestamp.
pub(crate) async fn follow(
    ws_url: &str,
    tracker: std::sync::Arc<Tracker>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let ws: WsClient = WsClientBuilder::default()
        .max_response_size(256 * 1024 * 1024)
        .max_buffer_capacity_per_subscription(16 * 1024)
        .request_timeout(Duration::from_secs(60))
        .build(ws_url)
        .await
        .with_context(|| format!("connecting to {ws_url} (WebSocket JSON-RPC)"))?;
    let mut heads = ws
        .subscribe::<Value, _>("eth_subscribe", rpc_params!["newHeads"], "eth_unsubscribe")
        .await
        .with_context(|| format!("eth_subscribe newHeads at {ws_url}"))?;
    let (tx, mut rx) = mpsc::unbounded_channel::<(u64, Instant)>();
    tokio::spawn(async move {
        while let Some(Ok(head)) = heads.next().await {
            let arrived = Instant::now();
            if let Some(number) = crate::client::hex_u64(&head["number"])
                && tx.send((number, arrived)).is_err()
            {
                break;
            }
        }
    });
    Ok(tokio::spawn(async move {
        let mut last: Option<u64> = None;
        while let Some((number, arrived)) = rx.recv().await {
            // A lagging subscription may skip heads: fetch the ones in between too.
            let first = match last {
                Some(l) if number <= l => continue,
                Some(l) => l + 1,
                None => number,
            };
            for n in first..=number {
                let receipts: Result<Option<Vec<Value>>, _> = ws
                    .request("eth_getBlockReceipts", rpc_params![format!("{n:#x}")])
                    .await;
                match receipts {
                    Ok(receipts) => {
                        tracker.on_receipts(n, arrived, &receipts.unwrap_or_default());
                    }
                    Err(err) => tracing::warn!(block = n, %err, "fetching block receipts"),
                }
            }
            last = Some(number);
        }
    }))
}
