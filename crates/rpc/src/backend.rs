//! What every namespace reads: the store, the chain config, the pool and chain events, plus
//! the conversions from stored blocks to the JSON objects clients expect.

use std::sync::Arc;

use alloy_consensus::{Sealed, Transaction as _};
use alloy_eips::{BlockId, BlockNumberOrTag, RpcBlockHash};
use alloy_primitives::{Address, B256, Bytes, U256};
use alloy_rpc_types_eth::{
    Block, BlockTransactions, Header as RpcHeader, Log, Transaction as RpcTransaction,
    TransactionReceipt,
};
use healthchain_chainspec::ChainConfig;
use healthchain_permissioning::LocalPermissions;
use healthchain_primitives::{Account, BlockBody, Header, Receipt, Transaction};
use healthchain_storage_api::{
    BlockBatch, BlockReader, ChainStore, StateAtRoot, StateReader, StorageResult, TxLocation,
};
use healthchain_txpool::SharedPool;
use tokio::sync::broadcast;

use crate::{
    RpcConfig,
    error::{RpcResult, block_not_found, invalid_params, storage, unknown_block},
};

/// A block as committed, for subscribers.
#[derive(Debug, Clone)]
pub struct NewBlock {
    /// Its hash.
    pub hash: B256,
    /// Its header.
    pub header: Header,
    /// Its body.
    pub body: BlockBody,
    /// Transaction senders.
    pub senders: Vec<Address>,
    /// Receipts.
    pub receipts: Vec<Receipt>,
}

impl From<&BlockBatch> for NewBlock {
    fn from(batch: &BlockBatch) -> Self {
        Self {
            hash: batch.hash,
            header: batch.header.clone(),
            body: batch.body.clone(),
            senders: batch.senders.clone(),
            receipts: batch.receipts.clone(),
        }
    }
}

/// Chain events the node publishes and RPC subscribers and filters consume.
#[derive(Debug, Clone)]
pub struct ChainEvents {
    /// Every block committed to the canonical chain, in order.
    pub blocks: broadcast::Sender<Arc<NewBlock>>,
    /// Hashes of transactions that became pending (executable) in the pool.
    pub pending: broadcast::Sender<B256>,
}

impl ChainEvents {
    /// Channels with room for `capacity` events per slow subscriber.
    pub fn new(capacity: usize) -> Self {
        Self {
            blocks: broadcast::channel(capacity).0,
            pending: broadcast::channel(capacity.saturating_mul(16)).0,
        }
    }
}

/// A connected peer, as `admin_peers` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSummary {
    /// Its node id: the 64-byte public key as 128 hex characters.
    pub id: String,
    /// `enode://<id>@ip:port` of the connection.
    pub enode: String,
    /// Its libp2p peer id.
    pub peer_id: String,
    /// Our end of the connection (`ip:port`, or the listen address).
    pub local_address: String,
    /// Its end.
    pub remote_address: String,
    /// Whether it dialled us.
    pub inbound: bool,
}

/// This node, as `admin_nodeInfo` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSummary {
    /// Node id (128 hex characters).
    pub id: String,
    /// `enode://<id>@ip:port`.
    pub enode: String,
    /// Listen IP.
    pub ip: String,
    /// Listen port.
    pub port: u16,
    /// Its libp2p peer id.
    pub peer_id: String,
}

/// What the RPC reads about the node's network and sync; the node implements it.
pub trait NodeStatus: Send + Sync {
    /// Connected peers.
    fn peer_count(&self) -> usize;
    /// Whether the node accepts peer connections.
    fn listening(&self) -> bool;
    /// `(starting block, highest block)` while the head is behind a peer's.
    fn sync_progress(&self, head: u64) -> Option<(u64, u64)>;
    /// The connected peers.
    fn peers(&self) -> Vec<PeerSummary>;
    /// This node's identity, if it runs the network.
    fn node_info(&self) -> Option<NodeSummary>;
    /// The local allowlists behind `perm_*`; `None` (the default) disables those methods'
    /// lists. Set it with [`RpcBackend::with_permissions`].
    fn local_permissions(&self) -> Option<Arc<LocalPermissions>> {
        None
    }
}

