//! Pool behaviour: validation errors, pending/queued, replacement, ordering, heads, limits.

mod common;

use std::sync::Arc;

use alloy_consensus::{
    SignableTransaction, TxEip1559, TxEip4844, TxLegacy, transaction::SignerRecoverable as _,
};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Bytes, Signature, TxKind, U256};
use common::{State, env};
use healthchain_chainspec::Hardfork;
use healthchain_fixtures::{CHAIN_ID, DevAccount};
use healthchain_primitives::Transaction;
use healthchain_storage_api::{BlockWriter, MemoryStore, StateReader};
use healthchain_txpool::{
    Origin, PoolConfig, PoolEnv, PoolError, TxPool, TxStatus, ValidTransaction, validate_raw,
    validate_transaction,
};

fn cfg() -> PoolConfig {
    PoolConfig {
        min_gas_price: 0,
        ..PoolConfig::default()
    }
}

fn tx1559(acc: &DevAccount, nonce: u64, max_fee: u128, prio: u128) -> Transaction {
    acc.sign(TxEip1559 {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: max_fee,
        max_priority_fee_per_gas: prio,
        to: TxKind::Call(Address::repeat_byte(0x99)),
        ..Default::default()
    })
}

fn valid(tx: Transaction) -> Arc<ValidTransaction> {
    Arc::new(validate_transaction(tx, &env(), &cfg()).expect("valid"))
}

fn raw(tx: &Transaction) -> Vec<u8> {
    tx.encoded_2718()
}

fn dummy_sig() -> Signature {
    Signature::new(U256::from(1u64), U256::from(1u64), false)
}

#[test]
fn stateless_errors() {
    let a = DevAccount::new(0);
    let e = env();
    let c = cfg();
    let ok = tx1559(&a, 0, 10, 1);
    let v = validate_raw(&raw(&ok), &e, &c).expect("valid");
    assert_eq!(v.sender, a.address);
    assert_eq!(v.intrinsic_gas, 21_000);

    // wrong chain id
    let t = a.sign(TxEip1559 {
        chain_id: 1,
        gas_limit: 21_000,
        to: TxKind::Call(Address::ZERO),
        ..Default::default()
    });
    assert!(matches!(
        validate_raw(&raw(&t), &e, &c),
        Err(PoolError::WrongChainId { got: 1, .. })
    ));

    // bad signature: r = 0
    let t: Transaction = TxEip1559 {
        chain_id: CHAIN_ID,
        gas_limit: 21_000,
        to: TxKind::Call(Address::ZERO),
        ..Default::default()
    }
    .into_signed(Signature::new(U256::ZERO, U256::from(1u64), false))
    .into();
    assert_eq!(
        validate_raw(&raw(&t), &e, &c),
        Err(PoolError::InvalidSignature)
    );

    // undecodable
    assert!(matches!(
        validate_raw(&[0x02, 0xff], &e, &c),
        Err(PoolError::Decode { .. })
    ));

    // oversize
    let big = a.sign(TxEip1559 {
        chain_id: CHAIN_ID,
        gas_limit: 10_000_000,
        input: Bytes::from(vec![1u8; 200 * 1024]),
        to: TxKind::Call(Address::ZERO),
        ..Default::default()
    });
    assert!(matches!(
        validate_raw(&raw(&big), &e, &c),
        Err(PoolError::Oversized { .. })
    ));
    assert!(matches!(
        validate_transaction(big, &e, &c),
        Err(PoolError::Oversized { .. })
    ));

    // intrinsic gas: 4 non-zero bytes need 21,064
    let t = a.sign(TxEip1559 {
        chain_id: CHAIN_ID,
        gas_limit: 21_000,
        input: Bytes::from(vec![1u8; 4]),
        to: TxKind::Call(Address::ZERO),
        ..Default::default()
    });
    assert_eq!(
        validate_raw(&raw(&t), &e, &c),
        Err(PoolError::IntrinsicGasExceedsGasLimit {
            intrinsic: 21_064,
            gas_limit: 21_000
        })
    );

    // gas over block limit
    let t = a.sign(TxEip1559 {
        chain_id: CHAIN_ID,
        gas_limit: 30_000_001,
        ..Default::default()
    });
    assert!(matches!(
        validate_raw(&raw(&t), &e, &c),
        Err(PoolError::ExceedsBlockGasLimit { .. })
    ));

    // type 3 rejected (type checked before the signature)
    let t: Transaction = TxEip4844 {
        chain_id: CHAIN_ID,
        gas_limit: 21_000,
        ..Default::default()
    }
    .into_signed(dummy_sig())
    .into();
    let err = validate_transaction(t, &e, &c).unwrap_err();
    assert_eq!(err, PoolError::InvalidTransactionType { tx_type: 3 });
    assert_eq!(err.besu_code(), -32602);

    // 1559 before London
    let pre = PoolEnv {
        fork: Hardfork::Istanbul,
        base_fee: None,
        ..env()
    };
    assert!(matches!(
        validate_raw(&raw(&ok), &pre, &c),
        Err(PoolError::InvalidTransactionType { tx_type: 2 })
    ));

    // unprotected legacy
    let t: Transaction = TxLegacy {
        chain_id: None,
        gas_limit: 21_000,
        ..Default::default()
    }
    .into_signed(dummy_sig())
    .into();
    assert_eq!(
        validate_transaction(t, &e, &c),
        Err(PoolError::ChainIdRequired)
    );

    // priority > max fee
    let t = tx1559(&a, 0, 5, 6);
    let err = validate_raw(&raw(&t), &e, &c).unwrap_err();
    assert_eq!(err, PoolError::PriorityFeeExceedsMaxFee);
    assert_eq!(
        err.to_string(),
        "Max priority fee per gas exceeds max fee per gas"
    );

    // below min gas price
    let strict = PoolConfig {
        min_gas_price: 1_000,
        ..cfg()
    };
    let err = validate_raw(&raw(&tx1559(&a, 0, 999, 1)), &e, &strict).unwrap_err();
    assert_eq!(
        err,
        PoolError::GasPriceTooLow {
            price: 999,
            min: 1_000
        }
    );
    assert_eq!(err.besu_code(), -32009);
    assert_eq!(
        err.to_string(),
        "Gas price below configured minimum gas price"
    );

    // fee cap: 21,000 * 10^14 = 2.1 ether > 1 ether (raw path only)
    let t = tx1559(&a, 0, 100_000_000_000_000, 1);
    let capped = PoolConfig::default();
    assert!(matches!(
        validate_raw(&raw(&t), &e, &capped),
        Err(PoolError::FeeCapExceeded { .. })
    ));
    assert!(validate_transaction(t, &e, &capped).is_ok());
}

