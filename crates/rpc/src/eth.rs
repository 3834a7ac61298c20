//! The `eth_` namespace.

use std::sync::Arc;

use alloy_eips::{BlockId, BlockNumberOrTag};
use alloy_primitives::{Address, B256, Bytes, TxKind, U64, U256, keccak256};
use alloy_rpc_types_eth::{
    Block, EIP1186AccountProofResponse, EIP1186StorageProof, FeeHistory, Filter, FilterChanges,
    Index, Log, SyncInfo, SyncStatus, Transaction as RpcTransaction, TransactionReceipt,
    TransactionRequest,
    pubsub::{Params, SubscriptionKind},
    state::StateOverride,
};
use alloy_serde::JsonStorageKey;
use healthchain_evm::{AccountOverride, CallOptions};
use healthchain_storage_api::{StateNodes, StateReader};
use jsonrpsee::{
    PendingSubscriptionSink,
    core::{SubscriptionResult, async_trait},
    proc_macros::rpc,
    types::ErrorObject,
};
use revm::context::{TxEnv, result::ExecutionResult};
use tokio::sync::Semaphore;

use crate::{
    backend::{BlockRef, BlockState, RpcBackend, rpc_transaction},
    error::{RpcResult, call_error, halted, internal, invalid_params, reverted, storage},
    filters::FilterManager,
    pubsub,
};

