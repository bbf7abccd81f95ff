//! Issue 22: what load-aware balancing is for, measured in a seeded discrete-event
//! simulation with waypost's real balancers on a manual clock (see `sim/mod.rs` and
//! `benches/README.md`).
//!
//! `cargo bench --bench simulate` runs every scenario with every balancer, prints the
//! tables and writes `benches/sim-scenario4.svg`. Arguments (cargo passes `--bench`)
//! are ignored.

mod sim;

use std::time::Instant;

use sim::engine::Length;

fn main() {
    simulate();
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
