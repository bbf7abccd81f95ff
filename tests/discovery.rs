//! `discovery::discover` and `discovery::register` (issue 24): a URL to a running
//! instancer or a registration, against the in-process registry, a file, and real
//! servers of the harness (Consul, etcd, ZooKeeper, dnsmasq) or the Eureka double.

mod support;

use std::time::Duration;

use support::events::{is_set, subscribe, wait_event};
use support::scratch::Scratch;
use waypost::discovery::{DiscoveryOptions, discover, register};
use waypost::{Instance, MemoryRegistry};

#[test]
fn a_memory_url_watches_the_process_wide_registry() {
    let registrar =
        MemoryRegistry::global().registrar("discovery-memory", Instance::new("10.0.0.1:80"));
    let instancer = discover("memory://discovery-memory", &DiscoveryOptions::new()).unwrap();
    let rx = subscribe(&*instancer);
    wait_event(&rx, "the empty set", is_set(&[]));
    let registration = registrar.register().unwrap();
    wait_event(&rx, "the instance", is_set(&["10.0.0.1:80"]));
    drop(registration);
    wait_event(&rx, "none", is_set(&[]));
}

#[test]
fn a_file_url_watches_the_file() {
    let scratch = Scratch::new();
    scratch.replace("10.0.0.2:80\n");
    let url = format!("file://{}", scratch.file.display());
    let instancer = discover(&url, &DiscoveryOptions::new()).unwrap();
    let rx = subscribe(&*instancer);
    wait_event(&rx, "the file's instance", is_set(&["10.0.0.2:80"]));
    instancer.stop();
}

#[test]
fn a_bad_url_is_refused_before_anything_starts() {
    let err = discover("consul://u:p@agent/x", &DiscoveryOptions::new())
        .err()
        .expect("refused");
    assert!(err.to_string().contains("credentials"), "{err}");
    let options = DiscoveryOptions::new()
        .consul_token("s3cret")
        .etcd_user("u", "pw-s3cret");
    let shown = format!("{options:?}");
    assert!(!shown.contains("s3cret"), "{shown}");
}

#[cfg(feature = "consul")]
#[test]
fn a_consul_url_sees_a_registration_come_and_go() {
    let Some(agent) = support::consul::shared() else {
        return;
    };
    let service = support::unique("discovery");
    let url = format!("consul://127.0.0.1:{}/{service}", agent.http_port());
    let instancer = discover(&url, &DiscoveryOptions::new()).unwrap();
    let rx = subscribe(&*instancer);
    wait_event(&rx, "the empty set", is_set(&[]));
    let client = waypost::consul::HttpClient::builder()
        .address(agent.http_base())
        .build()
        .unwrap();
    let registrar = waypost::consul::Registrar::builder(&client, &service, "127.0.0.1", 7301)
        .ttl(std::time::Duration::from_secs(30))
        .build()
        .unwrap();
    let registration = registrar.register().unwrap();
    wait_event(&rx, "the instance", is_set(&["127.0.0.1:7301"]));
    drop(registration);
    wait_event(&rx, "none", is_set(&[]));
}

#[test]
fn register_through_a_memory_url_until_the_registration_drops() {
    let options = DiscoveryOptions::new();
    let instancer = discover("memory://discovery-register", &options).unwrap();
    let rx = subscribe(&*instancer);
    wait_event(&rx, "the empty set", is_set(&[]));
    let instance = Instance::new("10.0.0.9:80");
    let registration = register("memory://discovery-register", &instance, &options).unwrap();
    wait_event(&rx, "the instance", is_set(&["10.0.0.9:80"]));
    registration.deregister().unwrap();
    wait_event(&rx, "none", is_set(&[]));
    for url in [
        "dns+srv:///_x._tcp.test",
        "dns:///x.test:80",
        "file:///tmp/x",
    ] {
        let err = register(url, &instance, &options).expect_err(url);
        // Or, in a build without `dnssrv`, the feature's error.
        let said = err.to_string();
        assert!(
            said.contains("cannot register") || said.contains("`dnssrv`"),
            "{url}: {said}"
        );
    }
}

