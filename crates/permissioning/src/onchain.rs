//! Calls to the ingress contracts (Besu's interfaces) on the chain head's state: a
//! read-only simulated call from the zero address, as Besu's `TransactionSimulator`
//! makes it. Nothing is written.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use alloy_consensus::Transaction as _;
use std::collections::HashMap;

use alloy_primitives::{Address, B256, Bytes, TxKind, U256};
use alloy_sol_types::SolCall;
use healthchain_chainspec::ChainConfig;
use healthchain_contracts::permissioning::{
    AccountIngress, connection_allowed_calldata, decode_bool_result, sender_only_account_rules,
    transaction_allowed_calldata,
};
use healthchain_evm::{ViewError, view_at_head};
use healthchain_primitives::Transaction;
use healthchain_storage_api::ChainStore;
use parking_lot::Mutex;

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
    /// Code hashes of the ingress and rules contracts whose answers depend only on the
    /// sender ([`sender_only_account_rules`]).
    sender_only: Option<(B256, B256)>,
    /// Answers per sender at one head, while the contracts are those.
    answers: Mutex<SenderAnswers>,
    /// `transactionAllowed` calls made in the EVM (not answered from the cache).
    account_calls: AtomicU64,
}

/// `transactionAllowed` answers by sender, valid for the state of block `head`.
#[derive(Default)]
struct SenderAnswers {
    head: B256,
    cacheable: bool,
    by_sender: HashMap<Address, bool>,
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
        let sender_only = accounts.and_then(|ingress| match sender_only_account_rules(ingress) {
            Ok(hashes) => Some(hashes),
            Err(err) => {
                tracing::warn!(%err, "building the reference account rules; answers will not be cached");
                None
            }
        });
        Self {
            store,
            chain,
            accounts,
            nodes,
            sender_only,
            answers: Mutex::new(SenderAnswers::default()),
            account_calls: AtomicU64::new(0),
        }
    }

    /// How many `transactionAllowed` calls ran in the EVM so far (the others were answered
    /// from the per-sender cache).
    pub fn account_rule_calls(&self) -> u64 {
        self.account_calls.load(Ordering::Relaxed)
    }

    /// Whether, at the head, the ingress and its rules contract are the sender-only ones.
    fn sender_only_at_head(&self, ingress: Address) -> bool {
        let Some((ingress_hash, rules_hash)) = self.sender_only else {
            return false;
        };
        let code_is = |address: Address, hash: B256| matches!(self.store.account(address), Ok(Some(account)) if account.code_hash == hash);
        if !code_is(ingress, ingress_hash) {
            return false;
        }
        // The ingress's registry entry "rules" (a left-aligned bytes32 string).
        let mut name = B256::ZERO;
        name[..5].copy_from_slice(b"rules");
        let data = AccountIngress::getContractAddressCall { name }.abi_encode();
        let rules = match view_at_head(
            &self.chain,
            self.store.as_ref(),
            ingress,
            data.into(),
            RULES_CALL_GAS,
        ) {
            Ok(out) if out.len() == 32 => Address::from_slice(&out[12..]),
            _ => return false,
        };
        code_is(rules, rules_hash)
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
        // With the reference contracts the answer is the sender's at this state: it is
        // asked once per sender per block instead of once per transaction.
        let head = match self.store.head() {
            Ok(Some((_, head))) => head,
            _ => return self.ask(contract, data, true),
        };
        {
            let mut answers = self.answers.lock();
            if answers.head != head {
                *answers = SenderAnswers {
                    head,
                    cacheable: self.sender_only_at_head(contract),
                    by_sender: HashMap::new(),
                };
            }
            if answers.cacheable
                && let Some(answer) = answers.by_sender.get(&sender)
            {
                return Ok(*answer);
            }
        }
        self.account_calls.fetch_add(1, Ordering::Relaxed);
        let answer = self.ask(contract, data, true)?;
        let mut answers = self.answers.lock();
        if answers.head == head && answers.cacheable {
            answers.by_sender.insert(sender, answer);
        }
        Ok(answer)
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
