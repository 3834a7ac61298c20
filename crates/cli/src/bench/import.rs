//! Bulk migration of historical records through transactions: `healthchain records
//! import FILE` (CSV or JSON lines) and the load tool's `bench prepare-import`, which sets
//! up doctors with their patients' consent and writes such a file.
//!
//! The file is read twice: a first pass checks every line (nothing is sent if one is
//! bad), the second signs and sends, keeping a bounded window in flight, each author's
//! transactions in nonce order, inclusion tracked from `newHeads`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use alloy_primitives::aliases::U40;
use alloy_primitives::{Address, U256};
use alloy_sol_types::SolCall;
use anyhow::{Context, bail, ensure};
use clap::{Args, ValueEnum};
use healthchain_blobs::Cid;
use healthchain_contracts::{Kind, PatientRecord};
use healthchain_ibft::NodeKey;
use indicatif::{ProgressBar, ProgressStyle};
use parking_lot::Mutex;
use serde::Deserialize;
use tokio::sync::oneshot;

use super::report::{Op, Report, RunInfo};
use super::rpc::{Rpc, Sender, SignedTx, WRITE_GAS};
use super::tracker::Tracker;
use super::{procs, setup};

/// Most transactions of one author in flight (below the pool's default
/// `max-nonce-distance` of 1,024).
const PER_AUTHOR: usize = 900;
/// Transactions per submission batch.
const BATCH: usize = 200;

/// File formats of `records import`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Comma-separated, with a header line naming the columns.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

/// Options of `healthchain records import`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ImportArgs {
    /// The records: CSV with a header (`patient,kind,cid[,author][,supersedes]`) or JSON
    /// lines with those fields.
    pub(crate) file: PathBuf,
    /// The file's format (by default from its extension: .csv, else JSON lines).
    #[arg(long, value_enum)]
    pub(crate) format: Option<Format>,
    /// File of authors' private keys, one hex key per line (repeatable; `--key-file`
    /// adds one more). A record is signed by the key of its `author`; with a single key
    /// the column may be left out.
    #[arg(long = "keys")]
    pub(crate) key_files: Vec<PathBuf>,
    /// WebSocket endpoint (inclusion is followed from `newHeads`).
    #[arg(long, default_value = "ws://127.0.0.1:8546")]
    pub(crate) ws_url: String,
    /// Most transactions in flight.
    #[arg(long, default_value_t = 8_000)]
    pub(crate) window: usize,
    /// Skip the first N records (to resume an interrupted import).
    #[arg(long, default_value_t = 0)]
    pub(crate) skip: u64,
    /// A node process to report the CPU and RSS of (repeatable).
    #[arg(long = "pid")]
    pub(crate) pids: Vec<u32>,
    /// Write the run's results.json, results.md and plots here.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub(crate) quiet: bool,
}

/// One record of the file.
#[derive(Debug, Clone)]
struct Row {
    line: u64,
    patient: Address,
    kind: Kind,
    cid: Cid,
    author: Option<Address>,
    supersedes: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonRow {
    patient: Address,
    kind: String,
    cid: String,
    #[serde(default)]
    author: Option<Address>,
    #[serde(default)]
    supersedes: Option<u64>,
}

fn format_of(path: &Path, format: Option<Format>) -> Format {
    format.unwrap_or_else(|| {
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
        {
            Format::Csv
        } else {
            Format::Jsonl
        }
    })
}

fn parse_kind(text: &str) -> anyhow::Result<Kind> {
    Kind::from_str(text.trim()).map_err(|e| anyhow::anyhow!("{e}"))
}

fn parse_cid(text: &str) -> anyhow::Result<Cid> {
    Cid::from_str(text.trim()).map_err(|e| anyhow::anyhow!("{e}"))
}

/// The rows of `path`, each parsed or failed with its line number.
fn rows(path: &Path, format: Format) -> anyhow::Result<impl Iterator<Item = anyhow::Result<Row>>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut lines = BufReader::new(file).lines().enumerate();
    let mut columns: Option<Vec<String>> = None;
    if format == Format::Csv {
        for (i, line) in lines.by_ref() {
            let line = line.with_context(|| format!("line {}: unreadable", i + 1))?;
            if !line.trim().is_empty() {
                columns = Some(
                    line.split(',')
                        .map(|c| c.trim().to_ascii_lowercase())
                        .collect(),
                );
                break;
            }
        }
        let Some(cols) = &columns else {
            bail!("{}: empty (a CSV file needs a header line)", path.display());
        };
        for required in ["patient", "kind", "cid"] {
            ensure!(
                cols.iter().any(|c| c == required),
                "the CSV header has no {required:?} column"
            );
        }
        if let Some(bad) = cols
            .iter()
            .find(|c| !["patient", "kind", "cid", "author", "supersedes"].contains(&c.as_str()))
        {
            bail!("unknown CSV column {bad:?} (expected patient, kind, cid, author, supersedes)");
        }
    }
    Ok(lines.filter_map(move |(i, line)| {
        let number = i as u64 + 1;
        let line = match line {
            Ok(line) if line.trim().is_empty() => return None,
            Ok(line) => line,
            Err(err) => return Some(Err(anyhow::anyhow!("line {number}: unreadable: {err}"))),
        };
        let parsed = match &columns {
            Some(cols) => csv_row(cols, &line, number),
            None => json_row(&line, number),
        };
        Some(parsed.with_context(|| format!("line {number}")))
    }))
}

