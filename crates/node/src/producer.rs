//! Block production on a validator: on every block period, build a block from the pool's
//! best transactions, commit it, and tell the pool and subscribers. Until the IBFT 2.0 engine
//! lands this is a single sealer; the engine will call the same building step as proposer.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alloy_primitives::{Address, B256, U256, keccak256};
use healthchain_chainspec::ChainConfig;
use healthchain_evm::{BlockTemplate, build_block_from};
use healthchain_primitives::ibft::IBFT_MIX_HASH;
use healthchain_rpc::{ChainEvents, NewBlock};
use healthchain_storage_api::{BlockReader, BlockWriter};
use healthchain_storage_mdbx::MdbxStore;
use healthchain_txpool::SharedPool;
use k256::ecdsa::SigningKey;
use tokio::sync::watch;

/// A node's secp256k1 key.
#[derive(Clone)]
pub struct NodeKey {
    key: SigningKey,
    address: Address,
}

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("NodeKey")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// A key file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NodeKeyError {
    /// Unreadable.
    #[error("cannot read key file {path}: {reason}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// Not 32 bytes of hex, or not a valid secp256k1 scalar.
    #[error("key file {path} does not hold a secp256k1 private key (64 hex digits)")]
    Invalid {
        /// The file.
        path: std::path::PathBuf,
    },
}

impl NodeKey {
    /// Parses a hex private key (with or without `0x`).
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = alloy_primitives::hex::decode(text.trim()).ok()?;
        let key = SigningKey::from_slice(&bytes).ok()?;
        let point = key.verifying_key().to_encoded_point(false);
        let address = Address::from_slice(&keccak256(&point.as_bytes()[1..])[12..]);
        Some(Self { key, address })
    }

    /// Reads a key file.
    pub fn load(path: &Path) -> Result<Self, NodeKeyError> {
        let text = std::fs::read_to_string(path).map_err(|e| NodeKeyError::Read {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Self::from_hex(&text).ok_or_else(|| NodeKeyError::Invalid {
            path: path.to_path_buf(),
        })
    }

    /// The address the key signs for.
    pub fn address(&self) -> Address {
        self.address
    }

    /// The signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }
}

pub(crate) struct Producer {
    pub(crate) store: Arc<MdbxStore>,
    pub(crate) chain: Arc<ChainConfig>,
    pub(crate) pool: Arc<SharedPool>,
    pub(crate) events: ChainEvents,
    pub(crate) beneficiary: Address,
    pub(crate) period: Duration,
}

impl Producer {
    pub(crate) async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let this = Arc::new(self);
        let mut ticker = tokio::time::interval(this.period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = ticker.tick() => {}
            }
            let worker = this.clone();
            // Building executes transactions: keep it off the async workers.
            match tokio::task::spawn_blocking(move || worker.produce()).await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => tracing::error!(%err, "block production failed"),
                Err(err) => tracing::error!(%err, "block production panicked"),
            }
        }
    }

    /// Builds, commits and announces one block.
    fn produce(&self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let store = self.store.as_ref();
        let (_, parent_hash) = store.head()?.ok_or("no genesis")?;
        let parent = store.header(parent_hash)?.ok_or("head header missing")?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let template = BlockTemplate {
            beneficiary: self.beneficiary,
            timestamp: now.max(parent.timestamp + 1),
            gas_limit: parent.gas_limit,
            extra_data: parent.extra_data.clone(),
            mix_hash: IBFT_MIX_HASH,
            difficulty: U256::from(1),
        };
        let started = std::time::Instant::now();
        let mut source = self.pool.block_source();
        let batch = build_block_from(&self.chain, store, template, &mut source)?;
        let dropped: Vec<B256> = source
            .invalid()
            .iter()
            .map(|(hash, reason)| {
                tracing::debug!(%hash, reason, "dropping invalid transaction");
                *hash
            })
            .collect();
        let block = Arc::new(NewBlock::from(&batch));
        let changed: Vec<Address> = batch.state.accounts.iter().map(|(a, _)| *a).collect();
        let (number, hash, txs) = (
            batch.header.number,
            batch.hash,
            batch.body.transactions.len(),
        );
        store.commit_block(batch)?;
        let outcome = self
            .pool
            .on_new_head(store, &self.chain, &dropped, changed)?;
        tracing::info!(
            number,
            %hash,
            txs,
            dropped = dropped.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "sealed block"
        );
        // Nobody listening is fine.
        let _ = self.events.blocks.send(block);
        for hash in outcome.promoted {
            let _ = self.events.pending.send(hash);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_are_parsed_strictly() {
        let key =
            NodeKey::from_hex("0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
                .unwrap();
        assert_eq!(
            key.address(),
            "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"
                .parse::<Address>()
                .unwrap()
        );
        assert!(NodeKey::from_hex("0x1234").is_none());
        assert!(
            NodeKey::from_hex(&"00".repeat(32)).is_none(),
            "zero is not a key"
        );
        assert!(NodeKey::from_hex("zz").is_none());
        assert!(format!("{key:?}").contains("address"));
        assert!(!format!("{key:?}").contains("4c0883"));
    }
}