#[cfg(feature = "consul")]
#[test]
fn register_and_discover_through_consul_urls() {
    let Some(agent) = support::consul::shared() else {
        return;
    };
    let service = support::unique("discovery-register");
    let url = format!("consul://127.0.0.1:{}/{service}", agent.http_port());
    let options = DiscoveryOptions::new();
    let instancer = discover(&url, &options).unwrap();
    let rx = subscribe(&*instancer);
    wait_event(&rx, "the empty set", is_set(&[]));
    let instance = Instance::builder("127.0.0.1:7302").tag("v2").build();
    let registration = register(&url, &instance, &options).unwrap();
    let event = wait_event(&rx, "the instance", is_set(&["127.0.0.1:7302"]));
    let waypost::Event::Instances(set) = event else {
        unreachable!()
    };
    assert!(
        set[0].metadata().is_some_and(|m| m.has_tag("v2")),
        "{set:?}"
    );
    drop(registration);
    wait_event(&rx, "none", is_set(&[]));
}

/// The instances of an event known to be a set; panics on an error event.
#[cfg(any(
    feature = "etcd",
    feature = "zk",
    feature = "dnssrv",
    feature = "eureka"
))]
fn set_of(event: &waypost::Event) -> &[Instance] {
    match event {
        waypost::Event::Instances(set) => set,
        waypost::Event::Error(err) => panic!("expected a set, got an error event: {err}"),
    }
}

/// The instance registered with metadata by the etcd and Eureka tests.
#[cfg(any(feature = "etcd", feature = "eureka"))]
fn with_metadata(addr: &str) -> Instance {
    Instance::builder(addr)
        .weight(3)
        .zone("z1")
        .tag("v2")
        .value("k", "v")
        .build()
}

#[cfg(feature = "etcd")]
#[test]
fn an_etcd_url_sees_a_key_under_its_prefix_come_and_go() {
    let Some(etcd) = support::etcd::shared() else {
        return;
    };
    let prefix = format!("/{}/", support::unique("discovery-etcd"));
    let url = format!("etcd://127.0.0.1:{}{prefix}", etcd.client_port());
    let instancer = discover(&url, &DiscoveryOptions::new()).unwrap();
    let rx = subscribe(&*instancer);
    wait_event(&rx, "the empty set", is_set(&[]));
    etcd.put(&format!("{prefix}a"), "10.0.0.11:80");
    wait_event(&rx, "the key's instance", is_set(&["10.0.0.11:80"]));
    // A key beside the prefix (no trailing `/`) is not under it.
    let beside = format!("{}x", prefix.trim_end_matches('/'));
    etcd.put(&beside, "10.0.0.12:80");
    etcd.put(&format!("{prefix}b"), "10.0.0.13:80");
    wait_event(
        &rx,
        "both keys under the prefix",
        is_set(&["10.0.0.11:80", "10.0.0.13:80"]),
    );
    assert_eq!(etcd.del(&format!("{prefix}a")), 1);
    wait_event(&rx, "the second key's alone", is_set(&["10.0.0.13:80"]));
    assert_eq!(etcd.del_prefix(&prefix), 1);
    wait_event(&rx, "none", is_set(&[]));
    etcd.del(&beside);
    instancer.stop();
}

