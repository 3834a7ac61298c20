//! `healthchain bench`: the built-in load tool. It drives a running network over JSON-RPC
//! (HTTP for submission and calls, WebSocket `newHeads` for inclusion), in open loop (a
//! fixed rate of pre-signed transactions) or closed loop (N users, each waiting for its
//! last request), or the papers' profile (users ramping up, each creating, reading,
//! updating and listing the history of records). It reports latency percentiles,
//! sustained throughput, failures by reason and each node's CPU and RSS, as JSON, markdown
//! and SVG plots. See `docs/benchmarks.md`.

pub(crate) mod import;
mod plot;
mod procs;
pub(crate) mod report;
pub(crate) mod rpc;
pub(crate) mod setup;
pub(crate) mod tracker;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use alloy_primitives::aliases::U40;
use alloy_primitives::{Address, Bytes, U256, address};
use alloy_sol_types::SolCall;
use anyhow::{Context, ensure};
use clap::{Args, Subcommand, ValueEnum};
use healthchain_contracts::{PatientRecord, RECORDS_ADDRESS};
use healthchain_ibft::NodeKey;
use indicatif::{ProgressBar, ProgressStyle};
use parking_lot::Mutex;
use tokio::sync::{Semaphore, oneshot};

use report::{Op, Outcome, Report, RunInfo};
use rpc::{Rpc, Sender, SignedTx, TRANSFER_GAS, WRITE_GAS};
use setup::{Cast, Needs, record_id, write_call};
use tracker::Tracker;

/// Where load-test transfers go (no key is known for it).
const SINK: Address = address!("0x000000000000000000000000000000000000b0b0");

/// What the load consists of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Workload {
    /// Plain value transfers.
    Transfers,
    /// New medical records (`PatientRecord.healthRecordStore`, a doctor with consent).
    Writes,
    /// Record reads (`eth_call` of `healthRecordGet`).
    Reads,
    /// Writes, reads and transfers in the `--mix` proportions.
    Mix,
    /// The papers' profile: users ramping from `--ramp-from` to `--ramp-to` over
    /// `--ramp-seconds`, each creating, reading, updating and listing the history of
    /// records in a loop.
    Profile,
}

/// Options of `healthchain bench`.
#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct BenchArgs {
    #[command(subcommand)]
    pub(crate) command: Option<BenchCommand>,
    #[command(flatten)]
    pub(crate) run: RunArgs,
}

/// Helpers around the load tool.
#[derive(Debug, Clone, Subcommand)]
pub(crate) enum BenchCommand {
    /// Set up doctors and consenting patients and write a file of records for
    /// `healthchain records import` (with the doctors' keys).
    PrepareImport(import::PrepareArgs),
}

/// Options of a load run.
#[derive(Debug, Clone, Args)]
pub(crate) struct RunArgs {
    /// JSON-RPC HTTP endpoint to submit to (repeatable: requests are spread round-robin).
    #[arg(long = "rpc-url", default_value = "http://127.0.0.1:8545")]
    pub(crate) rpc_urls: Vec<String>,
    /// WebSocket endpoint whose `newHeads` time inclusion.
    #[arg(long, default_value = "ws://127.0.0.1:8546")]
    pub(crate) ws_url: String,
    /// What to send.
    #[arg(long, value_enum, default_value_t = Workload::Writes)]
    pub(crate) workload: Workload,
    /// Open loop: requests per second, pre-signed before the measured phase.
    #[arg(long, conflicts_with = "users")]
    pub(crate) rate: Option<u64>,
    /// Closed loop: this many users, each sending its next request when the last one is
    /// included (transactions) or answered (calls).
    #[arg(long)]
    pub(crate) users: Option<usize>,
    /// Seconds of submission (the profile's include its ramp).
    #[arg(long, default_value_t = 30)]
    pub(crate) duration: u64,
    /// Requests submitted in the first seconds are left out of the figures.
    #[arg(long, default_value_t = 3)]
    pub(crate) warmup: u64,
    /// Distinct sending accounts in open loop.
    #[arg(long, default_value_t = 256)]
    pub(crate) senders: usize,
    /// Writes, reads and transfers of the mix, in percent.
    #[arg(long, default_value = "50,30,20", value_parser = parse_mix)]
    pub(crate) mix: Mix,
    /// Profile: users at the start.
    #[arg(long, default_value_t = 10)]
    pub(crate) ramp_from: usize,
    /// Profile: users at the end of the ramp.
    #[arg(long, default_value_t = 2000)]
    pub(crate) ramp_to: usize,
    /// Profile: seconds of the ramp.
    #[arg(long, default_value_t = 100)]
    pub(crate) ramp_seconds: u64,
    /// Key file of the ministry and permissioning admin that sets the accounts up (the
    /// development chain's Account #0 by default).
    #[arg(long)]
    pub(crate) admin_key_file: Option<PathBuf>,
    /// A node process to sample CPU and RSS from (repeatable, in node order).
    #[arg(long = "pid")]
    pub(crate) pids: Vec<u32>,
    /// Write results.json, results.md, throughput.svg and latency.svg here.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Seed of the load accounts' keys (the same seed reuses accounts already set up).
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    /// Seconds to wait after submission for the last transactions.
    #[arg(long, default_value_t = 15)]
    pub(crate) drain: u64,
    /// Title of the report.
    #[arg(long)]
    pub(crate) label: Option<String>,
    /// No progress bar.
    #[arg(long)]
    pub(crate) quiet: bool,
}

