//! The IBFT 2.0 state machine: inputs in, outputs out (ibft2.md §5).
//!
//! [`Ibft`] holds one height at a time. It never reads a clock, sleeps, draws randomness
//! or touches the network or disk: timers, block building, block validation, persistence,
//! broadcast and import are [`Output`]s the host carries out **in order**, reporting back
//! with [`Input`]s. Each transition names the rule it implements (section numbers are those
//! of `shared/docs/reference/ibft2.md`; "HC" marks a deliberate HealthChain rule, listed in
//! `docs/consensus.md`).

use std::collections::BTreeMap;

use alloy_primitives::{Address, B256};
use healthchain_primitives::{
    Block, Header,
    ibft::{IbftExtraData, block_hash, commit_seal_digest, recover_unchecked},
};

use crate::{
    crypto::NodeKey,
    future::FutureMessages,
    messages::{
        CommitPayload, Message, PreparePayload, Proposal, ProposalPayload, RoundChange,
        RoundChangeCertificate, RoundChangePayload, Signed,
    },
    record::{PreparedArtifacts, VoteRecord},
    rules::{HeightContext, RuleError, best_prepared, check_body, with_round},
    types::{Height, Round, RoundId, max_faulty},
    validation::{HeaderError, check_header},
};

/// How blocks are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockPeriod {
    /// `blockperiodseconds`: the round-0 proposer proposes at `parent.timestamp + period`.
    Seconds(u64),
    /// `xblockperiodmilliseconds`: the round-0 proposer proposes this long after the height
    /// starts.
    Millis(u64),
}

/// The state machine's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IbftConfig {
    /// Base round timeout (`requesttimeoutseconds × 1000`).
    pub request_timeout_ms: u64,
    /// Cap on the doubling round timeout (HC: Besu doubles without limit).
    pub max_round_timeout_ms: u64,
    /// Block spacing.
    pub block_period: BlockPeriod,
    /// Most buffered future-height messages (`futuremessageslimit`).
    pub future_messages_limit: usize,
    /// Furthest height ahead that is buffered (`futuremessagesmaxdistance`).
    pub future_messages_max_distance: u64,
    /// Most buffered future-height messages from one author (HC).
    pub future_messages_per_author: usize,
    /// Most bytes of buffered future-height messages (HC: Besu counts messages only, and
    /// each may carry a block).
    pub future_messages_max_bytes: usize,
    /// Furthest round ahead whose Prepares and Commits are buffered (HC: Besu keeps any).
    pub future_rounds_max_distance: u32,
    /// Jump to a higher round once f+1 validators ask for it (HC, as QBFT; needed with a
    /// capped timer so validators whose rounds drifted apart meet again).
    pub round_catch_up: bool,
}

impl Default for IbftConfig {
    fn default() -> Self {
        Self {
            request_timeout_ms: 1_000,
            max_round_timeout_ms: 60_000,
            block_period: BlockPeriod::Seconds(1),
            future_messages_limit: 1_000,
            future_messages_max_distance: 10,
            future_messages_per_author: 100,
            future_messages_max_bytes: 64 << 20,
            future_rounds_max_distance: 10,
            round_catch_up: true,
        }
    }
}

impl IbftConfig {
    /// Round `round`'s timeout: `request_timeout × 2^round`, capped (§5.6, HC cap).
    pub fn round_timeout_ms(&self, round: Round) -> u64 {
        self.uncapped_timeout_ms(round)
            .min(self.max_round_timeout_ms.max(self.request_timeout_ms))
    }

    /// Besu's timeout for `round`, without the cap.
    fn uncapped_timeout_ms(&self, round: Round) -> u64 {
        let factor = 1u64.checked_shl(round.0).unwrap_or(u64::MAX);
        self.request_timeout_ms.saturating_mul(factor)
    }

    /// Whether the cap shortens `round`'s timeout (never round 0, which every validator
    /// enters together at a new height).
    pub fn is_capped(&self, round: Round) -> bool {
        round > Round(0) && self.uncapped_timeout_ms(round) > self.round_timeout_ms(round)
    }
}

/// When a timer fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerAt {
    /// At this wall-clock time (Unix milliseconds).
    UnixMs(u64),
    /// This long from now.
    AfterMs(u64),
}

/// A new canonical head and what the next height needs.
#[derive(Debug, Clone)]
pub struct ChainHead {
    /// The head's header.
    pub header: Header,
    /// Its on-chain hash.
    pub hash: B256,
    /// The validators for the next height (the tally after this block).
    pub validators: Vec<Address>,
    /// This validator's persisted votes; those for the next height are restored.
    pub restored: Vec<VoteRecord>,
}

/// What the host tells the machine.
#[derive(Debug, Clone)]
pub enum Input {
    /// A block was imported as the new head (`NewChainHead`).
    NewChainHead(Box<ChainHead>),
    /// A decoded message from the network (its signature is already checked).
    Message(Message),
    /// The block timer set by [`Output::ScheduleBlockTimer`] fired.
    BlockTimerExpired(Height),
    /// A round timer set by [`Output::ScheduleRoundTimer`] fired.
    RoundTimerExpired(RoundId),
    /// The block asked for by [`Output::BuildBlock`].
    BlockBuilt {
        /// The round it was built for.
        id: RoundId,
        /// The block, extraData `[vanity, validators, vote, round, []]`.
        block: Box<Block>,
    },
    /// The verdict on [`Output::ValidateBlock`].
    BlockValidated {
        /// The round of the proposal.
        id: RoundId,
        /// The proposal's digest.
        digest: B256,
        /// Whether the block executes and passes every header and body rule.
        valid: bool,
    },
}

