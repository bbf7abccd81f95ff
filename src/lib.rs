//! TOUR PLACEHOLDER
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![warn(unreachable_pub, missing_debug_implementations)]

mod clock;
mod endpoint_cache;
mod endpointer;
mod error;
mod event;
mod factory;
mod instance;
mod instancer;
mod internal;
mod registrar;

pub mod file;
pub mod lb;
pub mod memory;

/// Not part of the API: a hook for the crate's own benchmarks; may change or vanish.
#[doc(hidden)]
#[path = "internal/bench.rs"]
pub mod __bench;

pub use clock::{Clock, ManualClock, SystemClock};
pub use endpointer::{DefaultEndpointer, Endpointer, EndpointerOptions, Endpoints, FixedEndpointer};
pub use error::{BoxError, Error, InvalidInstance, Result};
pub use event::{Event, InstanceSet};
pub use factory::{Closer, Factory, Made};
pub use instance::{Instance, InstanceBuilder, Metadata};
pub use instancer::{FixedInstancer, Instancer};
pub use memory::MemoryRegistry;
pub use registrar::{Registrar, Registration};

/// The channel crate waypost's [`Instancer`]s send [`Event`]s on.
pub use crossbeam_channel;
