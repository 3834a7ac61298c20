//! A deterministic simulator of IBFT 2.0 validators (Commonware-style): seeded virtual
//! time, a network with latency, jitter, loss, duplication, reordering and partitions that
//! heal at a global stabilisation time (GST), byzantine validators, and honest validators
//! that crash and restart from their persisted votes.
//!
//! Every honest validator runs the real [`healthchain_ibft::Ibft`] state machine; messages
//! cross the simulated network as bytes and are decoded with the real codec. After every
//! event the simulator checks:
//!
//! 1. **agreement**: no two honest validators commit different blocks at a height;
//! 2. **valid seals**: every committed block carries ≥ quorum distinct valid seals from
//!    validators;
//! 3. **no equivocation**: no honest validator signs two conflicting messages for one
//!    round (across restarts), and nothing it sends was left unpersisted;
//! 4. **liveness**: after GST every honest validator reaches the target height within the
//!    scenario's bound.
//!
//! A scenario is a function of its seed alone ([`Scenario::from_seed`]), so a failing seed
//! is reproduced by `cargo run --release -p healthchain-ibft-sim -- --seed S`. Test-only
//! crate.

mod byzantine;
mod rng;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use alloy_primitives::{Address, B256, U256, keccak256};
use healthchain_ibft::{
    BlockPeriod, ChainHead, Height, Ibft, IbftConfig, Input, Message, NodeKey, Output, RoundId,
    TimerAt, VoteRecord, WireLayout,
    validation::{check_commit_seals, check_header},
};
use healthchain_primitives::{
    Block, BlockBody, Header,
    ibft::{IBFT_MIX_HASH, IbftExtraData, block_hash},
};

pub use byzantine::Fault;
pub use rng::Rng;

/// Virtual time of genesis, as Unix milliseconds (the block timer is absolute).
const GENESIS_UNIX_MS: u64 = 1_700_000_000_000;

/// Network behaviour before and after GST.
#[derive(Debug, Clone)]
pub struct LinkParams {
    /// Fixed one-way latency, ms.
    pub latency_ms: u64,
    /// Extra uniform delay 0..=jitter, ms (reorders messages).
    pub jitter_ms: u64,
    /// Probability a message is lost before GST.
    pub loss: f64,
    /// Probability a message is delivered twice.
    pub duplicate: f64,
    /// Latency and jitter once stable.
    pub stable_latency_ms: u64,
    /// Jitter once stable.
    pub stable_jitter_ms: u64,
}

/// One run, fully determined by its seed.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The seed.
    pub seed: u64,
    /// Validators (4..=10).
    pub validators: usize,
    /// Byzantine validators by index (at most f of them).
    pub faults: BTreeMap<usize, Fault>,
    /// A non-validator node that sends signed messages too.
    pub outsider: bool,
    /// Global stabilisation time, ms.
    pub gst_ms: u64,
    /// Height every honest validator must reach…
    pub target_height: u64,
    /// …by this time, ms.
    pub deadline_ms: u64,
    /// Network behaviour.
    pub link: LinkParams,
    /// Partitions before GST: (start, end, members of side A).
    pub partitions: Vec<(u64, u64, BTreeSet<usize>)>,
    /// Crash-restarts of honest validators before GST: (validator, crash at, down for).
    pub crashes: Vec<(usize, u64, u64)>,
    /// The state machine's settings.
    pub ibft: IbftConfig,
    /// Chance that an honest validator crashes between two outputs before GST.
    pub crash_chance: f64,
    /// Fault injection for testing the checker: restarted validators forget their
    /// persisted votes. Always false in real scenarios.
    pub amnesia: bool,
}

