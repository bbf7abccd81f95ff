//! The examples' common end: print every change of an instancer, and make one call a
//! second through a round-robin balancer over its endpoints, until interrupted or
//! out of time.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, never, select};
use waypost::lb::{Balancer, RoundRobin};
use waypost::{DefaultEndpointer, Event, Instance, Instancer};

use super::describe::describe;

/// Subscribes to `instancer`, prints each set (or error) to `out`, and once a second
/// prints where a call would go; returns on `interrupted`, or after `seconds`.
pub fn watch_and_call(
    instancer: impl Instancer + 'static,
    seconds: Option<u64>,
    interrupted: &Receiver<()>,
    out: &mut dyn Write,
) -> Result<(), Box<dyn std::error::Error>> {
    let (tx, events) = crossbeam_channel::unbounded();
    instancer.subscribe(tx);
    // End to end: the instances become endpoints (here just their URLs), and a
    // round-robin balancer picks one per call.
    let instancer = Arc::new(instancer);
    let endpointer =
        DefaultEndpointer::new(instancer.clone(), |i: &Instance| Ok(format!("http://{i}/")))?;
    let balancer = RoundRobin::new(endpointer);
    let calls = crossbeam_channel::tick(Duration::from_secs(1));
    let deadline = match seconds {
        Some(s) => crossbeam_channel::after(Duration::from_secs(s)),
        None => never(),
    };
    loop {
        select! {
            recv(events) -> event => match event? {
                Event::Instances(set) => {
                    writeln!(out, "{} instance(s):", set.len())?;
                    for instance in set.iter() {
                        writeln!(out, "  {}", describe(instance))?;
                    }
                }
                Event::Error(err) => writeln!(out, "error (keeping the last set): {err}")?,
            },
            // One call a second, to whichever endpoint the balancer picks.
            recv(calls) -> _ => match balancer.with_pick(|url| url.clone()) {
                Ok(url) => writeln!(out, "a call goes to {url}")?,
                Err(err) => writeln!(out, "no call possible: {err}")?,
            },
            recv(interrupted) -> _ => break,
            recv(deadline) -> _ => break,
        }
    }
    instancer.stop();
    Ok(())
}
