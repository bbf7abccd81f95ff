//! The real Consul client and instancer against an in-process fake agent that can
//! answer badly: bad JSON, HTML, a wrong content type, a huge body, a cut response.
#![cfg(feature = "consul")]

mod support;

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use support::events::{is_error, subscribe, wait_event};
use support::fake_http::{Answer, FakeHttp, refused_base};
use waypost::consul::{Client, HealthQuery, HttpClient, Instancer, Registrar};
use waypost::{Event, HttpErrorKind};

const ENTRY: &str = r#"[{"Node":{"Node":"n1","Address":"10.0.0.9","Datacenter":"dc1"},
  "Service":{"ID":"web-1","Service":"web","Address":"10.0.0.1","Port":80,"Tags":null,"Meta":null,
             "Weights":{"Passing":1,"Warning":1}},
  "Checks":[{"CheckID":"serfHealth","Status":"passing"}]}]"#;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Good,
    BadJson,
    Html502,
    WrongType,
    Huge,
    Cut,
}

fn answer(mode: Mode) -> Answer {
    match mode {
        Mode::Good => Answer::json(ENTRY).header("X-Consul-Index", 5),
        Mode::BadJson => Answer::json("[{\"Node\":").header("X-Consul-Index", 5),
        Mode::Html502 => {
            Answer::with_type(502, "text/html", "<html><h1>502 Bad Gateway</h1></html>")
        }
        Mode::WrongType => Answer::with_type(200, "text/html", "<html>proxy login</html>"),
        Mode::Huge => Answer::json(format!("[{}]", vec!["{}"; 200_000].join(","))),
        Mode::Cut => Answer::cut(ENTRY, 40),
    }
}

fn error_kind(event: &Event) -> Option<(HttpErrorKind, Option<u16>, Option<String>)> {
    match event {
        Event::Error(err) => match &**err {
            waypost::Error::Http(h) => {
                Some((h.kind, h.status, h.excerpt.as_deref().map(Into::into)))
            }
            other => panic!("not an HTTP error: {other}"),
        },
        Event::Instances(_) => None,
    }
}

fn is_web1(event: &Event) -> bool {
    matches!(event, Event::Instances(set) if set.len() == 1 && set[0].addr() == "10.0.0.1:80")
}

#[test]
fn bad_answers_become_typed_error_events_and_the_watch_recovers() {
    let mode = Arc::new(Mutex::new(Mode::Good));
    let server = {
        let mode = mode.clone();
        FakeHttp::start(move |_| answer(*mode.lock()))
    };
    let client = HttpClient::builder()
        .address(server.base())
        .body_limit(256 * 1024)
        .build()
        .unwrap();
    let instancer = Instancer::builder(&client, "web")
        .min_interval(Duration::from_millis(5))
        .backoff(Duration::from_millis(1), Duration::from_millis(20))
        .build()
        .unwrap();
    let rx = subscribe(&instancer);
    wait_event(&rx, "the first set", is_web1);
    let cases = [
        (
            Mode::BadJson,
            HttpErrorKind::Decode,
            Some(200),
            Some("[{\"Node\":"),
        ),
        (
            Mode::Html502,
            HttpErrorKind::Status,
            Some(502),
            Some("502 Bad Gateway"),
        ),
        (
            Mode::WrongType,
            HttpErrorKind::Decode,
            Some(200),
            Some("proxy login"),
        ),
        (Mode::Huge, HttpErrorKind::BodyTooLarge, Some(200), None),
        (Mode::Cut, HttpErrorKind::Transport, Some(200), None),
    ];
    for (bad, kind, status, excerpt) in cases {
        *mode.lock() = bad;
        let event = wait_event(&rx, &format!("an error for {bad:?}"), is_error);
        let (k, s, e) = error_kind(&event).unwrap();
        assert_eq!((k, s), (kind, status), "{bad:?}: {event:?}");
        if let Some(excerpt) = excerpt {
            assert!(
                e.as_deref().unwrap_or("").contains(excerpt),
                "{bad:?}: {e:?}"
            );
        }
        *mode.lock() = Mode::Good;
        wait_event(&rx, "recovery", is_web1);
    }
}

#[test]
fn fails_over_to_the_second_address() {
    let server = FakeHttp::start(|_| answer(Mode::Good));
    let client = HttpClient::builder()
        .addresses([refused_base(), server.base()])
        .build()
        .unwrap();
    let instancer = Instancer::builder(&client, "web").build().unwrap();
    wait_event(
        &subscribe(&instancer),
        "the set through the second agent",
        is_web1,
    );
}