impl Scenario {
    /// The scenario for `seed`: validator count, faults, network and crashes drawn from it.
    pub fn from_seed(seed: u64) -> Self {
        let mut rng = Rng::new(seed ^ 0x5eed_1bf7);
        let validators = rng.range(4, 10) as usize;
        let f = healthchain_ibft::max_faulty(validators);
        let byzantine = rng.range(0, f as u64) as usize;
        let mut faults = BTreeMap::new();
        while faults.len() < byzantine {
            let index = rng.below(validators as u64) as usize;
            faults
                .entry(index)
                .or_insert_with(|| Fault::random(&mut rng));
        }
        let gst_ms = rng.range(5_000, 30_000);
        let link = LinkParams {
            latency_ms: rng.range(5, 100),
            jitter_ms: rng.range(0, 800),
            loss: rng.range(0, 30) as f64 / 100.0,
            duplicate: rng.range(0, 10) as f64 / 100.0,
            stable_latency_ms: rng.range(1, 50),
            stable_jitter_ms: rng.range(0, 50),
        };
        let mut partitions = Vec::new();
        for _ in 0..rng.range(0, 2) {
            let start = rng.below(gst_ms);
            let end = rng.range(start, gst_ms);
            let side: BTreeSet<usize> = (0..validators).filter(|_| rng.chance(0.5)).collect();
            partitions.push((start, end, side));
        }
        let mut crashes = Vec::new();
        for _ in 0..rng.range(0, 3) {
            let node = rng.below(validators as u64) as usize;
            if faults.contains_key(&node) {
                continue;
            }
            let at = rng.below(gst_ms);
            // Some outages outlast several capped round timeouts (8 s here), so validators
            // come back far behind the ones that kept changing rounds.
            let down = if rng.chance(0.3) {
                rng.range(10_000, 40_000)
            } else {
                rng.range(10, 5_000)
            };
            crashes.push((node, at, down));
        }
        let ibft = IbftConfig {
            request_timeout_ms: 1_000,
            max_round_timeout_ms: 8_000,
            block_period: BlockPeriod::Seconds(1),
            ..IbftConfig::default()
        };
        Self {
            seed,
            validators,
            faults,
            outsider: rng.chance(0.3),
            gst_ms,
            target_height: 6,
            deadline_ms: gst_ms + 120_000,
            link,
            partitions,
            crashes,
            ibft,
            crash_chance: 0.002,
            amnesia: false,
        }
    }

    /// One line that says what the scenario is.
    pub fn summary(&self) -> String {
        format!(
            "seed={} n={} faults={:?} outsider={} gst={}ms loss={:.2} jitter={}ms partitions={} crashes={}",
            self.seed,
            self.validators,
            self.faults,
            self.outsider,
            self.gst_ms,
            self.link.loss,
            self.link.jitter_ms,
            self.partitions.len(),
            self.crashes.len()
        )
    }
}

/// A broken invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// Two honest validators committed different blocks at a height.
    Agreement {
        /// The height.
        height: u64,
        /// The first block's hash.
        first: B256,
        /// The conflicting one.
        second: B256,
    },
    /// A committed block's seals do not prove it.
    Seals {
        /// The height.
        height: u64,
        /// Why.
        reason: String,
    },
    /// An honest validator signed two conflicting messages for one round.
    Equivocation {
        /// The validator.
        validator: Address,
        /// The round.
        id: RoundId,
        /// The message kind.
        kind: &'static str,
    },
    /// An honest validator sent a message it had not persisted.
    Unpersisted {
        /// The validator.
        validator: Address,
        /// The round.
        id: RoundId,
    },
    /// Some honest validator did not reach the target height in time.
    Liveness {
        /// Heights of the honest validators at the deadline.
        heights: Vec<u64>,
        /// The target.
        target: u64,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Events processed.
    pub events: u64,
    /// A hash over every event processed: equal seeds give equal traces.
    pub trace: B256,
    /// Final height of each honest validator.
    pub heights: Vec<u64>,
    /// Virtual time when the run ended, ms.
    pub end_ms: u64,
    /// Messages delivered.
    pub delivered: u64,
    /// Highest round any honest validator reached.
    pub max_round: u32,
    /// Crash-restarts of honest validators.
    pub crashes: u64,
}

