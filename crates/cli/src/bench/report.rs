//! Results of a load run: per-operation latency percentiles, sustained throughput,
//! failures by reason, node CPU and memory, and a per-second time series, written as JSON,
//! a markdown table and SVG plots.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use super::procs::NodeUsage;
use super::tracker::BlockSeen;

/// What a measured request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Op {
    /// A plain value transfer.
    Transfer,
    /// A new medical record (`PatientRecord.healthRecordStore`).
    Write,
    /// A correction of a record (`addRecord` with `supersedes`).
    Update,
    /// `eth_call` of `healthRecordGet`.
    Read,
    /// `eth_call` of `historyOf` (a record's correction chain).
    History,
}

impl Op {
    /// Whether the request is a transaction (timed to inclusion) rather than a call.
    pub(crate) const fn is_tx(self) -> bool {
        matches!(self, Self::Transfer | Self::Write | Self::Update)
    }
}

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Included with status 1, or a call answered.
    Ok,
    /// Included, but the transaction reverted.
    Reverted,
    /// The node refused it at submission (its message).
    Refused(String),
    /// A call failed (its message).
    Failed(String),
    /// Not included before the run ended.
    NotIncluded,
}

impl Outcome {
    fn reason(&self) -> Option<String> {
        match self {
            Self::Ok => None,
            Self::Reverted => Some("reverted".into()),
            Self::Refused(why) => Some(format!("refused: {why}")),
            Self::Failed(why) => Some(format!("failed: {why}")),
            Self::NotIncluded => Some("not included before the end".into()),
        }
    }
}

/// One measured request.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub(crate) op: Op,
    /// Submission time, seconds since the measured phase began.
    pub(crate) at: f64,
    /// Submission to inclusion (transactions) or to the answer (calls), seconds.
    pub(crate) latency: f64,
    pub(crate) outcome: Outcome,
}

/// Latency and counts of one operation.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct OpSummary {
    pub(crate) op: String,
    pub(crate) total: usize,
    pub(crate) ok: usize,
    pub(crate) failures: BTreeMap<String, usize>,
    /// Successful requests per second completed inside the measured window.
    pub(crate) per_second: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p95_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
    pub(crate) mean_ms: f64,
}

/// One second of the run.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Second {
    pub(crate) t: u64,
    /// Requests submitted in this second.
    pub(crate) submitted: usize,
    /// Successful transactions included (calls answered) in this second.
    pub(crate) completed: usize,
    pub(crate) failed: usize,
    /// Latency of the successful requests submitted in this second.
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    /// Concurrent users (closed loop).
    pub(crate) users: usize,
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    pub(crate) label: String,
    pub(crate) workload: String,
    pub(crate) load: String,
    pub(crate) command: String,
    pub(crate) machine: String,
    pub(crate) date: String,
    /// Seconds of submission.
    pub(crate) duration_s: f64,
    /// Requests submitted before this are left out of the percentiles and throughput.
    pub(crate) warmup_s: f64,
    pub(crate) submitted: usize,
    /// Successful transactions per second included in the window (all transaction kinds).
    pub(crate) sustained_tx_per_s: f64,
    pub(crate) ops: Vec<OpSummary>,
    /// All transactions together.
    pub(crate) transactions: Option<OpSummary>,
    pub(crate) blocks: usize,
    pub(crate) mean_block_interval_ms: f64,
    pub(crate) max_block_transactions: usize,
    pub(crate) nodes: Vec<NodeUsage>,
    pub(crate) series: Vec<Second>,
}

