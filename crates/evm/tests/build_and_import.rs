//! Blocks built by `build_block` are accepted by `execute_block` on another store, and
//! tampered blocks are rejected without changing the chain.

use alloy_primitives::B256;
use healthchain_evm::{BlockError, execute_block, genesis_batch};
use healthchain_fixtures::{Workload, config, generate_chain, genesis};
use healthchain_primitives::Block;
use healthchain_storage_api::{BlockReader, BlockWriter, MemoryStore, StateReader};

fn replay(workload: Workload) {
    let producer = MemoryStore::default();
    let batches = generate_chain(&producer, 8, 5, 20, workload);
    let follower = MemoryStore::default();
    follower
        .commit_block(genesis_batch(&genesis(8)).unwrap())
        .unwrap();
    for batch in &batches {
        let block = Block {
            header: batch.header.clone(),
            body: batch.body.clone(),
        };
        let imported = execute_block(&config(), &follower, block).unwrap();
        let n = batch.header.number;
        assert_eq!(imported, *batch, "block {n}");
        follower.commit_block(imported).unwrap();
    }
    assert_eq!(follower.head().unwrap(), producer.head().unwrap());
}

#[test]
fn built_transfer_blocks_import_identically() {
    replay(Workload::Transfers);
}

#[test]
fn built_record_blocks_import_identically() {
    replay(Workload::Records);
    let producer = MemoryStore::default();
    let batches = generate_chain(&producer, 2, 1, 3, Workload::Records);
    let receipts = &batches[0].receipts;
    assert_eq!(receipts.len(), 3);
    assert!(receipts.iter().all(|r| r.status() && r.logs().len() == 1));
    // Four slots per record.
    let written = batches[0]
        .state
        .storage
        .iter()
        .map(|c| c.slots.len())
        .sum::<usize>();
    assert_eq!(written, 12);
    let value = producer.storage(
        healthchain_fixtures::RECORD_CONTRACT,
        B256::from(alloy_primitives::U256::from(0)),
    );
    assert!(!value.unwrap().is_zero());
}

#[test]
fn tampered_blocks_are_rejected_and_change_nothing() {
    let producer = MemoryStore::default();
    let batches = generate_chain(&producer, 4, 1, 4, Workload::Records);
    let good = Block {
        header: batches[0].header.clone(),
        body: batches[0].body.clone(),
    };
    let store = MemoryStore::default();
    store
        .commit_block(genesis_batch(&genesis(4)).unwrap())
        .unwrap();
    let head = store.head().unwrap();

    let mut wrong_root = good.clone();
    wrong_root.header.state_root = B256::repeat_byte(1);
    assert!(matches!(
        execute_block(&config(), &store, wrong_root),
        Err(BlockError::Mismatch {
            field: "stateRoot",
            ..
        })
    ));

    let mut wrong_gas = good.clone();
    wrong_gas.header.gas_used += 1;
    assert!(execute_block(&config(), &store, wrong_gas).is_err());

    let mut dropped_tx = good.clone();
    dropped_tx.body.transactions.pop();
    assert!(matches!(
        execute_block(&config(), &store, dropped_tx),
        Err(BlockError::Mismatch {
            field: "transactionsRoot",
            ..
        })
    ));

    let mut orphan = good.clone();
    orphan.header.parent_hash = B256::repeat_byte(9);
    assert!(matches!(
        execute_block(&config(), &store, orphan),
        Err(BlockError::UnknownParent { .. })
    ));

    assert_eq!(
        store.head().unwrap(),
        head,
        "a rejected block changed the chain"
    );
    assert!(execute_block(&config(), &store, good).is_ok());
}

#[test]
fn a_reverted_transaction_is_a_status_zero_receipt() {
    use healthchain_evm::build_block;
    use healthchain_fixtures::{DevAccount, REVERT_CONTRACT};
    let store = MemoryStore::default();
    store
        .commit_block(genesis_batch(&genesis(2)).unwrap())
        .unwrap();
    let alice = DevAccount::new(0);
    let txs = vec![
        alice.call(0, REVERT_CONTRACT),
        alice.transfer(1, REVERT_CONTRACT, alloy_primitives::U256::from(1)),
    ];
    let template = healthchain_fixtures::template(1);
    let batch = build_block(&config(), &store, template, txs, vec![alice.address; 2]).unwrap();
    assert_eq!(batch.receipts.len(), 2);
    assert!(
        !batch.receipts[0].status(),
        "the reverting call must have status 0"
    );
    assert!(
        !batch.receipts[1].status(),
        "a value transfer into a reverting contract reverts too"
    );
    assert!(batch.header.gas_used > 42_000);
    // The sender still paid and its nonce advanced: the block is valid and imports.
    let follower = MemoryStore::default();
    follower
        .commit_block(genesis_batch(&genesis(2)).unwrap())
        .unwrap();
    let block = Block {
        header: batch.header.clone(),
        body: batch.body.clone(),
    };
    let imported = execute_block(&config(), &follower, block).unwrap();
    follower.commit_block(imported).unwrap();
    assert_eq!(follower.account(alice.address).unwrap().unwrap().nonce, 2);
}

/// Candidates in a fixed order that remember what the builder told them.
struct ListSource {
    candidates: std::collections::VecDeque<(
        healthchain_primitives::Transaction,
        alloy_primitives::Address,
    )>,
    skipped: Vec<(alloy_primitives::Address, B256, Option<String>)>,
}

impl healthchain_evm::TransactionSource for ListSource {
    fn next_transaction(
        &mut self,
    ) -> Option<(
        healthchain_primitives::Transaction,
        alloy_primitives::Address,
    )> {
        loop {
            let (tx, sender) = self.candidates.pop_front()?;
            // Like the pool: once a sender is skipped, its later nonces are not offered.
            if !self.skipped.iter().any(|(s, _, _)| *s == sender) {
                return Some((tx, sender));
            }
        }
    }

