//! Markdown tables of the runs' figures.

use std::fmt::Write;

use super::scenario::{SERVERS, Scenario};
use super::stats::Summary;

/// A latency for a table: milliseconds below 10 s, else seconds.
pub fn latency(nanos: u64) -> String {
    let ms = nanos as f64 / 1e6;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 100.0 {
        format!("{ms:.1} ms")
    } else if ms < 10_000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.1} s", ms / 1e3)
    }
}

/// A share for a table, in percent, with more digits when it is small.
pub fn percent(share: f64) -> String {
    let p = share * 100.0;
    if p == 0.0 {
        "0".to_string()
    } else if p < 0.1 {
        format!("{p:.3} %")
    } else if p < 1.0 {
        format!("{p:.2} %")
    } else {
        format!("{p:.1} %")
    }
}

/// The scenarios, one line each.
pub fn scenarios() -> String {
    let mut out = String::new();
    for scenario in Scenario::ALL {
        let _ = writeln!(
            out,
            "- {}. {}: {:.0} requests/s, odd server {}",
            scenario.number(),
            scenario.title(),
            scenario.arrival_rate(),
            scenario.odd(),
        );
    }
    out
}

/// Latencies, errors, load and the odd server's share: one row per run.
pub fn main_table(rows: &[Summary]) -> String {
    let mut out = String::from(
        "| # | balancer | p50 | p99 | p99.9 | errors | attempts / request | odd server's share | ejections |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {:.3} | {} | {} |",
            row.scenario,
            row.balancer,
            latency(row.p50),
            latency(row.p99),
            latency(row.p999),
            percent(row.error_rate),
            row.attempts,
            percent(row.odd),
            row.ejections,
        );
    }
    out
}

/// Every server's share of the attempts: one row per run.
pub fn share_table(rows: &[Summary]) -> String {
    let mut out = String::from("| # | balancer |");
    for i in 0..SERVERS {
        let _ = write!(out, " {i} |");
    }
    out.push_str("\n|---|---|");
    out.push_str(&"---:|".repeat(SERVERS));
    out.push('\n');
    for row in rows {
        let _ = write!(out, "| {} | {} |", row.scenario, row.balancer);
        for share in row.shares {
            let _ = write!(out, " {:.1} |", share * 100.0);
        }
        out.push('\n');
    }
    out
}
