//! The balancers compared, built from waypost's real ones on a given clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use waypost::lb::{
    Balancer, EjectionEvent, OutlierEjection, P2c, PeakEwma, Random, RetryBudget, RoundRobin,
};
use waypost::{Clock, Endpointer, FixedEndpointer};

use super::scenario::SERVERS;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    RoundRobin,
    Random,
    P2c,
    PeakEwma,
}

/// Whether failed calls are tried again (the policy of `Retry`, emulated by the
/// engine), and under a `RetryBudget` or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Retries {
    Off,
    Unbudgeted,
    Budgeted,
}

/// One balancer configuration of the comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Setup {
    pub kind: Kind,
    pub eject: bool,
    pub retries: Retries,
}

/// Attempts per request in all, as `Retry::builder(..).max_attempts(3)`.
pub const MAX_ATTEMPTS: u32 = 3;
/// `Retry`'s default timeout: no retry starts after it.
pub const RETRY_TIMEOUT: Duration = Duration::from_secs(1);

impl Setup {
    pub const fn plain(kind: Kind) -> Setup {
        Setup {
            kind,
            eject: false,
            retries: Retries::Off,
        }
    }

    pub const fn ejecting(kind: Kind) -> Setup {
        Setup {
            kind,
            eject: true,
            retries: Retries::Off,
        }
    }

    pub const fn retrying(retries: Retries) -> Setup {
        Setup {
            kind: Kind::RoundRobin,
            eject: false,
            retries,
        }
    }

    pub const ALL: [Setup; 10] = [
        Setup::plain(Kind::RoundRobin),
        Setup::plain(Kind::Random),
        Setup::plain(Kind::P2c),
        Setup::plain(Kind::PeakEwma),
        Setup::ejecting(Kind::RoundRobin),
        Setup::ejecting(Kind::Random),
        Setup::ejecting(Kind::P2c),
        Setup::ejecting(Kind::PeakEwma),
        Setup::retrying(Retries::Unbudgeted),
        Setup::retrying(Retries::Budgeted),
    ];

    pub fn name(self) -> String {
        let kind = match self.kind {
            Kind::RoundRobin => "round-robin",
            Kind::Random => "random",
            Kind::P2c => "P2C",
            Kind::PeakEwma => "peak EWMA",
        };
        let eject = if self.eject { " + ejection" } else { "" };
        let retries = match self.retries {
            Retries::Off => "",
            Retries::Unbudgeted => " + retry ×3",
            Retries::Budgeted => " + retry ×3 + budget",
        };
        format!("{kind}{eject}{retries}")
    }
}

type Probe = Box<dyn Fn() -> Vec<usize> + Send + Sync>;

/// A balancer to pick from, with what the engine needs around it.
pub struct Client {
    pub balancer: Box<dyn Balancer<usize>>,
    /// The real budget, for [`Retries::Budgeted`].
    pub budget: Option<RetryBudget>,
    /// 1 without retries.
    pub max_attempts: u32,
    in_flight: Option<Probe>,
    ejections: Arc<AtomicUsize>,
}

impl Client {
    /// `setup`'s balancer over servers `0..SERVERS`, every time read on `clock`, every
    /// draw following from `seed`.
    pub fn new<C: Clock + Clone>(setup: Setup, clock: &C, seed: u64) -> Client {
        let endpointer = FixedEndpointer::new((0..SERVERS).collect::<Vec<usize>>());
        let (inner, in_flight): (Box<dyn Balancer<usize>>, Option<Probe>) = match setup.kind {
            Kind::RoundRobin => (Box::new(RoundRobin::with_seed(endpointer, seed)), None),
            Kind::Random => (Box::new(Random::with_seed(endpointer, seed)), None),
            Kind::P2c => {
                let lb = Arc::new(P2c::with_seed(endpointer, seed).expect("P2c"));
                let probe = lb.clone();
                let probe: Probe = Box::new(move || {
                    let snapshot = probe.endpointer().endpoints().expect("endpoints");
                    probe.in_flight(&snapshot).expect("P2c's counts")
                });
                (Box::new(lb), Some(probe))
            }
            Kind::PeakEwma => {
                let lb = PeakEwma::builder(endpointer)
                    .clock(clock.clone())
                    .seed(seed)
                    .build()
                    .expect("PeakEwma");
                let lb = Arc::new(lb);
                let probe = lb.clone();
                let probe: Probe = Box::new(move || {
                    let snapshot = probe.endpointer().endpoints().expect("endpoints");
                    probe.in_flight(&snapshot).expect("PeakEwma's counts")
                });
                (Box::new(lb), Some(probe))
            }
        };
        let ejections = Arc::new(AtomicUsize::new(0));
        let balancer: Box<dyn Balancer<usize>> = if setup.eject {
            let counter = ejections.clone();
            let lb = OutlierEjection::builder(inner)
                .clock(clock.clone())
                .on_event(move |event| {
                    if matches!(event, EjectionEvent::Ejected { .. }) {
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                })
                .build()
                .expect("OutlierEjection");
            Box::new(lb)
        } else {
            inner
        };
        let budget = (setup.retries == Retries::Budgeted).then(|| {
            RetryBudget::builder()
                .clock(clock.clone())
                .build()
                .expect("RetryBudget")
        });
        let max_attempts = match setup.retries {
            Retries::Off => 1,
            _ => MAX_ATTEMPTS,
        };
        Client {
            balancer,
            budget,
            max_attempts,
            in_flight,
            ejections,
        }
    }

    /// The calls in flight on each server, as the load-aware balancer counts them.
    pub fn in_flight(&self) -> Option<Vec<usize>> {
        self.in_flight.as_ref().map(|probe| probe())
    }

    /// How many ejections outlier ejection made.
    pub fn ejections(&self) -> usize {
        self.ejections.load(Ordering::Relaxed)
    }
}
