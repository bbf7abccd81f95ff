//! The conformance suite (tests/support/conformance.rs), run against every backend this
//! build has: one test per check that applies to the backend, named
//! `<backend>::<check>`. A backend is a `Source` (instancers, and a way to add and
//! remove instances) and, where it has them, an `Outage`, a `HeldAnswer` and a
//! `Registry`; each check asks for what it needs, so a check a backend cannot run
//! does not compile for it.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use support::conformance::{self, HeldAnswer, Outage, Registry, Source};
use support::scratch::Scratch;
use waypost::file::FileInstancer;
use waypost::{Instance, Instancer, ManualClock, MemoryRegistry, Registrar, Registration};

/// `checks!(backend { source => check, check; source => check; })`: a module of tests,
/// one per check, each on a fresh source (an `Option`: `None` skips, as for a missing
/// server binary).
macro_rules! checks {
    ($backend:ident { $($source:expr => $($check:ident),+;)+ }) => {
        mod $backend {
            use super::*;
            $($(
                #[test]
                fn $check() {
                    if let Some(source) = $source {
                        conformance::$check(&source);
                    }
                }
            )+)+
        }
    };
}

checks!(memory {
    Some(Memory::default()) =>
        two_instances_are_seen, a_removed_instance_goes, stop_joins_promptly,
        a_registration_is_visible, deregistration_removes_it,
        dropping_the_registration_deregisters, the_calls_are_idempotent;
});

checks!(file {
    Some(File::new()) =>
        two_instances_are_seen, a_removed_instance_goes, an_error_keeps_the_last_set,
        nothing_is_sent_before_the_first_answer, stop_joins_promptly;
});

#[cfg(feature = "consul")]
checks!(consul {
    Consul::shared() =>
        two_instances_are_seen, a_removed_instance_goes, stop_joins_promptly,
        a_registration_is_visible, deregistration_removes_it,
        dropping_the_registration_deregisters, the_calls_are_idempotent;
    // These stop or pause the agent: one of their own each.
    Consul::own() => an_error_keeps_the_last_set, nothing_is_sent_before_the_first_answer;
});

#[cfg(feature = "etcd")]
checks!(etcd {
    Etcd::shared() =>
        two_instances_are_seen, a_removed_instance_goes, stop_joins_promptly,
        a_registration_is_visible, deregistration_removes_it,
        dropping_the_registration_deregisters, the_calls_are_idempotent;
    // These stop or pause the member: one of their own each.
    Etcd::own() => an_error_keeps_the_last_set, nothing_is_sent_before_the_first_answer;
});

#[cfg(feature = "zk")]
checks!(zk {
    Zk::shared() =>
        two_instances_are_seen, a_removed_instance_goes, stop_joins_promptly,
        a_registration_is_visible, deregistration_removes_it,
        dropping_the_registration_deregisters, the_calls_are_idempotent;
});

#[cfg(feature = "eureka")]
checks!(eureka {
    // A double of its own each (it starts in microseconds, on a thread).
    Eureka::own() =>
        two_instances_are_seen, a_removed_instance_goes, stop_joins_promptly,
        an_error_keeps_the_last_set, a_registration_is_visible, deregistration_removes_it,
        dropping_the_registration_deregisters, the_calls_are_idempotent;
});

#[cfg(feature = "dnssrv")]
checks!(dns {
    // Each restarts its dnsmasq to change records: one of their own each (~15 ms).
    Dns::own() =>
        two_instances_are_seen, a_removed_instance_goes, stop_joins_promptly,
        an_error_keeps_the_last_set;
});

// ---- memory: the registry's own registrars; nothing can fail, the state is at once ----

#[derive(Default)]
struct Memory {
    registry: MemoryRegistry,
    added: Mutex<HashMap<(String, String), Registration>>,
}

impl Source for Memory {
    fn name(&self) -> &str {
        "memory"
    }
    fn instancer(&self, service: &str) -> Arc<dyn Instancer> {
        Arc::new(self.registry.instancer(service))
    }
    fn add(&self, service: &str, addr: &str) {
        let registration = self.registrar(service, addr).register().expect("register");
        let key = (service.to_owned(), addr.to_owned());
        self.added.lock().insert(key, registration);
    }
    fn remove(&self, service: &str, addr: &str) {
        let key = (service.to_owned(), addr.to_owned());
        drop(self.added.lock().remove(&key));
    }
}