/// A failed run: the scenario and what broke.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The scenario.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// Virtual time of the violation, ms.
    pub at_ms: u64,
    /// What broke.
    pub violation: Violation,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at {} ms [{}]; reproduce: cargo run --release -p healthchain-ibft-sim -- --seed {}",
            self.violation, self.at_ms, self.scenario, self.seed
        )
    }
}

#[derive(Debug, Clone)]
enum Event {
    Deliver {
        to: usize,
        code: u8,
        data: Vec<u8>,
    },
    BlockTimer {
        node: usize,
        epoch: u64,
        height: Height,
    },
    RoundTimer {
        node: usize,
        epoch: u64,
        id: RoundId,
    },
    Crash {
        node: usize,
        down_ms: u64,
    },
    Restart {
        node: usize,
    },
    Byzantine {
        node: usize,
    },
    /// Block sync: `node` asks a random peer for the blocks after its head.
    SyncTick {
        node: usize,
    },
    /// Blocks from a peer arrive.
    Blocks {
        node: usize,
        blocks: Vec<(Block, B256)>,
    },
}

/// A validator: its chain, its persisted votes and, while up, its state machine.
struct Node {
    key: NodeKey,
    machine: Option<Ibft>,
    /// Committed blocks by number, genesis first.
    chain: Vec<(Block, B256)>,
    /// Durable vote records (survive crashes).
    records: Vec<VoteRecord>,
    /// Bumped on every crash so the old incarnation's timers are void.
    epoch: u64,
    fault: Option<Fault>,
}

/// The simulation.
pub struct Sim {
    scenario: Scenario,
    rng: Rng,
    now: u64,
    seq: u64,
    queue: BTreeMap<(u64, u64), Event>,
    nodes: Vec<Node>,
    validators: Vec<Address>,
    outsider: Option<NodeKey>,
    /// height → block hash committed by an honest validator.
    committed: HashMap<u64, B256>,
    /// (author, height, round, kind) → what it signed.
    signed: HashMap<(Address, RoundId, &'static str), B256>,
    trace: B256,
    events: u64,
    delivered: u64,
    max_round: u32,
    crashes: u64,
    /// Messages seen on the wire (for replays).
    seen: Vec<(u8, Vec<u8>)>,
}

impl Sim {
    /// Sets up `scenario`: genesis, validators, scheduled crashes and byzantine ticks.
    pub fn new(scenario: Scenario) -> Self {
        let mut rng = Rng::new(scenario.seed);
        let mut keys: Vec<NodeKey> = (0..scenario.validators)
            .map(|i| {
                let mut secret = [0u8; 32];
                secret[..8].copy_from_slice(&scenario.seed.to_be_bytes());
                secret[24..].copy_from_slice(&(i as u64 + 1).to_be_bytes());
                secret[0] |= 1;
                secret[0] &= 0x7f;
                NodeKey::from_secret(&secret).unwrap_or_else(|_| unreachable_key())
            })
            .collect();
        keys.sort_by_key(NodeKey::address);
        let validators: Vec<Address> = keys.iter().map(NodeKey::address).collect();
        let genesis = genesis(&validators);
        let genesis_hash = block_hash(&genesis.header).unwrap_or_default();
        let nodes = keys
            .into_iter()
            .enumerate()
            .map(|(i, key)| Node {
                key,
                machine: None,
                chain: vec![(genesis.clone(), genesis_hash)],
                records: Vec::new(),
                epoch: 0,
                fault: scenario.faults.get(&i).copied(),
            })
            .collect();
        let outsider = scenario.outsider.then(|| {
            let mut secret = [0x42u8; 32];
            secret[..8].copy_from_slice(&scenario.seed.to_be_bytes());
            secret[0] &= 0x7f;
            NodeKey::from_secret(&secret).unwrap_or_else(|_| unreachable_key())
        });
        let mut sim = Self {
            rng: rng.fork(),
            scenario,
            now: 0,
            seq: 0,
            queue: BTreeMap::new(),
            nodes,
            validators,
            outsider,
            committed: HashMap::new(),
            signed: HashMap::new(),
            trace: B256::ZERO,
            events: 0,
            delivered: 0,
            max_round: 0,
            crashes: 0,
            seen: Vec::new(),
        };
        for (node, at, down) in sim.scenario.crashes.clone() {
            sim.schedule(
                at,
                Event::Crash {
                    node,
                    down_ms: down,
                },
            );
        }
        let byzantine: Vec<usize> = sim.scenario.faults.keys().copied().collect();
        for node in byzantine {
            let at = rng.range(0, 500);
            sim.schedule(at, Event::Byzantine { node });
        }
        if sim.outsider.is_some() {
            sim.schedule(100, Event::Byzantine { node: usize::MAX });
        }
        for i in 0..sim.nodes.len() {
            let at = rng.range(500, 1_500);
            sim.schedule(at, Event::SyncTick { node: i });
        }
        for i in 0..sim.nodes.len() {
            // Nothing is signed before a node starts, so starting cannot break an invariant.
            let _ = sim.start_node(i);
        }
        sim
    }

