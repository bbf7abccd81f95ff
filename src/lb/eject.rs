//! `OutlierEjection`: sets aside, for a while, the instances whose calls keep failing;
//! and the panic threshold that balances over all of them when too few are left.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::lb::table::{self, Keep, Table};
use crate::lb::{Balancer, CallObserver, Outcome, Pick, Usable};
use crate::{Clock, DeriveAny, Derived, Endpoints, Error, Instance, Result};

const LOG: &str = "waypost::lb::eject";

/// Envoy's `consecutive_5xx` default.
const DEFAULT_CONSECUTIVE_FAILURES: u32 = 5;
/// Envoy's `base_ejection_time` default.
const DEFAULT_BASE_EJECTION: Duration = Duration::from_secs(30);
/// Envoy's `max_ejection_time` default.
const DEFAULT_MAX_EJECTION: Duration = Duration::from_secs(300);
/// Envoy's `interval` default: how often gRPC (A50) lowers an instance's multiplier.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
/// Envoy's `max_ejection_percent` default.
const DEFAULT_MAX_EJECTION_PERCENT: u32 = 10;
/// Envoy's `healthy_panic_threshold` default.
const DEFAULT_PANIC_THRESHOLD: u32 = 50;

/// No return is due: the value of `next_return` when nothing is ejected.
const NEVER: u64 = u64::MAX;

/// Wraps any [`Balancer`] and sets aside, for a while, instances whose calls fail
/// several times in a row: outlier ejection, with Envoy's defaults.
///
/// # Algorithm
/// Envoy's consecutive-failure outlier detection (its `outlier_detection` with
/// `consecutive_5xx`), with gRPC's backoff of repeat ejections (gRFC A50):
/// - every call ended with [`Pick::failure`] counts one failure of its instance, and
///   [`Pick::success`] resets the count (a dropped pick changes nothing);
/// - the 5th consecutive failure ejects the instance (`consecutive_failures`, Envoy's
///   `consecutive_5xx` default 5): the inner balancer no longer gets to pick it, and
///   the calls to it still in flight count for nothing; it returns with a count of 0;
/// - the n-th ejection lasts `base_ejection_time × n` (default 30 s), at most
///   `max(base, max_ejection_time)` (default 300 s); n falls by one for each full
///   `interval` (default 10 s) the instance spends back in service (gRPC A50), so an
///   instance that fails again soon is set aside longer, and one that recovered for
///   good starts again from 30 s;
/// - at most `max_ejection_percent` (default 10 %) of the instances are ejected at
///   once, but always at least one (Envoy's opt-in `always_eject_one_host`, on here by
///   default: with fewer than 10 instances Envoy's default would eject none). The
///   cap is strict: 10 % of 15 instances is one, where Envoy ejects while fewer than
///   10 % are out, so it would take two;
/// - an instance returns when its time is up: the first pick or
///   [`status`](OutlierEjection::status) after that sees it back, and the
///   [`EjectionEvent::Returned`] event is sent then.
///
/// The inner balancer picks among the instances in service with
/// [`Balancer::pick_if`]: round-robin moves on to the next, P2C and peak EWMA draw
/// their two choices among them. Pair this with [`PeakEwma`](crate::lb::PeakEwma),
/// which on its own favours an instance that fails fast.
///
/// # Panic threshold
/// When fewer than `panic_threshold` percent (default 50 %, Envoy's
/// `healthy_panic_threshold`) of the instances are in service, the balancer is in
/// *panic*: it balances over all of them, ejected or not, on the grounds that
/// crowding the few left would take them down too. With the 10 % cap that happens to
/// sets of one or two instances (or under a higher `max_ejection_percent`).
/// `panic_threshold(0)` turns it off: then a pick that finds no instance in service is
/// [`Error::NoEndpoints`]. Entering and leaving panic are events, like ejections.
///
/// # Events and status
/// [`on_event`](OutlierEjectionBuilder::on_event) hears every ejection, return and
/// panic change, on the thread that caused it (a failing call's, a pick's or the
/// endpointer's), after the balancer's own bookkeeping: keep it short, and do not pick
/// from the balancer inside it. [`status`](OutlierEjection::status) lists who is
/// ejected, since when, until when and why.
///
/// # State and cost
/// Per-instance state is kept beside each snapshot like [`P2c`](crate::lb::P2c)'s, so
/// an ejected instance that leaves the set and comes back starts afresh. While no
/// instance is ejected a pick costs the inner pick plus a relaxed load, with no clock
/// read; a failure costs an atomic add on the instance's own line. Ejections and
/// returns take a lock, once each.
///
/// ```
/// use waypost::FixedEndpointer;
/// use waypost::lb::{Balancer, OutlierEjection, RoundRobin};
///
/// let lb = OutlierEjection::new(RoundRobin::new(FixedEndpointer::new(vec!["a", "b", "c"])))?;
/// for _ in 0..15 {
///     let pick = lb.pick()?;
///     if *pick == "b" { pick.failure() } else { pick.success() }
/// }
/// let status = lb.status();
/// assert_eq!(status.ejected().len(), 1);
/// // A fixed endpointer names the i-th endpoint's instance `fixed-{i}:1`.
/// assert_eq!(status.ejected()[0].instance().addr(), "fixed-1:1");
/// assert!((0..20).all(|_| *lb.pick().unwrap() != "b"));
/// # Ok::<(), waypost::Error>(())
/// ```
pub struct OutlierEjection<B> {
    inner: B,
    shared: Arc<Shared>,
    table: Derived<Table<Eject>>,
}