impl Registry for Memory {
    fn registrar(&self, service: &str, addr: &str) -> Box<dyn Registrar> {
        let instance = Instance::parse(addr).expect("an address");
        Box::new(self.registry.registrar(service, instance))
    }
}

// ---- file: one file per service, polled on a manual clock that ticks as checks wait ----

struct File {
    scratch: Scratch,
    clock: ManualClock,
    sets: Mutex<HashMap<String, BTreeSet<String>>>,
}

const POLL: Duration = Duration::from_secs(1);

impl File {
    fn new() -> File {
        File {
            scratch: Scratch::new(),
            clock: ManualClock::new(),
            sets: Mutex::default(),
        }
    }

    /// Writes `service`'s file (renamed into place, as a writer should).
    fn write(&self, service: &str, text: &str) -> PathBuf {
        self.scratch.replace_named(&format!("{service}.txt"), text)
    }

    fn write_set(&self, service: &str) -> PathBuf {
        let sets = self.sets.lock();
        let lines: String = sets
            .get(service)
            .into_iter()
            .flatten()
            .map(|addr| format!("{addr}\n"))
            .collect();
        self.write(service, &lines)
    }

    fn change(&self, service: &str, change: impl FnOnce(&mut BTreeSet<String>)) {
        change(self.sets.lock().entry(service.to_owned()).or_default());
        self.write_set(service);
    }
}

impl Source for File {
    fn name(&self) -> &str {
        "file"
    }
    /// A service nothing was added to is an empty file.
    fn instancer(&self, service: &str) -> Arc<dyn Instancer> {
        let path = self.write_set(service);
        let instancer = FileInstancer::builder(path)
            .poll_interval(POLL)
            .clock(self.clock.clone())
            .build()
            .expect("a file instancer");
        Arc::new(instancer)
    }
    fn add(&self, service: &str, addr: &str) {
        self.change(service, |set| {
            set.insert(addr.to_owned());
        });
    }
    fn remove(&self, service: &str, addr: &str) {
        self.change(service, |set| {
            set.remove(addr);
        });
    }
    fn tick(&self) {
        self.clock.advance(POLL);
    }
    fn watch_thread(&self) -> Option<&str> {
        Some("waypost-file-watch")
    }
}

impl Outage for File {
    fn fail(&self, service: &str) {
        self.write(service, "not an address\n");
    }
    fn recover(&self, service: &str) {
        self.write_set(service);
    }
}

impl HeldAnswer for File {
    /// `build()` returns after the first read; a set is published when a second read,
    /// one poll interval later on the clock that only `release` moves, agrees.
    fn held_instancer(&self, service: &str) -> Arc<dyn Instancer> {
        self.instancer(service)
    }
    fn release(&self) {
        self.tick();
    }
}

// ---- consul: the agent's HTTP API adds and removes; waypost's registrar registers ----

#[cfg(feature = "consul")]
use consul_source::Consul;

#[cfg(feature = "consul")]
mod consul_source {
    use super::*;
    use parking_lot::MutexGuard;
    use support::consul::{ConsulAgent, shared};
    use support::fake_consul::spy;
    use support::http::http_request;
    use support::server::Shared;
    use waypost::consul::{HttpClient, Instancer, Registrar};

    pub(super) struct Consul {
        http_port: u16,
        client: HttpClient,
        /// For the checks that stop or pause the agent.
        own: Option<Mutex<ConsulAgent>>,
        _shared: Option<Shared<ConsulAgent>>,
    }

    impl Consul {
        /// On the test binary's shared agent.
        pub(super) fn shared() -> Option<Consul> {
            let agent = shared()?;
            Some(Consul::on(agent.http_port(), None, Some(agent)))
        }

        /// On an agent of its own.
        pub(super) fn own() -> Option<Consul> {
            let agent = ConsulAgent::new()?;
            Some(Consul::on(agent.http_port(), Some(Mutex::new(agent)), None))
        }