/// Percentages of writes, reads and transfers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mix {
    writes: u32,
    reads: u32,
}

fn parse_mix(text: &str) -> Result<Mix, String> {
    let parts: Vec<u32> = text
        .split(',')
        .map(|p| {
            p.trim()
                .parse::<u32>()
                .map_err(|_| format!("{p:?} is not a percentage"))
        })
        .collect::<Result<_, _>>()?;
    match parts[..] {
        [writes, reads, transfers] if writes + reads + transfers == 100 => {
            Ok(Mix { writes, reads })
        }
        _ => Err("expected WRITES,READS,TRANSFERS percentages adding up to 100".into()),
    }
}

/// `healthchain bench`.
pub(crate) fn bench(args: &BenchArgs) -> anyhow::Result<()> {
    let runtime = crate::health::runtime()?;
    match &args.command {
        Some(BenchCommand::PrepareImport(prepare)) => runtime.block_on(import::prepare(prepare)),
        None => runtime.block_on(run(&args.run)),
    }
}

/// The admin key: the file, or the development chain's Account #0.
pub(crate) fn admin_key(file: Option<&PathBuf>) -> anyhow::Result<NodeKey> {
    let text = match file {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        }
        None => crate::dev_keys()?
            .accounts
            .first()
            .context("no development account")?
            .private_key
            .clone(),
    };
    healthchain_node::key_from_hex(&text)
        .context("the admin key is not a 32-byte secp256k1 key in hex")
}

/// How the load is applied.
#[derive(Debug, Clone, Copy)]
enum Load {
    Open(u64),
    Closed(usize),
    Profile,
}

/// A request of the measured phase.
#[derive(Debug, Clone)]
enum Job {
    Tx(Op, SignedTx),
    Call(Op, Bytes),
}

fn read_call(id: u64) -> Bytes {
    PatientRecord::healthRecordGetCall { id: U40::from(id) }
        .abi_encode()
        .into()
}

fn history_call(id: u64) -> Bytes {
    PatientRecord::historyOfCall { id: U40::from(id) }
        .abi_encode()
        .into()
}

/// The `n`-th request of sender `i` (signing it if it is a transaction).
fn job(
    workload: Workload,
    mix: Mix,
    chain_id: u64,
    cast_patient: Option<Address>,
    record: Option<u64>,
    sender: &mut Sender,
    n: usize,
) -> anyhow::Result<Job> {
    let pick = match workload {
        Workload::Mix => {
            let r = ((n as u64).wrapping_mul(7919).wrapping_add(sender.nonce) % 100) as u32;
            if r < mix.writes {
                Workload::Writes
            } else if r < mix.writes + mix.reads {
                Workload::Reads
            } else {
                Workload::Transfers
            }
        }
        other => other,
    };
    Ok(match pick {
        Workload::Transfers => Job::Tx(
            Op::Transfer,
            sender.sign(chain_id, SINK, U256::from(1), TRANSFER_GAS, Bytes::new())?,
        ),
        Workload::Reads => Job::Call(Op::Read, read_call(record.context("no record to read")?)),
        _ => {
            let patient = cast_patient.context("no patient to write about")?;
            let tag = format!("bench/{}/{}", sender.key.address(), sender.nonce);
            let data = write_call(patient, &tag, 0);
            Job::Tx(
                Op::Write,
                sender.sign(chain_id, RECORDS_ADDRESS, U256::ZERO, WRITE_GAS, data)?,
            )
        }
    })
}

