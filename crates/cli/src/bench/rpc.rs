//! The load tool's JSON-RPC side: HTTP clients to one or more nodes, pre-signed EIP-1559
//! transactions, and batched submission (one HTTP request per batch, so the client's own
//! overhead stays small next to the node's).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use alloy_consensus::TxEip1559;
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256, keccak256};
use anyhow::Context;
use healthchain_ibft::NodeKey;
use jsonrpsee_core::client::ClientT;
use jsonrpsee_core::params::BatchRequestBuilder;
use jsonrpsee_core::rpc_params;
use jsonrpsee_http_client::{HttpClient, HttpClientBuilder};
use serde_json::json;

/// Gas limit of a plain transfer.
pub(crate) const TRANSFER_GAS: u64 = 21_000;
/// Gas limit given to record writes (a first write of a patient's record uses ~190k).
pub(crate) const WRITE_GAS: u64 = 400_000;
/// Gas limit of the set-up calls (registrations, consent, permission batches).
pub(crate) const SETUP_GAS: u64 = 3_000_000;
/// Most HTTP requests in flight per node (half its default `max-connections`).
pub(crate) const MAX_IN_FLIGHT: usize = 256;
/// Most calls per JSON-RPC batch (the node's default `max-batch-size` is 1,024).
pub(crate) const MAX_BATCH: usize = 250;

/// A signed transaction ready to send: its hash (computed locally, so it can be tracked
/// before the node answers) and its EIP-2718 bytes.
#[derive(Debug, Clone)]
pub(crate) struct SignedTx {
    pub(crate) hash: B256,
    pub(crate) raw: Bytes,
}

/// A sending account with its next nonce.
#[derive(Debug, Clone)]
pub(crate) struct Sender {
    pub(crate) key: NodeKey,
    pub(crate) nonce: u64,
}

impl Sender {
    /// Signs the next transaction of this sender (free gas: the consortium chains run with
    /// a zero base fee and `min-gas-price = 0`).
    pub(crate) fn sign(
        &mut self,
        chain_id: u64,
        to: Address,
        value: U256,
        gas_limit: u64,
        input: Bytes,
    ) -> anyhow::Result<SignedTx> {
        let tx = TxEip1559 {
            chain_id,
            nonce: self.nonce,
            gas_limit,
            max_fee_per_gas: 0,
            max_priority_fee_per_gas: 0,
            to: TxKind::Call(to),
            value,
            access_list: Default::default(),
            input,
        };
        let envelope = crate::client::sign(&self.key, tx)?;
        self.nonce += 1;
        Ok(SignedTx {
            hash: *envelope.tx_hash(),
            raw: envelope.encoded_2718().into(),
        })
    }
}

/// The deterministic load-test key `index` of `seed` (never a real account's key).
pub(crate) fn bench_key(seed: u64, role: &str, index: usize) -> NodeKey {
    let mut n = 0u64;
    loop {
        let secret = keccak256(format!("healthchain-bench/{seed}/{role}/{index}/{n}"));
        if let Ok(key) = NodeKey::from_secret(secret.as_slice()) {
            return key;
        }
        n += 1;
    }
}

/// HTTP JSON-RPC clients to the nodes under test; requests are spread round-robin.
pub(crate) struct Rpc {
    clients: Vec<(String, HttpClient)>,
    next: AtomicUsize,
    /// Requests in flight, at most [`MAX_IN_FLIGHT`] per node: each takes an HTTP
    /// connection, and a node refuses connections beyond its `[rpc] max-connections`
    /// (512 by default) with 429. Waiting for a permit counts in the request's latency.
    in_flight: tokio::sync::Semaphore,
    pub(crate) chain_id: u64,
}

impl Rpc {
    pub(crate) async fn connect(urls: &[String]) -> anyhow::Result<Self> {
        anyhow::ensure!(!urls.is_empty(), "give at least one --rpc-url");
        let mut clients = Vec::new();
        for url in urls {
            let client = HttpClientBuilder::default()
                .request_timeout(Duration::from_secs(60))
                .max_request_size(64 * 1024 * 1024)
                .max_response_size(64 * 1024 * 1024)
                .build(url)
                .with_context(|| format!("bad JSON-RPC URL {url:?}"))?;
            clients.push((url.clone(), client));
        }
        let mut rpc = Self {
            clients,
            next: AtomicUsize::new(0),
            in_flight: tokio::sync::Semaphore::new(MAX_IN_FLIGHT * urls.len()),
            chain_id: 0,
        };
        let id: U256 = rpc.request("eth_chainId", rpc_params![]).await?;
        rpc.chain_id = u64::try_from(id).context("chain id does not fit 64 bits")?;
        Ok(rpc)
    }