        fn on(
            port: u16,
            own: Option<Mutex<ConsulAgent>>,
            shared: Option<Shared<ConsulAgent>>,
        ) -> Consul {
            let client = HttpClient::builder()
                .address(format!("http://127.0.0.1:{port}"))
                .build()
                .expect("a client");
            Consul {
                http_port: port,
                client,
                own,
                _shared: shared,
            }
        }

        fn agent(&self) -> MutexGuard<'_, ConsulAgent> {
            self.own.as_ref().expect("an agent of its own").lock()
        }

        fn put(&self, path: &str, body: &str) {
            let reply = http_request(self.http_port, "PUT", path, &[], body).expect("the agent");
            assert_eq!(reply.status, 200, "PUT {path}: {}", reply.body);
        }
    }

    fn id(service: &str, addr: &str) -> String {
        format!("{service}-{}", addr.replace(':', "-"))
    }

    impl Source for Consul {
        fn name(&self) -> &str {
            "consul"
        }
        fn instancer(&self, service: &str) -> Arc<dyn waypost::Instancer> {
            let instancer = Instancer::builder(&self.client, service)
                .backoff(Duration::from_millis(10), Duration::from_millis(100))
                .build()
                .expect("a consul instancer");
            Arc::new(instancer)
        }
        /// A registration without a check: passing at once.
        fn add(&self, service: &str, addr: &str) {
            let (host, port) = addr.rsplit_once(':').expect("host:port");
            let id = id(service, addr);
            let body =
                format!(r#"{{"ID":"{id}","Name":"{service}","Address":"{host}","Port":{port}}}"#);
            self.put("/v1/agent/service/register", &body);
        }
        fn remove(&self, service: &str, addr: &str) {
            self.put(
                &format!("/v1/agent/service/deregister/{}", id(service, addr)),
                "",
            );
        }
        // No watch thread to count: the instancers of one client share a watch that
        // lingers after the last stop until its query returns, and is joined when the
        // client's last clone drops (tests/consul_stop.rs checks that).
    }

    impl Outage for Consul {
        fn fail(&self, _service: &str) {
            self.agent().stop();
        }
        /// Same data dir: the registrations are back.
        fn recover(&self, _service: &str) {
            self.agent().start();
        }
    }

    impl HeldAnswer for Consul {
        /// The agent is paused (the kernel takes the connection, nothing answers) and
        /// the instancer's client tells when its first query has started.
        fn held_instancer(&self, service: &str) -> Arc<dyn waypost::Instancer> {
            self.agent().pause();
            let (spy, spied) = spy(self.client.clone());
            let instancer = Instancer::builder(&spy, service)
                .first_fetch_timeout(Duration::ZERO)
                .build()
                .expect("a consul instancer");
            spied
                .queries
                .recv_timeout(support::BOUND)
                .expect("the first query");
            Arc::new(instancer)
        }
        fn release(&self) {
            self.agent().resume();
        }
    }

    impl Registry for Consul {
        fn registrar(&self, service: &str, addr: &str) -> Box<dyn waypost::Registrar> {
            let instance = Instance::parse(addr).expect("an address");
            let (host, port) = (instance.host().unwrap(), instance.port().unwrap());
            let registrar = Registrar::builder(&self.client, service, host, port)
                .build()
                .expect("a consul registrar");
            Box::new(registrar)
        }
    }
}

// ---- etcd: etcdctl puts and deletes keys; waypost's registrar registers ----

#[cfg(feature = "etcd")]
use etcd_source::Etcd;

#[cfg(feature = "etcd")]
mod etcd_source {
    use super::*;
    use crossbeam_channel::{Sender, unbounded};
    use parking_lot::MutexGuard;
    use support::etcd::{Etcd as Member, shared};
    use support::server::Shared;
    use waypost::etcd::{self, HttpClient, Instancer, Registrar};

    pub(super) struct Etcd {
        client: HttpClient,
        /// For the checks that stop or pause the member.
        own: Option<Mutex<Member>>,
        shared: Option<Shared<Member>>,
    }