fn csv_row(columns: &[String], line: &str, number: u64) -> anyhow::Result<Row> {
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    ensure!(
        fields.len() == columns.len(),
        "{} fields where the header has {}",
        fields.len(),
        columns.len()
    );
    let get = |name: &str| columns.iter().position(|c| c == name).map(|i| fields[i]);
    let patient = get("patient").unwrap_or_default();
    Ok(Row {
        line: number,
        patient: patient
            .parse()
            .with_context(|| format!("patient {patient:?} is not an address"))?,
        kind: parse_kind(get("kind").unwrap_or_default())?,
        cid: parse_cid(get("cid").unwrap_or_default())?,
        author: match get("author") {
            Some(a) if !a.is_empty() => Some(
                a.parse()
                    .with_context(|| format!("author {a:?} is not an address"))?,
            ),
            _ => None,
        },
        supersedes: match get("supersedes") {
            Some(s) if !s.is_empty() => s
                .parse()
                .with_context(|| format!("supersedes {s:?} is not a record id"))?,
            _ => 0,
        },
    })
}

fn json_row(line: &str, number: u64) -> anyhow::Result<Row> {
    let row: JsonRow = serde_json::from_str(line).context("not a record object")?;
    Ok(Row {
        line: number,
        patient: row.patient,
        kind: parse_kind(&row.kind)?,
        cid: parse_cid(&row.cid)?,
        author: row.author,
        supersedes: row.supersedes.unwrap_or(0),
    })
}

/// The keys of the files, one hex key per non-empty line.
fn load_keys(files: &[PathBuf]) -> anyhow::Result<Vec<NodeKey>> {
    let mut keys = Vec::new();
    for path in files {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            keys.push(healthchain_node::key_from_hex(line).with_context(|| {
                format!(
                    "{} line {}: not a 32-byte secp256k1 private key in hex",
                    path.display(),
                    i + 1
                )
            })?);
        }
    }
    ensure!(!keys.is_empty(), "the key files hold no key");
    Ok(keys)
}

/// Which key signs `row`.
fn author_of(row: &Row, index: &HashMap<Address, usize>, single: bool) -> anyhow::Result<usize> {
    match row.author {
        Some(author) => index
            .get(&author)
            .copied()
            .with_context(|| format!("line {}: no key given for author {author}", row.line)),
        None if single => Ok(0),
        None => bail!(
            "line {}: no author, and more than one key was given",
            row.line
        ),
    }
}