/// Configures an [`OutlierEjection`]; made by [`OutlierEjection::builder`].
#[must_use = "a builder does nothing until build()"]
pub struct OutlierEjectionBuilder<B> {
    inner: B,
    config: Config,
    clock: Arc<dyn Clock>,
    hook: Option<Hook>,
}

type Hook = Box<dyn Fn(&EjectionEvent) + Send + Sync>;

#[derive(Clone, Copy, Debug)]
struct Config {
    consecutive_failures: u32,
    base: Duration,
    max: Duration,
    interval: Duration,
    max_percent: u32,
    always_one: bool,
    panic_threshold: u32,
}

/// An ejection, a return, or a change of panic, as
/// [`on_event`](OutlierEjectionBuilder::on_event) hears it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EjectionEvent {
    /// `instance` was set aside.
    Ejected {
        /// The instance ejected.
        instance: Instance,
        /// Why.
        reason: EjectionReason,
        /// Which ejection this is, counted as the multiplier of its time (1 for the
        /// first, or the first after the multiplier decayed away).
        ejection: u32,
        /// How long it lasts.
        duration: Duration,
    },
    /// `instance`'s time is up: it is picked again.
    Returned {
        /// The instance back in service.
        instance: Instance,
    },
    /// Too few instances are in service: the balancer picks among all of them.
    PanicEntered {
        /// The instances in service.
        usable: usize,
        /// All the instances.
        total: usize,
    },
    /// Enough instances are in service again: ejected ones are skipped again.
    PanicLeft {
        /// The instances in service.
        usable: usize,
        /// All the instances.
        total: usize,
    },
}

/// Why an instance was ejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EjectionReason {
    /// This many of its calls failed in a row.
    ConsecutiveFailures(u32),
}

impl fmt::Display for EjectionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EjectionReason::ConsecutiveFailures(n) => write!(f, "{n} consecutive failures"),
        }
    }
}

/// What an [`OutlierEjection`] has set aside, and whether it is in panic.
#[derive(Clone, Debug)]
pub struct EjectionStatus {
    ejected: Vec<Ejected>,
    panic: bool,
    total: usize,
}

impl EjectionStatus {
    /// The instances ejected now, by address.
    pub fn ejected(&self) -> &[Ejected] {
        &self.ejected
    }

    /// True while fewer than the panic threshold are in service (all are picked).
    pub fn panic(&self) -> bool {
        self.panic
    }

    /// The instances in the current set.
    pub fn total(&self) -> usize {
        self.total
    }

    /// The instances in service: [`total`](EjectionStatus::total) less the ejected.
    pub fn usable(&self) -> usize {
        self.total - self.ejected.len()
    }
}

/// One ejected instance, in an [`EjectionStatus`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ejected {
    instance: Instance,
    since: Instant,
    until: Instant,
    reason: EjectionReason,
    ejection: u32,
}

impl Ejected {
    /// The instance.
    pub fn instance(&self) -> &Instance {
        &self.instance
    }

    /// When it was ejected, on the balancer's clock.
    pub fn since(&self) -> Instant {
        self.since
    }

    /// When it returns, on the balancer's clock.
    pub fn until(&self) -> Instant {
        self.until
    }

    /// Why it was ejected.
    pub fn reason(&self) -> EjectionReason {
        self.reason
    }