fn needs(workload: Workload) -> Needs {
    match workload {
        Workload::Transfers => Needs {
            funds: true,
            ..Needs::default()
        },
        Workload::Writes | Workload::Profile => Needs {
            roles: true,
            ..Needs::default()
        },
        Workload::Reads => Needs {
            roles: true,
            records: true,
            ..Needs::default()
        },
        Workload::Mix => Needs {
            funds: true,
            roles: true,
            records: true,
        },
    }
}

async fn run(args: &RunArgs) -> anyhow::Result<()> {
    let load = match (args.workload, args.rate, args.users) {
        (Workload::Profile, None, None) => Load::Profile,
        (Workload::Profile, _, _) => {
            anyhow::bail!("the profile sets its own users: drop --rate and --users")
        }
        (_, Some(rate), None) => Load::Open(rate),
        (_, None, Some(users)) => Load::Closed(users),
        (_, None, None) => anyhow::bail!("give --rate (open loop) or --users (closed loop)"),
        (_, Some(_), Some(_)) => unreachable!("clap refuses --rate with --users"),
    };
    ensure!(args.duration > 0, "--duration must be at least 1");
    ensure!(
        args.warmup < args.duration,
        "--warmup must be shorter than --duration"
    );
    let accounts = match load {
        Load::Open(rate) => {
            ensure!(rate > 0, "--rate must be at least 1");
            ensure!(args.senders > 0, "--senders must be at least 1");
            args.senders
        }
        Load::Closed(users) => {
            ensure!(users > 0, "--users must be at least 1");
            users
        }
        Load::Profile => {
            ensure!(
                args.ramp_to >= args.ramp_from && args.ramp_to > 0,
                "--ramp-to must be at least --ramp-from and 1"
            );
            ensure!(
                args.ramp_seconds <= args.duration,
                "--ramp-seconds must fit in --duration"
            );
            args.ramp_to
        }
    };
    let admin = admin_key(args.admin_key_file.as_ref())?;
    let rpc = Arc::new(Rpc::connect(&args.rpc_urls).await?);
    let tracker = Arc::new(Tracker::new());
    let follower = tracker::follow(&args.ws_url, tracker.clone()).await?;

    eprintln!("set-up: {accounts} load accounts (seed {})…", args.seed);
    let began = Instant::now();
    let cast = setup::prepare(
        &rpc,
        &tracker,
        &admin,
        args.seed,
        accounts,
        needs(args.workload),
    )
    .await?;
    eprintln!("set-up done in {:.1} s", began.elapsed().as_secs_f64());

    let procs = procs::nodes_and_self(&args.pids, "healthchain bench");
    let users = Arc::new(AtomicUsize::new(0));
    let (load_text, users_series) = match load {
        Load::Open(rate) => {
            let jobs = presign(args, &rpc, cast, rate)?;
            eprintln!(
                "{} requests signed; measuring for {} s",
                jobs.len(),
                args.duration
            );
            let sampler = procs::Sampler::start(procs);
            let series = watch(args, &tracker, &users);
            open_loop(&rpc, &tracker, jobs, rate, args.duration).await;
            (
                format!("open loop, {rate} requests/s, {} senders", args.senders),
                finish(args, &tracker, series, sampler).await,
            )
        }
        Load::Closed(n) => {
            let sampler = procs::Sampler::start(procs);
            let series = watch(args, &tracker, &users);
            closed_loop(args, &rpc, &tracker, cast, &users).await;
            (
                format!("closed loop, {n} users"),
                finish(args, &tracker, series, sampler).await,
            )
        }
        Load::Profile => {
            let sampler = procs::Sampler::start(procs);
            let series = watch(args, &tracker, &users);
            profile(args, &rpc, &tracker, cast, &users).await;
            (
                format!(
                    "profile: {} → {} users over {} s, each create / read / update / history",
                    args.ramp_from, args.ramp_to, args.ramp_seconds
                ),
                finish(args, &tracker, series, sampler).await,
            )
        }
    };
    follower.abort();
    let (users_per_second, nodes) = users_series;
    let (samples, blocks) = tracker.finish();
    let workload = format!("{:?}", args.workload).to_lowercase();
    let info = RunInfo {
        label: args
            .label
            .clone()
            .unwrap_or_else(|| format!("{workload}, {load_text}")),
        workload,
        load: load_text,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        duration_s: args.duration as f64,
        warmup_s: args.warmup as f64,
        users: users_per_second,
    };
    let report = Report::build(info, &samples, &blocks, nodes);
    print!("{}", report.markdown());
    if let Some(dir) = &args.out {
        report.write(dir)?;
        eprintln!("results in {}", dir.display());
    }
    Ok(())
}

