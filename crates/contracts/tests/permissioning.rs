//! The permissioning contracts executed in revm on a state seeded with their genesis
//! pre-deployment: Besu's selectors, account and node rules through the ingress contracts,
//! admin-only changes, read-only mode, the port-0 rule, events, and replacing the rules.
//!
//! `cargo test -p healthchain-contracts --test permissioning -- --nocapture` prints the gas
//! of `addAccount` and `addEnode`.

use alloy_primitives::{Address, Bytes, Log, TxKind, U256, address, hex, keccak256};
use alloy_sol_types::{SolCall, SolConstructor, SolError, SolEvent};
use healthchain_contracts::permissioning::{
    BoolResultError, connection_allowed_calldata, decode_bool_result, is_valid_enode_id,
    transaction_allowed_calldata,
};
use healthchain_contracts::{
    ACCOUNT_INGRESS_ADDRESS, ACCOUNT_RULES_ADDRESS, AccountIngress, AccountRules, Admin, Artifact,
    CODE_SIZE_LIMIT, NODE_INGRESS_ADDRESS, NODE_RULES_ADDRESS, NodeIngress, NodeRules,
    PERMISSIONING_ADMIN_ADDRESS, PermissionedNode, PermissioningGenesis, PredeployError,
    permissioning_alloc_json, permissioning_predeploy,
};
use revm::{
    Context, DatabaseCommit, ExecuteEvm, MainBuilder, MainContext,
    bytecode::Bytecode,
    context::TxEnv,
    context::result::{ExecutionResult, Output},
    database::{CacheDB, EmptyDB},
    primitives::hardfork::SpecId,
    state::AccountInfo,
};

const ADMIN: Address = address!("0x00000000000000000000000000000000000a0001");
const OTHER_ADMIN: Address = address!("0x00000000000000000000000000000000000a0002");
const USER: Address = address!("0x00000000000000000000000000000000000b0001");
const STRANGER: Address = address!("0x00000000000000000000000000000000000c0001");

const RULES: [u8; 32] = *b"rules\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

fn enode_id(seed: &str) -> String {
    let a = keccak256(format!("{seed}/0"));
    let b = keccak256(format!("{seed}/1"));
    format!("{}{}", hex::encode(a), hex::encode(b))
}

fn node(seed: &str, host: &str, port: u16) -> PermissionedNode {
    PermissionedNode {
        id: enode_id(seed),
        host: host.into(),
        port,
    }
}

fn genesis() -> PermissioningGenesis {
    PermissioningGenesis {
        admins: vec![ADMIN],
        accounts: vec![ADMIN, USER],
        nodes: vec![
            node("validator-1", "10.0.0.1", 30303),
            node("validator-2", "10.0.0.2", 30303),
        ],
    }
}

/// What a transaction or call did.
#[derive(Debug)]
enum Outcome {
    Success {
        output: Bytes,
        logs: Vec<Log>,
        gas: u64,
    },
    Revert(Bytes),
}

impl Outcome {
    fn success(self) -> (Bytes, Vec<Log>, u64) {
        match self {
            Self::Success { output, logs, gas } => (output, logs, gas),
            Self::Revert(data) => panic!("reverted with {data}"),
        }
    }

    fn revert_data(self) -> Bytes {
        match self {
            Self::Revert(data) => data,
            Self::Success { .. } => panic!("expected a revert"),
        }
    }

    /// The custom error `E` this reverted with.
    fn reverted_with<E: SolError>(self) -> E {
        let data = self.revert_data();
        E::abi_decode(&data).unwrap_or_else(|e| panic!("not {}: {data} ({e})", E::SIGNATURE))
    }
}

/// A state with the permissioning contracts pre-deployed, and a way to run calls on it.
struct Chain {
    db: CacheDB<EmptyDB>,
}

impl Chain {
    fn new(genesis: &PermissioningGenesis) -> Self {
        let mut db = CacheDB::new(EmptyDB::default());
        for account in permissioning_predeploy(genesis).unwrap() {
            db.insert_account_info(
                account.address,
                AccountInfo {
                    code_hash: keccak256(&account.code),
                    code: Some(Bytecode::new_raw(account.code.clone())),
                    ..Default::default()
                },
            );
            for (slot, value) in account.storage {
                db.insert_account_storage(account.address, slot.into(), value)
                    .unwrap();
            }
        }
        Self { db }
    }