#[cfg(feature = "etcd")]
#[test]
fn register_through_an_etcd_url_with_metadata_and_a_ttl() {
    use support::etcd::json_field;
    let Some(etcd) = support::etcd::shared() else {
        return;
    };
    let prefix = format!("/{}/", support::unique("discovery-etcd-register"));
    let url = format!("etcd://127.0.0.1:{}{prefix}", etcd.client_port());
    let instancer = discover(&url, &DiscoveryOptions::new()).unwrap();
    let rx = subscribe(&*instancer);
    wait_event(&rx, "the empty set", is_set(&[]));
    let instance = with_metadata("127.0.0.1:7401");
    let options = DiscoveryOptions::new().ttl(Duration::from_secs(5));
    let registration = register(&url, &instance, &options).unwrap();
    let event = wait_event(&rx, "the instance", is_set(&["127.0.0.1:7401"]));
    let seen = &set_of(&event)[0];
    let meta = seen.metadata().expect("the instance's metadata");
    assert_eq!(
        (
            meta.weight(),
            meta.zone(),
            meta.has_tag("v2"),
            meta.get("k")
        ),
        (Some(3), Some("z1"), true, Some("v")),
        "{seen:?}"
    );
    assert_eq!(
        seen.metadata(),
        instance.metadata(),
        "all of it, nothing more"
    );
    // The key is the prefix and the address, on a lease of the options' TTL.
    let key = format!("{prefix}127.0.0.1:7401");
    let got = etcd.etcdctl(&["get", "-w", "json", "--", &key]);
    let lease: i64 = json_field(&got, "lease")
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| panic!("{key} has no lease: {got}"));
    let lived = etcd.etcdctl(&["lease", "timetolive", &format!("{lease:x}"), "-w", "json"]);
    assert_eq!(
        json_field(&lived, "granted-ttl").as_deref(),
        Some("5"),
        "{lived}"
    );
    registration.deregister().unwrap();
    wait_event(&rx, "none", is_set(&[]));
    assert_eq!(etcd.get(&key), None);
    instancer.stop();
}

#[cfg(feature = "zk")]
#[test]
fn register_and_discover_through_a_zk_url_whose_path_is_missing_at_first() {
    let Some(zk) = support::zookeeper::shared() else {
        return;
    };
    // Neither the path nor its parent exists: the instancer lists the empty set and
    // looks again, the registrar creates both.
    let path = format!("/{}/services/billing", support::unique("discovery-zk"));
    let url = format!("zk://127.0.0.1:{}{path}", zk.port());
    let options = DiscoveryOptions::new();
    let instancer = discover(&url, &options).unwrap();
    let rx = subscribe(&*instancer);
    wait_event(&rx, "the empty set", is_set(&[]));
    let registration = register(&url, &Instance::new("127.0.0.1:7402"), &options).unwrap();
    let event = wait_event(&rx, "the instance", is_set(&["127.0.0.1:7402"]));
    assert!(
        set_of(&event)[0].metadata().is_none(),
        "plain data is the address only: {event:?}"
    );
    registration.deregister().unwrap();
    wait_event(&rx, "none", is_set(&[]));
    instancer.stop();
}

#[cfg(feature = "zk")]
#[test]
fn register_and_discover_through_a_curator_zk_url() {
    let Some(zk) = support::zookeeper::shared() else {
        return;
    };
    let path = format!("/{}/billing", support::unique("discovery-zk-curator"));
    let url = format!("zk://127.0.0.1:{}{path}?format=curator", zk.port());
    let options = DiscoveryOptions::new().ttl(Duration::from_secs(5));
    let instancer = discover(&url, &options).unwrap();
    let rx = subscribe(&*instancer);
    wait_event(&rx, "the empty set", is_set(&[]));
    let registration = register(&url, &Instance::new("127.0.0.1:7403"), &options).unwrap();
    let event = wait_event(&rx, "the instance", is_set(&["127.0.0.1:7403"]));
    // Curator's JSON, read back: the service is the path's last segment, the id the
    // node's name (the address).
    let meta = set_of(&event)[0].metadata().expect("Curator's id and name");
    assert_eq!(
        (meta.get("name"), meta.get("id")),
        (Some("billing"), Some("127.0.0.1:7403")),
        "{event:?}"
    );
    // The same path read as plain `host:port` data finds no instance in that JSON.
    let plain = discover(&format!("zk://127.0.0.1:{}{path}", zk.port()), &options).unwrap();
    wait_event(&subscribe(&*plain), "nothing plain", is_set(&[]));
    plain.stop();
    registration.deregister().unwrap();
    wait_event(&rx, "none", is_set(&[]));
    instancer.stop();
}