/// Why a round started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundReason {
    /// Round 0 of a new height.
    NewHeight,
    /// The previous round's timer expired.
    Timeout,
    /// A round-change certificate for a future round was completed.
    RoundChangeCertificate,
    /// A valid proposal for a future round arrived.
    FutureProposal,
    /// f+1 validators asked for a higher round (HC).
    CatchUp,
    /// Restored from persisted votes after a restart.
    Restored,
}

/// A committed block, sealed, ready to import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedBlock {
    /// The block with the commit seals in its extraData.
    pub block: Block,
    /// Its on-chain hash.
    pub hash: B256,
    /// The round it was committed in.
    pub round: Round,
}

/// Why a message was refused. Refusals change nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// A proposal not from the round's proposer.
    #[error("proposal from {0}, not the round's proposer")]
    NotProposer(Address),
    /// A second, different proposal for a round.
    #[error("a different proposal for this round was already received")]
    SecondProposal,
    /// A proposal conflicting with what this validator already signed for the round.
    #[error("conflicts with this validator's own vote for the round")]
    ConflictsWithOwnVote,
    /// A round-0 proposal with a certificate, or a later one without.
    #[error("round {0} proposal: a round-change certificate is required exactly above round 0")]
    Certificate(Round),
    /// The block or a certificate breaks a rule.
    #[error(transparent)]
    Rule(#[from] RuleError),
    /// The block breaks an IBFT header rule.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// The block's parent is not the head.
    #[error("block does not extend the head")]
    Parent,
    /// The executor found the block invalid.
    #[error("block failed validation")]
    InvalidBlock,
    /// A Prepare from the round's proposer.
    #[error("prepare from the proposer")]
    PrepareFromProposer,
    /// A Prepare or Commit for another digest.
    #[error("digest differs from the proposal's")]
    Digest,
    /// A Commit whose seal does not recover to its author.
    #[error("commit seal is not the author's")]
    Seal,
    /// A RoundChange whose target is round 0.
    #[error("round change to round 0")]
    RoundChangeToRoundZero,
}

/// What the machine asks the host to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Make this record durable **before** carrying out the next output.
    Persist(Box<VoteRecord>),
    /// Send to the other validators.
    Broadcast(Message),
    /// Start the block timer for `height` (replacing any earlier one).
    ScheduleBlockTimer {
        /// The height.
        height: Height,
        /// When it fires.
        at: TimerAt,
    },
    /// Start the round timer for `id` (replacing any earlier one).
    ScheduleRoundTimer {
        /// The round.
        id: RoundId,
        /// Its timeout.
        after_ms: u64,
    },
    /// Build a block on the head for `id` and answer [`Input::BlockBuilt`].
    BuildBlock {
        /// The round; the block's extraData must carry it.
        id: RoundId,
        /// The head it extends.
        parent_hash: B256,
        /// The validators to list in its extraData, ascending.
        validators: Vec<Address>,
    },
    /// Execute and check this proposed block, then answer [`Input::BlockValidated`].
    ValidateBlock {
        /// The proposal's round.
        id: RoundId,
        /// Its digest.
        digest: B256,
        /// The block.
        block: Box<Block>,
    },
    /// Import this committed block.
    Commit(Box<CommittedBlock>),
    /// A round started (for logs and metrics).
    RoundStarted {
        /// The round.
        id: RoundId,
        /// Why.
        reason: RoundReason,
    },
    /// A message was refused (for logs, metrics and peer scoring).
    Rejected {
        /// Its author.
        author: Address,
        /// Its round.
        id: RoundId,
        /// Why.
        reason: Rejection,
    },
}

/// Where a received message belongs (`BaseBftController`, §5.5); the host relays only
/// [`Verdict::Current`] messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// For the current height, from a current validator, and this node validates.
    Current,
    /// For a height above the current one, within the buffering distance.
    Future,
    /// For a height already decided.
    Stale,
    /// Too far ahead to buffer.
    TooFarAhead,
    /// From an address that does not validate the current height.
    NotFromValidator,
    /// This node does not validate the current height, or has no head yet.
    Inactive,
}

/// One round's messages (`RoundState`).
#[derive(Debug)]
struct RoundState {
    round: Round,
    proposal: Option<Box<Proposal>>,
    digest: B256,
    /// One per author, arrival order; validated once a proposal is known.
    prepares: Vec<Signed<PreparePayload>>,
    /// One per author, arrival order (the local commit included).
    commits: Vec<Signed<CommitPayload>>,
    prepared: bool,
    committed: bool,
}

impl RoundState {
    fn new(round: Round, buffered: Option<FutureRound>) -> Self {
        let buffered = buffered.unwrap_or_default();
        Self {
            round,
            proposal: None,
            digest: B256::ZERO,
            prepares: buffered.prepares,
            commits: buffered.commits,
            prepared: false,
            committed: false,
        }
    }
}

/// Prepares and Commits that arrived for a round not yet started.
#[derive(Debug, Default)]
struct FutureRound {
    prepares: Vec<Signed<PreparePayload>>,
    commits: Vec<Signed<CommitPayload>>,
}

/// Round changes collected for one target round (`RoundChangeStatus`).
#[derive(Debug, Default)]
struct RoundChangeSet {
    messages: Vec<RoundChange>,
    actioned: bool,
}

/// What this validator signed at the current height, so it never signs a conflicting
/// message (restored after a restart from [`VoteRecord`]s).
#[derive(Debug, Default)]
struct OwnVotes {
    proposals: BTreeMap<Round, Box<Proposal>>,
    prepares: BTreeMap<Round, Signed<PreparePayload>>,
    commits: BTreeMap<Round, Signed<CommitPayload>>,
    round_changes: BTreeMap<Round, Box<RoundChange>>,
}

