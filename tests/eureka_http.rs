//! The Eureka `HttpClient` against the Eureka server double
//! (`tests/support/eureka_double.rs`): each call's request as the double logged it, the
//! answers' outcomes, fail-over between peers, Basic auth, broken answers, shutdown.
#![cfg(feature = "eureka")]

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::BOUND;
use support::eureka_double::{Broken, EurekaDouble, Logged};
use support::fake_http::{Answer, FakeHttp};
use waypost::eureka::{Client, HttpClient, InstanceInfo, Status};
use waypost::{Error, HttpError, HttpErrorKind};

fn client(d: &EurekaDouble) -> HttpClient {
    HttpClient::builder().server(d.url()).build().unwrap()
}

fn web(id: &str, port: u16) -> InstanceInfo {
    InstanceInfo::new("web-app", id, "host-1", "127.0.0.1")
        .with_port(port)
        .with_metadata("zone", "a")
}

/// The last request the double logged.
fn last(d: &EurekaDouble) -> Logged {
    d.requests().pop().expect("a request")
}

/// The `HttpError` of a failed call.
fn http_error<T: std::fmt::Debug>(result: waypost::Result<T>) -> Box<HttpError> {
    match result {
        Err(Error::Http(h)) => h,
        other => panic!("not an HTTP error: {other:?}"),
    }
}

fn assert_json_call(r: &Logged, method: &str, path: &str, status: u16) {
    assert_eq!(
        (r.method.as_str(), r.path.as_str(), r.status),
        (method, path, status),
        "{r:#?}"
    );
    let accepts: Vec<_> = (r.headers.iter())
        .filter(|(name, _)| name.eq_ignore_ascii_case("accept"))
        .map(|(_, value)| value.as_str())
        .collect();
    assert_eq!(accepts, ["application/json"], "{r:#?}");
}

