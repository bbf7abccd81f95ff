//! `Retry`: call a balancer's picks until one succeeds, within attempts and a deadline.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::internal::backoff::Backoff;
use crate::lb::{Balancer, Pick, RetryBudget};
use crate::{Clock, Error, Instance, Result, SystemClock};

const DEFAULT_ATTEMPTS: usize = 3;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
const LOG: &str = "waypost::lb::retry";

/// Calls a function on picked endpoints until it succeeds, at most `max_attempts`
/// times and within one overall timeout.
///
/// # Algorithm
/// Go kit's `lb.Retry` / `lb.RetryWithCallback`, without its goroutine per attempt and
/// its allocations. [`call`](Retry::call) reads the clock once and sets
/// `deadline = start + timeout`. Each attempt picks an endpoint and runs
/// `f(&endpoint, deadline)` on it while holding the snapshot it came from: the
/// endpoint is not closed during the attempt (a snapshot holds no lock, so a slow call
/// never holds up the endpointer's updates). The first `Ok` is
/// returned. A failed pick (an empty set, an invalidated endpointer) counts as a failed
/// attempt too: the set may refill before the next one. Before every attempt after the
/// first the clock is read once; when the deadline has passed the call stops.
///
/// Attempts follow each other at once unless a [`backoff`](RetryBuilder::backoff) is
/// set. An attempt after a failure
/// avoids the endpoint that failed, if the balancer offers another within a few picks
/// (a round-robin counter is per CPU, so threads sharing one would otherwise hand a
/// thread the failed endpoint again): with [`RoundRobin`] it goes to a next endpoint,
/// with [`Random`] to a random other one.
///
/// # Budget and backoff
/// A [`RetryBudget`] ([`RetryBuilder::budget`]) caps what retries add to the load:
/// each call deposits, each retry withdraws, and a retry the budget refuses ends the
/// call with [`RetryStop::Budget`]. Without one, every failed call is retried up to
/// `max_attempts` times, which multiplies the load on a service that is failing
/// already; set one for any service under real traffic. A backoff waits between
/// attempts, `initial × 1.6^(k-1)` before the k-th retry, at most `max`, times a jitter
/// of `U(0.8, 1.2)` (gRPC's connection backoff), and never past the deadline.
///
/// # The deadline
/// `Retry` runs `f` on the calling thread and cannot interrupt it: `f` receives the
/// deadline and should bound its own I/O with it (a socket timeout of
/// `deadline - now`). An attempt that overruns is reported like any other; no attempt
/// starts after the deadline.
///
/// # Calls that must not run twice
/// A retry repeats the call on another endpoint, so a call that is not idempotent (a
/// payment, an insert without a key) may take effect twice when an attempt failed
/// *after* the server acted on it. Retry such a call only when it surely did not reach
/// the server, by classifying the error in [`call_with`](Retry::call_with)'s callback,
/// or send it through a plain pick with no retry:
///
/// ```
/// use waypost::lb::{AttemptError, Retry, RoundRobin};
/// use waypost::FixedEndpointer;
///
/// #[derive(Debug)]
/// enum PostError {
///     /// The connection was refused: the server never saw the request.
///     NotSent(std::io::Error),
///     /// Anything after the request was written: it may have been acted on.
///     MaybeSent(std::io::Error),
/// }
///
/// let retry = Retry::new(RoundRobin::new(FixedEndpointer::new(vec!["a", "b", "c"])));
/// let mut tries = 0;
/// let result = retry.call_with(
///     |_endpoint: &&str, _deadline| {
///         tries += 1;
///         Err::<(), _>(PostError::MaybeSent(std::io::Error::other("reset after write")))
///     },
///     |_attempt, error: &AttemptError<PostError>| {
///         matches!(error, AttemptError::Balancer(_) | AttemptError::Endpoint(PostError::NotSent(_)))
///     },
/// );
/// assert!(result.is_err());
/// assert_eq!(tries, 1, "a request that may have been acted on is not sent again");
/// ```
///
/// No thread, no channel, and no heap allocation when the first attempt succeeds: the
/// list of attempt errors is allocated on the first failure.
///
/// [`RoundRobin`]: crate::lb::RoundRobin
/// [`Random`]: crate::lb::Random
///
/// ```
/// use std::time::Duration;
/// use waypost::FixedEndpointer;
/// use waypost::lb::{Retry, RetryStop, RoundRobin};
///
/// let retry = Retry::builder(RoundRobin::new(FixedEndpointer::new(vec!["a", "b"])))
///     .max_attempts(2)
///     .timeout(Duration::from_millis(500))
///     .build()?;
/// // Every endpoint refuses: both attempts fail, on different endpoints.
/// let err = retry
///     .call(|endpoint: &&str, _deadline| Err::<(), String>(format!("{endpoint} refused")))
///     .unwrap_err();
/// assert_eq!(err.attempts().len(), 2);
/// assert_eq!(err.reason(), RetryStop::MaxAttempts);
/// # Ok::<(), waypost::Error>(())
/// ```
#[derive(Debug)]
pub struct Retry<B> {
    balancer: B,
    max_attempts: usize,
    timeout: Duration,
    clock: Arc<dyn Clock>,
    budget: Option<RetryBudget>,
    /// The wait between attempts: gRPC's exponential, capped, jittered backoff.
    backoff: Option<Backoff>,
}