#[test]
fn stateful_errors() {
    let a = DevAccount::new(0);
    let b = DevAccount::new(1);
    let mut state = State::default();
    state.fund(a.address, 5);
    let mut pool = TxPool::new(PoolConfig {
        max_nonce_distance: 10,
        ..cfg()
    });

    let err = pool
        .add(valid(tx1559(&a, 4, 10, 1)), Origin::Local, &state, 0)
        .unwrap_err();
    assert_eq!(
        err,
        PoolError::NonceTooLow {
            state_nonce: 5,
            tx_nonce: 4
        }
    );
    assert_eq!(
        (err.besu_code(), err.to_string().as_str()),
        (-32001, "Nonce too low")
    );

    let err = pool
        .add(valid(tx1559(&a, 15, 10, 1)), Origin::Local, &state, 0)
        .unwrap_err();
    assert!(matches!(err, PoolError::NonceTooDistant { .. }));
    assert!(
        pool.add(valid(tx1559(&a, 14, 10, 1)), Origin::Local, &state, 0)
            .is_ok()
    );

    // b has no account: any cost is unaffordable
    let err = pool
        .add(valid(tx1559(&b, 0, 10, 1)), Origin::Local, &state, 0)
        .unwrap_err();
    assert!(matches!(err, PoolError::InsufficientFunds { .. }));
    assert_eq!(err.besu_code(), -32004);
    // ...but a zero-priced transaction is fine
    assert!(
        pool.add(valid(tx1559(&b, 0, 0, 0)), Origin::Local, &state, 0)
            .is_ok()
    );

    // EIP-3607
    let c = DevAccount::new(2);
    state.fund(c.address, 0);
    state.0.get_mut(&c.address).expect("funded").code_hash = B256::repeat_byte(1);
    let err = pool
        .add(valid(tx1559(&c, 0, 10, 1)), Origin::Local, &state, 0)
        .unwrap_err();
    assert_eq!(err, PoolError::SenderNotAuthorized);
    assert_eq!(err.besu_code(), -32007);

    // known
    let t = valid(tx1559(&a, 5, 10, 1));
    pool.add(t.clone(), Origin::Local, &state, 0).expect("add");
    assert_eq!(pool.add(t, Origin::Local, &state, 0), Err(PoolError::Known));
}

