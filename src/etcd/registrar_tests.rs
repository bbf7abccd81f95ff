//! The registrar and its keepalive thread against the in-memory fake etcd, on a manual
//! clock: no test sleeps.

use std::time::Instant;

use super::*;
use crate::etcd::fake::{self, BOUND, Etcd, FakeClient, Kind, Op, http_error, logs, status_error};
use crate::{HttpErrorKind, ManualClock};

const PREFIX: &str = "/svc/api/";
const ADDR: &str = "10.0.0.7:8080";
const KEY: &str = "/svc/api/10.0.0.7:8080";

struct Harness {
    registrar: Registrar,
    etcd: Etcd,
    clock: ManualClock,
    _client: FakeClient,
}

/// A registrar of [`ADDR`] under [`PREFIX`] with a TTL of 3 s (a keepalive every
/// second) on a manual clock.
fn registrar(configure: impl FnOnce(RegistrarBuilder) -> RegistrarBuilder) -> Harness {
    let clock = ManualClock::new();
    let (client, etcd) = fake::fake(&clock);
    let builder = Registrar::builder(&client, PREFIX, ADDR)
        .ttl(Duration::from_secs(3))
        .clock(clock.clone());
    Harness {
        registrar: configure(builder).build().unwrap(),
        etcd,
        clock,
        _client: client,
    }
}

impl Harness {
    /// Registers, and checks the grant and the put: the lease's id.
    fn register(&self) -> (Registration, i64) {
        let registration = self.registrar.register().unwrap();
        let Op::Grant { .. } = self.etcd.next_op() else {
            panic!("expected a grant")
        };
        let lease = self.registrar.lease();
        assert_eq!(
            self.etcd.next_op(),
            Op::Put {
                key: KEY.into(),
                lease
            }
        );
        (registration, lease)
    }

    /// The next calls are a keepalive of `lease` that worked, and the look at the key
    /// that follows it.
    fn renewed(&self, lease: i64) {
        assert_eq!(self.etcd.next_op(), Op::KeepAlive(lease));
        assert!(
            matches!(self.etcd.next_op(), Op::Range { .. }),
            "the key checked"
        );
    }

    /// Waits until the keepalive thread has armed its timer, then checks that no
    /// call was made meanwhile.
    fn waiting(&self) {
        let until = Instant::now() + BOUND;
        while self.clock.pending_timers() == 0 {
            assert!(Instant::now() < until, "the keepalive never waited");
            std::thread::yield_now();
        }
        assert_eq!(self.etcd.ops_so_far(), [], "a call while waiting");
    }

    /// Moves the clock by `by` once the thread waits (the test then reads the call
    /// its timer made).
    fn advance(&self, by: Duration) {
        self.waiting();
        self.clock.advance(by);
    }

    /// Moves the clock by `by` once the thread waits, and checks that its timer did
    /// not fire: still armed, and no call made (a timer that fired and was armed
    /// again made its call first).
    fn advance_short(&self, by: Duration, why: &str) {
        self.advance(by);
        assert_eq!(self.clock.pending_timers(), 1, "{why}");
        assert_eq!(self.etcd.ops_so_far(), [], "{why}");
    }

    fn keepalive_running(&self) -> bool {
        self.registrar.keeper.keeping()
    }
}

#[test]
fn register_puts_the_plain_address_with_a_lease_of_the_ttl() {
    let h = registrar(|b| b.ttl(Duration::from_secs(10)));
    let registration = h.registrar.register().unwrap();
    assert_eq!(
        h.etcd.next_op(),
        Op::Grant {
            ttl: Duration::from_secs(10)
        }
    );
    let lease = h.registrar.lease();
    assert_ne!(lease, 0);
    assert_eq!(
        h.etcd.next_op(),
        Op::Put {
            key: KEY.into(),
            lease
        }
    );
    assert_eq!(h.etcd.get(KEY), Some((ADDR.into(), lease)));
    assert_eq!(h.etcd.leases(), [(lease, Duration::from_secs(10))]);
    assert_eq!(h.registrar.key(), KEY.as_bytes());
    assert!(h.keepalive_running());
    drop(registration);
}

#[test]
fn metadata_makes_the_value_json_that_the_instancer_reads_back() {
    let h = registrar(|b| {
        b.id("api-1")
            .weight(3)
            .zone("eu-1")
            .scheme("https")
            .tag("v2")
            .value("version", "2.1")
    });
    let _registration = h.registrar.register().unwrap();
    let (value, _) = h
        .etcd
        .get("/svc/api/api-1")
        .expect("the key, named by its id");
    let json: serde_json::Value = serde_json::from_str(&value).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"addr": ADDR, "metadata": {"weight": 3, "zone": "eu-1",
            "scheme": "https", "tags": ["v2"], "values": {"version": "2.1"}}})
    );
    let instance = value::parse(value.as_bytes(), None).unwrap();
    let want = Instance::builder(ADDR)
        .weight(3)
        .zone("eu-1")
        .scheme("https")
        .tag("v2")
        .value("version", "2.1")
        .build();
    assert!(instance.same(&want), "{instance:?}");
}