    fn execute(&mut self, from: Address, kind: TxKind, data: Bytes, commit: bool) -> Outcome {
        let mut evm = Context::mainnet()
            .with_db(self.db.clone())
            .modify_cfg_chained(|cfg| {
                cfg.spec = SpecId::CANCUN;
                cfg.disable_balance_check = true;
                cfg.disable_base_fee = true;
                cfg.disable_nonce_check = true;
            })
            .modify_block_chained(|block| block.gas_limit = 100_000_000)
            .build_mainnet();
        let tx = TxEnv {
            caller: from,
            kind,
            data,
            gas_limit: 30_000_000,
            gas_price: 0,
            ..Default::default()
        };
        let outcome = evm.transact(tx).expect("transaction is valid");
        let gas = outcome.result.tx_gas_used();
        let result = match outcome.result {
            ExecutionResult::Success { output, logs, .. } => {
                let output = match output {
                    Output::Call(data) => data,
                    Output::Create(_, address) => {
                        Bytes::copy_from_slice(address.expect("created").as_slice())
                    }
                };
                Outcome::Success { output, logs, gas }
            }
            ExecutionResult::Revert { output, .. } => Outcome::Revert(output),
            ExecutionResult::Halt { reason, .. } => panic!("halted: {reason:?}"),
        };
        if commit && matches!(result, Outcome::Success { .. }) {
            self.db.commit(outcome.state);
        }
        result
    }

    /// A transaction from `from`, committed when it succeeds.
    fn send<C: SolCall>(&mut self, from: Address, to: Address, call: C) -> Outcome {
        self.execute(from, TxKind::Call(to), call.abi_encode().into(), true)
    }

    /// A read-only call; panics on a revert.
    fn call<C: SolCall>(&mut self, to: Address, call: C) -> C::Return {
        let (output, _, _) = self
            .execute(
                Address::ZERO,
                TxKind::Call(to),
                call.abi_encode().into(),
                false,
            )
            .success();
        C::abi_decode_returns(&output).unwrap()
    }

    /// Raw calldata as a node sends it; the decoded bool.
    fn ask(&mut self, to: Address, data: Bytes) -> bool {
        let (output, _, _) = self
            .execute(Address::ZERO, TxKind::Call(to), data, false)
            .success();
        decode_bool_result(&output).unwrap()
    }

    fn transaction_allowed(&mut self, sender: Address) -> bool {
        let data = transaction_allowed_calldata(
            sender,
            STRANGER,
            U256::from(1),
            U256::ZERO,
            U256::from(21_000),
            Bytes::from_static(b"payload"),
        );
        self.ask(ACCOUNT_INGRESS_ADDRESS, data)
    }

    fn connection_allowed(&mut self, node: &PermissionedNode) -> bool {
        let data = connection_allowed_calldata(&node.id, &node.host, node.port);
        self.ask(NODE_INGRESS_ADDRESS, data)
    }

    fn deploy(&mut self, from: Address, artifact: &Artifact, args: Vec<u8>) -> Address {
        let mut data = artifact.bytecode.to_vec();
        data.extend(args);
        let (output, _, _) = self
            .execute(from, TxKind::Create, data.into(), true)
            .success();
        Address::from_slice(&output)
    }
}

/// The events of type `E` in `logs` emitted by `from`.
fn events<E: SolEvent>(logs: &[Log], from: Address) -> Vec<E> {
    logs.iter()
        .filter(|log| log.address == from && log.data.topics().first() == Some(&E::SIGNATURE_HASH))
        .map(|log| E::decode_log_data(&log.data).unwrap())
        .collect()
}

#[test]
fn selectors_are_besus() {
    assert_eq!(
        AccountIngress::transactionAllowedCall::SELECTOR,
        [0x93, 0x64, 0x21, 0xd5]
    );
    assert_eq!(
        AccountRules::transactionAllowedCall::SELECTOR,
        [0x93, 0x64, 0x21, 0xd5]
    );
    assert_eq!(
        NodeIngress::connectionAllowedCall::SELECTOR,
        [0x45, 0xa5, 0x9e, 0x5b]
    );
    assert_eq!(
        NodeRules::connectionAllowedCall::SELECTOR,
        [0x45, 0xa5, 0x9e, 0x5b]
    );
    assert_eq!(
        NodeIngress::getContractVersionCall::SELECTOR,
        [0x8a, 0xa1, 0x04, 0x35]
    );
    let data = transaction_allowed_calldata(
        USER,
        STRANGER,
        U256::ZERO,
        U256::ZERO,
        U256::ZERO,
        Bytes::new(),
    );
    assert_eq!(data[..4], [0x93, 0x64, 0x21, 0xd5]);
    assert_eq!(data.len(), 4 + 7 * 32); // six head words and the payload's length
    assert_eq!(
        connection_allowed_calldata("ab", "h", 1)[..4],
        [0x45, 0xa5, 0x9e, 0x5b]
    );
    assert_eq!(
        NodeIngress::NodePermissionsUpdated::SIGNATURE_HASH,
        "0x66120f934b66d52127e448f8e94c2460ea62821335e0dd18e89ed38a4a09b413"
            .parse::<alloy_primitives::B256>()
            .unwrap()
    );
}