#[test]
fn pending_queued_and_promotion() {
    let a = DevAccount::new(0);
    let mut state = State::default();
    state.fund(a.address, 0);
    let mut pool = TxPool::new(cfg());
    let t0 = valid(tx1559(&a, 0, 10, 1));
    let t1 = valid(tx1559(&a, 1, 10, 1));
    let t2 = valid(tx1559(&a, 2, 10, 1));
    let out = pool
        .add(t2.clone(), Origin::Remote, &state, 1)
        .expect("add");
    assert_eq!(out.status, TxStatus::Queued);
    assert!(out.promoted.is_empty());
    let out = pool.add(t0.clone(), Origin::Local, &state, 2).expect("add");
    assert_eq!(out.status, TxStatus::Pending);
    assert_eq!(out.promoted, vec![t0.hash]);
    assert_eq!(pool.status().pending, 1);
    assert_eq!(pool.status().queued, 1);
    assert_eq!(pool.pending_nonce(a.address, 0), 1);
    let out = pool.add(t1.clone(), Origin::Local, &state, 3).expect("add");
    assert_eq!(out.promoted, vec![t1.hash, t2.hash]);
    assert_eq!(pool.status().pending, 3);
    assert_eq!(pool.status().queued, 0);
    assert_eq!(pool.pending_nonce(a.address, 0), 3);
    let stats = pool.statistics();
    assert_eq!((stats.local_count, stats.remote_count), (2, 1));
    let infos = pool.transactions();
    assert_eq!(infos[0].hash, t2.hash);
    assert_eq!(infos[0].added_at_ms, 1);
    assert!(!infos[0].is_local);
    assert_eq!(pool.content().pending[&a.address].len(), 3);
    assert!(pool.contains(&t1.hash));
    assert_eq!(pool.get(&t1.hash).map(|t| t.hash), Some(t1.hash));

    // removing a middle tx demotes its successor
    assert_eq!(pool.remove(&[t1.hash]), vec![t1.hash]);
    assert_eq!(pool.status().pending, 1);
    assert_eq!(pool.status().queued, 1);
}

#[test]
fn replacement() {
    let a = DevAccount::new(0);
    let mut state = State::default();
    state.fund(a.address, 0);
    let mut pool = TxPool::new(cfg());
    let t = valid(tx1559(&a, 0, 100, 10));
    pool.add(t.clone(), Origin::Local, &state, 0).expect("add");
    // 9% bump on both: rejected
    let err = pool
        .add(valid(tx1559(&a, 0, 109, 11)), Origin::Local, &state, 0)
        .unwrap_err();
    assert_eq!(err, PoolError::ReplacementUnderpriced);
    assert_eq!(err.to_string(), "Replacement transaction underpriced");
    // max fee bumped, priority not
    let err = pool
        .add(valid(tx1559(&a, 0, 200, 10)), Origin::Local, &state, 0)
        .unwrap_err();
    assert_eq!(err, PoolError::ReplacementUnderpriced);
    // 10% on both: accepted
    let r = valid(tx1559(&a, 0, 110, 11));
    let out = pool
        .add(r.clone(), Origin::Local, &state, 0)
        .expect("replace");
    assert_eq!(out.replaced, Some(t.hash));
    assert_eq!(out.promoted, vec![r.hash]);
    assert!(!pool.contains(&t.hash));
    assert_eq!(pool.len(), 1);

    // bump 0 (zero-base-fee chains): equal price replaces
    let mut pool = TxPool::new(PoolConfig {
        price_bump_percent: 0,
        ..cfg()
    });
    pool.add(valid(tx1559(&a, 0, 0, 0)), Origin::Local, &state, 0)
        .expect("add");
    let acc = a.sign(TxEip1559 {
        chain_id: CHAIN_ID,
        gas_limit: 21_001,
        to: TxKind::Call(Address::ZERO),
        ..Default::default()
    });
    assert!(
        pool.add(valid(acc), Origin::Local, &state, 0)
            .expect("replace")
            .replaced
            .is_some()
    );
}