/// `healthchain records import FILE`.
pub(crate) async fn import(
    args: &ImportArgs,
    rpc_args: &crate::client::RpcArgs,
    records: Address,
) -> anyhow::Result<()> {
    let format = format_of(&args.file, args.format);
    ensure!(args.window > 0, "--window must be at least 1");
    let mut files = args.key_files.clone();
    files.extend(rpc_args.key_file.clone());
    ensure!(
        !files.is_empty(),
        "give the authors' keys: --keys FILE or --key-file FILE"
    );
    let keys = load_keys(&files)?;
    let index: HashMap<Address, usize> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.address(), i))
        .collect();
    let single = keys.len() == 1;

    // Pass 1: every line must parse and have a signer before anything is sent.
    let mut total = 0u64;
    for row in rows(&args.file, format)? {
        let row = row?;
        author_of(&row, &index, single)?;
        total += 1;
    }
    ensure!(
        args.skip <= total,
        "--skip {} is past the file's {total} records",
        args.skip
    );
    let todo = total - args.skip;
    eprintln!(
        "{}: {total} records, all valid; importing {todo}",
        args.file.display()
    );

    let rpc = Rpc::connect(std::slice::from_ref(&rpc_args.rpc_url)).await?;
    let addresses: Vec<Address> = keys.iter().map(NodeKey::address).collect();
    let nonces = rpc.nonces(&addresses).await?;
    let mut senders: Vec<Sender> = keys
        .into_iter()
        .zip(nonces)
        .map(|(key, nonce)| Sender { key, nonce })
        .collect();
    let tracker = Arc::new(Tracker::new());
    let follower = super::tracker::follow(&args.ws_url, tracker.clone()).await?;
    let sampler = procs::Sampler::start(procs::nodes_and_self(
        &args.pids,
        "healthchain records import",
    ));
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(todo)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} records  {per_sec}  eta {eta}  {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );

    // Pass 2: sign and send.
    let start = tracker.restart();
    let mut pipe = Pipeline {
        rpc: &rpc,
        tracker: tracker.clone(),
        batch: Vec::new(),
        waits: Vec::new(),
        in_flight: Arc::new(senders.iter().map(|_| AtomicUsize::new(0)).collect()),
        reverted: Arc::default(),
        done: Arc::default(),
        bar: bar.clone(),
    };
    let mut refused: Option<Refusal> = None;
    let mut sent = 0u64;
    let chain = rpc.chain_id;
    for row in rows(&args.file, format)?.skip(usize::try_from(args.skip).unwrap_or(usize::MAX)) {
        let row = row?;
        let a = author_of(&row, &index, single)?;
        while refused.is_none()
            && (pipe.in_flight[a].load(Ordering::Relaxed) >= PER_AUTHOR
                || tracker.waiting() >= args.window)
        {
            refused = pipe.flush().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
            pipe.show_progress();
        }
        if refused.is_some() {
            break;
        }
        let data = PatientRecord::addRecordCall {
            patient: row.patient,
            kind: row.kind as u8,
            cid: row.cid.to_string(),
            contentHash: row.cid.sha256(),
            supersedes: U40::from(row.supersedes),
        }
        .abi_encode();
        let tx = senders[a].sign(chain, records, U256::ZERO, WRITE_GAS, data.into())?;
        pipe.push(a, row.line, tx);
        sent += 1;
        if pipe.batch.len() >= BATCH {
            refused = pipe.flush().await;
            if refused.is_some() {
                break;
            }
        }
    }
    if refused.is_none() {
        refused = pipe.flush().await;
    }
    let Pipeline { reverted, done, .. } = pipe;
    bar.set_message("waiting for the last blocks");
    let deadline = Instant::now() + Duration::from_secs(120);
    while tracker.waiting() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        bar.set_position(done.load(Ordering::Relaxed) as u64);
    }
    bar.finish_and_clear();
    let elapsed = start.elapsed().as_secs_f64();
    follower.abort();
    let nodes = sampler.finish();
    let (samples, blocks) = tracker.finish();
    let info = RunInfo {
        label: format!("records import of {}", args.file.display()),
        workload: "import".into(),
        load: format!("{} authors, window {}", senders.len(), args.window),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        duration_s: elapsed.ceil(),
        warmup_s: 0.0,
        users: Vec::new(),
    };
    let report = Report::build(info, &samples, &blocks, nodes);
    print!("{}", report.markdown());
    if let Some(dir) = &args.out {
        report.write(dir)?;
    }
    let reverted = reverted.lock().clone();
    let ok = report.transactions.as_ref().map_or(0, |t| t.ok);
    println!(
        "imported {ok} of {sent} records sent in {elapsed:.1} s ({:.0} records/s); {} reverted",
        ok as f64 / elapsed.max(1e-9),
        reverted.len()
    );
    if !reverted.is_empty() {
        let shown: Vec<String> = reverted.iter().take(20).map(u64::to_string).collect();
        println!("reverted lines (first 20): {}", shown.join(", "));
    }
    if let Some((line, why, accepted_after)) = refused {
        bail!(
            "the node refused line {line}: {why}. Every record before it was accepted; {accepted_after} later \
             records of the same batch were accepted too. Fix the cause and resume with --skip {}",
            line_index(&args.file, format, line)?
        );
    }
    ensure!(
        reverted.is_empty(),
        "{} records reverted (see the lines above)",
        reverted.len()
    );
    ensure!(
        ok as u64 == sent,
        "{} records were not included within 120 s of the last send",
        sent - ok as u64
    );
    Ok(())
}

/// How many records precede the one on `line`.
fn line_index(path: &Path, format: Format, line: u64) -> anyhow::Result<u64> {
    let mut n = 0;
    for row in rows(path, format)? {
        if row?.line >= line {
            break;
        }
        n += 1;
    }
    Ok(n)
}

