//! What the registry benches (consul.rs, etcd.rs, zk.rs) share: the propagation loop
//! and the report line.

use std::time::Duration;

use waypost::{DefaultEndpointer, Endpointer, Registration};

use crate::support::wait_until;

/// `n` changes through `register(i)` (which registers instance `i` and returns its
/// registration and address), each `spacing` after the previous one was seen (none:
/// back to back); for each, how long until `endpoints()` had it, and how long until
/// it was gone after the deregistration.
pub fn propagation(
    endpointer: &DefaultEndpointer<String>,
    n: u16,
    spacing: Option<Duration>,
    register: impl Fn(u16) -> (Registration, String),
) -> (Vec<Duration>, Vec<Duration>) {
    let (mut added, mut removed) = (Vec::new(), Vec::new());
    // Spacing the changes is the point of the isolated case, not a wait for a result.
    let space = || spacing.map(std::thread::sleep);
    for i in 0..n {
        space();
        let (registration, addr) = register(i);
        added.push(wait_until("the registration", || {
            endpointer.endpoints().is_ok_and(|e| e.contains(&addr))
        }));
        space();
        registration.deregister().expect("deregister");
        removed.push(wait_until("the deregistration", || {
            endpointer.endpoints().is_ok_and(|e| e.is_empty())
        }));
    }
    (added, removed)
}

/// Prints `what: n, median, p99, max` of `samples`.
pub fn report(what: &str, samples: &mut [Duration]) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "{what}: n = {}, median {:.2?}, p99 {:.2?}, max {:.2?}",
        samples.len(),
        at(0.5),
        at(0.99),
        samples[samples.len() - 1]
    );
}