/// The `q`-quantile (nearest rank) of sorted `values`.
pub(crate) fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summarize(name: String, samples: &[&Sample], window: (f64, f64)) -> OpSummary {
    let (from, to) = window;
    let mut latencies: Vec<f64> = Vec::new();
    let mut failures = BTreeMap::new();
    let mut completed_in_window = 0usize;
    // Throughput counts every success completed inside the window, whenever it was sent;
    // latency and failures count the requests sent after the warm-up.
    for s in samples {
        let done = s.at + s.latency;
        if s.outcome == Outcome::Ok && done >= from && done <= to {
            completed_in_window += 1;
        }
    }
    let measured: Vec<&&Sample> = samples.iter().filter(|s| s.at >= from).collect();
    for s in &measured {
        match s.outcome.reason() {
            None => latencies.push(s.latency),
            Some(reason) => *failures.entry(reason).or_insert(0) += 1,
        }
    }
    latencies.sort_by(f64::total_cmp);
    let ms = |v: f64| (v * 1e5).round() / 100.0;
    let mean = if latencies.is_empty() {
        0.0
    } else {
        latencies.iter().sum::<f64>() / latencies.len() as f64
    };
    let span = (to - from).max(1e-9);
    OpSummary {
        op: name,
        total: measured.len(),
        ok: latencies.len(),
        failures,
        per_second: (completed_in_window as f64 / span * 10.0).round() / 10.0,
        p50_ms: ms(quantile(&latencies, 0.50)),
        p95_ms: ms(quantile(&latencies, 0.95)),
        p99_ms: ms(quantile(&latencies, 0.99)),
        max_ms: ms(latencies.last().copied().unwrap_or(0.0)),
        mean_ms: ms(mean),
    }
}

/// What the caller knows about the run besides its samples.
pub(crate) struct RunInfo {
    pub(crate) label: String,
    pub(crate) workload: String,
    pub(crate) load: String,
    pub(crate) command: String,
    pub(crate) duration_s: f64,
    pub(crate) warmup_s: f64,
    /// Concurrent users at each second (closed loop).
    pub(crate) users: Vec<usize>,
}

impl Report {
    pub(crate) fn build(
        info: RunInfo,
        samples: &[Sample],
        blocks: &[BlockSeen],
        nodes: Vec<NodeUsage>,
    ) -> Self {
        let window = (info.warmup_s, info.duration_s);
        let mut by_op: BTreeMap<Op, Vec<&Sample>> = BTreeMap::new();
        for s in samples {
            by_op.entry(s.op).or_default().push(s);
        }
        let ops: Vec<OpSummary> = by_op
            .iter()
            .map(|(op, list)| summarize(format!("{op:?}").to_lowercase(), list, window))
            .collect();
        let txs: Vec<&Sample> = samples.iter().filter(|s| s.op.is_tx()).collect();
        let transactions =
            (!txs.is_empty()).then(|| summarize("all transactions".into(), &txs, window));
        let seconds = (info.duration_s.ceil() as usize).max(1) + 1;
        let mut series: Vec<Second> = (0..seconds)
            .map(|t| Second {
                t: t as u64,
                users: info.users.get(t).copied().unwrap_or(0),
                ..Second::default()
            })
            .collect();
        let mut latencies: Vec<Vec<f64>> = vec![Vec::new(); seconds];
        for s in samples {
            let i = (s.at as usize).min(seconds - 1);
            series[i].submitted += 1;
            if s.outcome == Outcome::Ok {
                latencies[i].push(s.latency);
                let done = ((s.at + s.latency) as usize).min(seconds - 1);
                series[done].completed += 1;
            } else {
                series[i].failed += 1;
            }
        }
        for (second, mut l) in series.iter_mut().zip(latencies) {
            l.sort_by(f64::total_cmp);
            second.p50_ms = (quantile(&l, 0.5) * 1e3).round();
            second.p99_ms = (quantile(&l, 0.99) * 1e3).round();
        }
        let intervals: Vec<f64> = blocks.windows(2).map(|w| w[1].at - w[0].at).collect();
        let mean_block_interval_ms = if intervals.is_empty() {
            0.0
        } else {
            (intervals.iter().sum::<f64>() / intervals.len() as f64 * 1e3).round()
        };
        Self {
            label: info.label,
            workload: info.workload,
            load: info.load,
            command: info.command,
            machine: machine(),
            date: date(),
            duration_s: info.duration_s,
            warmup_s: info.warmup_s,
            submitted: samples.len(),
            sustained_tx_per_s: transactions.as_ref().map_or(0.0, |t| t.per_second),
            ops,
            transactions,
            blocks: blocks.len(),
            mean_block_interval_ms,
            max_block_transactions: blocks.iter().map(|b| b.transactions).max().unwrap_or(0),
            nodes,
            series,
        }
    }

