//! The plumbing against an in-process fake server speaking HTTP/1.1.

use std::time::{Duration, Instant};

use super::settings::normalize_server;
use super::*;
use crate::Error;

#[path = "../../../tests/support/fake_http.rs"]
mod fake_http;
use fake_http::{Answer, FakeHttp, Pacer, paced, refused_base};

#[derive(serde::Deserialize, Debug, PartialEq)]
struct Thing {
    name: String,
}

fn http(servers: &[String]) -> Http {
    let mut settings = HttpSettings::new("test", "unused");
    settings.servers = servers.iter().map(|s| s.as_str().into()).collect();
    settings.headers = vec![("X-Secret-Token", Secret::new("tok-123-secret"))];
    Http::new(Arc::new(settings.validate().unwrap()))
}

fn get(http: &Http) -> Result<Reply> {
    http.call(&Call::new("GET", "/v1/thing"))
}

fn kind(err: &Error) -> (HttpErrorKind, Option<u16>, Option<&str>) {
    match err {
        Error::Http(h) => (h.kind, h.status, h.excerpt.as_deref()),
        other => panic!("not an HTTP error: {other}"),
    }
}

#[test]
fn decodes_json_and_sends_the_credential_header() {
    let server = FakeHttp::start(|seen| {
        assert_eq!(seen.header("x-secret-token"), Some("tok-123-secret"));
        assert_eq!(seen.query_value("q").as_deref(), Some("a%2Fb%20c"));
        Answer::json(r#"{"name":"x"}"#).header("X-Index", 7)
    });
    let http = http(&[server.base()]);
    let mut call = Call::new("GET", "/v1/thing");
    call.query.push(("q", "a/b c".into()));
    let reply = http.call(&call).unwrap().success().unwrap();
    assert_eq!(reply.header("x-index"), Some("7"));
    assert_eq!(reply.json::<Thing>().unwrap(), Thing { name: "x".into() });
}

/// A server answering each path with one kind of body, and an `Http` reading it under
/// a 64 KiB limit, with a credential header.
fn bodies() -> (FakeHttp, Http) {
    let server = FakeHttp::start(|seen| match seen.path.as_str() {
        "/ok" => Answer::json(r#"{"name":"x"}"#).header("X-Index", 7),
        "/bad-json" => Answer::json(r#"{"name": tru"#),
        "/long-bad-json" => Answer::json(format!(r#"{{"name": tru{}"#, " ".repeat(2000))),
        "/html-error" => Answer::with_type(
            502,
            "text/html",
            "<html><body>502 Bad Gateway</body></html>",
        ),
        "/html-ok" => Answer::with_type(200, "text/html", "<html>login</html>"),
        "/wrong-shape" => Answer::json(r#"{"other":1}"#),
        "/trailing" => Answer::json(r#"{"name":"x"} {}"#),
        "/echoed" => Answer::json(r#"{"name": "tok-123-secret", tru"#),
        "/huge" => Answer::json(format!("[{}1]", "1,".repeat(100_000))),
        _ => Answer::CutShort {
            declared: 1000,
            body: b"{\"name\":".to_vec(),
        },
    });
    let mut settings = HttpSettings::new("test", &server.base());
    settings.headers = vec![("X-Secret-Token", Secret::new("tok-123-secret"))];
    settings.body_limit = 64 * 1024;
    let http = Http::new(Arc::new(settings.validate().unwrap()));
    (server, http)
}

/// `path` read whole, then decoded.
fn whole<T: serde::de::DeserializeOwned>(http: &Http, path: &str) -> Result<T> {
    http.call(&Call::new("GET", path))
        .and_then(Reply::success)
        .and_then(|reply| reply.json())
}

#[test]
fn bad_bodies_are_typed_errors_with_an_excerpt() {
    let (_server, http) = bodies();

    let err = whole::<Thing>(&http, "/bad-json").unwrap_err();
    assert_eq!(
        kind(&err),
        (HttpErrorKind::Decode, Some(200), Some(r#"{"name": tru"#))
    );
    assert!(err.to_string().contains("GET /bad-json"), "{err}");
    assert!(std::error::Error::source(&err).is_some());
    let err = whole::<Thing>(&http, "/long-bad-json").unwrap_err();
    assert!(kind(&err).2.unwrap().ends_with('…'), "{err}");

    let err = whole::<Thing>(&http, "/html-error").unwrap_err();
    let (k, status, excerpt) = kind(&err);
    assert_eq!((k, status), (HttpErrorKind::Status, Some(502)));
    assert!(excerpt.unwrap().contains("502 Bad Gateway"));

    let err = whole::<Thing>(&http, "/html-ok").unwrap_err();
    assert_eq!(kind(&err).0, HttpErrorKind::Decode);
    assert!(format!("{:?}", std::error::Error::source(&err)).contains("text/html"));

    for path in ["/wrong-shape", "/trailing"] {
        let err = whole::<Thing>(&http, path).unwrap_err();
        assert_eq!(kind(&err).0, HttpErrorKind::Decode, "{path}");
    }
}

#[test]
fn a_body_over_the_limit_and_a_cut_body_are_errors() {
    let (_server, http) = bodies();
    let err = http.call(&Call::new("GET", "/huge")).unwrap_err();
    assert_eq!(kind(&err).0, HttpErrorKind::BodyTooLarge, "{err}");
    assert_eq!(kind(&err).1, Some(200));

    let err = http.call(&Call::new("GET", "/cut")).unwrap_err();
    assert_eq!(kind(&err).0, HttpErrorKind::Transport, "{err:?}");
}

#[test]
fn a_body_decoded_as_it_arrives_fails_as_a_whole_body_does() {
    let (_server, http) = bodies();
    let streamed = |path| http.call_json::<Thing>(&Call::new("GET", path));

    let (reply, thing) = streamed("/ok").unwrap();
    assert_eq!(thing, Thing { name: "x".into() });
    assert_eq!((reply.status(), reply.header("x-index")), (200, Some("7")));
    // Twice on one connection: the first body was read to its end.
    assert_eq!(streamed("/ok").unwrap().1.name, "x");

    // Kind, status and excerpt as from the body read whole.
    for path in [
        "/bad-json",
        "/long-bad-json",
        "/html-error",
        "/html-ok",
        "/wrong-shape",
        "/trailing",
        "/echoed",
        "/cut",
    ] {
        let (streamed, whole) = (streamed(path), whole::<Thing>(&http, path));
        assert_eq!(
            kind(&streamed.unwrap_err()),
            kind(&whole.unwrap_err()),
            "{path}"
        );
    }
    let err = streamed("/echoed").unwrap_err();
    let excerpt = kind(&err).2.unwrap();
    assert!(
        !excerpt.contains("tok-123-secret") && excerpt.contains("<redacted>"),
        "{excerpt}"
    );
    // The limit applies as the body is read.
    let huge = |path| http.call_json::<Vec<u8>>(&Call::new("GET", path));
    let (streamed, whole) = (huge("/huge"), whole::<Vec<u8>>(&http, "/huge"));
    let streamed = streamed.unwrap_err();
    assert_eq!(kind(&streamed).0, HttpErrorKind::BodyTooLarge, "{streamed}");
    assert_eq!(kind(&streamed), kind(&whole.unwrap_err()));
}

#[test]
fn fails_over_to_the_next_server_and_remembers_it() {
    let server = FakeHttp::start(|_| Answer::json(r#"{"name":"second"}"#));
    let http = http(&[refused_base(), server.base()]);
    for _ in 0..2 {
        let thing: Thing = get(&http).unwrap().json().unwrap();
        assert_eq!(thing.name, "second");
    }
    assert_eq!(http.preferred.load(Ordering::Relaxed), 1);
    assert_eq!(http.fork().preferred.load(Ordering::Relaxed), 1);

    let err = get(&self::http(&[refused_base(), refused_base()])).unwrap_err();
    assert_eq!(kind(&err).0, HttpErrorKind::Connect);
}

#[test]
fn a_server_that_answers_an_error_is_not_failed_over() {
    let first = FakeHttp::start(|_| Answer::with_type(500, "text/plain", "no leader"));
    let second = FakeHttp::start(|_| Answer::json(r#"{"name":"second"}"#));
    let http = http(&[first.base(), second.base()]);
    assert_eq!(get(&http).unwrap().status(), 500);
}

#[test]
fn an_unresolvable_name_a_hung_server_and_5xx_gateways_are_failed_over() {
    let good = FakeHttp::start(|_| Answer::json(r#"{"name":"good"}"#));
    let name = |http: &Http| get(http).map(|r| r.json::<Thing>().unwrap().name);

    // A name that does not resolve (HttpErrorKind::Connect covers DNS).
    let unresolvable = "http://no-such-host.invalid:8500".to_string();
    let http = http(&[unresolvable.clone(), good.base()]);
    assert_eq!(name(&http).unwrap(), "good");
    let err = get(&self::http(&[unresolvable])).unwrap_err();
    assert_eq!(kind(&err).0, HttpErrorKind::Connect, "{err:?}");

    // A gateway that answers 502, 503 or 504: the next server is asked; the last
    // server's own answer is returned as it is.
    for status in [502, 503, 504] {
        let gateway = FakeHttp::start(move |_| Answer::with_type(status, "text/plain", "down"));
        let http = self::http(&[gateway.base(), good.base()]);
        assert_eq!(name(&http).unwrap(), "good", "after a {status}");
        assert_eq!(http.preferred.load(Ordering::Relaxed), 1);
        let alone = self::http(&[gateway.base()]);
        assert_eq!(get(&alone).unwrap().status(), status);
    }

    // A hung server: one request timeout, then the good one; the next call starts
    // there, with no timeout.
    let hung = FakeHttp::silent();
    let mut settings = HttpSettings::new("test", "unused");
    settings.servers = vec![hung.base().into(), good.base().into()];
    settings.request_timeout = Duration::from_millis(300);
    let http = Http::new(Arc::new(settings.validate().unwrap()));
    let started = Instant::now();
    assert_eq!(name(&http).unwrap(), "good");
    let first = started.elapsed();
    assert!(first < Duration::from_secs(3), "{first:?}");
    let started = Instant::now();
    assert_eq!(name(&http).unwrap(), "good");
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "went back to the hung one"
    );
}

#[test]
fn shutdown_cuts_a_held_request_at_once() {
    let (release, held) = crossbeam_channel::bounded::<()>(0);
    let (entered_tx, entered) = crossbeam_channel::bounded::<()>(1);
    let server = FakeHttp::start(move |_| {
        let _ = entered_tx.try_send(());
        let _ = held.recv_timeout(Duration::from_secs(30));
        Answer::json("{}")
    });
    let http = Arc::new(http(&[server.base()]));
    let worker = {
        let http = http.clone();
        std::thread::spawn(move || {
            let mut call = Call::new("GET", "/poll");
            call.long_poll = Duration::from_secs(300);
            http.call(&call)
        })
    };
    entered.recv_timeout(Duration::from_secs(10)).unwrap();
    let started = Instant::now();
    http.shutdown();
    let result = worker.join().unwrap();
    let took = started.elapsed();
    println!("shutdown cut a held request in {took:?}");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert_eq!(kind(&result.unwrap_err()).0, HttpErrorKind::Cancelled);
    // Dead afterwards: no request goes out.
    assert_eq!(kind(&get(&http).unwrap_err()).0, HttpErrorKind::Cancelled);
    drop(release);
}

#[test]
fn a_slow_server_times_out() {
    let server = FakeHttp::silent();
    let mut settings = HttpSettings::new("test", &server.base());
    settings.request_timeout = Duration::from_millis(200);
    let http = Http::new(Arc::new(settings.validate().unwrap()));
    let err = get(&http).unwrap_err();
    assert_eq!(kind(&err).0, HttpErrorKind::Timeout, "{err:?}");
    assert!(err.is_timeout());

    // A fork with a timeout: bounded by it, never longer than its own.
    let patient = self::http(&[server.base()]);
    let bounded = patient.fork_with_timeout(Duration::from_millis(200));
    let timeout = |http: &Http| http.settings().request_timeout;
    assert_eq!(timeout(&bounded), Duration::from_millis(200));
    let unbounded = patient.fork_with_timeout(Duration::MAX);
    assert_eq!(timeout(&unbounded), timeout(&patient));
    let err = get(&bounded).unwrap_err();
    assert_eq!(kind(&err).0, HttpErrorKind::Timeout, "{err:?}");
}

#[test]
fn errors_and_debug_never_show_the_credential() {
    let server = FakeHttp::start(|_| Answer::with_type(403, "text/plain", "ACL not found"));
    let http = http(&[server.base()]);
    let err = get(&http).unwrap().success().unwrap_err();
    for text in [err.to_string(), format!("{err:?}"), format!("{http:?}")] {
        assert!(!text.contains("tok-123-secret"), "{text}");
    }
    assert!(!format!("{:?}", http.settings()).contains("tok-123-secret"));
}

#[test]
fn a_credential_echoed_by_a_proxy_is_masked_and_huge_values_are_capped() {
    // A proxy's error page that echoes the request headers, token included.
    let server = FakeHttp::start(|seen| {
        let echoed = format!(
            "<html>Bad gateway. Your request: X-Secret-Token: {}</html>",
            seen.header("x-secret-token").unwrap_or("")
        );
        match seen.path.as_str() {
            "/echo" => Answer::with_type(502, "text/html", echoed),
            // A 32 MiB string where a number is expected: the decoder's message quotes it.
            _ => Answer::json(format!(r#"{{"port": "{}"}}"#, "z".repeat(32 << 20))),
        }
    });
    let http = http(&[server.base()]);
    let err = http
        .call(&Call::new("GET", "/echo"))
        .unwrap()
        .success()
        .unwrap_err();
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains("tok-123-secret"), "{text}");
        assert!(text.contains("X-Secret-Token: <redacted>"), "{text}");
    }
    #[derive(serde::Deserialize, Debug)]
    struct Port {
        #[allow(dead_code)] // decoded only to fail
        port: u16,
    }
    let err = http
        .call(&Call::new("GET", "/huge"))
        .unwrap()
        .json::<Port>()
        .unwrap_err();
    let source = std::error::Error::source(&err)
        .expect("the decoder's error")
        .to_string();
    assert!(source.len() < 1_000, "{} bytes", source.len());
    assert!(err.to_string().len() < 2_000);
    assert!(format!("{err:?}").len() < 4_000);
}

#[test]
fn tls_settings_refuse_plain_http_addresses() {
    let settings = |servers: &[&str]| {
        let mut s = HttpSettings::new("test", "unused");
        s.servers = servers.iter().map(|a| (*a).into()).collect();
        s
    };
    let err = settings(&["https://a:1", "http://b:2"])
        .validate()
        .unwrap_err();
    // Without the tls feature the https address is refused first, for that.
    let why = if cfg!(feature = "tls") {
        "mixed"
    } else {
        "`tls` feature"
    };
    assert!(err.to_string().contains(why), "{err}");
    #[cfg(feature = "tls")]
    {
        let mut s = settings(&["http://a:1"]);
        s.tls = Some(crate::TlsConfig::builder().build().unwrap());
        let err = s.validate().unwrap_err();
        assert!(err.to_string().contains("http://"), "{err}");
        let mut s = settings(&["https://a:1"]);
        s.tls = Some(crate::TlsConfig::builder().build().unwrap());
        assert!(s.validate().is_ok());
    }
}

#[test]
fn a_backend_hook_reads_error_bodies_and_its_unavailable_moves_on() {
    let etcd_like = |servers: Vec<String>| {
        let mut settings = HttpSettings::new("etcd", "unused");
        settings.servers = servers.into_iter().map(Into::into).collect();
        settings.error_hook = backend_errors::etcd;
        Http::new(Arc::new(settings.validate().unwrap()))
    };
    // gRPC "unavailable" in a 500 body: the next member is asked.
    let no_leader = FakeHttp::start(|_| {
        Answer::with_type(
            500,
            "application/json",
            r#"{"error":"etcdserver: no leader","code":14}"#,
        )
    });
    let denied = FakeHttp::start(|_| {
        Answer::with_type(
            403,
            "application/json",
            r#"{"error":"etcdserver: permission denied","code":7}"#,
        )
    });
    let good = FakeHttp::start(|_| Answer::json(r#"{"name":"good"}"#));
    let http = etcd_like(vec![no_leader.base(), good.base()]);
    assert_eq!(get(&http).unwrap().json::<Thing>().unwrap().name, "good");

    // Any other code is an answer: typed, with the backend's code and message.
    let http = etcd_like(vec![denied.base(), good.base()]);
    let err = get(&http).unwrap().success().unwrap_err();
    let Error::Http(h) = &err else {
        panic!("{err}")
    };
    assert_eq!((h.status, h.code), (Some(403), Some(7)));
    assert_eq!(h.excerpt.as_deref(), Some("etcdserver: permission denied"));
    assert!(err.to_string().contains("status 403, code 7"), "{err}");

    // Consul's plain-text answers keep their first line as the message.
    let mut settings = HttpSettings::new("consul", &denied.base());
    settings.error_hook = backend_errors::consul;
    let text = FakeHttp::start(|_| Answer::with_type(500, "text/plain", "\nNo cluster leader\n"));
    settings.servers = vec![text.base().into()];
    let http = Http::new(Arc::new(settings.validate().unwrap()));
    let err = get(&http).unwrap().success().unwrap_err();
    assert_eq!(
        kind(&err),
        (HttpErrorKind::Status, Some(500), Some("No cluster leader"))
    );
}

#[test]
fn server_urls_are_checked() {
    let ok = |s: &str| normalize_server(s).unwrap().to_string();
    assert_eq!(ok("127.0.0.1:8500"), "http://127.0.0.1:8500");
    if cfg!(feature = "tls") {
        assert_eq!(
            ok("https://consul.local:8501/"),
            "https://consul.local:8501"
        );
    } else {
        let err = normalize_server("https://consul.local:8501/").unwrap_err();
        assert!(err.to_string().contains("`tls` feature"), "{err}");
    }
    for bad in [
        "ftp://x:1",
        "http://user:pw@x:1",
        "http://x:1/?a=b",
        "http://",
    ] {
        let err = normalize_server(bad).unwrap_err();
        assert!(err.is_invalid_input(), "{bad}");
        assert!(!err.to_string().contains("pw@"), "{err}");
    }
    let mut settings = HttpSettings::new("test", "x:1");
    settings.headers = vec![("X-Token", Secret::new("bad\nvalue"))];
    let err = settings.validate().unwrap_err();
    assert!(!err.to_string().contains("bad\nvalue"));
}

#[test]
fn encodes_path_segments() {
    assert_eq!(encode("web-1.a_b~"), "web-1.a_b~");
    assert_eq!(encode("a/b c?"), "a%2Fb%20c%3F");
    assert_eq!(encode("é"), "%C3%A9");
}

fn stream_http(base: &str, idle_settings: Option<Duration>) -> Http {
    let mut settings = HttpSettings::new("test", base);
    settings.request_timeout = idle_settings.unwrap_or(Duration::from_secs(5));
    Http::new(Arc::new(settings.validate().unwrap()))
}

/// A server whose every request gets a streamed body, `chunked` or ended by a close,
/// paced by the returned pacer; dropping the pacer ends the body.
fn streaming(chunked: bool) -> (FakeHttp, Pacer) {
    let (pacer, pieces) = paced();
    let server = FakeHttp::start(move |_| match chunked {
        true => Answer::chunked(pieces.clone()),
        false => Answer::streamed(pieces.clone()),
    });
    (server, pacer)
}

#[test]
fn a_stream_hands_each_object_over_as_it_arrives_and_ends_cleanly() {
    for chunked in [true, false] {
        let (server, pacer) = streaming(chunked);
        let http = stream_http(&server.base(), None);
        let mut call = Call::new("POST", "/v3/watch");
        call.body = Some(br#"{"create_request":{}}"#.to_vec());
        pacer.send("{\"n\":1}\n");
        let mut pacer = Some(pacer);
        let mut got = Vec::new();
        http.stream(&call, Duration::from_secs(5), &mut |object| {
            got.push(String::from_utf8(object.to_vec()).unwrap());
            // The first object is handed over before the server writes the second; the
            // third comes in two pieces, and then the body ends.
            if let Some(pacer) = pacer.take() {
                pacer.send("{\"n\":2}\n\n{\"n\":");
                pacer.send("3}\n");
            }
            Ok(true)
        })
        .unwrap();
        assert_eq!(
            got,
            [r#"{"n":1}"#, r#"{"n":2}"#, r#"{"n":3}"#],
            "chunked: {chunked}"
        );
    }
}

#[test]
fn a_stream_cut_mid_object_a_stall_and_a_stop_are_errors() {
    let call = Call::new("POST", "/v3/watch");
    let collect = |http: &Http, idle| {
        let mut got = 0;
        let result = http.stream(&call, idle, &mut |_| {
            got += 1;
            Ok(true)
        });
        (got, result)
    };

    // Cut in the middle of the second object, by a close or a chunked body cut short.
    // (Only the close leaves the cut object for the excerpt: a chunked body cut short
    // is a read error of its own.)
    for (chunked, excerpt) in [(false, Some(r#"{"n":"#)), (true, None)] {
        let (server, pacer) = streaming(chunked);
        pacer.send("{\"n\":1}\n{\"n\":");
        pacer.cut();
        let (got, result) = collect(&stream_http(&server.base(), None), Duration::from_secs(5));
        let err = result.unwrap_err();
        assert_eq!(got, 1);
        assert_eq!(
            kind(&err),
            (HttpErrorKind::Transport, Some(200), excerpt),
            "chunked: {chunked}"
        );
        assert!(err.to_string().contains("POST /v3/watch"), "{err}");
    }

    // A stall after one object: the idle timeout, not a whole-call one.
    let (server, pacer) = streaming(true);
    pacer.send("{\"n\":1}\n");
    let started = Instant::now();
    let (got, result) = collect(
        &stream_http(&server.base(), None),
        Duration::from_millis(300),
    );
    assert_eq!(got, 1);
    assert_eq!(kind(&result.unwrap_err()).0, HttpErrorKind::Timeout);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    drop((server, pacer));

    // shutdown() cuts a quiet stream at once.
    let (server, pacer) = streaming(true);
    pacer.send("{\"n\":1}\n");
    let http = Arc::new(stream_http(&server.base(), None));
    let (entered_tx, entered) = crossbeam_channel::bounded(1);
    let worker = {
        let http = http.clone();
        std::thread::spawn(move || {
            http.stream(
                &Call::new("POST", "/v3/watch"),
                Duration::from_secs(60),
                &mut |_| {
                    let _ = entered_tx.try_send(());
                    Ok(true)
                },
            )
        })
    };
    entered.recv_timeout(Duration::from_secs(10)).unwrap();
    let started = Instant::now();
    http.shutdown();
    let result = worker.join().unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(kind(&result.unwrap_err()).0, HttpErrorKind::Cancelled);

    // A 503 before the stream: the next server; the callback can end the stream.
    let down = FakeHttp::start(|_| Answer::with_type(503, "text/plain", "unavailable"));
    let (server, pacer) = streaming(true);
    pacer.send("{\"n\":1}\n{\"n\":2}\n");
    let mut settings = HttpSettings::new("test", "unused");
    settings.servers = vec![down.base().into(), server.base().into()];
    let http = Http::new(Arc::new(settings.validate().unwrap()));
    let mut got = 0;
    http.stream(&call, Duration::from_secs(5), &mut |_| {
        got += 1;
        Ok(false) // enough after the first
    })
    .unwrap();
    assert_eq!(got, 1);
    // A non-2xx answer that is not "unavailable" is an error.
    let refused =
        FakeHttp::start(|_| Answer::with_type(403, "application/json", r#"{"error":"denied"}"#));
    let err = collect(&stream_http(&refused.base(), None), Duration::from_secs(5))
        .1
        .unwrap_err();
    assert_eq!(kind(&err).1, Some(403));
}

#[test]
fn an_expired_credential_is_renewed_once_and_the_call_retried() {
    use std::sync::atomic::AtomicUsize;
    // The server takes only the newest token; /auth hands out the next one.
    let issued = Arc::new(AtomicUsize::new(1));
    let server = {
        let issued = issued.clone();
        FakeHttp::start(move |seen| {
            if seen.path == "/auth" {
                let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
                return Answer::with_type(200, "text/plain", format!("token-{n}"));
            }
            let want = format!("token-{}", issued.load(Ordering::SeqCst));
            match seen.header("authorization") {
                Some(t) if t == want => Answer::json(r#"{"name":"in"}"#),
                // etcd's shape: gRPC 16 in a 401, echoing the stale token.
                got => Answer::with_type(
                    401,
                    "application/json",
                    format!(
                        r#"{{"error":"invalid auth token {}","code":16}}"#,
                        got.unwrap_or("")
                    ),
                ),
            }
        })
    };
    let renewals = Arc::new(AtomicUsize::new(0));
    let mut settings = HttpSettings::new("etcd", &server.base());
    settings.error_hook = backend_errors::etcd;
    settings.renewable = Some(Arc::new(Renewable {
        header: "Authorization",
        current: parking_lot::RwLock::new(Some(Secret::new("token-0"))),
        renew: Box::new({
            let renewals = renewals.clone();
            move |http| {
                renewals.fetch_add(1, Ordering::SeqCst);
                let reply = http.call(&Call::new("POST", "/auth"))?.success()?;
                Ok(Secret::new(
                    String::from_utf8_lossy(reply.body()).into_owned(),
                ))
            }
        }),
    }));
    let http = Http::new(Arc::new(settings.validate().unwrap()));
    assert_eq!(get(&http).unwrap().json::<Thing>().unwrap().name, "in");
    assert_eq!(renewals.load(Ordering::SeqCst), 1);
    // The renewed token serves the next calls, forks included.
    assert_eq!(get(&http.fork()).unwrap().status(), 200);
    assert_eq!(renewals.load(Ordering::SeqCst), 1);

    // Expired, and the renewal itself refused: the renewal's error comes back (a 401
    // too), with the token masked in it.
    issued.fetch_add(1, Ordering::SeqCst);
    let stale = format!("token-{}", issued.load(Ordering::SeqCst) - 1);
    let reply = {
        let server = FakeHttp::start(|seen| {
            let who = seen.header("authorization").unwrap_or("").to_owned();
            Answer::with_type(
                401,
                "application/json",
                format!(r#"{{"error":"invalid auth token {who}","code":16}}"#),
            )
        });
        let mut settings = HttpSettings::new("etcd", &server.base());
        settings.error_hook = backend_errors::etcd;
        settings.renewable = Some(Arc::new(Renewable {
            header: "Authorization",
            current: parking_lot::RwLock::new(Some(Secret::new(stale.clone()))),
            renew: Box::new(|http| {
                let reply = http.call(&Call::new("POST", "/auth"))?.success()?;
                Ok(Secret::new(
                    String::from_utf8_lossy(reply.body()).into_owned(),
                ))
            }),
        }));
        let http = Http::new(Arc::new(settings.validate().unwrap()));
        get(&http)
    };
    let err = reply.unwrap_err();
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains(&stale), "{text}");
    }
    assert_eq!(kind(&err).1, Some(401));
}
