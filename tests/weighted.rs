//! Issue 23 through the public API: weighted round-robin's shares and windows, weight
//! 0, weights that change with the set; slow start's ramp on the manual clock; zone
//! preference spilling and returning.

mod support;

use std::sync::Arc;
use std::thread;

use proptest::prelude::*;
use std::time::Duration;
use support::wait_until;

use waypost::lb::{
    Balancer, OutlierEjection, RoundRobin, SlowStart, WeightedRoundRobin, ZonePreference,
};
use waypost::{
    DefaultEndpointer, Endpointer, FixedEndpointer, Instance, ManualClock, PushInstancer,
};

/// Instances `10.0.0.{i}:80` with these weights (`None`: no weight in the metadata).
fn weighted(weights: &[Option<u32>]) -> Vec<Instance> {
    (weights.iter().enumerate())
        .map(|(i, w)| {
            let addr = format!("10.0.0.{i}:80");
            match w {
                Some(w) => Instance::builder(addr).weight(*w).build(),
                None => Instance::new(addr),
            }
        })
        .collect()
}

fn fixed(weights: &[Option<u32>]) -> FixedEndpointer<usize> {
    FixedEndpointer::with_instances(weighted(weights).into_iter().zip(0..))
}

/// The weight each instance is picked by: missing = 1; zeros left out unless all are.
fn effective(weights: &[Option<u32>]) -> Vec<u64> {
    let w: Vec<u64> = weights.iter().map(|w| u64::from(w.unwrap_or(1))).collect();
    if w.iter().all(|&x| x == 0) {
        vec![1; w.len()]
    } else {
        w
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Checks `picks` (two full cycles or more, from one thread) against `weights`: exact
/// counts over every full cycle, within 2 of the ideal over every window.
fn check_spread(picks: &[usize], weights: &[u64]) -> Result<f64, TestCaseError> {
    let g = weights.iter().fold(0, |g, &w| gcd(g, w));
    let cycle: u64 = weights.iter().map(|w| w / g).sum();
    let total: u64 = weights.iter().sum();
    for start in [0, 1, picks.len() - cycle as usize] {
        let window = &picks[start..start + cycle as usize];
        for (i, w) in weights.iter().enumerate() {
            let count = window.iter().filter(|&&p| p == i).count() as u64;
            prop_assert_eq!(count, w / g, "instance {} in a cycle from {}", i, start);
        }
    }
    let mut worst: f64 = 0.0;
    for (i, &w) in weights.iter().enumerate() {
        let share = w as f64 / total as f64;
        let (mut d, mut lo, mut hi) = (0.0f64, 0.0f64, 0.0f64);
        for &p in picks {
            d += f64::from(u8::from(p == i)) - share;
            lo = lo.min(d);
            hi = hi.max(d);
        }
        worst = worst.max(hi - lo);
    }
    prop_assert!(worst <= 2.0, "a window {} picks off", worst);
    Ok(worst)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn shares_are_exact_per_cycle_and_within_two_in_every_window(
        weights in proptest::collection::vec(proptest::option::weighted(0.9, 0u32..40), 1..16),
        seed in any::<u64>(),
    ) {
        let lb = WeightedRoundRobin::with_seed(fixed(&weights), seed).unwrap();
        let effective = effective(&weights);
        let g = effective.iter().fold(0, |g, &w| gcd(g, w));
        let cycle: u64 = effective.iter().map(|w| w / g).sum();
        let picks: Vec<usize> = (0..cycle * 3).map(|_| *lb.pick().unwrap()).collect();
        check_spread(&picks, &effective)?;
    }
}

#[test]
fn weight_zero_is_never_picked_unless_all_are_zero() {
    let lb = WeightedRoundRobin::new(fixed(&[Some(0), Some(2), None])).unwrap();
    let picks: Vec<usize> = (0..300).map(|_| *lb.pick().unwrap()).collect();
    assert!(!picks.contains(&0));
    assert_eq!(picks.iter().filter(|&&p| p == 1).count(), 200);
    let lb = WeightedRoundRobin::new(fixed(&[Some(0), Some(0), Some(0)])).unwrap();
    let mut counts = [0; 3];
    for _ in 0..300 {
        counts[*lb.pick().unwrap()] += 1;
    }
    assert_eq!(counts, [100; 3]);
    let empty = WeightedRoundRobin::new(FixedEndpointer::<usize>::new(vec![])).unwrap();
    assert!(empty.pick().is_err_and(|e| e.is_no_endpoints()));
}

#[test]
fn two_threads_share_it_evenly() {
    let lb = WeightedRoundRobin::new(fixed(&[Some(1), Some(3)])).unwrap();
    let counts: Vec<[usize; 2]> = thread::scope(|s| {
        let run = || {
            let mut counts = [0; 2];
            for _ in 0..4_000 {
                counts[*lb.pick().unwrap()] += 1;
            }
            counts
        };
        let (a, b) = (s.spawn(run), s.spawn(run));
        vec![a.join().unwrap(), b.join().unwrap()]
    });
    // Whole cycles in all, whether the threads have a counter each (one per CPU) or
    // share one.
    assert_eq!(
        [counts[0][0] + counts[1][0], counts[0][1] + counts[1][1]],
        [2_000, 6_000]
    );
}

#[test]
fn weights_follow_the_set() {
    let instancer = Arc::new(PushInstancer::new());
    instancer.publish_instances(weighted(&[Some(1), Some(1)]));
    let endpointer = Arc::new(
        DefaultEndpointer::new(instancer.clone(), |i: &Instance| Ok(i.addr().to_owned())).unwrap(),
    );
    endpointer
        .wait_ready(std::time::Duration::from_secs(5))
        .unwrap();
    let lb = WeightedRoundRobin::new(endpointer.clone()).unwrap();
    let share_of_0 = |n: usize| {
        (0..n)
            .filter(|_| *lb.pick().unwrap() == "10.0.0.0:80")
            .count()
    };
    assert_eq!(share_of_0(100), 50);
    instancer.publish_instances(weighted(&[Some(4), Some(1)]));
    wait_until("the new weights", || {
        let snapshot = endpointer.endpoints().unwrap();
        snapshot.instances()[0].metadata().and_then(|m| m.weight()) == Some(4)
    });
    assert_eq!(share_of_0(100), 80);
}

// ---- slow start ----

fn pushed(addrs: &[&str]) -> (Arc<PushInstancer>, Arc<DefaultEndpointer<String>>) {
    let instancer = Arc::new(PushInstancer::new());
    instancer.publish_instances(addrs.iter().map(|a| Instance::new(*a)).collect());
    let endpointer = Arc::new(
        DefaultEndpointer::new(instancer.clone(), |i: &Instance| Ok(i.addr().to_owned())).unwrap(),
    );
    endpointer.wait_ready(Duration::from_secs(5)).unwrap();
    (instancer, endpointer)
}

#[test]
fn a_new_instance_ramps_from_ten_percent_to_full_over_the_window() {
    let (instancer, endpointer) = pushed(&["10.0.0.1:80", "10.0.0.2:80"]);
    let clock = ManualClock::new();
    let lb = SlowStart::builder(RoundRobin::with_seed(endpointer.clone(), 1))
        .clock(clock.clone())
        .build()
        .unwrap();
    let snapshot = endpointer.endpoints().unwrap();
    assert_eq!(
        lb.factors(&snapshot).unwrap(),
        [1.0, 1.0],
        "the first set does not ramp"
    );

    instancer.publish_instances(
        ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]
            .map(Instance::new)
            .to_vec(),
    );
    wait_until("the third", || endpointer.endpoints().unwrap().len() == 3);
    let snapshot = endpointer.endpoints().unwrap();
    let factor = |lb: &SlowStart<_>| lb.factors(&snapshot).unwrap()[2];
    let share = || {
        let n = 30_000;
        let new = (0..n)
            .filter(|_| *lb.pick().unwrap() == "10.0.0.3:80")
            .count();
        new as f64 / n as f64
    };
    // Round-robin lands on it every third step and takes it with its factor, so its
    // share of the picks is f / (2 + f): its weight scaled by f against the others'.
    let mut at = 0;
    for (then, expected) in [(0, 0.1), (6, 0.2), (15, 0.5), (24, 0.8), (30, 1.0)] {
        clock.advance(Duration::from_secs(then - at));
        at = then;
        let f = factor(&lb);
        assert!((f - expected).abs() < 1e-9, "{f} at {at} s");
        let got = share();
        let want = expected / (2.0 + expected);
        assert!(
            (got - want).abs() < 0.01,
            "share {got} at {at} s, not {want}"
        );
    }
}

#[test]
fn the_ramp_follows_the_aggression() {
    let (instancer, endpointer) = pushed(&["10.0.0.1:80"]);
    let clock = ManualClock::new();
    let lb = SlowStart::builder(RoundRobin::new(endpointer.clone()))
        .window(Duration::from_secs(10))
        .aggression(2.0)
        .min_weight_percent(0.0)
        .clock(clock.clone())
        .build()
        .unwrap();
    instancer.publish_instances(["10.0.0.1:80", "10.0.0.2:80"].map(Instance::new).to_vec());
    wait_until("the second", || endpointer.endpoints().unwrap().len() == 2);
    let snapshot = endpointer.endpoints().unwrap();
    clock.advance(Duration::from_millis(2_500));
    let f = lb.factors(&snapshot).unwrap()[1];
    assert!((f - 0.5).abs() < 1e-9, "(1/4)^(1/2) = 0.5, got {f}");
    assert!(
        SlowStart::builder(RoundRobin::new(endpointer.clone()))
            .aggression(0.0)
            .build()
            .is_err()
    );
    assert!(
        SlowStart::builder(RoundRobin::new(endpointer))
            .window(Duration::ZERO)
            .build()
            .is_err()
    );
}

// ---- zone preference ----

fn zoned(zones: &[Option<&str>]) -> Vec<Instance> {
    (zones.iter().enumerate())
        .map(|(i, z)| match z {
            Some(z) => Instance::builder(format!("10.0.0.{i}:80")).zone(*z).build(),
            None => Instance::new(format!("10.0.0.{i}:80")),
        })
        .collect()
}

#[test]
fn calls_stay_local_then_spill_and_return() {
    let instancer = Arc::new(PushInstancer::new());
    instancer.publish_instances(zoned(&[Some("eu"), Some("us"), None, Some("eu")]));
    let endpointer = Arc::new(
        DefaultEndpointer::new(instancer.clone(), |i: &Instance| Ok(i.addr().to_owned())).unwrap(),
    );
    endpointer.wait_ready(Duration::from_secs(5)).unwrap();
    let lb = ZonePreference::new(RoundRobin::new(endpointer.clone()), "eu").unwrap();
    let picks = |n| -> Vec<String> { (0..n).map(|_| lb.pick().unwrap().clone()).collect() };
    let local = ["10.0.0.0:80", "10.0.0.3:80"];
    assert!(picks(50).iter().all(|p| local.contains(&p.as_str())));

    // No instance left in the local zone: every zone.
    instancer.publish_instances(zoned(&[None, Some("us"), None]));
    wait_until("no eu", || endpointer.endpoints().unwrap().len() == 3);
    let spilled = picks(30);
    for addr in ["10.0.0.0:80", "10.0.0.1:80", "10.0.0.2:80"] {
        assert_eq!(spilled.iter().filter(|p| *p == addr).count(), 10);
    }
    // Back.
    instancer.publish_instances(zoned(&[None, Some("us"), Some("eu")]));
    wait_until("eu back", || {
        let snapshot = endpointer.endpoints().unwrap();
        snapshot.instances()[2].metadata().and_then(|m| m.zone()) == Some("eu")
    });
    assert!(picks(20).iter().all(|p| p == "10.0.0.2:80"));
}

#[test]
fn a_minimum_and_ejected_local_instances_spill_too() {
    let endpointer = || {
        FixedEndpointer::with_instances(
            zoned(&[Some("eu"), Some("us"), Some("us")])
                .into_iter()
                .zip(0..),
        )
    };
    // One local instance, two needed: spill.
    let lb = ZonePreference::builder(RoundRobin::new(endpointer()), "eu")
        .min_instances(2)
        .build()
        .unwrap();
    let mut counts = [0; 3];
    for _ in 0..30 {
        counts[*lb.pick().unwrap()] += 1;
    }
    assert_eq!(counts, [10; 3]);

    // The one local instance ejected: spill while it is out.
    let clock = ManualClock::new();
    let zoned = ZonePreference::new(RoundRobin::new(endpointer()), "eu").unwrap();
    let lb = OutlierEjection::builder(zoned)
        .clock(clock.clone())
        .build()
        .unwrap();
    for _ in 0..5 {
        lb.pick().unwrap().failure();
    }
    assert_eq!(lb.status().ejected().len(), 1);
    assert!((0..20).all(|_| *lb.pick().unwrap() != 0));
    clock.advance(Duration::from_secs(30));
    assert!((0..20).all(|_| *lb.pick().unwrap() == 0));
    assert!(ZonePreference::new(RoundRobin::new(endpointer()), "").is_err());
}

#[test]
fn a_local_zone_in_panic_spills() {
    // Four local instances of ten: one ejected leaves 3 of 4 local in service (stay
    // local); with two of them ejected (ejection allows 20 % here), 2 of 4: still
    // half; with three, 1 of 4: panic, spill to all in service.
    let zones = [Some("eu"); 4]
        .into_iter()
        .chain([Some("us"); 6])
        .collect::<Vec<_>>();
    let clock = ManualClock::new();
    let zoned = ZonePreference::new(
        RoundRobin::new(FixedEndpointer::with_instances(
            zoned(&zones).into_iter().zip(0..),
        )),
        "eu",
    )
    .unwrap();
    let lb = OutlierEjection::builder(zoned)
        .max_ejection_percent(30)
        .clock(clock)
        .build()
        .unwrap();
    let fail_local = |i: usize| {
        for _ in 0..5 {
            let pick = (0..1_000)
                .map(|_| lb.pick().unwrap())
                .find(|p| **p == i)
                .unwrap();
            pick.failure();
        }
    };
    let picked = |n| (0..n).map(|_| *lb.pick().unwrap()).collect::<Vec<usize>>();
    fail_local(0);
    assert!(picked(30).iter().all(|&p| (1..4).contains(&p)));
    fail_local(1);
    assert!(picked(30).iter().all(|&p| (2..4).contains(&p)));
    fail_local(2);
    assert_eq!(lb.status().ejected().len(), 3);
    let spilled = picked(70);
    assert!(spilled.iter().any(|&p| p >= 4), "spills to the other zone");
    assert!(spilled.iter().all(|&p| p >= 3), "never to an ejected one");
}

#[test]
fn the_zone_can_come_from_a_metadata_key() {
    // As Consul's instances: the datacenter as zone, the real zone in the metadata.
    let instances = [("10.0.0.1:80", "eu-1a"), ("10.0.0.2:80", "eu-1b")].map(|(addr, zone)| {
        Instance::builder(addr)
            .zone("dc1")
            .value("zone", zone)
            .build()
    });
    let endpointer = FixedEndpointer::with_instances(instances.into_iter().zip(0..));
    let lb = ZonePreference::builder(RoundRobin::new(endpointer), "eu-1b")
        .zone_key("zone")
        .build()
        .unwrap();
    assert!((0..10).all(|_| *lb.pick().unwrap() == 1));
}