    impl Etcd {
        /// On the test binary's shared member.
        pub(super) fn shared() -> Option<Etcd> {
            let member = shared()?;
            Some(Etcd::on(&member.client_url(), None, Some(member)))
        }

        /// On a member of its own.
        pub(super) fn own() -> Option<Etcd> {
            let member = Member::new()?;
            Some(Etcd::on(
                &member.client_url(),
                Some(Mutex::new(member)),
                None,
            ))
        }

        fn on(url: &str, own: Option<Mutex<Member>>, shared: Option<Shared<Member>>) -> Etcd {
            let client = HttpClient::builder()
                .address(url)
                .build()
                .expect("a client");
            Etcd {
                client,
                own,
                shared,
            }
        }

        fn member(&self) -> MutexGuard<'_, Member> {
            self.own.as_ref().expect("a member of its own").lock()
        }

        fn with_member<T>(&self, f: impl FnOnce(&Member) -> T) -> T {
            match (&self.shared, &self.own) {
                (Some(shared), _) => f(shared),
                (None, Some(own)) => f(&own.lock()),
                (None, None) => unreachable!("a member"),
            }
        }
    }

    fn prefix(service: &str) -> String {
        format!("/conformance/{service}/")
    }

    impl Source for Etcd {
        fn name(&self) -> &str {
            "etcd"
        }
        fn instancer(&self, service: &str) -> Arc<dyn waypost::Instancer> {
            let instancer = Instancer::builder(&self.client, prefix(service))
                .backoff(Duration::from_millis(10), Duration::from_millis(100))
                .build()
                .expect("an etcd instancer");
            Arc::new(instancer)
        }
        fn add(&self, service: &str, addr: &str) {
            self.with_member(|m| m.put(&format!("{}{addr}", prefix(service)), addr));
        }
        fn remove(&self, service: &str, addr: &str) {
            self.with_member(|m| m.del(&format!("{}{addr}", prefix(service))));
        }
        fn watch_thread(&self) -> Option<&str> {
            Some("waypost-etcd-watch")
        }
    }

    impl Outage for Etcd {
        fn fail(&self, _service: &str) {
            self.member().stop();
        }
        /// Same data dir: the keys are back.
        fn recover(&self, _service: &str) {
            self.member().start();
        }
    }

    impl HeldAnswer for Etcd {
        /// The member is paused (the kernel takes the connection, nothing answers) and
        /// the instancer's client tells when its first list has started.
        fn held_instancer(&self, service: &str) -> Arc<dyn waypost::Instancer> {
            self.member().pause();
            let (tx, lists) = unbounded();
            let spy = Spy {
                inner: etcd::Client::fork(&self.client),
                lists: tx,
            };
            let instancer = Instancer::builder(&spy, prefix(service))
                .first_fetch_timeout(Duration::ZERO)
                .build()
                .expect("an etcd instancer");
            let _: () = lists.recv_timeout(support::BOUND).expect("the first list");
            Arc::new(instancer)
        }
        fn release(&self) {
            self.member().resume();
        }
    }

    impl Registry for Etcd {
        fn registrar(&self, service: &str, addr: &str) -> Box<dyn waypost::Registrar> {
            let registrar = Registrar::builder(&self.client, prefix(service), addr)
                .build()
                .expect("an etcd registrar");
            Box::new(registrar)
        }
    }

    /// A client that tells when a list starts.
    #[derive(Debug)]
    struct Spy {
        inner: Arc<dyn etcd::Client>,
        lists: Sender<()>,
    }

    impl etcd::Client for Spy {
        fn range_prefix(&self, prefix: &[u8]) -> waypost::Result<etcd::Range> {
            let _ = self.lists.send(());
            self.inner.range_prefix(prefix)
        }
        fn watch(
            &self,
            request: &etcd::WatchRequest<'_>,
            each: &mut dyn FnMut(etcd::WatchResponse) -> bool,
        ) -> waypost::Result<()> {
            self.inner.watch(request, each)
        }
        fn grant_lease(&self, ttl: Duration) -> waypost::Result<etcd::Lease> {
            self.inner.grant_lease(ttl)
        }
        fn keep_alive(&self, id: i64) -> waypost::Result<Option<Duration>> {
            self.inner.keep_alive(id)
        }
        fn revoke_lease(&self, id: i64) -> waypost::Result<()> {
            self.inner.revoke_lease(id)
        }
        fn put(&self, key: &[u8], value: &[u8], lease: i64) -> waypost::Result<()> {
            self.inner.put(key, value, lease)
        }
        fn delete(&self, key: &[u8]) -> waypost::Result<()> {
            self.inner.delete(key)
        }
        fn fork(&self) -> Arc<dyn etcd::Client> {
            Arc::new(Spy {
                inner: self.inner.fork(),
                lists: self.lists.clone(),
            })
        }
        fn shutdown(&self) {
            self.inner.shutdown();
        }
    }
}

