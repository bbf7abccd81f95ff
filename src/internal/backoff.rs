//! Capped exponential backoff with jitter, and waits that a stop signal cuts short.
//!
//! Every backend retries registry errors with a [`Backoff`] and sleeps only through
//! [`wait`], so `stop()` interrupts a backoff at once instead of after it.

use std::time::Duration;

use crossbeam_channel::{Receiver, after, select};

use super::rand;

/// Delays `initial, 2*initial, 4*initial, ...` capped at `max`, each with "equal jitter":
/// a delay `d` is drawn uniformly from `[d/2, d]`, so retries from many clients spread
/// out while the expected wait still grows.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// A backoff from `initial` (at least 1 ms) up to `max` (at least `initial`).
    /// Any durations are accepted: a delay of [`FOREVER`](crate::clock::FOREVER) or
    /// more is a wait that only a stop ends ([`wait`] never adds it to an instant).
    pub(crate) fn new(initial: Duration, max: Duration) -> Backoff {
        let initial = initial.max(Duration::from_millis(1));
        Backoff {
            initial,
            max: max.max(initial),
            attempt: 0,
        }
    }

    /// The next delay; each call doubles the base until it reaches the cap.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let base = self
            .initial
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let half = base / 2;
        match u64::try_from((base - half).as_nanos()) {
            Ok(0) => base,
            Ok(span) if span < u64::MAX => {
                half + Duration::from_nanos(rand::next_u64() % (span + 1))
            }
            // Over 584 years of spread: no jitter is needed to part such waits.
            _ => base,
        }
    }

    /// Back to the initial delay, after a success.
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// Waits for `duration` unless `stop` receives a message or is disconnected first.
/// Returns true if it was stopped.
pub(crate) fn wait(stop: &Receiver<()>, duration: Duration) -> bool {
    select! {
        recv(stop) -> _ => true,
        recv(after(duration)) -> _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn grows_to_the_cap_with_jitter() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let delays: Vec<_> = (0..8).map(|_| b.next_delay()).collect();
        for (i, d) in delays.iter().enumerate() {
            let base = Duration::from_millis(100 * (1 << i)).min(Duration::from_secs(1));
            assert!(
                *d >= base / 2 && *d <= base,
                "attempt {i}: {d:?} vs base {base:?}"
            );
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn never_overflows() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        for _ in 0..100 {
            assert!(b.next_delay() <= Duration::from_secs(30));
        }
    }

    #[test]
    fn zero_and_max_neither_panic_nor_spin() {
        let mut zero = Backoff::new(Duration::ZERO, Duration::ZERO);
        for _ in 0..3 {
            let d = zero.next_delay();
            assert!(d >= Duration::from_micros(500) && d <= Duration::from_millis(1));
        }
        let mut max = Backoff::new(Duration::MAX, Duration::MAX);
        for _ in 0..30 {
            assert!(max.next_delay() >= crate::clock::FOREVER);
        }
        let mut uncapped = Backoff::new(Duration::from_millis(1), Duration::MAX);
        let delays: Vec<_> = (0..40).map(|_| uncapped.next_delay()).collect();
        assert!(delays.windows(2).all(|w| w[1] >= w[0] / 2), "{delays:?}");

        let (_tx, rx) = crossbeam_channel::bounded::<()>(0);
        assert!(!wait(&rx, Duration::ZERO));
    }

    #[test]
    fn stop_cuts_a_wait_short() {
        let (tx, rx) = crossbeam_channel::bounded::<()>(0);
        let started = Instant::now();
        let waiter = std::thread::spawn(move || wait(&rx, Duration::MAX));
        drop(tx);
        assert!(waiter.join().unwrap());
        assert!(started.elapsed() < Duration::from_secs(5));

        let (_tx, rx) = crossbeam_channel::bounded::<()>(0);
        assert!(!wait(&rx, Duration::from_millis(1)));
    }
}
