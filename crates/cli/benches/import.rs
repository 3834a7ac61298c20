//! Baseline import benchmark: blocks of record writes (4 new storage slots and one log per
//! transaction) and of plain transfers, executed and committed to MDBX. Reports µs per
//! transaction split into sender recovery, execution, trie and commit.
//!
//! Run: `cargo bench -p healthchain-cli --bench import` (env: `BLOCKS`, `TXS`).

use alloy_consensus::transaction::SignerRecoverable;
use healthchain_evm::{
    BlockRules, apply_state_changes, execute_transactions, genesis_batch, recover_senders,
    validate_header,
};
use healthchain_fixtures::{Workload, config, generate_chain, genesis};
use healthchain_primitives::Block;
use healthchain_storage_api::{BlockBatch, BlockReader, BlockWriter, MemoryStore};
use healthchain_storage_mdbx::{DatabaseConfig, Durability, MdbxStore};
use std::time::{Duration, Instant};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Default)]
struct Phases {
    recover: Duration,
    execute: Duration,
    trie: Duration,
    commit: Duration,
    txs: u64,
}

fn run(workload: Workload, durability: Durability, blocks: u64, txs: u64) -> Phases {
    let senders = 256;
    let producer = MemoryStore::default();
    let batches = generate_chain(&producer, senders, blocks, txs, workload);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = MdbxStore::open(dir.path(), DatabaseConfig { durability }).expect("open mdbx");
    store
        .commit_block(genesis_batch(&genesis(senders)).expect("genesis"))
        .expect("commit genesis");
    let cfg = config();
    let mut phases = Phases::default();
    for batch in &batches {
        let block = Block {
            header: batch.header.clone(),
            body: batch.body.clone(),
        };
        let t0 = Instant::now();
        let recovered = recover_senders(&cfg, block).expect("senders");
        let t1 = Instant::now();
        let (_, head) = store.head().expect("head").expect("genesis");
        let parent = store.header(head).expect("read").expect("parent");
        validate_header(&cfg, &parent, &recovered.block.header).expect("header");
        let header = &recovered.block.header;
        let credits = BlockRules::new(&cfg, header.number, header.timestamp).end_of_block_credits(
            header,
            &recovered.block.body.ommers,
            &[],
        );
        let output = execute_transactions(
            &cfg,
            &store,
            &recovered.block.header,
            &recovered.block.body.transactions,
            &recovered.senders,
            &credits,
        )
        .expect("execute");
        let t2 = Instant::now();
        let (root, state) =
            apply_state_changes(&store, parent.state_root, output.changes).expect("trie");
        assert_eq!(root, batch.header.state_root, "state root");
        let t3 = Instant::now();
        let out = BlockBatch {
            header: recovered.block.header,
            hash: recovered.hash,
            body: recovered.block.body,
            senders: recovered.senders,
            receipts: output.receipts,
            state,
        };
        store.commit_block(out).expect("commit");
        let t4 = Instant::now();
        phases.recover += t1 - t0;
        phases.execute += t2 - t1;
        phases.trie += t3 - t2;
        phases.commit += t4 - t3;
        phases.txs += txs;
    }
    phases
}

fn per_tx(d: Duration, txs: u64) -> f64 {
    d.as_secs_f64() * 1e6 / txs as f64
}

fn recovery_comparison(txs: u64) {
    let producer = MemoryStore::default();
    let batches = generate_chain(&producer, 64, 1, txs, Workload::Transfers);
    let transactions = &batches[0].body.transactions;
    let t = Instant::now();
    for tx in transactions {
        tx.recover_signer().expect("recover");
    }
    let secp = per_tx(t.elapsed(), txs);
    let t = Instant::now();
    for tx in transactions {
        let alloy_consensus::TxEnvelope::Eip1559(signed) = tx else {
            continue;
        };
        let hash = alloy_consensus::SignableTransaction::signature_hash(signed.tx());
        let sig = signed.signature();
        let signature = k256::ecdsa::Signature::from_scalars(
            sig.r().to_be_bytes::<32>(),
            sig.s().to_be_bytes::<32>(),
        )
        .expect("signature");
        let recid = k256::ecdsa::RecoveryId::new(sig.v(), false);
        k256::ecdsa::VerifyingKey::recover_from_prehash(hash.as_slice(), &signature, recid)
            .expect("k256 recover");
    }
    let k256 = per_tx(t.elapsed(), txs);
    println!("| sender recovery (µs/tx) | libsecp256k1 {secp:.1} | k256 {k256:.1} |");
}

fn main() {
    // `cargo test --benches` runs bench targets with --bench absent; keep that cheap.
    let quick = !std::env::args().any(|a| a == "--bench");
    let (blocks, txs) = if quick {
        (2, 10)
    } else {
        (env("BLOCKS", 20), env("TXS", 500))
    };
    println!("## import baseline: {blocks} blocks x {txs} txs, 256 senders");
    println!("| workload | durability | recover | execute | trie | commit | total µs/tx | tx/s |");
    println!("|---|---|---|---|---|---|---|---|");
    for workload in [Workload::Records, Workload::Transfers] {
        for durability in [Durability::Durable, Durability::SafeNoSync] {
            let p = run(workload, durability, blocks, txs);
            let total = p.recover + p.execute + p.trie + p.commit;
            println!(
                "| {workload:?} | {durability:?} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} |",
                per_tx(p.recover, p.txs),
                per_tx(p.execute, p.txs),
                per_tx(p.trie, p.txs),
                per_tx(p.commit, p.txs),
                per_tx(total, p.txs),
                p.txs as f64 / total.as_secs_f64(),
            );
        }
    }
    recovery_comparison(if quick { 10 } else { 2000 });
}