    /// The next node's client, with a permit to use it.
    async fn pick(&self) -> (tokio::sync::SemaphorePermit<'_>, &(String, HttpClient)) {
        // The semaphore is never closed, so acquiring only waits.
        let permit = self
            .in_flight
            .acquire()
            .await
            .unwrap_or_else(|_| unreachable!("the semaphore is never closed"));
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.clients.len();
        (permit, &self.clients[i])
    }

    pub(crate) async fn request<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        params: jsonrpsee_core::params::ArrayParams,
    ) -> anyhow::Result<T> {
        let (_permit, (url, client)) = self.pick().await;
        client
            .request(method, params)
            .await
            .with_context(|| format!("{method} at {url}"))
    }

    /// `eth_call` at the latest block: the return data, or the node's error message.
    pub(crate) async fn call(&self, to: Address, data: Bytes) -> Result<Bytes, String> {
        let (_permit, (_, client)) = self.pick().await;
        client
            .request::<Bytes, _>(
                "eth_call",
                rpc_params![json!({ "to": to, "data": data }), "latest"],
            )
            .await
            .map_err(|err| reason(&err))
    }

    /// Sends `txs` as batches of `eth_sendRawTransaction`: per transaction, `Ok` or the
    /// node's refusal (a failed request fails every transaction in it).
    pub(crate) async fn send(&self, txs: &[SignedTx]) -> Vec<Result<(), String>> {
        let mut out = Vec::with_capacity(txs.len());
        for chunk in txs.chunks(MAX_BATCH) {
            let mut batch = BatchRequestBuilder::new();
            for tx in chunk {
                // Inserting a serialisable parameter into a batch cannot fail.
                let _ = batch.insert("eth_sendRawTransaction", rpc_params![&tx.raw]);
            }
            let (_permit, (_, client)) = self.pick().await;
            match client.batch_request::<B256>(batch).await {
                Ok(responses) => {
                    out.extend(
                        responses
                            .into_iter()
                            .map(|r| r.map(|_| ()).map_err(|e| e.message().to_string())),
                    );
                }
                Err(err) => {
                    let why = reason(&err);
                    out.extend(chunk.iter().map(|_| Err(why.clone())));
                }
            }
        }
        out
    }

    /// Calls `method` once per entry of `params`, in batches: per call, the result or the
    /// node's error message.
    pub(crate) async fn batch<T: serde::de::DeserializeOwned + std::fmt::Debug>(
        &self,
        method: &str,
        params: Vec<jsonrpsee_core::params::ArrayParams>,
    ) -> anyhow::Result<Vec<Result<T, String>>> {
        let mut out = Vec::with_capacity(params.len());
        let mut params = params.into_iter().peekable();
        while params.peek().is_some() {
            let mut batch = BatchRequestBuilder::new();
            for p in params.by_ref().take(MAX_BATCH) {
                let _ = batch.insert(method, p);
            }
            let (_permit, (url, client)) = self.pick().await;
            let responses = client
                .batch_request::<T>(batch)
                .await
                .with_context(|| format!("{method} batch at {url}"))?;
            out.extend(
                responses
                    .into_iter()
                    .map(|r| r.map_err(|e| e.message().to_string())),
            );
        }
        Ok(out)
    }

    /// Batched `eth_call`s at the latest block (set-up checks).
    pub(crate) async fn calls(
        &self,
        calls: &[(Address, Bytes)],
    ) -> anyhow::Result<Vec<Result<Bytes, String>>> {
        let params = calls
            .iter()
            .map(|(to, data)| rpc_params![json!({ "to": to, "data": data }), "latest"])
            .collect();
        self.batch("eth_call", params).await
    }

    /// The pending nonces of `addresses`.
    pub(crate) async fn nonces(&self, addresses: &[Address]) -> anyhow::Result<Vec<u64>> {
        let params = addresses
            .iter()
            .map(|a| rpc_params![a, "pending"])
            .collect();
        self.batch::<U256>("eth_getTransactionCount", params)
            .await?
            .into_iter()
            .map(|r| r.map(|n| n.saturating_to()).map_err(|e| anyhow::anyhow!(e)))
            .collect()
    }
}

/// The short reason of a failed request (the node's message for JSON-RPC errors).
pub(crate) fn reason(err: &jsonrpsee_core::ClientError) -> String {
    match err {
        jsonrpsee_core::ClientError::Call(call) => call.message().to_string(),
        jsonrpsee_core::ClientError::RequestTimeout => "request timed out".to_string(),
        other => {
            let text = other.to_string();
            text.chars().take(120).collect()
        }
    }
}
