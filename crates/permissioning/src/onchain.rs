//! Calls to the ingress contracts (Besu's interfaces) on the chain head's state: a
//! read-only simulated call from the zero address, as Besu's `TransactionSimulator`
//! makes it. Nothing is written.

use std::sync::Arc;

use alloy_consensus::Transaction as _;
use alloy_primitives::{Address, Bytes, TxKind, U256};
use healthchain_chainspec::ChainConfig;
use healthchain_contracts::permissioning::{
    connection_allowed_calldata, decode_bool_result, transaction_allowed_calldata,
};
use healthchain_evm::{ViewError, view_at_head};
use healthchain_primitives::Transaction;
use healthchain_storage_api::ChainStore;

/// Most gas one rules call may use (Besu: the RPC gas cap, never above the block's limit).
const RULES_CALL_GAS: u64 = 50_000_000;

/// Why a rules call gave no answer. Callers treat it as "not permitted" and log it.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The store failed or has no head.
    #[error("state unavailable: {0}")]
    State(String),
    /// The call reverted, halted or was invalid.
    #[error("the rules contract at {contract} failed: {reason}")]
    CallFailed {
        /// The contract called.
        contract: Address,
        /// What went wrong.
        reason: String,
    },
    /// The call returned something other than one ABI bool.
    #[error("the rules contract at {contract} returned {result}, not a bool")]
    BadResult {
        /// The contract called.
        contract: Address,
        /// The return data.
        result: Bytes,
    },
}

/// The on-chain rules: the account and node ingress contracts this node consults.
pub struct OnchainRules {
    store: Arc<dyn ChainStore>,
    chain: Arc<ChainConfig>,
    accounts: Option<Address>,
    nodes: Option<Address>,
}

impl std::fmt::Debug for OnchainRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnchainRules")
            .field("accounts", &self.accounts)
            .field("nodes", &self.nodes)
            .finish_non_exhaustive()
    }
}

impl OnchainRules {
    /// Rules read from `store`'s head; `None` turns that kind of check off.
    pub fn new(
        store: Arc<dyn ChainStore>,
        chain: Arc<ChainConfig>,
        accounts: Option<Address>,
        nodes: Option<Address>,
    ) -> Self {
        Self {
            store,
            chain,
            accounts,
            nodes,
        }
    }

    /// Whether account rules are consulted.
    pub fn checks_accounts(&self) -> bool {
        self.accounts.is_some()
    }

    /// Whether node rules are consulted.
    pub fn checks_nodes(&self) -> bool {
        self.nodes.is_some()
    }

    /// `AccountIngress.transactionAllowed(sender, to, value, gasPrice, gasLimit, data)` at
    /// the head. `Ok(true)` when account rules are off, or when no account exists at the
    /// ingress address (Besu: "Any transaction will be allowed").
    pub fn transaction_allowed(
        &self,
        tx: &Transaction,
        sender: Address,
    ) -> Result<bool, RulesError> {
        let Some(contract) = self.accounts else {
            return Ok(true);
        };
        let target = match tx.kind() {
            TxKind::Call(to) => to,
            TxKind::Create => Address::ZERO,
        };
        // Besu sends a gas price only for legacy and access-list transactions.
        let gas_price = tx.gas_price().map_or(U256::ZERO, U256::from);
        let data = transaction_allowed_calldata(
            sender,
            target,
            tx.value(),
            gas_price,
            U256::from(tx.gas_limit()),
            tx.input().clone(),
        );
        self.ask(contract, data, true)
    }

    /// `NodeIngress.connectionAllowed(enodeId, host, port)` at the head; `Ok(true)` when
    /// node rules are off. A missing ingress contract refuses (Besu: "Permissioning
    /// contract does not exist").
    pub fn connection_allowed(
        &self,
        enode_id: &str,
        host: &str,
        port: u16,
    ) -> Result<bool, RulesError> {
        let Some(contract) = self.nodes else {
            return Ok(true);
        };
        let data = connection_allowed_calldata(enode_id, host, port);
        self.ask(contract, data, false)
    }

    fn ask(
        &self,
        contract: Address,
        data: Bytes,
        missing_allows: bool,
    ) -> Result<bool, RulesError> {
        let failed = |reason: String| RulesError::CallFailed { contract, reason };
        match view_at_head(
            &self.chain,
            self.store.as_ref(),
            contract,
            data,
            RULES_CALL_GAS,
        ) {
            Ok(result) => {
                decode_bool_result(&result).map_err(|_| RulesError::BadResult { contract, result })
            }
            Err(ViewError::NoContract(_)) => {
                tracing::warn!(%contract, missing_allows, "permissioning contract not found");
                Ok(missing_allows)
            }
            Err(ViewError::State(reason)) => Err(RulesError::State(reason)),
            Err(err @ (ViewError::Reverted(_) | ViewError::Failed(_))) => {
                Err(failed(err.to_string()))
            }
        }
    }
}