/// One dnsmasq for this binary's DNS tests (the harness starts one per caller):
/// `_svc._tcp.example.test` with two SRV records, `host.example.test` with two A
/// records.
#[cfg(feature = "dnssrv")]
fn dns() -> Option<support::server::Shared<support::dnsmasq::Dnsmasq>> {
    use support::dnsmasq::{Dnsmasq, Records, require_dig, require_dnsmasq};
    static SHARED: std::sync::OnceLock<Dnsmasq> = std::sync::OnceLock::new();
    let find = || {
        let bin = require_dnsmasq()?;
        require_dig(&bin)?;
        Some(bin)
    };
    support::server::shared(&SHARED, find, |_| {
        let ip = |s: &str| s.parse().expect("an IP address");
        let records = Records::new()
            .srv("_svc._tcp.example.test", "node1.example.test", 8080, 10, 60)
            .srv("_svc._tcp.example.test", "node2.example.test", 8081, 20, 40)
            .host("host.example.test", ip("10.0.0.21"))
            .host("host.example.test", ip("10.0.0.22"));
        Dnsmasq::start(&records).expect("dnsmasq and dig were found")
    })
}

#[cfg(feature = "dnssrv")]
#[test]
fn a_dns_srv_url_lists_the_srv_targets() {
    let Some(dns) = dns() else {
        return;
    };
    let url = format!("dns+srv://127.0.0.1:{}/_svc._tcp.example.test", dns.port());
    let instancer = discover(&url, &DiscoveryOptions::new()).unwrap();
    let rx = subscribe(&*instancer);
    let event = wait_event(
        &rx,
        "the targets",
        is_set(&["node1.example.test:8080", "node2.example.test:8081"]),
    );
    // The record's weight is the instance's, its priority a value.
    let seen: Vec<_> = (set_of(&event).iter())
        .map(|i| {
            let meta = i.metadata().expect("weight and priority");
            (meta.weight(), meta.get("priority"))
        })
        .collect();
    assert_eq!(seen, [(Some(60), Some("10")), (Some(40), Some("20"))]);
    instancer.stop();
}

#[cfg(feature = "dnssrv")]
#[test]
fn a_dns_url_lists_the_hosts_addresses_with_its_port() {
    let Some(dns) = dns() else {
        return;
    };
    let url = format!("dns://127.0.0.1:{}/host.example.test:8080", dns.port());
    let instancer = discover(&url, &DiscoveryOptions::new()).unwrap();
    let rx = subscribe(&*instancer);
    wait_event(
        &rx,
        "the addresses",
        is_set(&["10.0.0.21:8080", "10.0.0.22:8080"]),
    );
    instancer.stop();
}

