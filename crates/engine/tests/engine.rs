//! The engine without a network: a lone validator (quorum of one) commits blocks through the
//! real consensus task, and the engine's refusals — a vote it cannot persist or read back,
//! a block without seals, a block over the message budget — leave the chain as it was.
//!
//! Time is real but every wait is bounded; block periods are 50 ms.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use alloy_primitives::{Address, B256, U256, hex};
use healthchain_engine::{Chain, ChainObserver, EngineError, EngineHandle};
use healthchain_fixtures::{DevAccount, genesis, validator};
use healthchain_ibft::{
    BlockPeriod, IbftConfig, NodeKey, validation::check_commit_seals, votes::VoteProposer,
};
use healthchain_primitives::ibft::IbftExtraData;
use healthchain_storage_api::{BlockBatch, BlockReader, BlockWriter, MemoryStore, VoteStore};
use healthchain_txpool::{PoolConfig, SharedPool};
use parking_lot::Mutex;

/// Counts the blocks the chain announces.
#[derive(Default)]
struct Counter(AtomicU64);

impl ChainObserver for Counter {
    fn on_block(&self, _: &BlockBatch, _: &[B256]) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

struct Setup {
    store: Arc<MemoryStore>,
    pool: Arc<SharedPool>,
    observer: Arc<Counter>,
    chain: Chain,
}

/// A fresh chain whose single validator is the fixtures' validator.
fn setup() -> Setup {
    let store = Arc::new(MemoryStore::default());
    let genesis = genesis(4);
    store
        .commit_block(healthchain_evm::genesis_batch(&genesis).expect("genesis batch"))
        .expect("commit genesis");
    let config = Arc::new(genesis.config.clone());
    let pool = Arc::new(
        SharedPool::new(
            PoolConfig {
                min_gas_price: 0,
                ..PoolConfig::default()
            },
            store.as_ref(),
            &config,
        )
        .expect("pool"),
    );
    let observer = Arc::new(Counter::default());
    let chain = Chain::new(store.clone(), config, pool.clone(), observer.clone());
    Setup {
        store,
        pool,
        observer,
        chain,
    }
}

fn key() -> NodeKey {
    let secret = hex::decode(validator().secret_hex()).expect("hex");
    NodeKey::from_secret(&secret).expect("key")
}

fn fast() -> IbftConfig {
    IbftConfig {
        block_period: BlockPeriod::Millis(50),
        ..IbftConfig::default()
    }
}

fn head(store: &MemoryStore) -> u64 {
    store.head().expect("head").expect("genesis").0
}

fn spawn(setup: Setup) -> (EngineHandle, Arc<MemoryStore>, Arc<Counter>) {
    let Setup {
        store,
        observer,
        chain,
        ..
    } = setup;
    let handle = healthchain_engine::spawn(Arc::new(chain), fast(), key(), None, B256::ZERO);
    (handle, store, observer)
}

/// Polls `done` every 10 ms for at most `limit`.
async fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    done()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_validator_commits_sealed_blocks_and_prunes_its_votes() {
    let (engine, store, observer) = spawn(setup());
    assert!(
        eventually(Duration::from_secs(20), || head(&store) >= 5).await,
        "only {} blocks in 20 s",
        head(&store)
    );
    engine.shutdown().await;
    let head = head(&store);
    let me = validator().address;
    for number in 1..=head {
        let hash = store.canonical_hash(number).unwrap().unwrap();
        let header = store.header(hash).unwrap().unwrap();
        assert_eq!(header.beneficiary, me, "block {number} proposer");
        let signers = check_commit_seals(&header, &[me]).expect("valid commit seals");
        assert_eq!(signers, vec![me], "block {number} seals");
        assert_eq!(IbftExtraData::of(&header).unwrap().validators, vec![me]);
    }
    assert_eq!(
        observer.0.load(Ordering::SeqCst),
        head,
        "one announcement per block"
    );
    // Votes of decided heights are pruned; at most the next height's remain.
    for height in 1..=head {
        assert!(
            store.votes(height).unwrap().is_empty(),
            "votes for decided height {height} kept"
        );
    }
}

/// Waits (bounded) for the engine to report a fatal error mentioning `why`.
async fn stops_because(engine: &EngineHandle, why: &str) {
    let reason = tokio::time::timeout(Duration::from_secs(10), engine.failed())
        .await
        .expect("the engine reports the failure");
    assert!(reason.contains(why), "reason: {reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validator_that_cannot_persist_its_vote_stops_without_sending_it() {
    let setup = setup();
    setup.store.fail_vote_writes(true);
    let (engine, store, _) = spawn(setup);
    stops_because(&engine, "cannot persist a consensus vote").await;
    assert_eq!(
        head(&store),
        0,
        "nothing committed without a persisted vote"
    );
    assert!(
        eventually(Duration::from_secs(5), || !engine.is_running()).await,
        "the consensus task stops"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_persisted_vote_refuses_to_start() {
    let setup = setup();
    setup.store.append_vote(1, b"not a vote record").unwrap();
    let (engine, store, _) = spawn(setup);
    stops_because(&engine, "unreadable persisted vote").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(head(&store), 0, "no block signed over a lost vote");
}

fn fill_pool(pool: &SharedPool, store: &MemoryStore, count: u64) {
    let sender = DevAccount::new(1);
    for nonce in 0..count {
        let tx = sender.transfer(nonce, Address::with_last_byte(9), U256::from(1));
        let raw = alloy_eips::eip2718::Encodable2718::encoded_2718(&tx);
        pool.submit_raw(&raw, store, 0).expect("pooled");
    }
}

/// The encoded size of a block's transactions.
fn transaction_bytes(block: &healthchain_primitives::Block) -> usize {
    block
        .body
        .transactions
        .iter()
        .map(alloy_eips::eip2718::Encodable2718::encode_2718_len)
        .sum()
}

#[test]
fn built_blocks_stay_within_the_gossip_message_budget() {
    let me = validator().address;
    let votes = Mutex::new(VoteProposer::default());

    let unbounded = setup();
    fill_pool(&unbounded.pool, &unbounded.store, 40);
    let block = unbounded.chain.build(me, &[me], 0, &votes).expect("build");
    assert_eq!(
        block.body.transactions.len(),
        40,
        "no budget: the whole pool"
    );
    let tx_bytes = transaction_bytes(&block);

    // A budget of about half of those bytes.
    let mut bounded = setup();
    fill_pool(&bounded.pool, &bounded.store, 40);
    bounded.chain = bounded
        .chain
        .with_max_message_bytes(healthchain_engine::chain::PROPOSAL_OVERHEAD_BYTES + tx_bytes / 2);
    let block = bounded.chain.build(me, &[me], 0, &votes).expect("build");
    let included = block.body.transactions.len();
    let bytes = transaction_bytes(&block);
    assert!(
        bytes <= tx_bytes / 2,
        "{bytes} bytes over a {} budget",
        tx_bytes / 2
    );
    assert!(
        (19..=20).contains(&included),
        "{included} of 40 equal transactions in half their bytes"
    );
}

#[test]
fn a_block_without_commit_seals_is_refused_and_changes_nothing() {
    let setup = setup();
    fill_pool(&setup.pool, &setup.store, 3);
    let me = validator().address;
    let votes = Mutex::new(VoteProposer::default());
    let block = setup.chain.build(me, &[me], 0, &votes).expect("build");
    let err = setup.chain.import(block).expect_err("unsealed block");
    assert!(matches!(err, EngineError::Seals(_)), "{err}");
    assert_eq!(head(&setup.store), 0);
    assert_eq!(
        setup.observer.0.load(Ordering::SeqCst),
        0,
        "nothing announced"
    );
    assert_eq!(
        setup.pool.status().pending,
        3,
        "the pool keeps its transactions"
    );
}