#[test]
fn the_client_sends_what_consul_expects() {
    let server = FakeHttp::start(|request| match request.path.as_str() {
        "/v1/agent/service/gone" => Answer::with_type(404, "text/plain", "unknown service"),
        _ => Answer::json(ENTRY).header("X-Consul-Index", 42),
    });
    let client = HttpClient::builder()
        .address(server.base())
        .token("the-token")
        .datacenter("dc2")
        .build()
        .unwrap();
    let tags = ["a".to_owned(), "b c".to_owned()];
    let mut query = HealthQuery::default();
    query.tags = &tags;
    query.index = 7;
    query.wait = Duration::from_secs(30);
    let health = client.health_service("my web", &query).unwrap();
    assert_eq!(health.index, 42);
    assert_eq!(
        health.entries[0].service.tags,
        Vec::<String>::new(),
        "null tags"
    );
    assert_eq!(client.agent_service("gone").unwrap().map(|s| s.id), None);

    let seen = server.requests();
    let q = &seen[0];
    assert_eq!(
        (q.method.as_str(), q.path.as_str()),
        ("GET", "/v1/health/service/my%20web")
    );
    assert_eq!(q.header("X-Consul-Token"), Some("the-token"));
    assert!(!q.query.contains("the-token") && !q.query.contains("token"));
    assert_eq!(q.query_values("tag"), ["a", "b%20c"]);
    assert_eq!(q.query_value("passing").as_deref(), Some("1"));
    assert_eq!(q.query_value("index").as_deref(), Some("7"));
    assert_eq!(q.query_value("wait").as_deref(), Some("30000ms"));
    assert_eq!(q.query_value("dc").as_deref(), Some("dc2"));
}

#[test]
fn the_registrar_speaks_the_agent_api() {
    let server = FakeHttp::start(|_| Answer::with_type(200, "text/plain", ""));
    let client = HttpClient::builder()
        .address(server.base())
        .build()
        .unwrap();
    let registrar = Registrar::builder(&client, "web", "10.0.0.1", 80)
        .id("web/1")
        .build()
        .unwrap();
    let _registrar_registration = registrar.register().unwrap();
    registrar.deregister().unwrap();
    let seen = server.requests();
    let calls: Vec<(&str, &str)> = seen
        .iter()
        .map(|s| (s.method.as_str(), s.path.as_str()))
        .collect();
    assert_eq!(
        calls,
        [
            ("PUT", "/v1/agent/service/register"),
            ("PUT", "/v1/agent/check/pass/service%3Aweb%2F1"),
            ("PUT", "/v1/agent/service/deregister/web%2F1"),
        ]
    );
    let body: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(body["Check"]["TTL"], "10000ms");
    assert_eq!(seen[0].header("content-type"), Some("application/json"));
}

/// An `https://` address needs the `tls` feature (on by default); a build without it
/// refuses one at `build()`, naming the feature, instead of failing at the first
/// request. Run both ways by CI: `--all-features` and `--no-default-features
/// --features consul`.
#[test]
fn an_https_address_needs_the_tls_feature() {
    let built = HttpClient::builder()
        .addresses(["https://127.0.0.1:8500", "https://127.0.0.1:8501"])
        .build();
    if cfg!(feature = "tls") {
        built.expect("https with the tls feature");
    } else {
        match built.expect_err("https without the tls feature") {
            waypost::Error::InvalidConfig { field, reason } => {
                assert_eq!(field, "addresses");
                assert!(reason.contains("`tls` feature"), "{reason}");
                assert!(reason.contains("https://127.0.0.1:8500"), "{reason}");
            }
            other => panic!("not InvalidConfig: {other}"),
        }
    }
    HttpClient::builder()
        .address("http://127.0.0.1:8500")
        .build()
        .expect("plain http needs no tls feature");
}

#[test]
fn public_types_are_send_sync_and_implement_the_core_traits() {
    fn send_sync<T: Send + Sync>() {}
    fn instancer<T: waypost::Instancer>() {}
    fn registrar<T: waypost::Registrar>() {}
    send_sync::<HttpClient>();
    send_sync::<Instancer>();
    send_sync::<Registrar>();
    #[cfg(feature = "tls")]
    send_sync::<waypost::TlsConfig>();
    send_sync::<Arc<dyn Client>>();
    instancer::<Instancer>();
    registrar::<Registrar>();
    let _: Box<dyn Client> = Box::new(HttpClient::builder().build().unwrap());
}