    fn schedule(&mut self, at: u64, event: Event) {
        self.seq += 1;
        self.queue.insert((at, self.seq), event);
    }

    fn honest(&self, i: usize) -> bool {
        self.nodes[i].fault.is_none()
    }

    fn head(&self, i: usize) -> (&Block, B256) {
        let (block, hash) = &self.nodes[i].chain[self.nodes[i].chain.len() - 1];
        (block, *hash)
    }

    /// Runs until every honest validator reaches the target height (plus a little, so late
    /// messages are exercised) or the deadline passes.
    pub fn run(mut self) -> Result<Report, Failure> {
        let mut done_at: Option<u64> = None;
        while let Some(((at, _), event)) = self.queue.pop_first() {
            if at > self.scenario.deadline_ms {
                break;
            }
            self.now = at;
            self.events += 1;
            self.record(&event);
            self.step(event)
                .map_err(|violation| self.failure(violation))?;
            let reached = (0..self.nodes.len())
                .filter(|&i| self.honest(i))
                .all(|i| self.nodes[i].chain.len() as u64 > self.scenario.target_height);
            if reached && self.now >= self.scenario.gst_ms {
                let end = *done_at.get_or_insert(self.now + 2_000);
                if self.now >= end {
                    break;
                }
            }
            if self.events > 5_000_000 {
                break;
            }
        }
        let heights: Vec<u64> = (0..self.nodes.len())
            .filter(|&i| self.honest(i))
            .map(|i| self.nodes[i].chain.len() as u64 - 1)
            .collect();
        if heights.iter().any(|&h| h < self.scenario.target_height) {
            let target = self.scenario.target_height;
            return Err(self.failure(Violation::Liveness { heights, target }));
        }
        Ok(Report {
            events: self.events,
            trace: self.trace,
            heights,
            end_ms: self.now,
            delivered: self.delivered,
            max_round: self.max_round,
            crashes: self.crashes,
        })
    }

    fn failure(&self, violation: Violation) -> Failure {
        Failure {
            scenario: self.scenario.summary(),
            seed: self.scenario.seed,
            at_ms: self.now,
            violation,
        }
    }

    fn record(&mut self, event: &Event) {
        let mut data = self.trace.to_vec();
        data.extend_from_slice(&self.now.to_be_bytes());
        data.extend_from_slice(format!("{event:?}").as_bytes());
        self.trace = keccak256(&data);
    }

