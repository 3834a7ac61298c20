//! Hand-built block batches (legacy, EIP-2930 and EIP-1559 transactions signed with a fixed
//! key, receipts with logs, withdrawals, accounts, storage, wipes, code, trie nodes) through
//! the MDBX store and the in-memory reference store.

use std::collections::BTreeSet;

use alloy_consensus::transaction::SignerRecoverable;
use alloy_consensus::{
    Receipt as PlainReceipt, ReceiptEnvelope, SignableTransaction, TxEip1559, TxEip2930,
    TxEnvelope, TxLegacy,
};
use alloy_eips::eip4895::{Withdrawal, Withdrawals};
use alloy_primitives::{Address, B256, Bytes, Log, Signature, TxKind, U256, keccak256};
use healthchain_primitives::{Account, BlockBody, Header};
use healthchain_storage_api::{
    BlockBatch, BlockReader, BlockWriter, MemoryStore, StateChanges, StateReader, StorageChange,
    StorageError,
};
use healthchain_storage_mdbx::tables::{self, MetaKey, StorageKey};
use healthchain_storage_mdbx::{DatabaseConfig, Durability, MdbxStore};
use k256::ecdsa::SigningKey;

const CHAIN_ID: u64 = 1337;

fn key() -> SigningKey {
    SigningKey::from_slice(&[0x11; 32]).unwrap()
}

fn sign<T: SignableTransaction<Signature>>(tx: T) -> TxEnvelope
where
    TxEnvelope: From<alloy_consensus::Signed<T>>,
{
    let hash = tx.signature_hash();
    let (sig, recid) = key().sign_prehash_recoverable(hash.as_slice()).unwrap();
    let signature = Signature::new(
        U256::from_be_slice(&sig.r().to_bytes()),
        U256::from_be_slice(&sig.s().to_bytes()),
        recid.is_y_odd(),
    );
    tx.into_signed(signature).into()
}

fn legacy(nonce: u64) -> TxEnvelope {
    sign(TxLegacy {
        chain_id: Some(CHAIN_ID),
        nonce,
        gas_price: 1_000_000_000,
        gas_limit: 21_000,
        to: TxKind::Call(Address::repeat_byte(0xaa)),
        value: U256::from(12345),
        input: Bytes::new(),
    })
}

fn eip2930(nonce: u64) -> TxEnvelope {
    sign(TxEip2930 {
        chain_id: CHAIN_ID,
        nonce,
        gas_price: 2_000_000_000,
        gas_limit: 50_000,
        to: TxKind::Call(contract()),
        value: U256::ZERO,
        access_list: Default::default(),
        input: Bytes::from_static(&[1, 2, 3]),
    })
}

fn eip1559(nonce: u64) -> TxEnvelope {
    sign(TxEip1559 {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit: 100_000,
        max_fee_per_gas: 3_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Create,
        value: U256::ZERO,
        access_list: Default::default(),
        input: Bytes::from_static(&[0x60, 0x00, 0x60, 0x00, 0xf3]),
    })
}

fn contract() -> Address {
    Address::repeat_byte(0x42)
}

/// An address whose storage keys sort right after `contract()`'s.
fn neighbour() -> Address {
    let mut bytes = [0x42; 20];
    bytes[19] = 0x43;
    Address::from(bytes)
}

/// An address whose storage keys sort right before `contract()`'s.
fn before_neighbour() -> Address {
    let mut bytes = [0x42; 20];
    bytes[19] = 0x41;
    Address::from(bytes)
}

fn receipt_log(i: u8) -> Log {
    Log::new_unchecked(
        contract(),
        vec![B256::repeat_byte(i), B256::with_last_byte(i)],
        Bytes::from(vec![i; 40]),
    )
}

fn receipts_for(txs: &[TxEnvelope]) -> Vec<ReceiptEnvelope> {
    let mut gas = 0;
    txs.iter()
        .enumerate()
        .map(|(i, tx)| {
            gas += 21_000 + i as u64;
            let receipt = PlainReceipt {
                status: (i % 2 == 0).into(),
                cumulative_gas_used: gas,
                logs: (0..=i as u8).map(receipt_log).collect(),
            }
            .with_bloom();
            match tx {
                TxEnvelope::Legacy(_) => ReceiptEnvelope::Legacy(receipt),
                TxEnvelope::Eip2930(_) => ReceiptEnvelope::Eip2930(receipt),
                _ => ReceiptEnvelope::Eip1559(receipt),
            }
        })
        .collect()
}