/// A [`NodeStatus`] that also hands out the local allowlists.
struct WithPermissions {
    inner: Arc<dyn NodeStatus>,
    permissions: Option<Arc<LocalPermissions>>,
}

impl NodeStatus for WithPermissions {
    fn peer_count(&self) -> usize {
        self.inner.peer_count()
    }
    fn listening(&self) -> bool {
        self.inner.listening()
    }
    fn sync_progress(&self, head: u64) -> Option<(u64, u64)> {
        self.inner.sync_progress(head)
    }
    fn peers(&self) -> Vec<PeerSummary> {
        self.inner.peers()
    }
    fn node_info(&self) -> Option<NodeSummary> {
        self.inner.node_info()
    }
    fn local_permissions(&self) -> Option<Arc<LocalPermissions>> {
        self.permissions.clone()
    }
}

/// A node without a network: no peers, never syncing.
#[derive(Debug, Default)]
pub struct Standalone;

impl NodeStatus for Standalone {
    fn peer_count(&self) -> usize {
        0
    }
    fn listening(&self) -> bool {
        false
    }
    fn sync_progress(&self, _: u64) -> Option<(u64, u64)> {
        None
    }
    fn peers(&self) -> Vec<PeerSummary> {
        Vec::new()
    }
    fn node_info(&self) -> Option<NodeSummary> {
        None
    }
}

/// Sends a transaction accepted over RPC to the node's peers.
pub type TxGossip = Arc<dyn Fn(&[u8]) + Send + Sync>;

/// Shared state behind every RPC namespace.
pub struct RpcBackend {
    /// The chain database.
    pub store: Arc<dyn ChainStore>,
    /// The chain's rules.
    pub chain: Arc<ChainConfig>,
    /// The transaction pool.
    pub pool: Arc<SharedPool>,
    /// Chain events.
    pub events: ChainEvents,
    /// Server settings and limits.
    pub config: RpcConfig,
    /// Peers and sync progress.
    pub node: Arc<dyn NodeStatus>,
    /// Where transactions accepted over RPC go to reach the other nodes.
    pub tx_gossip: Option<TxGossip>,
    /// The node's IBFT vote proposals (`ibft_proposeValidatorVote`); `None` disables them.
    pub votes: Option<Arc<parking_lot::Mutex<healthchain_ibft::votes::VoteProposer>>>,
    /// `web3_clientVersion`.
    pub client_version: String,
}

impl std::fmt::Debug for RpcBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcBackend")
            .field("chain_id", &self.chain.chain_id)
            .finish_non_exhaustive()
    }
}

/// A stored block and where it sits.
#[derive(Debug, Clone)]
pub struct BlockRef {
    /// Hash.
    pub hash: B256,
    /// Header.
    pub header: Header,
}

impl RpcBackend {
    /// The backend with `permissions` as the local allowlists the `perm_*` methods read
    /// and change (`None`: both lists disabled). It rides on [`RpcBackend::node`], so
    /// every existing way of building the backend keeps working.
    pub fn with_permissions(mut self, permissions: Option<Arc<LocalPermissions>>) -> Self {
        self.node = Arc::new(WithPermissions {
            inner: self.node,
            permissions,
        });
        self
    }

    /// The local allowlists, if the node has any.
    pub fn permissions(&self) -> Option<Arc<LocalPermissions>> {
        self.node.local_permissions()
    }

    /// The head block's number and hash.
    pub fn head(&self) -> RpcResult<(u64, B256)> {
        self.store
            .head()
            .map_err(storage)?
            .ok_or_else(|| crate::error::internal("the store has no genesis block"))
    }

    /// The canonical block at `number`, if any.
    pub fn block_at(&self, number: u64) -> RpcResult<Option<BlockRef>> {
        let Some(hash) = self.store.canonical_hash(number).map_err(storage)? else {
            return Ok(None);
        };
        self.block_by_hash(hash)
    }

