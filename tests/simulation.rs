//! The theory of load-aware balancing, checked on short seeded runs of the simulator
//! in `benches/sim/` (issue 22): a few seconds of virtual time each, with margins
//! well inside what the long runs of `cargo bench --bench simulate` measure.

#[path = "../benches/sim/mod.rs"]
mod sim;

use sim::client::{Kind, Retries, Setup};
use sim::engine::{Length, Run};
use sim::scenario::Scenario;
use sim::stats::{Summary, odd_share_between};

const SEED: u64 = 7;

fn run(scenario: Scenario, setup: Setup, length: Length) -> sim::Measured {
    sim::measure(scenario, setup, length, SEED)
}

fn summary(scenario: Scenario, setup: Setup, requests: usize) -> Summary {
    run(scenario, setup, Length::Requests(requests)).summary
}

#[test]
fn a_slow_server_p2c_and_peak_ewma_cut_the_tail_round_robin_does_not() {
    let scenario = Scenario::SlowServer;
    let rr = summary(scenario, Setup::plain(Kind::RoundRobin), 10_000);
    let p2c = summary(scenario, Setup::plain(Kind::P2c), 10_000);
    let ewma = summary(scenario, Setup::plain(Kind::PeakEwma), 10_000);
    assert!(p2c.p99 < rr.p99 / 3, "P2C {} vs RR {}", p2c.p99, rr.p99);
    assert!(ewma.p99 < rr.p99 / 3, "EWMA {} vs RR {}", ewma.p99, rr.p99);
    // Round-robin sends the slow server its tenth; the others far less.
    assert!((rr.odd - 0.1).abs() < 0.002, "RR's share {}", rr.odd);
    assert!(p2c.odd < 0.04, "P2C's share {}", p2c.odd);
    assert!(ewma.odd < 0.04, "EWMA's share {}", ewma.odd);
    // Nothing fails: nothing is ejected or retried.
    assert_eq!((rr.error_rate, rr.attempts), (0.0, 1.0));
}

#[test]
fn with_nothing_failing_ejection_changes_no_pick() {
    let length = Length::Requests(5_000);
    for kind in [Kind::P2c, Kind::PeakEwma, Kind::RoundRobin] {
        let plain = run(Scenario::SlowServer, Setup::plain(kind), length).run;
        let ejecting = run(Scenario::SlowServer, Setup::ejecting(kind), length).run;
        assert_eq!(plain.per_server, ejecting.per_server, "{kind:?}");
        assert_eq!(ejecting.ejections, 0);
    }
}

#[test]
fn a_fast_failing_server_draws_load_aware_picks_until_it_is_ejected() {
    let scenario = Scenario::FailingServer;
    let rr = summary(scenario, Setup::plain(Kind::RoundRobin), 20_000);
    // Half of a tenth of the requests fail.
    assert!(
        (0.04..0.06).contains(&rr.error_rate),
        "RR {}",
        rr.error_rate
    );
    // Failing in 1 ms, it looks fast and idle: load-aware balancers send it more.
    for kind in [Kind::P2c, Kind::PeakEwma] {
        let s = summary(scenario, Setup::plain(kind), 20_000);
        assert!(s.odd > 0.115, "{kind:?}: share {}", s.odd);
        assert!(
            s.error_rate > rr.error_rate * 1.15,
            "{kind:?}: {}",
            s.error_rate
        );
    }
    // Ejected after its first five failures in a row: a few dozen errors, then
    // none for the next 30 s.
    let rr = summary(scenario, Setup::plain(Kind::RoundRobin), 40_000);
    for kind in [Kind::RoundRobin, Kind::P2c, Kind::PeakEwma] {
        let ejecting = summary(scenario, Setup::ejecting(kind), 40_000);
        assert!(ejecting.ejections >= 1, "{kind:?}");
        assert!(
            ejecting.error_rate < rr.error_rate / 10.0,
            "{kind:?} with ejection: {}",
            ejecting.error_rate
        );
        assert!(ejecting.odd < 0.01, "{kind:?}: share {}", ejecting.odd);
    }
}

