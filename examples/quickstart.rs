//! Discovery, balancing and retries end to end, on the in-memory registry.
//!
//! Three tiny HTTP servers start on loopback and register as `hello`. A
//! `DefaultEndpointer` turns each registered instance into an HTTP endpoint, and
//! round-robin with retries sends real requests to them. Midway one server dies while
//! it is still registered: requests that land on it fail and are retried on the next
//! server. Then its registration goes away, as a health check would remove it: its
//! endpoint is closed and the set shrinks to two. Runs in about half a second.
//!
//! ```sh
//! cargo run --example quickstart
//! ```

use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant};

use waypost::crossbeam_channel::{after, select, tick, unbounded};
use waypost::lb::{AttemptError, Retry, RoundRobin};
use waypost::{DefaultEndpointer, Endpointer, Instance, Made, MemoryRegistry, Registration};

#[path = "support/http.rs"]
mod http;

use http::{CallError, Client as HttpEndpoint, Server};

const SERVICE: &str = "hello";

fn main() -> Result<(), Box<dyn Error>> {
    let started = Instant::now();
    let registry = MemoryRegistry::new();

    // Three servers, each registered for as long as its guard lives. The instance
    // carries the server's name as metadata, for the endpoint to show.
    let mut servers = Vec::new();
    let mut registrations: Vec<Registration> = Vec::new();
    for name in ["alpha", "beta", "gamma"] {
        let server = Server::start(name)?;
        println!("started  {name} on {}", server.addr);
        let instance = Instance::builder(server.addr.to_string())
            .value("name", name)
            .build();
        registrations.push(registry.registrar(SERVICE, instance).register()?);
        servers.push(server);
    }

    // The factory runs on the endpointer's thread, once for each instance that joins
    // the set; the closer runs once when it leaves. The closer also reports on a
    // channel, so that this thread can wait for it rather than guess how long it takes.
    let (closed_tx, closed) = unbounded();
    let factory = move |instance: &Instance| {
        let endpoint = HttpEndpoint::new(instance, Duration::from_secs(1));
        println!("made     endpoint {endpoint}");
        let (agent, name, closed_tx) = (
            endpoint.agent.clone(),
            endpoint.name.clone(),
            closed_tx.clone(),
        );
        Ok(Made::new(endpoint).on_close(move || {
            agent.shutdown(); // cuts off any request still in flight on this endpoint
            println!("closed   endpoint {name}");
            let _ = closed_tx.send(name);
        }))
    };
    let endpointer = Arc::new(DefaultEndpointer::new(
        registry.instancer(SERVICE),
        factory,
    )?);
    endpointer.wait_ready(Duration::from_secs(1))?;
    print_set(&endpointer)?;

    // Round-robin over the current set; each request gets 3 attempts within 1 s.
    let retry = Retry::builder(RoundRobin::new(endpointer.clone()))
        .max_attempts(3)
        .timeout(Duration::from_secs(1))
        .build()?;
    let pace = tick(Duration::from_millis(40));
    let mut request = 0;
    let mut send = |count: usize| -> Result<(), Box<dyn Error>> {
        for _ in 0..count {
            pace.recv()?;
            request += 1;
            let mut failed = 0;
            let body = retry.call_with(
                |endpoint: &HttpEndpoint, deadline| endpoint.get("/", deadline),
                |attempt, error: &AttemptError<CallError>| {
                    failed = attempt;
                    match error {
                        AttemptError::Endpoint(e) => println!("  attempt {attempt}: {e}"),
                        AttemptError::Balancer(e) => println!("  attempt {attempt}: {e}"),
                    }
                    true // go on with the next pick
                },
            )?;
            let attempts = failed + 1;
            let s = if attempts == 1 { "" } else { "s" };
            println!("request {request:>2}: {body:<16} ({attempts} attempt{s})");
        }
        Ok(())
    };

    println!("\n-- all three servers up");
    send(4)?;

    println!("\n-- beta stops, but stays registered");
    servers.remove(1).stop();
    send(5)?;

    println!("\n-- beta's registration is dropped, as a failing health check would do");
    drop(registrations.remove(1));
    closed.recv_timeout(Duration::from_secs(1))?;
    wait_for_len(&endpointer, 2)?;
    print_set(&endpointer)?;
    send(4)?;

    println!("\n-- shutting down");
    endpointer.close();
    drop(registrations);
    for server in servers {
        server.stop();
    }
    println!("done in {} ms", started.elapsed().as_millis());
    Ok(())
}

fn print_set(endpointer: &DefaultEndpointer<HttpEndpoint>) -> waypost::Result<()> {
    let names: Vec<_> = endpointer
        .endpoints()?
        .iter()
        .map(|e| e.name.clone())
        .collect();
    println!("endpoints now: {}", names.join(", "));
    Ok(())
}

/// Waits, at most a second, until the endpointer serves `len` endpoints. A closer runs
/// just before the endpointer publishes the set without its instance, so after the
/// closer has reported this takes microseconds.
fn wait_for_len(
    endpointer: &DefaultEndpointer<HttpEndpoint>,
    len: usize,
) -> Result<(), Box<dyn Error>> {
    let timeout = after(Duration::from_secs(1));
    let poll = tick(Duration::from_millis(1));
    while endpointer.endpoints()?.len() != len {
        select! {
            recv(poll) -> _ => {}
            recv(timeout) -> _ => return Err(format!("not {len} endpoints after 1 s").into()),
        }
    }
    Ok(())
}
