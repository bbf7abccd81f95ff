//! Eureka: discover the UP instances of an app (or a VIP address) by polling a Eureka
//! server, and register this instance with a renewed lease. Feature `eureka`.
//!
//! ```no_run
//! use std::time::Duration;
//! use waypost::eureka::{HttpClient, Instancer, Registrar};
//! use waypost::DefaultEndpointer;
//!
//! // The peers of a Eureka cluster, tried in turn (Spring Cloud's base path).
//! let client = HttpClient::builder()
//!     .server("http://10.0.0.1:8761/eureka")
//!     .server("http://10.0.0.2:8761/eureka")
//!     .build()?;
//! // This process, as an instance of PAYMENTS, renewed every 30 s until dropped.
//! let _me = Registrar::builder(&client, "payments", "10.0.0.7:8080").build()?.register()?;
//! let instancer = Instancer::app(&client, "orders").build()?;
//! let endpointer = DefaultEndpointer::new(instancer, |i| Ok(format!("http://{i}")))?;
//! endpointer.wait_ready(Duration::from_secs(2))?;
//! # Ok::<(), waypost::Error>(())
//! ```
//!
//! # The client
//!
//! [`HttpClient`] speaks Eureka's REST API (Netflix's "Eureka REST operations") in JSON
//! on the shared HTTP plumbing: several server URLs with fail-over (a Eureka cluster is
//! a list of peers), basic auth from a builder setting (a URL with `user:pass@` is
//! refused: credentials do not belong in URLs, which end up in logs), TLS, timeouts.
//! It reads Eureka's JSON as servers write it: `application` and `instance` as one
//! object or an array, ports as `{"$": 8080, "@enabled": "true"}` (with `$` a number
//! or a string, `@enabled` a bool or a string), `overriddenstatus` or
//! `overriddenStatus`, metadata without its `@class` marker. App names go upper case.
//!
//! # Watch mechanism
//!
//! An [`Instancer`] (thread `waypost-eureka-watch`) reads `GET {base}/apps/{APP}` (or
//! `/vips/{VIP}`) every [`interval`](InstancerBuilder::interval) (30 s by default, as
//! Eureka's own clients fetch) and publishes the instances whose status is UP:
//! `hostName:port` by default, `ipAddr:port` with
//! [`prefer_ip_address`](InstancerBuilder::prefer_ip_address), the secure port with
//! scheme `https` when only that one is enabled. Each instance carries Eureka's
//! metadata map (`zone` as its zone, a numeric `weight` as its weight, the rest as
//! values) and the values `eureka.app`, `eureka.instance_id`, `eureka.vip` and
//! `eureka.data_center`.
//!
//! An unknown app (404) is the empty set, but only once `GET {base}/apps/` answers:
//! a base path that 404s everywhere (`/eureka/v2` against a Spring server's
//! `/eureka`) is an error event, not "no instances". Errors (a server down, an HTML
//! error page, a body of the wrong shape) are error events; the endpointer keeps the
//! last set.
//!
//! A real Eureka server answers reads from a cache refreshed every 30 s, so a change
//! may take up to 30 s (plus the interval) to show, however short the interval.
//!
//! # Registration
//!
//! A [`Registrar`] registers the instance (app, id, host name, IP, ports with their
//! enabled flags, status, data center, lease info, metadata, VIP address) and a
//! thread, `waypost-eureka-heartbeat`, renews its lease every renewal interval (30 s;
//! the lease lasts 90 s). A renewal answered 404 means the server forgot the instance
//! (it expired, the server restarted, or another peer answered): the thread
//! registers it again at once. The instance's own status (UP, DOWN, STARTING) changes
//! by registering again ([`Registrar::set_status`]); OUT_OF_SERVICE is an operator's
//! override ([`Registrar::set_out_of_service`]) that sticks over the instance's own
//! status until removed. The [`Registration`](crate::Registration) guard cancels the
//! instance (`DELETE`) on drop.

mod client;
#[cfg(test)]
mod decode_props;
#[cfg(test)]
mod fake;
mod http_client;
mod instancer;
mod lenient;
mod registrar;
mod wire;

pub use client::{Client, InstanceInfo, Status};
pub use http_client::{HttpClient, HttpClientBuilder};
pub use instancer::{DEFAULT_INTERVAL, Instancer, InstancerBuilder};
pub use registrar::{Registrar, RegistrarBuilder};

/// The `log` target of the Eureka backend.
const LOG: &str = "waypost::eureka";