#[test]
fn a_fractional_ttl_is_rounded_up_to_whole_seconds() {
    let h = registrar(|b| b.ttl(Duration::from_millis(2500)));
    let _registration = h.registrar.register().unwrap();
    assert_eq!(
        h.etcd.next_op(),
        Op::Grant {
            ttl: Duration::from_secs(3)
        }
    );
}

#[test]
fn the_keepalive_runs_every_third_of_the_ttl() {
    let h = registrar(|b| b);
    let (_registration, lease) = h.register();
    for round in 0..4 {
        h.advance_short(
            Duration::from_millis(999),
            &format!("a keepalive before TTL/3, round {round}"),
        );
        h.advance(Duration::from_millis(1));
        h.renewed(lease);
    }
    // Four seconds on, past the TTL: still registered, on the same lease.
    assert_eq!(h.etcd.get(KEY), Some((ADDR.into(), lease)));
    assert_eq!(h.etcd.count(Kind::Grant), 1);
}

#[test]
fn a_revoked_lease_is_granted_again_and_the_key_put_again() {
    logs::capture();
    let h = registrar(|b| b.id("revoked-lease"));
    let key = format!("{PREFIX}revoked-lease");
    let _registration = h.registrar.register().unwrap();
    h.etcd.next_op();
    let old = h.registrar.lease();
    h.etcd.next_op();
    h.etcd.revoke(old); // deletes the key too
    assert_eq!(h.etcd.get(&key), None);
    h.advance(Duration::from_secs(1));
    assert_eq!(h.etcd.next_op(), Op::KeepAlive(old));
    assert!(matches!(h.etcd.next_op(), Op::Grant { .. }));
    let Op::Put {
        key: put,
        lease: new,
    } = h.etcd.next_op()
    else {
        panic!("expected a put")
    };
    assert_eq!((put.as_str(), new), (key.as_str(), h.registrar.lease()));
    assert_ne!(new, old);
    assert_eq!(h.etcd.get(&key), Some((ADDR.into(), new)));
    assert!(logs::logged(
        log::Level::Warn,
        LOG,
        &["lost the lease", "revoked-lease"]
    ));
    // The next keepalives renew the new lease.
    h.advance(Duration::from_secs(1));
    h.renewed(new);
}

#[test]
fn a_lease_that_expired_while_cut_off_is_granted_again() {
    let h = registrar(|b| b);
    let (_registration, old) = h.register();
    // The clock jumps past the TTL before the first keepalive: etcd let the lease
    // expire and deleted the key.
    h.waiting();
    h.etcd.advance(Duration::from_secs(4));
    assert_eq!(h.etcd.next_op(), Op::KeepAlive(old));
    assert!(matches!(h.etcd.next_op(), Op::Grant { .. }));
    let Op::Put { lease: new, .. } = h.etcd.next_op() else {
        panic!("expected a put")
    };
    assert_ne!(new, old);
    assert_eq!(h.etcd.get(KEY), Some((ADDR.into(), new)));
}

#[test]
fn keepalive_errors_are_logged_and_retried_sooner() {
    logs::capture();
    let h = registrar(|b| b.id("failing-keepalive").ttl(Duration::from_secs(30)));
    let _registration = h.registrar.register().unwrap();
    h.etcd.next_op();
    let lease = h.registrar.lease();
    h.etcd.next_op();
    h.etcd
        .fail_next(Kind::KeepAlive, http_error(HttpErrorKind::Connect));
    h.etcd.fail_next(
        Kind::KeepAlive,
        status_error(503, 14, "etcdserver: no leader"),
    );
    h.advance(Duration::from_secs(10));
    assert_eq!(h.etcd.next_op(), Op::KeepAlive(lease));
    // The retries come after 100 ms, then 200 ms at most, not after TTL/3.
    h.advance(Duration::from_millis(100));
    assert_eq!(h.etcd.next_op(), Op::KeepAlive(lease));
    h.advance(Duration::from_millis(200));
    h.renewed(lease);
    // It worked: back to TTL/3.
    h.advance_short(Duration::from_millis(9999), "a keepalive before TTL/3");
    h.advance(Duration::from_millis(1));
    h.renewed(lease);
    assert!(logs::logged(
        log::Level::Warn,
        LOG,
        &["keeping", "failing-keepalive", "alive"]
    ));
    assert!(logs::logged(
        log::Level::Warn,
        LOG,
        &["failing-keepalive", "no leader"]
    ));
    assert_eq!(h.etcd.count(Kind::Grant), 1, "errors are not a lost lease");
}