    fn skip_sender(
        &mut self,
        sender: alloy_primitives::Address,
        hash: B256,
        invalid: Option<String>,
    ) {
        self.skipped.push((sender, hash, invalid));
    }
}

#[test]
fn building_from_a_source_leaves_out_invalid_and_oversized_transactions() {
    use alloy_primitives::{Address, U256};
    use healthchain_evm::build_block_from;
    use healthchain_fixtures::DevAccount;
    let store = MemoryStore::default();
    store
        .commit_block(genesis_batch(&genesis(4)).unwrap())
        .unwrap();
    let (alice, bob, carol) = (DevAccount::new(0), DevAccount::new(1), DevAccount::new(2));
    let to = Address::repeat_byte(7);
    let bad_nonce = bob.transfer(5, to, U256::from(1));
    let bob_next = bob.transfer(6, to, U256::from(1));
    let mut too_big = alloy_consensus::TxEip1559 {
        chain_id: healthchain_fixtures::CHAIN_ID,
        nonce: 0,
        // Fits the block alone, but not after alice's first transfer.
        gas_limit: genesis(4).gas_limit - 10_000,
        max_fee_per_gas: 1_000_000_000,
        to: alloy_primitives::TxKind::Call(to),
        ..Default::default()
    };
    too_big.value = U256::from(1);
    let carol_big = carol.sign(too_big);
    let candidates = vec![
        (alice.transfer(0, to, U256::from(1)), alice.address),
        (bad_nonce.clone(), bob.address),
        (bob_next, bob.address),
        (carol_big.clone(), carol.address),
        (alice.transfer(1, to, U256::from(1)), alice.address),
    ];
    let mut source = ListSource {
        candidates: candidates.into(),
        skipped: Vec::new(),
    };
    let template = healthchain_fixtures::template(1);
    let batch = build_block_from(&config(), &store, template, &mut source).unwrap();
    let hashes: Vec<B256> = batch
        .body
        .transactions
        .iter()
        .map(|t| *t.tx_hash())
        .collect();
    assert_eq!(
        hashes.len(),
        2,
        "only alice's two transfers fit and are valid"
    );
    assert_eq!(batch.senders, vec![alice.address; 2]);
    // Bob's nonce 5 is invalid (his account nonce is 0) and his nonce 6 was never offered;
    // Carol's transaction is valid but did not fit, so it is skipped, not invalid.
    assert_eq!(source.skipped.len(), 2, "{:?}", source.skipped);
    assert_eq!(source.skipped[0].1, *bad_nonce.tx_hash());
    assert!(source.skipped[0].2.is_some());
    assert_eq!(source.skipped[1].1, *carol_big.tx_hash());
    assert!(source.skipped[1].2.is_none());
    // The block is valid for any other node.
    let follower = MemoryStore::default();
    follower
        .commit_block(genesis_batch(&genesis(4)).unwrap())
        .unwrap();
    let block = Block {
        header: batch.header.clone(),
        body: batch.body.clone(),
    };
    assert_eq!(execute_block(&config(), &follower, block).unwrap(), batch);
}

#[test]
fn known_senders_are_reused_and_the_rest_recovered_in_parallel() {
    use healthchain_evm::{recover_senders, recover_senders_with};
    // 100 transactions: above the parallel threshold.
    let producer = MemoryStore::default();
    let batches = generate_chain(&producer, 16, 1, 100, Workload::Transfers);
    let block = Block {
        header: batches[0].header.clone(),
        body: batches[0].body.clone(),
    };
    let serial = recover_senders(&config(), block.clone()).unwrap();
    assert_eq!(serial.senders.len(), 100);
    // Every other sender "known" (as if from the pool), the others recovered.
    let known = |hashes: &[B256]| {
        hashes
            .iter()
            .enumerate()
            .map(|(i, _)| (i % 2 == 0).then(|| serial.senders[i]))
            .collect()
    };
    let mixed = recover_senders_with(&config(), block.clone(), known).unwrap();
    assert_eq!(mixed.senders, serial.senders);
    assert_eq!(mixed.hash, serial.hash);
    // A known sender is trusted as given: that is why only the pool's own recoveries may
    // be passed in (a wrong one shows up here, not silently elsewhere).
    let stranger = alloy_primitives::Address::repeat_byte(7);
    let lying = recover_senders_with(&config(), block.clone(), |h: &[B256]| {
        let mut v = vec![None; h.len()];
        v[3] = Some(stranger);
        v
    })
    .unwrap();
    assert_eq!(lying.senders[3], stranger);
    assert_eq!(lying.senders[4], serial.senders[4]);
    // A bad signature (r = 0) among the recovered ones is still refused, with its index.
    let mut bad = block;
    let tx = bad.body.transactions[51].clone();
    let alloy_consensus::TxEnvelope::Eip1559(signed) = tx else {
        panic!("fixture transfers are EIP-1559")
    };
    let (inner, _, _) = signed.into_parts();
    let broken = alloy_primitives::Signature::new(
        alloy_primitives::U256::ZERO,
        alloy_primitives::U256::from(1),
        false,
    );
    bad.body.transactions[51] =
        alloy_consensus::TxEnvelope::Eip1559(alloy_consensus::Signed::new_unhashed(inner, broken));
    let Err(err) = recover_senders_with(&config(), bad, |_: &[B256]| Vec::new()) else {
        panic!("a block with an unrecoverable signature was accepted");
    };
    assert!(
        matches!(err, BlockError::InvalidSignature { index: 51, .. }),
        "{err:?}"
    );
}
