//! Plumbing shared by the core and every backend; not public.

#[allow(dead_code)] // Backoff itself is first used by the network backends (Consul)
pub(crate) mod backoff;
pub(crate) mod publisher;
pub(crate) mod rand;
pub(crate) mod shard;
