//! Consistent hashing with bounded load through the public API: the same key to the
//! same instance, few keys moving when the set changes, the bound held under threads.
//!
//! The key-movement figures are printed: `cargo test --test consistent_hash -- --nocapture`.

mod support;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use support::wait_until;

use waypost::lb::{Balancer, ConsistentHash, ConsistentHashBuilder, Pick};
use waypost::{DefaultEndpointer, Endpointer, Error, FixedEndpointer, Instance, PushInstancer};

type Fixed = FixedEndpointer<usize>;

/// Instance `i`'s address, as in the benches.
fn addr(i: usize) -> String {
    format!("10.0.{}.{}:8080", i / 256, i % 256)
}

/// A fixed set of the instances `ids`, endpoint `i` for instance `addr(i)`.
fn fixed(ids: impl IntoIterator<Item = usize>) -> Fixed {
    FixedEndpointer::with_instances(ids.into_iter().map(|i| (Instance::new(addr(i)), i)))
}

/// How a builder is set to one table.
type Table = fn(ConsistentHashBuilder<Fixed>) -> ConsistentHashBuilder<Fixed>;

/// The two tables, by name.
fn tables() -> [(&'static str, Table); 2] {
    [("ring", |b| b.default_ring()), ("maglev", |b| b.maglev())]
}

fn keys(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|k| format!("key-{k}").into_bytes()).collect()
}

/// The endpoint each key goes to, one pick at a time.
fn owners<P: Endpointer<usize>>(lb: &ConsistentHash<P>, keys: &[Vec<u8>]) -> Vec<usize> {
    keys.iter().map(|k| *lb.pick_for(k).unwrap()).collect()
}

#[test]
fn pick_for_is_pick_for_the_xxh64_of_the_key() {
    // Published XXH64 vectors (seed 0); see src/lb/hash/xxh64.rs for their sources.
    let vectors: [(&[u8], u64); 4] = [
        (b"", 0xEF46_DB37_51D8_E999),
        (b"a", 0xD24E_C4F1_A98C_6E5B),
        (b"abc", 0x44BC_2CF5_AD77_0999),
        (b"message digest", 0x066E_D728_FCEE_B3BE),
    ];
    for (name, table) in tables() {
        for n in [3, 10, 100] {
            let lb = table(ConsistentHash::builder(fixed(0..n))).build().unwrap();
            for (key, hash) in vectors {
                // One at a time: a pick held would count against the bound.
                let by_key = lb.pick_for(key).unwrap().index();
                assert_eq!(by_key, lb.pick_for_hash(hash).unwrap().index(), "{name}");
            }
        }
    }
}

#[test]
fn a_key_goes_to_the_same_instance_while_the_set_is_unchanged() {
    let keys = keys(5_000);
    for (name, table) in tables() {
        for bounded in [None, Some(1.25)] {
            let build = |ids: Vec<usize>| {
                table(ConsistentHash::builder(fixed(ids)))
                    .bounded_load(bounded)
                    .build()
                    .unwrap()
            };
            let lb = build((0..10).collect());
            let first = owners(&lb, &keys);
            assert_eq!(owners(&lb, &keys), first, "{name}");
            // The table depends on the set only, not on the order it is listed in.
            let reversed = build((0..10).rev().collect());
            assert_eq!(owners(&reversed, &keys), first, "{name} reversed");
            // Every instance gets a share.
            for i in 0..10 {
                let share = first.iter().filter(|&&o| o == i).count();
                assert!(share > 5_000 / 10 / 3, "{name}: {i} has {share}");
            }
        }
    }
}

/// When one of `n` instances leaves, the mean share of keys that move (over the
/// instances that may leave) and the largest; and the share of the keys of the
/// instances that stay that move.
fn movement(table: Table, n: usize, leaving: &[usize], keys: &[Vec<u8>]) -> (f64, f64, f64) {
    let build = |ids: Vec<usize>| {
        let lb = table(ConsistentHash::builder(fixed(ids)));
        lb.bounded_load(None).build().unwrap()
    };
    let before = owners(&build((0..n).collect()), keys);
    let (mut sum, mut max, mut stayers_moved, mut stayers) = (0.0, 0.0f64, 0, 0);
    for &gone in leaving {
        let after = owners(&build((0..n).filter(|&i| i != gone).collect()), keys);
        let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
        let share = moved as f64 / keys.len() as f64;
        sum += share;
        max = max.max(share);
        let stay = before.iter().zip(&after).filter(|(b, _)| **b != gone);
        stayers += stay.clone().count();
        stayers_moved += stay.filter(|(b, a)| b != a).count();
    }
    let mean = sum / leaving.len() as f64;
    (mean, max, stayers_moved as f64 / stayers as f64)
}