#[test]
fn bool_results_must_be_one_abi_word() {
    let mut word = [0u8; 32];
    assert_eq!(decode_bool_result(&word), Ok(false));
    word[31] = 1;
    assert_eq!(decode_bool_result(&word), Ok(true));
    word[31] = 2;
    assert!(matches!(
        decode_bool_result(&word),
        Err(BoolResultError::Form(_))
    ));
    word[31] = 1;
    word[0] = 1;
    assert!(matches!(
        decode_bool_result(&word),
        Err(BoolResultError::Form(_))
    ));
    assert_eq!(decode_bool_result(&[]), Err(BoolResultError::Size(0)));
    assert_eq!(decode_bool_result(&[0; 64]), Err(BoolResultError::Size(64)));
    assert_eq!(decode_bool_result(&[1]), Err(BoolResultError::Size(1)));
}

#[test]
fn listed_account_is_allowed_and_unlisted_refused() {
    let mut chain = Chain::new(&genesis());
    assert!(chain.transaction_allowed(USER));
    assert!(chain.transaction_allowed(ADMIN));
    assert!(!chain.transaction_allowed(STRANGER));
    assert_eq!(
        chain.call(ACCOUNT_RULES_ADDRESS, AccountRules::getAccountsCall {}),
        vec![ADMIN, USER]
    );
    assert_eq!(
        chain.call(ACCOUNT_RULES_ADDRESS, AccountRules::getSizeCall {}),
        U256::from(2)
    );
    assert_eq!(
        chain.call(
            ACCOUNT_RULES_ADDRESS,
            AccountRules::getByIndexCall {
                index: U256::from(1)
            }
        ),
        USER
    );
    let err: AccountRules::IndexOutOfRange = chain
        .execute(
            STRANGER,
            TxKind::Call(ACCOUNT_RULES_ADDRESS),
            AccountRules::getByIndexCall {
                index: U256::from(2),
            }
            .abi_encode()
            .into(),
            false,
        )
        .reverted_with();
    assert_eq!(err.size, U256::from(2));
}

#[test]
fn admin_adds_then_removes_an_account() {
    let mut chain = Chain::new(&genesis());
    let (output, logs, gas) = chain
        .send(
            ADMIN,
            ACCOUNT_RULES_ADDRESS,
            AccountRules::addAccountCall { account: STRANGER },
        )
        .success();
    println!("gas: addAccount (new account, whole transaction) = {gas}");
    assert!(AccountRules::addAccountCall::abi_decode_returns(&output).unwrap());
    let added = events::<AccountRules::AccountAdded>(&logs, ACCOUNT_RULES_ADDRESS);
    assert_eq!(added.len(), 1);
    assert!(added[0].accountAdded);
    assert_eq!(added[0].accountAddress, STRANGER);
    assert!(chain.transaction_allowed(STRANGER));

    // Adding it again changes nothing and says so.
    let (_, logs, _) = chain
        .send(
            ADMIN,
            ACCOUNT_RULES_ADDRESS,
            AccountRules::addAccountCall { account: STRANGER },
        )
        .success();
    assert!(!events::<AccountRules::AccountAdded>(&logs, ACCOUNT_RULES_ADDRESS)[0].accountAdded);

    let (_, logs, gas) = chain
        .send(
            ADMIN,
            ACCOUNT_RULES_ADDRESS,
            AccountRules::removeAccountCall { account: STRANGER },
        )
        .success();
    println!("gas: removeAccount = {gas}");
    let removed = events::<AccountRules::AccountRemoved>(&logs, ACCOUNT_RULES_ADDRESS);
    assert!(removed[0].accountRemoved);
    assert!(!chain.transaction_allowed(STRANGER));
    // Swap-and-pop kept the others.
    assert!(chain.transaction_allowed(USER));
    assert!(chain.transaction_allowed(ADMIN));

    // Removing the first entry moves the last into its place.
    chain
        .send(
            ADMIN,
            ACCOUNT_RULES_ADDRESS,
            AccountRules::removeAccountCall { account: ADMIN },
        )
        .success();
    assert_eq!(
        chain.call(ACCOUNT_RULES_ADDRESS, AccountRules::getAccountsCall {}),
        vec![USER]
    );
    assert!(chain.transaction_allowed(USER));
    assert!(!chain.transaction_allowed(ADMIN));

    let (_, logs, _) = chain
        .send(
            ADMIN,
            ACCOUNT_RULES_ADDRESS,
            AccountRules::addAccountsCall {
                list: vec![STRANGER, USER],
            },
        )
        .success();
    let added = events::<AccountRules::AccountAdded>(&logs, ACCOUNT_RULES_ADDRESS);
    assert_eq!(
        added
            .iter()
            .map(|e| (e.accountAdded, e.accountAddress))
            .collect::<Vec<_>>(),
        vec![(true, STRANGER), (false, USER)]
    );
    assert!(chain.transaction_allowed(STRANGER));
}

