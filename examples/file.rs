//! Watches an instance file and prints every event.
//!
//! ```text
//! cargo run --example file -- PATH [--seconds N] [--poll-ms N]
//! ```
//!
//! Runs until Ctrl-C, or for N seconds. Try it: in another terminal, change the file
//! (`printf '10.0.0.1:80\n' > tmp && mv tmp PATH` for an atomic replace, or edit it in
//! place), write a bad line, delete the file and put it back. A change shows one to two
//! poll intervals after it is written: it is published once two reads one interval
//! apart agree, so a file caught mid-write never is.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use waypost::Event;
use waypost::crossbeam_channel::unbounded;
use waypost::file::FileInstancer;

const USAGE: &str = "usage: file PATH [--seconds N] [--poll-ms N]";

struct Args {
    path: String,
    seconds: Option<u64>,
    poll: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut path, mut seconds, mut poll) = (None, None, Duration::from_secs(1));
    while let Some(arg) = args.next() {
        let mut number = |flag: &str| -> Result<u64, String> {
            let value = args.next().ok_or(format!("{flag} needs a value"))?;
            value
                .parse()
                .map_err(|_| format!("{flag}: not a number: {value}"))
        };
        match arg.as_str() {
            "--seconds" => seconds = Some(number("--seconds")?),
            "--poll-ms" => poll = Duration::from_millis(number("--poll-ms")?),
            "-h" | "--help" => return Err(USAGE.into()),
            flag if flag.starts_with("--") => return Err(format!("unknown flag {flag}")),
            _ if path.is_none() => path = Some(arg),
            _ => return Err(format!("unexpected argument {arg}")),
        }
    }
    let path = path.ok_or("missing PATH")?;
    Ok(Args {
        path,
        seconds,
        poll,
    })
}

fn print(event: &Event) {
    match event {
        Event::Instances(set) => {
            println!("{} instances", set.len());
            for instance in set.iter() {
                let mut line = format!("  {instance}");
                if let Some(meta) = instance.metadata() {
                    if let Some(weight) = meta.weight() {
                        line += &format!(" weight={weight}");
                    }
                    if let Some(zone) = meta.zone() {
                        line += &format!(" zone={zone}");
                    }
                    for tag in meta.tags() {
                        line += &format!(" tag={tag}");
                    }
                }
                println!("{line}");
            }
        }
        Event::Error(err) => match std::error::Error::source(&**err) {
            Some(source) => println!("error: {err}: {source} (keeping the last set)"),
            None => println!("error: {err} (keeping the last set)"),
        },
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let instancer = match FileInstancer::builder(&args.path)
        .poll_interval(args.poll)
        .build()
    {
        Ok(instancer) => instancer,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::FAILURE;
        }
    };
    let (tx, rx) = unbounded();
    instancer.subscribe(tx);
    let deadline = args
        .seconds
        .map(|s| Instant::now() + Duration::from_secs(s));
    loop {
        let event = match deadline {
            Some(deadline) => rx.recv_deadline(deadline).ok(),
            None => rx.recv().ok(),
        };
        match event {
            Some(event) => print(&event),
            None => break, // the deadline passed
        }
    }
    instancer.stop();
    ExitCode::SUCCESS
}
