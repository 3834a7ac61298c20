//! The MDBX store against the in-memory reference on chains the real executor built (see
//! `batches.rs` for hand-built batches, rejected batches and corrupt bytes).

use alloy_primitives::{Address, B256, U256};
use healthchain_evm::genesis_batch;
use healthchain_fixtures::{RECORD_CONTRACT, Workload, generate_chain, genesis};
use healthchain_storage_api::{
    BlockBatch, BlockReader, BlockWriter, MemoryStore, StateReader, StorageChange, StorageError,
};
use healthchain_storage_mdbx::{DatabaseConfig, Durability, MdbxStore, tables};

fn chain(blocks: u64) -> Vec<BlockBatch> {
    generate_chain(&MemoryStore::default(), 8, blocks, 6, Workload::Records)
}

fn assert_same_reads(a: &impl ChainReads, b: &impl ChainReads, batches: &[BlockBatch]) {
    assert_eq!(a.head().unwrap(), b.head().unwrap());
    for batch in batches {
        let h = batch.hash;
        assert_eq!(a.canonical_hash(batch.header.number).unwrap(), Some(h));
        assert_eq!(b.canonical_hash(batch.header.number).unwrap(), Some(h));
        assert_eq!(a.header(h).unwrap(), b.header(h).unwrap());
        assert_eq!(b.header(h).unwrap().as_ref(), Some(&batch.header));
        assert_eq!(b.body(h).unwrap().as_ref(), Some(&batch.body));
        assert_eq!(b.senders(h).unwrap().as_ref(), Some(&batch.senders));
        assert_eq!(b.receipts(h).unwrap().as_ref(), Some(&batch.receipts));
        for tx in &batch.body.transactions {
            assert_eq!(
                a.transaction_location(*tx.tx_hash()).unwrap(),
                b.transaction_location(*tx.tx_hash()).unwrap()
            );
        }
        for (address, _) in &batch.state.accounts {
            assert_eq!(a.account(*address).unwrap(), b.account(*address).unwrap());
        }
        for change in &batch.state.storage {
            for (slot, _) in &change.slots {
                assert_eq!(
                    a.storage(change.address, *slot).unwrap(),
                    b.storage(change.address, *slot).unwrap()
                );
            }
        }
        for (hash, node) in &batch.state.trie_nodes {
            assert_eq!(b.trie_node(*hash).unwrap().as_ref(), Some(node));
        }
    }
}

trait ChainReads: StateReader + BlockReader {}
impl<T: StateReader + BlockReader> ChainReads for T {}

#[test]
fn mdbx_reads_match_the_memory_store_and_survive_reopen() {
    let batches = chain(6);
    let dir = tempfile::tempdir().unwrap();
    let memory = MemoryStore::default();
    {
        let mdbx = MdbxStore::open(dir.path(), DatabaseConfig::default()).unwrap();
        for store in [&memory as &dyn BlockWriter, &mdbx as &dyn BlockWriter] {
            store
                .commit_block(genesis_batch(&genesis(8)).unwrap())
                .unwrap();
            for batch in &batches {
                store.commit_block(batch.clone()).unwrap();
            }
        }
        assert_same_reads(&memory, &mdbx, &batches);
    }
    let reopened = MdbxStore::open(
        dir.path(),
        DatabaseConfig {
            durability: Durability::SafeNoSync,
        },
    )
    .unwrap();
    assert_same_reads(&memory, &reopened, &batches);
    let stats = reopened.stats().unwrap();
    assert_eq!(stats.len(), tables::ALL.len());
    let headers = stats.iter().find(|t| t.name == "Headers").unwrap();
    assert_eq!(headers.entries, 7);
}

#[test]
fn storage_wipe_and_account_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let mdbx = MdbxStore::open(dir.path(), DatabaseConfig::default()).unwrap();
    let memory = MemoryStore::default();
    let batches = chain(2);
    let other = Address::repeat_byte(0x77);
    for store in [&memory as &dyn BlockWriter, &mdbx as &dyn BlockWriter] {
        store
            .commit_block(genesis_batch(&genesis(8)).unwrap())
            .unwrap();
        store.commit_block(batches[0].clone()).unwrap();
    }
    // An unrelated account whose slots sort right after the contract's must survive.
    let slot = B256::with_last_byte(1);
    let mut next = batches[1].clone();
    next.state.storage.push(StorageChange {
        address: other,
        wiped: false,
        slots: vec![(slot, U256::from(5))],
    });
    next.state.storage.push(StorageChange {
        address: RECORD_CONTRACT,
        wiped: true,
        slots: vec![],
    });
    next.state.accounts.push((RECORD_CONTRACT, None));
    for store in [&memory as &dyn BlockWriter, &mdbx as &dyn BlockWriter] {
        store.commit_block(next.clone()).unwrap();
    }
    let first_record_slot = batches[0].state.storage[0].slots[0].0;
    for store in [&memory as &dyn ChainReads, &mdbx as &dyn ChainReads] {
        assert_eq!(
            store.storage(RECORD_CONTRACT, first_record_slot).unwrap(),
            U256::ZERO
        );
        assert_eq!(store.account(RECORD_CONTRACT).unwrap(), None);
        assert_eq!(store.storage(other, slot).unwrap(), U256::from(5));
    }
}

