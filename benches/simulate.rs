//! Issue 22: what load-aware balancing is for, measured in a seeded discrete-event
//! simulation with waypost's real balancers on a manual clock (see `sim/mod.rs` and
//! `benches/README.md`).
//!
//! `cargo bench --bench simulate` runs every scenario with every balancer, prints the
//! tables and writes `benches/sim-scenario4.svg`. `cargo bench --bench simulate --
//! --threads` instead runs scenario 1 with real threads and sleeps, beside the same
//! window simulated. Other arguments (cargo passes `--bench`) are ignored.

mod sim;

use std::time::{Duration, Instant};

use sim::client::{Kind, Setup};
use sim::engine::Length;
use sim::scenario::Scenario;
use sim::stats::Summary;

fn main() {
    if std::env::args().any(|arg| arg == "--threads") {
        threads();
    } else {
        simulate();
    }
}

fn simulate() {
    let began = Instant::now();
    let measured = sim::measure_all(Length::Requests(sim::REQUESTS), sim::SEED);
    let elapsed = began.elapsed();
    println!(
        "{} requests per run, seed {}, {} runs in {:.1} s\n",
        sim::REQUESTS,
        sim::SEED,
        measured.len(),
        elapsed.as_secs_f64()
    );
    println!("{}", sim::report::scenarios());
    println!("{}", sim::tables(&measured));
    let leaks = sim::in_flight_leaks(&measured);
    if leaks.is_empty() {
        println!("In-flight counts of P2C and peak EWMA after every run: all zero.");
    } else {
        println!("IN-FLIGHT COUNTS LEFT AFTER THE RUN:\n{}", leaks.join("\n"));
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/sim-scenario4.svg");
    std::fs::write(path, sim::scenario4_svg(&measured)).expect("writing the SVG");
    println!("Wrote {path}");
}

/// Scenario 1 with 8 client threads and 40 sleeping server threads, for 2 s of
/// arrivals cut off at 2.5 s, beside the same window in the simulator.
fn threads() {
    let scenario = Scenario::SlowServer;
    let (arrivals, cutoff) = (Duration::from_secs(2), Duration::from_millis(2500));
    let window = Length::Window {
        arrivals: arrivals.as_secs_f64(),
        cutoff: cutoff.as_secs_f64(),
    };
    println!(
        "Scenario 1, {:.0} requests/s for {arrivals:?}, open calls cut off at {cutoff:?}\n",
        scenario.arrival_rate()
    );
    println!(
        "| balancer | run | requests | p50 | p99 | slow server's share | cut off | in flight after |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let began = Instant::now();
    for kind in [Kind::RoundRobin, Kind::P2c, Kind::PeakEwma] {
        let setup = Setup::plain(kind);
        let real = sim::threads::run(scenario, setup, 8, arrivals, cutoff, sim::SEED);
        let simulated = sim::measure(scenario, setup, window, sim::SEED);
        row("8 threads", &Summary::of(&real), &real.in_flight_after);
        row(
            "simulated",
            &simulated.summary,
            &simulated.run.in_flight_after,
        );
    }
    println!("\n{:.1} s in all", began.elapsed().as_secs_f64());
}

fn row(run: &str, s: &Summary, in_flight: &Option<Vec<usize>>) {
    let in_flight = match in_flight {
        None => "-".to_string(),
        Some(counts) => format!("{}", counts.iter().sum::<usize>()),
    };
    println!(
        "| {} | {run} | {} | {} | {} | {} | {} | {in_flight} |",
        s.balancer,
        s.requests,
        sim::report::latency(s.p50),
        sim::report::latency(s.p99),
        sim::report::percent(s.odd),
        s.censored,
    );
}
