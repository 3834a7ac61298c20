//! `ibft-sim`: sweeps seeds of the IBFT 2.0 simulator and prints each failure's one-line
//! reproduction.
//!
//! ```sh
//! cargo run --release -p healthchain-ibft-sim -- --seeds 0..10000
//! cargo run --release -p healthchain-ibft-sim -- --seed 1234 --verbose
//! ```

use std::process::ExitCode;

fn parse_range(s: &str) -> Option<std::ops::Range<u64>> {
    let (a, b) = s.split_once("..")?;
    Some(a.parse().ok()?..b.parse().ok()?)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut seeds = 0..1000;
    let mut verbose = false;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--seeds" => match args.get(i + 1).and_then(|s| parse_range(s)) {
                Some(range) => {
                    seeds = range;
                    i += 1;
                }
                None => {
                    eprintln!("--seeds needs a range like 0..10000");
                    return ExitCode::from(2);
                }
            },
            "--seed" => match args.get(i + 1).and_then(|s| s.parse::<u64>().ok()) {
                Some(seed) => {
                    seeds = seed..seed + 1;
                    verbose = true;
                    i += 1;
                }
                None => {
                    eprintln!("--seed needs a number");
                    return ExitCode::from(2);
                }
            },
            "--verbose" => verbose = true,
            "-h" | "--help" => {
                println!("ibft-sim [--seeds A..B | --seed S] [--verbose]");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("unknown argument {other:?} (try --help)");
                return ExitCode::from(2);
            }
        }
        i += 1;
    }
    let started = std::time::Instant::now();
    let total = seeds.end.saturating_sub(seeds.start);
    let mut failures = 0u64;
    let mut max_round = 0;
    for seed in seeds {
        let scenario = healthchain_ibft_sim::Scenario::from_seed(seed);
        let summary = scenario.summary();
        match healthchain_ibft_sim::Sim::new(scenario).run() {
            Ok(report) => {
                max_round = max_round.max(report.max_round);
                if verbose {
                    println!(
                        "ok   {summary}: heights {:?}, {} events, {} delivered, {} crashes, max round {}, ended at {} ms",
                        report.heights,
                        report.events,
                        report.delivered,
                        report.crashes,
                        report.max_round,
                        report.end_ms
                    );
                }
            }
            Err(failure) => {
                failures += 1;
                println!("FAIL {failure}");
            }
        }
    }
    println!(
        "{total} seeds, {failures} failures, highest round reached {max_round}, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
