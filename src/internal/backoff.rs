//! Capped exponential backoff with jitter, and waits that a stop signal cuts short.
//!
//! Every backend retries registry errors with a [`Backoff`] and sleeps only through
//! [`wait`], so `stop()` interrupts a backoff at once instead of after it.

use std::time::Duration;

use crossbeam_channel::{Receiver, after, select};

use super::rand;

/// How a [`Backoff`] grows and spreads its delays.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Curve {
    /// `initial, 2*initial, 4*initial, ...`, each with "equal jitter": a delay `d` is
    /// drawn uniformly from `[d/2, d]`, so retries from many clients spread out while
    /// the expected wait still grows. The watches and keep-alives.
    Doubling,
    /// gRPC's connection backoff: `initial × 1.6ⁿ`, capped, then times a random
    /// `U(0.8, 1.2)` (so up to 1.2 × `max`). [`Retry`](crate::lb::Retry)'s waits.
    Grpc,
}

/// gRPC's backoff multiplier.
const GRPC_MULTIPLIER: f64 = 1.6;
/// gRPC's backoff jitter: the wait is multiplied by `U(1 - JITTER, 1 + JITTER)`.
const GRPC_JITTER: f64 = 0.2;

/// Capped exponential delays with jitter: [`new`](Backoff::new) doubles with equal
/// jitter, [`grpc`](Backoff::grpc) follows gRPC's connection backoff.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
    curve: Curve,
}

impl Backoff {
    /// A doubling backoff from `initial` (at least 1 ms) up to `max` (at least
    /// `initial`). Any durations are accepted: a delay of
    /// [`FOREVER`](crate::clock::FOREVER) or more is a wait that only a stop ends
    /// ([`wait`] never adds it to an instant).
    pub(crate) fn new(initial: Duration, max: Duration) -> Backoff {
        let initial = initial.max(Duration::from_millis(1));
        Backoff {
            initial,
            max: max.max(initial),
            attempt: 0,
            curve: Curve::Doubling,
        }
    }

    /// gRPC's backoff from `initial` up to `max` (the caller checks `max >= initial`);
    /// a zero `initial` never waits.
    pub(crate) fn grpc(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max,
            attempt: 0,
            curve: Curve::Grpc,
        }
    }

    /// The next delay; each call grows the base until it reaches the cap.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.delay(self.attempt);
        self.attempt = self.attempt.saturating_add(1);
        delay
    }

    /// The delay before retry `n` (from 0), jittered, whatever came before.
    pub(crate) fn delay(&self, n: u32) -> Duration {
        match self.curve {
            Curve::Doubling => {
                let base = self.initial.saturating_mul(1u32 << n.min(20)).min(self.max);
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
            Curve::Grpc => {
                let exponent = i32::try_from(n).unwrap_or(i32::MAX);
                let base = self.initial.as_secs_f64() * GRPC_MULTIPLIER.powi(exponent);
                let base = base.min(self.max.as_secs_f64());
                let unit = (rand::next_u64() >> 11) as f64 / (1u64 << 53) as f64;
                let jitter = 1.0 - GRPC_JITTER + 2.0 * GRPC_JITTER * unit;
                Duration::try_from_secs_f64(base * jitter).unwrap_or(self.max)
            }
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
    fn grpc_grows_by_1_6_within_its_jitter_and_cap() {
        let b = Backoff::grpc(Duration::from_secs(1), Duration::from_secs(3));
        for (n, base) in [(0, 1.0), (1, 1.6), (2, 2.56), (3, 3.0), (40, 3.0)] {
            for _ in 0..50 {
                let d = b.delay(n).as_secs_f64();
                assert!(d >= base * 0.8 - 1e-9 && d <= base * 1.2 + 1e-9, "{n}: {d}");
            }
        }
        let zero = Backoff::grpc(Duration::ZERO, Duration::ZERO);
        assert_eq!(zero.delay(5), Duration::ZERO);
        let huge = Backoff::grpc(Duration::MAX, Duration::MAX);
        assert!(huge.delay(3) >= crate::clock::FOREVER);
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
