//! Eureka: discover instances of an app (or a VIP address) by polling a Eureka server,
//! and register this one with a renewed lease. Feature `eureka`.
//!
//! (Module docs: written with the instancer and registrar.)

mod client;
mod http_client;
mod wire;

pub use client::{Client, InstanceInfo, Status};
pub use http_client::{HttpClient, HttpClientBuilder};
