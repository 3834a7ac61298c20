//! The simulator's fixed seed set (run in CI), determinism, and proof that its checks bite.
//! A longer sweep: `cargo run --release -p healthchain-ibft-sim -- --seeds 0..10000`.

use healthchain_ibft_sim::{Fault, Scenario, Sim, Violation, run_seed};

/// Runs `seeds`, failing with every failing seed's one-line reproduction.
fn sweep(seeds: std::ops::Range<u64>) {
    let failures: Vec<String> = seeds
        .filter_map(|seed| run_seed(seed).err().map(|f| f.to_string()))
        .collect();
    assert!(
        failures.is_empty(),
        "{} failing seeds:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// 200 seeds in eight parts so they run in parallel.
#[test]
fn seeds_000_025_keep_every_invariant() {
    sweep(0..25);
}
#[test]
fn seeds_025_050_keep_every_invariant() {
    sweep(25..50);
}
#[test]
fn seeds_050_075_keep_every_invariant() {
    sweep(50..75);
}
#[test]
fn seeds_075_100_keep_every_invariant() {
    sweep(75..100);
}
#[test]
fn seeds_100_125_keep_every_invariant() {
    sweep(100..125);
}
#[test]
fn seeds_125_150_keep_every_invariant() {
    sweep(125..150);
}
#[test]
fn seeds_150_175_keep_every_invariant() {
    sweep(150..175);
}
#[test]
fn seeds_175_200_keep_every_invariant() {
    sweep(175..200);
}

#[test]
fn the_fixed_seeds_cover_every_fault_and_validator_count() {
    let scenarios: Vec<Scenario> = (0..200).map(Scenario::from_seed).collect();
    for fault in [
        Fault::Silent,
        Fault::EquivocatingProposer,
        Fault::DoubleSigner,
        Fault::Forger,
        Fault::Replayer,
        Fault::FutureSpammer,
        Fault::Malformed,
        Fault::BodySwapper,
    ] {
        let count = scenarios
            .iter()
            .filter(|s| s.faults.values().any(|f| *f == fault))
            .count();
        assert!(count >= 5, "{fault:?} appears in only {count} scenarios");
    }
    for n in 4..=10 {
        assert!(
            scenarios.iter().any(|s| s.validators == n),
            "no scenario with {n} validators"
        );
    }
    assert!(scenarios.iter().any(|s| s.outsider));
    assert!(scenarios.iter().any(|s| !s.partitions.is_empty()));
    assert!(scenarios.iter().any(|s| !s.crashes.is_empty()));
    // At most f byzantine validators in every scenario.
    for s in &scenarios {
        assert!(
            s.faults.len() <= healthchain_ibft::max_faulty(s.validators),
            "{}",
            s.summary()
        );
    }
}

#[test]
fn the_same_seed_gives_the_same_trace() {
    for seed in [3, 77, 1234] {
        let a = run_seed(seed).unwrap_or_else(|f| panic!("{f}"));
        let b = run_seed(seed).unwrap_or_else(|f| panic!("{f}"));
        assert_eq!(a, b, "seed {seed} is not deterministic");
    }
    let a = run_seed(3).unwrap_or_else(|f| panic!("{f}"));
    let c = run_seed(4).unwrap_or_else(|f| panic!("{f}"));
    assert_ne!(a.trace, c.trace, "different seeds gave the same trace");
}

#[test]
fn validators_that_crash_often_restart_safely() {
    let mut crashes = 0;
    for seed in 1000..1012 {
        let mut scenario = Scenario::from_seed(seed);
        scenario.crash_chance = 0.05;
        let report = Sim::new(scenario).run().unwrap_or_else(|f| panic!("{f}"));
        crashes += report.crashes;
    }
    assert!(
        crashes > 50,
        "only {crashes} crashes: the test does not exercise restarts"
    );
}

#[test]
fn a_validator_that_forgets_its_votes_is_caught_equivocating() {
    // The checker must be able to fail: with restarts that drop the persisted votes, some
    // honest validator ends up signing conflicting messages for a round.
    let caught = (2000..2100).find_map(|seed| {
        let mut scenario = Scenario::from_seed(seed);
        scenario.crash_chance = 0.05;
        scenario.amnesia = true;
        match Sim::new(scenario).run() {
            Err(failure) if matches!(failure.violation, Violation::Equivocation { .. }) => {
                Some(failure)
            }
            _ => None,
        }
    });
    let failure = caught.expect("no equivocation detected with amnesiac restarts");
    assert!(
        failure
            .to_string()
            .contains("reproduce: cargo run --release -p healthchain-ibft-sim -- --seed")
    );
}

#[test]
fn validators_back_from_a_long_outage_meet_the_one_that_kept_changing_rounds() {
    // Four validators, one silent for good; two of the others are down for 40 s while the
    // fourth keeps timing out at the capped 8 s. When they return it is rounds ahead of
    // them, alone: it must wait for them rather than drift ahead for ever.
    for seed in [1u64, 2, 3, 4, 5] {
        let mut s = Scenario::from_seed(seed);
        s.validators = 4;
        s.faults = [(3, Fault::Silent)].into_iter().collect();
        s.outsider = false;
        s.partitions.clear();
        s.crashes = vec![(1, 2_000, 40_000), (2, 2_500, 40_000)];
        s.crash_chance = 0.0;
        s.gst_ms = 45_000;
        s.deadline_ms = s.gst_ms + 120_000;
        let report = Sim::new(s).run().unwrap_or_else(|f| panic!("{f}"));
        assert!(
            report.max_round >= 4,
            "seed {seed}: rounds never drifted ({report:?})"
        );
    }
}
