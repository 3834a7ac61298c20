//! `eth_subscribe` over WebSocket: newHeads, logs and newPendingTransactions. Each
//! subscription is a task that forwards chain events until the client goes away; a client
//! too slow to keep up loses the oldest events rather than slowing the node.

use std::sync::Arc;

use alloy_rpc_types_eth::{
    Filter,
    pubsub::{Params, SubscriptionKind},
};
use jsonrpsee::{
    PendingSubscriptionSink, SubscriptionMessage, SubscriptionSink, core::SubscriptionResult,
};
use serde::Serialize;
use tokio::sync::broadcast::{Receiver, error::RecvError};

use crate::backend::{BlockRef, RpcBackend, block_logs, rpc_header, rpc_transaction};

/// Accepts or rejects a subscription request and spawns its forwarding task.
pub(crate) async fn subscribe(
    backend: Arc<RpcBackend>,
    pending: PendingSubscriptionSink,
    kind: SubscriptionKind,
    params: Option<Params>,
) -> SubscriptionResult {
    match (kind, params.unwrap_or_default()) {
        (SubscriptionKind::NewHeads, Params::None | Params::Bool(_)) => {
            let blocks = backend.events.blocks.subscribe();
            let sink = pending.accept().await?;
            tokio::spawn(forward(sink, blocks, |block| {
                let block_ref = BlockRef {
                    hash: block.hash,
                    header: block.header.clone(),
                };
                vec![to_json(&rpc_header(&block_ref, None))]
            }));
        }
        (SubscriptionKind::Logs, params) => {
            let filter = match params {
                Params::Logs(filter) => *filter,
                Params::None => Filter::default(),
                _ => {
                    pending
                        .reject(crate::error::invalid_params("Invalid subscription params"))
                        .await;
                    return Ok(());
                }
            };
            let blocks = backend.events.blocks.subscribe();
            let sink = pending.accept().await?;
            tokio::spawn(forward(sink, blocks, move |block| {
                let block_ref = BlockRef {
                    hash: block.hash,
                    header: block.header.clone(),
                };
                if !filter.matches_bloom(block.header.logs_bloom) {
                    return Vec::new();
                }
                block_logs(&block_ref, &block.body, &block.receipts)
                    .into_iter()
                    .filter(|log| filter.matches(&log.inner))
                    .map(|log| to_json(&log))
                    .collect()
            }));
        }
        (SubscriptionKind::NewPendingTransactions, params) => {
            let full = matches!(params, Params::Bool(true));
            let hashes = backend.events.pending.subscribe();
            let sink = pending.accept().await?;
            let pool = backend.pool.clone();
            tokio::spawn(forward(sink, hashes, move |hash| {
                if full {
                    pool.transaction(&hash)
                        .map(|tx| to_json(&rpc_transaction(tx.tx.clone(), tx.sender, None)))
                        .into_iter()
                        .collect()
                } else {
                    vec![to_json(&hash)]
                }
            }));
        }
        _ => {
            pending
                .reject(crate::error::invalid_params("Unsupported subscription"))
                .await;
        }
    }
    Ok(())
}

fn to_json<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

async fn forward<T: Clone + Send + 'static>(
    sink: SubscriptionSink,
    mut events: Receiver<T>,
    render: impl Fn(T) -> Vec<serde_json::Value> + Send + 'static,
) {
    loop {
        let event = tokio::select! {
            _ = sink.closed() => return,
            event = events.recv() => event,
        };
        let event = match event {
            Ok(event) => event,
            Err(RecvError::Lagged(missed)) => {
                tracing::debug!(missed, "subscriber lagged; events dropped");
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        for item in render(event) {
            let Ok(message) =
                SubscriptionMessage::new(sink.method_name(), sink.subscription_id(), &item)
            else {
                continue;
            };
            if sink.send(message).await.is_err() {
                return;
            }
        }
    }
}
