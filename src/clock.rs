//! `Clock`: time as waypost reads it, so tests can move it instead of sleeping.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};
use parking_lot::Mutex;

/// A source of time: `now()` and a timer channel that fires at a deadline.
///
/// waypost reads time only through a `Clock`, so the invalidate-on-error timeout of an
/// endpointer and the deadline of a [`Retry`](crate::lb::Retry) can be tested with a
/// [`ManualClock`] that a test moves forward, without sleeping.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current instant.
    fn now(&self) -> Instant;

    /// A channel that receives one message once `now() >= deadline` (at once if it
    /// already is). It can be used in `crossbeam_channel::select!`.
    fn after(&self, deadline: Instant) -> Receiver<Instant>;
}

/// Durations from this one up count as "forever": about 100 years, far below where
/// `Instant + Duration` can overflow on any platform (and within Go's `time.Duration`,
/// which Consul parses). waypost never adds such a duration to an instant; where a
/// setter accepts one, it means "never" and its docs say so.
pub(crate) const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// `Some(d)` for a duration that can be added to an instant, `None` for one that means
/// "forever" (see [`FOREVER`]): the form a timeout option of a dependency takes.
pub(crate) fn finite(d: Duration) -> Option<Duration> {
    (d < FOREVER).then_some(d)
}

/// One shared handle on [`SystemClock`], the default of every builder: two watches
/// that both use the default clock compare equal (shared Consul watches key on it).
#[cfg_attr(not(feature = "consul"), allow(dead_code))]
pub(crate) fn system() -> std::sync::Arc<dyn Clock> {
    static SYSTEM: std::sync::OnceLock<std::sync::Arc<dyn Clock>> = std::sync::OnceLock::new();
    SYSTEM
        .get_or_init(|| std::sync::Arc::new(SystemClock))
        .clone()
}

/// The real clock: `Instant::now()` and `crossbeam_channel::at`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn after(&self, deadline: Instant) -> Receiver<Instant> {
        crossbeam_channel::at(deadline)
    }
}

/// A clock that only moves when told to; for tests.
///
/// Clones share the same time. Timers made by [`Clock::after`] fire when
/// [`ManualClock::advance`] moves the time to or past their deadline.
///
/// ```
/// use std::time::Duration;
/// use waypost::{Clock, ManualClock};
/// let clock = ManualClock::new();
/// let timer = clock.after(clock.now() + Duration::from_secs(60));
/// assert!(timer.try_recv().is_err());
/// clock.advance(Duration::from_secs(60));
/// assert!(timer.try_recv().is_ok());
/// ```
#[derive(Clone)]
pub struct ManualClock {
    inner: Arc<Mutex<ManualState>>,
}

struct ManualState {
    now: Instant,
    timers: Vec<(Instant, Sender<Instant>)>,
}

impl ManualClock {
    /// A manual clock starting at the real current instant.
    pub fn new() -> ManualClock {
        ManualClock {
            inner: Arc::new(Mutex::new(ManualState {
                now: Instant::now(),
                timers: Vec::new(),
            })),
        }
    }

    /// Moves time forward by `by` and fires every timer that is now due.
    ///
    /// Never panics: a step past the last instant the platform can represent stops
    /// there, so `advance(Duration::MAX)` fires every timer, and `now()` is then the
    /// furthest instant there is (adding to it overflows: use `checked_add`).
    /// `advance(Duration::ZERO)` fires the timers due now (a deadline of `now()` has
    /// already fired when it was made).
    pub fn advance(&self, by: Duration) {
        let mut state = self.inner.lock();
        state.now = saturating_add(state.now, by);
        let now = state.now;
        state.timers.retain(|(deadline, tx)| {
            let due = *deadline <= now;
            if due {
                let _ = tx.try_send(now);
            }
            !due
        });
    }

    /// How many timers have been made and have not fired yet, including those whose
    /// receiver was dropped: for tests that must know a thread armed its timer before
    /// they move time.
    pub fn pending_timers(&self) -> usize {
        self.inner.lock().timers.len()
    }
}

/// `now + by`, or the latest instant reachable from `now` when that overflows.
fn saturating_add(now: Instant, by: Duration) -> Instant {
    if let Some(later) = now.checked_add(by) {
        return later;
    }
    // The largest representable step, found by halving: at most ~100 checked adds.
    let (mut fits, mut fails) = (Duration::ZERO, by);
    while fails - fits > Duration::from_nanos(1) {
        let mid = fits + (fails - fits) / 2;
        if now.checked_add(mid).is_some() {
            fits = mid;
        } else {
            fails = mid;
        }
    }
    now + fits
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.lock();
        f.debug_struct("ManualClock")
            .field("now", &state.now)
            .field("timers", &state.timers.len())
            .finish()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.inner.lock().now
    }
    fn after(&self, deadline: Instant) -> Receiver<Instant> {
        let (tx, rx) = bounded(1);
        let mut state = self.inner.lock();
        if deadline <= state.now {
            let _ = tx.try_send(state.now);
        } else {
            state.timers.push((deadline, tx));
        }
        rx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_timers_fire_only_when_moved() {
        let clock = ManualClock::new();
        let start = clock.now();
        let t1 = clock.after(start + Duration::from_secs(1));
        let t2 = clock.after(start + Duration::from_secs(5));
        assert_eq!(clock.pending_timers(), 2);
        clock.advance(Duration::from_secs(2));
        assert_eq!(t1.try_recv().unwrap(), start + Duration::from_secs(2));
        assert!(t2.try_recv().is_err());
        clock.advance(Duration::from_secs(3));
        assert!(t2.try_recv().is_ok());
        assert_eq!(clock.pending_timers(), 0);
        assert!(
            clock.after(start).try_recv().is_ok(),
            "past deadline fires at once"
        );
    }

    #[test]
    fn advancing_by_zero_or_max_never_panics() {
        let clock = ManualClock::new();
        let start = clock.now();
        let soon = clock.after(start + Duration::from_secs(1));
        let far = clock.after(start + FOREVER);
        clock.advance(Duration::ZERO);
        assert_eq!(clock.now(), start);
        assert!(soon.try_recv().is_err());
        clock.advance(Duration::MAX);
        assert!(soon.try_recv().is_ok() && far.try_recv().is_ok());
        assert!(clock.now() >= start + FOREVER);
        assert!(clock.now().checked_add(Duration::from_secs(1)).is_none());
        clock.advance(Duration::MAX); // already at the end: stays there
        clock.advance(Duration::from_nanos(1));
        assert!(clock.after(clock.now()).try_recv().is_ok());
    }

    #[test]
    fn only_durations_from_forever_up_are_infinite() {
        assert_eq!(finite(Duration::ZERO), Some(Duration::ZERO));
        assert_eq!(
            finite(FOREVER - Duration::from_nanos(1)),
            Some(FOREVER - Duration::from_nanos(1))
        );
        assert_eq!(finite(FOREVER), None);
        assert_eq!(finite(Duration::MAX), None);
        assert!(Instant::now().checked_add(FOREVER).is_some());
    }
}
