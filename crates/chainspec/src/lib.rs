//! Chain specification: a Besu- or geth-format `genesis.json` parsed into the fork
//! schedule, IBFT 2.0 parameters and genesis allocation, and the genesis block built from it
//! exactly as Ethereum clients build it.
//!
//! Pure crate. Parsing is tolerant where real genesis files vary (hex or decimal numbers,
//! case-insensitive keys, `wei` for `balance`, addresses without `0x`) and strict where a
//! value is wrong: every error names the field.

mod forks;
mod json;

pub use forks::{ForkSchedule, Hardfork};

use alloy_consensus::{EMPTY_OMMER_ROOT_HASH, Header, TrieAccount, constants::KECCAK_EMPTY};
use alloy_primitives::{Address, B64, B256, Bytes, U256, keccak256};
use healthchain_trie::{EMPTY_ROOT, secure_trie_root};
use json::Obj;
use serde_json::Value;
use std::collections::BTreeMap;

/// Base fee of the first London block when the genesis does not set one (EIP-1559).
pub const INITIAL_BASE_FEE: u64 = 1_000_000_000;

/// Why a genesis file was rejected.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    /// The file is not JSON.
    #[error("genesis is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A required field is absent.
    #[error("genesis field `{0}` is missing")]
    MissingField(String),
    /// A field has a value that cannot be used.
    #[error("genesis field `{field}` is invalid: {reason}")]
    InvalidField {
        /// Dotted path of the field, e.g. `alloc.0xab…cd.balance`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl GenesisError {
    pub(crate) fn invalid(field: &str, reason: impl Into<String>) -> Self {
        Self::InvalidField {
            field: field.to_string(),
            reason: reason.into(),
        }
    }
}

/// Besu's `config.ibft2` section (defaults from `JsonBftConfigOptions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ibft2Config {
    /// Target time between blocks, in seconds (`blockperiodseconds`, default 1).
    pub block_period_seconds: u64,
    /// Sub-second block period (`xblockperiodmilliseconds`); when set it replaces
    /// `block_period_seconds` and the timestamp-after-parent rule.
    pub block_period_ms: Option<u64>,
    /// Blocks between vote resets (`epochlength`, default 30,000).
    pub epoch_length: u64,
    /// Base round timeout, in seconds; doubled per round (`requesttimeoutseconds`, 1).
    pub request_timeout_seconds: u64,
    /// Reward credited per block, in wei.
    pub block_reward: U256,
    /// Who receives the reward; the proposer when absent.
    pub mining_beneficiary: Option<Address>,
    /// Most buffered future-height messages (`futuremessageslimit`, 1,000).
    pub future_messages_limit: u64,
    /// Furthest height ahead that is buffered (`futuremessagesmaxdistance`, 10).
    pub future_messages_max_distance: u64,
    /// Consensus event queue size (`messagequeuelimit`, 1,000).
    pub message_queue_limit: u64,
    /// Duplicate-message LRU size (`duplicatemessagelimit`, 100).
    pub duplicate_message_limit: u64,
    /// Sent-message LRU size (`gossipedhistorylimit`, 1,000).
    pub gossiped_history_limit: u64,
}

impl Default for Ibft2Config {
    fn default() -> Self {
        Self {
            block_period_seconds: 1,
            block_period_ms: None,
            epoch_length: 30_000,
            request_timeout_seconds: 1,
            block_reward: U256::ZERO,
            mining_beneficiary: None,
            future_messages_limit: 1_000,
            future_messages_max_distance: 10,
            message_queue_limit: 1_000,
            duplicate_message_limit: 100,
            gossiped_history_limit: 1_000,
        }
    }
}

