//! The real etcd client and instancer against an in-process fake gateway
//! (`support::fake_etcd`) that answers as etcd's JSON gateway does, and badly: only
//! `/v3beta/` routes, watch streams that send garbage, stall or break mid-object, or
//! end with the gateway's error line, a member that answers "unavailable", tokens that
//! expire and a wrong password.
#![cfg(feature = "etcd")]

mod support;

use std::time::Duration;

use support::events::{is_error, subscribe, wait_event};
use support::fake_etcd::{Gateway, grpc_error, watch_lines};
use support::fake_http::{FakeHttp, Pacer, Piece};
use support::{logs, wait_for_set};
use waypost::etcd::{Client, HttpClient, Instancer, Registrar};
use waypost::{Error, Event, HttpError, HttpErrorKind};

const P: &str = "/svc/api/";

fn key(name: &str) -> String {
    format!("{P}{name}")
}

fn client(gateway: &Gateway) -> HttpClient {
    HttpClient::builder()
        .address(gateway.base())
        .build()
        .unwrap()
}

/// An instancer of [`P`] with short waits, so that retries take milliseconds.
fn instancer(client: &HttpClient) -> Instancer {
    Instancer::builder(client, P)
        .min_interval(Duration::from_millis(5))
        .backoff(Duration::from_millis(5), Duration::from_millis(50))
        .build()
        .unwrap()
}

fn http(err: &Error) -> &HttpError {
    match err {
        Error::Http(h) => h,
        other => panic!("not an HTTP error: {other}"),
    }
}

fn error_event(event: &Event) -> &Error {
    match event {
        Event::Error(err) => err,
        Event::Instances(set) => panic!("a set, not an error: {set:?}"),
    }
}