#[cfg(feature = "eureka")]
#[test]
fn register_and_discover_through_a_eureka_url_with_metadata() {
    use support::eureka_double::EurekaDouble;
    let double = EurekaDouble::start(); // in-process: serves /eureka
    let app = support::unique("discovery-eureka");
    let url = format!("eureka://127.0.0.1:{}/eureka/{app}", double.port());
    let options = DiscoveryOptions::new().ttl(Duration::from_secs(6));
    let registration = register(&url, &with_metadata("127.0.0.1:7404"), &options).unwrap();
    let stored = double.wait_instances(&app, "registered", |i| i.len() == 1);
    // Values, weight and zone go in the metadata map; the TTL is the lease.
    let map: std::collections::BTreeMap<String, String> =
        [("k", "v"), ("weight", "3"), ("zone", "z1")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into();
    assert_eq!(
        (stored[0].port, stored[0].lease, &stored[0].metadata),
        (7404, Duration::from_secs(6), &map),
        "{stored:?}"
    );
    // Registered first: the instancer's first read (it reads every 30 s) has it.
    let instancer = discover(&url, &options).unwrap();
    let rx = subscribe(&*instancer);
    let event = wait_event(&rx, "the instance", is_set(&["127.0.0.1:7404"]));
    let meta = set_of(&event)[0].metadata().expect("the metadata map");
    let upper = app.to_ascii_uppercase();
    let id = format!("127.0.0.1:{app}:7404");
    assert_eq!(
        (meta.weight(), meta.zone(), meta.get("k")),
        (Some(3), Some("z1"), Some("v")),
        "{event:?}"
    );
    assert_eq!(
        (meta.get("eureka.app"), meta.get("eureka.instance_id")),
        (Some(upper.as_str()), Some(id.as_str())),
        "{event:?}"
    );
    instancer.stop();
    registration.deregister().unwrap();
    assert_eq!(double.instances(&app), []);
    // A fresh read, not the 30 s poll, shows it gone.
    let after = discover(&url, &options).unwrap();
    wait_event(&subscribe(&*after), "none", is_set(&[]));
    after.stop();
}

#[cfg(feature = "eureka")]
#[test]
fn a_eureka_urls_base_is_every_segment_before_the_app() {
    use support::eureka_double::EurekaDouble;
    let double = EurekaDouble::config().prefix("/eureka/v2").start();
    let app = support::unique("discovery-eureka-v2");
    let url = format!("eureka://127.0.0.1:{}/eureka/v2/{app}", double.port());
    let options = DiscoveryOptions::new();
    let registration = register(&url, &Instance::new("127.0.0.1:7405"), &options).unwrap();
    assert_eq!(double.instances(&app).len(), 1);
    let instancer = discover(&url, &options).unwrap();
    wait_event(
        &subscribe(&*instancer),
        "the instance",
        is_set(&["127.0.0.1:7405"]),
    );
    instancer.stop();
    // The base without `/v2` answers 404 everywhere: an error event, not an empty set.
    let wrong = format!("eureka://127.0.0.1:{}/eureka/{app}", double.port());
    let instancer = discover(&wrong, &options).unwrap();
    wait_event(
        &subscribe(&*instancer),
        "an error",
        support::events::is_error,
    );
    instancer.stop();
    drop(registration);
    assert_eq!(double.instances(&app), []);
}

#[test]
fn a_zero_ttl_is_a_config_error_not_a_panic() {
    let instance = Instance::new("127.0.0.1:7409");
    let options = DiscoveryOptions::new().ttl(Duration::ZERO);
    // Nothing listens on port 1: the error comes before any request.
    for (url, built_in) in [
        ("consul://127.0.0.1:1/billing", cfg!(feature = "consul")),
        (
            "etcd://127.0.0.1:1/services/billing/",
            cfg!(feature = "etcd"),
        ),
        ("zk://127.0.0.1:1/services/billing", cfg!(feature = "zk")),
        (
            "eureka://127.0.0.1:1/eureka/BILLING",
            cfg!(feature = "eureka"),
        ),
    ] {
        let err = register(url, &instance, &options).expect_err(url);
        // Or, in a build without the backend, the feature's error.
        let want = if built_in { "ttl" } else { "url scheme" };
        assert!(
            matches!(&err, waypost::Error::InvalidConfig { field, .. } if *field == want),
            "{url}: {err:?}"
        );
    }
    // Eureka renews every third of its lease, at least a second apart: 2 s is too short,
    // and the error names the option the caller set.
    let short = DiscoveryOptions::new().ttl(Duration::from_secs(2));
    let err = register("eureka://127.0.0.1:1/eureka/BILLING", &instance, &short).unwrap_err();
    let want = if cfg!(feature = "eureka") {
        "ttl"
    } else {
        "url scheme"
    };
    assert!(
        matches!(&err, waypost::Error::InvalidConfig { field, .. } if *field == want),
        "{err:?}"
    );
}
