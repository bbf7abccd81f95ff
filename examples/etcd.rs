//! Watch a key prefix in etcd and print every change; optionally register this
//! process under it. End to end: the instances become endpoints, and a round-robin
//! balancer picks one for a call each second.
//!
//! Start a local etcd (3.4 or later; Debian's `etcd-server` package) with:
//!
//! ```text
//! etcd --data-dir /tmp/etcd-example --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379
//! ```
//!
//! then:
//!
//! ```text
//! cargo run --example etcd -- --addr http://127.0.0.1:2379 --prefix /services/web/ \
//!     [--register 127.0.0.1:8080] [--user NAME --password-env VAR] [--seconds 60]
//! ```
//!
//! and put an instance from another shell: `etcdctl put /services/web/a 10.0.0.1:8080`.
//! Stop it with Ctrl-C, or let `--seconds` run out: it then stops the watch and
//! deregisters cleanly (deletes its key, revokes its lease). The example uses the
//! `ctrlc` crate, a dev-dependency only: the library installs no signal handler.

use std::io::Write;
use std::time::Duration;

use crossbeam_channel::Receiver;
use waypost::etcd::{HttpClient, Instancer, Registrar};

#[path = "support/describe.rs"]
mod describe;
#[path = "support/watch.rs"]
mod watch;
use watch::watch_and_call;

/// The command line.
pub struct Args {
    /// Member client URLs.
    pub addrs: Vec<String>,
    /// The key prefix watched (and registered under).
    pub prefix: String,
    /// This process's address, to register.
    pub register: Option<String>,
    /// User name, and the variable that holds the password.
    pub user: Option<(String, String)>,
    /// Stop after this long.
    pub seconds: Option<u64>,
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        addrs: vec!["http://127.0.0.1:2379".into()],
        prefix: String::new(),
        register: None,
        user: None,
        seconds: None,
    };
    let (mut user, mut password_env) = (None, None);
    let mut it = args;
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => parsed.addrs = value()?.split(',').map(str::to_owned).collect(),
            "--prefix" => parsed.prefix = value()?,
            "--register" => parsed.register = Some(value()?),
            "--user" => user = Some(value()?),
            "--password-env" => password_env = Some(value()?),
            "--seconds" => {
                parsed.seconds = Some(value()?.parse().map_err(|e| format!("--seconds: {e}"))?)
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if parsed.prefix.is_empty() {
        return Err("--prefix PREFIX is required".into());
    }
    parsed.user = match (user, password_env) {
        (Some(u), Some(p)) => Some((u, p)),
        (None, None) => None,
        _ => return Err("--user and --password-env go together".into()),
    };
    Ok(parsed)
}

/// Watches (and maybe registers) until `interrupted` fires or `--seconds` runs out,
/// writing what happens to `out`.
pub fn run(
    args: &Args,
    interrupted: &Receiver<()>,
    out: &mut dyn Write,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut builder = HttpClient::builder().addresses(args.addrs.iter().cloned());
    if let Some((user, var)) = &args.user {
        // The password's value is never printed.
        let password = std::env::var(var).map_err(|_| format!("${var} is not set"))?;
        builder = builder.user(user.clone(), password);
    }
    let client = builder.build()?;

    let _registration = match &args.register {
        Some(addr) => {
            let registrar = Registrar::builder(&client, args.prefix.clone(), addr.clone())
                .value("pid", std::process::id().to_string())
                .ttl(Duration::from_secs(10))
                .build()?;
            writeln!(
                out,
                "registering {addr} as {}",
                String::from_utf8_lossy(registrar.key())
            )?;
            Some(registrar.register()?)
        }
        None => None,
    };

    let instancer = Instancer::builder(&client, args.prefix.clone()).build()?;
    writeln!(
        out,
        "watching {:?} on {} (Ctrl-C to stop)",
        args.prefix,
        args.addrs.join(",")
    )?;
    watch_and_call(instancer, args.seconds, interrupted, out)?;
    writeln!(out, "stopping: deregistering and joining threads")?;
    Ok(()) // the Registration guard deregisters here
}

#[allow(dead_code)] // a test includes this file as a module and calls `run`
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args(std::env::args().skip(1)).map_err(|e| {
        format!(
            "{e}\nusage: etcd --addr URL[,URL...] --prefix PREFIX [--register HOST:PORT] \
             [--user NAME --password-env VAR] [--seconds N]"
        )
    })?;
    let (interrupt_tx, interrupted) = crossbeam_channel::bounded::<()>(1);
    ctrlc::set_handler(move || {
        let _ = interrupt_tx.try_send(());
    })?;
    run(&args, &interrupted, &mut std::io::stdout())
}
