//! The conformance suite, run against every backend this build has.

mod support;

use std::sync::Arc;

use support::conformance::{self, Backend};
use waypost::{Instance, Instancer, MemoryRegistry, Registrar};

struct Memory(MemoryRegistry);

impl Backend for Memory {
    fn name(&self) -> &str {
        "memory"
    }
    fn instancer(&self, service: &str) -> Arc<dyn Instancer> {
        Arc::new(self.0.instancer(service))
    }
    fn registrar(&self, service: &str, addr: &str) -> Box<dyn Registrar> {
        Box::new(
            self.0
                .registrar(service, Instance::parse(addr).expect("address")),
        )
    }
    fn watch_thread(&self) -> Option<&str> {
        None
    }
}

#[test]
fn memory() {
    conformance::run(&Memory(MemoryRegistry::new()));
}

#[cfg(feature = "consul")]
struct Consul(waypost::consul::HttpClient);

#[cfg(feature = "consul")]
impl Backend for Consul {
    fn name(&self) -> &str {
        "consul"
    }
    fn instancer(&self, service: &str) -> Arc<dyn Instancer> {
        Arc::new(
            waypost::consul::Instancer::builder(&self.0, service)
                .build()
                .expect("instancer"),
        )
    }
    fn registrar(&self, service: &str, addr: &str) -> Box<dyn Registrar> {
        let instance = Instance::parse(addr).expect("address");
        let (host, port) = (instance.host().unwrap(), instance.port().unwrap());
        Box::new(
            waypost::consul::Registrar::builder(&self.0, service, host, port)
                .build()
                .expect("registrar"),
        )
    }
    fn watch_thread(&self) -> Option<&str> {
        Some("waypost-consul-watch")
    }
}

/// The suite on a real Consul agent (skipped loudly when the binary is missing).
#[cfg(feature = "consul")]
#[test]
fn consul() {
    let Some(agent) = support::consul::shared() else {
        return;
    };
    let client = waypost::consul::HttpClient::builder()
        .address(agent.http_base())
        .build()
        .expect("client");
    conformance::run(&Consul(client));
}
