//! Plumbing shared by the core and every backend; not public.

pub(crate) mod backoff;
#[cfg(any(feature = "_http", feature = "zk"))]
pub(crate) mod base64;
#[cfg(feature = "_http")]
pub(crate) mod http;
#[cfg(any(
    feature = "consul",
    feature = "etcd",
    feature = "zk",
    feature = "eureka"
))]
pub(crate) mod keeper;
pub(crate) mod publisher;
pub(crate) mod rand;
pub(crate) mod shard;
pub(crate) mod watch;
pub(crate) mod worker;
