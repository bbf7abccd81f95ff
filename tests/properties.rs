//! Property tests: the endpoint cache against a plain model, the publisher's
//! incremental path against a full sort, and what a `subscribe_latest` subscription
//! holds. Each property runs random sequences through the public API only.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use waypost::crossbeam_channel::{TryRecvError, unbounded};
use waypost::{
    DefaultEndpointer, Endpointer, EndpointerState, Error, Event, Instance, PushInstancer,
};

/// Upper bound for anything a property waits for; the wait ends as soon as it holds.
const WAIT: Duration = Duration::from_secs(5);

/// Few cases with short sequences: each endpointer case starts and joins a thread.
/// `PROPTEST_CASES` overrides the count for a longer hunt.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        // A failure is reported (minimised) in the test output; no file is written.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn instance(addr: &str, weight: Option<u32>) -> Instance {
    match weight {
        Some(w) => Instance::builder(addr).weight(w).build(),
        None => Instance::new(addr),
    }
}

fn weight_of(i: &Instance) -> Option<u32> {
    i.metadata().and_then(|m| m.weight())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------
// 1. The endpoint cache against a model.
// ---------------------------------------------------------------------------------

/// The addresses a set draws from. The factory refuses those starting with "bad".
const UNIVERSE: [&str; 12] = [
    "10.0.0.1:80",
    "10.0.0.1:81",
    "10.0.0.10:80",
    "10.0.0.2:80",
    "[::1]:80",
    "a.example:443",
    "bad-1:80",
    "bad-2:80",
    "bad.example:1",
    "b.example:443",
    "z:1",
    "zz:65535",
];

#[derive(Clone, Debug)]
enum Step {
    /// For each address of `UNIVERSE`: absent, or present with this weight (none = no
    /// metadata). Weights from a small range, so metadata-only changes are common.
    Set(Vec<Option<Option<u32>>>),
    /// `publish_error` with one of two errors (so a repeat is sometimes identical).
    Error(u8),
}

/// How a step is drawn: most change the previous set a little (so that metadata-only
/// changes, single additions and removals, and exact repeats are common), some draw a
/// whole new set.
#[derive(Clone, Debug)]
enum Move {
    /// A whole new random set.
    Fresh(Vec<Option<Option<u32>>>),
    /// Add or remove one address (added with this weight).
    Toggle(usize, Option<u32>),
    /// Give one address of the set a new weight (or none): a metadata-only change.
    Reweight(usize, Option<u32>),
    /// Publish the previous set again.
    Repeat,
    /// Publish an error.
    Error(u8),
}

fn member() -> impl Strategy<Value = Option<Option<u32>>> {
    prop_oneof![
        2 => Just(None),
        2 => Just(Some(None)),
        1 => (1u32..3).prop_map(|w| Some(Some(w))),
    ]
}

fn small_weight() -> impl Strategy<Value = Option<u32>> {
    prop_oneof![Just(None), (1u32..3).prop_map(Some)]
}

fn a_move() -> impl Strategy<Value = Move> {
    let at = 0..UNIVERSE.len();
    prop_oneof![
        2 => proptest::collection::vec(member(), UNIVERSE.len()).prop_map(Move::Fresh),
        3 => (at.clone(), small_weight()).prop_map(|(i, w)| Move::Toggle(i, w)),
        2 => (at, small_weight()).prop_map(|(i, w)| Move::Reweight(i, w)),
        1 => Just(Move::Repeat),
        2 => (0u8..2).prop_map(Move::Error),
    ]
}

/// The concrete steps: each set move applied to the set published last.
fn resolve(moves: &[Move]) -> Vec<Step> {
    let mut current = vec![None; UNIVERSE.len()];
    moves
        .iter()
        .map(|m| match m {
            Move::Error(k) => Step::Error(*k),
            Move::Fresh(members) => {
                current = members.clone();
                Step::Set(current.clone())
            }
            Move::Toggle(i, w) => {
                current[*i] = match current[*i] {
                    Some(_) => None,
                    None => Some(*w),
                };
                Step::Set(current.clone())
            }
            Move::Reweight(i, w) => {
                if current[*i].is_some() {
                    current[*i] = Some(*w);
                }
                Step::Set(current.clone())
            }
            Move::Repeat => Step::Set(current.clone()),
        })
        .collect()
}

fn step_error(k: u8) -> Error {
    Error::invalid_instance(&format!("outage-{k}"), "scripted registry error")
}

/// A step as it was published, for failure messages.
fn show(step: &Step) -> String {
    match step {
        Step::Error(k) => format!("error {k}"),
        Step::Set(members) => {
            let set: Vec<String> = (UNIVERSE.iter().zip(members))
                .filter_map(|(a, m)| {
                    m.map(|w| match w {
                        Some(w) => format!("{a}(w{w})"),
                        None => a.to_string(),
                    })
                })
                .collect();
            format!("{{{}}}", set.join(" "))
        }
    }
}

/// What the publisher last sent (identical consecutive states are not sent again).
#[derive(Clone, Debug, PartialEq)]
enum Sent {
    Set(BTreeMap<String, Option<u32>>),
    Error(u8),
}

/// The plain model of the endpointer's cache.
///
/// The rule it encodes (src/endpoint_cache.rs `apply_set` and `diff`): every set
/// event the endpointer receives is merged against the *cache*, which holds only the
/// instances whose factory call succeeded. An address in the set and in the cache
/// keeps its endpoint (its metadata is updated, the factory is not called); an address
/// in the cache and not in the set is removed and its closer runs once; an address in
/// the set and not in the cache is an addition and the factory is called for it, so
/// one whose factory failed is tried again at the next set event that contains it. A
/// set event reaches the endpointer unless it is identical (metadata included) to the
/// state the publisher last sent: a set repeated right after itself is dropped and
/// retries nothing, while the same set after an error is sent again and retries the
/// failed ones. An error event changes nothing in the cache (no invalidation here).
#[derive(Debug, Default)]
struct Model {
    sent: Option<Sent>,
    /// Address -> (weight, endpoint name) of the instances the cache holds.
    cache: BTreeMap<String, (Option<u32>, String)>,
    /// Factory calls per address so far (the factory names endpoints `addr#n`).
    generation: BTreeMap<String, u32>,
    /// Every factory call expected, as (address, weight).
    calls: Vec<(String, Option<u32>)>,
    /// Every endpoint expected closed.
    closed: Vec<String>,
}

impl Model {
    fn apply(&mut self, step: &Step) {
        match step {
            Step::Error(k) => {
                self.sent = Some(Sent::Error(*k));
            }
            Step::Set(members) => {
                let set: BTreeMap<String, Option<u32>> = UNIVERSE
                    .iter()
                    .zip(members)
                    .filter_map(|(addr, m)| m.map(|w| (addr.to_string(), w)))
                    .collect();
                let sent = Sent::Set(set.clone());
                if self.sent.as_ref() == Some(&sent) {
                    return; // dropped as unchanged: nothing happens
                }
                self.sent = Some(sent);
                let gone: Vec<String> = (self.cache.keys())
                    .filter(|a| !set.contains_key(*a))
                    .cloned()
                    .collect();
                for addr in gone {
                    let (_, name) = self.cache.remove(&addr).expect("cached");
                    self.closed.push(name);
                }
                for (addr, &weight) in &set {
                    match self.cache.get_mut(addr) {
                        Some(entry) => entry.0 = weight,
                        None => {
                            self.calls.push((addr.clone(), weight));
                            let n = self.generation.entry(addr.clone()).or_default();
                            *n += 1;
                            if !addr.starts_with("bad") {
                                let name = format!("{addr}#{n}");
                                self.cache.insert(addr.clone(), (weight, name));
                            }
                        }
                    }
                }
            }
        }
    }
}

/// What the factory and the closers recorded.
#[derive(Default)]
struct Record {
    calls: Mutex<Vec<(String, Option<u32>)>>,
    generation: Mutex<BTreeMap<String, u32>>,
    closed: Mutex<Vec<String>>,
}

enum Check {
    Holds,
    /// Not yet: the endpointer's thread or a closer may still be on its way.
    NotYet(String),
    /// Can never come right by waiting.
    Violated(String),
}

fn sorted<T: Ord + Clone>(v: &[T]) -> Vec<T> {
    let mut v = v.to_vec();
    v.sort();
    v
}

/// Compares the endpointer with the model once.
fn check_once(ep: &DefaultEndpointer<String>, model: &Model, record: &Record) -> Check {
    let snapshot = match ep.endpoints() {
        Ok(s) => s,
        Err(e) => return Check::Violated(format!("endpoints() failed: {e}")),
    };
    // Read after taking the snapshot: while it is held, none of its endpoints may be
    // closed.
    let closed = lock(&record.closed).clone();
    let calls = lock(&record.calls).clone();
    if snapshot.len() != snapshot.instances().len() {
        return Check::Violated(format!(
            "{} endpoints beside {} instances",
            snapshot.len(),
            snapshot.instances().len()
        ));
    }
    for endpoint in snapshot.iter() {
        if closed.contains(endpoint) {
            return Check::Violated(format!("{endpoint} is served after its closer ran"));
        }
    }
    let distinct: BTreeSet<&String> = closed.iter().collect();
    if distinct.len() != closed.len() {
        return Check::Violated(format!("a closer ran twice: {closed:?}"));
    }
    if let Some(extra) = closed.iter().find(|c| !model.closed.contains(c)) {
        return Check::Violated(format!(
            "{extra} was closed but is still in the set; expected closed {:?}",
            model.closed
        ));
    }
    if calls.len() > model.calls.len() {
        return Check::Violated(format!(
            "{} factory calls, expected {}: {calls:?}, expected {:?}",
            calls.len(),
            model.calls.len(),
            model.calls
        ));
    }
    let served: Vec<(String, Option<u32>, String)> = snapshot
        .pairs()
        .map(|(i, e)| (i.addr().to_owned(), weight_of(i), e.clone()))
        .collect();
    let want: Vec<(String, Option<u32>, String)> = (model.cache.iter())
        .map(|(a, (w, name))| (a.clone(), *w, name.clone()))
        .collect();
    // `same` compares metadata too, beyond the weight read above.
    let aligned = snapshot.pairs().zip(&want).all(|((i, e), (a, w, name))| {
        i.same(&instance(a, *w)) && e == name && e.starts_with(i.addr())
    });
    if served != want || !aligned {
        return Check::NotYet(format!("serving {served:?}, expected {want:?}"));
    }
    if calls.len() < model.calls.len() {
        return Check::NotYet(format!(
            "{} factory calls so far, expected {:?}",
            calls.len(),
            model.calls
        ));
    }
    if sorted(&calls) != sorted(&model.calls) {
        return Check::Violated(format!(
            "factory calls {calls:?}, expected {:?}",
            model.calls
        ));
    }
    if closed.len() < model.closed.len() {
        return Check::NotYet(format!("closed {closed:?}, expected {:?}", model.closed));
    }
    Check::Holds
}

/// Polls until the endpointer agrees with the model, for at most `WAIT`.
fn agree(
    ep: &DefaultEndpointer<String>,
    model: &Model,
    record: &Record,
    after: usize,
) -> Result<(), TestCaseError> {
    let deadline = Instant::now() + WAIT;
    loop {
        match check_once(ep, model, record) {
            Check::Holds => return Ok(()),
            Check::Violated(why) => {
                return Err(TestCaseError::fail(format!("after step {after}: {why}")));
            }
            Check::NotYet(why) if Instant::now() >= deadline => {
                return Err(TestCaseError::fail(format!(
                    "after step {after}: still not so after {WAIT:?}: {why}"
                )));
            }
            Check::NotYet(_) => std::thread::yield_now(),
        }
    }
}

fn endpoint_cache_matches_model(steps: &[Step]) -> Result<(), TestCaseError> {
    let instancer = Arc::new(PushInstancer::new());
    let record = Arc::new(Record::default());
    let factory = {
        let record = record.clone();
        move |i: &Instance| {
            let addr = i.addr().to_owned();
            lock(&record.calls).push((addr.clone(), weight_of(i)));
            let n = {
                let mut generation = lock(&record.generation);
                let n = generation.entry(addr.clone()).or_default();
                *n += 1;
                *n
            };
            if addr.starts_with("bad") {
                return Err("refused by the test factory".into());
            }
            let name = format!("{addr}#{n}");
            let record = record.clone();
            let closing = name.clone();
            Ok(waypost::Made::new(name).on_close(move || lock(&record.closed).push(closing)))
        }
    };
    let ep = DefaultEndpointer::new(instancer.clone(), factory)
        .map_err(|e| TestCaseError::fail(format!("new: {e}")))?;
    let mut model = Model::default();
    agree(&ep, &model, &record, 0)?;
    for (n, step) in steps.iter().enumerate() {
        match step {
            Step::Set(members) => {
                let list = UNIVERSE
                    .iter()
                    .zip(members)
                    .filter_map(|(addr, m)| m.map(|w| instance(addr, w)))
                    .collect();
                instancer.publish_instances(list);
            }
            Step::Error(k) => instancer.publish_error(step_error(*k)),
        }
        model.apply(step);
        agree(&ep, &model, &record, n + 1).map_err(|e| {
            let done: Vec<String> = steps[..=n].iter().map(show).collect();
            TestCaseError::fail(format!("{e}\nsteps published: {}", done.join("; ")))
        })?;
        if model.sent.is_some() {
            // Pending until the first set; then an error keeps the last set.
            let state = ep.status().state;
            let ok = matches!(state, EndpointerState::Ready | EndpointerState::Pending);
            prop_assert!(ok, "after step {}: state {:?}", n + 1, state);
        }
    }
    // close() joins the thread and closes every endpoint: with no snapshot held, every
    // closer has run when it returns.
    ep.close();
    let mut want_closed = model.closed.clone();
    want_closed.extend(model.cache.values().map(|(_, name)| name.clone()));
    let closed = lock(&record.closed).clone();
    prop_assert_eq!(
        sorted(&closed),
        sorted(&want_closed),
        "every endpoint closed exactly once by the time close() returns"
    );
    prop_assert_eq!(sorted(&lock(&record.calls)), sorted(&model.calls));
    prop_assert!(ep.endpoints().is_err(), "endpoints() after close");
    Ok(())
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn endpoint_cache_follows_the_model(moves in proptest::collection::vec(a_move(), 1..30)) {
        endpoint_cache_matches_model(&resolve(&moves))?;
    }
}

// ---------------------------------------------------------------------------------
// 2. The publisher's incremental path against a full sort.
// ---------------------------------------------------------------------------------

/// One change to the list between two publishes.
#[derive(Clone, Debug)]
enum Edit {
    /// Put a new address (from a range the list also draws from: it may collide and
    /// make a duplicate) at a position.
    Replace(Index, u16, Option<u32>),
    /// Swap two entries (the set is unchanged unless they share an address).
    Swap(Index, Index),
    /// Change only the metadata of one entry.
    Meta(Index, Option<u32>),
    /// Copy one entry's address (with its own metadata) over another: a duplicate.
    Duplicate(Index, Index, Option<u32>),
    /// Replace the first later occurrence of a duplicated address with a fresh one.
    Dedup,
}

#[derive(Clone, Debug)]
enum Publish {
    /// Edit the list (no edits: publish it unchanged) and publish it.
    List(Vec<Edit>),
    /// Publish an error (always the same one).
    Error,
}

fn weight() -> impl Strategy<Value = Option<u32>> {
    prop_oneof![Just(None), (1u32..4).prop_map(Some)]
}

const ADDRS: u16 = 3000;

fn addr(x: u16) -> String {
    format!("h{x}.svc:{}", 8000 + x % 5)
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => (any::<Index>(), 0..ADDRS, weight()).prop_map(|(at, x, w)| Edit::Replace(at, x, w)),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Edit::Swap(a, b)),
        2 => (any::<Index>(), weight()).prop_map(|(at, w)| Edit::Meta(at, w)),
        1 => (any::<Index>(), any::<Index>(), weight())
            .prop_map(|(from, to, w)| Edit::Duplicate(from, to, w)),
        1 => Just(Edit::Dedup),
    ]
}