/// Configures a [`Retry`]; made by [`Retry::builder`], checked by
/// [`build`](RetryBuilder::build).
#[derive(Debug)]
#[must_use = "a builder does nothing until build()"]
pub struct RetryBuilder<B> {
    balancer: B,
    max_attempts: usize,
    timeout: Duration,
    clock: Arc<dyn Clock>,
    budget: Option<RetryBudget>,
    /// `initial` and `max`, checked by `build()`.
    backoff: Option<(Duration, Duration)>,
}

impl<B> RetryBuilder<B> {
    /// How many attempts at most, the first included. Default: 3. More attempts ride
    /// out more failed instances, but multiply the load a struggling service sees.
    /// Must be at least 1.
    pub fn max_attempts(mut self, n: usize) -> Self {
        self.max_attempts = n;
        self
    }

    /// The time all attempts together may take, from the start of the call. Default:
    /// 1 s. A short timeout fails fast; a long one waits out slow instances. Must not
    /// be zero. A timeout too large for [`Instant`] is cut to what it can hold.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The clock the deadline is read on. Default: [`SystemClock`]; tests pass a
    /// [`ManualClock`](crate::ManualClock) and move it inside the called function.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Limits retries to what `budget` allows (see [`RetryBudget`]); one refused ends
    /// the call with [`RetryStop::Budget`]. Default: no budget.
    pub fn budget(mut self, budget: RetryBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Waits between attempts: `initial` before the first retry, 1.6 times longer
    /// before each next one, at most `max`, each wait times a random `U(0.8, 1.2)`
    /// (gRPC's backoff), and never past the deadline. Default: no wait. The wait is on
    /// the builder's [`clock`](RetryBuilder::clock), on the calling thread.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff = Some((initial, max));
        self
    }

    /// The configured [`Retry`], or [`Error::InvalidConfig`] for zero attempts or a zero
    /// timeout.
    pub fn build(self) -> Result<Retry<B>> {
        if self.max_attempts == 0 {
            return Err(Error::invalid_config("max_attempts", "must be at least 1"));
        }
        if self.timeout.is_zero() {
            return Err(Error::invalid_config("timeout", "must not be zero"));
        }
        if let Some((initial, max)) = self.backoff
            && max < initial
        {
            return Err(Error::invalid_config(
                "backoff",
                "max must not be below initial",
            ));
        }
        Ok(Retry {
            balancer: self.balancer,
            max_attempts: self.max_attempts,
            timeout: self.timeout,
            clock: self.clock,
            budget: self.budget,
            backoff: self
                .backoff
                .map(|(initial, max)| Backoff::grpc(initial, max)),
        })
    }
}

impl<B> Retry<B> {
    /// Retries over `balancer` with the defaults: 3 attempts within 1 s, on the
    /// [`SystemClock`].
    pub fn new(balancer: B) -> Self {
        Retry {
            balancer,
            max_attempts: DEFAULT_ATTEMPTS,
            timeout: DEFAULT_TIMEOUT,
            clock: Arc::new(SystemClock),
            budget: None,
            backoff: None,
        }
    }