/// The first record the node refused: its line, the reason, and how many later records
/// of the same batch it accepted.
type Refusal = (u64, String, usize);

/// Records signed and sent but not yet included, shared with the tasks that wait for
/// their blocks.
struct Pipeline<'a> {
    rpc: &'a Rpc,
    tracker: Arc<Tracker>,
    /// Signed, not sent yet.
    batch: Vec<SignedTx>,
    /// (author, line, inclusion) of each batched record.
    waits: Vec<(usize, u64, oneshot::Receiver<super::tracker::Included>)>,
    /// Records in flight per author.
    in_flight: Arc<Vec<AtomicUsize>>,
    /// Lines whose transaction reverted.
    reverted: Arc<Mutex<Vec<u64>>>,
    /// Records included.
    done: Arc<AtomicUsize>,
    bar: ProgressBar,
}

impl Pipeline<'_> {
    /// Adds author `a`'s record from `line` to the next batch.
    fn push(&mut self, a: usize, line: u64, tx: SignedTx) {
        let (notify, wait) = oneshot::channel();
        self.tracker.expect(tx.hash, Some(Op::Write), Some(notify));
        self.in_flight[a].fetch_add(1, Ordering::Relaxed);
        self.batch.push(tx);
        self.waits.push((a, line, wait));
    }

    fn show_progress(&self) {
        self.bar
            .set_position(self.done.load(Ordering::Relaxed) as u64);
    }

    /// Sends the batch (if any); a task then waits for each record's block. Returns the
    /// first refusal.
    async fn flush(&mut self) -> Option<Refusal> {
        if self.batch.is_empty() {
            return None;
        }
        let txs = std::mem::take(&mut self.batch);
        let waits = std::mem::take(&mut self.waits);
        let results = self.rpc.send(&txs).await;
        let mut refused: Option<Refusal> = None;
        let mut keep = Vec::with_capacity(waits.len());
        for ((tx, result), (a, line, wait)) in txs.iter().zip(results).zip(waits) {
            match result {
                Ok(()) => {
                    if let Some(r) = refused.as_mut() {
                        r.2 += 1;
                    }
                    keep.push((a, line, wait));
                }
                Err(why) => {
                    self.tracker.refused(tx.hash, why.clone());
                    self.in_flight[a].fetch_sub(1, Ordering::Relaxed);
                    if refused.is_none() {
                        refused = Some((line, why, 0));
                    }
                }
            }
        }
        let (in_flight, reverted, done) = (
            self.in_flight.clone(),
            self.reverted.clone(),
            self.done.clone(),
        );
        tokio::spawn(async move {
            for (a, line, wait) in keep {
                if let Ok(included) = wait.await {
                    if !included.ok {
                        reverted.lock().push(line);
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
                in_flight[a].fetch_sub(1, Ordering::Relaxed);
            }
        });
        self.show_progress();
        refused
    }
}

/// Options of `healthchain bench prepare-import`.
#[derive(Debug, Clone, Args)]
pub(crate) struct PrepareArgs {
    /// JSON-RPC HTTP endpoint.
    #[arg(long = "rpc-url", default_value = "http://127.0.0.1:8545")]
    pub(crate) rpc_url: String,
    /// WebSocket endpoint.
    #[arg(long, default_value = "ws://127.0.0.1:8546")]
    pub(crate) ws_url: String,
    /// Records to write into the file.
    #[arg(long)]
    pub(crate) records: u64,
    /// Patients, each with its own doctor holding its consent (the records' authors).
    #[arg(long, default_value_t = 200)]
    pub(crate) patients: usize,
    /// The CSV file to write.
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// Where to write the doctors' keys (one per line; mode 0600).
    #[arg(long)]
    pub(crate) keys_out: PathBuf,
    /// Key file of the ministry and permissioning admin (the development Account #0 by
    /// default).
    #[arg(long)]
    pub(crate) admin_key_file: Option<PathBuf>,
    /// Seed of the accounts' keys.
    #[arg(long, default_value_t = 7)]
    pub(crate) seed: u64,
}

/// `healthchain bench prepare-import`.
pub(crate) async fn prepare(args: &PrepareArgs) -> anyhow::Result<()> {
    ensure!(args.patients > 0, "--patients must be at least 1");
    let admin = super::admin_key(args.admin_key_file.as_ref())?;
    let rpc = Rpc::connect(std::slice::from_ref(&args.rpc_url)).await?;
    let tracker = Arc::new(Tracker::new());
    let follower = super::tracker::follow(&args.ws_url, tracker.clone()).await?;
    let needs = setup::Needs {
        roles: true,
        ..setup::Needs::default()
    };
    let cast = setup::prepare(&rpc, &tracker, &admin, args.seed, args.patients, needs).await?;
    follower.abort();
    let mut keys = String::new();
    for s in &cast.senders {
        keys.push_str(&format!("{}\n", s.key.secret_bytes()));
    }
    write_private(&args.keys_out, keys.as_bytes())?;
    let file = std::fs::File::create(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut out = std::io::BufWriter::new(file);
    writeln!(out, "patient,kind,cid,author")?;
    for r in 0..args.records {
        let p = (r % args.patients as u64) as usize;
        let cid = Cid::of(format!("import/{}/{r}", args.seed).as_bytes());
        writeln!(
            out,
            "{},{},{cid},{}",
            cast.patients[p],
            Kind::Prescription,
            cast.senders[p].key.address()
        )?;
    }
    out.flush()?;
    eprintln!(
        "wrote {} records about {} patients to {} and their {} authors' keys to {}",
        args.records,
        args.patients,
        args.out.display(),
        args.patients,
        args.keys_out.display()
    );
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    const PATIENT: &str = "0x97e7a19ea732e04bB013E0b55487E6D40841C709";

    fn cid() -> String {
        Cid::of(b"x").to_string()
    }

    #[test]
    fn csv_and_json_lines_parse_to_the_same_rows() {
        let (_d, csv) = file(
            "r.csv",
            &format!("patient,kind,cid\n{PATIENT},prescription,{}\n\n", cid()),
        );
        let (_e, jsonl) = file(
            "r.jsonl",
            &format!(
                "{{\"patient\":\"{PATIENT}\",\"kind\":\"prescription\",\"cid\":\"{}\",\"supersedes\":3}}\n",
                cid()
            ),
        );
        let a: Vec<Row> = rows(&csv, format_of(&csv, None))
            .unwrap()
            .collect::<anyhow::Result<_>>()
            .unwrap();
        let b: Vec<Row> = rows(&jsonl, format_of(&jsonl, None))
            .unwrap()
            .collect::<anyhow::Result<_>>()
            .unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!(b.len(), 1);
        assert_eq!(
            (a[0].patient, a[0].kind, a[0].cid),
            (b[0].patient, b[0].kind, b[0].cid)
        );
        assert_eq!((a[0].line, a[0].supersedes, b[0].supersedes), (2, 0, 3));
    }

    #[test]
    fn bad_lines_are_refused_with_their_line_number() {
        for (text, expect) in [
            (
                format!(
                    "patient,kind,cid\n{PATIENT},prescription,{}\nnot-an-address,prescription,{}\n",
                    cid(),
                    cid()
                ),
                "line 3",
            ),
            (
                format!("patient,kind,cid\n{PATIENT},recipe,{}\n", cid()),
                "unknown record kind",
            ),
            (
                format!("patient,kind,cid\n{PATIENT},prescription,Qm123\n"),
                "base32",
            ),
            (
                format!("patient,kind\n{PATIENT},prescription\n"),
                "no \"cid\" column",
            ),
            (
                format!(
                    "patient,kind,cid,colour\n{PATIENT},prescription,{},red\n",
                    cid()
                ),
                "unknown CSV column",
            ),
            (
                format!("patient,kind,cid\n{PATIENT},prescription\n"),
                "2 fields where the header has 3",
            ),
        ] {
            let (_d, path) = file("r.csv", &text);
            let err = rows(&path, Format::Csv)
                .and_then(|r| r.collect::<anyhow::Result<Vec<_>>>())
                .unwrap_err();
            let message = format!("{err:#}");
            assert!(message.contains(expect), "{message:?} lacks {expect:?}");
        }
    }

    #[test]
    fn rows_need_a_key_for_their_author() {
        let key = super::super::rpc::bench_key(1, "t", 0);
        let index: HashMap<Address, usize> = [(key.address(), 0)].into();
        let mut row = Row {
            line: 9,
            patient: Address::ZERO,
            kind: Kind::Prescription,
            cid: Cid::of(b"x"),
            author: None,
            supersedes: 0,
        };
        assert_eq!(author_of(&row, &index, true).unwrap(), 0);
        assert!(
            author_of(&row, &index, false).is_err(),
            "no author with several keys"
        );
        row.author = Some(Address::repeat_byte(1));
        let err = author_of(&row, &index, true).unwrap_err().to_string();
        assert!(err.contains("line 9") && err.contains("no key"), "{err}");
        row.author = Some(key.address());
        assert_eq!(author_of(&row, &index, false).unwrap(), 0);
    }
}
