//! `RetryBudget`: how many retries a [`Retry`](crate::lb::Retry) may add to its calls.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::{Clock, Error, Result};

/// Finagle's and tower's default time a deposit counts for.
const DEFAULT_TTL: Duration = Duration::from_secs(10);
/// Finagle's and tower's default retries allowed whatever the traffic.
const DEFAULT_MIN_PER_SEC: u32 = 10;
/// Finagle's and tower's default share of calls that may be retried.
const DEFAULT_PERCENT: f64 = 20.0;

/// The window is kept in this many slots of `ttl / SLOTS` each.
const SLOTS: usize = 10;
/// A call's deposit, in the budget's units.
const UNIT: i64 = 1_000;

/// Limits retries to a share of the calls made, so that retries cannot multiply the
/// load of a service that is already failing (a retry storm).
///
/// # Algorithm
/// Finagle's `RetryBudget` (and tower's `TpsBudget`): every call *deposits* one
/// token, every retry must *withdraw* `100 / percent` of them (5 at the default
/// 20 %), and deposits count for `ttl` (default 10 s), after which they expire. On top
/// of the deposits there is a fixed reserve of `min_retries_per_sec × ttl` retries
/// (default 10 per second), so a client with little traffic can still retry. In a
/// steady state, then, retries add at most `percent` of the calls made, plus
/// `min_retries_per_sec`. Withdrawals expire like deposits.
///
/// The window moves in tenths of `ttl`. Deposits and withdrawals are one atomic
/// update each, with no lock; several threads withdrawing at the very edge of the
/// budget may overdraw it by one retry each.
///
/// One budget belongs to one [`Retry`](crate::lb::Retry) (given to
/// [`RetryBuilder::budget`](crate::lb::RetryBuilder::budget)) and is shared by the
/// threads calling it; a retry it refuses ends the call with
/// [`RetryStop::Budget`](crate::lb::RetryStop::Budget).
///
/// ```
/// use waypost::lb::RetryBudget;
/// let budget = RetryBudget::builder().min_retries_per_sec(0).build()?;
/// for _ in 0..10 {
///     budget.deposit();
/// }
/// // 20 % of 10 calls: two retries.
/// assert!(budget.try_withdraw());
/// assert!(budget.try_withdraw());
/// assert!(!budget.try_withdraw());
/// # Ok::<(), waypost::Error>(())
/// ```
pub struct RetryBudget {
    /// Each slot: the slot's tick in the high 24 bits, its sum in the low 40
    /// (two's complement).
    slots: Box<[AtomicU64]>,
    slot_nanos: u64,
    deposit: i64,
    withdrawal: i64,
    reserve: i64,
    clock: Arc<dyn Clock>,
    epoch: Instant,
    settings: (Duration, u32, f64),
}

/// Configures a [`RetryBudget`]; made by [`RetryBudget::builder`].
#[derive(Debug)]
#[must_use = "a builder does nothing until build()"]
pub struct RetryBudgetBuilder {
    ttl: Duration,
    min_per_sec: u32,
    percent: f64,
    clock: Arc<dyn Clock>,
}

impl RetryBudgetBuilder {
    /// How long a call's deposit (and a retry's withdrawal) counts. Default: 10 s.
    /// From 1 s to 1 hour.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Retries allowed per second whatever the traffic. Default: 10. At most 1,000,000.
    pub fn min_retries_per_sec(mut self, n: u32) -> Self {
        self.min_per_sec = n;
        self
    }

    /// The share of calls that may be retried, in percent. Default: 20. From 0 (only
    /// the reserve) to 1,000.
    pub fn percent(mut self, percent: f64) -> Self {
        self.percent = percent;
        self
    }

    /// The clock the window moves on. Default: [`SystemClock`](crate::SystemClock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The budget, or [`Error::InvalidConfig`] for a setting out of range.
    pub fn build(self) -> Result<RetryBudget> {
        if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&self.ttl) {
            return Err(Error::invalid_config("ttl", "must be from 1 s to 1 hour"));
        }
        if self.min_per_sec > 1_000_000 {
            return Err(Error::invalid_config(
                "min_retries_per_sec",
                "must be at most 1,000,000",
            ));
        }
        if !(0.0..=1_000.0).contains(&self.percent) {
            return Err(Error::invalid_config("percent", "must be from 0 to 1,000"));
        }
        // With no share of calls, calls deposit nothing and a retry costs one unit of
        // the reserve.
        let (deposit, withdrawal) = if self.percent == 0.0 {
            (0, UNIT)
        } else {
            (UNIT, (UNIT as f64 * 100.0 / self.percent).round() as i64)
        };
        let reserve = i64::from(self.min_per_sec) * self.ttl.as_secs() as i64 * withdrawal;
        Ok(RetryBudget {
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            slot_nanos: (self.ttl.as_nanos() / SLOTS as u128) as u64,
            deposit,
            withdrawal,
            reserve,
            epoch: self.clock.now(),
            clock: self.clock,
            settings: (self.ttl, self.min_per_sec, self.percent),
        })
    }
}

