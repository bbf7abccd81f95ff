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