#[test]
fn deregister_deletes_the_key_revokes_the_lease_and_joins_the_thread() {
    let h = registrar(|b| b);
    let (_registration, lease) = h.register();
    h.advance(Duration::from_secs(1));
    h.renewed(lease);
    h.waiting();
    h.registrar.deregister().unwrap();
    assert_eq!(h.etcd.next_op(), Op::Delete(KEY.into()));
    assert_eq!(h.etcd.next_op(), Op::Revoke(lease));
    assert_eq!(h.etcd.get(KEY), None);
    assert_eq!(h.etcd.leases(), []);
    assert_eq!(h.registrar.lease(), 0);
    assert!(!h.registrar.keeper.status().1, "joined");
    // Nothing renews any more, and a second deregister does nothing.
    h.clock.advance(Duration::from_secs(3600));
    h.registrar.deregister().unwrap();
    assert_eq!(h.etcd.ops_so_far(), []);
    // Registering again takes a new lease and a new thread.
    let (_again, second) = h.register();
    assert_ne!(second, lease);
    assert!(h.keepalive_running());
}

#[test]
fn dropping_the_registration_deregisters() {
    let h = registrar(|b| b);
    let (registration, lease) = h.register();
    let again = h.registrar.register().unwrap(); // the same lease, still one thread
    assert_eq!(h.etcd.next_op(), Op::KeepAlive(lease));
    assert_eq!(
        h.etcd.next_op(),
        Op::Put {
            key: KEY.into(),
            lease
        }
    );
    drop(registration);
    assert_eq!(h.etcd.next_op(), Op::Delete(KEY.into()));
    assert_eq!(h.etcd.next_op(), Op::Revoke(lease));
    assert!(!h.keepalive_running());
    drop(again); // not registered any more: nothing to do
    assert_eq!(h.etcd.ops_so_far(), []);
    assert_eq!(h.etcd.get(KEY), None);
}

#[test]
fn errors_of_grant_put_and_delete_are_returned() {
    let h = registrar(|b| b);
    h.etcd
        .fail_next(Kind::Grant, http_error(HttpErrorKind::Connect));
    let err = h.registrar.register().unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(!h.keepalive_running());

    h.etcd.fail_next(
        Kind::Put,
        status_error(400, 3, "etcdserver: value is too large"),
    );
    let err = h.registrar.register().unwrap_err();
    assert_eq!(err.status(), Some(400), "{err}");
    assert!(!h.keepalive_running(), "no thread for a failed register");
    assert_eq!(h.etcd.get(KEY), None);
    let lease = h.registrar.lease();
    assert_ne!(lease, 0, "the lease granted before the put failed");

    // Deregister cleans up what the failed register left (the lease), and its own
    // errors are returned too, to be tried again.
    h.etcd
        .fail_next(Kind::Delete, http_error(HttpErrorKind::Timeout));
    let err = h.registrar.deregister().unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(h.etcd.leases(), [], "the revoke was tried all the same");
    h.registrar.deregister().unwrap();
    assert_eq!(h.registrar.lease(), 0);
    h.etcd
        .fail_next(Kind::Revoke, http_error(HttpErrorKind::Connect));
    h.registrar.deregister().unwrap(); // not registered: no call
    assert_eq!(h.etcd.count(Kind::Revoke), 2);

    // A registration whose deregister fails on drop: logged, not panicked.
    let registration = h.registrar.register().unwrap();
    h.etcd
        .fail_next(Kind::Delete, http_error(HttpErrorKind::Connect));
    drop(registration);
    assert!(!h.keepalive_running());
}

#[test]
fn invalid_settings_are_refused() {
    let clock = ManualClock::new();
    let (client, _etcd) = fake::fake(&clock);
    let b = || Registrar::builder(&client, PREFIX, ADDR);
    for (builder, field) in [
        (b().ttl(Duration::from_millis(999)), "ttl"),
        (b().ttl(Duration::ZERO), "ttl"),
        (b().ttl(Duration::MAX), "ttl"),
        (b().ttl(Duration::from_secs(9_000_000_001)), "ttl"),
        (b().id("a/b"), "id"),
        (b().id(""), "id"),
        (Registrar::builder(&client, "", ADDR), "prefix"),
    ] {
        match builder.build() {
            Err(Error::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    for addr in ["10.0.0.1", "not an address", "10.0.0.1:99999", ""] {
        let err = Registrar::builder(&client, PREFIX, addr)
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::InvalidInstance(_)), "{addr:?}: {err}");
    }
    // The bounds themselves are accepted.
    b().ttl(Duration::from_secs(1)).build().unwrap();
    b().ttl(MAX_TTL).build().unwrap();
}

#[test]
fn a_key_deleted_while_its_lease_lives_is_put_back_after_the_next_keepalive() {
    logs::capture();
    let h = registrar(|b| b.id("deleted-key"));
    let key = format!("{PREFIX}deleted-key");
    let _registration = h.registrar.register().unwrap();
    h.etcd.next_op();
    let lease = h.registrar.lease();
    h.etcd.next_op();
    h.etcd.delete(&key); // an operator's `etcdctl del`: the lease lives on
    h.advance(Duration::from_secs(1));
    h.renewed(lease);
    assert_eq!(
        h.etcd.next_op(),
        Op::Put {
            key: key.clone(),
            lease
        }
    );
    assert_eq!(h.etcd.get(&key), Some((ADDR.into(), lease)));
    assert!(logs::logged(
        log::Level::Warn,
        LOG,
        &["deleted-key", "deleted or changed"]
    ));
}