    /// The block with `hash`, canonical or not.
    pub fn block_by_hash(&self, hash: B256) -> RpcResult<Option<BlockRef>> {
        Ok(self
            .store
            .header(hash)
            .map_err(storage)?
            .map(|header| BlockRef { hash, header }))
    }

    /// The block number a tag names; `None` for a number above the head (Besu answers null).
    /// IBFT 2.0 blocks are final once committed, so `safe` and `finalized` are the head
    /// (Besu answers -39001 on IBFT chains; see docs/rpc.md).
    pub fn resolve_number(&self, tag: BlockNumberOrTag) -> RpcResult<Option<u64>> {
        let (head, _) = self.head()?;
        Ok(match tag {
            BlockNumberOrTag::Latest
            | BlockNumberOrTag::Pending
            | BlockNumberOrTag::Safe
            | BlockNumberOrTag::Finalized => Some(head),
            BlockNumberOrTag::Earliest => Some(0),
            BlockNumberOrTag::Number(n) => (n <= head).then_some(n),
        })
    }

    /// The block a tag names, if it exists.
    pub fn block_by_tag(&self, tag: BlockNumberOrTag) -> RpcResult<Option<BlockRef>> {
        match self.resolve_number(tag)? {
            Some(number) => self.block_at(number),
            None => Ok(None),
        }
    }

    /// The block a block id names (number, tag or hash; `requireCanonical` honoured).
    pub fn block_by_id(&self, id: BlockId) -> RpcResult<Option<BlockRef>> {
        match id {
            BlockId::Number(tag) => self.block_by_tag(tag),
            BlockId::Hash(RpcBlockHash {
                block_hash,
                require_canonical,
            }) => {
                let Some(block) = self.block_by_hash(block_hash)? else {
                    return Err(block_not_found());
                };
                if require_canonical == Some(true)
                    && self
                        .store
                        .canonical_hash(block.header.number)
                        .map_err(storage)?
                        != Some(block_hash)
                {
                    return Err(invalid_params("Block is not canonical"));
                }
                Ok(Some(block))
            }
        }
    }

    /// The state after the block `id` names, with that block (`None` for a number above the
    /// head). A missing block parameter means `latest`.
    pub fn state_at(&self, id: Option<BlockId>) -> RpcResult<Option<(BlockState<'_>, BlockRef)>> {
        let id = id.unwrap_or(BlockId::Number(BlockNumberOrTag::Latest));
        let Some(block) = self.block_by_id(id)? else {
            return Ok(None);
        };
        let (_, head_hash) = self.head()?;
        let root = (block.hash != head_hash).then_some(block.header.state_root);
        Ok(Some((
            BlockState {
                store: self.store.as_ref(),
                root,
            },
            block,
        )))
    }

    /// Like [`Self::state_at`] but an absent block is -39001 (for methods that must answer).
    pub fn require_state_at(&self, id: Option<BlockId>) -> RpcResult<(BlockState<'_>, BlockRef)> {
        self.state_at(id)?.ok_or_else(unknown_block)
    }

    /// The JSON block object.
    pub fn rpc_block(&self, block: &BlockRef, full: bool) -> RpcResult<Option<Block>> {
        let Some(body) = self.store.body(block.hash).map_err(storage)? else {
            return Ok(None);
        };
        let senders = self
            .store
            .senders(block.hash)
            .map_err(storage)?
            .unwrap_or_default();
        Ok(Some(build_block(block, body, &senders, full)))
    }