/// A list of 64..400 distinct addresses in random order, each with or without a
/// weight, and the publishes that follow it.
fn publisher_case() -> impl Strategy<Value = (Vec<Instance>, Vec<Publish>)> {
    proptest::collection::btree_set(0..ADDRS, 64..400)
        .prop_flat_map(|xs| {
            let n = xs.len();
            (
                Just(xs.into_iter().collect::<Vec<u16>>()).prop_shuffle(),
                proptest::collection::vec(weight(), n),
            )
        })
        .prop_map(|(xs, ws)| {
            (xs.iter().zip(ws))
                .map(|(&x, w)| instance(&addr(x), w))
                .collect::<Vec<_>>()
        })
        .prop_flat_map(|list| {
            let publish = prop_oneof![
                8 => proptest::collection::vec(edit(), 0..4).prop_map(Publish::List),
                1 => Just(Publish::Error),
            ];
            (Just(list), proptest::collection::vec(publish, 1..25))
        })
}

fn apply_edit(list: &mut [Instance], edit: &Edit, fresh: &mut u16) {
    match edit {
        Edit::Replace(at, x, w) => list[at.index(list.len())] = instance(&addr(*x), *w),
        Edit::Swap(a, b) => list.swap(a.index(list.len()), b.index(list.len())),
        Edit::Meta(at, w) => {
            let at = at.index(list.len());
            list[at] = instance(list[at].addr(), *w);
        }
        Edit::Duplicate(from, to, w) => {
            let copy = instance(list[from.index(list.len())].addr(), *w);
            list[to.index(list.len())] = copy;
        }
        Edit::Dedup => {
            let mut seen = BTreeSet::new();
            if let Some(at) = (0..list.len()).find(|&i| !seen.insert(list[i].addr().to_owned())) {
                list[at] = instance(&addr(*fresh), None);
                *fresh += 1;
            }
        }
    }
}

