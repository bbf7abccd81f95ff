//! How a [`DefaultEndpointer`](crate::DefaultEndpointer) is configured, and what its
//! `status()` reports.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{Clock, Error, SystemClock};

/// Options for a [`DefaultEndpointer`](crate::DefaultEndpointer): data plus by-value setters.
#[derive(Clone, Debug)]
#[must_use = "options do nothing until passed to an endpointer"]
pub struct EndpointerOptions {
    invalidate_after: Option<Duration>,
    removal_grace: Duration,
    hold_on_empty: Option<Duration>,
    clock: Arc<dyn Clock>,
}

/// The default [`EndpointerOptions::removal_grace`].
pub(crate) const REMOVAL_GRACE: Duration = Duration::from_millis(1);

impl Default for EndpointerOptions {
    fn default() -> Self {
        EndpointerOptions {
            invalidate_after: None,
            removal_grace: REMOVAL_GRACE,
            hold_on_empty: None,
            clock: Arc::new(SystemClock),
        }
    }
}

impl EndpointerOptions {
    /// The defaults: keep the last good set for as long as the registry errs, on the
    /// system clock.
    pub fn new() -> EndpointerOptions {
        EndpointerOptions::default()
    }

    /// After the registry has reported errors for `timeout` without a good set in
    /// between, close every endpoint and have `endpoints()` return
    /// [`Error::Invalidated`] until the next good set. Default: never. A short timeout
    /// turns a registry hiccup into an outage; a long one keeps sending traffic to
    /// instances that may be gone. `Duration::ZERO` invalidates on the first error; a
    /// timeout too large for the clock (`Duration::MAX`) never fires, as the default.
    pub fn invalidate_on_error(mut self, timeout: Duration) -> Self {
        self.invalidate_after = Some(timeout);
        self
    }

    /// When an update both removes and adds instances, how long it waits for the
    /// factory calls of the added ones before it publishes the removals on their own.
    ///
    /// Within the grace the update is **one** snapshot: no reader sees the set without
    /// both, and it costs one pass over the endpoints instead of two. Past it, the
    /// removed instances leave service at once and the added ones follow in a second
    /// snapshot when they are made, so a slow factory (a TLS connect) never keeps a
    /// removed instance in service for longer than the grace.
    ///
    /// Default: 1 ms, long enough for a factory that does no I/O. `Duration::ZERO`
    /// always publishes the removals first (a set replaced whole is then empty for a
    /// moment); `Duration::MAX` (or any grace too large for the system's clock) waits
    /// for every factory call, as Go kit does. It is real time: the
    /// [`clock`](Self::clock) option does not drive it.
    pub fn removal_grace(mut self, grace: Duration) -> Self {
        self.removal_grace = grace;
        self
    }

    /// Empty-set protection: when the registry answers an **empty** set right after a
    /// non-empty one, keep serving the last non-empty set for up to `hold`, and only
    /// then serve the empty one (at once if a non-empty set comes back first). While it
    /// holds, [`Status::empty_held_since`] says since when, and a warning is logged.
    /// Default: off (an empty set is served at once, as Go kit does).
    ///
    /// An empty answer right after a full one is more often a fault than a fleet
    /// scaled to zero: a wiped etcd prefix, a Consul ACL token that lost its rights
    /// (Consul then answers `200 []`, not an error), a misconfigured DNS zone. The
    /// trade-off: a real scale-to-zero, or the last instance deregistering, is seen
    /// `hold` late, and calls meanwhile go to instances that may be gone (a balancer's
    /// [`Retry`](crate::lb::Retry) or outlier ejection will meet their errors). A hold
    /// of 30-60 s covers a registry restart or a token rotation. The time is read on
    /// the [`clock`](Self::clock) option's clock.
    pub fn hold_on_empty(mut self, hold: Duration) -> Self {
        self.hold_on_empty = Some(hold);
        self
    }

    pub(crate) fn parts(&self) -> (Arc<dyn Clock>, Option<Duration>, Duration) {
        (
            self.clock.clone(),
            self.invalidate_after,
            self.removal_grace,
        )
    }

    pub(crate) fn hold_on_empty_for(&self) -> Option<Duration> {
        self.hold_on_empty
    }

    /// The clock the invalidation timer reads. Default: [`SystemClock`]; tests pass a
    /// [`ManualClock`](crate::ManualClock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }
}

/// What [`DefaultEndpointer::status`](crate::DefaultEndpointer::status) reports.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Status {
    /// What `endpoints()` serves.
    pub state: EndpointerState,
    /// How many endpoints the current snapshot has.
    pub endpoints: usize,
    /// The current snapshot's [version](crate::Endpoints::version).
    pub version: u64,
    /// When the registry last answered with a set, changed or not.
    pub last_confirmed: Option<Instant>,
    /// The registry's latest error, while its latest answer is an error.
    pub last_error: Option<Arc<Error>>,
    /// When the current run of registry errors began.
    pub error_since: Option<Instant>,
    /// How many registry errors in a row (repeats of one error included).
    pub errors_in_a_row: u64,
    /// While an empty set is held back ([`EndpointerOptions::hold_on_empty`]), since
    /// when: the endpoints served are the last non-empty set's.
    pub empty_held_since: Option<Instant>,
}

/// The state of a [`DefaultEndpointer`](crate::DefaultEndpointer), in its [`Status`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndpointerState {
    /// No set yet: `endpoints()` is empty.
    Pending,
    /// Serving the last good set (which may be stale: see the errors in [`Status`]).
    Ready,
    /// Registry errors outlasted the invalidation timeout: `endpoints()` is an error.
    Invalidated,
    /// Closed.
    Closed,
    /// The thread panicked: `endpoints()` is [`Error::Panicked`].
    Failed,
}