/// The `eth_` methods.
#[rpc(server, namespace = "eth")]
pub trait EthApi {
    /// Number of the most recent block.
    #[method(name = "blockNumber")]
    async fn block_number(&self) -> RpcResult<U64>;
    /// EIP-155 chain id.
    #[method(name = "chainId")]
    async fn chain_id(&self) -> RpcResult<U64>;
    /// Sync progress, or `false`.
    #[method(name = "syncing")]
    async fn syncing(&self) -> RpcResult<SyncStatus>;
    /// Suggested legacy gas price.
    #[method(name = "gasPrice")]
    async fn gas_price(&self) -> RpcResult<U256>;
    /// Suggested priority fee.
    #[method(name = "maxPriorityFeePerGas")]
    async fn max_priority_fee_per_gas(&self) -> RpcResult<U256>;
    /// Base fees, gas ratios and reward percentiles of recent blocks.
    #[method(name = "feeHistory")]
    async fn fee_history(
        &self,
        block_count: U64,
        newest_block: BlockNumberOrTag,
        reward_percentiles: Option<Vec<f64>>,
    ) -> RpcResult<FeeHistory>;
    /// Always empty: the node holds no keys.
    #[method(name = "accounts")]
    async fn accounts(&self) -> RpcResult<Vec<Address>>;
    /// Whether the node mines (IBFT validators seal; reported as false like Besu).
    #[method(name = "mining")]
    async fn mining(&self) -> RpcResult<bool>;
    /// Balance of an account.
    #[method(name = "getBalance")]
    async fn balance(&self, address: Address, block: Option<BlockId>) -> RpcResult<Option<U256>>;
    /// Code of an account.
    #[method(name = "getCode")]
    async fn code(&self, address: Address, block: Option<BlockId>) -> RpcResult<Option<Bytes>>;
    /// A storage slot.
    #[method(name = "getStorageAt")]
    async fn storage_at(
        &self,
        address: Address,
        slot: JsonStorageKey,
        block: Option<BlockId>,
    ) -> RpcResult<Option<B256>>;
    /// Nonce of an account; `pending` counts the pool's executable transactions.
    #[method(name = "getTransactionCount")]
    async fn transaction_count(
        &self,
        address: Address,
        block: Option<BlockId>,
    ) -> RpcResult<Option<U64>>;
    /// Executes a call without creating a transaction.
    #[method(name = "call")]
    async fn call(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
        state_override: Option<StateOverride>,
    ) -> RpcResult<Bytes>;
    /// Gas a transaction needs (binary search; a revert returns its data).
    #[method(name = "estimateGas")]
    async fn estimate_gas(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
        state_override: Option<StateOverride>,
    ) -> RpcResult<U64>;
    /// Submits a signed transaction.
    #[method(name = "sendRawTransaction")]
    async fn send_raw_transaction(&self, raw: Bytes) -> RpcResult<B256>;
    /// Not supported: the node holds no keys.
    #[method(name = "sendTransaction")]
    async fn send_transaction(&self, request: serde_json::Value) -> RpcResult<B256>;
    /// A transaction by hash, mined or pending.
    #[method(name = "getTransactionByHash")]
    async fn transaction_by_hash(&self, hash: B256) -> RpcResult<Option<RpcTransaction>>;
    /// A transaction by block hash and index.
    #[method(name = "getTransactionByBlockHashAndIndex")]
    async fn transaction_by_block_hash_and_index(
        &self,
        hash: B256,
        index: Index,
    ) -> RpcResult<Option<RpcTransaction>>;
    /// A transaction by block number and index.
    #[method(name = "getTransactionByBlockNumberAndIndex")]
    async fn transaction_by_block_number_and_index(
        &self,
        number: BlockNumberOrTag,
        index: Index,
    ) -> RpcResult<Option<RpcTransaction>>;
    /// The receipt of a mined transaction.
    #[method(name = "getTransactionReceipt")]
    async fn transaction_receipt(&self, hash: B256) -> RpcResult<Option<TransactionReceipt>>;
    /// A block by number or tag.
    #[method(name = "getBlockByNumber")]
    async fn block_by_number(
        &self,
        number: BlockNumberOrTag,
        full: bool,
    ) -> RpcResult<Option<Block>>;
    /// A block by hash.
    #[method(name = "getBlockByHash")]
    async fn block_by_hash(&self, hash: B256, full: bool) -> RpcResult<Option<Block>>;
    /// All receipts of a block.
    #[method(name = "getBlockReceipts")]
    async fn block_receipts(&self, block: BlockId) -> RpcResult<Option<Vec<TransactionReceipt>>>;
    /// Transaction count of a block by hash.
    #[method(name = "getBlockTransactionCountByHash")]
    async fn block_transaction_count_by_hash(&self, hash: B256) -> RpcResult<Option<U64>>;
    /// Transaction count of a block by number.
    #[method(name = "getBlockTransactionCountByNumber")]
    async fn block_transaction_count_by_number(
        &self,
        number: BlockNumberOrTag,
    ) -> RpcResult<Option<U64>>;
    /// Uncle count (always zero on IBFT 2.0).
    #[method(name = "getUncleCountByBlockHash")]
    async fn uncle_count_by_block_hash(&self, hash: B256) -> RpcResult<Option<U64>>;
    /// Uncle count (always zero on IBFT 2.0).
    #[method(name = "getUncleCountByBlockNumber")]
    async fn uncle_count_by_block_number(&self, number: BlockNumberOrTag)
    -> RpcResult<Option<U64>>;
    /// An uncle (never any on IBFT 2.0).
    #[method(name = "getUncleByBlockHashAndIndex")]
    async fn uncle_by_block_hash_and_index(
        &self,
        hash: B256,
        index: Index,
    ) -> RpcResult<Option<Block>>;
    /// An uncle (never any on IBFT 2.0).
    #[method(name = "getUncleByBlockNumberAndIndex")]
    async fn uncle_by_block_number_and_index(
        &self,
        number: BlockNumberOrTag,
        index: Index,
    ) -> RpcResult<Option<Block>>;
    /// Logs matching a filter over a bounded block range.
    #[method(name = "getLogs")]
    async fn logs(&self, filter: Filter) -> RpcResult<Vec<Log>>;
    /// Installs a log filter.
    #[method(name = "newFilter")]
    async fn new_filter(&self, filter: Filter) -> RpcResult<U256>;
    /// Installs a new-block filter.
    #[method(name = "newBlockFilter")]
    async fn new_block_filter(&self) -> RpcResult<U256>;
    /// Installs a pending-transaction filter.
    #[method(name = "newPendingTransactionFilter")]
    async fn new_pending_transaction_filter(&self) -> RpcResult<U256>;
    /// What a filter saw since the last poll.
    #[method(name = "getFilterChanges")]
    async fn filter_changes(&self, id: U256) -> RpcResult<FilterChanges>;
    /// All logs matching a log filter.
    #[method(name = "getFilterLogs")]
    async fn filter_logs(&self, id: U256) -> RpcResult<Vec<Log>>;
    /// Removes a filter.
    #[method(name = "uninstallFilter")]
    async fn uninstall_filter(&self, id: U256) -> RpcResult<bool>;
    /// Merkle proof of an account and some of its storage.
    #[method(name = "getProof")]
    async fn proof(
        &self,
        address: Address,
        keys: Vec<JsonStorageKey>,
        block: Option<BlockId>,
    ) -> RpcResult<Option<EIP1186AccountProofResponse>>;
    /// WebSocket subscriptions: newHeads, logs, newPendingTransactions.
    #[subscription(name = "subscribe" => "subscription", unsubscribe = "unsubscribe", item = serde_json::Value)]
    async fn subscribe(&self, kind: SubscriptionKind, params: Option<Params>)
    -> SubscriptionResult;
}

