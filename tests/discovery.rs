//! `discovery::discover` (issue 24): a URL to a running instancer, against the
//! in-process registry, a file, and a real Consul agent.

mod support;

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