#[test]
fn about_one_key_in_n_moves_when_one_of_n_instances_leaves() {
    let keys = keys(20_000);
    for (name, table) in tables() {
        // The targets: at most 1.2/N for a ring, 2.5/N for Maglev.
        let target = if name == "ring" { 1.2 } else { 2.5 };
        for n in [10, 100] {
            let leaving: Vec<usize> = (0..n).step_by(n / 10).collect();
            let (mean, max, stayers) = movement(table, n, &leaving, &keys);
            println!(
                "movement {name} N={n} unbounded: mean {:.3}/N, max {:.3}/N over {} \
                 leaving; keys of staying instances moved: {:.4}",
                mean * n as f64,
                max * n as f64,
                leaving.len(),
                stayers
            );
            assert!(mean * n as f64 <= target, "{name} N={n}: {mean}");
            if name == "ring" {
                // Only the keys of the instance that left move.
                assert_eq!(stayers, 0.0, "{name} N={n}");
            } else {
                assert!(
                    stayers * n as f64 <= target - 1.0,
                    "{name} N={n}: {stayers}"
                );
            }
        }
    }
}

/// A set of `n` instances behind a `PushInstancer`, to change.
fn pushed(n: usize) -> (Arc<PushInstancer>, Arc<DefaultEndpointer<usize>>) {
    let instancer = Arc::new(PushInstancer::new());
    instancer.publish_instances((0..n).map(|i| Instance::new(addr(i))).collect());
    let endpointer = DefaultEndpointer::new(instancer.clone(), |i: &Instance| {
        let id = i.addr().trim_end_matches(":8080").rsplit('.').take(2);
        let parts: Vec<usize> = id.map(|p| p.parse().unwrap()).collect();
        Ok(parts[1] * 256 + parts[0])
    })
    .unwrap();
    endpointer.wait_ready(Duration::from_secs(10)).unwrap();
    (instancer, Arc::new(endpointer))
}

#[test]
fn with_keys_held_few_keys_move_when_one_instance_leaves() {
    let keys = keys(10_000);
    for ring in [true, false] {
        let name = if ring { "ring" } else { "maglev" };
        for n in [10, 100] {
            let (instancer, endpointer) = pushed(n);
            let builder = ConsistentHash::builder(endpointer.clone());
            let builder = if ring {
                builder.default_ring()
            } else {
                builder
            };
            let lb = builder.build().unwrap();
            // 2 keys per instance held: the bound is 3, some instances are at it.
            let held: Vec<Pick<usize>> = (0..2 * n)
                .map(|k| lb.pick_for(format!("held-{k}").as_bytes()).unwrap())
                .collect();
            let (mut sum, mut max) = (0.0, 0.0f64);
            let leaving: Vec<usize> = (0..n).step_by(n / 5).collect();
            for &gone in &leaving {
                // Taken again each time: an instance that left and came back starts
                // with no keys counted (its held picks count in the total only).
                let before = owners(&lb, &keys);
                let rest = (0..n)
                    .filter(|&i| i != gone)
                    .map(|i| Instance::new(addr(i)));
                instancer.publish_instances(rest.collect());
                wait_until("the set without one", || {
                    endpointer.endpoints().unwrap().len() == n - 1
                });
                let after = owners(&lb, &keys);
                let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
                let share = moved as f64 / keys.len() as f64;
                sum += share;
                max = max.max(share);
                instancer.publish_instances((0..n).map(|i| Instance::new(addr(i))).collect());
                wait_until("the whole set", || {
                    endpointer.endpoints().unwrap().len() == n
                });
            }
            let mean = sum / leaving.len() as f64;
            println!(
                "movement {name} N={n} bounded 1.25, {} keys held: mean {:.3}/N, max {:.3}/N \
                 over {} leaving",
                held.len(),
                mean * n as f64,
                max * n as f64,
                leaving.len()
            );
            assert!(mean * n as f64 <= 2.5, "{name} N={n}: {mean}");
            drop(held);
        }
    }
}

