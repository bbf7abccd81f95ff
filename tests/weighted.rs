//! Issue 23 through the public API: weighted round-robin's shares and windows, weight
//! 0, weights that change with the set.

mod support;

use std::sync::Arc;
use std::thread;

use proptest::prelude::*;
use support::wait_until;
use waypost::lb::{Balancer, WeightedRoundRobin};
use waypost::{DefaultEndpointer, Endpointer, FixedEndpointer, Instance, PushInstancer};

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