#[test]
fn non_admin_cannot_change_the_account_list() {
    let mut chain = Chain::new(&genesis());
    // USER may transact but is not an admin.
    for from in [USER, STRANGER] {
        let err: AccountRules::NotAuthorized = chain
            .send(
                from,
                ACCOUNT_RULES_ADDRESS,
                AccountRules::addAccountCall { account: STRANGER },
            )
            .reverted_with();
        assert_eq!(err.caller, from);
        let err: AccountRules::NotAuthorized = chain
            .send(
                from,
                ACCOUNT_RULES_ADDRESS,
                AccountRules::removeAccountCall { account: USER },
            )
            .reverted_with();
        assert_eq!(err.caller, from);
    }
    assert_eq!(
        chain.call(ACCOUNT_RULES_ADDRESS, AccountRules::getSizeCall {}),
        U256::from(2)
    );
    assert!(!chain.transaction_allowed(STRANGER));
    assert!(chain.transaction_allowed(USER));
}

#[test]
fn read_only_mode_blocks_changes() {
    let mut chain = Chain::new(&genesis());
    chain
        .send(
            STRANGER,
            ACCOUNT_RULES_ADDRESS,
            AccountRules::enterReadOnlyCall {},
        )
        .reverted_with::<AccountRules::NotAuthorized>();
    let (_, logs, _) = chain
        .send(
            ADMIN,
            ACCOUNT_RULES_ADDRESS,
            AccountRules::enterReadOnlyCall {},
        )
        .success();
    assert!(events::<AccountRules::ReadOnlyModeChanged>(&logs, ACCOUNT_RULES_ADDRESS)[0].readOnly);
    assert!(chain.call(ACCOUNT_RULES_ADDRESS, AccountRules::isReadOnlyCall {}));
    chain
        .send(
            ADMIN,
            ACCOUNT_RULES_ADDRESS,
            AccountRules::enterReadOnlyCall {},
        )
        .reverted_with::<AccountRules::InReadOnlyMode>();
    chain
        .send(
            ADMIN,
            ACCOUNT_RULES_ADDRESS,
            AccountRules::addAccountCall { account: STRANGER },
        )
        .reverted_with::<AccountRules::InReadOnlyMode>();
    chain
        .send(
            ADMIN,
            ACCOUNT_RULES_ADDRESS,
            AccountRules::addAccountsCall {
                list: vec![STRANGER],
            },
        )
        .reverted_with::<AccountRules::InReadOnlyMode>();
    chain
        .send(
            ADMIN,
            ACCOUNT_RULES_ADDRESS,
            AccountRules::removeAccountCall { account: USER },
        )
        .reverted_with::<AccountRules::InReadOnlyMode>();
    assert!(!chain.transaction_allowed(STRANGER));

    let node = node("newcomer", "10.0.0.9", 30303);
    chain
        .send(ADMIN, NODE_RULES_ADDRESS, NodeRules::enterReadOnlyCall {})
        .success();
    chain
        .send(
            ADMIN,
            NODE_RULES_ADDRESS,
            NodeRules::addEnodeCall {
                enodeId: node.id.clone(),
                host: node.host.clone(),
                port: node.port,
            },
        )
        .reverted_with::<NodeRules::InReadOnlyMode>();

    chain
        .send(
            ADMIN,
            ACCOUNT_RULES_ADDRESS,
            AccountRules::exitReadOnlyCall {},
        )
        .success();
    chain
        .send(
            ADMIN,
            ACCOUNT_RULES_ADDRESS,
            AccountRules::exitReadOnlyCall {},
        )
        .reverted_with::<AccountRules::NotInReadOnlyMode>();
    chain
        .send(
            ADMIN,
            ACCOUNT_RULES_ADDRESS,
            AccountRules::addAccountCall { account: STRANGER },
        )
        .success();
    assert!(chain.transaction_allowed(STRANGER));
}

