//! `waypost`: watch, resolve, register and pick through discovery URLs, from a
//! terminal or a script. Built with the `cli` feature:
//!
//! ```text
//! cargo install waypost --features cli
//! waypost watch consul://127.0.0.1:8500/billing
//! ```
//!
//! Credentials come from the environment (`CONSUL_HTTP_TOKEN`, `ETCD_USERNAME` and
//! `ETCD_PASSWORD`, ...), never from the command line, and are never printed.

mod commands;
mod logger;
mod show;

use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

/// One example per scheme, shown under every command's `--help`.
const URLS: &str = "\
Discovery URLs (one example per scheme):
  consul://127.0.0.1:8500/billing?tag=v2&passing=false&dc=eu1
  consul+https://agent.example.test:8501/billing
  etcd://10.0.0.1:2379,10.0.0.2:2379/services/billing/
  zk://10.0.0.1:2181/services/billing?format=curator
  dns+srv://10.0.0.53:53/_billing._tcp.example.test   (no server: the system's)
  dns:///billing.example.test:8080                    (A/AAAA, with a port)
  eureka://10.0.0.1:8761/eureka/BILLING
  file:///etc/waypost/billing.txt
  memory://billing                                    (this process only)

Credentials come from the environment, never from a URL: CONSUL_HTTP_TOKEN,
ETCD_USERNAME and ETCD_PASSWORD, ZK_DIGEST_USER and ZK_DIGEST_PASSWORD,
EUREKA_USERNAME and EUREKA_PASSWORD. They are never printed.";

/// Exit codes, under `resolve --help` and the top-level help.
const CODES: &str = "\
Exit codes:
  0  done (resolve: the set is not empty)
  1  an error: a bad URL, a registry that answers with an error, ...
  2  bad arguments
  3  resolve: the registry answered with an empty set
  4  resolve, pick: no answer within --wait
  130  interrupted (Ctrl-C) before an answer";

#[derive(Debug, Parser)]
#[command(
    name = "waypost",
    version,
    about = "Watch, resolve, register and pick service instances through discovery URLs.",
    after_help = format!("{URLS}\n\n{CODES}"),
    propagate_version = true
)]
struct Cli {
    /// More log lines on stderr: -v info, -vv debug (waypost's own logs).
    #[arg(short, long, action = ArgAction::Count, global = true)]
    verbose: u8,

    /// A CA certificate (PEM) to trust for `+https` URLs, beside the Mozilla roots.
    #[cfg(feature = "tls")]
    #[arg(long, value_name = "FILE", global = true)]
    ca: Option<std::path::PathBuf>,

    /// A client certificate (PEM) for `+https` URLs; with --client-key.
    #[cfg(feature = "tls")]
    #[arg(long, value_name = "FILE", global = true, requires = "client_key")]
    client_cert: Option<std::path::PathBuf>,

    /// The client certificate's private key (PEM).
    #[cfg(feature = "tls")]
    #[arg(long, value_name = "FILE", global = true, requires = "client_cert")]
    client_key: Option<std::path::PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Prints the current set at once, then every change as it happens, until Ctrl-C.
    #[command(after_help = URLS)]
    Watch(Watch),
    /// Prints the current set once and exits (see the exit codes).
    #[command(after_help = format!("{URLS}\n\n{CODES}"))]
    Resolve(Resolve),
    /// Registers an address until Ctrl-C or SIGTERM, then deregisters it.
    #[command(after_help = URLS)]
    Register(Register),
    /// Prints the picks a client's balancer would make over the current set.
    ///
    /// No call is made and each pick ends at once, so the balancers that learn from
    /// calls (p2c, peak-ewma) show their choices with no load and no latency yet.
    #[command(after_help = URLS)]
    Pick(Pick),
}

#[derive(Debug, Args)]
struct Watch {
    /// The discovery URL of the service to watch.
    url: String,
    /// One JSON object per event, a line each, for scripts.
    #[arg(long)]
    json: bool,
    /// How often to ask a registry that is polled (Eureka, DNS, a file); Consul,
    /// etcd and ZooKeeper push changes. Default: the backend's.
    #[arg(long, value_name = "SECONDS", value_parser = seconds)]
    interval: Option<Duration>,
}

#[derive(Debug, Args)]
struct Resolve {
    /// The discovery URL of the service.
    url: String,
    /// How long to wait for the registry's first answer.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = seconds)]
    wait: Duration,
    /// The set as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct Register {
    /// The discovery URL of the service to register in (not dns, dns+srv or file).
    url: String,
    /// This instance's address.
    #[arg(long, value_name = "HOST:PORT")]
    addr: String,
    /// A metadata value (repeat for more).
    #[arg(long, value_name = "KEY=VALUE", value_parser = key_value)]
    meta: Vec<(String, String)>,
    /// A tag (repeat for more).
    #[arg(long, value_name = "TAG")]
    tag: Vec<String>,
    /// The instance's weight, for weighted balancers.
    #[arg(long)]
    weight: Option<u32>,
    /// The instance's zone.
    #[arg(long)]
    zone: Option<String>,
    /// How long the registration outlives this process if it dies without
    /// deregistering (Consul's TTL check, etcd's lease, ZooKeeper's session, Eureka's
    /// lease). Default: the backend's.
    #[arg(long, value_name = "SECONDS", value_parser = seconds)]
    ttl: Option<Duration>,
}

#[derive(Debug, Args)]
struct Pick {
    /// The discovery URL of the service.
    url: String,
    /// The balancer.
    #[arg(long, value_enum, default_value_t = BalancerName::RoundRobin)]
    balancer: BalancerName,
    /// How many picks.
    #[arg(short = 'n', default_value_t = 10)]
    n: usize,
    /// consistent-hash: the key to pick for (default: the pick's number, 0, 1, ...).
    #[arg(long)]
    key: Option<String>,
    /// Prefer instances of this zone (zone preference around the balancer).
    #[arg(long)]
    zone: Option<String>,
    /// A seed for the balancers that draw (random, p2c, peak-ewma) or start at a
    /// random place (round-robin, weighted-round-robin): the same picks on every run.
    #[arg(long)]
    seed: Option<u64>,
    /// How long to wait for the registry's first answer.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = seconds)]
    wait: Duration,
}

/// The balancers `pick` can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BalancerName {
    RoundRobin,
    Random,
    P2c,
    PeakEwma,
    WeightedRoundRobin,
    ConsistentHash,
}

/// Whole or fractional seconds: `10`, `0.5`.
fn seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{text:?} is not a number of seconds"))
}

/// `KEY=VALUE`, the key not empty.
fn key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.command {
        // Heartbeat failures and registering again are what an operator watches for.
        Command::Register(_) => log::LevelFilter::Info,
        _ => log::LevelFilter::Off,
    };
    let level = match cli.verbose {
        0 => default_level,
        1 => default_level.max(log::LevelFilter::Info),
        _ => log::LevelFilter::Debug,
    };
    logger::init(level);
    match commands::run(&cli) {
        Ok(code) => code,
        Err(err) => {
            let mut lines = show::causes(&*err).into_iter();
            eprintln!("waypost: error: {}", lines.next().unwrap_or_default());
            for cause in lines {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(1)
        }
    }
}