/// The `config` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainConfig {
    /// EIP-155 chain id (1 when the file has none).
    pub chain_id: u64,
    /// Fork activation blocks and timestamps.
    pub forks: ForkSchedule,
    /// IBFT 2.0 parameters, when the chain uses IBFT 2.0.
    pub ibft2: Option<Ibft2Config>,
    /// Besu's `zeroBaseFee`: blocks after genesis carry a base fee of zero.
    pub zero_base_fee: bool,
    /// Maximum deployed code size in bytes (EIP-170's 24,576 when absent).
    pub contract_size_limit: Option<usize>,
}

impl ChainConfig {
    /// A plain Ethereum config: no IBFT, standard fees and code size limit.
    pub fn new(chain_id: u64, forks: ForkSchedule) -> Self {
        Self {
            chain_id,
            forks,
            ibft2: None,
            zero_base_fee: false,
            contract_size_limit: None,
        }
    }
}

/// One pre-funded account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenesisAccount {
    /// Balance in wei.
    pub balance: U256,
    /// Account nonce.
    pub nonce: u64,
    /// Contract code (empty for externally owned accounts).
    pub code: Bytes,
    /// Storage slots; zero values are dropped.
    pub storage: BTreeMap<B256, U256>,
}

impl GenesisAccount {
    /// Root of the account's storage trie.
    pub fn storage_root(&self) -> B256 {
        storage_root(self.storage.iter().map(|(k, v)| (*k, *v)))
    }

    /// keccak256 of the code.
    pub fn code_hash(&self) -> B256 {
        if self.code.is_empty() {
            KECCAK_EMPTY
        } else {
            keccak256(&self.code)
        }
    }

    /// The account as the state trie stores it.
    pub fn trie_account(&self) -> TrieAccount {
        TrieAccount {
            nonce: self.nonce,
            balance: self.balance,
            storage_root: self.storage_root(),
            code_hash: self.code_hash(),
        }
    }
}

/// Root of a storage trie holding `slots` (zero values are absent).
pub fn storage_root(slots: impl IntoIterator<Item = (B256, U256)>) -> B256 {
    secure_trie_root(
        slots
            .into_iter()
            .filter(|(_, v)| !v.is_zero())
            .map(|(k, v)| (k, alloy_rlp::encode(v))),
    )
}

/// A parsed genesis file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Genesis {
    /// The `config` section.
    pub config: ChainConfig,
    /// Header nonce.
    pub nonce: u64,
    /// Header timestamp.
    pub timestamp: u64,
    /// Header extra data (IBFT 2.0 extraData for IBFT chains).
    pub extra_data: Bytes,
    /// Header gas limit.
    pub gas_limit: u64,
    /// Header difficulty.
    pub difficulty: U256,
    /// Header mix hash.
    pub mix_hash: B256,
    /// Header beneficiary.
    pub coinbase: Address,
    /// Header parent hash (zero for real genesis files).
    pub parent_hash: B256,
    /// Header number (zero for real genesis files).
    pub number: u64,
    /// Header gas used.
    pub gas_used: u64,
    /// Explicit genesis base fee, if given.
    pub base_fee_per_gas: Option<u64>,
    /// Explicit genesis excess blob gas, if given.
    pub excess_blob_gas: Option<u64>,
    /// Explicit genesis blob gas used, if given.
    pub blob_gas_used: Option<u64>,
    /// Pre-funded accounts.
    pub alloc: BTreeMap<Address, GenesisAccount>,
}

impl Genesis {
    /// Parses a genesis file's text.
    pub fn from_json(text: &str) -> Result<Self, GenesisError> {
        let value: Value = serde_json::from_str(text)?;
        Self::from_value(&value)
    }