    fn step(&mut self, event: Event) -> Result<(), Violation> {
        match event {
            Event::Deliver { to, code, data } => {
                self.delivered += 1;
                if self.nodes[to].machine.is_none() {
                    return Ok(());
                }
                // The real decoder: malformed bytes are dropped here, as the network would.
                let Ok(message) = Message::decode(code, &data) else {
                    return Ok(());
                };
                if self.seen.len() < 4_096 {
                    self.seen.push((code, data));
                } else {
                    let slot = self.rng.below(self.seen.len() as u64) as usize;
                    self.seen[slot] = (code, data);
                }
                self.input(to, Input::Message(message))
            }
            Event::BlockTimer {
                node,
                epoch,
                height,
            } => {
                if self.nodes[node].epoch != epoch {
                    return Ok(());
                }
                self.input(node, Input::BlockTimerExpired(height))
            }
            Event::RoundTimer { node, epoch, id } => {
                if self.nodes[node].epoch != epoch {
                    return Ok(());
                }
                self.input(node, Input::RoundTimerExpired(id))
            }
            Event::Crash { node, down_ms } => {
                self.crash(node, down_ms);
                Ok(())
            }
            Event::Restart { node } => self.start_node(node),
            Event::Byzantine { node } => {
                self.byzantine_tick(node);
                Ok(())
            }
            Event::SyncTick { node } => {
                self.sync_tick(node);
                Ok(())
            }
            Event::Blocks { node, blocks } => self.import_synced(node, blocks),
        }
    }

    /// Node `i` loses everything but its chain and persisted votes, for `down_ms`.
    fn crash(&mut self, i: usize, down_ms: u64) {
        if self.nodes[i].machine.is_none() {
            return;
        }
        self.crashes += 1;
        let n = &mut self.nodes[i];
        n.machine = None;
        n.epoch += 1;
        if self.scenario.amnesia {
            n.records.clear();
        }
        self.schedule(self.now + down_ms, Event::Restart { node: i });
    }

    /// Block sync (the engine's job, modelled here): ask a random peer for up to 16 blocks
    /// past our head; they arrive over the same lossy link.
    fn sync_tick(&mut self, node: usize) {
        let next = self.now + self.rng.range(500, 1_500);
        if next <= self.scenario.deadline_ms {
            self.schedule(next, Event::SyncTick { node });
        }
        if self.nodes[node].machine.is_none() {
            return;
        }
        let peer = self.rng.below(self.nodes.len() as u64) as usize;
        let from = self.nodes[node].chain.len();
        if peer == node || self.nodes[peer].chain.len() <= from {
            return;
        }
        let stable = self.now >= self.scenario.gst_ms;
        if !stable && self.rng.chance(self.scenario.link.loss) {
            return;
        }
        let blocks: Vec<(Block, B256)> = self.nodes[peer].chain[from..]
            .iter()
            .take(16)
            .cloned()
            .collect();
        let delay = 2 * if stable {
            self.scenario.link.stable_latency_ms
        } else {
            self.scenario.link.latency_ms + self.rng.range(0, self.scenario.link.jitter_ms)
        };
        self.schedule(self.now + delay, Event::Blocks { node, blocks });
    }

    /// Imports synced blocks whose seals prove them, each on the current head.
    fn import_synced(&mut self, node: usize, blocks: Vec<(Block, B256)>) -> Result<(), Violation> {
        for (block, hash) in blocks {
            if self.nodes[node].machine.is_none() {
                return Ok(());
            }
            let (_, head_hash) = self.head(node);
            let number = block.header.number;
            if block.header.parent_hash != head_hash
                || number != self.nodes[node].chain.len() as u64
            {
                continue;
            }
            if check_commit_seals(&block.header, &self.validators).is_err()
                || block_hash(&block.header).ok() != Some(hash)
            {
                continue;
            }
            if self.honest(node) {
                match self.committed.get(&number) {
                    Some(first) if *first != hash => {
                        return Err(Violation::Agreement {
                            height: number,
                            first: *first,
                            second: hash,
                        });
                    }
                    _ => {
                        self.committed.insert(number, hash);
                    }
                }
            }
            self.nodes[node].chain.push((block.clone(), hash));
            self.nodes[node].records.retain(|r| r.height() > number);
            self.input(
                node,
                Input::NewChainHead(Box::new(ChainHead {
                    header: block.header,
                    hash,
                    validators: self.validators.clone(),
                    restored: Vec::new(),
                })),
            )?;
        }
        Ok(())
    }