    /// A mined transaction with its location.
    pub fn mined_transaction(&self, location: TxLocation) -> RpcResult<Option<RpcTransaction>> {
        let Some(header) = self.store.header(location.block_hash).map_err(storage)? else {
            return Ok(None);
        };
        let Some(body) = self.store.body(location.block_hash).map_err(storage)? else {
            return Ok(None);
        };
        let senders = self
            .store
            .senders(location.block_hash)
            .map_err(storage)?
            .unwrap_or_default();
        let index = location.index as usize;
        let (Some(tx), Some(sender)) = (body.transactions.get(index), senders.get(index)) else {
            return Ok(None);
        };
        Ok(Some(rpc_transaction(
            tx.clone(),
            *sender,
            Some((location.block_hash, &header, index)),
        )))
    }

    /// Receipts of a block as JSON objects.
    pub fn block_receipts(&self, block: &BlockRef) -> RpcResult<Option<Vec<TransactionReceipt>>> {
        let hash = block.hash;
        let (Some(body), Some(receipts)) = (
            self.store.body(hash).map_err(storage)?,
            self.store.receipts(hash).map_err(storage)?,
        ) else {
            return Ok(None);
        };
        let senders = self
            .store
            .senders(hash)
            .map_err(storage)?
            .unwrap_or_default();
        Ok(Some(build_receipts(block, &body, &senders, &receipts)))
    }
}

/// Reads the state after one block: the flat latest state for the head, the archived trie
/// for older blocks. Blocks are read from the store either way.
#[derive(Clone, Copy)]
pub struct BlockState<'a> {
    store: &'a dyn ChainStore,
    root: Option<B256>,
}

impl BlockState<'_> {
    /// Account, or `None`.
    pub fn account_or_empty(&self, address: Address) -> RpcResult<Account> {
        Ok(self.account(address).map_err(storage)?.unwrap_or_default())
    }

    /// The state root these reads go through (`None`: the flat head state).
    pub fn root(&self) -> Option<B256> {
        self.root
    }

    /// The underlying store.
    pub fn store(&self) -> &dyn ChainStore {
        self.store
    }
}

impl StateReader for BlockState<'_> {
    fn account(&self, address: Address) -> StorageResult<Option<Account>> {
        match self.root {
            None => self.store.account(address),
            Some(root) => StateAtRoot::new(self.store, root).account(address),
        }
    }

    fn storage(&self, address: Address, slot: B256) -> StorageResult<U256> {
        match self.root {
            None => self.store.storage(address, slot),
            Some(root) => StateAtRoot::new(self.store, root).storage(address, slot),
        }
    }

    fn bytecode(&self, code_hash: B256) -> StorageResult<Option<Bytes>> {
        self.store.bytecode(code_hash)
    }

    fn trie_node(&self, hash: B256) -> StorageResult<Option<Vec<u8>>> {
        self.store.trie_node(hash)
    }
}

impl BlockReader for BlockState<'_> {
    fn head(&self) -> StorageResult<Option<(u64, B256)>> {
        self.store.head()
    }
    fn canonical_hash(&self, number: u64) -> StorageResult<Option<B256>> {
        self.store.canonical_hash(number)
    }
    fn header(&self, hash: B256) -> StorageResult<Option<Header>> {
        self.store.header(hash)
    }
    fn body(&self, hash: B256) -> StorageResult<Option<BlockBody>> {
        self.store.body(hash)
    }
    fn senders(&self, hash: B256) -> StorageResult<Option<Vec<Address>>> {
        self.store.senders(hash)
    }
    fn receipts(&self, hash: B256) -> StorageResult<Option<Vec<Receipt>>> {
        self.store.receipts(hash)
    }
    fn transaction_location(&self, tx_hash: B256) -> StorageResult<Option<TxLocation>> {
        self.store.transaction_location(tx_hash)
    }
}

/// The JSON transaction object; `at` is the block hash, header and index once mined.
pub(crate) fn rpc_transaction(
    tx: Transaction,
    sender: Address,
    at: Option<(B256, &Header, usize)>,
) -> RpcTransaction {
    let effective_gas_price =
        at.map(|(_, header, _)| tx.effective_gas_price(header.base_fee_per_gas));
    RpcTransaction {
        inner: alloy_consensus::transaction::Recovered::new_unchecked(tx, sender),
        block_hash: at.map(|(hash, _, _)| hash),
        block_number: at.map(|(_, header, _)| header.number),
        transaction_index: at.map(|(_, _, index)| index as u64),
        effective_gas_price,
        block_timestamp: at.map(|(_, header, _)| header.timestamp),
    }
}