/// The progress bar and the per-second user count, until the measured phase ends.
struct Watch {
    task: tokio::task::JoinHandle<()>,
    users: Arc<Mutex<Vec<usize>>>,
    bar: ProgressBar,
}

fn watch(args: &RunArgs, tracker: &Arc<Tracker>, users: &Arc<AtomicUsize>) -> Watch {
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(args.duration)
    };
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} s  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let series = Arc::new(Mutex::new(Vec::new()));
    let (tracker, users, shared, b) = (tracker.clone(), users.clone(), series.clone(), bar.clone());
    let task = tokio::spawn(async move {
        let start = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        let mut second = 0;
        loop {
            tick.tick().await;
            let elapsed = start.elapsed().as_secs();
            while second <= elapsed {
                shared.lock().push(users.load(Ordering::Relaxed));
                second += 1;
            }
            let (done, ok, blocks) = tracker.progress();
            b.set_position(elapsed);
            b.set_message(format!(
                "{ok} ok of {done} done, {} waiting, {blocks} blocks, {} users",
                tracker.waiting(),
                users.load(Ordering::Relaxed)
            ));
        }
    });
    Watch {
        task,
        users: series,
        bar,
    }
}

async fn finish(
    args: &RunArgs,
    tracker: &Tracker,
    watch: Watch,
    sampler: procs::Sampler,
) -> (Vec<usize>, Vec<procs::NodeUsage>) {
    watch.bar.set_message("waiting for the last transactions");
    tracker.drain(Duration::from_secs(args.drain)).await;
    watch.task.abort();
    watch.bar.finish_and_clear();
    let users = watch.users.lock().clone();
    (users, sampler.finish())
}