    /// (Re)starts a validator from its chain and persisted votes.
    fn start_node(&mut self, i: usize) -> Result<(), Violation> {
        if self.nodes[i].fault == Some(Fault::Silent) {
            return Ok(());
        }
        let key = self.nodes[i].key.clone();
        let mut machine = Ibft::new(self.scenario.ibft.clone(), key);
        let (head, hash) = self.head(i);
        let head = ChainHead {
            header: head.header.clone(),
            hash,
            validators: self.validators.clone(),
            restored: self.nodes[i].records.clone(),
        };
        let out = machine.handle(Input::NewChainHead(Box::new(head)));
        self.nodes[i].machine = Some(machine);
        self.apply(i, out)
    }

    /// Feeds `input` to node `i` and carries out everything that follows.
    fn input(&mut self, i: usize, input: Input) -> Result<(), Violation> {
        let Some(machine) = self.nodes[i].machine.as_mut() else {
            return Ok(());
        };
        let out = machine.handle(input);
        self.apply(i, out)
    }

    /// Carries out node `i`'s outputs in order, feeding back the answers.
    fn apply(&mut self, i: usize, out: Vec<Output>) -> Result<(), Violation> {
        let mut pending: std::collections::VecDeque<Output> = out.into();
        while let Some(output) = pending.pop_front() {
            if self.nodes[i].machine.is_none() {
                return Ok(());
            }
            let follow_up = self.carry_out(i, output)?;
            if let Some(input) = follow_up
                && let Some(machine) = self.nodes[i].machine.as_mut()
            {
                let more = machine.handle(input);
                // Answers come before the rest of the earlier outputs would in a real
                // engine only if they were synchronous; here they are queued after.
                pending.extend(more);
            }
            if let Some(m) = self.nodes[i].machine.as_ref()
                && let Some(id) = m.current()
            {
                self.max_round = self.max_round.max(id.round.0);
            }
            // A crash may strike between any two outputs (after a Persist, say, but before
            // the Broadcast it protects).
            if self.honest(i)
                && self.now < self.scenario.gst_ms
                && self.rng.chance(self.scenario.crash_chance)
            {
                let down = self.rng.range(10, 3_000);
                self.crash(i, down);
                return Ok(());
            }
        }
        Ok(())
    }