// ---- zookeeper: children created and deleted by a client; waypost's registrar ----

#[cfg(feature = "zk")]
use zk_source::Zk;

#[cfg(feature = "zk")]
mod zk_source {
    use super::*;
    use support::server::Shared;
    use support::zookeeper::{Zk as Server, shared};
    use waypost::zk::{Client, CreateMode, Instancer, Registrar};

    pub(super) struct Zk {
        client: Client,
        _server: Shared<Server>,
    }

    impl Zk {
        pub(super) fn shared() -> Option<Zk> {
            let server = shared()?;
            let client = Client::builder(&server.connect_string())
                .build()
                .expect("a client");
            Some(Zk {
                client,
                _server: server,
            })
        }
    }

    fn path(service: &str) -> String {
        format!("/conformance/{service}")
    }

    impl Source for Zk {
        fn name(&self) -> &str {
            "zk"
        }
        fn instancer(&self, service: &str) -> Arc<dyn waypost::Instancer> {
            let instancer = Instancer::builder(&self.client, path(service))
                .missing_poll(Duration::from_millis(50))
                .backoff(Duration::from_millis(10), Duration::from_millis(100))
                .build()
                .expect("a zk instancer");
            Arc::new(instancer)
        }
        fn add(&self, service: &str, addr: &str) {
            self.client.create_all(&path(service)).expect("the path");
            self.client
                .create(
                    &format!("{}/{addr}", path(service)),
                    addr.as_bytes(),
                    CreateMode::Persistent,
                )
                .expect("a child");
        }
        fn remove(&self, service: &str, addr: &str) {
            self.client
                .delete(&format!("{}/{addr}", path(service)), None)
                .expect("deleted");
        }
        fn watch_thread(&self) -> Option<&str> {
            Some("waypost-zk-watch")
        }
    }

    impl Registry for Zk {
        fn registrar(&self, service: &str, addr: &str) -> Box<dyn waypost::Registrar> {
            Box::new(
                Registrar::new(&self.client, &path(service), addr, addr).expect("a zk registrar"),
            )
        }
    }
}

#[cfg(feature = "dnssrv")]
use dns_source::Dns;

/// DNS: a dnsmasq of the check's own; an instance `host:port` is an SRV record whose
/// target has a `host-record` with that address (so the instancer resolves it from
/// the additional section); adding or removing one restarts dnsmasq with the new
/// records; an outage stops it.
#[cfg(feature = "dnssrv")]
mod dns_source {
    use std::collections::BTreeMap;
    use std::net::SocketAddr;

    use super::*;
    use support::dnsmasq::{Dnsmasq, Records};
    use waypost::dnssrv::{Client, Instancer};

    pub(super) struct Dns {
        server: Mutex<Dnsmasq>,
        sets: Mutex<BTreeMap<String, BTreeSet<String>>>,
    }

    impl Dns {
        pub(super) fn own() -> Option<Dns> {
            Some(Dns {
                server: Mutex::new(Dnsmasq::start(&Records::new())?),
                sets: Mutex::default(),
            })
        }