    /// Parses an already-read JSON value.
    pub fn from_value(value: &Value) -> Result<Self, GenesisError> {
        let root = Obj::new(value, "")?;
        let config = match root.child("config")? {
            Some(cfg) => parse_config(&cfg)?,
            None => ChainConfig::new(1, ForkSchedule::default()),
        };
        let required =
            |name: &str, v: Option<u64>| v.ok_or_else(|| GenesisError::MissingField(name.into()));
        let alloc = match root.get("alloc") {
            Some(accounts) => parse_alloc(accounts, "alloc")?,
            None => BTreeMap::new(),
        };
        Ok(Self {
            nonce: root.u64("nonce")?.unwrap_or(0),
            timestamp: root.u64("timestamp")?.unwrap_or(0),
            extra_data: root.bytes("extraData")?.unwrap_or_default(),
            gas_limit: required("gasLimit", root.u64("gasLimit")?)?,
            difficulty: root
                .u256("difficulty")?
                .ok_or_else(|| GenesisError::MissingField("difficulty".into()))?,
            mix_hash: root.b256("mixHash")?.unwrap_or_default(),
            coinbase: root.address("coinbase")?.unwrap_or_default(),
            parent_hash: root.b256("parentHash")?.unwrap_or_default(),
            number: root.u64("number")?.unwrap_or(0),
            gas_used: root.u64("gasUsed")?.unwrap_or(0),
            base_fee_per_gas: root.u64("baseFeePerGas")?,
            excess_blob_gas: root.u64("excessBlobGas")?,
            blob_gas_used: root.u64("blobGasUsed")?,
            config,
            alloc,
        })
    }

    /// Root of the genesis state trie.
    pub fn state_root(&self) -> B256 {
        if self.alloc.is_empty() {
            return EMPTY_ROOT;
        }
        secure_trie_root(
            self.alloc
                .iter()
                .map(|(addr, acc)| (*addr, alloy_rlp::encode(acc.trie_account()))),
        )
    }

    /// The genesis header, with the fields each fork active at genesis adds.
    pub fn header(&self) -> Header {
        self.header_with_state_root(self.state_root())
    }

    /// The genesis header for an already computed state root.
    pub fn header_with_state_root(&self, state_root: B256) -> Header {
        let forks = &self.config.forks;
        let active = |fork| forks.is_active(fork, self.number, self.timestamp);
        let cancun = active(Hardfork::Cancun);
        Header {
            parent_hash: self.parent_hash,
            ommers_hash: EMPTY_OMMER_ROOT_HASH,
            beneficiary: self.coinbase,
            state_root,
            transactions_root: EMPTY_ROOT,
            receipts_root: EMPTY_ROOT,
            logs_bloom: Default::default(),
            difficulty: self.difficulty,
            number: self.number,
            gas_limit: self.gas_limit,
            gas_used: self.gas_used,
            timestamp: self.timestamp,
            extra_data: self.extra_data.clone(),
            mix_hash: self.mix_hash,
            nonce: B64::from(self.nonce),
            // Besu and geth: a London genesis without baseFeePerGas gets 1 gwei, and
            // zeroBaseFee does not change the genesis value.
            base_fee_per_gas: active(Hardfork::London)
                .then(|| self.base_fee_per_gas.unwrap_or(INITIAL_BASE_FEE)),
            withdrawals_root: active(Hardfork::Shanghai).then_some(EMPTY_ROOT),
            blob_gas_used: cancun.then(|| self.blob_gas_used.unwrap_or(0)),
            excess_blob_gas: cancun.then(|| self.excess_blob_gas.unwrap_or(0)),
            parent_beacon_block_root: cancun.then_some(B256::ZERO),
            requests_hash: active(Hardfork::Prague)
                .then_some(alloy_eips::eip7685::EMPTY_REQUESTS_HASH),
            ..Default::default()
        }
    }
}

/// Parses an allocation object (`alloc` of a genesis, `pre` of a test fixture); `path` names
/// it in errors.
pub fn parse_alloc(
    value: &Value,
    path: &str,
) -> Result<BTreeMap<Address, GenesisAccount>, GenesisError> {
    let accounts = Obj::new(value, path)?;
    let mut alloc = BTreeMap::new();
    for (key, account) in accounts.entries() {
        let path = accounts.path(key);
        let address = json::parse_address_str(key, &path)?;
        alloc.insert(address, parse_account(&Obj::new(account, &path)?)?);
    }
    Ok(alloc)
}

