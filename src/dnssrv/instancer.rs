//! `dnssrv::Instancer` (stub).

/// Watches an SRV name (stub).
#[derive(Debug)]
pub struct Instancer;

/// Builds an [`Instancer`] (stub).
#[derive(Debug)]
pub struct InstancerBuilder;