impl OwnVotes {
    /// The digest this validator is bound to in `round`, if it signed anything for it.
    fn digest(&self, round: Round) -> Option<B256> {
        self.proposals
            .get(&round)
            .map(|p| p.signed.payload().digest)
            .or_else(|| self.prepares.get(&round).map(|p| p.payload().digest))
            .or_else(|| self.commits.get(&round).map(|c| c.payload().digest))
    }
}

/// A proposal waiting for the host's [`Input::BlockValidated`].
#[derive(Debug)]
struct PendingProposal {
    digest: B256,
    proposal: Box<Proposal>,
}

/// The state of one height (`IbftBlockHeightManager`).
#[derive(Debug)]
struct HeightState {
    ctx: HeightContext,
    parent_timestamp: u64,
    local_validator: bool,
    round: RoundState,
    future_rounds: BTreeMap<Round, FutureRound>,
    round_changes: BTreeMap<Round, RoundChangeSet>,
    latest_prepared: Option<PreparedArtifacts>,
    pending: BTreeMap<Round, PendingProposal>,
    awaiting_build: Option<(Round, Option<RoundChangeCertificate>)>,
    own: OwnVotes,
    /// The highest round each validator has sent a message for at this height.
    seen_rounds: BTreeMap<Address, Round>,
}

/// The IBFT 2.0 validator state machine.
#[derive(Debug)]
pub struct Ibft {
    config: IbftConfig,
    key: NodeKey,
    head: Option<(u64, B256)>,
    state: Option<HeightState>,
    future: FutureMessages,
}

impl Ibft {
    /// A machine signing with `key`; idle until the first [`Input::NewChainHead`].
    pub fn new(config: IbftConfig, key: NodeKey) -> Self {
        Self {
            config,
            key,
            head: None,
            state: None,
            future: FutureMessages::default(),
        }
    }

    /// This validator's address.
    pub fn address(&self) -> Address {
        self.key.address()
    }

    /// The height being agreed on and its current round (round 0 on a node that does not
    /// validate this height; [`Self::classify`] tells whether it takes part).
    pub fn current(&self) -> Option<RoundId> {
        self.state.as_ref().map(|s| RoundId {
            height: s.ctx.height,
            round: s.round.round,
        })
    }

    /// The validators of the current height.
    pub fn validators(&self) -> &[Address] {
        self.state.as_ref().map_or(&[], |s| &s.ctx.validators)
    }

    /// Buffered future-height messages.
    pub fn buffered_future_messages(&self) -> usize {
        self.future.len()
    }

    /// Where `message` belongs (§5.5 steps 3–5).
    pub fn classify(&self, message: &Message) -> Verdict {
        let Some(state) = &self.state else {
            return Verdict::Inactive;
        };
        let height = message.id().height;
        if height < state.ctx.height {
            return Verdict::Stale;
        }
        if height > state.ctx.height {
            let distance = height.0 - state.ctx.height.0;
            return if distance <= self.config.future_messages_max_distance {
                Verdict::Future
            } else {
                Verdict::TooFarAhead
            };
        }
        if !state.local_validator {
            return Verdict::Inactive;
        }
        if !state.ctx.is_validator(&message.author()) {
            return Verdict::NotFromValidator;
        }
        Verdict::Current
    }