/// Every request of an open-loop run, signed now: each sender's in nonce order, senders
/// interleaved round-robin (so consecutive requests come from different accounts).
fn presign(args: &RunArgs, rpc: &Rpc, cast: Cast, rate: u64) -> anyhow::Result<Vec<Job>> {
    let total = usize::try_from(rate.saturating_mul(args.duration)).unwrap_or(usize::MAX);
    let senders = cast.senders.len();
    let per_sender = total.div_ceil(senders);
    let chain = rpc.chain_id;
    let (workload, mix) = (args.workload, args.mix);
    let mut columns: Vec<anyhow::Result<Vec<Job>>> = Vec::with_capacity(senders);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut work: Vec<(usize, Sender)> = cast.senders.into_iter().enumerate().collect();
    let chunk = senders.div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = work
            .chunks_mut(chunk)
            .map(|part| {
                let (patients, records) = (&cast.patients, &cast.records);
                scope.spawn(move || {
                    part.iter_mut()
                        .map(|(i, sender)| {
                            (0..per_sender)
                                .map(|n| {
                                    job(
                                        workload,
                                        mix,
                                        chain,
                                        patients.get(*i).copied(),
                                        records.get(*i).copied(),
                                        sender,
                                        n,
                                    )
                                })
                                .collect::<anyhow::Result<Vec<Job>>>()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for handle in handles {
            match handle.join() {
                Ok(part) => columns.extend(part),
                Err(_) => columns.push(Err(anyhow::anyhow!("a signing thread panicked"))),
            }
        }
    });
    let mut columns: Vec<std::vec::IntoIter<Job>> = columns
        .into_iter()
        .map(|c| c.map(Vec::into_iter))
        .collect::<anyhow::Result<_>>()?;
    let mut jobs = Vec::with_capacity(total);
    for _ in 0..per_sender {
        jobs.extend(columns.iter_mut().filter_map(Iterator::next));
    }
    jobs.truncate(total);
    Ok(jobs)
}

/// Submits `jobs` at `rate` per second for `duration` seconds. Each request is timed from
/// its scheduled send time, so a client or node that falls behind shows up as latency
/// rather than as a lower rate (no coordinated omission).
async fn open_loop(
    rpc: &Arc<Rpc>,
    tracker: &Arc<Tracker>,
    jobs: Vec<Job>,
    rate: u64,
    duration: u64,
) {
    let start = tracker.restart();
    let in_flight = Arc::new(Semaphore::new(64));
    let mut next = 0usize;
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let end = start + Duration::from_secs(duration);
    while next < jobs.len() && Instant::now() < end {
        tick.tick().await;
        let due = ((start.elapsed().as_secs_f64() * rate as f64) as usize).min(jobs.len());
        let mut batch = Vec::new();
        for (j, job) in jobs.iter().enumerate().take(due).skip(next) {
            let scheduled = start + Duration::from_secs_f64(j as f64 / rate as f64);
            match job {
                Job::Tx(op, tx) => {
                    tracker.expect_at(tx.hash, Some(*op), None, scheduled);
                    batch.push(tx.clone());
                }
                Job::Call(op, data) => {
                    let (rpc, tracker, op, data) =
                        (rpc.clone(), tracker.clone(), *op, data.clone());
                    let permit = in_flight.clone();
                    tokio::spawn(async move {
                        let _permit = permit.acquire_owned().await;
                        let outcome = match rpc.call(RECORDS_ADDRESS, data).await {
                            Ok(_) => Outcome::Ok,
                            Err(why) => Outcome::Failed(why),
                        };
                        tracker.record(op, scheduled, outcome);
                    });
                }
            }
        }
        next = next.max(due);
        if !batch.is_empty() {
            let (rpc, tracker) = (rpc.clone(), tracker.clone());
            let permit = in_flight.clone();
            tokio::spawn(async move {
                let _permit = permit.acquire_owned().await;
                let results = rpc.send(&batch).await;
                for (tx, result) in batch.iter().zip(results) {
                    if let Err(why) = result {
                        tracker.refused(tx.hash, why);
                    }
                }
            });
        }
    }
}

/// Sends one transaction and waits for its block. `false` when it was refused or never
/// included (the caller resynchronises its nonce).
async fn send_and_wait(
    rpc: &Rpc,
    tracker: &Tracker,
    op: Op,
    tx: &SignedTx,
) -> Option<tracker::Included> {
    let (notify, wait) = oneshot::channel();
    tracker.expect(tx.hash, Some(op), Some(notify));
    if let Some(Err(why)) = rpc.send(std::slice::from_ref(tx)).await.pop() {
        tracker.refused(tx.hash, why);
        return None;
    }
    tokio::time::timeout(Duration::from_secs(60), wait)
        .await
        .ok()?
        .ok()
}

async fn call_timed(rpc: &Rpc, tracker: &Tracker, op: Op, data: Bytes) -> Option<Bytes> {
    let sent = Instant::now();
    match rpc.call(RECORDS_ADDRESS, data).await {
        Ok(out) => {
            tracker.record(op, sent, Outcome::Ok);
            Some(out)
        }
        Err(why) => {
            tracker.record(op, sent, Outcome::Failed(why));
            None
        }
    }
}

async fn resync(rpc: &Rpc, sender: &mut Sender) {
    if let Ok(nonces) = rpc.nonces(&[sender.key.address()]).await
        && let Some(n) = nonces.first()
    {
        sender.nonce = *n;
    }
}

/// N users at once, each with its own account, until `duration` ends.
async fn closed_loop(
    args: &RunArgs,
    rpc: &Arc<Rpc>,
    tracker: &Arc<Tracker>,
    cast: Cast,
    users: &Arc<AtomicUsize>,
) {
    let start = tracker.restart();
    let end = start + Duration::from_secs(args.duration);
    let mut tasks = Vec::new();
    for (i, mut sender) in cast.senders.into_iter().enumerate() {
        let (rpc, tracker, users) = (rpc.clone(), tracker.clone(), users.clone());
        let (patient, record) = (cast.patients.get(i).copied(), cast.records.get(i).copied());
        let (workload, mix, chain) = (args.workload, args.mix, rpc.chain_id);
        tasks.push(tokio::spawn(async move {
            users.fetch_add(1, Ordering::Relaxed);
            let mut n = 0;
            while Instant::now() < end {
                let Ok(job) = job(workload, mix, chain, patient, record, &mut sender, n) else {
                    break;
                };
                n += 1;
                match job {
                    Job::Tx(op, tx) => {
                        if send_and_wait(&rpc, &tracker, op, &tx).await.is_none() {
                            resync(&rpc, &mut sender).await;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                    Job::Call(op, data) => {
                        call_timed(&rpc, &tracker, op, data).await;
                    }
                }
            }
            users.fetch_sub(1, Ordering::Relaxed);
        }));
    }
    join_until(tasks, end + Duration::from_secs(args.drain)).await;
}

/// Waits for `tasks` until `deadline`, then aborts what is left.
async fn join_until(tasks: Vec<tokio::task::JoinHandle<()>>, deadline: Instant) {
    for task in tasks {
        let left = deadline.saturating_duration_since(Instant::now());
        let abort = task.abort_handle();
        if tokio::time::timeout(left, task).await.is_err() {
            abort.abort();
        }
    }
}

/// The papers' profile: users join linearly from `ramp_from` to `ramp_to` over
/// `ramp_seconds`; each creates a record, reads it, corrects it (a new record superseding
/// it) and lists its history, again and again, until `duration` ends.
async fn profile(
    args: &RunArgs,
    rpc: &Arc<Rpc>,
    tracker: &Arc<Tracker>,
    cast: Cast,
    users: &Arc<AtomicUsize>,
) {
    let start = tracker.restart();
    let end = start + Duration::from_secs(args.duration);
    let (from, to, ramp) = (args.ramp_from, args.ramp_to, args.ramp_seconds as f64);
    let mut tasks = Vec::new();
    for (i, mut sender) in cast.senders.into_iter().enumerate() {
        let Some(patient) = cast.patients.get(i).copied() else {
            break;
        };
        let offset = if i < from || to == from {
            0.0
        } else {
            (i - from) as f64 / (to - from) as f64 * ramp
        };
        let join_at = start + Duration::from_secs_f64(offset);
        let (rpc, tracker, users, chain) =
            (rpc.clone(), tracker.clone(), users.clone(), rpc.chain_id);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(join_at.into()).await;
            users.fetch_add(1, Ordering::Relaxed);
            while Instant::now() < end {
                if user_round(&rpc, &tracker, chain, &mut sender, patient)
                    .await
                    .is_none()
                {
                    resync(&rpc, &mut sender).await;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            users.fetch_sub(1, Ordering::Relaxed);
        }));
    }
    join_until(tasks, end + Duration::from_secs(args.drain)).await;
}

/// One create / read / update / history round of a profile user.
async fn user_round(
    rpc: &Rpc,
    tracker: &Tracker,
    chain: u64,
    sender: &mut Sender,
    patient: Address,
) -> Option<()> {
    let tag = format!("bench/{}/{}", sender.key.address(), sender.nonce);
    let tx = sender
        .sign(
            chain,
            RECORDS_ADDRESS,
            U256::ZERO,
            WRITE_GAS,
            write_call(patient, &tag, 0),
        )
        .ok()?;
    let created = send_and_wait(rpc, tracker, Op::Write, &tx).await?;
    let id = record_id(&created.logs)?;
    call_timed(rpc, tracker, Op::Read, read_call(id)).await?;
    let tag = format!("bench/{}/{}", sender.key.address(), sender.nonce);
    let tx = sender
        .sign(
            chain,
            RECORDS_ADDRESS,
            U256::ZERO,
            WRITE_GAS,
            write_call(patient, &tag, id),
        )
        .ok()?;
    let updated = send_and_wait(rpc, tracker, Op::Update, &tx).await?;
    let new_id = record_id(&updated.logs)?;
    call_timed(rpc, tracker, Op::History, history_call(new_id)).await?;
    Some(())
}
