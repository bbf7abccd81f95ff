//! Watch an app in Eureka and print every change; optionally register this process
//! in it. End to end: the instances become endpoints, and a round-robin balancer
//! picks one for a call each second.
//!
//! Against a Eureka server (Spring Cloud's on port 8761, say):
//!
//! ```text
//! cargo run --example eureka --features eureka -- --server http://127.0.0.1:8761/eureka \
//!     --app payments [--register 127.0.0.1:8080] [--interval-ms 30000] [--seconds 60]
//! ```
//!
//! `--server` may be given several times (the peers of a cluster, tried in turn).
//! Stop with Ctrl-C, or let `--seconds` run out: it then stops the watch and
//! deregisters cleanly (`DELETE`). A real server answers reads from a cache refreshed
//! every 30 s, so a registration may take that long to show. The example uses the
//! `ctrlc` crate, a dev-dependency only: the library installs no signal handler.

use std::io::Write;
use std::time::Duration;

use crossbeam_channel::Receiver;
use waypost::eureka::{HttpClient, Instancer, Registrar};

#[path = "support/describe.rs"]
mod describe;
#[path = "support/watch.rs"]
mod watch;
use watch::watch_and_call;

/// The command line.
pub struct Args {
    /// Server base URLs, e.g. `http://127.0.0.1:8761/eureka`.
    pub servers: Vec<String>,
    /// The app watched (and registered in).
    pub app: String,
    /// This process's address, to register.
    pub register: Option<String>,
    /// How often the app is read.
    pub interval: Duration,
    /// Stop after this long.
    pub seconds: Option<u64>,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        servers: Vec::new(),
        app: String::new(),
        register: None,
        interval: waypost::eureka::DEFAULT_INTERVAL,
        seconds: None,
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--server" => args.servers.push(value()?),
            "--app" => args.app = value()?,
            "--register" => args.register = Some(value()?),
            "--interval-ms" => {
                let ms = value()?
                    .parse()
                    .map_err(|e| format!("--interval-ms: {e}"))?;
                args.interval = Duration::from_millis(ms);
            }
            "--seconds" => {
                args.seconds = Some(value()?.parse().map_err(|e| format!("--seconds: {e}"))?)
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.app.is_empty() {
        return Err("--app APP is required".into());
    }
    if args.servers.is_empty() {
        args.servers.push("http://127.0.0.1:8761/eureka".into());
    }
    Ok(args)
}

/// Watches (and maybe registers) until `interrupted` fires or `--seconds` runs out,
/// writing what happens to `out`.
pub fn run(
    args: &Args,
    interrupted: &Receiver<()>,
    out: &mut dyn Write,
) -> Result<(), Box<dyn std::error::Error>> {
    let client = HttpClient::builder()
        .servers(args.servers.iter().cloned())
        .build()?;
    let _registration = match &args.register {
        Some(addr) => {
            let registrar = Registrar::builder(&client, &args.app, addr.clone()).build()?;
            let registration = registrar.register()?;
            let id = registrar.instance().instance_id;
            writeln!(out, "registered {addr} as {id}")?;
            Some(registration)
        }
        None => None,
    };
    let instancer = Instancer::app(&client, &args.app)
        .interval(args.interval)
        .build()?;
    writeln!(
        out,
        "watching app {} on {} (Ctrl-C to stop)",
        args.app,
        args.servers.join(", ")
    )?;
    watch_and_call(instancer, args.seconds, interrupted, out)?;
    writeln!(out, "stopping: deregistering")?;
    Ok(()) // the Registration guard cancels the instance here
}

#[allow(dead_code)] // a test includes this file as a module and calls `run`
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args(std::env::args().skip(1)).map_err(|e| {
        format!(
            "{e}\nusage: eureka --app APP [--server URL]... [--register HOST:PORT] \
             [--interval-ms N] [--seconds N]"
        )
    })?;
    let (interrupt_tx, interrupted) = crossbeam_channel::bounded::<()>(1);
    ctrlc::set_handler(move || {
        let _ = interrupt_tx.try_send(());
    })?;
    run(&args, &interrupted, &mut std::io::stdout())
}
