//! The ACL token never reaches a log record: a capture logger (this binary's global
//! logger, at trace level, so ureq's own records are seen too) records everything while
//! the client, instancer and registrar meet refusals, errors and unreachable agents.
#![cfg(feature = "consul")]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use support::fake_http::{Answer, FakeHttp, refused_base};
use support::{BOUND, wait_until};
use waypost::Event;
use waypost::consul::{HttpClient, Instancer, Registrar};

const TOKEN: &str = "5ecr3t-70ken-d0-not-log";

static RECORDS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        RECORDS.lock().push(format!(
            "{} {} {}",
            record.level(),
            record.target(),
            record.args()
        ));
    }
    fn flush(&self) {}
}

#[test]
fn the_token_never_appears_in_a_log_record() {
    log::set_logger(&Capture).unwrap();
    log::set_max_level(log::LevelFilter::Trace);

    // An agent that refuses everything (403), fails passes (500) and forgets services.
    let passes = AtomicUsize::new(0);
    let server = FakeHttp::start(move |seen| {
        assert_eq!(seen.header("X-Consul-Token"), Some(TOKEN));
        match (seen.method.as_str(), seen.path.as_str()) {
            ("PUT", p)
                if p.starts_with("/v1/agent/check/pass/")
                    && passes.fetch_add(1, Ordering::SeqCst) == 0 =>
            {
                Answer::with_type(200, "text/plain", "")
            }
            ("GET", p) if p.starts_with("/v1/health/") => {
                Answer::with_type(403, "text/plain", "ACL not found")
            }
            ("PUT", p) if p.starts_with("/v1/agent/check/pass/") => {
                Answer::with_type(500, "text/plain", "CheckID does not have associated TTL")
            }
            ("GET", _) => Answer::with_type(404, "text/plain", "unknown service"),
            _ => Answer::with_type(200, "text/plain", ""),
        }
    });
    let client = HttpClient::builder()
        .addresses([refused_base(), server.base()])
        .token(TOKEN)
        .build()
        .unwrap();
    let instancer = Instancer::builder(&client, "web").build().unwrap();
    let rx = support::events::subscribe(&instancer);
    match rx.recv_timeout(BOUND).unwrap() {
        Event::Error(err) => assert_eq!(err.status(), Some(403)),
        other => panic!("{other:?}"),
    }

    // register() works once; then the heartbeat's passes fail, the agent says it
    // does not know the service, and registering again fails on the pass.
    let registrar = Registrar::builder(&client, "web", "10.0.0.1", 80)
        .ttl(Duration::from_secs(1))
        .build()
        .unwrap();
    let _registrar_registration = registrar.register().unwrap();
    let unreachable = HttpClient::builder()
        .address(refused_base())
        .token(TOKEN)
        .build()
        .unwrap();
    let lost = Instancer::builder(&unreachable, "web").build().unwrap();
    wait_until("warnings from both watches and the heartbeat", || {
        let records = RECORDS.lock();
        let consul = records.iter().filter(|r| r.contains("waypost::consul"));
        consul.filter(|r| r.contains("again")).count() >= 2
    });
    log::debug!(target: "test", "{client:?} {registrar:?} {instancer:?}");
    drop((lost, registrar, instancer));

    let records = RECORDS.lock();
    assert!(records.len() > 3, "the logger saw records: {records:?}");
    for record in records.iter() {
        assert!(!record.contains(TOKEN), "token in a log record: {record}");
    }
    println!("{} records checked, none holds the token", records.len());
}
