//! A JSON-RPC client for the operator commands (`deploy`, `health …`): reads over eth_call
//! and eth_getLogs, writes as EIP-1559 transactions signed locally with the operator's key
//! and sent with eth_sendRawTransaction. The key never leaves the process.

use std::path::PathBuf;
use std::time::Duration;

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256};
use anyhow::{Context, bail};
use clap::Args;
use healthchain_ibft::NodeKey;
use jsonrpsee_core::client::ClientT;
use jsonrpsee_core::rpc_params;
use jsonrpsee_http_client::{HttpClient, HttpClientBuilder};
use serde_json::{Value, json};

/// How to reach a node and whom to sign as.
#[derive(Debug, Clone, Args)]
pub(crate) struct RpcArgs {
    /// JSON-RPC HTTP endpoint.
    #[arg(
        long,
        env = "HEALTHCHAIN_RPC_URL",
        default_value = "http://127.0.0.1:8545"
    )]
    pub(crate) rpc_url: String,
    /// File holding the signing account's private key (hex). Needed by commands that send
    /// transactions.
    #[arg(long, env = "HEALTHCHAIN_KEY_FILE")]
    pub(crate) key_file: Option<PathBuf>,
    /// How long to wait for a transaction to be mined, in seconds.
    #[arg(long, default_value_t = 60)]
    pub(crate) wait_seconds: u64,
}

/// A connected client, with the signer when a key was given.
pub(crate) struct Client {
    http: HttpClient,
    url: String,
    key: Option<NodeKey>,
    chain_id: u64,
    wait: Duration,
}

/// A transaction that was mined.
#[derive(Debug, Clone)]
pub(crate) struct Mined {
    pub(crate) hash: B256,
    pub(crate) block: u64,
    pub(crate) gas_used: u64,
    pub(crate) contract_address: Option<Address>,
}

/// A call the EVM refused, with the revert data.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct Reverted {
    pub(crate) message: String,
    pub(crate) data: Bytes,
}