    /// A builder starting from the defaults of [`Retry::new`].
    pub fn builder(balancer: B) -> RetryBuilder<B> {
        RetryBuilder {
            balancer,
            max_attempts: DEFAULT_ATTEMPTS,
            timeout: DEFAULT_TIMEOUT,
            clock: Arc::new(SystemClock),
            budget: None,
            backoff: None,
        }
    }

    /// The balancer the attempts pick from.
    pub fn balancer(&self) -> &B {
        &self.balancer
    }

    /// The retry budget, if one was set.
    pub fn budget(&self) -> Option<&RetryBudget> {
        self.budget.as_ref()
    }

    /// Runs `f(&endpoint, deadline)` on picked endpoints until it returns `Ok`, the
    /// attempts are used up, or the deadline passes. See the type docs.
    pub fn call<E, R, Er>(
        &self,
        f: impl FnMut(&E, Deadline<'_>) -> Result<R, Er>,
    ) -> Result<R, RetryError<Er>>
    where
        B: Balancer<E>,
    {
        self.call_with(f, |_, _| true)
    }

    /// Like [`call`](Retry::call), and after every failed attempt asks
    /// `on_error(attempt, &error)` (`attempt` counts from 1) whether to go on: `false`
    /// stops with [`RetryStop::Callback`]. The callback may also log or count errors.
    pub fn call_with<E, R, Er>(
        &self,
        mut f: impl FnMut(&E, Deadline<'_>) -> Result<R, Er>,
        mut on_error: impl FnMut(usize, &AttemptError<Er>) -> bool,
    ) -> Result<R, RetryError<Er>>
    where
        B: Balancer<E>,
    {
        let start = self.clock.now();
        let deadline = deadline_after(start, self.timeout);
        if let Some(budget) = &self.budget {
            budget.deposit();
        }
        // `Vec::new` does not allocate; the first push does.
        let mut attempts = Vec::new();
        let mut now = start;
        // The instance the last attempt failed on: the next one goes elsewhere.
        let mut failed: Option<Instance> = None;
        for attempt in 1..=self.max_attempts {
            if attempt > 1 {
                if let Some(backoff) = &self.backoff {
                    let retry = u32::try_from(attempt - 2).unwrap_or(u32::MAX);
                    self.wait(backoff.delay(retry), deadline);
                }
                now = self.clock.now();
            }
            if now >= deadline {
                return Err(give_up(attempts, RetryStop::Timeout));
            }
            if attempt > 1
                && let Some(budget) = &self.budget
                && !budget.try_withdraw()
            {
                return Err(give_up(attempts, RetryStop::Budget));
            }
            // The pick keeps its endpoint open until the attempt ends, and tells a
            // balancer that learns from calls how it went.
            let error = match self.pick_avoiding(failed.as_ref()) {
                Ok(pick) => match f(&pick, Deadline::new(deadline, &*self.clock)) {
                    Ok(response) => {
                        pick.success();
                        return Ok(response);
                    }
                    Err(e) => {
                        failed = Some(pick.instance().clone());
                        pick.failure();
                        AttemptError::Endpoint(e)
                    }
                },
                Err(e) => AttemptError::Balancer(e),
            };
            let go_on = on_error(attempt, &error);
            if attempts.is_empty() {
                attempts.reserve_exact(self.max_attempts.min(16));
            }
            attempts.push(error);
            if !go_on {
                return Err(give_up(attempts, RetryStop::Callback));
            }
        }
        Err(give_up(attempts, RetryStop::MaxAttempts))
    }
}

impl<B> Retry<B> {
    /// Waits `wait` on the clock, but not past `deadline`.
    fn wait(&self, wait: Duration, deadline: Instant) {
        let until = self
            .clock
            .now()
            .checked_add(wait)
            .map_or(deadline, |t| t.min(deadline));
        let _ = self.clock.after(until).recv();
    }
}

/// When an attempt must be done by, read on the [`Retry`]'s clock: what [`Retry::call`]
/// hands the called function with each endpoint, to bound its own I/O.
///
/// ```
/// use std::time::Duration;
/// use waypost::FixedEndpointer;
/// use waypost::lb::{Retry, RoundRobin};
/// let retry = Retry::new(RoundRobin::new(FixedEndpointer::new(vec!["10.0.0.1:80"])));
/// let got = retry.call(|addr: &&str, deadline| {
///     let timeout = deadline.remaining(); // e.g. for a socket's read timeout
///     assert!(timeout <= Duration::from_secs(1));
///     Ok::<_, std::io::Error>(format!("{addr} within {timeout:?}"))
/// })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy)]
pub struct Deadline<'a> {
    at: Instant,
    clock: &'a dyn Clock,
}

impl<'a> Deadline<'a> {
    pub(crate) fn new(at: Instant, clock: &'a dyn Clock) -> Deadline<'a> {
        Deadline { at, clock }
    }

    /// The instant itself.
    pub fn at(&self) -> Instant {
        self.at
    }

    /// The time left, read once on the clock (zero once it has passed): the timeout to
    /// give a socket or an HTTP call. Allocates nothing.
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(self.clock.now())
    }