#[test]
fn register_renew_and_cancel_as_the_double_logs_them() {
    let d = EurekaDouble::start();
    let c = client(&d);
    c.register(&web("w1", 8080)).unwrap();
    let r = last(&d);
    assert_json_call(&r, "POST", "/eureka/apps/WEB-APP", 204);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    let i = &body["instance"];
    assert_eq!(i["app"], "WEB-APP");
    assert_eq!(i["instanceId"], "w1");
    assert_eq!(i["status"], "UP");
    assert_eq!(i["overriddenstatus"], "UNKNOWN");
    assert_eq!(i["port"], json!({"$": 8080, "@enabled": "true"}));
    assert_eq!(i["securePort"], json!({"$": 0, "@enabled": "false"}));
    assert_eq!(i["dataCenterInfo"]["name"], "MyOwn");
    assert_eq!(
        i["leaseInfo"],
        json!({"renewalIntervalInSecs": 30, "durationInSecs": 90})
    );
    assert_eq!(i["metadata"], json!({"zone": "a"}));
    let dirty = i["lastDirtyTimestamp"].as_str().unwrap();
    assert!(dirty.parse::<u64>().unwrap() > 1_600_000_000_000, "{dirty}");
    let held = d.instances("web-app");
    assert_eq!(held.len(), 1);
    assert_eq!((held[0].port, held[0].status.as_str()), (8080, "UP"));

    assert!(c.renew("web-app", "w1").unwrap());
    let r = last(&d);
    assert_json_call(&r, "PUT", "/eureka/apps/WEB-APP/w1", 200);
    // An empty PUT says so, rather than being sent chunked.
    let lengths: Vec<_> = (r.headers.iter())
        .filter(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .collect();
    assert_eq!(lengths.len(), 1, "{r:#?}");
    assert_eq!(lengths[0].1, "0");
    assert_eq!(r.header("transfer-encoding"), None);
    assert!(!c.renew("web-app", "nope").unwrap(), "an unknown instance");
    assert_json_call(&last(&d), "PUT", "/eureka/apps/WEB-APP/nope", 404);

    assert!(c.cancel("Web-App", "w1").unwrap());
    assert_json_call(&last(&d), "DELETE", "/eureka/apps/WEB-APP/w1", 200);
    assert!(!c.cancel("web-app", "w1").unwrap(), "gone already");
    assert!(d.instances("web-app").is_empty());
}

#[test]
fn registering_again_replaces_the_instance() {
    let d = EurekaDouble::start();
    let c = client(&d);
    c.register(&web("w1", 8080).with_status(Status::Starting))
        .unwrap();
    assert_eq!(d.instances("web-app")[0].status, "STARTING");
    c.register(&web("w1", 8080)).unwrap();
    assert_eq!(d.instances("web-app")[0].status, "UP");
}

#[test]
fn reads_give_back_what_was_registered() {
    let d = EurekaDouble::start();
    let c = client(&d);
    let w1 = web("w1", 8080);
    let mut w2 = web("host:web-app:8081", 8081).with_secure_port(8443);
    w2.health_check_url = Some("http://host-1:8081/health".into());
    c.register(&w1).unwrap();
    c.register(&w2).unwrap();
    assert_json_call(&last(&d), "POST", "/eureka/apps/WEB-APP", 204);

    let mut got = c.app("web-app").unwrap().expect("known");
    assert_json_call(&last(&d), "GET", "/eureka/apps/WEB-APP", 200);
    got.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    assert_eq!(got, [w2.clone(), w1.clone()]);

    // An id with ':' (Spring's default form) is escaped in the path.
    assert!(c.renew("web-app", "host:web-app:8081").unwrap());
    let r = last(&d);
    assert_eq!(r.path, "/eureka/apps/WEB-APP/host%3Aweb-app%3A8081");

    let by_vip = c.vip("web-app").unwrap();
    assert_json_call(&last(&d), "GET", "/eureka/vips/web-app", 200);
    assert_eq!(by_vip.len(), 2);
    assert!(c.vip("nobody").unwrap().is_empty());

    assert_eq!(c.app("unknown").unwrap(), None);
    assert_json_call(&last(&d), "GET", "/eureka/apps/UNKNOWN", 404);
    assert_eq!(c.apps_count().unwrap(), 1);
    assert_json_call(&last(&d), "GET", "/eureka/apps/", 200);
}

#[test]
fn status_overrides_are_put_and_deleted() {
    let d = EurekaDouble::start();
    let c = client(&d);
    c.register(&web("w1", 8080)).unwrap();

    c.set_status_override("web-app", "w1", Status::OutOfService)
        .unwrap();
    let r = last(&d);
    assert_json_call(&r, "PUT", "/eureka/apps/WEB-APP/w1/status", 200);
    assert_eq!(r.query, "value=OUT_OF_SERVICE");
    let read = c.app("web-app").unwrap().unwrap();
    assert_eq!(
        (read[0].status, read[0].overridden_status),
        (Status::OutOfService, Status::OutOfService)
    );
    // The override sticks over the instance's own UP.
    c.register(&web("w1", 8080)).unwrap();
    assert_eq!(d.instances("web-app")[0].status, "OUT_OF_SERVICE");

    c.remove_status_override("web-app", "w1").unwrap();
    let r = last(&d);
    assert_json_call(&r, "DELETE", "/eureka/apps/WEB-APP/w1/status", 200);
    assert_eq!(r.query, "");
    let read = c.app("web-app").unwrap().unwrap();
    assert_eq!(read[0].overridden_status, Status::Unknown);
    // Without a fallback status Eureka leaves the instance UNKNOWN and answers its next
    // renewal with 404: the client registers again.
    assert!(!c.renew("web-app", "w1").unwrap());
    c.register(&web("w1", 8080)).unwrap();
    assert_eq!(d.instances("web-app")[0].status, "UP");

    let err = http_error(c.set_status_override("web-app", "nope", Status::Down));
    assert_eq!((err.kind, err.status), (HttpErrorKind::Status, Some(404)));
}

#[test]
fn a_wrong_prefix_makes_apps_count_an_error() {
    let d = EurekaDouble::start();
    let c = HttpClient::builder()
        .server(format!("http://127.0.0.1:{}/eureka/v2/", d.port()))
        .build()
        .unwrap();
    let err = http_error(c.apps_count());
    assert_eq!((err.kind, err.status), (HttpErrorKind::Status, Some(404)));
    assert_eq!(&*err.endpoint, "GET /apps/");
    assert_eq!(last(&d).path, "/eureka/v2/apps/");
    // The ambiguity apps_count resolves: an app's 404 alone cannot tell.
    assert_eq!(c.app("web").unwrap(), None);
    assert!(c.register(&web("w1", 8080)).is_err());
}

#[test]
fn calls_fail_over_to_the_next_peer() {
    let first = EurekaDouble::start();
    let second = EurekaDouble::start();
    first.stop();
    let c = HttpClient::builder()
        .servers([first.url(), second.url()])
        .build()
        .unwrap();
    c.register(&web("w1", 8080)).unwrap();
    assert_eq!(second.instances("web-app").len(), 1);
    assert_eq!(c.apps_count().unwrap(), 1);
    assert!(c.renew("web-app", "w1").unwrap());
    assert!(first.requests().is_empty());

    // Both down: the last peer's failure, typed.
    second.stop();
    let err = http_error(c.apps_count());
    assert_eq!(err.kind, HttpErrorKind::Connect);
    // The first back: calls reach it.
    first.start_again();
    assert_eq!(c.apps_count().unwrap(), 0);
    assert_eq!(first.requests().len(), 1);
}

#[test]
fn basic_auth_goes_in_a_header_and_nowhere_else() {
    let d = EurekaDouble::config().prefix("/eureka/v2").start();
    let c = HttpClient::builder()
        .server(d.url())
        .basic_auth("eureka-user", "s3cret-pw")
        .build()
        .unwrap();
    c.register(&web("w1", 8080)).unwrap();
    assert_eq!(c.apps_count().unwrap(), 1);
    for r in d.requests() {
        assert_eq!(
            r.header("authorization"),
            Some("Basic ZXVyZWthLXVzZXI6czNjcmV0LXB3"),
            "{r:#?}"
        );
    }
    assert!(!format!("{c:?}").contains("s3cret"));
    d.script_reads(1, Broken::Html(500));
    let err = c.apps_count().unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains("s3cret") && !shown.contains("ZXVyZWth"),
        "{shown}"
    );

    let url = format!(
        "http://eureka-user:s3cret-pw@127.0.0.1:{}/eureka/v2",
        d.port()
    );
    let err = HttpClient::builder().server(url).build().unwrap_err();
    assert!(matches!(
        err,
        Error::InvalidConfig {
            field: "servers",
            ..
        }
    ));
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("basic_auth"), "{shown}");
    assert!(!shown.contains("s3cret"), "{shown}");
}