#[test]
fn node_rules_match_id_host_and_port_with_port_zero_as_any_port() {
    let mut chain = Chain::new(&genesis());
    let v1 = node("validator-1", "10.0.0.1", 30303);
    assert!(chain.connection_allowed(&v1));
    assert!(chain.connection_allowed(&node("validator-2", "10.0.0.2", 30303)));
    // A different port, host or id is refused.
    assert!(!chain.connection_allowed(&node("validator-1", "10.0.0.1", 30304)));
    assert!(!chain.connection_allowed(&node("validator-1", "10.0.0.2", 30303)));
    assert!(!chain.connection_allowed(&node("validator-3", "10.0.0.1", 30303)));
    assert!(!chain.connection_allowed(&PermissionedNode {
        id: v1.id.to_uppercase(),
        ..v1.clone()
    }));
    // Port 0 (an inbound connection): any entry with that id and host.
    assert!(chain.connection_allowed(&node("validator-1", "10.0.0.1", 0)));
    assert!(!chain.connection_allowed(&node("validator-1", "10.0.0.2", 0)));
    assert!(!chain.connection_allowed(&node("validator-3", "10.0.0.1", 0)));

    // Two ports for one host: port 0 stays allowed until both are removed.
    let second = node("validator-1", "10.0.0.1", 40404);
    let add = |n: &PermissionedNode| NodeRules::addEnodeCall {
        enodeId: n.id.clone(),
        host: n.host.clone(),
        port: n.port,
    };
    let remove = |n: &PermissionedNode| NodeRules::removeEnodeCall {
        enodeId: n.id.clone(),
        host: n.host.clone(),
        port: n.port,
    };
    chain
        .send(ADMIN, NODE_RULES_ADDRESS, add(&second))
        .success();
    assert!(chain.connection_allowed(&second));
    chain.send(ADMIN, NODE_RULES_ADDRESS, remove(&v1)).success();
    assert!(!chain.connection_allowed(&v1));
    assert!(chain.connection_allowed(&node("validator-1", "10.0.0.1", 0)));
    chain
        .send(ADMIN, NODE_RULES_ADDRESS, remove(&second))
        .success();
    assert!(!chain.connection_allowed(&node("validator-1", "10.0.0.1", 0)));
    // The other entry survived the swap-and-pop removals.
    assert!(chain.connection_allowed(&node("validator-2", "10.0.0.2", 30303)));
    assert_eq!(
        chain.call(NODE_RULES_ADDRESS, NodeRules::getSizeCall {}),
        U256::from(1)
    );
    let entry = chain.call(
        NODE_RULES_ADDRESS,
        NodeRules::getByIndexCall { index: U256::ZERO },
    );
    assert_eq!(
        (entry.enodeId, entry.host, entry.port),
        (enode_id("validator-2"), "10.0.0.2".to_string(), 30303)
    );
}

#[test]
fn node_rules_refuse_bad_entries_and_non_admins() {
    let mut chain = Chain::new(&genesis());
    let good = node("newcomer", "10.0.0.9", 30303);
    let add = |id: &str, host: &str, port: u16| NodeRules::addEnodeCall {
        enodeId: id.into(),
        host: host.into(),
        port,
    };
    for bad in [
        good.id.to_uppercase(),
        format!("0x{}", &good.id[2..]),
        good.id[1..].to_string(),
        format!("{}0", good.id),
        format!("{}g", &good.id[1..]),
    ] {
        let err: NodeRules::InvalidEnodeId = chain
            .send(ADMIN, NODE_RULES_ADDRESS, add(&bad, &good.host, good.port))
            .reverted_with();
        assert_eq!(err.enodeId, bad);
    }
    chain
        .send(ADMIN, NODE_RULES_ADDRESS, add(&good.id, &good.host, 0))
        .reverted_with::<NodeRules::ZeroPort>();
    chain
        .send(ADMIN, NODE_RULES_ADDRESS, add(&good.id, "", good.port))
        .reverted_with::<NodeRules::EmptyHost>();
    let err: NodeRules::NotAuthorized = chain
        .send(
            USER,
            NODE_RULES_ADDRESS,
            add(&good.id, &good.host, good.port),
        )
        .reverted_with();
    assert_eq!(err.caller, USER);
    assert!(!chain.connection_allowed(&good));
    // Only the registered rules contract may make the ingress emit.
    let err: NodeIngress::NotRulesContract = chain
        .send(
            ADMIN,
            NODE_INGRESS_ADDRESS,
            NodeIngress::emitRulesChangeEventCall {
                addsRestrictions: true,
            },
        )
        .reverted_with();
    assert_eq!(err.caller, ADMIN);
}