    /// Its multiplier: how many times the base ejection time this one lasts.
    pub fn ejection(&self) -> u32 {
        self.ejection
    }
}

/// What the balancer and every instance's state share.
struct Shared {
    config: Config,
    clock: Arc<dyn Clock>,
    epoch: Instant,
    /// Instances of the current set ejected now.
    ejected: AtomicUsize,
    /// The earliest `until` among them (nanoseconds), or [`NEVER`].
    next_return: AtomicU64,
    panic: AtomicBool,
    /// Held for every change of ejection (rare): ejections, returns, set changes.
    book: Mutex<Book>,
    hook: Option<Hook>,
}

struct Book {
    /// The states of the current set.
    members: Vec<Arc<Eject>>,
}

/// One instance's failures and ejection, on a line of its own.
#[repr(align(128))]
struct Eject {
    failures: AtomicU32,
    /// When its ejection ends (nanoseconds since the epoch); 0 while in service.
    until: AtomicU64,
    // Written only under the book's lock:
    since: AtomicU64,
    /// The multiplier of its last ejection.
    ejections: AtomicU32,
    /// When it last returned (nanoseconds since the epoch).
    returned: AtomicU64,
    /// In the current set.
    member: AtomicBool,
    /// The failures that ejected it.
    reason: AtomicU32,
    /// The consecutive failures that eject (the config's, kept here so that a failure
    /// below it touches nothing shared).
    threshold: u32,
    instance: Instance,
    shared: Weak<Shared>,
}

impl Eject {
    #[inline]
    fn in_service(&self, now: u64) -> bool {
        self.until.load(Ordering::Relaxed) <= now
    }
}

impl<E> CallObserver<E> for Eject {
    fn ended(&self, _: &Endpoints<E>, _: usize, outcome: Outcome, _: Option<Instant>) {
        match outcome {
            Outcome::Success => {
                if self.failures.load(Ordering::Relaxed) != 0 {
                    self.failures.store(0, Ordering::Relaxed);
                }
            }
            // The outcomes of calls picked before an ejection and ending during it do
            // not count towards the next one (the count starts afresh on return).
            Outcome::Failure if self.until.load(Ordering::Relaxed) != 0 => {}
            Outcome::Failure => {
                let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
                if failures >= self.threshold
                    && self.until.load(Ordering::Relaxed) == 0
                    && let Some(shared) = self.shared.upgrade()
                {
                    shared.eject(self, failures);
                }
            }
            Outcome::Dropped => {}
        }
    }
}

impl Keep<Eject> for Arc<Shared> {
    fn make(&self, instance: &Instance) -> Eject {
        Eject {
            failures: AtomicU32::new(0),
            until: AtomicU64::new(0),
            since: AtomicU64::new(0),
            ejections: AtomicU32::new(0),
            returned: AtomicU64::new(0),
            member: AtomicBool::new(false),
            reason: AtomicU32::new(0),
            threshold: self.config.consecutive_failures,
            instance: instance.clone(),
            shared: Arc::downgrade(self),
        }
    }

    fn changed(&self, states: &[Arc<Eject>], removed: &[Arc<Eject>]) {
        let mut events = Vec::new();
        {
            let mut book = self.book.lock();
            for gone in removed {
                gone.member.store(false, Ordering::Relaxed);
            }
            for state in states {
                state.member.store(true, Ordering::Relaxed);
            }
            book.members = states.to_vec();
            self.recount(&book);
            let now = self.nanos(self.clock.now());
            self.sweep(&book, now, &mut events);
            self.update_panic(&book, &mut events);
        }
        self.fire(events);
    }
}

impl Shared {
    #[inline]
    fn nanos(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_nanos() as u64
    }

    fn instant(&self, nanos: u64) -> Instant {
        self.epoch + Duration::from_nanos(nanos)
    }

    /// Recounts the ejected members and the next return (after a set change).
    fn recount(&self, book: &Book) {
        let ejected = book.members.iter().map(|s| s.until.load(Ordering::Relaxed));
        let ejected: Vec<u64> = ejected.filter(|&until| until != 0).collect();
        self.ejected.store(ejected.len(), Ordering::Relaxed);
        let next = ejected.into_iter().min().unwrap_or(NEVER);
        self.next_return.store(next, Ordering::Relaxed);
    }