#[test]
fn best_transactions_order() {
    let (a, b, c) = (DevAccount::new(0), DevAccount::new(1), DevAccount::new(2));
    let mut state = State::default();
    for acc in [&a, &b, &c] {
        state.fund(acc.address, 0);
    }
    let mut pool = TxPool::new(cfg());
    // a: tips 1 then 50; b: tip 5, 5; c: tip 5 (arrives after b)
    let a0 = valid(tx1559(&a, 0, 100, 1));
    let a1 = valid(tx1559(&a, 1, 100, 50));
    let b0 = valid(tx1559(&b, 0, 100, 5));
    let b1 = valid(tx1559(&b, 1, 100, 5));
    let c0 = valid(tx1559(&c, 0, 100, 5));
    for t in [&a1, &a0, &b0, &b1, &c0] {
        pool.add(t.clone(), Origin::Remote, &state, 0).expect("add");
    }
    let order: Vec<B256> = pool.best_transactions(Some(0)).map(|t| t.hash).collect();
    assert_eq!(order, vec![b0.hash, b1.hash, c0.hash, a0.hash, a1.hash]);

    // base fee 98: tips become min(prio, 2): b (arrived first), c, a are all 2 or less
    let order: Vec<B256> = pool.best_transactions(Some(98)).map(|t| t.hash).collect();
    assert_eq!(order, vec![b0.hash, b1.hash, c0.hash, a0.hash, a1.hash]);
    // base fee above every max fee: nothing
    assert_eq!(pool.best_transactions(Some(101)).count(), 0);

    let mut best = pool.best_transactions(Some(0));
    assert_eq!(best.next().map(|t| t.hash), Some(b0.hash));
    best.mark_invalid(&b.address);
    let rest: Vec<B256> = best.map(|t| t.hash).collect();
    assert_eq!(rest, vec![c0.hash, a0.hash, a1.hash]);
}

#[test]
fn new_head_removes_mined_and_promotes() {
    let a = DevAccount::new(0);
    let mut state = State::default();
    state.fund(a.address, 0);
    let mut pool = TxPool::new(cfg());
    let t0 = valid(tx1559(&a, 0, 10, 1));
    let t1 = valid(tx1559(&a, 1, 10, 1));
    let t3 = valid(tx1559(&a, 3, 10, 1));
    for t in [&t0, &t1, &t3] {
        pool.add(t.clone(), Origin::Remote, &state, 0).expect("add");
    }
    assert_eq!(pool.status().queued, 1);
    // block mined nonces 0..=2 (2 came from elsewhere)
    state.fund(a.address, 3);
    let out = pool.on_new_head(&env(), [a.address], &state);
    assert_eq!(out.promoted, vec![t3.hash]);
    let mut removed = out.removed.clone();
    removed.sort();
    let mut expect = vec![t0.hash, t1.hash];
    expect.sort();
    assert_eq!(removed, expect);
    assert_eq!(pool.status().pending, 1);
    assert_eq!(pool.status().queued, 0);

    // unaffordable after the balance drops: dropped
    state.0.get_mut(&a.address).expect("a").balance = U256::from(1u64);
    let out = pool.on_new_head(&env(), [a.address], &state);
    assert_eq!(out.removed, vec![t3.hash]);
    assert!(pool.is_empty());
}

#[test]
fn lowered_gas_limit_drops() {
    let a = DevAccount::new(0);
    let mut state = State::default();
    state.fund(a.address, 0);
    let mut pool = TxPool::new(cfg());
    let call = valid(a.call(0, Address::ZERO)); // 100,000 gas
    pool.add(call.clone(), Origin::Remote, &state, 0)
        .expect("add");
    pool.on_new_head(&env(), [], &state);
    assert!(pool.contains(&call.hash));
    let low = PoolEnv {
        block_gas_limit: 50_000,
        ..env()
    };
    assert_eq!(pool.on_new_head(&low, [], &state).removed, vec![call.hash]);
}

#[test]
fn global_limit_eviction() {
    let (a, b, c) = (DevAccount::new(0), DevAccount::new(1), DevAccount::new(2));
    let mut state = State::default();
    for acc in [&a, &b, &c] {
        state.fund(acc.address, 0);
    }
    let mut pool = TxPool::new(PoolConfig {
        max_transactions: 4,
        ..cfg()
    });
    // a: pending 0,1 at price 10; b: pending 0 at 100, queued 5
    let a0 = valid(tx1559(&a, 0, 10, 1));
    let a1 = valid(tx1559(&a, 1, 10, 1));
    let b0 = valid(tx1559(&b, 0, 100, 1));
    let b5 = valid(tx1559(&b, 5, 100, 1));
    for t in [&a0, &a1, &b0, &b5] {
        pool.add(t.clone(), Origin::Remote, &state, 0).expect("add");
    }
    // c0 (price 50): the queued b5 goes first
    let c0 = valid(tx1559(&c, 0, 50, 1));
    let out = pool
        .add(c0.clone(), Origin::Remote, &state, 0)
        .expect("add");
    assert_eq!(out.evicted, vec![b5.hash]);
    // c1 (price 50): now a's tail a1 (cheapest pending tail), never a0 (would leave a gap)
    let c1 = valid(tx1559(&c, 1, 50, 1));
    let out = pool
        .add(c1.clone(), Origin::Remote, &state, 0)
        .expect("add");
    assert_eq!(out.evicted, vec![a1.hash]);
    assert!(pool.contains(&a0.hash));
    // a newcomer cheaper than everything: rejected
    let err = pool
        .add(valid(tx1559(&a, 1, 1, 1)), Origin::Remote, &state, 0)
        .unwrap_err();
    assert_eq!(err, PoolError::PoolFull);
    assert_eq!(pool.len(), 4);
    assert_eq!(pool.status().queued, 0);
}

