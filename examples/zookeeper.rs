//! Watch the children of a ZooKeeper path and print every change; optionally
//! register this process under it. End to end: the instances become endpoints, and a
//! round-robin balancer picks one for a call each second.
//!
//! Start a local ZooKeeper (Debian's `zookeeper` package; Java 17) with a `zoo.cfg` of
//! `tickTime=2000`, `dataDir=/tmp/zk-example`, `clientPort=2181`:
//!
//! ```text
//! java -cp /usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar:/usr/share/java/slf4j-api.jar org.apache.zookeeper.server.quorum.QuorumPeerMain zoo.cfg
//! ```
//!
//! then:
//!
//! ```text
//! cargo run --example zookeeper --features zk -- --servers 127.0.0.1:2181 --path /services/web \
//!     [--register 127.0.0.1:8080] [--curator] [--seconds 60]
//! ```
//!
//! and add an instance from another shell with zkCli:
//! `create /services/web/a 10.0.0.1:8080`. Stop it with Ctrl-C, or let `--seconds`
//! run out: it then stops the watch and deregisters cleanly (deletes its node, closes
//! its session). The example uses the `ctrlc` crate, a dev-dependency only: the

use std::io::Write;

use crossbeam_channel::Receiver;
use waypost::zk::{Client, Instancer, Layout, Registrar};

#[path = "support/describe.rs"]
mod describe;
#[path = "support/watch.rs"]
mod watch;
use watch::watch_and_call;

/// The command line.
pub struct Args {
    /// `host:port,...[/chroot]`.
    pub servers: String,
    /// The path whose children are watched (and registered under).
    pub path: String,
    /// This process's address, to register.
    pub register: Option<String>,
    /// Curator's layout instead of plain `host:port`.
    pub curator: bool,
    /// Stop after this long.
    pub seconds: Option<u64>,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        servers: "127.0.0.1:2181".into(),
        path: String::new(),
        register: None,
        curator: false,
        seconds: None,
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--servers" => args.servers = value()?,
            "--path" => args.path = value()?,
            "--register" => args.register = Some(value()?),
            "--curator" => args.curator = true,
            "--seconds" => {
                args.seconds = Some(value()?.parse().map_err(|e| format!("--seconds: {e}"))?)
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.path.is_empty() {
        return Err("--path PATH is required".into());
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
    let client = Client::builder(&args.servers).build()?;
    let layout = if args.curator {
        Layout::Curator
    } else {
        Layout::Plain
    };
    let _registration = match &args.register {
        Some(addr) => {
            let registrar = Registrar::builder(&client, args.path.clone(), addr.clone())
                .layout(layout)
                .build()?;
            let registration = registrar.register()?;
            writeln!(out, "registered {addr} as {}", registrar.node())?;
            Some(registration)
        }
        None => None,
    };
    let instancer = Instancer::builder(&client, args.path.clone())
        .layout(layout)
        .build()?;
    writeln!(
        out,
        "watching {:?} on {} (Ctrl-C to stop)",
        args.path, args.servers
    )?;
    watch_and_call(instancer, args.seconds, interrupted, out)?;
    writeln!(out, "stopping: deregistering and closing the session")?;
    Ok(()) // the Registration guard deregisters here, then the client closes
}

#[allow(dead_code)] // a test includes this file as a module and calls `run`
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args(std::env::args().skip(1)).map_err(|e| {
        format!(
            "{e}\nusage: zookeeper --servers HOST:PORT[,...][/CHROOT] --path PATH \
             [--register HOST:PORT] [--curator] [--seconds N]"
        )
    })?;
    let (interrupt_tx, interrupted) = crossbeam_channel::bounded::<()>(1);
    ctrlc::set_handler(move || {
        let _ = interrupt_tx.try_send(());
    })?;
    run(&args, &interrupted, &mut std::io::stdout())
}
