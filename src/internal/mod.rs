//! Plumbing shared by the core and every backend; not public.

pub(crate) mod backoff;
pub(crate) mod publisher;
pub(crate) mod rand;
pub(crate) mod shard;