const TICK_BITS: u32 = 24;
const SUM_BITS: u32 = 64 - TICK_BITS;
const SUM_MASK: u64 = (1 << SUM_BITS) - 1;
const TICK_MASK: u64 = (1 << TICK_BITS) - 1;

fn pack(tick: u64, sum: i64) -> u64 {
    ((tick & TICK_MASK) << SUM_BITS) | (sum as u64 & SUM_MASK)
}

fn unpack(word: u64) -> (u64, i64) {
    let tick = word >> SUM_BITS;
    // Sign-extend the 40-bit sum.
    let sum = ((word << TICK_BITS) as i64) >> TICK_BITS;
    (tick, sum)
}

impl RetryBudget {
    /// A budget with Finagle's and tower's defaults: 20 % of calls plus 10 retries per
    /// second, deposits counting for 10 s, on the system clock.
    pub fn new() -> RetryBudget {
        RetryBudget::builder()
            .build()
            .expect("the defaults are valid")
    }

    /// A builder starting from the defaults of [`new`](RetryBudget::new).
    pub fn builder() -> RetryBudgetBuilder {
        RetryBudgetBuilder {
            ttl: DEFAULT_TTL,
            min_per_sec: DEFAULT_MIN_PER_SEC,
            percent: DEFAULT_PERCENT,
            clock: crate::clock::system(),
        }
    }

    /// The current slot's tick (24 bits, wrapping; a slot's tick tells whether it is
    /// in the window).
    #[inline]
    fn tick(&self) -> u64 {
        let nanos = self
            .clock
            .now()
            .saturating_duration_since(self.epoch)
            .as_nanos();
        (nanos / u128::from(self.slot_nanos)) as u64 & TICK_MASK
    }

    fn add(&self, amount: i64) {
        let tick = self.tick();
        let slot = &self.slots[tick as usize % SLOTS];
        let _ = slot.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |word| {
            let (at, sum) = unpack(word);
            let sum = if at == tick { sum } else { 0 };
            Some(pack(tick, sum.saturating_add(amount)))
        });
    }

    /// The sum of the slots in the window.
    fn sum(&self) -> i64 {
        let now = self.tick();
        (self.slots.iter())
            .map(|slot| unpack(slot.load(Ordering::Relaxed)))
            .filter(|&(tick, _)| now.wrapping_sub(tick) & TICK_MASK < SLOTS as u64)
            .map(|(_, sum)| sum)
            .sum()
    }

    /// Counts one call (what [`Retry`](crate::lb::Retry) does at the start of each).
    pub fn deposit(&self) {
        if self.deposit != 0 {
            self.add(self.deposit);
        }
    }

    /// Takes one retry from the budget: `true` if it allowed one.
    pub fn try_withdraw(&self) -> bool {
        if self.sum() + self.reserve < self.withdrawal {
            return false;
        }
        self.add(-self.withdrawal);
        true
    }

    /// How many retries the budget would allow now.
    pub fn balance(&self) -> u64 {
        ((self.sum() + self.reserve).max(0) / self.withdrawal) as u64
    }
}

impl Default for RetryBudget {
    fn default() -> Self {
        RetryBudget::new()
    }
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (ttl, min_per_sec, percent) = self.settings;
        f.debug_struct("RetryBudget")
            .field("ttl", &ttl)
            .field("min_retries_per_sec", &min_per_sec)
            .field("percent", &percent)
            .field("balance", &self.balance())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_keeps_the_sign_and_the_tick() {
        for (tick, sum) in [
            (0, 0),
            (5, -5_000),
            (TICK_MASK, (1 << 38) - 1),
            (7, -(1 << 38)),
        ] {
            assert_eq!(unpack(pack(tick, sum)), (tick, sum));
        }
    }
}
