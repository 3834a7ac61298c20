//! The consensus task: feeds the IBFT state machine and carries out its outputs in order —
//! a vote is on disk before it is sent, a built or validated block is executed once, a
//! committed block is imported atomically with its seals.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use healthchain_ibft::{
    ChainHead, Height, Ibft, Input, Message, Output, RoundId, RoundReason, TimerAt, Verdict,
    VoteRecord, WireLayout, votes::VoteProposer,
};
use healthchain_network::{Acceptance, MessageId, NetworkHandle, Offence, PeerId, Topic};
use healthchain_primitives::Block;
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot, watch};

use crate::{
    EngineError, EngineMetrics,
    chain::{Chain, Imported, now},
};

/// What the consensus task is told.
#[derive(Debug)]
pub enum EngineInput {
    /// A gossiped consensus message: one code byte, then the message data.
    Consensus {
        /// Gossip id, for the verdict.
        id: MessageId,
        /// The peer that delivered it.
        source: PeerId,
        /// The bytes.
        data: Vec<u8>,
    },
    /// Sealed blocks fetched by sync, in order; the answer is how many were imported.
    Synced {
        /// The blocks.
        blocks: Vec<Block>,
        /// How many were imported, or why the first bad one was refused.
        reply: oneshot::Sender<Result<usize, EngineError>>,
    },
    /// Stop after the work in hand.
    Shutdown,
}

pub(crate) struct Consensus {
    pub(crate) chain: Arc<Chain>,
    pub(crate) machine: Ibft,
    pub(crate) network: Option<NetworkHandle>,
    pub(crate) votes: Arc<Mutex<VoteProposer>>,
    pub(crate) inbox: mpsc::Receiver<EngineInput>,
    pub(crate) metrics: Arc<EngineMetrics>,
    pub(crate) round_timer: Option<(RoundId, Instant)>,
    pub(crate) block_timer: Option<(Height, Instant)>,
    /// When the current height's proposal was first seen (proposal-to-commit time).
    pub(crate) proposal_seen: HashMap<u64, Instant>,
    /// Wakes sync when a validator's message shows the chain is ahead of ours.
    pub(crate) nudge: Arc<watch::Sender<()>>,
    /// Set once the engine cannot safely go on (a vote that cannot be persisted, say);
    /// the task then stops and the node reports why.
    pub(crate) fatal: Arc<watch::Sender<Option<String>>>,
}

/// A blocking job off the async workers.
async fn blocking<T: Send + 'static>(job: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(job).await.ok()
}

