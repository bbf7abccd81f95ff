//! `Duration::ZERO` and `Duration::MAX` for every duration option of the file and
//! Consul builders and of `ManualClock`: each is either refused by `build()` with
//! `Error::InvalidConfig` naming the option, or does what its docs say, and never
//! panics a thread. Each case builds, runs the thing briefly and stops it.

mod support;

use std::time::Duration;

use support::events::{next_addrs, subscribe};
use support::stop_promptly;
use waypost::{Clock, Error, ManualClock};

const ZERO: Duration = Duration::ZERO;
const MAX: Duration = Duration::MAX;

/// The field of the `InvalidConfig` that `result` must be.
fn refused<T: std::fmt::Debug>(result: waypost::Result<T>) -> &'static str {
    match result {
        Err(Error::InvalidConfig { field, .. }) => field,
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

#[test]
fn manual_clock_advance() {
    let clock = ManualClock::new();
    let start = clock.now();
    let timer = clock.after(start + Duration::from_secs(3600));
    clock.advance(ZERO);
    assert_eq!(clock.now(), start);
    assert!(timer.try_recv().is_err());
    clock.advance(MAX); // to the last representable instant: every timer fires
    assert!(timer.try_recv().is_ok());
    clock.advance(MAX);
    assert!(clock.now() > start);
}

#[test]
fn file_poll_interval() {
    use waypost::file::FileInstancer;
    let scratch = support::scratch::Scratch::new();
    scratch.replace("10.0.0.1:80\n");
    let build = |interval| {
        FileInstancer::builder(&scratch.file)
            .poll_interval(interval)
            .build()
    };
    assert_eq!(refused(build(ZERO)), "poll_interval");
    // MAX: no second read would ever confirm the first, so nothing would be published.
    assert_eq!(refused(build(MAX)), "poll_interval");

    // Just below "forever": a poll that far off is waited for on the clock, and then
    // confirms the first read.
    let years_99 = Duration::from_secs(99 * 365 * 24 * 60 * 60);
    let clock = ManualClock::new();
    let instancer = FileInstancer::builder(&scratch.file)
        .poll_interval(years_99)
        .clock(clock.clone())
        .build()
        .unwrap();
    let rx = subscribe(&instancer);
    assert!(rx.try_recv().is_err(), "not yet confirmed");
    support::wait_until("the first read", || clock.pending_timers() > 0);
    clock.advance(years_99);
    assert_eq!(next_addrs(&rx), ["10.0.0.1:80"]);
    stop_promptly(&instancer);
}

#[cfg(feature = "consul")]
mod consul {
    use super::*;
    use crossbeam_channel::{Receiver, unbounded};
    use support::BOUND;
    use support::events::{is_error, next};
    use support::fake_consul::{Op, Script, Step, scripted};
    use support::fake_http::{Answer, FakeHttp, refused_base};
    use waypost::Event;
    use waypost::consul::{
        Client, HealthQuery, HttpClient, Instancer, InstancerBuilder, Registrar,
    };

    const ENTRY: &str = r#"[{"Node":{"Node":"n1","Address":"10.0.0.9"},
      "Service":{"ID":"web-1","Service":"web","Address":"10.0.0.1","Port":80}}]"#;

    /// An instancer on a scripted client, with `configure` applied.
    fn instancer(
        configure: impl FnOnce(InstancerBuilder) -> InstancerBuilder,
    ) -> (waypost::Result<Instancer>, Script) {
        let (client, script) = scripted();
        let builder = Instancer::builder(&client, "web").first_fetch_timeout(ZERO);
        (configure(builder).build(), script)
    }

    #[test]
    fn instancer_wait() {
        assert_eq!(refused(instancer(|b| b.wait(ZERO)).0), "wait");
        assert_eq!(refused(instancer(|b| b.wait(MAX)).0), "wait");
    }

    #[test]
    fn instancer_min_interval() {
        assert_eq!(
            refused(instancer(|b| b.min_interval(MAX)).0),
            "min_interval"
        );

        // ZERO: no guard: answers without a newer index are followed at once.
        let (built, script) = instancer(|b| b.min_interval(ZERO));
        let instancer = built.unwrap();
        let rx = subscribe(&instancer);
        for _ in 0..3 {
            script.next_query();
            script.answer(7, &["10.0.0.1:80"]);
        }
        assert_eq!(next_addrs(&rx), ["10.0.0.1:80"]);
        assert_eq!(script.next_query(), 7);
        stop_promptly(&instancer);
    }

    #[test]
    fn instancer_backoff() {
        assert_eq!(refused(instancer(|b| b.backoff(MAX, ZERO)).0), "backoff");

        // ZERO counts as 1 ms, and MAX as a cap lets the delay grow: errors are
        // retried either way.
        for (initial, max) in [(ZERO, ZERO), (ZERO, MAX)] {
            let (built, script) = instancer(|b| b.backoff(initial, max));
            let instancer = built.unwrap();
            let rx = subscribe(&instancer);
            for _ in 0..3 {
                script.next_query();
                script.send(Step::Fail);
            }
            assert!(is_error(&next(&rx)));
            script.next_query();
            script.answer(1, &["10.0.0.1:80"]);
            assert_eq!(next_addrs(&rx), ["10.0.0.1:80"]);
            stop_promptly(&instancer);
        }

        // MAX as the first delay: never retried; the error stays until stop.
        let (built, script) = instancer(|b| b.backoff(MAX, MAX));
        let instancer = built.unwrap();
        let rx = subscribe(&instancer);
        script.next_query();
        script.send(Step::Fail);
        assert!(is_error(&next(&rx)));
        stop_promptly(&instancer);
        let ops: Vec<Op> = script.ops.try_iter().collect();
        assert!(ops.is_empty(), "retried: {ops:?}");
    }

    #[test]
    fn instancer_first_fetch_timeout() {
        // ZERO: build() returns before any answer; the state arrives later.
        let (built, script) = instancer(|b| b.first_fetch_timeout(ZERO));
        let instancer = built.unwrap();
        let rx = subscribe(&instancer);
        assert!(rx.try_recv().is_err(), "no state yet");
        script.next_query();
        script.answer(3, &["10.0.0.1:80"]);
        assert_eq!(next_addrs(&rx), ["10.0.0.1:80"]);
        stop_promptly(&instancer);

        // MAX: build() waits for the first answer, however late.
        let (client, script) = scripted();
        let answerer = std::thread::spawn(move || {
            script.next_query();
            script.answer(3, &["10.0.0.1:80"]);
            script
        });
        let instancer = Instancer::builder(&client, "web")
            .first_fetch_timeout(MAX)
            .build()
            .unwrap();
        let rx = subscribe(&instancer);
        let state = rx
            .try_recv()
            .expect("the state is known when build() returns");
        assert!(matches!(state, Event::Instances(set) if set.len() == 1));
        let _script = answerer.join().unwrap();
        stop_promptly(&instancer);
    }

    #[test]
    fn registrar_ttl_and_check_intervals() {
        let (client, script) = scripted();
        let b = || Registrar::builder(&client, "web", "10.0.0.1", 80);
        assert_eq!(refused(b().ttl(ZERO).build()), "ttl");
        assert_eq!(refused(b().ttl(MAX).build()), "ttl");
        for interval in [ZERO, MAX] {
            assert_eq!(
                refused(b().http_check("http://h/", interval).build()),
                "check"
            );
            assert_eq!(refused(b().tcp_check("h:1", interval).build()), "check");
        }
        assert!(script.ops.try_recv().is_err(), "nothing was sent");
    }

    #[test]
    fn registrar_deregister_critical_service_after() {
        let (client, script) = scripted();
        let registered = |after| {
            let r = Registrar::builder(&client, "web", "10.0.0.1", 80)
                .http_check("http://10.0.0.1/health", Duration::from_secs(5))
                .deregister_critical_service_after(after)
                .build()
                .unwrap();
            let guard = r.register().unwrap();
            let Op::Register(registration) = script.next_op() else {
                panic!("expected a registration");
            };
            drop((guard, r));
            script.ops.try_iter().for_each(drop); // the deregistration
            registration
                .check
                .unwrap()
                .deregister_critical_service_after
        };
        // ZERO: the least Consul takes (Consul raises it to one minute).
        assert_eq!(registered(ZERO).as_deref(), Some("1ms"));
        // MAX: never, as by default.
        assert_eq!(registered(MAX), None);
    }

    /// A fake agent whose blocking queries (with an index) are held until `release`
    /// disconnects or 30 s pass.
    fn agent() -> (FakeHttp, crossbeam_channel::Sender<()>, Receiver<()>) {
        let (release, held) = crossbeam_channel::bounded::<()>(0);
        let (entered_tx, entered) = unbounded();
        let server = FakeHttp::start(move |seen| {
            if seen.query_value("index").is_some() {
                let _ = entered_tx.send(());
                let _ = held.recv_timeout(Duration::from_secs(30));
            }
            Answer::json(ENTRY).header("X-Consul-Index", 5)
        });
        (server, release, entered)
    }

    #[test]
    fn http_client_timeouts() {
        let build = |connect, request| {
            HttpClient::builder()
                .address(refused_base())
                .connect_timeout(connect)
                .request_timeout(request)
                .build()
        };
        let second = Duration::from_secs(1);
        assert_eq!(refused(build(ZERO, second)), "connect_timeout");
        assert_eq!(refused(build(second, ZERO)), "request_timeout");

        for (connect, request) in [(MAX, second), (second, MAX), (MAX, MAX)] {
            // Nothing listens: a typed connect error, no panic.
            let client = build(connect, request).unwrap();
            let mut query = HealthQuery::default();
            query.wait = Duration::from_secs(1);
            assert!(client.health_service("web", &query).is_err());

            // A blocking query (its wait is added to the request timeout) held by
            // the agent: the watch runs, and stop() cuts the held query short.
            let (server, _release, entered) = agent();
            let client = HttpClient::builder()
                .address(server.base())
                .connect_timeout(connect)
                .request_timeout(request)
                .build()
                .unwrap();
            let instancer = Instancer::builder(&client, "web").build().unwrap();
            let rx = subscribe(&instancer);
            assert_eq!(next_addrs(&rx), ["10.0.0.1:80"]);
            entered.recv_timeout(BOUND).expect("a blocking query");
            stop_promptly(&instancer);
            assert!(
                rx.try_recv().is_err(),
                "no error event: {connect:?} {request:?}"
            );
        }
    }

    #[test]
    fn health_query_wait_through_the_client() {
        // The Client trait is public: a blocking query's MAX wait must not overflow
        // its timeout either. This agent answers at once.
        let server = FakeHttp::start(|_| Answer::json(ENTRY).header("X-Consul-Index", 5));
        let client = HttpClient::builder()
            .address(server.base())
            .build()
            .unwrap();
        for wait in [ZERO, MAX] {
            let mut query = HealthQuery::default();
            query.index = 1;
            query.wait = wait;
            assert_eq!(client.health_service("web", &query).unwrap().index, 5);
        }
    }
}