fn account(nonce: u64, balance: u64) -> Account {
    Account {
        nonce,
        balance: U256::from(balance),
        ..Default::default()
    }
}

/// A block on top of `parent` (genesis when `None`) with `txs` and `state`.
fn block(parent: Option<&BlockBatch>, txs: Vec<TxEnvelope>, state: StateChanges) -> BlockBatch {
    let (number, parent_hash) = parent.map_or((0, B256::ZERO), |p| (p.header.number + 1, p.hash));
    let header = Header {
        parent_hash,
        number,
        gas_limit: 30_000_000,
        gas_used: 21_000 * txs.len() as u64,
        timestamp: 1_700_000_000 + number * 2,
        base_fee_per_gas: Some(7),
        withdrawals_root: Some(B256::repeat_byte(9)),
        extra_data: Bytes::from(vec![number as u8; 32]),
        ..Default::default()
    };
    let withdrawals = Withdrawals::new(vec![Withdrawal {
        index: number,
        validator_index: 1,
        address: Address::repeat_byte(0x99),
        amount: 10,
    }]);
    let senders = txs.iter().map(|tx| tx.recover_signer().unwrap()).collect();
    let receipts = receipts_for(&txs);
    BlockBatch {
        hash: header.hash_slow(),
        header,
        body: BlockBody {
            transactions: txs,
            ommers: vec![],
            withdrawals: Some(withdrawals),
        },
        senders,
        receipts,
        state,
    }
}

fn node(seed: &str) -> (B256, Vec<u8>) {
    let bytes = alloy_rlp::encode(seed.as_bytes());
    (keccak256(&bytes), bytes)
}

fn slot(i: u64) -> B256 {
    B256::from(U256::from(i))
}

/// Genesis, then blocks that exercise every kind of state change.
fn batches() -> Vec<BlockBatch> {
    let sender = Address::from_private_key(&key());
    let genesis = block(
        None,
        vec![],
        StateChanges {
            accounts: vec![
                (sender, Some(account(0, 1_000_000))),
                (contract(), Some(account(1, 0))),
            ],
            storage: vec![
                StorageChange {
                    address: contract(),
                    wiped: false,
                    slots: (1..=300).map(|i| (slot(i), U256::from(i))).collect(),
                },
                StorageChange {
                    address: neighbour(),
                    wiped: false,
                    slots: vec![(B256::ZERO, U256::from(1)), (slot(5), U256::MAX)],
                },
                StorageChange {
                    address: before_neighbour(),
                    wiped: false,
                    slots: vec![(B256::repeat_byte(0xff), U256::from(2))],
                },
            ],
            bytecodes: vec![(keccak256([0x60, 0x00]), Bytes::from_static(&[0x60, 0x00]))],
            trie_nodes: vec![node("genesis-root"), node("genesis-leaf")],
        },
    );
    let b1 = block(
        Some(&genesis),
        vec![legacy(0), eip2930(1), eip1559(2)],
        StateChanges {
            accounts: vec![
                (sender, Some(account(3, 900_000))),
                (Address::repeat_byte(0xaa), Some(account(0, 12345))),
            ],
            storage: vec![StorageChange {
                address: contract(),
                wiped: false,
                // Overwrite, zero (delete) and create.
                slots: vec![
                    (slot(1), U256::from(100)),
                    (slot(2), U256::ZERO),
                    (slot(1000), U256::from(1) << 255),
                ],
            }],
            bytecodes: vec![(
                keccak256([0x60, 0x00, 0x60, 0x00, 0xf3]),
                Bytes::from_static(&[0x60, 0x00, 0x60, 0x00, 0xf3]),
            )],
            trie_nodes: vec![node("b1-root"), node("b1-branch")],
        },
    );
    let b2 = block(
        Some(&b1),
        vec![eip1559(3), legacy(4)],
        StateChanges {
            accounts: vec![
                (sender, Some(account(5, 800_000))),
                // Self-destruct: the account goes, its storage is wiped.
                (contract(), None),
            ],
            storage: vec![
                StorageChange {
                    address: contract(),
                    wiped: true,
                    slots: vec![],
                },
                StorageChange {
                    address: neighbour(),
                    wiped: false,
                    slots: vec![(slot(6), U256::from(6))],
                },
            ],
            bytecodes: vec![],
            trie_nodes: vec![node("b2-root")],
        },
    );
    let b3 = block(
        Some(&b2),
        vec![],
        StateChanges {
            // Re-created in the same block as a wipe: only the new slots remain.
            accounts: vec![(contract(), Some(account(1, 5)))],
            storage: vec![StorageChange {
                address: neighbour(),
                wiped: true,
                slots: vec![(slot(7), U256::from(7)), (slot(8), U256::ZERO)],
            }],
            bytecodes: vec![],
            trie_nodes: vec![node("b3-root")],
        },
    );
    vec![genesis, b1, b2, b3]
}