#[test]
fn node_ingress_announces_each_change() {
    let mut chain = Chain::new(&genesis());
    let n = node("newcomer", "10.0.0.9", 30303);
    let add = NodeRules::addEnodeCall {
        enodeId: n.id.clone(),
        host: n.host.clone(),
        port: n.port,
    };
    let (output, logs, gas) = chain.send(ADMIN, NODE_RULES_ADDRESS, add.clone()).success();
    println!("gas: addEnode (128-char id, 8-char host, whole transaction) = {gas}");
    assert!(NodeRules::addEnodeCall::abi_decode_returns(&output).unwrap());
    let added = events::<NodeRules::NodeAdded>(&logs, NODE_RULES_ADDRESS);
    assert_eq!(
        (
            added[0].nodeAdded,
            &added[0].enodeId,
            &added[0].enodeHost,
            added[0].enodePort
        ),
        (true, &n.id, &n.host, n.port)
    );
    let updated = events::<NodeIngress::NodePermissionsUpdated>(&logs, NODE_INGRESS_ADDRESS);
    assert_eq!(updated.len(), 1);
    assert!(!updated[0].addsRestrictions);
    assert!(chain.connection_allowed(&n));

    // A duplicate is no change: NodeAdded(false) and nothing from the ingress.
    let (_, logs, _) = chain.send(ADMIN, NODE_RULES_ADDRESS, add).success();
    assert!(!events::<NodeRules::NodeAdded>(&logs, NODE_RULES_ADDRESS)[0].nodeAdded);
    assert!(events::<NodeIngress::NodePermissionsUpdated>(&logs, NODE_INGRESS_ADDRESS).is_empty());

    let remove = NodeRules::removeEnodeCall {
        enodeId: n.id.clone(),
        host: n.host.clone(),
        port: n.port,
    };
    let (_, logs, gas) = chain
        .send(ADMIN, NODE_RULES_ADDRESS, remove.clone())
        .success();
    println!("gas: removeEnode = {gas}");
    assert!(events::<NodeRules::NodeRemoved>(&logs, NODE_RULES_ADDRESS)[0].nodeRemoved);
    let updated = events::<NodeIngress::NodePermissionsUpdated>(&logs, NODE_INGRESS_ADDRESS);
    assert_eq!(updated.len(), 1);
    assert!(updated[0].addsRestrictions);
    assert!(!chain.connection_allowed(&n));

    let (_, logs, _) = chain.send(ADMIN, NODE_RULES_ADDRESS, remove).success();
    assert!(!events::<NodeRules::NodeRemoved>(&logs, NODE_RULES_ADDRESS)[0].nodeRemoved);
    assert!(events::<NodeIngress::NodePermissionsUpdated>(&logs, NODE_INGRESS_ADDRESS).is_empty());
}

#[test]
fn without_rules_accounts_are_all_allowed_and_nodes_all_refused() {
    let mut chain = Chain::new(&genesis());
    let v1 = node("validator-1", "10.0.0.1", 30303);
    chain
        .send(
            STRANGER,
            ACCOUNT_INGRESS_ADDRESS,
            AccountIngress::removeContractCall { name: RULES.into() },
        )
        .reverted_with::<AccountIngress::NotAuthorized>();
    for ingress in [ACCOUNT_INGRESS_ADDRESS, NODE_INGRESS_ADDRESS] {
        let (_, logs, _) = chain
            .send(
                ADMIN,
                ingress,
                AccountIngress::removeContractCall { name: RULES.into() },
            )
            .success();
        let updated = events::<AccountIngress::RegistryUpdated>(&logs, ingress);
        assert_eq!(updated[0].contractAddress, Address::ZERO);
        assert_eq!(updated[0].contractName, RULES);
        assert_eq!(
            chain.call(ingress, AccountIngress::getSizeCall {}),
            U256::from(1)
        );
        assert_eq!(
            chain.call(
                ingress,
                AccountIngress::getContractAddressCall { name: RULES.into() }
            ),
            Address::ZERO
        );
        chain
            .send(
                ADMIN,
                ingress,
                AccountIngress::removeContractCall { name: RULES.into() },
            )
            .reverted_with::<AccountIngress::UnknownContract>();
    }
    assert!(chain.transaction_allowed(STRANGER));
    assert!(chain.transaction_allowed(USER));
    assert!(!chain.connection_allowed(&v1));
    assert!(!chain.connection_allowed(&node("validator-1", "10.0.0.1", 0)));
    // The Admin contract cannot be removed.
    let admin_name = chain.call(NODE_INGRESS_ADDRESS, NodeIngress::ADMIN_CONTRACTCall {});
    chain
        .send(
            ADMIN,
            NODE_INGRESS_ADDRESS,
            NodeIngress::removeContractCall { name: admin_name },
        )
        .reverted_with::<NodeIngress::AdminContractRequired>();
}

