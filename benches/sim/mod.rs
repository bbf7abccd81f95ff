//! A seeded discrete-event simulator of client-side load balancing (issue 22): what
//! waypost's balancers do to latency, errors and load when one server is slow,
//! failing, smaller or slowing down. `benches/simulate.rs` runs it, prints the
//! tables and plots scenario 4, and with `--threads` checks scenario 1 with real
//! threads; `tests/simulation.rs` checks the theory's claims on short runs. The
//! model is described in `benches/README.md`.

// The bench and the test each use a part of this module.
#![allow(dead_code)]

pub mod client;
pub mod engine;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod stats;
pub mod svg;
pub mod threads;

use client::{Kind, Setup};
use engine::{Config, Length, Run};
use scenario::Scenario;
use stats::Summary;

/// Requests per run in the bench: enough for a stable p99.9 (200 requests above it).
pub const REQUESTS: usize = 200_000;
/// The bench's seed.
pub const SEED: u64 = 22;
/// The width of the time buckets of the load-share plot, in seconds.
pub const BUCKET: f64 = 2.0;

/// One run, summarized; its latencies are dropped once summarized.
pub struct Measured {
    pub summary: Summary,
    pub run: Run,
}

/// Runs `scenario` with `setup`. Every setup of a scenario gets the same seed, so
/// they all see the same arrivals (and, as far as their picks allow, the same service
/// times): differences come from the balancers.
pub fn measure(scenario: Scenario, setup: Setup, length: Length, seed: u64) -> Measured {
    let mut run = engine::run(&Config {
        scenario,
        setup,
        length,
        seed: seed ^ ((scenario.number() as u64) << 32),
        bucket: BUCKET,
    });
    let summary = Summary::of(&run);
    run.latencies = Vec::new();
    Measured { summary, run }
}

/// Every scenario with every setup.
pub fn measure_all(length: Length, seed: u64) -> Vec<Measured> {
    let mut all = Vec::new();
    for scenario in Scenario::ALL {
        for setup in Setup::ALL {
            all.push(measure(scenario, setup, length, seed));
        }
    }
    all
}

/// The main table and the per-server table of `measured`.
pub fn tables(measured: &[Measured]) -> String {
    let rows: Vec<Summary> = measured.iter().map(|m| m.summary.clone()).collect();
    format!(
        "{}\nEach server's share of the attempts (%):\n\n{}",
        report::main_table(&rows),
        report::share_table(&rows)
    )
}

/// The load-aware balancers whose in-flight counts did not all come back to zero.
pub fn in_flight_leaks(measured: &[Measured]) -> Vec<String> {
    (measured.iter())
        .filter(|m| {
            let counts = &m.run.in_flight_after;
            counts.as_ref().is_some_and(|c| c.iter().any(|&n| n != 0))
        })
        .map(|m| {
            let (s, b) = (m.summary.scenario, &m.summary.balancer);
            format!("scenario {s}, {b}: {:?}", m.run.in_flight_after)
        })
        .collect()
}

/// Scenario 4's plot: the odd server's share of attempts over time for each plain
/// balancer (with ejection or retries they pick the same: nothing fails), and the
/// share of the capacity it has.
pub fn scenario4_svg(measured: &[Measured]) -> String {
    let scenario = Scenario::Degrading;
    let plain = [Kind::RoundRobin, Kind::Random, Kind::P2c, Kind::PeakEwma];
    let mut series: Vec<svg::Series> = (measured.iter())
        .filter(|m| m.run.scenario == scenario)
        .filter(|m| plain.iter().any(|&k| m.run.setup == Setup::plain(k)))
        .map(|m| svg::Series {
            name: m.summary.balancer.clone(),
            values: stats::odd_share_over_time(&m.run),
            dashed: false,
        })
        .collect();
    let buckets = series.iter().map(|s| s.values.len()).max().unwrap_or(0);
    let odd = scenario.odd();
    series.push(svg::Series {
        name: "its share of capacity".to_string(),
        values: (0..buckets)
            .map(|i| {
                let t = (i as f64 + 0.5) * BUCKET;
                Some(scenario.server_capacity(odd, t) / scenario.capacity(t))
            })
            .collect(),
        dashed: true,
    });
    svg::plot(
        "Scenario 4: server 9 slows from 10 ms to 100 ms over 60 s",
        "server 9's share of attempts (%), per 2 s",
        BUCKET,
        &series,
    )
}