#[test]
fn broken_reads_are_typed_errors() {
    let d = EurekaDouble::start();
    let c = client(&d);
    c.register(&web("w1", 8080)).unwrap();

    d.script_reads(2, Broken::MalformedJson);
    for err in [http_error(c.apps_count()), http_error(c.app("web-app"))] {
        assert_eq!((err.kind, err.status), (HttpErrorKind::Decode, Some(200)));
        assert!(
            err.excerpt
                .as_deref()
                .unwrap()
                .starts_with("{\"applications\"")
        );
        assert!(err.source.is_some());
    }

    d.script_reads(1, Broken::Html(500));
    let err = http_error(c.vip("web-app"));
    assert_eq!((err.kind, err.status), (HttpErrorKind::Status, Some(500)));
    assert_eq!(
        err.excerpt.as_deref(),
        Some("HTTP Status 500 – Internal Server Error")
    );

    d.script_reads(1, Broken::Html(200));
    let err = http_error(c.app("web-app"));
    assert_eq!((err.kind, err.status), (HttpErrorKind::Decode, Some(200)));
    assert!(err.source.unwrap().to_string().contains("not JSON"));

    d.script_reads(2, Broken::WrongShape);
    for err in [http_error(c.apps_count()), http_error(c.vip("web-app"))] {
        assert_eq!(err.kind, HttpErrorKind::Decode);
        assert!(err.source.unwrap().to_string().contains("applications"));
    }

    d.script_reads(1, Broken::Close);
    assert_eq!(http_error(c.apps_count()).kind, HttpErrorKind::Transport);

    d.script_writes(1, Broken::Html(500));
    let err = http_error(c.register(&web("w2", 8081)));
    assert_eq!((err.kind, err.status), (HttpErrorKind::Status, Some(500)));
    assert_eq!(&*err.endpoint, "POST /apps/WEB-APP");

    // After the scripted answers, the double answers as before.
    assert_eq!(c.app("web-app").unwrap().unwrap().len(), 1);
}

#[test]
fn an_instance_that_does_not_fit_is_left_out_of_a_read() {
    let d = EurekaDouble::start();
    let c = client(&d);
    let body = json!({"application": {"name": "WEB", "instance": [
        {"instanceId": "ok", "hostName": "h", "app": "WEB", "ipAddr": "10.0.0.1",
         "status": "UP", "port": {"$": "8080", "@enabled": true}},
        {"instanceId": "bad", "port": {"$": "http", "@enabled": "true"}},
    ]}});
    d.script_reads(
        1,
        Broken::Raw {
            status: 200,
            content_type: "application/json".into(),
            body: body.to_string(),
        },
    );
    let got = c.app("web").unwrap().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].instance_id.as_str(), got[0].port),
        ("ok", Some(8080))
    );
}

#[test]
fn shutdown_cuts_a_call_in_flight_and_the_later_ones() {
    let (seen_tx, seen) = crossbeam_channel::unbounded();
    let hung = FakeHttp::start(move |_| {
        let _ = seen_tx.send(());
        Answer::Hang
    });
    let c = HttpClient::builder()
        .server(format!("{}/eureka", hung.base()))
        .request_timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let (done_tx, done) = crossbeam_channel::bounded(1);
    let caller = {
        let c = c.clone();
        std::thread::spawn(move || {
            let _ = done_tx.send(c.apps_count());
        })
    };
    seen.recv_timeout(BOUND)
        .expect("the call reached the server");
    c.shutdown();
    let result = done.recv_timeout(BOUND).expect("the call was cut short");
    assert_eq!(http_error(result).kind, HttpErrorKind::Cancelled);
    caller.join().unwrap();
    assert_eq!(
        http_error(c.renew("web", "w1")).kind,
        HttpErrorKind::Cancelled
    );
    c.shutdown(); // idempotent
}

#[test]
fn a_fork_has_its_own_shutdown() {
    let d = EurekaDouble::start();
    let c = client(&d);
    let fork = c.fork();
    fork.shutdown();
    assert_eq!(http_error(fork.apps_count()).kind, HttpErrorKind::Cancelled);
    assert_eq!(c.apps_count().unwrap(), 0);
    c.shutdown();
    // A fork of a shut-down client is a working client.
    assert_eq!(c.fork().apps_count().unwrap(), 0);
}