#[test]
fn an_admin_points_the_ingress_at_new_rules() {
    let mut chain = Chain::new(&genesis());
    let args = AccountRules::constructorCall {
        ingress_: ACCOUNT_INGRESS_ADDRESS,
        initialAccounts: vec![STRANGER],
    }
    .abi_encode();
    let replacement = chain.deploy(ADMIN, &Artifact::account_rules().unwrap(), args);
    let set = AccountIngress::setContractAddressCall {
        name: RULES.into(),
        addr: replacement,
    };
    let err: AccountIngress::NotAuthorized = chain
        .send(USER, ACCOUNT_INGRESS_ADDRESS, set.clone())
        .reverted_with();
    assert_eq!(err.caller, USER);
    assert!(!chain.transaction_allowed(STRANGER));

    let (_, logs, _) = chain.send(ADMIN, ACCOUNT_INGRESS_ADDRESS, set).success();
    let updated = events::<AccountIngress::RegistryUpdated>(&logs, ACCOUNT_INGRESS_ADDRESS);
    assert_eq!(updated[0].contractAddress, replacement);
    assert_eq!(updated[0].contractName, RULES);
    assert!(chain.transaction_allowed(STRANGER));
    assert!(!chain.transaction_allowed(USER));
    assert_eq!(
        chain.call(ACCOUNT_INGRESS_ADDRESS, AccountIngress::getSizeCall {}),
        U256::from(2)
    );

    // A node rules replacement can be filled before it is registered (no ingress event).
    let args = NodeRules::constructorCall {
        ingress_: NODE_INGRESS_ADDRESS,
        initialNodes: vec![],
    }
    .abi_encode();
    let node_rules = chain.deploy(ADMIN, &Artifact::node_rules().unwrap(), args);
    let n = node("newcomer", "10.0.0.9", 30303);
    let (_, logs, _) = chain
        .send(
            ADMIN,
            node_rules,
            NodeRules::addEnodeCall {
                enodeId: n.id.clone(),
                host: n.host.clone(),
                port: n.port,
            },
        )
        .success();
    assert!(events::<NodeIngress::NodePermissionsUpdated>(&logs, NODE_INGRESS_ADDRESS).is_empty());
    assert!(!chain.connection_allowed(&n));
    chain
        .send(
            ADMIN,
            NODE_INGRESS_ADDRESS,
            NodeIngress::setContractAddressCall {
                name: RULES.into(),
                addr: node_rules,
            },
        )
        .success();
    assert!(chain.connection_allowed(&n));
    assert!(!chain.connection_allowed(&node("validator-1", "10.0.0.1", 30303)));
}

#[test]
fn admins_manage_the_admin_list_but_not_themselves() {
    let mut chain = Chain::new(&genesis());
    let err: Admin::CannotRemoveSelf = chain
        .send(
            ADMIN,
            PERMISSIONING_ADMIN_ADDRESS,
            Admin::removeAdminCall { account: ADMIN },
        )
        .reverted_with();
    assert_eq!(err.account, ADMIN);

    let (output, logs, _) = chain
        .send(
            ADMIN,
            PERMISSIONING_ADMIN_ADDRESS,
            Admin::addAdminCall { account: ADMIN },
        )
        .success();
    assert!(!Admin::addAdminCall::abi_decode_returns(&output).unwrap());
    let added = events::<Admin::AdminAdded>(&logs, PERMISSIONING_ADMIN_ADDRESS);
    assert!(!added[0].adminAdded);
    assert_eq!(
        added[0].message,
        "Adding own account as Admin is not permitted"
    );

    chain
        .send(
            STRANGER,
            PERMISSIONING_ADMIN_ADDRESS,
            Admin::addAdminCall { account: STRANGER },
        )
        .reverted_with::<Admin::NotAdmin>();

    let (_, logs, _) = chain
        .send(
            ADMIN,
            PERMISSIONING_ADMIN_ADDRESS,
            Admin::addAdminsCall {
                accounts: vec![OTHER_ADMIN, ADMIN],
            },
        )
        .success();
    let added = events::<Admin::AdminAdded>(&logs, PERMISSIONING_ADMIN_ADDRESS);
    assert_eq!(
        added
            .iter()
            .map(|e| (e.adminAdded, e.account))
            .collect::<Vec<_>>(),
        vec![(true, OTHER_ADMIN), (false, ADMIN)]
    );
    assert!(chain.call(
        ACCOUNT_INGRESS_ADDRESS,
        AccountIngress::isAuthorizedCall {
            account: OTHER_ADMIN
        }
    ));
    // The new admin can now change the lists, and remove the first admin.
    chain
        .send(
            OTHER_ADMIN,
            ACCOUNT_RULES_ADDRESS,
            AccountRules::addAccountCall { account: STRANGER },
        )
        .success();
    assert!(chain.transaction_allowed(STRANGER));
    let (_, logs, _) = chain
        .send(
            OTHER_ADMIN,
            PERMISSIONING_ADMIN_ADDRESS,
            Admin::removeAdminCall { account: ADMIN },
        )
        .success();
    assert!(events::<Admin::AdminRemoved>(&logs, PERMISSIONING_ADMIN_ADDRESS)[0].adminRemoved);
    assert_eq!(
        chain.call(PERMISSIONING_ADMIN_ADDRESS, Admin::getAdminsCall {}),
        vec![OTHER_ADMIN]
    );
    chain
        .send(
            ADMIN,
            ACCOUNT_RULES_ADDRESS,
            AccountRules::addAccountCall {
                account: OTHER_ADMIN,
            },
        )
        .reverted_with::<AccountRules::NotAuthorized>();
}