    /// The markdown table of the run (the rows `docs/benchmarks.md` collects).
    pub(crate) fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "### {}\n\n{} — {}, {:.0} s (first {:.0} s left out), {}\n",
            self.label, self.workload, self.load, self.duration_s, self.warmup_s, self.date
        );
        let _ = writeln!(out, "```sh\n{}\n```\n", self.command);
        let _ = writeln!(
            out,
            "| operation | requests | ok | ok/s | p50 | p95 | p99 | max | failures |\n|---|---|---|---|---|---|---|---|---|"
        );
        for op in self.ops.iter().chain(self.transactions.iter()) {
            let failures = if op.failures.is_empty() {
                "0".to_string()
            } else {
                op.failures
                    .iter()
                    .map(|(why, n)| format!("{n} {why}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.1} | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {} |",
                op.op,
                op.total,
                op.ok,
                op.per_second,
                op.p50_ms,
                op.p95_ms,
                op.p99_ms,
                op.max_ms,
                failures
            );
        }
        let _ = writeln!(
            out,
            "\nBlocks: {} (mean interval {} ms, largest {} transactions).\n",
            self.blocks, self.mean_block_interval_ms, self.max_block_transactions
        );
        if !self.nodes.is_empty() {
            let _ = writeln!(
                out,
                "| process | CPU mean | CPU max | RSS max |\n|---|---|---|---|"
            );
            for n in &self.nodes {
                let _ = writeln!(
                    out,
                    "| {} (pid {}) | {:.0} % | {:.0} % | {:.0} MB |",
                    n.label, n.pid, n.cpu_mean_percent, n.cpu_max_percent, n.rss_max_mb
                );
            }
            out.push('\n');
        }
        out
    }

    /// Writes `results.json`, `results.md`, `throughput.svg` and `latency.svg` in `dir`.
    pub(crate) fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let json = serde_json::to_string_pretty(self)?;
        std::fs::write(dir.join("results.json"), json)?;
        std::fs::write(dir.join("results.md"), self.markdown())?;
        super::plot::throughput(self, &dir.join("throughput.svg"))?;
        super::plot::latency(self, &dir.join("latency.svg"))?;
        Ok(())
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(String::new(), |kb| format!(", {} GiB", kb / 1024 / 1024));
    format!("{cores} × {cpu}{memory}")
}

fn date() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(op: Op, at: f64, latency: f64, outcome: Outcome) -> Sample {
        Sample {
            op,
            at,
            latency,
            outcome,
        }
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&v, 1.0), 100.0);
        assert_eq!(quantile(&[7.0], 0.5), 7.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }

    #[test]
    fn summaries_count_failures_by_reason_and_skip_the_warmup() {
        let samples = vec![
            sample(Op::Write, 0.5, 1.0, Outcome::Ok), // warm-up: only in the throughput
            sample(Op::Write, 2.0, 0.4, Outcome::Ok),
            sample(Op::Write, 2.5, 0.6, Outcome::Ok),
            sample(Op::Write, 3.0, 0.2, Outcome::Reverted),
            sample(Op::Write, 3.0, 0.0, Outcome::Refused("pool full".into())),
            sample(Op::Read, 3.0, 0.01, Outcome::Ok),
            sample(Op::Write, 9.5, 1.0, Outcome::Ok), // included after the window
        ];
        let info = RunInfo {
            label: "t".into(),
            workload: "writes".into(),
            load: "open".into(),
            command: "x".into(),
            duration_s: 10.0,
            warmup_s: 1.0,
            users: Vec::new(),
        };
        let report = Report::build(info, &samples, &[], Vec::new());
        let write = report.ops.iter().find(|o| o.op == "write").unwrap();
        assert_eq!(write.total, 5, "the warm-up write is left out");
        assert_eq!(write.ok, 3);
        assert_eq!(write.failures["reverted"], 1);
        assert_eq!(write.failures["refused: pool full"], 1);
        assert_eq!(write.p50_ms, 600.0);
        assert_eq!(write.max_ms, 1000.0);
        // Two writes completed inside [1, 10] s, one sent in the warm-up: 3 / 9 s.
        assert_eq!(write.per_second, 0.3);
        let all = report.transactions.as_ref().unwrap();
        assert_eq!(all.total, 5, "reads are not transactions");
        assert_eq!(report.series[2].submitted, 2);
        assert_eq!(report.series[3].failed, 2);
        assert!(report.markdown().contains("| write | 5 | 3 |"));
    }
}
