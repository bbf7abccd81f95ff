//! Eureka: discover instances of an app (or a VIP address) by polling a Eureka server,
//! and register this one with a renewed lease. Feature `eureka`.
//!
//! (Module docs: written with the instancer and registrar.)

mod client;
#[cfg(test)]
mod decode_props;
mod http_client;
mod lenient;
mod wire;

pub use client::{Client, InstanceInfo, Status};
pub use http_client::{HttpClient, HttpClientBuilder};

const LOG: &str = "waypost::eureka";