impl Client {
    /// Connects to `args.rpc_url` and reads the chain id; loads the key if one was given.
    pub(crate) async fn connect(args: &RpcArgs) -> anyhow::Result<Self> {
        let key = match &args.key_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading the key file {}", path.display()))?;
                Some(healthchain_node::key_from_hex(&text).with_context(|| {
                    format!(
                        "{}: not a 32-byte secp256k1 private key in hex",
                        path.display()
                    )
                })?)
            }
            None => None,
        };
        let http = HttpClientBuilder::default()
            .request_timeout(Duration::from_secs(30))
            .build(&args.rpc_url)
            .with_context(|| format!("bad JSON-RPC URL {:?}", args.rpc_url))?;
        let mut client = Self {
            http,
            url: args.rpc_url.clone(),
            key,
            chain_id: 0,
            wait: Duration::from_secs(args.wait_seconds.max(1)),
        };
        let id: U256 = client.request("eth_chainId", rpc_params![]).await?;
        client.chain_id = u64::try_from(id).context("chain id does not fit 64 bits")?;
        Ok(client)
    }

    pub(crate) const fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The signer's address (an error when no key was given).
    pub(crate) fn sender(&self) -> anyhow::Result<Address> {
        Ok(self.signer()?.address())
    }

    pub(crate) fn signer(&self) -> anyhow::Result<&NodeKey> {
        self.key
            .as_ref()
            .context("this command sends a transaction: give --key-file (or HEALTHCHAIN_KEY_FILE)")
    }

    async fn request<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        params: jsonrpsee_core::params::ArrayParams,
    ) -> anyhow::Result<T> {
        self.http
            .request(method, params)
            .await
            .with_context(|| format!("{method} at {}", self.url))
    }

    pub(crate) async fn code(&self, address: Address) -> anyhow::Result<Bytes> {
        self.request("eth_getCode", rpc_params![address, "latest"])
            .await
    }

    pub(crate) async fn block_number(&self) -> anyhow::Result<u64> {
        let n: U256 = self.request("eth_blockNumber", rpc_params![]).await?;
        Ok(n.saturating_to())
    }

    /// Runs `data` against `to` at the latest block, as the signer when there is one.
    pub(crate) async fn call(&self, to: Address, data: Bytes) -> anyhow::Result<Bytes> {
        let mut call = json!({ "to": to, "data": data });
        if let Some(key) = &self.key {
            call["from"] = json!(key.address());
        }
        match self
            .http
            .request::<Bytes, _>("eth_call", rpc_params![call, "latest"])
            .await
        {
            Ok(out) => Ok(out),
            Err(err) => Err(revert_from(err).into()),
        }
    }

    /// Logs of `addresses` in `[from, to]`, fetched in windows the node accepts.
    pub(crate) async fn logs(
        &self,
        addresses: &[Address],
        topics: Vec<Value>,
        from: u64,
        to: u64,
    ) -> anyhow::Result<Vec<Value>> {
        const WINDOW: u64 = 5_000;
        let mut out = Vec::new();
        let mut start = from;
        while start <= to {
            let end = to.min(start.saturating_add(WINDOW - 1));
            let filter = json!({
                "address": addresses,
                "fromBlock": format!("{start:#x}"),
                "toBlock": format!("{end:#x}"),
                "topics": topics,
            });
            let mut logs: Vec<Value> = self.request("eth_getLogs", rpc_params![filter]).await?;
            out.append(&mut logs);
            if end == u64::MAX {
                break;
            }
            start = end + 1;
        }
        Ok(out)
    }

    pub(crate) async fn block_timestamp(&self, number: u64) -> anyhow::Result<u64> {
        let block: Value = self
            .request(
                "eth_getBlockByNumber",
                rpc_params![format!("{number:#x}"), false],
            )
            .await?;
        let ts = block["timestamp"]
            .as_str()
            .context("block without timestamp")?;
        Ok(u64::from_str_radix(ts.trim_start_matches("0x"), 16)?)
    }

    /// [`Client::send`] to a contract, printing the mined transaction as the operator
    /// commands report it.
    pub(crate) async fn send_reported(&self, to: Address, data: Vec<u8>) -> anyhow::Result<Mined> {
        let mined = self.send(Some(to), data.into()).await?;
        println!(
            "ok: tx {} in block {} ({} gas)",
            mined.hash, mined.block, mined.gas_used
        );
        Ok(mined)
    }

    /// Signs and sends a transaction to `to` (or a contract creation), waits until it is
    /// mined, and fails with the decoded revert reason when it reverts. A call that would
    /// revert is refused before anything is sent.
    pub(crate) async fn send(&self, to: Option<Address>, data: Bytes) -> anyhow::Result<Mined> {
        let key = self.signer()?;
        let from = key.address();
        let mut call = json!({ "from": from, "data": data });
        if let Some(to) = to {
            call["to"] = json!(to);
        }
        let gas: U256 = match self
            .http
            .request("eth_estimateGas", rpc_params![call.clone()])
            .await
        {
            Ok(gas) => gas,
            Err(err) => return Err(revert_from(err).into()),
        };
        let nonce: U256 = self
            .request("eth_getTransactionCount", rpc_params![from, "pending"])
            .await?;
        let gas_price: U256 = self.request("eth_gasPrice", rpc_params![]).await?;
        let gas = gas.saturating_to::<u64>();
        let tx = TxEip1559 {
            chain_id: self.chain_id,
            nonce: nonce.saturating_to(),
            // Headroom over the estimate: state can change between estimate and inclusion.
            gas_limit: gas.saturating_add(gas / 5).saturating_add(10_000),
            max_fee_per_gas: gas_price.saturating_to::<u128>().saturating_mul(2),
            max_priority_fee_per_gas: 0,
            to: to.map_or(TxKind::Create, TxKind::Call),
            value: U256::ZERO,
            access_list: Default::default(),
            input: data,
        };
        let raw = Bytes::from(sign(key, tx)?.encoded_2718());
        let hash: B256 = self
            .request("eth_sendRawTransaction", rpc_params![raw])
            .await?;
        let receipt = self.wait_for_receipt(hash).await?;
        let status = receipt["status"].as_str().unwrap_or("0x0");
        let block = hex_u64(&receipt["blockNumber"]).unwrap_or_default();
        if status != "0x1" {
            // Replay at the parent block for the reason (the state the transaction saw).
            let mut replay = call;
            replay["gas"] = json!(format!("{:#x}", gas.saturating_mul(2)));
            let reason = match self
                .http
                .request::<Bytes, _>(
                    "eth_call",
                    rpc_params![replay, format!("{:#x}", block.saturating_sub(1))],
                )
                .await
            {
                Err(err) => revert_from(err).message,
                Ok(_) => "reverted (no reason)".to_string(),
            };
            bail!("transaction {hash} was mined in block {block} but reverted: {reason}");
        }
        Ok(Mined {
            hash,
            block,
            gas_used: hex_u64(&receipt["gasUsed"]).unwrap_or_default(),
            contract_address: receipt["contractAddress"]
                .as_str()
                .and_then(|a| a.parse().ok()),
        })
    }

    async fn wait_for_receipt(&self, hash: B256) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + self.wait;
        loop {
            let receipt: Value = self
                .request("eth_getTransactionReceipt", rpc_params![hash])
                .await?;
            if !receipt.is_null() {
                return Ok(receipt);
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "transaction {hash} was not mined within {} s (it may still be; check eth_getTransactionReceipt)",
                    self.wait.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// `tx` signed by `key`, as an envelope (its hash and EIP-2718 bytes from alloy).
pub(crate) fn sign(key: &NodeKey, tx: TxEip1559) -> anyhow::Result<TxEnvelope> {
    let signature = key
        .sign(tx.signature_hash())
        .context("signing the transaction")?;
    Ok(TxEnvelope::from(tx.into_signed(*signature.inner())))
}

pub(crate) fn hex_u64(value: &Value) -> Option<u64> {
    u64::from_str_radix(value.as_str()?.trim_start_matches("0x"), 16).ok()
}

/// The revert carried by a JSON-RPC error (code 3 with `data`), decoded against the health
/// contracts' custom errors; other errors are passed through as text.
fn revert_from(err: jsonrpsee_core::ClientError) -> Reverted {
    if let jsonrpsee_core::ClientError::Call(call) = &err {
        let data: Bytes = call
            .data()
            .and_then(|raw| serde_json::from_str::<Bytes>(raw.get()).ok())
            .unwrap_or_default();
        if !data.is_empty() || call.code() == 3 {
            return Reverted {
                message: format!("refused: {}", crate::health::decode_revert(&data)),
                data,
            };
        }
        return Reverted {
            message: format!(
                "the node refused the call: {} (code {})",
                call.message(),
                call.code()
            ),
            data: Bytes::new(),
        };
    }
    Reverted {
        message: format!("JSON-RPC request failed: {err}"),
        data: Bytes::new(),
    }
}
