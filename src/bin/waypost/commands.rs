//! The four commands. Each stops what it started (instancer threads, a registration)
//! before it returns, on Ctrl-C and SIGTERM too.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Duration;

use crossbeam_channel::{Receiver, after, bounded, select};
use std::sync::Arc;
use waypost::discovery::{DiscoveryOptions, discover, register};
use waypost::lb::{
    Balancer, ConsistentHash, P2c, PeakEwma, Random, RoundRobin, WeightedRoundRobin, ZonePreference,
};

use waypost::{DefaultEndpointer, Event, Instance, InstanceSet};

use crate::show::{self, Change};
use crate::{BalancerName, Cli, Command};

type Failure = Box<dyn StdError + Send + Sync>;

/// Runs the command `cli` names; an error is printed by `main`, exit code 1.
pub(crate) fn run(cli: &Cli) -> Result<ExitCode, Failure> {
    let options = options(cli)?;
    match &cli.command {
        Command::Watch(args) => {
            let options = match args.interval {
                Some(interval) => options.poll_interval(interval),
                None => options,
            };
            watch(&args.url, args.json, &options)
        }
        Command::Resolve(args) => resolve(&args.url, args.wait, args.json, &options),
        Command::Register(args) => register_until_stopped(args, options),
        Command::Pick(args) => pick(args, &options),
    }
}

/// Credentials from the environment; TLS from `--ca` and `--client-cert`.
fn options(cli: &Cli) -> Result<DiscoveryOptions, Failure> {
    let options = DiscoveryOptions::new().from_env();
    #[cfg(feature = "tls")]
    if cli.ca.is_some() || cli.client_cert.is_some() {
        let mut tls = waypost::TlsConfig::builder();
        if let Some(ca) = &cli.ca {
            tls = tls.ca_file(ca);
        }
        if let (Some(cert), Some(key)) = (&cli.client_cert, &cli.client_key) {
            tls = tls.client_cert_files(cert, key);
        }
        return Ok(options.tls(tls.build()?));
    }
    #[cfg(not(feature = "tls"))]
    let _ = cli;
    Ok(options)
}

/// A message on each Ctrl-C (SIGINT), SIGTERM or SIGHUP.
fn interrupts() -> Result<Receiver<()>, Failure> {
    let (tx, rx) = bounded(4);
    ctrlc::set_handler(move || {
        let _ = tx.try_send(());
    })?;
    Ok(rx)
}

/// Writes `text` and a newline to stdout, flushed: `Ok(false)` when stdout is closed
/// (`waypost watch ... | head` ends quietly).
fn emit(out: &mut impl Write, text: &str) -> io::Result<bool> {
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(err) => Err(err),
    }
}

/// `waypost watch`: every event until Ctrl-C.
fn watch(url: &str, json: bool, options: &DiscoveryOptions) -> Result<ExitCode, Failure> {
    let stop = interrupts()?;
    let instancer = discover(url, options)?;
    let events = instancer.subscribe_latest();
    let mut last: Option<InstanceSet> = None;
    let mut out = io::stdout().lock();
    let result = loop {
        let event = select! {
            recv(events.receiver()) -> event => match event {
                Ok(event) => event,
                Err(_) => break Err(Failure::from("the instancer stopped sending events")),
            },
            recv(stop) -> _ => break Ok(ExitCode::SUCCESS),
        };
        let time = show::now();
        let line = match &event {
            Event::Instances(set) => {
                let change = Change::between(last.as_ref(), set);
                match json {
                    true => show::set_json(&time, set, &change).to_string(),
                    false => show::set_text(&time, set, &change, last.is_none()),
                }
            }
            Event::Error(err) => {
                let kept = last.as_ref().map(|set| set.len());
                match json {
                    true => show::error_json(&time, err, kept).to_string(),
                    false => show::error_text(&time, err, kept),
                }
            }
        };
        if let Event::Instances(set) = event {
            last = Some(set);
        }
        match emit(&mut out, &line) {
            Ok(true) => {}
            Ok(false) => break Ok(ExitCode::SUCCESS),
            Err(err) => break Err(err.into()),
        }
    };
    drop(events);
    instancer.stop();
    result
}

