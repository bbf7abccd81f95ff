//! The etcd backend against etcd 3.4.23 members of each test's own
//! (tests/support/etcd.rs): a restart from an empty data dir, authentication with a
//! role limited to a prefix and tokens that expire, and TLS with a client certificate.

#![cfg(feature = "etcd")]

mod support;

use std::time::Duration;

use support::etcd::Etcd;
use support::events::{is_error, is_set, subscribe, wait_event};
use support::logs;
use support::tcp_proxy::TcpProxy;
use waypost::etcd::{HttpClient, Instancer, Registrar};
use waypost::{Event, ManualClock};

#[test]
fn a_member_restarted_from_an_empty_data_dir_gets_the_registration_back() {
    let Some(mut etcd) = Etcd::new() else {
        return;
    };
    let client = HttpClient::builder()
        .address(etcd.client_url())
        .build()
        .expect("a client");
    let clock = ManualClock::new();
    let registrar = Registrar::builder(&client, "/svc/fresh/", "10.3.0.1:80")
        .ttl(Duration::from_secs(30))
        .clock(clock.clone())
        .build()
        .expect("a registrar");
    let instancer = Instancer::builder(&client, "/svc/fresh/")
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
        .build()
        .expect("an instancer");
    let rx = subscribe(&instancer);
    let _registration = registrar.register().expect("register");
    wait_event(&rx, "registered", is_set(&["10.3.0.1:80"]));
    etcd.restart_fresh();
    // The watch lists the empty member; the next keepalive finds no lease.
    wait_event(&rx, "the empty member", is_set(&[]));
    clock.advance(Duration::from_secs(10));
    wait_event(&rx, "registered again", is_set(&["10.3.0.1:80"]));
}

#[test]
fn auth_right_and_wrong_passwords_and_a_renewed_token() {
    let Some(etcd) = Etcd::new() else {
        return;
    };
    logs::capture();
    let auth = etcd.enable_auth("/app/");
    etcd.put("/app/a", "10.4.0.1:80");
    // Through a proxy the test can cut, to make the watch list and open a stream again.
    let proxy = TcpProxy::start(etcd.addr());
    let client = HttpClient::builder()
        .address(format!("http://{}", proxy.addr()))
        .user(auth.user.clone(), auth.password.clone())
        .build()
        .expect("a client");
    let instancer = Instancer::builder(&client, "/app/")
        .build()
        .expect("an instancer");
    let rx = subscribe(&instancer);
    wait_event(&rx, "the set, with the token", is_set(&["10.4.0.1:80"]));

    // Every token the member gave out stops working: turning auth off and on again
    // empties etcd's token store, and etcd then answers as for an expired token (401,
    // code 16 "invalid auth token"; inside a watch stream, a cancel). Deterministic,
    // where waiting out --auth-token-ttl would depend on etcd's expiry sweep.
    etcd.etcdctl(&["auth", "disable"]);
    etcd.etcdctl(&["auth", "enable"]);
    // The watch lists again (a 401, a new token, the list again) and opens a stream.
    proxy.cut();
    let clock = ManualClock::new();
    let registrar = Registrar::builder(&client, "/app/", "10.4.0.2:80")
        .ttl(Duration::from_secs(30))
        .clock(clock.clone())
        .build()
        .expect("a registrar");
    let _registration = registrar
        .register()
        .expect("register with an expired token");
    wait_event(
        &rx,
        "the registration, through the reopened watch",
        is_set(&["10.4.0.1:80", "10.4.0.2:80"]),
    );

    // root sees every prefix.
    let root = HttpClient::builder()
        .address(etcd.client_url())
        .user(auth.root_user.clone(), auth.root_password.clone())
        .build()
        .expect("a client");
    etcd.put("/other/x", "10.4.1.1:80");
    let everything = Instancer::builder(&root, "/other/")
        .build()
        .expect("an instancer");
    wait_event(
        &subscribe(&everything),
        "root's set",
        is_set(&["10.4.1.1:80"]),
    );

    // Outside the role's prefix: permission denied, an error event.
    let outside = Instancer::builder(&client, "/other/")
        .build()
        .expect("an instancer");
    let err = wait_event(&subscribe(&outside), "permission denied", is_error);
    assert!(format!("{err:?}").contains("permission denied"), "{err:?}");

    // A wrong password: an error event with etcd's code 3, and no secret anywhere.
    let wrong = HttpClient::builder()
        .address(etcd.client_url())
        .user(auth.user.clone(), "not-the-password")
        .build()
        .expect("a client");
    let bad = Instancer::builder(&wrong, "/app/")
        .build()
        .expect("an instancer");
    let Event::Error(err) = wait_event(&subscribe(&bad), "a wrong password", is_error) else {
        unreachable!()
    };
    let waypost::Error::Http(http) = &*err else {
        panic!("an HTTP error: {err:?}")
    };
    assert_eq!((http.status, http.code), (Some(400), Some(3)), "{err}");
    let shown = format!("{err} {err:?} {wrong:?} {client:?}");
    assert!(!shown.contains("not-the-password"), "{shown}");
    assert!(!shown.contains(&auth.password), "{shown}");
    let log = logs::records()
        .iter()
        .map(|r| r.2.clone())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        !log.contains("not-the-password") && !log.contains(&auth.password),
        "{log}"
    );
}

#[cfg(feature = "tls")]
#[test]
fn tls_with_a_custom_ca_and_a_client_certificate() {
    use waypost::etcd::Client as _;
    let Some(etcd) = Etcd::builder().tls_client_auth().spawn() else {
        return;
    };
    etcd.put("/tls/a", "10.5.0.1:80");
    let tls = waypost::TlsConfig::builder()
        .ca_file(etcd.ca_path())
        .client_cert_files(etcd.client_cert_path(), etcd.client_key_path())
        .build()
        .expect("a TLS config");
    let client = HttpClient::builder()
        .address(etcd.client_url())
        .tls(tls)
        .build()
        .expect("a client");
    let instancer = Instancer::builder(&client, "/tls/")
        .build()
        .expect("an instancer");
    wait_event(
        &subscribe(&instancer),
        "the set over TLS",
        is_set(&["10.5.0.1:80"]),
    );
    let registrar = Registrar::builder(&client, "/tls/", "10.5.0.2:80")
        .build()
        .expect("a registrar");
    registrar
        .register()
        .expect("register over TLS")
        .deregister()
        .expect("deregister");

    // Without the client certificate, or with another CA: TLS errors.
    let no_cert = waypost::TlsConfig::builder()
        .ca_file(etcd.ca_path())
        .build()
        .expect("a TLS config");
    let other_ca = waypost::TlsConfig::builder()
        .ca_file(etcd.other_ca_path())
        .client_cert_files(etcd.client_cert_path(), etcd.client_key_path())
        .build()
        .expect("a TLS config");
    for tls in [no_cert, other_ca] {
        let client = HttpClient::builder()
            .address(etcd.client_url())
            .tls(tls)
            .build()
            .expect("a client");
        let err = client.range_prefix(b"/tls/").expect_err("refused");
        assert!(matches!(&err, waypost::Error::Http(_)), "{err:?}");
    }
}
