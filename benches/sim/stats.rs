//! What a run's figures come to: quantiles, rates, shares.

use super::engine::Run;
use super::scenario::SERVERS;

/// The `q` quantile of `sorted` (nearest rank); 0 for no samples.
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One run in figures.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub scenario: usize,
    pub balancer: String,
    pub requests: usize,
    /// Latency quantiles, in nanoseconds.
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    /// Share of requests that failed in the end (after any retries).
    pub error_rate: f64,
    /// Attempts sent per request (1 without retries).
    pub attempts: f64,
    /// Retries refused by the budget, per request.
    pub refused: f64,
    /// Each server's share of the attempts.
    pub shares: [f64; SERVERS],
    /// The odd server's share.
    pub odd: f64,
    pub ejections: usize,
    pub censored: usize,
}

impl Summary {
    pub fn of(run: &Run) -> Summary {
        let mut sorted = run.latencies.clone();
        sorted.sort_unstable();
        let requests = run.requests.max(1) as f64;
        let attempts = run.attempts.max(1) as f64;
        let shares = run.per_server.map(|n| n as f64 / attempts);
        Summary {
            scenario: run.scenario.number(),
            balancer: run.setup.name(),
            requests: run.requests,
            p50: quantile(&sorted, 0.50),
            p99: quantile(&sorted, 0.99),
            p999: quantile(&sorted, 0.999),
            max: sorted.last().copied().unwrap_or(0),
            error_rate: run.errors as f64 / requests,
            attempts: run.attempts as f64 / requests,
            refused: run.refused as f64 / requests,
            shares,
            odd: shares[run.scenario.odd()],
            ejections: run.ejections,
            censored: run.censored,
        }
    }
}

/// The odd server's share of the attempts sent within each bucket (`None` for an
/// empty bucket).
pub fn odd_share_over_time(run: &Run) -> Vec<Option<f64>> {
    (run.buckets.iter())
        .map(|&(odd, all)| (all > 0).then(|| odd as f64 / all as f64))
        .collect()
}

/// The odd server's share of the attempts sent between `from` and `to` seconds.
pub fn odd_share_between(run: &Run, bucket: f64, from: f64, to: f64) -> f64 {
    let first = (from / bucket).floor() as usize;
    let last = ((to / bucket).ceil() as usize).min(run.buckets.len());
    let (odd, all) = (run.buckets[first.min(last)..last].iter())
        .fold((0, 0), |(o, a), &(odd, all)| (o + odd, a + all));
    odd as f64 / all.max(1) as f64
}