/// The list sorted by address, de-duplicated keeping the first occurrence in the list
/// (with its metadata): a stable sort, then dropping each entry equal to the one before.
fn full_sort(list: &[Instance]) -> Vec<Instance> {
    let mut set = list.to_vec();
    set.sort_by(|a, b| a.addr().cmp(b.addr()));
    set.dedup_by(|later, earlier| later.addr() == earlier.addr());
    set
}

fn describe(set: &[Instance]) -> String {
    let shown: Vec<String> = set
        .iter()
        .map(|i| match weight_of(i) {
            Some(w) => format!("{}(w{w})", i.addr()),
            None => i.addr().to_owned(),
        })
        .collect();
    format!("{} entries: {}", set.len(), shown.join(" "))
}

fn same_set(got: &[Instance], want: &[Instance]) -> Result<(), String> {
    if let Some(at) = (0..got.len().max(want.len())).find(|&k| match (got.get(k), want.get(k)) {
        (Some(g), Some(w)) => !g.same(w),
        _ => true,
    }) {
        return Err(format!(
            "first difference at {at}: got {:?} (w {:?}), want {:?} (w {:?});\n got {}\nwant {}",
            got.get(at).map(Instance::addr),
            got.get(at).and_then(weight_of),
            want.get(at).map(Instance::addr),
            want.get(at).and_then(weight_of),
            describe(got),
            describe(want),
        ));
    }
    Ok(())
}

