//! CPU and resident memory of the node processes (and of the load tool itself), sampled
//! from `/proc` once a second while a run is measured.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Serialize;

/// A process's usage over the measured phase.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct NodeUsage {
    pub(crate) label: String,
    pub(crate) pid: u32,
    /// Percent of one core (200 % = both cores of a 2-core machine).
    pub(crate) cpu_mean_percent: f64,
    pub(crate) cpu_max_percent: f64,
    pub(crate) rss_max_mb: f64,
    pub(crate) rss_end_mb: f64,
}

/// Clock ticks per second of `/proc/<pid>/stat` (USER_HZ: 100 on Linux for every
/// architecture it reports to user space).
const TICKS_PER_SECOND: f64 = 100.0;

/// The processes a run samples: the nodes (`node0`, `node1`, … in the order given) and
/// this tool itself, labelled `tool`.
pub(crate) fn nodes_and_self(pids: &[u32], tool: &str) -> Vec<(String, u32)> {
    let mut procs: Vec<(String, u32)> = pids
        .iter()
        .enumerate()
        .map(|(i, pid)| (format!("node{i}"), *pid))
        .collect();
    procs.push((tool.to_string(), std::process::id()));
    procs
}

/// Total user + system CPU ticks and resident bytes of `pid`, if it still runs.
pub(crate) fn read(pid: u32) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: fields are counted after its ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line: 11 and 12 after the name.
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .unwrap_or(0);
    Some((ticks, rss_kb * 1024))
}

#[derive(Default)]
struct Series {
    cpu: Vec<f64>,
    rss: Vec<u64>,
}

/// Samples the processes until dropped.
pub(crate) struct Sampler {
    procs: Vec<(String, u32)>,
    series: Arc<Mutex<Vec<Series>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    /// Starts sampling `procs` (label, pid) every second.
    pub(crate) fn start(procs: Vec<(String, u32)>) -> Self {
        let series = Arc::new(Mutex::new(
            procs.iter().map(|_| Series::default()).collect::<Vec<_>>(),
        ));
        let pids: Vec<u32> = procs.iter().map(|(_, pid)| *pid).collect();
        let shared = series.clone();
        let task = tokio::spawn(async move {
            let mut last: Vec<Option<(u64, Instant)>> = pids
                .iter()
                .map(|p| read(*p).map(|(t, _)| (t, Instant::now())))
                .collect();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                let mut all = shared.lock();
                for (i, pid) in pids.iter().enumerate() {
                    let Some((ticks, rss)) = read(*pid) else {
                        continue;
                    };
                    let now = Instant::now();
                    if let Some((before, at)) = last[i] {
                        let secs = now.duration_since(at).as_secs_f64().max(1e-3);
                        let cpu = ticks.saturating_sub(before) as f64 / TICKS_PER_SECOND / secs;
                        all[i].cpu.push(cpu * 100.0);
                    }
                    all[i].rss.push(rss);
                    last[i] = Some((ticks, now));
                }
            }
        });
        Self {
            procs,
            series,
            task,
        }
    }

    /// Stops sampling and summarises each process.
    pub(crate) fn finish(self) -> Vec<NodeUsage> {
        self.task.abort();
        let series = self.series.lock();
        let mb = |b: u64| (b as f64 / 1e6 * 10.0).round() / 10.0;
        self.procs
            .iter()
            .zip(series.iter())
            .map(|((label, pid), s)| NodeUsage {
                label: label.clone(),
                pid: *pid,
                cpu_mean_percent: if s.cpu.is_empty() {
                    0.0
                } else {
                    s.cpu.iter().sum::<f64>() / s.cpu.len() as f64
                },
                cpu_max_percent: s.cpu.iter().copied().fold(0.0, f64::max),
                rss_max_mb: mb(s.rss.iter().copied().max().unwrap_or(0)),
                rss_end_mb: mb(s.rss.last().copied().unwrap_or(0)),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_process_has_cpu_time_and_memory() {
        // Burn CPU until the kernel has counted a tick (10 ms), for at most 5 s.
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while super::read(std::process::id()).is_some_and(|(t, _)| t == 0)
            && started.elapsed() < std::time::Duration::from_secs(5)
        {
            for i in 0..1_000_000u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
        }
        let (ticks, rss) = super::read(std::process::id()).expect("/proc/self");
        assert!(ticks > 0);
        assert!(rss > 1_000_000, "rss {rss}");
        assert!(super::read(u32::MAX).is_none());
    }
}