    /// Applies one input and returns what the host must do, in order.
    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::NewChainHead(head) => self.on_new_head(*head, &mut out),
            Input::Message(message) => self.on_message(message, &mut out),
            Input::BlockTimerExpired(height) => self.on_block_timer(height, &mut out),
            Input::RoundTimerExpired(id) => self.on_round_timer(id, &mut out),
            Input::BlockBuilt { id, block } => self.on_block_built(id, *block, &mut out),
            Input::BlockValidated { id, digest, valid } => {
                self.on_block_validated(id, digest, valid, &mut out)
            }
        }
        out
    }

    // ---- heights ---------------------------------------------------------------------

    fn on_new_head(&mut self, head: ChainHead, out: &mut Vec<Output>) {
        let number = head.header.number;
        // §5.1: lower heads and the same head again are ignored; a different block at the
        // same height would be a fork, which IBFT's finality rules out: ignored too.
        if self.head.is_some_and(|(current, _)| number <= current) {
            return;
        }
        self.head = Some((number, head.hash));
        let height = Height(number + 1);
        let ctx = HeightContext::new(height, head.hash, head.header.beneficiary, head.validators);
        let local_validator = ctx.is_validator(&self.key.address());
        self.state = Some(HeightState {
            ctx,
            parent_timestamp: head.header.timestamp,
            local_validator,
            round: RoundState::new(Round(0), None),
            future_rounds: BTreeMap::new(),
            round_changes: BTreeMap::new(),
            latest_prepared: None,
            pending: BTreeMap::new(),
            awaiting_build: None,
            own: OwnVotes::default(),
            seen_rounds: BTreeMap::new(),
        });
        // §5.1: a node outside the validator set runs a no-op height.
        if !local_validator {
            // Buffered messages for this height are of no use to a non-validator.
            let _ = self.future.take(height.0);
            return;
        }
        // HC restart safety: restore what this validator signed at this height.
        let restored_round = self.restore(head.restored.iter().filter(|r| r.height() == height.0));
        if restored_round > Round(0) {
            self.start_round(restored_round, RoundReason::Restored, out);
        } else {
            // §5.3: round 0 starts at once with its round timer.
            self.round_started(RoundReason::NewHeight, out);
            self.schedule_block_timer(out);
        }
        self.rebroadcast_own(out);
        // §5.5: buffered messages for the new height are replayed; lower ones dropped.
        for message in self.future.take(height.0) {
            self.on_message(message, out);
        }
    }

    /// Rebuilds [`OwnVotes`] and the prepared lock from persisted records; returns the
    /// highest round they reach.
    fn restore<'a>(&mut self, records: impl Iterator<Item = &'a VoteRecord>) -> Round {
        let Some(state) = &mut self.state else {
            return Round(0);
        };
        let mut round = Round(0);
        for record in records {
            let id = record.message.id();
            round = round.max(id.round);
            match &record.message {
                Message::Proposal(p) => {
                    state.own.proposals.insert(id.round, p.clone());
                }
                Message::Prepare(p) => {
                    state.own.prepares.insert(id.round, p.clone());
                }
                Message::Commit(c) => {
                    state.own.commits.insert(id.round, c.clone());
                }
                Message::RoundChange(rc) => {
                    if let (Some(pc), Some(block)) = (&rc.signed.payload().prepared, &rc.block) {
                        let artifacts = PreparedArtifacts {
                            certificate: pc.clone(),
                            block: block.clone(),
                        };
                        keep_highest(&mut state.latest_prepared, artifacts);
                    }
                    state.own.round_changes.insert(id.round, rc.clone());
                }
            }
            if let Some(artifacts) = &record.prepared {
                keep_highest(&mut state.latest_prepared, artifacts.clone());
            }
        }
        round
    }

    /// After a restart, sends again what this validator had sent for its current round:
    /// identical bytes, so nothing conflicts, and peers that missed them get them.
    fn rebroadcast_own(&mut self, out: &mut Vec<Output>) {
        let Some(state) = &self.state else { return };
        let round = state.round.round;
        let mut again = Vec::new();
        if let Some(p) = state.own.proposals.get(&round) {
            again.push(Message::Proposal(p.clone()));
        }
        if let Some(p) = state.own.prepares.get(&round) {
            again.push(Message::Prepare(p.clone()));
        }
        if let Some(c) = state.own.commits.get(&round) {
            again.push(Message::Commit(c.clone()));
        }
        if let Some(rc) = state.own.round_changes.get(&round) {
            again.push(Message::RoundChange(rc.clone()));
        }
        for message in again {
            out.push(Output::Broadcast(message.clone()));
            // Our own messages count locally too, exactly as when first sent; our own
            // proposal needs no validation.
            match message {
                Message::Proposal(p) => self.accept_proposal(p, out),
                other => self.on_message(other, out),
            }
        }
    }

    fn schedule_block_timer(&mut self, out: &mut Vec<Output>) {
        let Some(state) = &self.state else { return };
        // §5.3: only the round-0 proposer runs the block timer.
        if state.ctx.proposer(Round(0)) != Some(self.key.address()) {
            return;
        }
        let at = match self.config.block_period {
            BlockPeriod::Seconds(period) => TimerAt::UnixMs(
                state
                    .parent_timestamp
                    .saturating_add(period)
                    .saturating_mul(1000),
            ),
            BlockPeriod::Millis(ms) => TimerAt::AfterMs(ms),
        };
        out.push(Output::ScheduleBlockTimer {
            height: state.ctx.height,
            at,
        });
    }

    // ---- rounds ----------------------------------------------------------------------

    fn round_started(&self, reason: RoundReason, out: &mut Vec<Output>) {
        let Some(state) = &self.state else { return };
        let id = RoundId {
            height: state.ctx.height,
            round: state.round.round,
        };
        out.push(Output::RoundStarted { id, reason });
        // §5.6: every round object starts its round timer.
        out.push(Output::ScheduleRoundTimer {
            id,
            after_ms: self.config.round_timeout_ms(id.round),
        });
    }

    /// Moves to `round` (> current) (`startNewRound`): buffered Prepares and Commits for it
    /// come along, older buffers and round changes are discarded.
    fn start_round(&mut self, round: Round, reason: RoundReason, out: &mut Vec<Output>) {
        let Some(state) = &mut self.state else { return };
        if round <= state.round.round {
            return;
        }
        let buffered = state.future_rounds.remove(&round);
        state.future_rounds.retain(|r, _| *r > round);
        state.round_changes.retain(|r, _| *r >= round);
        state.pending.retain(|r, _| *r >= round);
        if state
            .awaiting_build
            .as_ref()
            .is_some_and(|(r, _)| *r < round)
        {
            state.awaiting_build = None;
        }
        state.round = RoundState::new(round, buffered);
        self.round_started(reason, out);
    }

    fn on_round_timer(&mut self, id: RoundId, out: &mut Vec<Output>) {
        let Some(state) = &self.state else { return };
        // A timer for a round we already left is stale.
        if !state.local_validator || id.height != state.ctx.height || id.round != state.round.round
        {
            return;
        }
        // HC: at the capped timeout, a validator that is alone (fewer than f+1 validators,
        // itself included, seen at or above its round) stays in its round instead of
        // drifting further ahead of the others for ever: it reminds them of its round
        // change and waits another period. Staying in a round is always safe; the others,
        // whose timers are just as long, catch up to it.
        if self.config.is_capped(id.round) {
            let me = self.key.address();
            let at_or_above = 1 + state
                .seen_rounds
                .iter()
                .filter(|(who, round)| **who != me && **round >= id.round)
                .count();
            if at_or_above < max_faulty(state.ctx.validators.len()) + 1 {
                if let Some(rc) = state.own.round_changes.get(&id.round) {
                    out.push(Output::Broadcast(Message::RoundChange(rc.clone())));
                }
                out.push(Output::ScheduleRoundTimer {
                    id,
                    after_ms: self.config.round_timeout_ms(id.round),
                });
                return;
            }
        }
        // §5.6 expiry: the prepared round is already kept in `latest_prepared` (HC: stored
        // when prepared rather than at expiry, so a round jump never loses the lock); move
        // to r+1 and ask for it.
        let next = id.round.next();
        self.start_round(next, RoundReason::Timeout, out);
        self.send_round_change(next, out);
    }

    /// Signs, persists and sends a RoundChange for `target`, then handles it locally.
    fn send_round_change(&mut self, target: Round, out: &mut Vec<Output>) {
        let Some(state) = &mut self.state else { return };
        // One RoundChange per target round: a restored one is reused, never re-signed.
        let rc = match state.own.round_changes.get(&target) {
            Some(rc) => rc.clone(),
            None => {
                let id = RoundId {
                    height: state.ctx.height,
                    round: target,
                };
                let payload = RoundChangePayload {
                    id,
                    prepared: state
                        .latest_prepared
                        .as_ref()
                        .map(|a| a.certificate.clone()),
                };
                let Some(signed) = Signed::sign(payload, &self.key) else {
                    return;
                };
                let rc = Box::new(RoundChange {
                    signed,
                    block: state.latest_prepared.as_ref().map(|a| a.block.clone()),
                });
                state.own.round_changes.insert(target, rc.clone());
                out.push(Output::Persist(Box::new(VoteRecord {
                    message: Message::RoundChange(rc.clone()),
                    prepared: None,
                })));
                rc
            }
        };
        // Besu transmits first, then handles its own RoundChange (which may complete a
        // certificate and trigger a proposal that must follow it on the wire).
        out.push(Output::Broadcast(Message::RoundChange(rc.clone())));
        self.on_round_change(*rc, out);
    }

    fn on_block_timer(&mut self, height: Height, out: &mut Vec<Output>) {
        let Some(state) = &mut self.state else { return };
        // §5.3: only while still in round 0 of that height, as its proposer, once.
        if height != state.ctx.height
            || state.round.round != Round(0)
            || state.ctx.proposer(Round(0)) != Some(self.key.address())
            || state.awaiting_build.is_some()
            || state.round.proposal.is_some()
        {
            return;
        }
        // Never build a second round-0 block after a restart (a restored proposal is
        // already the round's proposal, so this is only a guard).
        if state.own.proposals.contains_key(&Round(0)) {
            return;
        }
        state.awaiting_build = Some((Round(0), None));
        out.push(Output::BuildBlock {
            id: RoundId {
                height,
                round: Round(0),
            },
            parent_hash: state.ctx.parent_hash,
            validators: state.ctx.validators.clone(),
        });
    }

    fn on_block_built(&mut self, id: RoundId, block: Block, out: &mut Vec<Output>) {
        let Some(state) = &mut self.state else { return };
        let Some((round, _)) = &state.awaiting_build else {
            return;
        };
        if id.height != state.ctx.height || id.round != *round || id.round != state.round.round {
            return;
        }
        let Some((round, rcc)) = state.awaiting_build.take() else {
            return;
        };
        let Ok(digest) = commit_seal_digest(&block.header) else {
            return;
        };
        // The host built it for us; still, never propose something inconsistent or that
        // breaks an IBFT header rule (every peer would refuse it).
        if state.ctx.check_block(&block, digest, round).is_err()
            || block.header.parent_hash != state.ctx.parent_hash
            || check_header(&block.header, &state.ctx.validators).is_err()
            || check_body(&block).is_err()
        {
            return;
        }
        self.propose(round, digest, block, rcc, out);
    }

    /// Signs, persists and sends a Proposal, then accepts it locally (§5.3, §5.6).
    fn propose(
        &mut self,
        round: Round,
        digest: B256,
        block: Block,
        rcc: Option<RoundChangeCertificate>,
        out: &mut Vec<Output>,
    ) {
        let Some(state) = &mut self.state else { return };
        if let Some(bound) = state.own.digest(round)
            && bound != digest
        {
            return;
        }
        let id = RoundId {
            height: state.ctx.height,
            round,
        };
        let Some(signed) = Signed::sign(ProposalPayload { id, digest }, &self.key) else {
            return;
        };
        let proposal = Box::new(Proposal {
            signed,
            block,
            round_change_certificate: rcc,
        });
        state.own.proposals.insert(round, proposal.clone());
        out.push(Output::Persist(Box::new(VoteRecord {
            message: Message::Proposal(proposal.clone()),
            prepared: None,
        })));
        out.push(Output::Broadcast(Message::Proposal(proposal.clone())));
        // The proposer built (or re-proposes an already prepared) block: no validation.
        self.accept_proposal(proposal, out);
    }

    // ---- messages --------------------------------------------------------------------

    fn on_message(&mut self, message: Message, out: &mut Vec<Output>) {
        match self.classify(&message) {
            Verdict::Current => {}
            Verdict::Future => {
                // §5.5-5, plus (HC) only from a current validator: validator sets change one
                // member at a time, and this keeps outsiders from evicting real messages.
                let Some(state) = &self.state else { return };
                if state.ctx.is_validator(&message.author()) {
                    let height = message.id().height.0;
                    self.future.add(
                        height,
                        message,
                        self.config.future_messages_limit,
                        self.config.future_messages_per_author,
                        self.config.future_messages_max_bytes,
                    );
                }
                return;
            }
            // §5.5-3/4: old heights, outsiders and inactive nodes: dropped.
            Verdict::Stale
            | Verdict::TooFarAhead
            | Verdict::NotFromValidator
            | Verdict::Inactive => {
                return;
            }
        }
        let Some(state) = &mut self.state else { return };
        let current = state.round.round;
        let round = message.id().round;
        // Where each validator is known to be (for the alone-at-the-cap rule).
        let seen = state.seen_rounds.entry(message.author()).or_default();
        *seen = (*seen).max(round);
        match message {
            Message::Proposal(p) => {
                // §5.5: proposals for earlier rounds are ignored.
                if round >= current {
                    self.on_proposal(p, out);
                }
            }
            Message::Prepare(p) => {
                if round == current {
                    self.on_prepare(p, out);
                } else if round > current {
                    self.buffer_future_round(round, Message::Prepare(p));
                }
            }
            Message::Commit(c) => {
                if round == current {
                    self.on_commit(c, out);
                } else if round > current {
                    self.buffer_future_round(round, Message::Commit(c));
                }
            }
            Message::RoundChange(rc) => {
                // §5.5: round changes for rounds before the current one are ignored.
                if round >= current {
                    self.on_round_change(*rc, out);
                }
            }
        }
    }

    /// §5.5: Prepares and Commits for a future round wait in that round's buffer (HC: one
    /// per author and kind, at most `future_rounds_max_distance` rounds ahead).
    fn buffer_future_round(&mut self, round: Round, message: Message) {
        let Some(state) = &mut self.state else { return };
        if round.0 - state.round.round.0 > self.config.future_rounds_max_distance {
            return;
        }
        let buffer = state.future_rounds.entry(round).or_default();
        match message {
            Message::Prepare(p) => {
                if !buffer.prepares.iter().any(|q| q.author() == p.author()) {
                    buffer.prepares.push(p);
                }
            }
            Message::Commit(c) => {
                if !buffer.commits.iter().any(|q| q.author() == c.author()) {
                    buffer.commits.push(c);
                }
            }
            Message::Proposal(_) | Message::RoundChange(_) => {}
        }
    }

    fn reject(out: &mut Vec<Output>, author: Address, id: RoundId, reason: impl Into<Rejection>) {
        out.push(Output::Rejected {
            author,
            id,
            reason: reason.into(),
        });
    }

    /// §4.5 Proposal rules, for the current or a future round; a proposal that passes them
    /// goes to the host for execution before it is accepted.
    fn on_proposal(&mut self, proposal: Box<Proposal>, out: &mut Vec<Output>) {
        let Some(state) = &mut self.state else { return };
        let id = proposal.signed.payload().id;
        let digest = proposal.signed.payload().digest;
        let author = proposal.signed.author();
        // §4.5-1: from the round's proposer.
        if state.ctx.proposer(id.round) != Some(author) {
            return Self::reject(out, author, id, Rejection::NotProposer(author));
        }
        // §4.5-6: only the first proposal of a round counts; the same one again is a
        // duplicate (ignored), a different one is refused.
        if id.round == state.round.round && state.round.proposal.is_some() {
            if state.round.digest != digest {
                Self::reject(out, author, id, Rejection::SecondProposal);
            }
            return;
        }
        if let Some(pending) = state.pending.get(&id.round) {
            if pending.digest != digest {
                Self::reject(out, author, id, Rejection::SecondProposal);
            }
            return;
        }
        // HC restart safety: never accept a block other than the one we already voted for.
        if let Some(bound) = state.own.digest(id.round)
            && bound != digest
        {
            return Self::reject(out, author, id, Rejection::ConflictsWithOwnVote);
        }
        // §4.5-5: digest, height and round of the block agree with the payload.
        if let Err(err) = state.ctx.check_block(&proposal.block, digest, id.round) {
            return Self::reject(out, author, id, err);
        }
        if proposal.block.header.parent_hash != state.ctx.parent_hash {
            return Self::reject(out, author, id, Rejection::Parent);
        }
        // §2.1 LIGHT header rules IBFT defines (the executor checks the rest).
        if let Err(err) = check_header(&proposal.block.header, &state.ctx.validators) {
            return Self::reject(out, author, id, err);
        }
        // HC: the unsigned body matches the signed header (a swapped body is refused here,
        // for free, instead of costing the round).
        if let Err(err) = check_body(&proposal.block) {
            return Self::reject(out, author, id, err);
        }
        // §4.5-3/4: no certificate in round 0; a valid one above it.
        match (&proposal.round_change_certificate, id.round) {
            (None, Round(0)) => {}
            (Some(rcc), r) if r > Round(0) => {
                if let Err(err) = state
                    .ctx
                    .check_round_change_certificate(rcc, id, &proposal.block)
                {
                    return Self::reject(out, author, id, err);
                }
            }
            _ => return Self::reject(out, author, id, Rejection::Certificate(id.round)),
        }
        // §4.5-2: the block is executed (FULL body validation) before it is accepted.
        let block = Box::new(proposal.block.clone());
        state
            .pending
            .insert(id.round, PendingProposal { digest, proposal });
        out.push(Output::ValidateBlock { id, digest, block });
    }

    fn on_block_validated(
        &mut self,
        id: RoundId,
        digest: B256,
        valid: bool,
        out: &mut Vec<Output>,
    ) {
        let Some(state) = &mut self.state else { return };
        if id.height != state.ctx.height {
            return;
        }
        let Some(pending) = state.pending.remove(&id.round) else {
            return;
        };
        if pending.digest != digest {
            // Not the proposal we asked about; keep waiting for that one.
            state.pending.insert(id.round, pending);
            return;
        }
        if !valid {
            let author = pending.proposal.signed.author();
            return Self::reject(out, author, id, Rejection::InvalidBlock);
        }
        if id.round < state.round.round {
            return;
        }
        if id.round > state.round.round {
            // §5.5: a valid proposal for a future round moves this node to that round.
            self.start_round(id.round, RoundReason::FutureProposal, out);
        }
        self.accept_proposal(pending.proposal, out);
    }

    /// §5.4: a valid proposal for the current round is accepted.
    fn accept_proposal(&mut self, proposal: Box<Proposal>, out: &mut Vec<Output>) {
        let Some(state) = &mut self.state else { return };
        if state.round.proposal.is_some() {
            return;
        }
        let id = proposal.signed.payload().id;
        let digest = proposal.signed.payload().digest;
        let proposer = proposal.signed.author();
        // Buffered Prepares and Commits are re-validated against the proposal.
        state
            .round
            .prepares
            .retain(|p| p.payload().digest == digest && p.author() != proposer);
        state.round.commits.retain(|c| {
            c.payload().digest == digest
                && recover_unchecked(&c.payload().seal, digest) == Some(c.author())
        });
        state.round.proposal = Some(proposal);
        state.round.digest = digest;
        let local = self.key.address();
        // The local Commit (with its seal) joins the round state at once, unsent.
        if !state.round.commits.iter().any(|c| c.author() == local)
            && let Some(commit) = state.own.commits.get(&id.round).cloned().or_else(|| {
                let seal = self.key.sign(digest)?;
                Signed::sign(CommitPayload { id, digest, seal }, &self.key)
            })
        {
            state.round.commits.push(commit);
        }
        // A non-proposer sends its Prepare; the proposer never does.
        if proposer != local && !state.round.prepares.iter().any(|p| p.author() == local) {
            let prepare = match state.own.prepares.get(&id.round) {
                Some(p) => Some((p.clone(), false)),
                None => Signed::sign(PreparePayload { id, digest }, &self.key).map(|p| (p, true)),
            };
            if let Some((prepare, new)) = prepare {
                if new {
                    state.own.prepares.insert(id.round, prepare.clone());
                    out.push(Output::Persist(Box::new(VoteRecord {
                        message: Message::Prepare(prepare.clone()),
                        prepared: None,
                    })));
                    out.push(Output::Broadcast(Message::Prepare(prepare.clone())));
                }
                state.round.prepares.push(prepare);
            }
        }
        self.update_round(out);
    }

    fn on_prepare(&mut self, prepare: Signed<PreparePayload>, out: &mut Vec<Output>) {
        let Some(state) = &mut self.state else { return };
        let id = prepare.payload().id;
        let author = prepare.author();
        // §4.5 Prepare: not from the round's proposer.
        if state.ctx.proposer(id.round) == Some(author) {
            return Self::reject(out, author, id, Rejection::PrepareFromProposer);
        }
        if state.round.prepares.iter().any(|p| p.author() == author) {
            return;
        }
        // With a proposal known the digest must match; without, it waits to be checked.
        if state.round.proposal.is_some() && prepare.payload().digest != state.round.digest {
            return Self::reject(out, author, id, Rejection::Digest);
        }
        state.round.prepares.push(prepare);
        self.update_round(out);
    }

    fn on_commit(&mut self, commit: Signed<CommitPayload>, out: &mut Vec<Output>) {
        let Some(state) = &mut self.state else { return };
        let id = commit.payload().id;
        let author = commit.author();
        if state.round.commits.iter().any(|c| c.author() == author) {
            return;
        }
        if state.round.proposal.is_some() {
            // §4.5 Commit: matching digest, and the seal recovers to the author.
            if commit.payload().digest != state.round.digest {
                return Self::reject(out, author, id, Rejection::Digest);
            }
            if recover_unchecked(&commit.payload().seal, state.round.digest) != Some(author) {
                return Self::reject(out, author, id, Rejection::Seal);
            }
        }
        state.round.commits.push(commit);
        self.update_round(out);
    }

    /// §5.4: prepared sends the local Commit; committed produces the sealed block.
    fn update_round(&mut self, out: &mut Vec<Output>) {
        let Some(state) = &mut self.state else { return };
        let Some(proposal) = &state.round.proposal else {
            return;
        };
        let quorum = state.ctx.quorum;
        let local = self.key.address();
        let id = proposal.signed.payload().id;
        // Prepared: the proposal plus quorum − 1 Prepares from distinct non-proposers.
        if !state.round.prepared && state.round.prepares.len() + 1 >= quorum {
            state.round.prepared = true;
            let artifacts = PreparedArtifacts {
                certificate: crate::messages::PreparedCertificate {
                    proposal: proposal.signed.clone(),
                    prepares: state.round.prepares.clone(),
                },
                block: proposal.block.clone(),
            };
            keep_highest(&mut state.latest_prepared, artifacts.clone());
            if let Some(commit) = state
                .round
                .commits
                .iter()
                .find(|c| c.author() == local)
                .cloned()
            {
                if let std::collections::btree_map::Entry::Vacant(slot) =
                    state.own.commits.entry(id.round)
                {
                    slot.insert(commit.clone());
                    out.push(Output::Persist(Box::new(VoteRecord {
                        message: Message::Commit(commit.clone()),
                        prepared: Some(artifacts),
                    })));
                }
                out.push(Output::Broadcast(Message::Commit(commit)));
            }
        }
        // Committed: quorum Commits from distinct validators, the local one included.
        if !state.round.committed && state.round.commits.len() >= quorum {
            state.round.committed = true;
            let mut block = proposal.block.clone();
            let Ok(mut extra) = IbftExtraData::of(&block.header) else {
                return;
            };
            // The seals of every Commit held, in arrival order.
            extra.seals = state
                .round
                .commits
                .iter()
                .map(|c| c.payload().seal)
                .collect();
            block.header.extra_data = extra.encode();
            let Ok(hash) = block_hash(&block.header) else {
                return;
            };
            out.push(Output::Commit(Box::new(CommittedBlock {
                block,
                hash,
                round: id.round,
            })));
        }
    }

    /// §5.6 `RoundChangeManager`: collect; at quorum for a round, build the certificate,
    /// move there, and propose if it is ours.
    fn on_round_change(&mut self, rc: RoundChange, out: &mut Vec<Output>) {
        let Some(state) = &mut self.state else { return };
        let id = rc.signed.payload().id;
        let author = rc.signed.author();
        if id.round < state.round.round {
            return;
        }
        // HC: nobody changes *to* round 0; honest validators never send this.
        if id.round == Round(0) {
            return Self::reject(out, author, id, Rejection::RoundChangeToRoundZero);
        }
        if let Err(err) = state.ctx.check_round_change(&rc) {
            return Self::reject(out, author, id, err);
        }
        let quorum = state.ctx.quorum;
        let set = state.round_changes.entry(id.round).or_default();
        // One per author per target round, the first kept; nothing after the certificate.
        if set.actioned || set.messages.iter().any(|m| m.signed.author() == author) {
            return;
        }
        set.messages.push(rc);
        // HC memory bound: an author keeps round changes for at most
        // `future_rounds_max_distance` target rounds above ours, the highest ones (catch-up
        // needs the high ones; a spammer cannot fill memory with every round).
        let limit = self.config.future_rounds_max_distance.max(1) as usize;
        let current = state.round.round;
        let mine: Vec<Round> = state
            .round_changes
            .range(current.next()..)
            .filter(|(_, set)| {
                !set.actioned && set.messages.iter().any(|m| m.signed.author() == author)
            })
            .map(|(round, _)| *round)
            .collect();
        if mine.len() > limit {
            for round in &mine[..mine.len() - limit] {
                if let Some(set) = state.round_changes.get_mut(round) {
                    set.messages.retain(|m| m.signed.author() != author);
                }
            }
            state
                .round_changes
                .retain(|_, set| set.actioned || !set.messages.is_empty());
        }
        let Some(set) = state.round_changes.get_mut(&id.round) else {
            return;
        };
        if set.messages.len() >= quorum {
            set.actioned = true;
            let messages = set.messages.clone();
            if id.round > state.round.round {
                self.start_round(id.round, RoundReason::RoundChangeCertificate, out);
            }
            if self.state.as_ref().and_then(|s| s.ctx.proposer(id.round))
                == Some(self.key.address())
            {
                self.propose_with_certificate(id.round, messages, out);
            }
            return;
        }
        self.catch_up(out);
    }

    /// HC (QBFT's rule): when f+1 validators have asked for rounds above ours, at least one
    /// honest validator is there; move to the highest round f+1 of them reached and ask for
    /// it too.
    fn catch_up(&mut self, out: &mut Vec<Output>) {
        if !self.config.round_catch_up {
            return;
        }
        let Some(state) = &self.state else { return };
        let current = state.round.round;
        let mut highest: BTreeMap<Address, Round> = BTreeMap::new();
        for (round, set) in state.round_changes.range(current.next()..) {
            for m in &set.messages {
                highest.insert(m.signed.author(), *round);
            }
        }
        let f = max_faulty(state.ctx.validators.len());
        if highest.len() < f + 1 {
            return;
        }
        let mut rounds: Vec<Round> = highest.into_values().collect();
        rounds.sort_unstable_by(|a, b| b.cmp(a));
        let Some(&target) = rounds.get(f) else { return };
        if target > current {
            self.start_round(target, RoundReason::CatchUp, out);
            self.send_round_change(target, out);
        }
    }

    /// §5.6 `startRoundWith`: re-propose the block of the highest prepared certificate with
    /// only its round replaced, or build a new block.
    fn propose_with_certificate(
        &mut self,
        round: Round,
        messages: Vec<RoundChange>,
        out: &mut Vec<Output>,
    ) {
        let Some(state) = &mut self.state else { return };
        // A restored proposal for this round is already its proposal; never build or
        // re-propose another block in a round we proposed in.
        if round != state.round.round
            || state.round.proposal.is_some()
            || state.own.proposals.contains_key(&round)
        {
            return;
        }
        let rcc = RoundChangeCertificate {
            round_changes: messages.iter().map(|m| m.signed.clone()).collect(),
        };
        let best = best_prepared(messages.iter().map(|m| m.signed.payload()));
        let prepared_block = best.and_then(|pc| {
            messages
                .iter()
                .find(|m| m.signed.payload().prepared.as_ref() == Some(pc))
                .and_then(|m| m.block.clone())
        });
        match prepared_block {
            Some(block) => {
                let Ok(block) = with_round(&block, round) else {
                    return;
                };
                let Ok(digest) = commit_seal_digest(&block.header) else {
                    return;
                };
                self.propose(round, digest, block, Some(rcc), out);
            }
            None => {
                state.awaiting_build = Some((round, Some(rcc)));
                out.push(Output::BuildBlock {
                    id: RoundId {
                        height: state.ctx.height,
                        round,
                    },
                    parent_hash: state.ctx.parent_hash,
                    validators: state.ctx.validators.clone(),
                });
            }
        }
    }
}

/// Keeps the prepared artifacts of the higher round.
fn keep_highest(slot: &mut Option<PreparedArtifacts>, artifacts: PreparedArtifacts) {
    if slot
        .as_ref()
        .is_none_or(|a| artifacts.certificate.round() > a.certificate.round())
    {
        *slot = Some(artifacts);
    }
}