    fn carry_out(&mut self, i: usize, output: Output) -> Result<Option<Input>, Violation> {
        let epoch = self.nodes[i].epoch;
        match output {
            Output::Persist(record) => {
                let next = self.head(i).0.header.number + 1;
                self.nodes[i].records.retain(|r| r.height() >= next);
                self.nodes[i].records.push(*record);
                Ok(None)
            }
            Output::Broadcast(message) => {
                match self.nodes[i].fault {
                    None => {
                        self.check_signed(i, &message)?;
                        self.send_from(i, &message);
                    }
                    Some(fault) => self.byzantine_broadcast(i, fault, &message),
                }
                Ok(None)
            }
            Output::ScheduleBlockTimer { height, at } => {
                let at = match at {
                    TimerAt::UnixMs(ms) => ms.saturating_sub(GENESIS_UNIX_MS).max(self.now),
                    TimerAt::AfterMs(ms) => self.now + ms,
                };
                self.schedule(
                    at,
                    Event::BlockTimer {
                        node: i,
                        epoch,
                        height,
                    },
                );
                Ok(None)
            }
            Output::ScheduleRoundTimer { id, after_ms } => {
                self.schedule(
                    self.now + after_ms,
                    Event::RoundTimer { node: i, epoch, id },
                );
                Ok(None)
            }
            Output::BuildBlock {
                id,
                parent_hash,
                validators,
            } => {
                let (parent, head_hash) = self.head(i);
                if head_hash != parent_hash {
                    return Ok(None);
                }
                let block = build_block(
                    parent,
                    parent_hash,
                    self.nodes[i].key.address(),
                    &validators,
                    id,
                    self.now,
                    0,
                );
                Ok(Some(Input::BlockBuilt {
                    id,
                    block: Box::new(block),
                }))
            }
            Output::ValidateBlock { id, digest, block } => {
                let valid = self.validate(i, &block);
                Ok(Some(Input::BlockValidated { id, digest, valid }))
            }
            Output::Commit(committed) => {
                let header = &committed.block.header;
                let height = header.number;
                // Invariant 2: the seals prove the block.
                check_commit_seals(header, &self.validators).map_err(|e| Violation::Seals {
                    height,
                    reason: e.to_string(),
                })?;
                if block_hash(header).ok() != Some(committed.hash) {
                    return Err(Violation::Seals {
                        height,
                        reason: "hash does not match the header".into(),
                    });
                }
                if self.honest(i) {
                    // Invariant 1: agreement.
                    match self.committed.get(&height) {
                        Some(first) if *first != committed.hash => {
                            return Err(Violation::Agreement {
                                height,
                                first: *first,
                                second: committed.hash,
                            });
                        }
                        _ => {
                            self.committed.insert(height, committed.hash);
                        }
                    }
                }
                let (_, head_hash) = self.head(i);
                if header.parent_hash != head_hash || height != self.nodes[i].chain.len() as u64 {
                    return Ok(None);
                }
                self.nodes[i]
                    .chain
                    .push((committed.block.clone(), committed.hash));
                self.nodes[i].records.retain(|r| r.height() > height);
                Ok(Some(Input::NewChainHead(Box::new(ChainHead {
                    header: committed.block.header,
                    hash: committed.hash,
                    validators: self.validators.clone(),
                    restored: Vec::new(),
                }))))
            }
            Output::RoundStarted { .. } | Output::Rejected { .. } => Ok(None),
        }
    }

    /// The executor's verdict: the block extends the head, follows the IBFT header rules
    /// and the timestamp rule.
    fn validate(&self, i: usize, block: &Block) -> bool {
        let (parent, hash) = self.head(i);
        let period = match self.scenario.ibft.block_period {
            BlockPeriod::Seconds(s) => s,
            BlockPeriod::Millis(_) => 0,
        };
        block.header.parent_hash == hash
            && healthchain_ibft::rules::check_body(block).is_ok()
            && block.header.number == parent.header.number + 1
            && block.header.timestamp >= parent.header.timestamp + period
            && block.header.timestamp <= (GENESIS_UNIX_MS + self.now) / 1000 + 1
            && check_header(&block.header, &self.validators).is_ok()
    }

    /// Invariant 3: what an honest validator sends never conflicts with what it signed
    /// before in the same round, and was persisted first.
    fn check_signed(&mut self, i: usize, message: &Message) -> Result<(), Violation> {
        let author = message.author();
        if author != self.nodes[i].key.address() {
            return Ok(());
        }
        let id = message.id();
        if !self.nodes[i].records.iter().any(|r| &r.message == message) {
            return Err(Violation::Unpersisted {
                validator: author,
                id,
            });
        }
        let (kind, what) = match message {
            Message::Proposal(p) => ("proposal", p.signed.payload().digest),
            Message::Prepare(p) => ("prepare", p.payload().digest),
            Message::Commit(c) => ("commit", c.payload().digest),
            Message::RoundChange(_) => (
                "round-change",
                keccak256(message.encode(WireLayout::Besu25)),
            ),
        };
        match self.signed.get(&(author, id, kind)) {
            Some(previous) if *previous != what => Err(Violation::Equivocation {
                validator: author,
                id,
                kind,
            }),
            _ => {
                self.signed.insert((author, id, kind), what);
                Ok(())
            }
        }
    }