/// `waypost resolve`: the first answer decides the exit code.
fn resolve(
    url: &str,
    wait: Duration,
    json: bool,
    options: &DiscoveryOptions,
) -> Result<ExitCode, Failure> {
    let stop = interrupts()?;
    let instancer = discover(url, options)?;
    let events = instancer.subscribe_latest();
    let deadline = after(wait);
    let answer = select! {
        recv(events.receiver()) -> event => event.ok(),
        recv(deadline) -> _ => None,
        recv(stop) -> _ => {
            instancer.stop();
            return Ok(ExitCode::from(130));
        }
    };
    drop(events);
    instancer.stop();
    let mut out = io::stdout().lock();
    match answer {
        Some(Event::Instances(set)) => {
            let text = match json {
                true => {
                    show::set_json(&show::now(), &set, &Change::between(None, &set)).to_string()
                }
                false => set
                    .iter()
                    .map(show::instance_line)
                    .collect::<Vec<_>>()
                    .join("\n"),
            };
            if !text.is_empty() {
                emit(&mut out, &text)?;
            }
            if set.is_empty() {
                eprintln!("waypost: {url}: the set is empty");
                return Ok(ExitCode::from(3));
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Event::Error(err)) => {
            if json {
                emit(
                    &mut out,
                    &show::error_json(&show::now(), &err, None).to_string(),
                )?;
            }
            Err(Box::new(ErrorChain(err)))
        }
        None => {
            eprintln!(
                "waypost: {url}: no answer within {:.1} s (--wait)",
                wait.as_secs_f64()
            );
            Ok(ExitCode::from(4))
        }
    }
}

/// An error of an event, shared, printed with its causes.
#[derive(Debug)]
struct ErrorChain(Arc<waypost::Error>);

impl std::fmt::Display for ErrorChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl StdError for ErrorChain {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.source()
    }
}