fn parse_account(obj: &Obj<'_>) -> Result<GenesisAccount, GenesisError> {
    // Old files (ethereum/tests GenesisTests) use `wei` for the balance.
    let balance = match obj.u256("balance")? {
        Some(b) => b,
        None => obj.u256("wei")?.unwrap_or_default(),
    };
    let mut storage = BTreeMap::new();
    if let Some(slots) = obj.child("storage")? {
        for (key, value) in slots.entries() {
            let path = slots.path(key);
            let slot = json::parse_b256(&Value::String(key.clone()), &path)?;
            if value.is_null() {
                continue;
            }
            let value = U256::from_be_bytes(json::parse_b256(value, &path)?.0);
            if !value.is_zero() {
                storage.insert(slot, value);
            }
        }
    }
    Ok(GenesisAccount {
        balance,
        nonce: obj.u64("nonce")?.unwrap_or(0),
        code: obj.bytes("code")?.unwrap_or_default(),
        storage,
    })
}

fn parse_config(cfg: &Obj<'_>) -> Result<ChainConfig, GenesisError> {
    let ibft2 = cfg
        .child("ibft2")?
        .map(|ibft| -> Result<_, GenesisError> {
            let d = Ibft2Config::default();
            Ok(Ibft2Config {
                block_period_seconds: ibft
                    .u64("blockperiodseconds")?
                    .unwrap_or(d.block_period_seconds),
                block_period_ms: ibft.u64("xblockperiodmilliseconds")?.filter(|ms| *ms > 0),
                epoch_length: ibft.u64("epochlength")?.unwrap_or(d.epoch_length),
                request_timeout_seconds: ibft
                    .u64("requesttimeoutseconds")?
                    .unwrap_or(d.request_timeout_seconds),
                block_reward: ibft.u256("blockreward")?.unwrap_or_default(),
                mining_beneficiary: ibft.address("miningbeneficiary")?,
                future_messages_limit: ibft
                    .u64("futuremessageslimit")?
                    .unwrap_or(d.future_messages_limit),
                future_messages_max_distance: ibft
                    .u64("futuremessagesmaxdistance")?
                    .unwrap_or(d.future_messages_max_distance),
                message_queue_limit: ibft
                    .u64("messagequeuelimit")?
                    .unwrap_or(d.message_queue_limit),
                duplicate_message_limit: ibft
                    .u64("duplicatemessagelimit")?
                    .unwrap_or(d.duplicate_message_limit),
                gossiped_history_limit: ibft
                    .u64("gossipedhistorylimit")?
                    .unwrap_or(d.gossiped_history_limit),
            })
        })
        .transpose()?;
    if let Some(ibft) = &ibft2 {
        if ibft.block_period_seconds == 0 {
            return Err(GenesisError::invalid(
                "config.ibft2.blockperiodseconds",
                "must be positive",
            ));
        }
        if ibft.epoch_length == 0 {
            return Err(GenesisError::invalid(
                "config.ibft2.epochlength",
                "must be positive",
            ));
        }
        if ibft.request_timeout_seconds == 0 {
            return Err(GenesisError::invalid(
                "config.ibft2.requesttimeoutseconds",
                "must be positive",
            ));
        }
    }
    let contract_size_limit = cfg
        .u64("contractSizeLimit")?
        .map(|v| {
            usize::try_from(v)
                .map_err(|_| GenesisError::invalid("config.contractSizeLimit", "too large"))
        })
        .transpose()?;
    Ok(ChainConfig {
        // Old test genesis files have no chain id; like geth, treat them as chain 1.
        chain_id: cfg.u64("chainId")?.unwrap_or(1),
        forks: ForkSchedule::parse(cfg)?,
        ibft2,
        zero_base_fee: cfg.bool("zeroBaseFee")?.unwrap_or(false),
        contract_size_limit,
    })
}
