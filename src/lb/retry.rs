//! placeholder
/// placeholder
#[derive(Debug)]
pub struct Retry;
/// placeholder
#[derive(Debug)]
pub struct RetryError;