        fn change(&self, service: &str, change: impl FnOnce(&mut BTreeSet<String>)) {
            let mut sets = self.sets.lock();
            change(sets.entry(service.to_owned()).or_default());
            let mut records = Records::new();
            for (service, addrs) in sets.iter() {
                for addr in addrs {
                    let addr: SocketAddr = addr.parse().expect("an ip:port");
                    let ip = addr.ip().to_string().replace(['.', ':'], "-");
                    let target = format!("h-{ip}-{}.example.test", addr.port());
                    records = records
                        .srv(&name(service), &target, addr.port(), 10, 1)
                        .host(&target, addr.ip());
                }
            }
            self.server.lock().set_records(&records);
        }
    }

    fn name(service: &str) -> String {
        format!("_{service}._tcp.example.test")
    }

    impl Source for Dns {
        fn name(&self) -> &str {
            "dns"
        }
        fn instancer(&self, service: &str) -> Arc<dyn waypost::Instancer> {
            let client = Client::builder()
                .server(self.server.lock().addr())
                .timeout(Duration::from_millis(300))
                .build()
                .expect("a dns client");
            let instancer = Instancer::srv(name(service))
                .resolver(client)
                .resolve_targets()
                .ttl_bounds(Duration::from_millis(100), Duration::from_secs(1))
                .backoff(Duration::from_millis(10), Duration::from_millis(100))
                .build()
                .expect("a dns instancer");
            Arc::new(instancer)
        }
        fn add(&self, service: &str, addr: &str) {
            self.change(service, |set| {
                set.insert(addr.to_owned());
            });
        }
        fn remove(&self, service: &str, addr: &str) {
            self.change(service, |set| {
                set.remove(addr);
            });
        }
        fn watch_thread(&self) -> Option<&str> {
            Some("waypost-dns-watch")
        }
    }

    impl Outage for Dns {
        fn fail(&self, _service: &str) {
            self.server.lock().stop();
        }
        fn recover(&self, _service: &str) {
            self.server.lock().start_again();
        }
    }
}

#[cfg(feature = "eureka")]
use eureka_source::Eureka;

/// Eureka: the server double of the check's own; an instance `host:port` is a
/// registration of app `service` with that address as its id; an outage stops the
/// double (its registry is kept, as a restarted peer would get it back).
#[cfg(feature = "eureka")]
mod eureka_source {
    use std::net::SocketAddr;

    use super::*;
    use support::eureka_double::EurekaDouble;
    use waypost::eureka::{Client, HttpClient, InstanceInfo, Instancer, Registrar};

    pub(super) struct Eureka {
        double: EurekaDouble,
        client: HttpClient,
    }

    impl Eureka {
        pub(super) fn own() -> Option<Eureka> {
            let double = EurekaDouble::start();
            let client = HttpClient::builder()
                .server(double.url())
                .request_timeout(Duration::from_secs(2))
                .build()
                .expect("a eureka client");
            Some(Eureka { double, client })
        }
    }

    impl Source for Eureka {
        fn name(&self) -> &str {
            "eureka"
        }
        fn instancer(&self, service: &str) -> Arc<dyn waypost::Instancer> {
            let instancer = Instancer::app(&self.client, service)
                .interval(Duration::from_millis(50))
                .backoff(Duration::from_millis(10), Duration::from_millis(100))
                .build()
                .expect("a eureka instancer");
            Arc::new(instancer)
        }
        fn add(&self, service: &str, addr: &str) {
            let at: SocketAddr = addr.parse().expect("an ip:port");
            let ip = at.ip().to_string();
            let info = InstanceInfo::new(service, addr, &ip, &ip).with_port(at.port());
            self.client.register(&info).expect("registered");
        }
        fn remove(&self, service: &str, addr: &str) {
            self.client.cancel(service, addr).expect("cancelled");
        }
        fn watch_thread(&self) -> Option<&str> {
            Some("waypost-eureka-watch")
        }
    }

    impl Outage for Eureka {
        fn fail(&self, _service: &str) {
            self.double.stop();
        }
        fn recover(&self, _service: &str) {
            self.double.start_again();
        }
    }

    impl Registry for Eureka {
        fn registrar(&self, service: &str, addr: &str) -> Box<dyn waypost::Registrar> {
            Box::new(
                Registrar::builder(&self.client, service, addr)
                    .build()
                    .expect("a eureka registrar"),
            )
        }
    }
}