/// Every key any batch mentions, plus keys nobody wrote.
struct Universe {
    addresses: BTreeSet<Address>,
    slots: BTreeSet<B256>,
    hashes: BTreeSet<B256>,
    tx_hashes: BTreeSet<B256>,
}

fn universe(batches: &[BlockBatch]) -> Universe {
    let mut u = Universe {
        addresses: [Address::ZERO, neighbour(), before_neighbour()].into(),
        slots: [B256::ZERO, slot(2), slot(999)].into(),
        hashes: [B256::ZERO, B256::repeat_byte(0xee)].into(),
        tx_hashes: [B256::repeat_byte(0xdd)].into(),
    };
    for b in batches {
        u.hashes.insert(b.hash);
        u.tx_hashes
            .extend(b.body.transactions.iter().map(|tx| *tx.tx_hash()));
        u.addresses.extend(b.state.accounts.iter().map(|(a, _)| *a));
        for change in &b.state.storage {
            u.addresses.insert(change.address);
            u.slots.extend(change.slots.iter().map(|(s, _)| *s));
        }
        u.hashes.extend(b.state.bytecodes.iter().map(|(h, _)| *h));
        u.hashes.extend(b.state.trie_nodes.iter().map(|(h, _)| *h));
    }
    u
}

trait Reads: StateReader + BlockReader {}
impl<T: StateReader + BlockReader> Reads for T {}

fn assert_same_reads(expected: &dyn Reads, actual: &dyn Reads, u: &Universe) {
    assert_eq!(expected.head().unwrap(), actual.head().unwrap());
    for number in 0..8 {
        assert_eq!(
            expected.canonical_hash(number).unwrap(),
            actual.canonical_hash(number).unwrap()
        );
    }
    for &h in &u.hashes {
        assert_eq!(expected.header(h).unwrap(), actual.header(h).unwrap());
        assert_eq!(expected.body(h).unwrap(), actual.body(h).unwrap());
        assert_eq!(expected.senders(h).unwrap(), actual.senders(h).unwrap());
        assert_eq!(expected.receipts(h).unwrap(), actual.receipts(h).unwrap());
        assert_eq!(expected.bytecode(h).unwrap(), actual.bytecode(h).unwrap());
        assert_eq!(expected.trie_node(h).unwrap(), actual.trie_node(h).unwrap());
    }
    for &h in &u.tx_hashes {
        assert_eq!(
            expected.transaction_location(h).unwrap(),
            actual.transaction_location(h).unwrap()
        );
    }
    for &a in &u.addresses {
        assert_eq!(expected.account(a).unwrap(), actual.account(a).unwrap());
        for &s in &u.slots {
            assert_eq!(
                expected.storage(a, s).unwrap(),
                actual.storage(a, s).unwrap(),
                "{a} {s}"
            );
        }
    }
}

fn open(dir: &tempfile::TempDir, durability: Durability) -> MdbxStore {
    MdbxStore::open(dir.path(), DatabaseConfig { durability }).unwrap()
}