#[test]
fn retries_hide_a_failing_server_and_without_a_budget_feed_a_brownout() {
    let rr = summary(
        Scenario::FailingServer,
        Setup::plain(Kind::RoundRobin),
        10_000,
    );
    let retry = summary(
        Scenario::FailingServer,
        Setup::retrying(Retries::Unbudgeted),
        10_000,
    );
    assert!(
        retry.error_rate < rr.error_rate / 10.0,
        "{}",
        retry.error_rate
    );
    assert!((1.03..1.08).contains(&retry.attempts), "{}", retry.attempts);

    // Every server fails half its calls after a full service: retries are load.
    let scenario = Scenario::Brownout;
    let free = summary(scenario, Setup::retrying(Retries::Unbudgeted), 10_000);
    let budgeted = summary(scenario, Setup::retrying(Retries::Budgeted), 10_000);
    assert!(free.attempts > 1.5, "unbudgeted {}", free.attempts);
    // 20 % of the calls, plus 10 retries per second.
    assert!(
        (1.15..1.3).contains(&budgeted.attempts),
        "budgeted {}",
        budgeted.attempts
    );
    assert!(budgeted.refused > 0.2, "refused {}", budgeted.refused);
    assert!(
        budgeted.p99 < free.p99 / 3,
        "{} vs {}",
        budgeted.p99,
        free.p99
    );
    assert!(
        budgeted.error_rate > free.error_rate,
        "the price of the budget"
    );
}

#[test]
fn mixed_capacity_load_aware_balancers_share_by_speed() {
    let scenario = Scenario::MixedCapacity;
    let rr = summary(scenario, Setup::plain(Kind::RoundRobin), 30_000);
    assert!(rr.shares.iter().all(|&s| (s - 0.1).abs() < 0.002), "{rr:?}");
    for kind in [Kind::P2c, Kind::PeakEwma] {
        let s = summary(scenario, Setup::plain(kind), 30_000);
        // Speeds 1× and 4×: 1/23 and 4/23 of the capacity.
        assert!(s.shares[0] < 0.07, "{kind:?}: {:?}", s.shares);
        assert!(s.shares[8] > 0.13, "{kind:?}: {:?}", s.shares);
        assert!(s.p99 < rr.p99 / 3, "{kind:?}: {} vs {}", s.p99, rr.p99);
    }
}

#[test]
fn a_degrading_server_loses_its_share_as_it_slows() {
    let scenario = Scenario::Degrading;
    let length = Length::Window {
        arrivals: 20.0,
        cutoff: 20.0,
    };
    let share = |kind, from, to| {
        let run: Run = run(scenario, Setup::plain(kind), length).run;
        odd_share_between(&run, sim::BUCKET, from, to)
    };
    let rr = share(Kind::RoundRobin, 10.0, 20.0);
    assert!((rr - 0.1).abs() < 0.002, "RR {rr}");
    for kind in [Kind::P2c, Kind::PeakEwma] {
        // 25-40 ms against 10 ms: a third of a normal server's capacity or less.
        let late = share(kind, 10.0, 20.0);
        assert!(late < 0.05, "{kind:?}: {late} in 10-20 s");
        // Still near normal speed in the first seconds: not shunned then.
        let early = share(kind, 0.0, 2.0);
        assert!(early > 0.06, "{kind:?}: {early} in 0-2 s");
    }
}

#[test]
fn in_flight_counts_follow_the_open_picks_and_return_to_zero() {
    // Cut off while calls arrive: some are open.
    let window = Length::Window {
        arrivals: 1.0,
        cutoff: 1.0,
    };
    for setup in [
        Setup::plain(Kind::P2c),
        Setup::plain(Kind::PeakEwma),
        Setup::ejecting(Kind::P2c),
    ] {
        let run = run(Scenario::SlowServer, setup, window).run;
        let (counts, open) = run.open_at_cutoff.expect("a window run");
        let counts = counts.expect("a load-aware balancer");
        assert_eq!(counts, open, "{setup:?} at the cutoff");
        assert!(open.iter().sum::<usize>() > 0, "calls were open");
        assert_eq!(run.in_flight_after, Some(vec![0; 10]), "{setup:?}");
    }
    // Failures, retries' repicks and ejections end picks too.
    for setup in [Setup::ejecting(Kind::PeakEwma), Setup::ejecting(Kind::P2c)] {
        let run = run(Scenario::FailingServer, setup, Length::Requests(5_000)).run;
        assert!(run.errors > 0 && run.ejections > 0);
        assert_eq!(run.in_flight_after, Some(vec![0; 10]), "{setup:?}");
    }
}

#[test]
fn the_same_seed_gives_the_same_tables() {
    let table = |seed| {
        let measured: Vec<sim::Measured> = (Setup::ALL.iter())
            .map(|&setup| {
                sim::measure(
                    Scenario::FailingServer,
                    setup,
                    Length::Requests(3_000),
                    seed,
                )
            })
            .collect();
        sim::tables(&measured)
    };
    let first = table(SEED);
    assert_eq!(first, table(SEED));
    assert_ne!(first, table(SEED + 1), "the seed matters");
}
