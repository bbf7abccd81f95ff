//! Watch an SRV name (or a host's addresses) and print every change. End to end: the
//! instances become endpoints, and a round-robin balancer picks one for a call each
//! second.
//!
//! Try it against a local dnsmasq (Debian's `dnsmasq-base`) serving one SRV record:
//!
//! ```text
//! printf 'srv-host=_web._tcp.example.test,node1.example.test,8080,10,60\nhost-record=node1.example.test,127.0.0.11\n' > /tmp/srv.conf
//! /usr/sbin/dnsmasq --keep-in-foreground --no-resolv --no-hosts --port=5353 \
//!     --listen-address=127.0.0.1 --bind-interfaces --local=/example.test/ \
//!     --conf-file=/tmp/srv.conf --pid-file=/tmp/srv.pid
//! ```
//!
//! then:
//!
//! ```text
//! cargo run --example dnssrv --features dnssrv -- --name _web._tcp.example.test \
//!     --server 127.0.0.1:5353 [--resolve] [--floor-ms 1000] [--seconds 60]
//! ```
//!
//! Without `--server` the name servers of /etc/resolv.conf are asked. `--host
//! NAME:PORT` watches the A/AAAA records of a host instead of an SRV name. dnsmasq
//! reads SRV records only at start: change the file and start it again to see a
//! change. Stop with Ctrl-C, or let `--seconds` run out. The example uses the `ctrlc`
//! crate, a dev-dependency only: the library installs no signal handler.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use crossbeam_channel::Receiver;
use waypost::dnssrv::{Client, Instancer};

#[path = "support/describe.rs"]
mod describe;
#[path = "support/watch.rs"]
mod watch;
use watch::watch_and_call;

/// The command line.
pub struct Args {
    /// The SRV name, e.g. `_web._tcp.example.test`.
    pub name: Option<String>,
    /// Or a `host:port` whose A/AAAA records are watched.
    pub host: Option<String>,
    /// The name server to ask (default: those of /etc/resolv.conf).
    pub server: Option<SocketAddr>,
    /// Resolve SRV targets to addresses.
    pub resolve: bool,
    /// The least time between two queries (the TTL floor).
    pub floor: Duration,
    /// Stop after this long.
    pub seconds: Option<u64>,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        name: None,
        host: None,
        server: None,
        resolve: false,
        floor: waypost::dnssrv::DEFAULT_TTL_FLOOR,
        seconds: None,
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--name" => args.name = Some(value()?),
            "--host" => args.host = Some(value()?),
            "--server" => {
                args.server = Some(value()?.parse().map_err(|e| format!("--server: {e}"))?)
            }
            "--resolve" => args.resolve = true,
            "--floor-ms" => {
                let ms = value()?.parse().map_err(|e| format!("--floor-ms: {e}"))?;
                args.floor = Duration::from_millis(ms);
            }
            "--seconds" => {
                args.seconds = Some(value()?.parse().map_err(|e| format!("--seconds: {e}"))?)
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.name.is_some() == args.host.is_some() {
        return Err("give one of --name SRV-NAME and --host HOST:PORT".into());
    }
    Ok(args)
}

/// Watches until `interrupted` fires or `--seconds` runs out, writing what happens
/// to `out`.
pub fn run(
    args: &Args,
    interrupted: &Receiver<()>,
    out: &mut dyn Write,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut client = Client::builder();
    if let Some(server) = args.server {
        client = client.server(server);
    }
    let client = client.build()?;
    let (builder, what) = match (&args.name, &args.host) {
        (Some(name), _) => (Instancer::srv(name.clone()), format!("SRV {name}")),
        (None, Some(host)) => (Instancer::host(host), format!("A/AAAA {host}")),
        (None, None) => unreachable!("parse_args checks"),
    };
    let mut builder = builder.resolver(client).ttl_bounds(
        args.floor,
        waypost::dnssrv::DEFAULT_TTL_CEILING.max(args.floor),
    );
    if args.resolve {
        builder = builder.resolve_targets();
    }
    let instancer = builder.build()?;
    let at = match args.server {
        Some(server) => server.to_string(),
        None => "the name servers of /etc/resolv.conf".into(),
    };
    writeln!(out, "watching {what} at {at} (Ctrl-C to stop)")?;
    watch_and_call(instancer, args.seconds, interrupted, out)?;
    Ok(())
}

#[allow(dead_code)] // a test includes this file as a module and calls `run`
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args(std::env::args().skip(1)).map_err(|e| {
        format!(
            "{e}\nusage: dnssrv (--name SRV-NAME | --host HOST:PORT) [--server IP:PORT] \
             [--resolve] [--floor-ms N] [--seconds N]"
        )
    })?;
    let (interrupt_tx, interrupted) = crossbeam_channel::bounded::<()>(1);
    ctrlc::set_handler(move || {
        let _ = interrupt_tx.try_send(());
    })?;
    run(&args, &interrupted, &mut std::io::stdout())
}