/// Implementation of [`EthApiServer`].
#[derive(Debug, Clone)]
pub struct EthRpc {
    backend: Arc<RpcBackend>,
    filters: Arc<FilterManager>,
    /// Bounds the EVM and trie work running at once on the blocking pool, so a flood of
    /// expensive calls queues instead of starving block production of CPU.
    heavy: Arc<Semaphore>,
}

impl EthRpc {
    /// The namespace over `backend`, with its filter registry.
    pub fn new(backend: Arc<RpcBackend>, filters: Arc<FilterManager>) -> Self {
        let permits = backend.config.max_concurrent_heavy_calls.max(1);
        Self {
            backend,
            filters,
            heavy: Arc::new(Semaphore::new(permits)),
        }
    }

    /// The shared backend.
    pub(crate) fn backend(&self) -> &RpcBackend {
        &self.backend
    }

    /// Runs `work` (EVM execution, trie walks, log scans) on tokio's blocking pool, at most
    /// `max-concurrent-heavy-calls` at a time: the async workers that answer every other
    /// request never run it, so one client's endless loop cannot stall the others.
    pub(crate) async fn heavy<T, F>(&self, work: F) -> RpcResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Self) -> RpcResult<T> + Send + 'static,
    {
        let permit = self
            .heavy
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| internal("the RPC server is shutting down"))?;
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work(&this)
        })
        .await
        .map_err(|err| internal(format!("RPC worker failed: {err}")))?
    }

    /// The transaction environment and call options for a call request.
    fn call_env(
        &self,
        request: &TransactionRequest,
        block: &BlockRef,
    ) -> RpcResult<(TxEnv, CallOptions)> {
        let data = request
            .input
            .clone()
            .try_into_unique_input()
            .map_err(|_| invalid_params("Invalid call params"))?
            .unwrap_or_default();
        let gas_limit = request.gas.unwrap_or(u64::MAX).min(self.gas_cap(block));
        let priced = request.gas_price.is_some_and(|p| p > 0)
            || request.max_fee_per_gas.is_some_and(|p| p > 0)
            || request.max_priority_fee_per_gas.is_some_and(|p| p > 0);
        let (tx_type, gas_price, priority) = match (
            request.gas_price,
            request.max_fee_per_gas,
            request.max_priority_fee_per_gas,
        ) {
            (_, Some(max_fee), priority) => (2, max_fee, Some(priority.unwrap_or(0))),
            (None, None, Some(priority)) => (2, priority, Some(priority)),
            (Some(price), None, _) => (u8::from(request.access_list.is_some()), price, None),
            (None, None, None) => (u8::from(request.access_list.is_some()), 0, None),
        };
        let tx = TxEnv {
            tx_type,
            caller: request.from.unwrap_or_default(),
            gas_limit,
            gas_price,
            kind: request.to.unwrap_or(TxKind::Create),
            value: request.value.unwrap_or_default(),
            data,
            nonce: request.nonce.unwrap_or_default(),
            chain_id: Some(self.backend.chain.chain_id),
            access_list: request.access_list.clone().unwrap_or_default(),
            gas_priority_fee: priority,
            ..Default::default()
        };
        let options = CallOptions {
            skip_balance_check: !priced,
            skip_base_fee: !priced,
        };
        Ok((tx, options))
    }

    /// The most gas one call may use at `block`: `[rpc] gas-cap`, and never more than the
    /// block's gas limit (as Besu's `--rpc-gas-cap`, which also caps explicit `gas` values).
    fn gas_cap(&self, block: &BlockRef) -> u64 {
        self.backend.config.gas_cap.min(block.header.gas_limit)
    }

    fn run_call(
        &self,
        state: &BlockState<'_>,
        block: &BlockRef,
        tx: TxEnv,
        overrides: &[(Address, AccountOverride)],
        options: CallOptions,
    ) -> RpcResult<ExecutionResult> {
        healthchain_evm::call(
            &self.backend.chain,
            state,
            &block.header,
            tx,
            overrides,
            options,
        )
        .map_err(call_error)
    }

    /// `eth_call`, on a blocking thread.
    fn call_blocking(
        &self,
        request: &TransactionRequest,
        block: Option<BlockId>,
        state_override: Option<StateOverride>,
    ) -> RpcResult<Bytes> {
        let (state, block) = self.backend.require_state_at(block)?;
        let (tx, options) = self.call_env(request, &block)?;
        match self.run_call(&state, &block, tx, &overrides(state_override), options)? {
            ExecutionResult::Success { output, .. } => Ok(output.into_data()),
            ExecutionResult::Revert { output, .. } => Err(reverted(&output)),
            ExecutionResult::Halt { reason, .. } => Err(halted(reason)),
        }
    }

    /// `eth_estimateGas`, on a blocking thread.
    fn estimate_gas_blocking(
        &self,
        request: &TransactionRequest,
        block: Option<BlockId>,
        state_override: Option<StateOverride>,
    ) -> RpcResult<U64> {
        let (state, block) = self.backend.require_state_at(block)?;
        let overrides = overrides(state_override);
        let (mut tx, options) = self.call_env(request, &block)?;
        let mut hi = request.gas.unwrap_or(u64::MAX).min(self.gas_cap(&block));
        // With a price, the sender's balance bounds the gas it can buy.
        if !options.skip_balance_check && tx.gas_price > 0 {
            let balance = state.account_or_empty(tx.caller)?.balance;
            let affordable = balance.saturating_sub(tx.value) / U256::from(tx.gas_price);
            hi = hi.min(affordable.saturating_to::<u64>());
            if hi < TRANSFER_GAS {
                return Err(ErrorObject::owned(
                    -32004,
                    "Upfront cost exceeds account balance",
                    None::<()>,
                ));
            }
        }
        let attempt = |gas: u64, tx: &mut TxEnv| -> RpcResult<ExecutionResult> {
            tx.gas_limit = gas;
            self.run_call(&state, &block, tx.clone(), &overrides, options)
        };
        // A plain transfer to an account without code costs exactly the base fee.
        if tx.data.is_empty()
            && let TxKind::Call(to) = tx.kind
        {
            let code_hash = state.account_or_empty(to)?.code_hash;
            let no_code = code_hash == alloy_primitives::KECCAK256_EMPTY || code_hash.is_zero();
            if no_code
                && overrides.iter().all(|(a, o)| *a != to || o.code.is_none())
                && attempt(TRANSFER_GAS, &mut tx)?.is_success()
            {
                return Ok(U64::from(TRANSFER_GAS));
            }
        }
        let used = match attempt(hi, &mut tx)? {
            ExecutionResult::Success { gas, .. } => gas.tx_gas_used(),
            ExecutionResult::Revert { output, .. } => return Err(reverted(&output)),
            ExecutionResult::Halt { reason, .. } => return Err(halted(reason)),
        };
        // Besu's search: try an optimistic bound first, then bisect to 1.5 % of the answer.
        let mut lo = used.saturating_sub(1);
        let optimistic = (used + 2_300) * 64 / 63;
        if optimistic < hi {
            if attempt(optimistic, &mut tx)?.is_success() {
                hi = optimistic;
            } else {
                lo = optimistic;
            }
        }
        while hi.saturating_sub(lo) > 1 && (hi - lo) * 1000 > hi * 15 {
            let mid = lo + (hi - lo) / 2;
            if attempt(mid, &mut tx)?.is_success() {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        Ok(U64::from(hi))
    }

    /// `eth_getProof`, on a blocking thread.
    fn proof_blocking(
        &self,
        address: Address,
        keys: Vec<JsonStorageKey>,
        block: Option<BlockId>,
    ) -> RpcResult<Option<EIP1186AccountProofResponse>> {
        let Some((state, block)) = self.backend.state_at(block)? else {
            return Ok(None);
        };
        if keys.len() > self.backend.config.max_proof_keys {
            return Err(invalid_params("Too many storage keys requested"));
        }
        let nodes = StateNodes::new(&state);
        let root = block.header.state_root;
        let trie_proof = |root: B256, key: B256| -> RpcResult<Vec<Bytes>> {
            let proof = healthchain_trie::proof(&nodes, root, key.as_slice()).map_err(internal)?;
            match nodes.take_error() {
                Some(err) => Err(storage(err)),
                None => Ok(proof),
            }
        };
        let account_proof = trie_proof(root, keccak256(address))?;
        let account = state.account_or_empty(address)?;
        let mut storage_proof = Vec::with_capacity(keys.len());
        for key in keys {
            let slot = key.as_b256();
            storage_proof.push(EIP1186StorageProof {
                key,
                value: state.storage(address, slot).map_err(storage)?,
                proof: trie_proof(account.storage_root, keccak256(slot))?,
            });
        }
        Ok(Some(EIP1186AccountProofResponse {
            address,
            balance: account.balance,
            code_hash: account.code_hash,
            nonce: account.nonce,
            storage_hash: account.storage_root,
            account_proof,
            storage_proof,
        }))
    }

    /// The head block's base fee (0 before London).
    fn head_base_fee(&self) -> RpcResult<u128> {
        let (head, _) = self.backend.head()?;
        Ok(self
            .backend
            .block_at(head)?
            .and_then(|b| b.header.base_fee_per_gas)
            .map_or(0, u128::from))
    }

    fn block_tx_count(&self, block: Option<BlockRef>) -> RpcResult<Option<U64>> {
        let Some(block) = block else { return Ok(None) };
        let body = self.backend.store.body(block.hash).map_err(storage)?;
        Ok(body.map(|b| U64::from(b.transactions.len())))
    }

    fn tx_in_block(
        &self,
        block: Option<BlockRef>,
        index: Index,
    ) -> RpcResult<Option<RpcTransaction>> {
        let Some(block) = block else { return Ok(None) };
        let index: usize = index.into();
        let Some(body) = self.backend.store.body(block.hash).map_err(storage)? else {
            return Ok(None);
        };
        let senders = self
            .backend
            .store
            .senders(block.hash)
            .map_err(storage)?
            .unwrap_or_default();
        Ok(body
            .transactions
            .get(index)
            .zip(senders.get(index))
            .map(|(tx, sender)| {
                rpc_transaction(
                    tx.clone(),
                    *sender,
                    Some((block.hash, &block.header, index)),
                )
            }))
    }
}

fn overrides(state_override: Option<StateOverride>) -> Vec<(Address, AccountOverride)> {
    state_override
        .into_iter()
        .flatten()
        .map(|(address, o)| {
            (
                address,
                AccountOverride {
                    balance: o.balance,
                    nonce: o.nonce,
                    code: o.code,
                    state: o.state.map(|m| m.into_iter().collect()),
                    state_diff: o.state_diff.map(|m| m.into_iter().collect()),
                },
            )
        })
        .collect()
}

/// The gas a plain value transfer costs.
const TRANSFER_GAS: u64 = 21_000;

#[async_trait]
impl EthApiServer for EthRpc {
    async fn block_number(&self) -> RpcResult<U64> {
        Ok(U64::from(self.backend.head()?.0))
    }

    async fn chain_id(&self) -> RpcResult<U64> {
        Ok(U64::from(self.backend.chain.chain_id))
    }

    async fn syncing(&self) -> RpcResult<SyncStatus> {
        let (head, _) = self.backend.head()?;
        let Some((start, highest)) = self.backend.node.sync_progress(head) else {
            return Ok(SyncStatus::None);
        };
        Ok(SyncStatus::Info(Box::new(SyncInfo {
            starting_block: U256::from(start),
            current_block: U256::from(head),
            highest_block: U256::from(highest),
            ..Default::default()
        })))
    }

    async fn gas_price(&self) -> RpcResult<U256> {
        let base = self.head_base_fee()?;
        let suggested = base + u128::from(self.backend.config.suggested_priority_fee);
        Ok(U256::from(suggested.max(self.backend.pool.min_gas_price())))
    }

    async fn max_priority_fee_per_gas(&self) -> RpcResult<U256> {
        // At least what lifts base fee + tip to the pool's minimum gas price, so libraries
        // that build EIP-1559 fees from this answer (viem, web3.py) are not refused.
        let base = self.head_base_fee()?;
        let floor = self.backend.pool.min_gas_price().saturating_sub(base);
        Ok(U256::from(
            u128::from(self.backend.config.suggested_priority_fee).max(floor),
        ))
    }

    async fn fee_history(
        &self,
        block_count: U64,
        newest_block: BlockNumberOrTag,
        reward_percentiles: Option<Vec<f64>>,
    ) -> RpcResult<FeeHistory> {
        self.heavy(move |this| {
            crate::fees::fee_history(
                &this.backend,
                block_count.to::<u64>(),
                newest_block,
                reward_percentiles,
            )
        })
        .await
    }

    async fn accounts(&self) -> RpcResult<Vec<Address>> {
        Ok(Vec::new())
    }

    async fn mining(&self) -> RpcResult<bool> {
        Ok(false)
    }

    async fn balance(&self, address: Address, block: Option<BlockId>) -> RpcResult<Option<U256>> {
        let Some((state, _)) = self.backend.state_at(block)? else {
            return Ok(None);
        };
        Ok(Some(state.account_or_empty(address)?.balance))
    }

    async fn code(&self, address: Address, block: Option<BlockId>) -> RpcResult<Option<Bytes>> {
        let Some((state, _)) = self.backend.state_at(block)? else {
            return Ok(None);
        };
        let account = state.account_or_empty(address)?;
        if account.code_hash == alloy_primitives::KECCAK256_EMPTY || account.code_hash.is_zero() {
            return Ok(Some(Bytes::new()));
        }
        Ok(Some(
            state
                .bytecode(account.code_hash)
                .map_err(storage)?
                .unwrap_or_default(),
        ))
    }

    async fn storage_at(
        &self,
        address: Address,
        slot: JsonStorageKey,
        block: Option<BlockId>,
    ) -> RpcResult<Option<B256>> {
        let Some((state, _)) = self.backend.state_at(block)? else {
            return Ok(None);
        };
        let value = state.storage(address, slot.as_b256()).map_err(storage)?;
        Ok(Some(B256::from(value)))
    }

    async fn transaction_count(
        &self,
        address: Address,
        block: Option<BlockId>,
    ) -> RpcResult<Option<U64>> {
        let pending = matches!(block, Some(BlockId::Number(BlockNumberOrTag::Pending)));
        let Some((state, _)) = self.backend.state_at(block)? else {
            return Ok(None);
        };
        let nonce = state.account_or_empty(address)?.nonce;
        let nonce = if pending {
            self.backend.pool.pending_nonce(address, nonce)
        } else {
            nonce
        };
        Ok(Some(U64::from(nonce)))
    }

    async fn call(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
        state_override: Option<StateOverride>,
    ) -> RpcResult<Bytes> {
        self.heavy(move |this| this.call_blocking(&request, block, state_override))
            .await
    }

    async fn estimate_gas(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
        state_override: Option<StateOverride>,
    ) -> RpcResult<U64> {
        self.heavy(move |this| this.estimate_gas_blocking(&request, block, state_override))
            .await
    }

    async fn send_raw_transaction(&self, raw: Bytes) -> RpcResult<B256> {
        let backend = &self.backend;
        let outcome = backend
            .pool
            .submit_raw(&raw, backend.store.as_ref(), crate::now_ms())
            .map_err(|err| ErrorObject::owned(err.besu_code(), err.to_string(), None::<()>))?;
        for hash in &outcome.promoted {
            // No receiver (no subscriber yet) is fine.
            let _ = backend.events.pending.send(*hash);
        }
        if let Some(gossip) = &backend.tx_gossip {
            gossip(&raw);
        }
        Ok(outcome.hash)
    }

    async fn send_transaction(&self, _request: serde_json::Value) -> RpcResult<B256> {
        Err(ErrorObject::owned(
            -32604,
            "The method eth_sendTransaction is not supported. Use eth_sendRawTransaction to send a signed transaction to HealthChain.",
            None::<()>,
        ))
    }

    async fn transaction_by_hash(&self, hash: B256) -> RpcResult<Option<RpcTransaction>> {
        if let Some(location) = self
            .backend
            .store
            .transaction_location(hash)
            .map_err(storage)?
        {
            return self.backend.mined_transaction(location);
        }
        Ok(self
            .backend
            .pool
            .transaction(&hash)
            .map(|tx| rpc_transaction(tx.tx.clone(), tx.sender, None)))
    }

    async fn transaction_by_block_hash_and_index(
        &self,
        hash: B256,
        index: Index,
    ) -> RpcResult<Option<RpcTransaction>> {
        let block = self.backend.block_by_hash(hash)?;
        self.tx_in_block(block, index)
    }

    async fn transaction_by_block_number_and_index(
        &self,
        number: BlockNumberOrTag,
        index: Index,
    ) -> RpcResult<Option<RpcTransaction>> {
        let block = self.backend.block_by_tag(number)?;
        self.tx_in_block(block, index)
    }

    async fn transaction_receipt(&self, hash: B256) -> RpcResult<Option<TransactionReceipt>> {
        let Some(location) = self
            .backend
            .store
            .transaction_location(hash)
            .map_err(storage)?
        else {
            return Ok(None);
        };
        let Some(block) = self.backend.block_by_hash(location.block_hash)? else {
            return Ok(None);
        };
        Ok(self
            .backend
            .block_receipts(&block)?
            .and_then(|receipts| receipts.into_iter().nth(location.index as usize)))
    }

    async fn block_by_number(
        &self,
        number: BlockNumberOrTag,
        full: bool,
    ) -> RpcResult<Option<Block>> {
        match self.backend.block_by_tag(number)? {
            Some(block) => self.backend.rpc_block(&block, full),
            None => Ok(None),
        }
    }

    async fn block_by_hash(&self, hash: B256, full: bool) -> RpcResult<Option<Block>> {
        match self.backend.block_by_hash(hash)? {
            Some(block) => self.backend.rpc_block(&block, full),
            None => Ok(None),
        }
    }

    async fn block_receipts(&self, block: BlockId) -> RpcResult<Option<Vec<TransactionReceipt>>> {
        let block = match block {
            BlockId::Hash(hash) => self.backend.block_by_hash(hash.block_hash)?,
            id => self.backend.block_by_id(id)?,
        };
        match block {
            Some(block) => self.backend.block_receipts(&block),
            None => Ok(None),
        }
    }

    async fn block_transaction_count_by_hash(&self, hash: B256) -> RpcResult<Option<U64>> {
        let block = self.backend.block_by_hash(hash)?;
        self.block_tx_count(block)
    }

    async fn block_transaction_count_by_number(
        &self,
        number: BlockNumberOrTag,
    ) -> RpcResult<Option<U64>> {
        let block = self.backend.block_by_tag(number)?;
        self.block_tx_count(block)
    }

    async fn uncle_count_by_block_hash(&self, hash: B256) -> RpcResult<Option<U64>> {
        Ok(self.backend.block_by_hash(hash)?.map(|_| U64::ZERO))
    }

    async fn uncle_count_by_block_number(
        &self,
        number: BlockNumberOrTag,
    ) -> RpcResult<Option<U64>> {
        Ok(self.backend.block_by_tag(number)?.map(|_| U64::ZERO))
    }

    async fn uncle_by_block_hash_and_index(
        &self,
        _hash: B256,
        _index: Index,
    ) -> RpcResult<Option<Block>> {
        Ok(None)
    }

    async fn uncle_by_block_number_and_index(
        &self,
        _number: BlockNumberOrTag,
        _index: Index,
    ) -> RpcResult<Option<Block>> {
        Ok(None)
    }

    async fn logs(&self, filter: Filter) -> RpcResult<Vec<Log>> {
        self.heavy(move |this| crate::filters::logs(&this.backend, &filter))
            .await
    }

    async fn new_filter(&self, filter: Filter) -> RpcResult<U256> {
        self.filters.new_log_filter(&self.backend, filter)
    }

    async fn new_block_filter(&self) -> RpcResult<U256> {
        self.filters.new_block_filter(&self.backend)
    }

    async fn new_pending_transaction_filter(&self) -> RpcResult<U256> {
        self.filters.new_pending_filter()
    }

    async fn filter_changes(&self, id: U256) -> RpcResult<FilterChanges> {
        self.heavy(move |this| this.filters.changes(&this.backend, id))
            .await
    }

    async fn filter_logs(&self, id: U256) -> RpcResult<Vec<Log>> {
        self.heavy(move |this| this.filters.all_logs(&this.backend, id))
            .await
    }

    async fn uninstall_filter(&self, id: U256) -> RpcResult<bool> {
        Ok(self.filters.uninstall(id))
    }

    async fn proof(
        &self,
        address: Address,
        keys: Vec<JsonStorageKey>,
        block: Option<BlockId>,
    ) -> RpcResult<Option<EIP1186AccountProofResponse>> {
        self.heavy(move |this| this.proof_blocking(address, keys, block))
            .await
    }

    async fn subscribe(
        &self,
        pending: PendingSubscriptionSink,
        kind: SubscriptionKind,
        params: Option<Params>,
    ) -> SubscriptionResult {
        pubsub::subscribe(self.backend.clone(), pending, kind, params).await
    }
}