    /// Sends `message` from node `from` to every other validator.
    fn send_from(&mut self, from: usize, message: &Message) {
        let code = message.code();
        let data = message.encode(WireLayout::Besu25).to_vec();
        for to in 0..self.nodes.len() {
            if to != from {
                self.send(Some(from), to, code, data.clone());
            }
        }
    }

    /// Puts bytes on the link `from → to`, subject to loss, partitions and delay.
    fn send(&mut self, from: Option<usize>, to: usize, code: u8, data: Vec<u8>) {
        let stable = self.now >= self.scenario.gst_ms;
        if !stable {
            if self.rng.chance(self.scenario.link.loss) {
                return;
            }
            if let Some(from) = from {
                let now = self.now;
                let cut = self.scenario.partitions.iter().any(|(start, end, side)| {
                    (*start..*end).contains(&now) && side.contains(&from) != side.contains(&to)
                });
                if cut {
                    return;
                }
            }
        }
        let (latency, jitter) = if stable {
            (
                self.scenario.link.stable_latency_ms,
                self.scenario.link.stable_jitter_ms,
            )
        } else {
            (self.scenario.link.latency_ms, self.scenario.link.jitter_ms)
        };
        let copies = if self.rng.chance(self.scenario.link.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = latency + self.rng.range(0, jitter);
            self.schedule(
                self.now + delay,
                Event::Deliver {
                    to,
                    code,
                    data: data.clone(),
                },
            );
        }
    }
}

#[cold]
fn unreachable_key() -> NodeKey {
    // The derived secrets are below n by construction (top bit cleared, non-zero).
    let mut secret = [0u8; 32];
    secret[31] = 1;
    match NodeKey::from_secret(&secret) {
        Ok(key) => key,
        Err(_) => std::process::abort(),
    }
}

/// The genesis block listing `validators` (coinbase 0x0, so round 0 of height 1 goes to the
/// lowest validator).
fn genesis(validators: &[Address]) -> Block {
    Block {
        header: Header {
            difficulty: U256::from(1),
            gas_limit: 30_000_000,
            timestamp: GENESIS_UNIX_MS / 1000,
            extra_data: IbftExtraData::genesis(validators.to_vec()).encode(),
            mix_hash: IBFT_MIX_HASH,
            ..Default::default()
        },
        body: BlockBody::default(),
    }
}

/// A block on `parent` by `proposer`; `variant` changes its state root, so a byzantine
/// proposer can make conflicting blocks for one round.
fn build_block(
    parent: &Block,
    parent_hash: B256,
    proposer: Address,
    validators: &[Address],
    id: RoundId,
    now_ms: u64,
    variant: u64,
) -> Block {
    let mut extra = IbftExtraData::genesis(validators.to_vec());
    extra.round = id.round.0;
    let now_s = (GENESIS_UNIX_MS + now_ms + 500) / 1000;
    let mut seed = parent_hash.to_vec();
    seed.extend_from_slice(proposer.as_slice());
    seed.extend_from_slice(&variant.to_be_bytes());
    Block {
        header: Header {
            parent_hash,
            beneficiary: proposer,
            state_root: keccak256(&seed),
            difficulty: U256::from(1),
            number: parent.header.number + 1,
            gas_limit: parent.header.gas_limit,
            timestamp: now_s.max(parent.header.timestamp + 1),
            extra_data: extra.encode(),
            mix_hash: IBFT_MIX_HASH,
            ..Default::default()
        },
        body: BlockBody::default(),
    }
}

/// Runs the scenario of `seed`.
pub fn run_seed(seed: u64) -> Result<Report, Failure> {
    Sim::new(Scenario::from_seed(seed)).run()
}