/// `waypost register`: registered until Ctrl-C or SIGTERM, then deregistered.
fn register_until_stopped(
    args: &crate::Register,
    mut options: DiscoveryOptions,
) -> Result<ExitCode, Failure> {
    let stop = interrupts()?;
    let addr = Instance::parse(&args.addr)?;
    let mut instance = Instance::builder(addr.addr_arc().clone());
    for tag in &args.tag {
        instance = instance.tag(tag.as_str());
    }
    for (key, value) in &args.meta {
        instance = instance.value(key.as_str(), value.as_str());
    }
    if let Some(weight) = args.weight {
        instance = instance.weight(weight);
    }
    if let Some(zone) = &args.zone {
        instance = instance.zone(zone.as_str());
    }
    if let Some(ttl) = args.ttl {
        options = options.ttl(ttl);
    }
    let instance = instance.build();
    let registration = register(&args.url, &instance, &options)?;
    let mut out = io::stdout().lock();
    emit(
        &mut out,
        &format!(
            "{}  registered {} at {} (Ctrl-C deregisters)",
            show::now(),
            show::instance_line(&instance),
            args.url
        ),
    )?;
    let _ = stop.recv();
    registration.deregister()?;
    emit(
        &mut out,
        &format!("{}  deregistered {}", show::now(), instance.addr()),
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `waypost pick`: `-n` picks over the current set, then how they spread.
fn pick(args: &crate::Pick, options: &DiscoveryOptions) -> Result<ExitCode, Failure> {
    let stop = interrupts()?;
    let instancer = discover(&args.url, options)?;
    let endpointer = Arc::new(DefaultEndpointer::new(instancer, |i: &Instance| {
        Ok(i.clone())
    })?);
    // Ready within --wait, or interrupted: the wait runs on a thread of its own, which
    // ends when the endpointer is ready, gives up, or is closed.
    let (tx, waiting) = bounded(1);
    let waiter = {
        let endpointer = endpointer.clone();
        let wait = args.wait;
        std::thread::Builder::new()
            .name("waypost-cli-wait".into())
            .spawn(move || {
                let _ = tx.send(endpointer.wait_ready(wait));
            })?
    };
    let ready = select! {
        recv(waiting) -> ready => Some(ready),
        recv(stop) -> _ => None,
    };
    let Some(ready) = ready else {
        endpointer.close();
        let _ = waiter.join();
        return Ok(ExitCode::from(130));
    };
    let _ = waiter.join();
    match ready {
        Ok(Ok(())) => {}
        Ok(Err(err)) if err.is_timeout() => {
            eprintln!(
                "waypost: {}: no answer within {:.1} s (--wait)",
                args.url,
                args.wait.as_secs_f64()
            );
            endpointer.close();
            return Ok(ExitCode::from(4));
        }
        Ok(Err(err)) => return Err(err.into()),
        Err(_) => return Err("waiting for the first set failed".into()),
    }
    let mut out = io::stdout().lock();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut record = |out: &mut io::StdoutLock<'_>, n: usize, instance: &Instance| {
        *counts.entry(instance.addr().to_owned()).or_default() += 1;
        emit(out, &format!("{n}  {}", instance.addr()))
    };
    if args.balancer == BalancerName::ConsistentHash {
        let hash = ConsistentHash::new(endpointer.clone())?;
        for n in 0..args.n {
            let key = args.key.clone().unwrap_or_else(|| n.to_string());
            let pick = hash.pick_for(key.as_bytes())?;
            if !record(&mut out, n, &pick)? {
                break;
            }
        }
    } else {
        let balancer = balancer(args, &endpointer)?;
        for n in 0..args.n {
            let pick = balancer.pick()?;
            if !record(&mut out, n, &pick)? {
                break;
            }
        }
    }
    let total: usize = counts.values().sum();
    for (addr, count) in &counts {
        let share = 100.0 * *count as f64 / total.max(1) as f64;
        emit(
            &mut out,
            &format!("# {addr}  {count} of {total} ({share:.1} %)"),
        )?;
    }
    endpointer.close();
    Ok(ExitCode::SUCCESS)
}

/// The balancer `--balancer` names (not consistent-hash, which picks per key), with
/// zone preference around it for `--zone`.
fn balancer(
    args: &crate::Pick,
    endpointer: &Arc<DefaultEndpointer<Instance>>,
) -> Result<Box<dyn Balancer<Instance>>, Failure> {
    let e = endpointer.clone();
    let inner: Box<dyn Balancer<Instance>> = match (args.balancer, args.seed) {
        (BalancerName::RoundRobin, None) => Box::new(RoundRobin::new(e)),
        (BalancerName::RoundRobin, Some(seed)) => Box::new(RoundRobin::with_seed(e, seed)),
        (BalancerName::Random, None) => Box::new(Random::new(e)),
        (BalancerName::Random, Some(seed)) => Box::new(Random::with_seed(e, seed)),
        (BalancerName::P2c, None) => Box::new(P2c::new(e)?),
        (BalancerName::P2c, Some(seed)) => Box::new(P2c::with_seed(e, seed)?),
        (BalancerName::PeakEwma, None) => Box::new(PeakEwma::new(e)?),
        (BalancerName::PeakEwma, Some(seed)) => Box::new(PeakEwma::builder(e).seed(seed).build()?),
        (BalancerName::WeightedRoundRobin, None) => Box::new(WeightedRoundRobin::new(e)?),
        (BalancerName::WeightedRoundRobin, Some(seed)) => {
            Box::new(WeightedRoundRobin::with_seed(e, seed)?)
        }
        (BalancerName::ConsistentHash, _) => unreachable!("picked per key by the caller"),
    };
    Ok(match &args.zone {
        Some(zone) => Box::new(ZonePreference::new(inner, zone)?),
        None => inner,
    })
}
