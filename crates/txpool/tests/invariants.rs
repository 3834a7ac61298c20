//! Random add / head / remove sequences keep the pool's invariants.

mod common;

use std::{
    collections::HashMap,
    sync::{Arc, OnceLock},
};

use alloy_consensus::TxEip1559;
use alloy_primitives::{Address, TxKind};
use common::{State, env};
use healthchain_fixtures::{CHAIN_ID, DevAccount};
use healthchain_txpool::{Origin, PoolConfig, TxPool, ValidTransaction, validate_transaction};
use proptest::prelude::*;

const SENDERS: usize = 3;
const NONCES: u64 = 8;
const PRICES: u128 = 3;

type Table = (
    Vec<Address>,
    HashMap<(usize, u64, u128), Arc<ValidTransaction>>,
);

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut txs = HashMap::new();
        let mut addrs = Vec::new();
        for s in 0..SENDERS {
            let acc = DevAccount::new(s as u64);
            addrs.push(acc.address);
            for n in 0..NONCES {
                for p in 0..PRICES {
                    let price = 10 * 2u128.pow(p as u32);
                    let tx = acc.sign(TxEip1559 {
                        chain_id: CHAIN_ID,
                        nonce: n,
                        gas_limit: 21_000,
                        max_fee_per_gas: price,
                        max_priority_fee_per_gas: price,
                        to: TxKind::Call(Address::ZERO),
                        ..Default::default()
                    });
                    let cfg = PoolConfig {
                        min_gas_price: 0,
                        ..PoolConfig::default()
                    };
                    let v = validate_transaction(tx, &env(), &cfg).expect("valid");
                    txs.insert((s, n, p), Arc::new(v));
                }
            }
        }
        (addrs, txs)
    })
}

#[derive(Debug, Clone)]
enum Op {
    Add(usize, u64, u128),
    Mine(usize, u64),
    Remove(usize, u64, u128),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..SENDERS, 0..NONCES, 0..PRICES).prop_map(|(s, n, p)| Op::Add(s, n, p)),
        1 => (0..SENDERS, 0..3u64).prop_map(|(s, k)| Op::Mine(s, k)),
        1 => (0..SENDERS, 0..NONCES, 0..PRICES).prop_map(|(s, n, p)| Op::Remove(s, n, p)),
    ]
}

fn check(pool: &TxPool, state: &State, addrs: &[Address]) -> Result<(), TestCaseError> {
    let status = pool.status();
    prop_assert_eq!(status.pending + status.queued, pool.len());
    prop_assert!(pool.len() <= pool.config().max_transactions);
    let content = pool.content();
    let pending: usize = content.pending.values().map(|m| m.len()).sum();
    prop_assert_eq!(pending, status.pending);
    for (addr, run) in &content.pending {
        let state_nonce = state.0.get(addr).map_or(0, |a| a.nonce);
        let nonces: Vec<u64> = run.keys().copied().collect();
        let expect: Vec<u64> = (state_nonce..state_nonce + nonces.len() as u64).collect();
        prop_assert_eq!(&nonces, &expect, "pending run has a gap");
        prop_assert_eq!(
            pool.pending_nonce(*addr, state_nonce),
            state_nonce + nonces.len() as u64
        );
    }
    for (addr, q) in &content.queued {
        // The per-sender queued limit applies at admission only: removing or dropping a
        // pending transaction may demote more than that many.
        let state_nonce = state.0.get(addr).map_or(0, |a| a.nonce);
        let end = pool.pending_nonce(*addr, state_nonce);
        prop_assert!(q.keys().all(|n| *n > end));
    }
    let mut last: HashMap<Address, u64> = HashMap::new();
    let mut yielded = 0;
    for tx in pool.best_transactions(Some(0)) {
        let expected = last
            .get(&tx.sender)
            .map_or_else(|| state.0.get(&tx.sender).map_or(0, |a| a.nonce), |n| n + 1);
        prop_assert_eq!(tx.nonce(), expected);
        last.insert(tx.sender, tx.nonce());
        yielded += 1;
    }
    prop_assert_eq!(yielded, status.pending);
    let _ = addrs;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn random_sequences_keep_invariants(ops in proptest::collection::vec(op(), 1..60)) {
        let (addrs, txs) = table();
        let mut state = State::default();
        for a in addrs {
            state.fund(*a, 0);
        }
        let mut pool = TxPool::new(PoolConfig {
            max_transactions: 10,
            max_queued_per_sender: 3,
            min_gas_price: 0,
            ..PoolConfig::default()
        });
        for (i, op) in ops.into_iter().enumerate() {
            match op {
                Op::Add(s, n, p) => {
                    let _ = pool.add(txs[&(s, n, p)].clone(), Origin::Remote, &state, i as u64);
                }
                Op::Mine(s, k) => {
                    if let Some(acc) = state.0.get_mut(&addrs[s]) {
                        acc.nonce = (acc.nonce + k).min(NONCES);
                    }
                    let out = pool.on_new_head(&env(), [addrs[s]], &state);
                    for h in &out.promoted {
                        prop_assert!(pool.contains(h));
                    }
                }
                Op::Remove(s, n, p) => {
                    pool.remove(&[txs[&(s, n, p)].hash]);
                }
            }
            check(&pool, &state, addrs)?;
        }
    }
}
