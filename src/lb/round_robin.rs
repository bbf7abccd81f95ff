//! placeholder
/// placeholder
#[derive(Debug)]
pub struct RoundRobin;