/// The JSON block object from its parts.
pub(crate) fn build_block(
    block: &BlockRef,
    body: BlockBody,
    senders: &[Address],
    full: bool,
) -> Block {
    let size = alloy_rlp::Encodable::length(&alloy_consensus::Block {
        header: block.header.clone(),
        body: body.clone(),
    });
    let transactions = if full {
        BlockTransactions::Full(
            body.transactions
                .into_iter()
                .zip(senders.iter().copied())
                .enumerate()
                .map(|(index, (tx, sender))| {
                    rpc_transaction(tx, sender, Some((block.hash, &block.header, index)))
                })
                .collect(),
        )
    } else {
        BlockTransactions::Hashes(body.transactions.iter().map(|tx| *tx.tx_hash()).collect())
    };
    Block {
        header: rpc_header(block, Some(U256::from(size))),
        uncles: Vec::new(),
        transactions,
        withdrawals: body.withdrawals,
    }
}

/// The JSON header object (newHeads notifications, block objects).
pub(crate) fn rpc_header(block: &BlockRef, size: Option<U256>) -> RpcHeader {
    RpcHeader::from_consensus(
        Sealed::new_unchecked(block.header.clone(), block.hash),
        None,
        size,
    )
}

/// Receipts of a block as JSON objects.
pub(crate) fn build_receipts(
    block: &BlockRef,
    body: &BlockBody,
    senders: &[Address],
    receipts: &[Receipt],
) -> Vec<TransactionReceipt> {
    let mut log_index = 0u64;
    let mut previous_gas = 0u64;
    let mut out = Vec::with_capacity(receipts.len());
    for (index, ((receipt, tx), sender)) in receipts
        .iter()
        .zip(&body.transactions)
        .zip(senders)
        .enumerate()
    {
        let cumulative = receipt.cumulative_gas_used();
        let gas_used = cumulative.saturating_sub(previous_gas);
        previous_gas = cumulative;
        let tx_hash = *tx.tx_hash();
        let inner = receipt.clone().map_logs(|log| {
            let rpc_log = Log {
                inner: log,
                block_hash: Some(block.hash),
                block_number: Some(block.header.number),
                block_timestamp: Some(block.header.timestamp),
                transaction_hash: Some(tx_hash),
                transaction_index: Some(index as u64),
                log_index: Some(log_index),
                removed: false,
            };
            log_index += 1;
            rpc_log
        });
        out.push(TransactionReceipt {
            inner,
            transaction_hash: tx_hash,
            transaction_index: Some(index as u64),
            block_hash: Some(block.hash),
            block_number: Some(block.header.number),
            gas_used,
            effective_gas_price: tx.effective_gas_price(block.header.base_fee_per_gas),
            blob_gas_used: None,
            blob_gas_price: None,
            from: *sender,
            to: tx.to(),
            contract_address: tx.kind().is_create().then(|| sender.create(tx.nonce())),
        });
    }
    out
}

/// Every log of a block as JSON objects, indexed across the block.
pub(crate) fn block_logs(block: &BlockRef, body: &BlockBody, receipts: &[Receipt]) -> Vec<Log> {
    let mut log_index = 0u64;
    let mut out = Vec::new();
    for (index, (receipt, tx)) in receipts.iter().zip(&body.transactions).enumerate() {
        for log in receipt.logs() {
            out.push(Log {
                inner: log.clone(),
                block_hash: Some(block.hash),
                block_number: Some(block.header.number),
                block_timestamp: Some(block.header.timestamp),
                transaction_hash: Some(*tx.tx_hash()),
                transaction_index: Some(index as u64),
                log_index: Some(log_index),
                removed: false,
            });
            log_index += 1;
        }
    }
    out
}