    /// True once the deadline has passed.
    pub fn is_expired(&self) -> bool {
        self.remaining().is_zero()
    }
}

impl fmt::Debug for Deadline<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deadline")
            .field("remaining", &self.remaining())
            .finish()
    }
}

/// How many picks an attempt makes at most to find an endpoint other than the one the
/// last attempt failed on.
const REPICKS: usize = 8;

impl<B> Retry<B> {
    /// A pick, but not of `avoid` when the balancer offers another within a few picks:
    /// balancers shared by threads (a round-robin counter per CPU) may hand a thread
    /// the same endpoint twice in a row.
    fn pick_avoiding<E>(&self, avoid: Option<&Instance>) -> Result<Pick<E>>
    where
        B: Balancer<E>,
    {
        let mut pick = self.balancer.pick()?;
        let Some(avoid) = avoid else {
            return Ok(pick);
        };
        for _ in 1..REPICKS {
            if pick.instance() != avoid || pick.snapshot().len() < 2 {
                break;
            }
            pick = self.balancer.pick()?; // the one dropped ends with no outcome
        }
        Ok(pick)
    }
}

/// `start + timeout`, or the latest instant within reach when that overflows.
fn deadline_after(start: Instant, mut timeout: Duration) -> Instant {
    loop {
        if let Some(deadline) = start.checked_add(timeout) {
            return deadline;
        }
        timeout /= 2;
    }
}

fn give_up<Er>(attempts: Vec<AttemptError<Er>>, reason: RetryStop) -> RetryError<Er> {
    log::debug!(target: LOG, "giving up after {} attempts: {reason}", attempts.len());
    RetryError { attempts, reason }
}

/// Why one attempt of a [`Retry`] failed.
#[derive(Debug)]
pub enum AttemptError<Er> {
    /// The called function returned this error for the picked endpoint.
    Endpoint(Er),
    /// No endpoint could be picked: [`Error::NoEndpoints`], an invalidated or closed
    /// endpointer.
    Balancer(Error),
}

impl<Er> AttemptError<Er> {
    /// The endpoint's error, if the attempt got as far as calling one.
    pub fn endpoint(&self) -> Option<&Er> {
        match self {
            AttemptError::Endpoint(e) => Some(e),
            AttemptError::Balancer(_) => None,
        }
    }

    /// The balancer's error, if the pick failed.
    pub fn balancer(&self) -> Option<&Error> {
        match self {
            AttemptError::Endpoint(_) => None,
            AttemptError::Balancer(e) => Some(e),
        }
    }
}

impl<Er: fmt::Display> fmt::Display for AttemptError<Er> {
    /// Names the failing step and its cause (a retry's error is mostly printed once;
    /// the cause is also the [`source`](std::error::Error::source)).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttemptError::Endpoint(e) => write!(f, "the endpoint call failed: {e}"),
            AttemptError::Balancer(e) => write!(f, "no endpoint could be picked: {e}"),
        }
    }
}

impl<Er: std::error::Error + 'static> std::error::Error for AttemptError<Er> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AttemptError::Endpoint(e) => Some(e),
            AttemptError::Balancer(e) => Some(e),
        }
    }
}