#[test]
fn a_batch_that_does_not_extend_the_head_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mdbx = MdbxStore::open(dir.path(), DatabaseConfig::default()).unwrap();
    let batches = chain(2);
    mdbx.commit_block(genesis_batch(&genesis(8)).unwrap())
        .unwrap();
    let before = mdbx.head().unwrap();
    let err = mdbx.commit_block(batches[1].clone()).unwrap_err();
    assert!(
        matches!(err, StorageError::NotChild { number: 2, .. }),
        "{err}"
    );
    assert_eq!(mdbx.head().unwrap(), before);
    assert_eq!(mdbx.header(batches[1].hash).unwrap(), None);
    for tx in &batches[1].body.transactions {
        assert_eq!(mdbx.transaction_location(*tx.tx_hash()).unwrap(), None);
    }
}

#[test]
fn every_past_state_is_readable_through_the_archived_trie() {
    use healthchain_storage_api::StateAtRoot;
    let batches = chain(5);
    let dir = tempfile::tempdir().unwrap();
    let mdbx = MdbxStore::open(dir.path(), DatabaseConfig::default()).unwrap();
    mdbx.commit_block(genesis_batch(&genesis(8)).unwrap())
        .unwrap();
    // After each block, remember what the flat (latest) state says about everything
    // touched so far; at the end, the trie at that block's root must say the same.
    let mut touched: Vec<(Address, Vec<B256>)> = Vec::new();
    let mut snapshots = Vec::new();
    for batch in &batches {
        mdbx.commit_block(batch.clone()).unwrap();
        for (address, _) in &batch.state.accounts {
            if !touched.iter().any(|(a, _)| a == address) {
                touched.push((*address, Vec::new()));
            }
        }
        for change in &batch.state.storage {
            let entry = touched
                .iter_mut()
                .find(|(a, _)| *a == change.address)
                .unwrap();
            entry.1.extend(change.slots.iter().map(|(slot, _)| *slot));
        }
        let snapshot: Vec<_> = touched
            .iter()
            .map(|(address, slots)| {
                let values: Vec<_> = slots
                    .iter()
                    .map(|s| mdbx.storage(*address, *s).unwrap())
                    .collect();
                (*address, mdbx.account(*address).unwrap(), values)
            })
            .collect();
        snapshots.push((batch.header.state_root, snapshot));
    }
    for (root, snapshot) in &snapshots {
        let past = StateAtRoot::new(&mdbx, *root);
        for (address, account, values) in snapshot {
            assert_eq!(
                past.account(*address).unwrap(),
                *account,
                "{address} at {root}"
            );
            let slots = &touched.iter().find(|(a, _)| a == address).unwrap().1;
            for (slot, value) in slots.iter().zip(values) {
                assert_eq!(
                    past.storage(*address, *slot).unwrap(),
                    *value,
                    "{address} slot {slot} at {root}"
                );
            }
        }
    }
    // Record slots written in the last block did not exist in the first block's state.
    let last_slot = batches[4].state.storage[0].slots[0].0;
    let first = StateAtRoot::new(&mdbx, batches[0].header.state_root);
    assert_eq!(
        first.storage(RECORD_CONTRACT, last_slot).unwrap(),
        U256::ZERO
    );
    assert!(!mdbx.storage(RECORD_CONTRACT, last_slot).unwrap().is_zero());
}

#[test]
fn consensus_votes_append_in_order_survive_reopen_and_prune() {
    use healthchain_storage_api::VoteStore;
    let dir = tempfile::tempdir().unwrap();
    for durability in [Durability::Durable, Durability::SafeNoSync] {
        let memory = MemoryStore::default();
        let path = dir.path().join(format!("{durability:?}"));
        {
            let store = MdbxStore::open(&path, DatabaseConfig { durability }).unwrap();
            for (height, record) in [
                (7u64, &b"a"[..]),
                (8, b"b"),
                (7, b"c"),
                (300, b"d"),
                (7, b"e"),
            ] {
                store.append_vote(height, record).unwrap();
                memory.append_vote(height, record).unwrap();
            }
            assert_eq!(
                store.votes(7).unwrap(),
                [b"a".to_vec(), b"c".to_vec(), b"e".to_vec()]
            );
            assert_eq!(store.votes(6).unwrap(), Vec::<Vec<u8>>::new());
        }
        // Reopened: all there, in order.
        let store = MdbxStore::open(&path, DatabaseConfig { durability }).unwrap();
        assert_eq!(store.votes(7).unwrap(), memory.votes(7).unwrap());
        assert_eq!(store.votes(8).unwrap(), [b"b".to_vec()]);
        assert_eq!(store.votes(300).unwrap(), [b"d".to_vec()]);
        store.prune_votes(8).unwrap();
        memory.prune_votes(8).unwrap();
        assert!(store.votes(7).unwrap().is_empty());
        assert_eq!(store.votes(8).unwrap(), [b"b".to_vec()]);
        assert_eq!(store.votes(300).unwrap(), memory.votes(300).unwrap());
        // Appending after a prune continues the height's sequence.
        store.append_vote(8, b"f").unwrap();
        assert_eq!(store.votes(8).unwrap(), [b"b".to_vec(), b"f".to_vec()]);
    }
}