#[test]
fn every_read_matches_the_memory_store_after_each_block_and_after_reopen() {
    let batches = batches();
    let u = universe(&batches);
    let dir = tempfile::tempdir().unwrap();
    let memory = MemoryStore::default();
    {
        let mdbx = open(&dir, Durability::Durable);
        assert_eq!(mdbx.path(), dir.path());
        assert_same_reads(&memory, &mdbx, &u);
        for batch in &batches {
            memory.commit_block(batch.clone()).unwrap();
            mdbx.commit_block(batch.clone()).unwrap();
            assert_same_reads(&memory, &mdbx, &u);
        }
    }
    let mdbx = open(&dir, Durability::SafeNoSync);
    assert_same_reads(&memory, &mdbx, &u);

    // Spot checks against the batches themselves, not just the reference store.
    let b1 = &batches[1];
    assert_eq!(mdbx.head().unwrap(), Some((3, batches[3].hash)));
    assert_eq!(mdbx.header(b1.hash).unwrap().as_ref(), Some(&b1.header));
    assert_eq!(mdbx.body(b1.hash).unwrap().as_ref(), Some(&b1.body));
    assert_eq!(mdbx.receipts(b1.hash).unwrap().as_ref(), Some(&b1.receipts));
    let sender = Address::from_private_key(&key());
    assert_eq!(mdbx.senders(b1.hash).unwrap(), Some(vec![sender; 3]));
    let tx = &b1.body.transactions[2];
    assert!(matches!(tx, TxEnvelope::Eip1559(_)));
    let location = mdbx.transaction_location(*tx.tx_hash()).unwrap().unwrap();
    assert_eq!(
        (location.block_hash, location.block_number, location.index),
        (b1.hash, 1, 2)
    );
    // The wipe in block 2 took all 300 slots of the contract; its neighbours kept theirs.
    for i in [1, 3, 150, 300, 1000] {
        assert_eq!(mdbx.storage(contract(), slot(i)).unwrap(), U256::ZERO);
    }
    assert_eq!(
        mdbx.storage(before_neighbour(), B256::repeat_byte(0xff))
            .unwrap(),
        U256::from(2)
    );
    assert_eq!(mdbx.storage(neighbour(), slot(7)).unwrap(), U256::from(7));
    assert_eq!(mdbx.storage(neighbour(), slot(5)).unwrap(), U256::ZERO);
    assert_eq!(mdbx.account(contract()).unwrap(), Some(account(1, 5)));
    let (node_hash, node_rlp) = node("genesis-leaf");
    assert_eq!(mdbx.trie_node(node_hash).unwrap(), Some(node_rlp));

    let stats = mdbx.stats().unwrap();
    assert_eq!(
        stats.iter().map(|s| s.name).collect::<Vec<_>>(),
        tables::ALL
    );
    let entries = |name: &str| stats.iter().find(|s| s.name == name).unwrap().entries;
    assert_eq!(entries("Headers"), 4);
    assert_eq!(entries("TxLookup"), 5);
    assert_eq!(entries("TrieNodes"), 6);
    // before_neighbour: 1, neighbour: slot 7 only. Zero values are never stored.
    assert_eq!(entries("Storages"), 2);
    assert_eq!(entries("Meta"), 2);
    assert!(stats.iter().all(|s| (s.entries == 0) == (s.bytes == 0)));
    mdbx.flush().unwrap();
}

#[test]
fn a_batch_that_does_not_extend_the_head_is_rejected_and_changes_nothing() {
    let batches = batches();
    let u = universe(&batches);
    let dir = tempfile::tempdir().unwrap();
    let mdbx = open(&dir, Durability::Durable);
    let memory = MemoryStore::default();

    // A non-genesis block on an empty store.
    let err = mdbx.commit_block(batches[1].clone()).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::NotChild {
                number: 1,
                head: None,
                ..
            }
        ),
        "{err}"
    );
    assert_same_reads(&memory, &mdbx, &u);

    for batch in &batches[..2] {
        mdbx.commit_block(batch.clone()).unwrap();
        memory.commit_block(batch.clone()).unwrap();
    }
    let stats = mdbx.stats().unwrap();
    // Skips a block; replays the head; right number but wrong parent.
    let mut wrong_parent = batches[2].clone();
    wrong_parent.header.parent_hash = B256::repeat_byte(1);
    wrong_parent.hash = wrong_parent.header.hash_slow();
    for bad in [batches[3].clone(), batches[1].clone(), wrong_parent] {
        let number = bad.header.number;
        let err = mdbx.commit_block(bad).unwrap_err();
        assert!(
            matches!(err, StorageError::NotChild { number: n, head: Some((1, _)), .. } if n == number),
            "{err}"
        );
        assert_same_reads(&memory, &mdbx, &u);
        assert_eq!(mdbx.stats().unwrap(), stats);
    }
    // The right block still goes in afterwards.
    mdbx.commit_block(batches[2].clone()).unwrap();
    assert_eq!(mdbx.head().unwrap(), Some((2, batches[2].hash)));
}

