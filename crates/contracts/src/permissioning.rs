//! On-chain permissioning with Besu's contract interfaces (EEA client spec v6): bindings,
//! the fixed genesis addresses, the genesis pre-deployment of all five contracts, and the
//! calldata and result codecs a node uses to ask the ingress contracts.
//!
//! Nodes are pointed at the two ingress contracts ([`NODE_INGRESS_ADDRESS`],
//! [`ACCOUNT_INGRESS_ADDRESS`], Besu's conventional addresses); each names its current rules
//! contract and the shared [`Admin`] list, so admins can replace the rules without
//! reconfiguring any node. See `docs/contracts.md`, "Permissioning contracts".

use alloy_primitives::{Address, B256, Bytes, U256, address, keccak256};
use alloy_sol_types::{SolCall, SolConstructor};

use crate::Artifact;
use crate::predeploy::{PredeployError, PredeployedAccount, alloc_json, construct};

/// `sol!` bindings generated from the permissioning artifacts' ABIs.
#[allow(missing_docs)]
pub mod bindings {
    alloy_sol_types::sol!(
        #[sol(all_derives)]
        NodeIngress,
        "../../contracts/artifacts/NodeIngress.json"
    );

    alloy_sol_types::sol!(
        #[sol(all_derives)]
        AccountIngress,
        "../../contracts/artifacts/AccountIngress.json"
    );

    alloy_sol_types::sol!(
        #[sol(all_derives)]
        Admin,
        "../../contracts/artifacts/Admin.json"
    );

    alloy_sol_types::sol!(
        #[sol(all_derives)]
        AccountRules,
        "../../contracts/artifacts/AccountRules.json"
    );

    alloy_sol_types::sol!(
        #[sol(all_derives)]
        NodeRules,
        "../../contracts/artifacts/NodeRules.json"
    );
}

pub use bindings::{AccountIngress, AccountRules, Admin, NodeIngress, NodeRules};

/// Where genesis puts `NodeIngress` (Besu's conventional address).
pub const NODE_INGRESS_ADDRESS: Address = address!("0x0000000000000000000000000000000000009999");
/// Where genesis puts `AccountIngress` (Besu's conventional address).
pub const ACCOUNT_INGRESS_ADDRESS: Address = address!("0x0000000000000000000000000000000000008888");
/// Where genesis puts the `Admin` list both ingress contracts consult.
pub const PERMISSIONING_ADMIN_ADDRESS: Address =
    address!("0x0000000000000000000000000000000000008800");
/// Where genesis puts `AccountRules`.
pub const ACCOUNT_RULES_ADDRESS: Address = address!("0x0000000000000000000000000000000000008801");
/// Where genesis puts `NodeRules`.
pub const NODE_RULES_ADDRESS: Address = address!("0x0000000000000000000000000000000000009901");

/// One entry of the node allowlist.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PermissionedNode {
    /// The 64-byte node id as 128 lowercase hex characters, no `0x`.
    pub id: String,
    /// The host exactly as nodes will report it (e.g. `10.0.0.7`).
    pub host: String,
    /// The listening port (never 0: a query with port 0 matches any port).
    pub port: u16,
}

/// The permissioning state a genesis starts with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PermissioningGenesis {
    /// The first admins (at least one).
    pub admins: Vec<Address>,
    /// Accounts allowed to send transactions.
    pub accounts: Vec<Address>,
    /// Nodes allowed to connect.
    pub nodes: Vec<PermissionedNode>,
}