#[test]
fn the_bound_holds_under_threads_holding_keys() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 150;
    for (name, table) in tables() {
        for factor in [1.0, 1.25, 2.0] {
            let n = 10;
            let lb = table(ConsistentHash::builder(fixed(0..n)))
                .bounded_load(Some(factor))
                .build()
                .unwrap();
            let held = Barrier::new(THREADS + 1);
            let checked = Barrier::new(THREADS + 1);
            std::thread::scope(|s| {
                for t in 0..THREADS {
                    let (lb, held, checked) = (&lb, &held, &checked);
                    s.spawn(move || {
                        // Half hot keys (the same 5 on every thread), half of its own.
                        let picks: Vec<Pick<usize>> = (0..PER_THREAD)
                            .map(|k| {
                                let key = if k % 2 == 0 {
                                    format!("hot-{}", k % 5)
                                } else {
                                    format!("cold-{t}-{k}")
                                };
                                lb.pick_for(key.as_bytes()).unwrap()
                            })
                            .collect();
                        held.wait();
                        checked.wait();
                        drop(picks);
                    });
                }
                held.wait();
                let snapshot = lb.endpointer().endpoints().unwrap();
                let loads = lb.in_flight(&snapshot).unwrap();
                let total: usize = loads.iter().sum();
                assert_eq!(total, THREADS * PER_THREAD);
                let cap = (factor * total as f64 / n as f64).ceil() as usize;
                assert!(
                    loads.iter().all(|&l| l <= cap),
                    "{name} {factor}: {loads:?} > {cap}"
                );
                checked.wait();
            });
            let snapshot = lb.endpointer().endpoints().unwrap();
            assert_eq!(
                lb.in_flight(&snapshot).unwrap(),
                vec![0; n],
                "{name}: all ended"
            );
        }
    }
}

#[test]
fn unbounded_is_plain_hashing() {
    for (name, table) in tables() {
        let plain = table(ConsistentHash::builder(fixed(0..10)))
            .bounded_load(None)
            .build()
            .unwrap();
        let bounded = table(ConsistentHash::builder(fixed(0..10)))
            .build()
            .unwrap();
        let hot = |lb: &ConsistentHash<Fixed>| -> Vec<Pick<usize>> {
            (0..40).map(|_| lb.pick_for(b"hot").unwrap()).collect()
        };
        let plain_picks = hot(&plain);
        assert!(plain_picks.iter().all(|p| **p == *plain_picks[0]), "{name}");
        assert_eq!(
            plain.in_flight(&plain.endpointer().endpoints().unwrap()),
            None
        );
        assert_eq!(plain.load_factor(), None);
        // With the bound, the hot key starts on the same instance, then spreads.
        let bounded_picks = hot(&bounded);
        assert_eq!(*bounded_picks[0], *plain_picks[0], "{name}");
        let loads = bounded.in_flight(&bounded.endpointer().endpoints().unwrap());
        assert!(loads.unwrap().iter().all(|&l| l <= 5), "{name}");
    }
}

#[test]
fn an_empty_set_has_no_endpoints_and_one_instance_takes_every_key() {
    for (_, table) in tables() {
        let empty = table(ConsistentHash::builder(fixed([]))).build().unwrap();
        assert!(matches!(empty.pick_for(b"k"), Err(Error::NoEndpoints)));
        assert!(matches!(empty.pick(), Err(Error::NoEndpoints)));
        assert!(matches!(
            empty.pick_if(&|_, _| true),
            Err(Error::NoEndpoints)
        ));
        let one = table(ConsistentHash::builder(fixed([7]))).build().unwrap();
        let picks: Vec<Pick<usize>> = (0..50)
            .map(|k| one.pick_for(format!("{k}").as_bytes()).unwrap())
            .collect();
        assert!(picks.iter().all(|p| **p == 7));
        assert_eq!(*one.pick().unwrap(), 7);
    }
}

#[test]
fn pick_if_walks_past_unusable_instances() {
    for (name, table) in tables() {
        let lb = table(ConsistentHash::builder(fixed(0..10)))
            .build()
            .unwrap();
        for k in 0..200 {
            let pick = lb.pick_if(&|_, i| i % 3 == 0).unwrap();
            assert_eq!(pick.index() % 3, 0, "{name} {k}");
        }
        // None usable: still a pick.
        assert!(lb.pick_if(&|_, _| false).is_ok());
        // Random keys reach every instance.
        let mut seen = [false; 10];
        for _ in 0..1_000 {
            seen[lb.pick().unwrap().index()] = true;
        }
        assert!(seen.iter().all(|&s| s), "{name}");
    }
}

#[test]
fn bad_settings_are_refused() {
    let refused =
        |b: ConsistentHashBuilder<Fixed>| matches!(b.build(), Err(Error::InvalidConfig { .. }));
    let b = || ConsistentHash::builder(fixed(0..3));
    assert!(refused(b().bounded_load(Some(0.5))));
    assert!(refused(b().bounded_load(Some(f64::NAN))));
    assert!(refused(b().bounded_load(Some(f64::INFINITY))));
    assert!(refused(b().ring(0)));
    assert!(refused(b().ring(usize::MAX)));
    assert!(b().bounded_load(Some(1.0)).ring(1).build().is_ok());
}
