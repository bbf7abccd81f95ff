//! Watch a Consul service and print every change; optionally register this process.
//!
//! ```text
//! cargo run --example consul -- --addr http://127.0.0.1:8500 --service web \
//!     [--token-env CONSUL_HTTP_TOKEN] [--register 127.0.0.1:8080] [--seconds 60]
//! ```
//!
//! Stop it with Ctrl-C, or let `--seconds` run out: it then stops the watch and
//! deregisters cleanly (the example uses the `ctrlc` crate, a dev-dependency only: the
//! library itself installs no signal handler).

use std::time::Duration;

use crossbeam_channel::{never, select};
use waypost::consul::{HttpClient, Instancer, Registrar};
use waypost::{Event, Instance};

#[path = "support/describe.rs"]
mod describe;
use describe::describe;

struct Args {
    addr: String,
    service: String,
    token_env: Option<String>,
    register: Option<String>,
    seconds: Option<u64>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        addr: "http://127.0.0.1:8500".into(),
        service: String::new(),
        token_env: None,
        register: None,
        seconds: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => args.addr = value()?,
            "--service" => args.service = value()?,
            "--token-env" => args.token_env = Some(value()?),
            "--register" => args.register = Some(value()?),
            "--seconds" => {
                args.seconds = Some(value()?.parse().map_err(|e| format!("--seconds: {e}"))?)
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.service.is_empty() {
        return Err("--service NAME is required".into());
    }
    Ok(args)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args().map_err(|e| {
        format!("{e}\nusage: consul --addr URL --service NAME [--token-env VAR] [--register HOST:PORT] [--seconds N]")
    })?;
    let mut builder = HttpClient::builder().address(&args.addr);
    if let Some(var) = &args.token_env {
        // The token's value is never printed.
        builder = builder.token(std::env::var(var).map_err(|_| format!("${var} is not set"))?);
    }
    let client = builder.build()?;

    let _registration = match &args.register {
        Some(addr) => {
            let me = Instance::parse(addr)?;
            let (host, port) = (me.host().unwrap_or_default(), me.port().unwrap_or_default());
            let registrar = Registrar::builder(&client, &args.service, host, port)
                .tag("waypost-example")
                .meta("pid", std::process::id().to_string())
                .ttl(Duration::from_secs(10))
                .deregister_critical_service_after(Duration::from_secs(60))
                .build()?;
            println!("registering {} as {}", addr, registrar.id());
            Some(registrar.register()?)
        }
        None => None,
    };

    let instancer = Instancer::builder(&client, &args.service).build()?;
    let (tx, events) = crossbeam_channel::unbounded();
    instancer.subscribe(tx);

    let (interrupt_tx, interrupted) = crossbeam_channel::bounded::<()>(1);
    ctrlc::set_handler(move || {
        let _ = interrupt_tx.try_send(());
    })?;
    let deadline = match args.seconds {
        Some(s) => crossbeam_channel::after(Duration::from_secs(s)),
        None => never(),
    };

    println!(
        "watching {:?} on {} (Ctrl-C to stop)",
        args.service, args.addr
    );
    loop {
        select! {
            recv(events) -> event => match event? {
                Event::Instances(set) => {
                    println!("{} instance(s):", set.len());
                    for instance in set.iter() {
                        println!("  {}", describe(instance));
                    }
                }
                Event::Error(err) => println!("error (keeping the last set): {err}"),
            },
            recv(interrupted) -> _ => break,
            recv(deadline) -> _ => break,
        }
    }
    instancer.stop();
    println!("stopping: deregistering and joining threads");
    Ok(()) // the Registration guard deregisters here
}