    /// How many may be ejected at once out of `total`.
    fn cap(&self, total: usize) -> usize {
        let cap = total * self.config.max_percent as usize / 100;
        if self.config.always_one && total > 0 {
            cap.max(1)
        } else {
            cap
        }
    }

    /// Ejects `state` after `failures` consecutive failures, if it is still a member,
    /// not ejected, and the cap allows.
    fn eject(&self, state: &Eject, failures: u32) {
        let now_instant = self.clock.now();
        let now = self.nanos(now_instant);
        let mut events = Vec::new();
        {
            let book = self.book.lock();
            if !state.member.load(Ordering::Relaxed) || state.until.load(Ordering::Relaxed) != 0 {
                return;
            }
            self.sweep(&book, now, &mut events);
            let ejected = self.ejected.load(Ordering::Relaxed);
            if ejected >= self.cap(book.members.len()) {
                log::debug!(
                    target: LOG,
                    "{} failed {failures} times in a row, but {ejected} of {} are ejected already",
                    state.instance, book.members.len()
                );
            } else {
                let cfg = &self.config;
                let back_for = now.saturating_sub(state.returned.load(Ordering::Relaxed));
                let decayed = back_for / cfg.interval.as_nanos().max(1) as u64;
                let previous = u64::from(state.ejections.load(Ordering::Relaxed));
                let multiplier = previous.saturating_sub(decayed) + 1;
                let longest = cfg.max.max(cfg.base);
                let duration = cfg.base.saturating_mul(multiplier as u32).min(longest);
                let until = now.saturating_add(duration.as_nanos() as u64).max(1);
                state.since.store(now, Ordering::Relaxed);
                state.ejections.store(multiplier as u32, Ordering::Relaxed);
                state.reason.store(failures, Ordering::Relaxed);
                state.failures.store(0, Ordering::Relaxed);
                state.until.store(until, Ordering::Relaxed);
                self.ejected.fetch_add(1, Ordering::Relaxed);
                self.next_return.fetch_min(until, Ordering::Relaxed);
                log::info!(
                    target: LOG,
                    "ejected {} for {duration:?} after {failures} consecutive failures",
                    state.instance
                );
                events.push(EjectionEvent::Ejected {
                    instance: state.instance.clone(),
                    reason: EjectionReason::ConsecutiveFailures(failures),
                    ejection: multiplier as u32,
                    duration,
                });
                self.update_panic(&book, &mut events);
            }
        }
        self.fire(events);
    }

    /// Returns every member whose time is up at `now`.
    fn sweep(&self, book: &Book, now: u64, events: &mut Vec<EjectionEvent>) {
        if now < self.next_return.load(Ordering::Relaxed) {
            return;
        }
        let mut next = NEVER;
        for state in &book.members {
            let until = state.until.load(Ordering::Relaxed);
            if until == 0 {
                continue;
            }
            if until > now {
                next = next.min(until);
                continue;
            }
            state.failures.store(0, Ordering::Relaxed);
            state.until.store(0, Ordering::Relaxed);
            state.returned.store(until, Ordering::Relaxed);
            self.ejected.fetch_sub(1, Ordering::Relaxed);
            log::info!(target: LOG, "{} is back in service", state.instance);
            events.push(EjectionEvent::Returned {
                instance: state.instance.clone(),
            });
        }
        self.next_return.store(next, Ordering::Relaxed);
        self.update_panic(book, events);
    }

    /// Sweeps returns due at `now`, from a pick.
    #[cold]
    fn sweep_now(&self, now: u64) {
        let mut events = Vec::new();
        self.sweep(&self.book.lock(), now, &mut events);
        self.fire(events);
    }

    fn update_panic(&self, book: &Book, events: &mut Vec<EjectionEvent>) {
        let total = book.members.len();
        let usable = total - self.ejected.load(Ordering::Relaxed).min(total);
        let threshold = self.config.panic_threshold as usize;
        let panic = threshold > 0 && usable * 100 < threshold * total;
        if panic == self.panic.swap(panic, Ordering::Relaxed) {
            return;
        }
        if panic {
            log::warn!(target: LOG, "panic: {usable} of {total} instances in service; picking among all");
            events.push(EjectionEvent::PanicEntered { usable, total });
        } else {
            log::info!(target: LOG, "panic over: {usable} of {total} instances in service");
            events.push(EjectionEvent::PanicLeft { usable, total });
        }
    }

    fn fire(&self, events: Vec<EjectionEvent>) {
        if let Some(hook) = &self.hook {
            for event in &events {
                hook(event);
            }
        }
    }
}

