//! The registrar and its heartbeat against a fake client.

use std::time::Duration;

use super::*;
use crate::consul::fake::{FakeClient, Op, Script, fake};

const ID: &str = "web-10.0.0.1-80";
const CHECK: &str = "service:web-10.0.0.1-80";

fn registrar(ttl: Duration) -> (Registrar, Script, FakeClient) {
    let (client, script) = fake();
    let r = Registrar::builder(&client, "web", "10.0.0.1", 80)
        .ttl(ttl)
        .build()
        .unwrap();
    (r, script, client)
}

#[test]
fn register_passes_the_ttl_check_once_then_the_heartbeat_keeps_passing() {
    let (r, script, _c) = registrar(Duration::from_secs(1));
    let _registration = r.register().unwrap();
    assert_eq!(script.next_op(), Op::Register(ID.into()));
    assert_eq!(
        script.next_op(),
        Op::Pass(CHECK.into()),
        "passed before register() returns"
    );
    assert!(r.heartbeat_running());
    // The heartbeat: TTL/3 apart.
    assert_eq!(script.next_op(), Op::Pass(CHECK.into()));
    assert_eq!(script.next_op(), Op::Pass(CHECK.into()));
}

#[test]
fn a_lost_registration_is_restored_by_the_heartbeat() {
    let (r, script, _c) = registrar(Duration::from_secs(1));
    let _registration = r.register().unwrap();
    script.next_op();
    script.next_op();
    script.lose_registrations(); // agent restarted with a fresh data dir
    assert!(!script.knows(ID));
    let ops: Vec<Op> = (0..4).map(|_| script.next_op()).collect();
    assert_eq!(
        ops,
        [
            Op::Pass(CHECK.into()), // fails: 500, the agent does not know the check
            Op::Lookup(ID.into()),  // 404: gone
            Op::Register(ID.into()),
            Op::Pass(CHECK.into()),
        ]
    );
    assert!(script.knows(ID));
}

#[test]
fn a_failing_agent_is_retried_without_registering_again() {
    let (r, script, _c) = registrar(Duration::from_secs(1));
    let _registration = r.register().unwrap();
    script.next_op();
    script.next_op();
    script.set_down(true);
    assert_eq!(script.next_op(), Op::Pass(CHECK.into()));
    assert_eq!(script.next_op(), Op::Lookup(ID.into()));
    script.set_down(false);
    assert_eq!(script.next_op(), Op::Pass(CHECK.into()));
}

#[test]
fn deregister_stops_and_joins_the_heartbeat_first() {
    let (r, script, _c) = registrar(Duration::from_secs(1));
    let _registration = r.register().unwrap();
    let _registration = r.register().unwrap(); // idempotent: still one heartbeat
    r.deregister().unwrap();
    assert!(!r.heartbeat_running());
    r.deregister().unwrap(); // idempotent: no second call
    let ops: Vec<Op> = script.ops.try_iter().collect();
    // The heartbeat was joined before the service was removed: nothing after it.
    assert_eq!(ops.last(), Some(&Op::Deregister(ID.into())), "{ops:?}");
    assert_eq!(
        ops.iter()
            .filter(|o| matches!(o, Op::Deregister(_)))
            .count(),
        1
    );
    assert!(!script.knows(ID));
}

#[test]
fn register_errors_are_returned_and_the_guard_owns_the_registration() {
    let (r, script, _c) = registrar(Duration::from_secs(1));
    script.set_down(true);
    assert!(r.register().is_err());
    assert!(!r.heartbeat_running());
    script.set_down(false);
    let registration = r.register().unwrap();
    drop(r);
    let ops: Vec<Op> = script.ops.try_iter().collect();
    assert!(
        !ops.contains(&Op::Deregister(ID.into())),
        "dropping the registrar leaves the registration to its guard: {ops:?}"
    );
    drop(registration);
    let ops: Vec<Op> = script.ops.try_iter().collect();
    assert_eq!(ops.last(), Some(&Op::Deregister(ID.into())), "{ops:?}");
}

#[test]
fn an_agent_run_check_needs_no_heartbeat() {
    let (client, script) = fake();
    let r = Registrar::builder(&client, "web", "10.0.0.1", 80)
        .http_check("http://10.0.0.1:80/health", Duration::from_secs(5))
        .build()
        .unwrap();
    let _registration = r.register().unwrap();
    assert!(!r.heartbeat_running());
    assert_eq!(script.next_op(), Op::Register(ID.into()));
    assert!(script.ops.try_recv().is_err(), "no pass for an HTTP check");
}

#[test]
fn the_registration_payload_is_what_consul_expects() {
    let (client, _script) = fake();
    let r = Registrar::builder(&client, "web", "10.0.0.1", 80)
        .id("web-1")
        .tag("v2")
        .meta("version", "2.1")
        .weights(5, 1)
        .ttl(Duration::from_secs(9))
        .deregister_critical_service_after(Duration::from_secs(90))
        .build()
        .unwrap();
    let json = serde_json::to_value(&r.keeper.shared().registration).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "ID": "web-1", "Name": "web", "Address": "10.0.0.1", "Port": 80,
            "Tags": ["v2"], "Meta": {"version": "2.1"},
            "Weights": {"Passing": 5, "Warning": 1},
            "Check": {"CheckID": "service:web-1", "Name": "web health", "TTL": "9000ms",
                      "DeregisterCriticalServiceAfter": "90000ms"}
        })
    );
    let tcp = Registrar::builder(&client, "web", "10.0.0.1", 80)
        .tcp_check("10.0.0.1:80", Duration::from_secs(2))
        .build()
        .unwrap();
    let check = serde_json::to_value(&tcp.keeper.shared().registration.check).unwrap();
    assert_eq!(check["TCP"], "10.0.0.1:80");
    assert_eq!(check["Interval"], "2000ms");
    assert!(check.get("TTL").is_none());
}

#[test]
fn invalid_settings_are_refused() {
    let (client, _script) = fake();
    let b = || Registrar::builder(&client, "web", "10.0.0.1", 80);
    for builder in [
        Registrar::builder(&client, "", "10.0.0.1", 80),
        b().ttl(Duration::from_millis(500)),
        b().ttl(crate::clock::FOREVER),
        b().http_check("http://h/", crate::clock::FOREVER),
        b().http_check("", Duration::from_secs(1)),
        b().tcp_check("h:1", Duration::ZERO),
        b().no_check()
            .deregister_critical_service_after(Duration::from_secs(60)),
    ] {
        assert!(builder.build().unwrap_err().is_invalid_input());
    }
}
