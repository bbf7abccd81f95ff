//! Eureka: discover instances of an app (or a VIP address) by polling a Eureka server,
//! and register this one with a renewed lease. Feature `eureka`.
//!
//! (Module docs: written with the instancer and registrar.)

mod client;
#[cfg(test)]
mod fake;
mod http_client;
mod instancer;
mod registrar;
mod wire;

pub use client::{Client, InstanceInfo, Status};
pub use http_client::{HttpClient, HttpClientBuilder};
pub use instancer::{DEFAULT_INTERVAL, Instancer, InstancerBuilder};
pub use registrar::{Registrar, RegistrarBuilder};

/// The `log` target of the Eureka backend.
const LOG: &str = "waypost::eureka";