/// Why a [`Retry`] gave up.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RetryStop {
    /// Every one of the `max_attempts` attempts failed.
    MaxAttempts,
    /// The overall timeout passed before the next attempt.
    Timeout,
    /// The `on_error` callback of [`Retry::call_with`] returned `false`.
    Callback,
    /// The [`RetryBudget`] refused the next retry: retries are at their share of
    /// the calls.
    Budget,
}

impl fmt::Display for RetryStop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RetryStop::MaxAttempts => "the attempts ran out",
            RetryStop::Timeout => "the deadline passed",
            RetryStop::Callback => "the callback stopped it",
            RetryStop::Budget => "the retry budget is spent",
        })
    }
}

/// Every attempt of a [`Retry`] failed: each attempt's error in order, and why it
/// stopped.
///
/// [`source`](std::error::Error::source) is the last attempt's error.
#[derive(Debug)]
pub struct RetryError<Er> {
    attempts: Vec<AttemptError<Er>>,
    reason: RetryStop,
}

impl<Er> RetryError<Er> {
    /// The error of every attempt made, first to last.
    pub fn attempts(&self) -> &[AttemptError<Er>] {
        &self.attempts
    }

    /// The errors of every attempt, owned.
    pub fn into_attempts(self) -> Vec<AttemptError<Er>> {
        self.attempts
    }

    /// The last attempt's error.
    pub fn last(&self) -> Option<&AttemptError<Er>> {
        self.attempts.last()
    }

    /// Why the retries stopped.
    pub fn reason(&self) -> RetryStop {
        self.reason
    }
}

impl<Er: fmt::Display> fmt::Display for RetryError<Er> {
    /// Counts the attempts, says why it stopped and names the last attempt's cause
    /// (which is also the [`source`](std::error::Error::source)).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.attempts.len();
        let s = if n == 1 { "" } else { "s" };
        write!(f, "gave up after {n} failed attempt{s} ({})", self.reason)?;
        match self.last() {
            Some(last) => write!(f, "; the last: {last}"),
            None => Ok(()),
        }
    }
}

impl<Er: std::error::Error + 'static> std::error::Error for RetryError<Er> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.last().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn build_refuses_zero_attempts_and_zero_timeout() {
        let e = Retry::builder(()).max_attempts(0).build().unwrap_err();
        assert!(matches!(
            e,
            Error::InvalidConfig {
                field: "max_attempts",
                ..
            }
        ));
        let e = Retry::builder(())
            .timeout(Duration::ZERO)
            .build()
            .unwrap_err();
        assert!(matches!(
            e,
            Error::InvalidConfig {
                field: "timeout",
                ..
            }
        ));
        let r = Retry::builder(()).max_attempts(5).build().unwrap();
        assert_eq!((r.max_attempts, r.timeout), (5, DEFAULT_TIMEOUT));
    }

    #[test]
    fn defaults() {
        let r = Retry::new(());
        assert_eq!((r.max_attempts, r.timeout), (3, Duration::from_secs(1)));
    }

    #[test]
    fn huge_timeout_saturates() {
        let start = Instant::now();
        assert!(deadline_after(start, Duration::MAX) > start + Duration::from_secs(1 << 30));
        assert_eq!(
            deadline_after(start, Duration::from_secs(1)),
            start + Duration::from_secs(1)
        );
    }

    #[test]
    fn error_chain_reaches_the_last_attempt() {
        let err = RetryError {
            attempts: vec![
                AttemptError::Balancer(Error::NoEndpoints),
                AttemptError::Endpoint(std::io::Error::other("refused")),
            ],
            reason: RetryStop::Timeout,
        };
        assert_eq!(
            err.to_string(),
            "gave up after 2 failed attempts (the deadline passed); \
             the last: the endpoint call failed: refused"
        );
        let last = err.source().unwrap();
        assert_eq!(last.to_string(), "the endpoint call failed: refused");
        assert_eq!(last.source().unwrap().to_string(), "refused");
        assert!(err.attempts()[0].balancer().unwrap().is_no_endpoints());
        assert!(err.attempts()[0].endpoint().is_none());
        let first = err.attempts()[0].source().unwrap();
        assert_eq!(first.to_string(), Error::NoEndpoints.to_string());
        assert_eq!(err.into_attempts().len(), 2);
    }
}