fn incremental_matches_full_sort(
    mut list: Vec<Instance>,
    publishes: &[Publish],
) -> Result<(), TestCaseError> {
    let instancer = PushInstancer::new();
    let (tx, rx) = unbounded();
    instancer.subscribe(tx);
    prop_assert!(rx.try_recv().is_err(), "nothing before the first state");
    let mut fresh = ADDRS;
    // The state last sent: a set, or None after an error.
    instancer.publish_instances(list.clone());
    let mut last: Option<Vec<Instance>> = Some(full_sort(&list));
    match rx.try_recv() {
        Ok(Event::Instances(set)) => same_set(&set, last.as_ref().expect("set"))
            .map_err(|why| TestCaseError::fail(format!("first publish: {why}")))?,
        other => prop_assert!(false, "first publish sent {:?}", other.map(|_| ())),
    }
    for (n, publish) in publishes.iter().enumerate() {
        let step = n + 1;
        match publish {
            Publish::Error => {
                instancer.publish_error(Error::NoEndpoints);
                let was_error = last.is_none();
                last = None;
                match rx.try_recv() {
                    Ok(Event::Error(_)) if !was_error => {}
                    Err(TryRecvError::Empty) if was_error => {}
                    Ok(Event::Error(_)) => prop_assert!(false, "step {}: error re-sent", step),
                    Ok(Event::Instances(set)) => {
                        prop_assert!(false, "step {}: error sent a set: {}", step, describe(&set))
                    }
                    Err(e) => prop_assert!(false, "step {}: no error event: {}", step, e),
                }
            }
            Publish::List(edits) => {
                for edit in edits {
                    apply_edit(&mut list, edit, &mut fresh);
                }
                instancer.publish_instances(list.clone());
                let want = full_sort(&list);
                let unchanged = last.as_ref().is_some_and(|l| {
                    l.len() == want.len() && l.iter().zip(&want).all(|(a, b)| a.same(b))
                });
                match rx.try_recv() {
                    Ok(Event::Instances(set)) if !unchanged => {
                        same_set(&set, &want).map_err(|why| {
                            TestCaseError::fail(format!("step {step} ({edits:?}): {why}"))
                        })?;
                    }
                    Ok(Event::Instances(set)) => prop_assert!(
                        false,
                        "step {} ({:?}): an unchanged set was sent again: {}",
                        step,
                        edits,
                        describe(&set)
                    ),
                    Ok(Event::Error(e)) => prop_assert!(false, "step {}: error event {}", step, e),
                    Err(TryRecvError::Empty) if unchanged => {}
                    Err(e) => prop_assert!(
                        false,
                        "step {} ({:?}): no event for a changed set ({}): expected {}",
                        step,
                        edits,
                        e,
                        describe(&want)
                    ),
                }
                last = Some(want);
            }
        }
        prop_assert!(rx.try_recv().is_err(), "step {}: more than one event", step);
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn publisher_incremental_path_matches_a_full_sort((list, publishes) in publisher_case()) {
        incremental_matches_full_sort(list, &publishes)?;
    }
}

// ---------------------------------------------------------------------------------
// 3. What a subscribe_latest subscription holds.
// ---------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Op {
    /// Publish the subset of these addresses (`UNIVERSE[..6]`) with these weights.
    Set(Vec<Option<Option<u32>>>),
    /// Publish one of two errors.
    Error(u8),
    /// Drain the subscription and compare.
    Read,
    /// Subscribe (again): a new subscription replaces the old one.
    Subscribe,
}