#[test]
fn contract_version_is_1_0_0() {
    let mut chain = Chain::new(&genesis());
    for at in [
        NODE_INGRESS_ADDRESS,
        ACCOUNT_INGRESS_ADDRESS,
        NODE_RULES_ADDRESS,
        ACCOUNT_RULES_ADDRESS,
    ] {
        assert_eq!(
            chain.call(at, NodeIngress::getContractVersionCall {}),
            U256::from(1_000_000),
            "{at}"
        );
    }
}

#[test]
fn predeploy_places_five_contracts_with_their_state() {
    let accounts = permissioning_predeploy(&genesis()).unwrap();
    let placed: Vec<_> = accounts.iter().map(|a| (a.name, a.address)).collect();
    assert_eq!(
        placed,
        vec![
            ("Admin", PERMISSIONING_ADMIN_ADDRESS),
            ("AccountIngress", ACCOUNT_INGRESS_ADDRESS),
            ("AccountRules", ACCOUNT_RULES_ADDRESS),
            ("NodeIngress", NODE_INGRESS_ADDRESS),
            ("NodeRules", NODE_RULES_ADDRESS),
        ]
    );
    for account in &accounts {
        let size = account.code.len();
        println!("size: {} runtime code = {size} bytes", account.name);
        assert!(size <= CODE_SIZE_LIMIT, "{} is {size} bytes", account.name);
        assert!(
            !account.storage.is_empty(),
            "{} has no storage",
            account.name
        );
    }
    // The rules contracts' immutable ingress is baked into their code.
    assert!(
        accounts[2]
            .code
            .windows(20)
            .any(|w| w == ACCOUNT_INGRESS_ADDRESS.as_slice())
    );
    assert!(
        accounts[4]
            .code
            .windows(20)
            .any(|w| w == NODE_INGRESS_ADDRESS.as_slice())
    );

    let mut chain = Chain::new(&genesis());
    assert_eq!(
        chain.call(NODE_INGRESS_ADDRESS, NodeIngress::getAllContractKeysCall {}),
        vec![
            chain.call(NODE_INGRESS_ADDRESS, NodeIngress::ADMIN_CONTRACTCall {}),
            RULES.into()
        ]
    );
    assert_eq!(
        chain.call(
            NODE_INGRESS_ADDRESS,
            NodeIngress::getContractAddressCall { name: RULES.into() }
        ),
        NODE_RULES_ADDRESS
    );
    assert_eq!(
        chain.call(PERMISSIONING_ADMIN_ADDRESS, Admin::getAdminsCall {}),
        vec![ADMIN]
    );

    let json = permissioning_alloc_json(&genesis()).unwrap();
    let alloc =
        healthchain_chainspec::parse_alloc(&serde_json::Value::Object(json), "alloc").unwrap();
    for account in &accounts {
        assert_eq!(alloc[&account.address].code, account.code);
    }
}

#[test]
fn predeploy_refuses_bad_genesis_lists() {
    let no_admins = PermissioningGenesis {
        admins: vec![],
        ..genesis()
    };
    assert!(matches!(
        permissioning_predeploy(&no_admins),
        Err(PredeployError::NoPermissioningAdmins)
    ));
    let zero = PermissioningGenesis {
        accounts: vec![Address::ZERO],
        ..genesis()
    };
    assert!(matches!(
        permissioning_predeploy(&zero),
        Err(PredeployError::ZeroAddress { list: "accounts" })
    ));
    let id = enode_id("x");
    for bad in [id.to_uppercase(), format!("0x{id}"), id[..126].to_string()] {
        assert!(!is_valid_enode_id(&bad));
        let g = PermissioningGenesis {
            nodes: vec![PermissionedNode {
                id: bad,
                host: "10.0.0.1".into(),
                port: 1,
            }],
            ..genesis()
        };
        assert!(matches!(
            permissioning_predeploy(&g),
            Err(PredeployError::InvalidEnodeId { .. })
        ));
    }
    let port0 = PermissioningGenesis {
        nodes: vec![node("x", "10.0.0.1", 0)],
        ..genesis()
    };
    assert!(matches!(
        permissioning_predeploy(&port0),
        Err(PredeployError::InvalidNodeAddress { port: 0, .. })
    ));
    // Duplicates collapse to one entry.
    let dup = PermissioningGenesis {
        accounts: vec![USER, USER],
        nodes: vec![node("x", "h", 1), node("x", "h", 1)],
        ..genesis()
    };
    let mut chain = Chain::new(&dup);
    assert_eq!(
        chain.call(ACCOUNT_RULES_ADDRESS, AccountRules::getSizeCall {}),
        U256::from(1)
    );
    assert_eq!(
        chain.call(NODE_RULES_ADDRESS, NodeRules::getSizeCall {}),
        U256::from(1)
    );
}