impl<B> OutlierEjectionBuilder<B> {
    /// How many failures in a row eject an instance. Default: 5 (Envoy's
    /// `consecutive_5xx`). Must be at least 1.
    pub fn consecutive_failures(mut self, n: u32) -> Self {
        self.config.consecutive_failures = n;
        self
    }

    /// How long a first ejection lasts; the n-th lasts n times this. Default: 30 s
    /// (Envoy's `base_ejection_time`). Must not be zero.
    pub fn base_ejection_time(mut self, base: Duration) -> Self {
        self.config.base = base;
        self
    }

    /// The longest an ejection lasts (or the base time, if that is longer). Default:
    /// 300 s (Envoy's `max_ejection_time`).
    pub fn max_ejection_time(mut self, max: Duration) -> Self {
        self.config.max = max;
        self
    }

    /// For each full interval an instance spends in service, the multiplier of its
    /// next ejection falls by one. Default: 10 s (Envoy's `interval`, gRPC A50). Must
    /// not be zero.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.config.interval = interval;
        self
    }

    /// The most instances ejected at once, in percent of the set, rounded down.
    /// Default: 10 (Envoy's `max_ejection_percent`). At most 100.
    pub fn max_ejection_percent(mut self, percent: u32) -> Self {
        self.config.max_percent = percent;
        self
    }

    /// Whether one instance may always be ejected, whatever the percentage allows.
    /// Default: true (Envoy's `always_eject_one_host`, off there by default: a
    /// documented deviation, so that sets under 10 instances are protected at all).
    pub fn always_eject_one(mut self, yes: bool) -> Self {
        self.config.always_one = yes;
        self
    }

    /// Below this percentage of instances in service, every instance is picked
    /// (panic). Default: 50 (Envoy's `healthy_panic_threshold`); 0 turns panic off.
    /// At most 100.
    pub fn panic_threshold(mut self, percent: u32) -> Self {
        self.config.panic_threshold = percent;
        self
    }

    /// The clock ejection times are read on. Default: [`SystemClock`](crate::SystemClock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Calls `hook` with every ejection, return and panic change (see the type docs
    /// for the thread it runs on).
    pub fn on_event(mut self, hook: impl Fn(&EjectionEvent) + Send + Sync + 'static) -> Self {
        self.hook = Some(Box::new(hook));
        self
    }

    /// The balancer, or [`Error::InvalidConfig`] for a setting out of range, or an
    /// inner balancer that cannot attach state to its endpointer.
    pub fn build<E: 'static>(self) -> Result<OutlierEjection<B>>
    where
        B: Balancer<E>,
    {
        let cfg = self.config;
        if cfg.consecutive_failures == 0 {
            return Err(Error::invalid_config(
                "consecutive_failures",
                "must be at least 1",
            ));
        }
        if cfg.base.is_zero() {
            return Err(Error::invalid_config(
                "base_ejection_time",
                "must not be zero",
            ));
        }
        if cfg.interval.is_zero() {
            return Err(Error::invalid_config("interval", "must not be zero"));
        }
        if cfg.max_percent > 100 {
            return Err(Error::invalid_config(
                "max_ejection_percent",
                "must be at most 100",
            ));
        }
        if cfg.panic_threshold > 100 {
            return Err(Error::invalid_config(
                "panic_threshold",
                "must be at most 100",
            ));
        }
        let shared = Arc::new(Shared {
            config: cfg,
            epoch: self.clock.now(),
            clock: self.clock,
            ejected: AtomicUsize::new(0),
            next_return: AtomicU64::new(NEVER),
            panic: AtomicBool::new(false),
            book: Mutex::new(Book {
                members: Vec::new(),
            }),
            hook: self.hook,
        });
        let table = table::track_through(&self.inner, Arc::new(shared.clone()))?;
        Ok(OutlierEjection {
            inner: self.inner,
            shared,
            table,
        })
    }
}

impl<B> OutlierEjection<B> {
    /// Outlier ejection around `inner` with Envoy's defaults (see the type docs).
    pub fn new<E: 'static>(inner: B) -> Result<Self>
    where
        B: Balancer<E>,
    {
        OutlierEjection::builder(inner).build()
    }