#[test]
fn a_gateway_without_v3_routes_is_used_through_v3beta_for_everything_after() {
    let gateway = Gateway::start();
    gateway.beta_only();
    gateway.put(&key("a"), "10.0.0.1:80");
    let client = client(&gateway);
    let instancer = instancer(&client);
    let rx = subscribe(&instancer);
    wait_for_set(&rx, &["10.0.0.1:80"]);
    gateway.put(&key("b"), "10.0.0.2:80"); // through the watch stream
    wait_for_set(&rx, &["10.0.0.1:80", "10.0.0.2:80"]);

    let registrar = Registrar::builder(&client, P, "10.0.0.3:80")
        .build()
        .unwrap();
    let registration = registrar.register().unwrap();
    wait_for_set(&rx, &["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]);
    registration.deregister().unwrap();
    wait_for_set(&rx, &["10.0.0.1:80", "10.0.0.2:80"]);
    instancer.stop();

    let paths = gateway.paths();
    assert_eq!(paths[0], "/v3/kv/range", "{paths:?}");
    assert!(
        paths[1..].iter().all(|p| p.starts_with("/v3beta/")),
        "{paths:?}"
    );
    for op in [
        "kv/range",
        "watch",
        "lease/grant",
        "kv/put",
        "kv/deleterange",
        "lease/revoke",
    ] {
        assert!(paths.contains(&format!("/v3beta/{op}")), "{op}: {paths:?}");
    }
}

/// What a stream does wrong, written into an open stream that has delivered its
/// `created` line.
fn misbehave(what: &str, pacer: &Pacer) {
    match what {
        "garbage" => pacer.send("<html>502 Bad Gateway</html>\n"),
        "wrong shape" => pacer.send("{\"result\":{\"header\":{\"revision\":\"x\"}}}\n"),
        "unknown field" => pacer.send("{\"result\":{},\"extra\":1}\n"),
        "error line" => pacer.send(
            "{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":\"transport is closing\",\
             \"http_status\":\"Service Unavailable\"}}\n",
        ),
        "closed mid-object" => {
            pacer.send("{\"result\":{\"header\":{\"rev");
            pacer.cut();
        }
        "closed between objects" => pacer.cut(),
        other => unreachable!("{other}"),
    }
}

#[test]
fn a_stream_that_misbehaves_after_its_start_re_lists_and_publishes_the_right_set() {
    let gateway = Gateway::start();
    gateway.put(&key("a"), "10.0.0.1:80");
    let client = client(&gateway);
    let instancer = instancer(&client);
    let rx = subscribe(&instancer);
    wait_for_set(&rx, &["10.0.0.1:80"]);
    let mut want = vec!["10.0.0.1:80".to_owned()];
    for (n, what) in [
        "garbage",
        "wrong shape",
        "unknown field",
        "error line",
        "closed mid-object",
        "closed between objects",
    ]
    .into_iter()
    .enumerate()
    {
        // The open stream brings a change first: a stream that worked, whose break is
        // a re-list (two quick breaks in a row of streams that brought nothing are an
        // error event: streams_that_fail_before_anything_twice_in_a_row_...).
        gateway.wait_stream();
        let seen = format!("10.0.3.{n}:80");
        gateway.put(&key(&format!("seen{n}")), &seen);
        want.push(seen);
        want.sort();
        let wanted: Vec<&str> = want.iter().map(String::as_str).collect();
        wait_for_set(&rx, &wanted);
        let pacer = gateway.take_stream();
        // Made while the stream is cut off from the store: only a new list sees it.
        let addr = format!("10.0.1.{n}:80");
        gateway.put_unseen(&key(&format!("k{n}")), &addr);
        want.push(addr);
        want.sort();
        misbehave(what, &pacer);
        let want: Vec<&str> = want.iter().map(String::as_str).collect();
        // The stream had brought a change: a break is a re-list, not an error event.
        let event = wait_event(&rx, &format!("the set after {what}"), |e| {
            is_error(e) || support::events::is_set(&want)(e)
        });
        assert!(!is_error(&event), "{what}: {event:?}");
        drop(pacer);
    }
    // And the stream then open follows the store.
    gateway.put(&key("z"), "10.0.2.1:80");
    wait_event(
        &rx,
        "the last put",
        |e| matches!(e, Event::Instances(set) if set.iter().any(|i| i.addr() == "10.0.2.1:80")),
    );
}

#[test]
fn a_stream_that_stalls_mid_object_is_reopened_after_the_idle_time() {
    let gateway = Gateway::start();
    gateway.put(&key("a"), "10.0.0.1:80");
    let client = client(&gateway);
    let instancer = Instancer::builder(&client, P)
        .reopen_after(Duration::from_secs(1)) // the shortest allowed
        .build()
        .unwrap();
    let rx = subscribe(&instancer);
    wait_for_set(&rx, &["10.0.0.1:80"]);
    let pacer = gateway.take_stream();
    gateway.put_unseen(&key("b"), "10.0.0.2:80");
    pacer.send("{\"result\":{\"header\":{\"rev"); // and nothing more
    let started = std::time::Instant::now();
    let event = wait_event(&rx, "the set after the stall", |e| {
        is_error(e) || support::events::is_set(&["10.0.0.1:80", "10.0.0.2:80"])(e)
    });
    assert!(!is_error(&event), "an idle stream is no error: {event:?}");
    assert!(started.elapsed() >= Duration::from_millis(900));
    drop(pacer);
}

#[test]
fn streams_that_fail_before_anything_twice_in_a_row_are_typed_error_events() {
    let gateway = Gateway::start();
    gateway.put(&key("a"), "10.0.0.1:80");
    let client = client(&gateway);
    let instancer = instancer(&client);
    let rx = subscribe(&instancer);
    wait_for_set(&rx, &["10.0.0.1:80"]);
    let error_line = "{\"error\":{\"grpc_code\":14,\"http_code\":503,\
        \"message\":\"transport is closing\",\"http_status\":\"Service Unavailable\"}}\n";
    let cases: [(&str, &str, Option<Piece>, HttpErrorKind); 3] = [
        ("garbage", "not json at all\n", None, HttpErrorKind::Decode),
        ("error line", error_line, None, HttpErrorKind::Status),
        (
            "cut mid-object",
            "{\"result\":{\"crea",
            Some(Piece::Cut),
            HttpErrorKind::Transport,
        ),
    ];
    for (n, (what, body, end, kind)) in cases.into_iter().enumerate() {
        // The open stream works: it brings a change, then ends below (a re-list).
        gateway.wait_stream();
        let seen = format!("10.0.3.{n}:80");
        gateway.put(&key(&format!("seen{n}")), &seen);
        wait_event(
            &rx,
            &format!("{seen} seen"),
            |e| matches!(e, Event::Instances(set) if set.iter().any(|i| i.addr() == seen)),
        );
        let mut held = Vec::new();
        for _ in 0..2 {
            let (answer, pacer) = watch_lines(&[body], end.clone());
            gateway.script_watch(answer);
            held.push(pacer);
        }
        let addr = format!("10.0.1.{n}:80");
        gateway.put_unseen(&key(&format!("k{n}")), &addr);
        drop(gateway.take_stream());
        let event = wait_event(&rx, &format!("the error for {what}"), is_error);
        let h = http(error_event(&event));
        assert_eq!(h.kind, kind, "{what}: {h:?}");
        match what {
            "garbage" => assert!(
                h.excerpt.as_deref().unwrap_or("").contains("not json"),
                "{h:?}"
            ),
            "error line" => {
                assert_eq!(h.code, Some(14), "{h:?}");
                assert!(
                    h.excerpt
                        .as_deref()
                        .unwrap_or("")
                        .contains("transport is closing"),
                    "{h:?}"
                );
            }
            _ => {}
        }
        drop(held);
        // After the backoff: a list with the key, and a stream that works.
        wait_event(
            &rx,
            &format!("recovery after {what}"),
            |e| matches!(e, Event::Instances(set) if set.iter().any(|i| i.addr() == addr)),
        );
    }
}

#[test]
fn a_member_that_answers_unavailable_is_failed_over() {
    let unavailable = FakeHttp::start(|_| grpc_error(503, 14, "etcdserver: no leader"));
    let gateway = Gateway::start();
    gateway.put(&key("a"), "10.0.0.1:80");
    let client = HttpClient::builder()
        .addresses([unavailable.base(), gateway.base()])
        .build()
        .unwrap();
    let instancer = instancer(&client);
    let rx = subscribe(&instancer);
    wait_for_set(&rx, &["10.0.0.1:80"]);
    gateway.put(&key("b"), "10.0.0.2:80");
    wait_for_set(&rx, &["10.0.0.1:80", "10.0.0.2:80"]);
    let registrar = Registrar::builder(&client, P, "10.0.0.3:80")
        .build()
        .unwrap();
    let _registration = registrar.register().unwrap();
    wait_for_set(&rx, &["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]);
    let asked: Vec<String> = (unavailable.requests().into_iter())
        .map(|s| s.path)
        .collect();
    // The watch's first list asked it once; every fork of the client (the watch's,
    // the registrar's, its keepalive's) then kept to the member that answered.
    assert_eq!(asked, ["/v3/kv/range"]);

    // The unavailable member alone: the error says so, typed.
    let alone = HttpClient::builder()
        .address(unavailable.base())
        .build()
        .unwrap();
    let err = alone.range_prefix(P.as_bytes()).unwrap_err();
    let h = http(&err);
    assert_eq!((h.status, h.code), (Some(503), Some(14)), "{h:?}");
    assert!(err.is_transient());
}

/// Whether a log record of waypost contains `secret`. (Only waypost's: ureq logs the
/// raw bytes of each request at `trace!`, target `ureq_proto`, credentials included,
/// which waypost cannot change.)
fn logged_anywhere(secret: &str) -> bool {
    let records = logs::records();
    let found = (records.iter())
        .find(|(_, target, text)| target.starts_with("waypost") && text.contains(secret));
    if let Some(record) = found {
        eprintln!("logged: {record:?}");
    }
    found.is_some()
}

#[test]
fn auth_tokens_are_sent_raw_and_renewed_once_when_expired() {
    logs::capture();
    let password = "pw-renewal-9f3e";
    let gateway = Gateway::start();
    gateway.auth("app", password);
    gateway.put(&key("a"), "10.0.0.1:80");
    let client = HttpClient::builder()
        .address(gateway.base())
        .user("app", password)
        .build()
        .unwrap();
    let instancer = instancer(&client);
    let rx = subscribe(&instancer);
    wait_for_set(&rx, &["10.0.0.1:80"]);
    let seen = gateway.server().requests();
    assert_eq!(seen[0].path, "/v3/auth/authenticate");
    let body: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(
        (body["name"].as_str(), body["password"].as_str()),
        (Some("app"), Some(password))
    );
    let first = gateway.tokens()[0].clone();
    for s in &seen[1..] {
        assert_eq!(
            s.header("authorization"),
            Some(first.as_str()),
            "{}",
            s.path
        );
    }

    // The token expires: the next call is refused (401, code 16), the client gets a
    // new token and tries that call once more. (The watch is open first, so that only
    // the registrar calls.)
    let stream = gateway.take_stream();
    gateway.expire_tokens();
    let before = gateway.server().requests().len();
    let registrar = Registrar::builder(&client, P, "10.0.0.3:80")
        .build()
        .unwrap();
    let registration = registrar.register().unwrap();
    // (The fake may log the open watch's request after it registered the stream.)
    let calls: Vec<String> = gateway.server().requests()[before..]
        .iter()
        .map(|s| s.path.clone())
        .filter(|path| path != "/v3/watch")
        .collect();
    assert_eq!(
        calls[..3],
        [
            "/v3/lease/grant",
            "/v3/auth/authenticate",
            "/v3/lease/grant"
        ],
        "{calls:?}"
    );
    let tokens = gateway.tokens();
    assert_eq!(tokens.len(), 2);
    // The watch's fork, whose stream started with the old token, lists again when
    // its stream breaks: with the renewed token, which every fork shares.
    gateway.put_unseen(&key("b"), "10.0.0.2:80");
    drop(stream);
    wait_for_set(&rx, &["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]);
    assert_eq!(gateway.tokens(), tokens, "no more authentication");
    registration.deregister().unwrap();
    instancer.stop();

    for secret in [password.to_owned(), first, tokens[1].clone()] {
        assert!(!logged_anywhere(&secret), "{secret} was logged");
        assert!(!format!("{client:?}").contains(&secret));
    }
}

#[test]
fn a_wrong_password_is_an_error_that_never_shows_the_password() {
    logs::capture();
    let (right, wrong) = ("pw-right-77c1", "pw-wrong-0a5d");
    let gateway = Gateway::start();
    gateway.auth("app", right);
    gateway.put(&key("a"), "10.0.0.1:80");
    let client = HttpClient::builder()
        .address(gateway.base())
        .user("app", wrong)
        .build()
        .unwrap();
    let err = client.range_prefix(P.as_bytes()).unwrap_err();
    let h = http(&err);
    assert_eq!((h.status, h.code), (Some(400), Some(3)), "{h:?}");
    assert!(err.to_string().contains("authentication failed"), "{err}");

    let instancer = instancer(&client);
    let event = wait_event(&subscribe(&instancer), "an error event", is_error);
    let from_watch = error_event(&event);
    let registrar = Registrar::builder(&client, P, "10.0.0.3:80")
        .build()
        .unwrap();
    let from_register = registrar.register().unwrap_err();
    instancer.stop();
    assert!(gateway.tokens().is_empty());
    for text in [
        err.to_string(),
        format!("{err:?}"),
        from_watch.to_string(),
        format!("{from_watch:?}"),
        from_register.to_string(),
        format!("{from_register:?}"),
        format!("{client:?}"),
        format!("{registrar:?}"),
    ] {
        assert!(!text.contains(wrong) && !text.contains(right), "{text}");
    }
    assert!(!logged_anywhere(wrong));
    assert!(!logged_anywhere(right));
}