#[test]
fn per_sender_queue_limit() {
    let a = DevAccount::new(0);
    let mut state = State::default();
    state.fund(a.address, 0);
    let mut pool = TxPool::new(PoolConfig {
        max_queued_per_sender: 2,
        ..cfg()
    });
    pool.add(valid(tx1559(&a, 2, 10, 1)), Origin::Remote, &state, 0)
        .expect("add");
    pool.add(valid(tx1559(&a, 3, 10, 1)), Origin::Remote, &state, 0)
        .expect("add");
    let err = pool
        .add(valid(tx1559(&a, 5, 10, 1)), Origin::Remote, &state, 0)
        .unwrap_err();
    assert!(matches!(err, PoolError::SenderQueueFull { max: 2 }));
    // pending ones are not limited
    pool.add(valid(tx1559(&a, 0, 10, 1)), Origin::Remote, &state, 0)
        .expect("add");
    pool.add(valid(tx1559(&a, 1, 10, 1)), Origin::Remote, &state, 0)
        .expect("add");
    assert_eq!(pool.status().pending, 4);
}

#[test]
fn busy_sender_not_throttled() {
    let a = DevAccount::new(0);
    let mut state = State::default();
    state.fund(a.address, 0);
    let mut pool = TxPool::new(PoolConfig {
        max_nonce_distance: 10_000,
        ..cfg()
    });
    for n in 0..5_000 {
        let out = pool
            .add(valid(tx1559(&a, n, 10, 1)), Origin::Local, &state, 0)
            .expect("add");
        assert_eq!(out.status, TxStatus::Pending);
    }
    assert_eq!(pool.status().pending, 5_000);
    assert_eq!(pool.pending_nonce(a.address, 0), 5_000);
    let nonces: Vec<u64> = pool.best_transactions(Some(0)).map(|t| t.nonce()).collect();
    assert_eq!(nonces, (0..5_000).collect::<Vec<_>>());
}

#[test]
fn memory_store_and_next_block_env() {
    let genesis = healthchain_fixtures::genesis(2);
    let store = MemoryStore::default();
    store
        .commit_block(healthchain_evm::genesis_batch(&genesis).expect("genesis"))
        .expect("commit");
    let chain = healthchain_fixtures::config();
    let env = PoolEnv::next_block(&store, &chain).expect("env");
    assert_eq!(env.number, 1);
    assert_eq!(env.chain_id, CHAIN_ID);
    assert_eq!(env.block_gas_limit, genesis.gas_limit);
    let a = DevAccount::new(0);
    let tx = a.transfer(0, Address::ZERO, U256::from(1u64));
    let v = validate_raw(&raw(&tx), &env, &cfg()).expect("valid");
    assert_eq!(v.tx.recover_signer().ok(), Some(a.address));
    let mut pool = TxPool::new(cfg());
    assert_eq!(
        pool.add(Arc::new(v), Origin::Local, &store, 0)
            .expect("add")
            .status,
        TxStatus::Pending
    );
    let _ = store.account(a.address);
}

#[test]
fn a_value_that_would_wrap_the_cost_is_insufficient_funds() {
    // gas * fee + value wrapping past 2^256 must not make the cost look small.
    let a = DevAccount::new(0);
    let mut state = State::default();
    state.fund(a.address, 0);
    let mut pool = TxPool::new(cfg());
    let gas_cost = U256::from(21_000u64) * U256::from(10u64);
    let tx = a.sign(TxEip1559 {
        chain_id: CHAIN_ID,
        nonce: 0,
        gas_limit: 21_000,
        max_fee_per_gas: 10,
        max_priority_fee_per_gas: 1,
        to: TxKind::Call(Address::repeat_byte(0x99)),
        value: U256::MAX - gas_cost + U256::from(1u64),
        ..Default::default()
    });
    let valid = valid(tx);
    assert_eq!(valid.cost, U256::MAX);
    let err = pool.add(valid, Origin::Remote, &state, 0).unwrap_err();
    assert!(
        matches!(err, PoolError::InsufficientFunds { .. }),
        "{err:?}"
    );
    assert_eq!(err.besu_code(), -32004);
    assert!(pool.is_empty());
}