    /// A builder starting from the defaults of [`new`](OutlierEjection::new).
    pub fn builder(inner: B) -> OutlierEjectionBuilder<B> {
        OutlierEjectionBuilder {
            inner,
            config: Config {
                consecutive_failures: DEFAULT_CONSECUTIVE_FAILURES,
                base: DEFAULT_BASE_EJECTION,
                max: DEFAULT_MAX_EJECTION,
                interval: DEFAULT_INTERVAL,
                max_percent: DEFAULT_MAX_EJECTION_PERCENT,
                always_one: true,
                panic_threshold: DEFAULT_PANIC_THRESHOLD,
            },
            clock: crate::clock::system(),
            hook: None,
        }
    }

    /// The balancer that picks among the instances in service.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// Who is ejected now, and whether the balancer is in panic. Returns due
    /// instances to service first.
    pub fn status(&self) -> EjectionStatus {
        let now = self.shared.nanos(self.shared.clock.now());
        let mut events = Vec::new();
        let status = {
            let book = self.shared.book.lock();
            self.shared.sweep(&book, now, &mut events);
            let mut ejected: Vec<Ejected> = (book.members.iter())
                .filter(|s| !s.in_service(now))
                .map(|s| Ejected {
                    instance: s.instance.clone(),
                    since: self.shared.instant(s.since.load(Ordering::Relaxed)),
                    until: self.shared.instant(s.until.load(Ordering::Relaxed)),
                    reason: EjectionReason::ConsecutiveFailures(s.reason.load(Ordering::Relaxed)),
                    ejection: s.ejections.load(Ordering::Relaxed),
                })
                .collect();
            ejected.sort_by(|a, b| a.instance.addr().cmp(b.instance.addr()));
            EjectionStatus {
                ejected,
                panic: self.shared.panic.load(Ordering::Relaxed),
                total: book.members.len(),
            }
        };
        self.shared.fire(events);
        status
    }

    /// Attaches this balancer's observer to `pick`.
    #[inline]
    fn observe<E: 'static>(&self, pick: Pick<E>) -> Pick<E> {
        table::observe(pick, &self.table, None)
    }

    fn pick_in_service<E: 'static>(&self, usable: Option<&Usable<'_, E>>) -> Result<Pick<E>>
    where
        B: Balancer<E>,
    {
        let shared = &*self.shared;
        if shared.ejected.load(Ordering::Relaxed) == 0 {
            let pick = match usable {
                None => self.inner.pick()?,
                Some(usable) => self.inner.pick_if(usable)?,
            };
            return Ok(self.observe(pick));
        }
        let now = shared.nanos(shared.clock.now());
        if now >= shared.next_return.load(Ordering::Relaxed) {
            shared.sweep_now(now);
        }
        let in_service = |snapshot: &Endpoints<E>, i: usize| {
            let ours = match snapshot.derived(&self.table) {
                Some(table) => table.get(i).in_service(now),
                None => true,
            };
            ours && usable.is_none_or(|usable| usable(snapshot, i))
        };
        if shared.panic.load(Ordering::Relaxed) {
            let pick = match usable {
                None => self.inner.pick()?,
                Some(usable) => self.inner.pick_if(usable)?,
            };
            return Ok(self.observe(pick));
        }
        let pick = self.inner.pick_if(&in_service)?;
        if !in_service(pick.snapshot(), pick.index()) && shared.config.panic_threshold == 0 {
            return Err(Error::NoEndpoints);
        }
        Ok(self.observe(pick))
    }
}

impl<E: 'static, B: Balancer<E>> Balancer<E> for OutlierEjection<B> {
    #[inline]
    fn pick(&self) -> Result<Pick<E>> {
        self.pick_in_service(None)
    }

    fn pick_if(&self, usable: &Usable<'_, E>) -> Result<Pick<E>> {
        self.pick_in_service(Some(usable))
    }

    fn attach(&self, derive: Arc<dyn DeriveAny<E>>) -> Result<usize> {
        self.inner.attach(derive)
    }
}

impl<B: fmt::Debug> fmt::Debug for OutlierEjection<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutlierEjection")
            .field("inner", &self.inner)
            .field("config", &self.shared.config)
            .field("ejected", &self.shared.ejected.load(Ordering::Relaxed))
            .field("panic", &self.shared.panic.load(Ordering::Relaxed))
            .finish()
    }
}

impl<B: fmt::Debug> fmt::Debug for OutlierEjectionBuilder<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutlierEjectionBuilder")
            .field("inner", &self.inner)
            .field("config", &self.config)
            .finish()
    }
}