fn op() -> impl Strategy<Value = Op> {
    let member = prop_oneof![
        Just(None),
        Just(Some(None)),
        (1u32..3).prop_map(|w| Some(Some(w)))
    ];
    prop_oneof![
        4 => proptest::collection::vec(member, 6).prop_map(Op::Set),
        2 => (0u8..2).prop_map(Op::Error),
        1 => Just(Op::Read),
        1 => Just(Op::Subscribe),
    ]
}

/// A held event in the model: a set (sorted, with metadata) or an error's number.
#[derive(Clone, Debug, PartialEq)]
enum Held {
    Set(Vec<(String, Option<u32>)>),
    Error(u8),
}

fn held_of(event: &Event) -> Held {
    match event {
        Event::Instances(set) => Held::Set(
            set.iter()
                .map(|i| (i.addr().to_owned(), weight_of(i)))
                .collect(),
        ),
        Event::Error(e) => {
            let text = e.to_string();
            Held::Error(if text.contains("outage-1") { 1 } else { 0 })
        }
    }
}

/// The model of one subscription: what the publisher last sent, and what the
/// subscription holds (at most the newest set, then an error published after it).
fn holds_after(held: &mut Vec<Held>, event: Held) {
    match event {
        Held::Set(_) => *held = vec![event],
        Held::Error(_) => {
            held.retain(|h| matches!(h, Held::Set(_)));
            held.push(event);
        }
    }
}

