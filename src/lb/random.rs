//! placeholder
/// placeholder
#[derive(Debug)]
pub struct Random;