#[test]
fn corrupt_values_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let mdbx = open(&dir, Durability::Durable);
    let hash = B256::repeat_byte(3);
    let address = Address::repeat_byte(1);
    let corrupt = |result: Result<(), StorageError>, table: &str| match result {
        Err(StorageError::Corrupt { table: t, reason }) => {
            assert_eq!(t, table, "{reason}");
        }
        other => panic!("expected corrupt {table}, got {other:?}"),
    };

    mdbx.put_raw_for_tests::<tables::Headers>(&hash, b"\xff\x00garbage")
        .unwrap();
    corrupt(mdbx.header(hash).map(drop), "Headers");
    mdbx.put_raw_for_tests::<tables::Bodies>(&hash, &[0xc0, 0x00])
        .unwrap();
    corrupt(mdbx.body(hash).map(drop), "Bodies");
    mdbx.put_raw_for_tests::<tables::Receipts>(&hash, &[0xc2, 0x05, 0x06])
        .unwrap();
    corrupt(mdbx.receipts(hash).map(drop), "Receipts");
    mdbx.put_raw_for_tests::<tables::Senders>(&hash, &[1, 2, 3])
        .unwrap();
    corrupt(mdbx.senders(hash).map(drop), "Senders");
    mdbx.put_raw_for_tests::<tables::TxLookup>(&hash, &[0; 47])
        .unwrap();
    corrupt(mdbx.transaction_location(hash).map(drop), "TxLookup");
    mdbx.put_raw_for_tests::<tables::CanonicalHashes>(&7, &[0; 31])
        .unwrap();
    corrupt(mdbx.canonical_hash(7).map(drop), "CanonicalHashes");
    mdbx.put_raw_for_tests::<tables::Accounts>(&address, &[0x80])
        .unwrap();
    corrupt(mdbx.account(address).map(drop), "Accounts");
    for bad in [&[][..], &[0, 1], &[1; 33]] {
        mdbx.put_raw_for_tests::<tables::Storages>(
            &StorageKey {
                address,
                slot: B256::ZERO,
            },
            bad,
        )
        .unwrap();
        corrupt(mdbx.storage(address, B256::ZERO).map(drop), "Storages");
    }
    mdbx.put_raw_for_tests::<tables::Meta>(&MetaKey::Head, b"short")
        .unwrap();
    corrupt(mdbx.head().map(drop), "Meta");

    // A corrupt head also stops a commit, inside its transaction.
    let genesis = batches().remove(0);
    corrupt(mdbx.commit_block(genesis.clone()), "Meta");
    assert_eq!(mdbx.header(genesis.hash).unwrap(), None);
}

#[test]
fn an_unknown_schema_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mdbx = open(&dir, Durability::Durable);
        mdbx.put_raw_for_tests::<tables::Meta>(&MetaKey::SchemaVersion, &99u64.to_be_bytes())
            .unwrap();
    }
    let err = MdbxStore::open(dir.path(), DatabaseConfig::default()).unwrap_err();
    assert!(
        matches!(err, StorageError::Corrupt { table: "Meta", .. }),
        "{err}"
    );
}

#[test]
fn readers_on_other_threads_see_whole_blocks() {
    let batches = batches();
    let dir = tempfile::tempdir().unwrap();
    let mdbx = open(&dir, Durability::SafeNoSync);
    std::thread::scope(|scope| {
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let store = mdbx.clone();
                let batches = &batches;
                scope.spawn(move || {
                    let mut seen = 0;
                    while seen < 3 {
                        if let Some((number, hash)) = store.head().unwrap() {
                            // Whatever head a reader sees, that block is fully there.
                            let expected = &batches[number as usize];
                            assert_eq!(hash, expected.hash);
                            assert_eq!(
                                store.header(hash).unwrap().as_ref(),
                                Some(&expected.header)
                            );
                            assert!(store.receipts(hash).unwrap().is_some());
                            seen = number;
                        }
                        std::thread::yield_now();
                    }
                })
            })
            .collect();
        for batch in &batches {
            mdbx.commit_block(batch.clone()).unwrap();
        }
        for reader in readers {
            reader.join().unwrap();
        }
    });
}