fn latest_holds_the_newest_state(ops: &[Op]) -> Result<(), TestCaseError> {
    let instancer = PushInstancer::new();
    let mut subscription: Option<waypost::Subscription> = None;
    // What the publisher last sent, and the last set it sent (kept across errors).
    let mut latest: Option<Held> = None;
    let mut last_set: Option<Held> = None;
    let mut held: Vec<Held> = Vec::new();
    for (n, op) in ops.iter().enumerate() {
        let step = n + 1;
        let event = match op {
            Op::Set(members) => {
                let list: Vec<Instance> = (UNIVERSE[..6].iter().zip(members))
                    .filter_map(|(a, m)| m.map(|w| instance(a, w)))
                    .rev() // any order: the publisher sorts
                    .collect();
                let mut sorted: Vec<(String, Option<u32>)> = list
                    .iter()
                    .map(|i| (i.addr().to_owned(), weight_of(i)))
                    .collect();
                sorted.sort();
                instancer.publish_instances(list);
                Some(Held::Set(sorted))
            }
            Op::Error(k) => {
                instancer.publish_error(step_error(*k));
                Some(Held::Error(*k))
            }
            Op::Read => {
                let Some(sub) = &subscription else { continue };
                let got: Vec<Held> = sub.try_iter().map(|e| held_of(&e)).collect();
                prop_assert_eq!(&got, &held, "step {}: read", step);
                held.clear();
                None
            }
            Op::Subscribe => {
                let sub = instancer.subscribe_latest();
                // A new subscriber starts with the current state: during an outage,
                // the last set and then the error.
                held = match &latest {
                    Some(Held::Error(_)) => last_set.iter().chain(&latest).cloned().collect(),
                    Some(set) => vec![set.clone()],
                    None => Vec::new(),
                };
                subscription = Some(sub);
                None
            }
        };
        if let Some(event) = event {
            // Identical consecutive states are not sent again.
            if latest.as_ref() != Some(&event) {
                if matches!(event, Held::Set(_)) {
                    last_set = Some(event.clone());
                }
                latest = Some(event.clone());
                holds_after(&mut held, event);
            }
        }
        if let Some(sub) = &subscription {
            prop_assert!(sub.len() <= 2, "step {}: holds {} events", step, sub.len());
            prop_assert_eq!(sub.len(), held.len(), "step {}: holds {:?}", step, held);
        }
    }
    if let Some(sub) = &subscription {
        let got: Vec<Held> = sub.try_iter().map(|e| held_of(&e)).collect();
        prop_assert_eq!(&got, &held, "final read");
        prop_assert!(sub.try_recv().is_err(), "drained");
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn subscribe_latest_holds_the_newest_set_then_an_error(
        ops in proptest::collection::vec(op(), 1..40)
    ) {
        latest_holds_the_newest_state(&ops)?;
    }
}