/// Whether `id` is a node id as the contracts store it: 128 lowercase hex characters.
pub fn is_valid_enode_id(id: &str) -> bool {
    id.len() == 128 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The five permissioning contracts as genesis accounts, constructors run in revm: the
/// `Admin` list, `AccountIngress` and `NodeIngress` registering it and their rules
/// contract, and `AccountRules` / `NodeRules` holding the initial lists.
pub fn permissioning_predeploy(
    genesis: &PermissioningGenesis,
) -> Result<Vec<PredeployedAccount>, PredeployError> {
    if genesis.admins.is_empty() {
        return Err(PredeployError::NoPermissioningAdmins);
    }
    if genesis.admins.iter().any(|a| a.is_zero()) {
        return Err(PredeployError::ZeroAddress { list: "admins" });
    }
    if genesis.accounts.iter().any(|a| a.is_zero()) {
        return Err(PredeployError::ZeroAddress { list: "accounts" });
    }
    for node in &genesis.nodes {
        if !is_valid_enode_id(&node.id) {
            return Err(PredeployError::InvalidEnodeId {
                id: node.id.clone(),
            });
        }
        if node.host.is_empty() || node.port == 0 {
            return Err(PredeployError::InvalidNodeAddress {
                id: node.id.clone(),
                host: node.host.clone(),
                port: node.port,
            });
        }
    }
    let admin = Admin::constructorCall {
        initialAdmins: genesis.admins.clone(),
    }
    .abi_encode();
    let account_ingress = account_ingress_args();
    let account_rules = account_rules_args(ACCOUNT_INGRESS_ADDRESS, genesis.accounts.clone());
    let node_ingress = NodeIngress::constructorCall {
        admin: PERMISSIONING_ADMIN_ADDRESS,
        rules: NODE_RULES_ADDRESS,
    }
    .abi_encode();
    let node_rules = NodeRules::constructorCall {
        ingress_: NODE_INGRESS_ADDRESS,
        initialNodes: genesis
            .nodes
            .iter()
            .map(|n| NodeRules::Enode {
                enodeId: n.id.clone(),
                host: n.host.clone(),
                port: n.port,
            })
            .collect(),
    }
    .abi_encode();
    Ok(vec![
        construct(&Artifact::admin()?, PERMISSIONING_ADMIN_ADDRESS, &admin, 0)?,
        construct(
            &Artifact::account_ingress()?,
            ACCOUNT_INGRESS_ADDRESS,
            &account_ingress,
            0,
        )?,
        construct(
            &Artifact::account_rules()?,
            ACCOUNT_RULES_ADDRESS,
            &account_rules,
            0,
        )?,
        construct(
            &Artifact::node_ingress()?,
            NODE_INGRESS_ADDRESS,
            &node_ingress,
            0,
        )?,
        construct(&Artifact::node_rules()?, NODE_RULES_ADDRESS, &node_rules, 0)?,
    ])
}

/// `AccountIngress`'s constructor arguments: the genesis admin list and rules contract.
fn account_ingress_args() -> Vec<u8> {
    AccountIngress::constructorCall {
        admin: PERMISSIONING_ADMIN_ADDRESS,
        rules: ACCOUNT_RULES_ADDRESS,
    }
    .abi_encode()
}

/// `AccountRules`'s constructor arguments: its ingress and first accounts.
fn account_rules_args(ingress: Address, accounts: Vec<Address>) -> Vec<u8> {
    AccountRules::constructorCall {
        ingress_: ingress,
        initialAccounts: accounts,
    }
    .abi_encode()
}

/// The runtime code hashes of an `AccountIngress` and of an `AccountRules` bound to
/// `ingress`, as this crate builds them. Both answer `transactionAllowed` from the sender
/// and the state alone, so a node may cache answers per sender for one state when the
/// ingress at `ingress` and its current rules contract have exactly this code.
pub fn sender_only_account_rules(ingress: Address) -> Result<(B256, B256), PredeployError> {
    let ingress_args = account_ingress_args();
    let rules_args = account_rules_args(ingress, Vec::new());
    let ingress_code = construct(&Artifact::account_ingress()?, ingress, &ingress_args, 0)?.code;
    let rules_code = construct(
        &Artifact::account_rules()?,
        ACCOUNT_RULES_ADDRESS,
        &rules_args,
        0,
    )?
    .code;
    Ok((keccak256(&ingress_code), keccak256(&rules_code)))
}

/// [`permissioning_predeploy`] as `alloc` entries of a genesis JSON.
pub fn permissioning_alloc_json(
    genesis: &PermissioningGenesis,
) -> Result<serde_json::Map<String, serde_json::Value>, PredeployError> {
    Ok(alloc_json(&permissioning_predeploy(genesis)?))
}

/// Calldata for `transactionAllowed(sender, target, value, gasPrice, gasLimit, payload)`
/// (selector `0x936421d5`), standard ABI encoding. `target` is zero for a contract creation.
pub fn transaction_allowed_calldata(
    sender: Address,
    target: Address,
    value: U256,
    gas_price: U256,
    gas_limit: U256,
    payload: Bytes,
) -> Bytes {
    AccountIngress::transactionAllowedCall {
        sender,
        target,
        value,
        gasPrice: gas_price,
        gasLimit: gas_limit,
        payload,
    }
    .abi_encode()
    .into()
}

/// Calldata for `connectionAllowed(enodeId, enodeHost, enodePort)` (selector `0x45a59e5b`).
/// Port 0 asks whether the node is allowed at that host on any port.
pub fn connection_allowed_calldata(enode_id: &str, host: &str, port: u16) -> Bytes {
    NodeIngress::connectionAllowedCall {
        enodeId: enode_id.to_owned(),
        enodeHost: host.to_owned(),
        enodePort: port,
    }
    .abi_encode()
    .into()
}

/// A rules call's return data that is not one ABI bool.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoolResultError {
    /// Not 32 bytes (Besu: "Unexpected result size").
    #[error("unexpected result size: {0} bytes, expected 32")]
    Size(usize),
    /// 32 bytes but neither ABI true nor false (Besu: "Unexpected result form").
    #[error("unexpected result form: {0}")]
    Form(B256),
}

/// Decodes a rules call's result: exactly 32 bytes equal to ABI `true` or `false`.
pub fn decode_bool_result(data: &[u8]) -> Result<bool, BoolResultError> {
    let word = B256::try_from(data).map_err(|_| BoolResultError::Size(data.len()))?;
    match U256::from_be_bytes(word.0) {
        v if v == U256::from(1) => Ok(true),
        v if v.is_zero() => Ok(false),
        _ => Err(BoolResultError::Form(word)),
    }
}