impl Consensus {
    /// Starts the machine on the head and runs until the inbox closes.
    pub(crate) async fn run(mut self) {
        match self.head_input() {
            Ok(input) => {
                let out = self.machine.handle(input);
                self.carry_out(out).await;
            }
            Err(err) => {
                self.halt(format!("consensus cannot start: {err}"));
            }
        }
        while !self.halted() {
            let deadline = [
                self.round_timer.map(|(_, at)| at),
                self.block_timer.map(|(_, at)| at),
            ]
            .into_iter()
            .flatten()
            .min();
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                input = self.inbox.recv() => match input {
                    Some(EngineInput::Shutdown) | None => return,
                    Some(input) => self.on_input(input).await,
                },
                () = sleep => self.fire_timers().await,
            }
        }
    }

    /// Stops the engine for good: logged, and reported through the handle.
    fn halt(&mut self, reason: String) {
        tracing::error!(%reason, "consensus halted");
        self.fatal.send_replace(Some(reason));
    }

    fn halted(&self) -> bool {
        self.fatal.borrow().is_some()
    }

    /// This validator's persisted votes for `height`. An unreadable record is an error, not
    /// something to skip: signing again without it could contradict a vote already sent.
    fn restored(&self, height: u64) -> Result<Vec<VoteRecord>, EngineError> {
        self.chain
            .store()
            .votes(height)?
            .iter()
            .map(|bytes| {
                VoteRecord::decode(bytes).map_err(|err| {
                    EngineError::Header(format!(
                        "unreadable persisted vote for height {height}: {err}"
                    ))
                })
            })
            .collect()
    }

    /// `NewChainHead` for the stored head, with this validator's persisted votes.
    fn head_input(&self) -> Result<Input, EngineError> {
        let (number, hash, header) = self.chain.head()?;
        let validators = self.chain.validators_after(number)?.validators();
        let restored = self.restored(number + 1)?;
        self.metrics.height.store(number + 1, Ordering::Relaxed);
        Ok(Input::NewChainHead(Box::new(ChainHead {
            header,
            hash,
            validators,
            restored,
        })))
    }

    async fn fire_timers(&mut self) {
        let now = Instant::now();
        if let Some((id, at)) = self.round_timer
            && at <= now
        {
            self.round_timer = None;
            let out = self.machine.handle(Input::RoundTimerExpired(id));
            self.carry_out(out).await;
        }
        if let Some((height, at)) = self.block_timer
            && at <= now
        {
            self.block_timer = None;
            let out = self.machine.handle(Input::BlockTimerExpired(height));
            self.carry_out(out).await;
        }
    }

    async fn on_input(&mut self, input: EngineInput) {
        match input {
            EngineInput::Consensus { id, source, data } => self.on_gossip(id, source, data).await,
            EngineInput::Synced { blocks, reply } => {
                let result = self.import_synced(blocks).await;
                let _ = reply.send(result);
            }
            EngineInput::Shutdown => {}
        }
    }

    async fn on_gossip(&mut self, id: MessageId, source: PeerId, data: Vec<u8>) {
        let report = |acceptance| {
            if let Some(network) = &self.network {
                network.report(id.clone(), source, acceptance);
            }
        };
        let Some((&code, body)) = data.split_first() else {
            report(Acceptance::Reject);
            return;
        };
        let message = match Message::decode(code, body) {
            Ok(message) => message,
            Err(err) => {
                tracing::debug!(peer = %source, %err, "undecodable consensus message");
                self.metrics
                    .messages_rejected
                    .fetch_add(1, Ordering::Relaxed);
                report(Acceptance::Reject);
                if let Some(network) = &self.network {
                    network.penalize(source, Offence::Malformed);
                }
                return;
            }
        };
        let verdict = self.machine.classify(&message);
        match verdict {
            // Besu relays current-height messages from validators before judging them.
            Verdict::Current => report(Acceptance::Accept),
            Verdict::NotFromValidator => {
                self.metrics
                    .messages_rejected
                    .fetch_add(1, Ordering::Relaxed);
                report(Acceptance::Reject);
                return;
            }
            // Not penalised: a node far behind (syncing) sees every honest message this way.
            Verdict::Future | Verdict::Stale | Verdict::TooFarAhead | Verdict::Inactive => {
                report(Acceptance::Ignore);
            }
        }
        let height = message.id().height.0;
        let current = self.metrics.height.load(Ordering::Relaxed);
        // A validator's message for a later height says the chain has the blocks before it:
        // worth a sync round. Only validators' word counts (anyone can sign a message).
        if height > current && self.machine.validators().contains(&message.author()) {
            self.metrics
                .highest_seen
                .fetch_max(height - 1, Ordering::Relaxed);
            self.nudge.send_replace(());
        }
        if matches!(verdict, Verdict::Current | Verdict::Future) {
            if matches!(message, Message::Proposal(_)) {
                self.proposal_seen
                    .entry(height)
                    .or_insert_with(Instant::now);
            }
            self.metrics
                .messages_accepted
                .fetch_add(1, Ordering::Relaxed);
            let out = self.machine.handle(Input::Message(message));
            self.carry_out(out).await;
        }
    }

    async fn import_synced(&mut self, blocks: Vec<Block>) -> Result<usize, EngineError> {
        let mut imported = 0;
        for block in blocks {
            let chain = self.chain.clone();
            let result = blocking(move || chain.import(block))
                .await
                .ok_or(EngineError::Worker)?;
            match result {
                Ok(done) => {
                    imported += 1;
                    self.metrics.blocks_synced.fetch_add(1, Ordering::Relaxed);
                    self.new_head(done).await;
                }
                // A block already imported by consensus meanwhile is fine.
                Err(EngineError::NotNext { number, head }) if number <= head => {}
                Err(err) => return if imported > 0 { Ok(imported) } else { Err(err) },
            }
        }
        Ok(imported)
    }

    async fn new_head(&mut self, imported: Imported) {
        let number = imported.header.number;
        self.metrics.height.store(number + 1, Ordering::Relaxed);
        if let Some(seen) = self.proposal_seen.remove(&number) {
            self.metrics.record_commit(seen.elapsed());
        }
        self.proposal_seen.retain(|h, _| *h > number);
        let restored = match self.restored(number + 1) {
            Ok(restored) => restored,
            Err(err) => {
                self.halt(err.to_string());
                return;
            }
        };
        let out = self.machine.handle(Input::NewChainHead(Box::new(ChainHead {
            header: imported.header,
            hash: imported.hash,
            validators: imported.next_validators,
            restored,
        })));
        Box::pin(self.carry_out(out)).await;
    }

    /// Carries out `outputs` in order, feeding back the answers.
    async fn carry_out(&mut self, outputs: Vec<Output>) {
        let mut queue: VecDeque<Output> = outputs.into();
        while let Some(output) = queue.pop_front() {
            if self.halted() {
                return;
            }
            match output {
                Output::Persist(record) => {
                    let store = self.chain.store().clone();
                    let height = record.height();
                    let bytes = record.encode();
                    let written = blocking(move || store.append_vote(height, &bytes)).await;
                    if !matches!(written, Some(Ok(()))) {
                        // Without the vote on disk it must not go out, and a validator that
                        // cannot record its votes must not vote at all: stop.
                        let reason = match written {
                            Some(Err(err)) => err.to_string(),
                            _ => "the writer panicked".into(),
                        };
                        self.halt(format!(
                            "cannot persist a consensus vote for height {height}: {reason}"
                        ));
                        return;
                    }
                }
                Output::Broadcast(message) => {
                    if let Some(network) = &self.network {
                        let mut data = vec![message.code()];
                        data.extend_from_slice(&message.encode(WireLayout::Besu25));
                        network.publish(Topic::Consensus, data);
                    }
                }
                Output::ScheduleBlockTimer { height, at } => {
                    let delay = match at {
                        TimerAt::UnixMs(ms) => Duration::from_millis(ms.saturating_sub(now().1)),
                        TimerAt::AfterMs(ms) => Duration::from_millis(ms),
                    };
                    self.block_timer = Some((height, Instant::now() + delay));
                }
                Output::ScheduleRoundTimer { id, after_ms } => {
                    self.round_timer = Some((id, Instant::now() + Duration::from_millis(after_ms)));
                }
                Output::BuildBlock { id, validators, .. } => {
                    let chain = self.chain.clone();
                    let votes = self.votes.clone();
                    let proposer = self.machine.address();
                    let built =
                        blocking(move || chain.build(proposer, &validators, id.round.0, &votes))
                            .await;
                    match built {
                        Some(Ok(block)) => {
                            self.proposal_seen
                                .entry(id.height.0)
                                .or_insert_with(Instant::now);
                            queue.extend(self.machine.handle(Input::BlockBuilt {
                                id,
                                block: Box::new(block),
                            }));
                        }
                        Some(Err(err)) => tracing::error!(%err, %id, "building a block failed"),
                        None => tracing::error!(%id, "block builder panicked"),
                    }
                }
                Output::ValidateBlock { id, digest, block } => {
                    let chain = self.chain.clone();
                    let verdict = blocking(move || chain.validate(*block)).await;
                    let valid = match verdict {
                        Some(Ok(())) => true,
                        Some(Err(err)) => {
                            tracing::warn!(%err, %id, "proposed block is invalid");
                            false
                        }
                        None => false,
                    };
                    queue.extend(
                        self.machine
                            .handle(Input::BlockValidated { id, digest, valid }),
                    );
                }
                Output::Commit(committed) => {
                    let chain = self.chain.clone();
                    let round = committed.round;
                    let block = committed.block;
                    let result = blocking(move || chain.import(block)).await;
                    match result {
                        Some(Ok(imported)) => {
                            tracing::info!(
                                number = imported.header.number,
                                hash = %imported.hash,
                                round = round.0,
                                "committed block"
                            );
                            self.metrics
                                .blocks_committed
                                .fetch_add(1, Ordering::Relaxed);
                            // The next height's outputs follow this height's remaining ones.
                            let rest: Vec<Output> = queue.drain(..).collect();
                            Box::pin(self.carry_out(rest)).await;
                            self.new_head(imported).await;
                            return;
                        }
                        // The height stays undecided here; sync fetches the block from peers.
                        Some(Err(err)) => {
                            tracing::error!(%err, "importing the committed block failed");
                            self.nudge.send_replace(());
                        }
                        None => {
                            tracing::error!("block import panicked");
                            self.nudge.send_replace(());
                        }
                    }
                }
                Output::RoundStarted { id, reason } => {
                    self.metrics
                        .round
                        .store(u64::from(id.round.0), Ordering::Relaxed);
                    self.metrics.rounds.fetch_add(1, Ordering::Relaxed);
                    if reason != RoundReason::NewHeight {
                        self.metrics.round_changes.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(%id, ?reason, "round change");
                    }
                }
                Output::Rejected { author, id, reason } => {
                    self.metrics
                        .messages_rejected
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%author, %id, %reason, "consensus message refused");
                }
            }
        }
    }
}
