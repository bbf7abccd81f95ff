//! Shared Consul watches against a real agent with its default limit of 200 HTTP
//! connections per client address (`limits.http_max_conns_per_client`).
//!
//! Consul keeps a blocking query open until its `wait` ends even after the client has
//! gone, so instancers that each abandoned a query on stop would get every request from
//! this host refused after about 200 stops within one `wait`. Its own test binary and
//! agent: a failure here must not take other tests' agent down with it.
#![cfg(feature = "consul")]

mod support;

use support::consul::{ConsulAgent, shared};
use support::events::{next_addrs, subscribe};
use waypost::consul::{HttpClient, Instancer};

fn client(base: &str) -> HttpClient {
    HttpClient::builder().address(base).build().unwrap()
}

fn register(agent: &ConsulAgent, service: &str, port: u16) {
    let body = format!(
        r#"{{"ID":"{service}-{port}","Name":"{service}","Address":"127.0.0.1","Port":{port}}}"#
    );
    let reply = agent.put("/v1/agent/service/register", &body).unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
}

/// Established connections on the agent's side of its HTTP port, from /proc/net/tcp.
fn agent_connections(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let local = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() > 3 && fields[1].ends_with(&local) && fields[3] == "01"
        })
        .count()
}

#[test]
fn three_hundred_stops_within_one_wait_leave_the_agent_serving() {
    let Some(agent) = shared() else { return };
    register(&agent, "cycled", 7001);
    let client = client(&agent.http_base());
    for cycle in 0..300 {
        let instancer = Instancer::builder(&client, "cycled").build().unwrap();
        assert_eq!(
            next_addrs(&subscribe(&instancer)),
            ["127.0.0.1:7001"],
            "cycle {cycle}"
        );
        instancer.stop();
    }
    let connections = agent_connections(agent.http_port());
    println!("agent connections after 300 start/stop cycles: {connections}");

    // A plain request and a new instancer, on a client of their own, still work.
    let reply = agent.get("/v1/status/leader").unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    let fresh = self::client(&agent.http_base());
    let instancer = Instancer::builder(&fresh, "cycled").build().unwrap();
    assert_eq!(next_addrs(&subscribe(&instancer)), ["127.0.0.1:7001"]);
    assert!(
        connections < 50,
        "{connections} connections on the agent after 300 cycles"
    );
}

#[test]
fn a_thousand_instancers_of_ten_services_each_get_their_set() {
    let Some(agent) = shared() else { return };
    for s in 0..10u16 {
        register(&agent, &format!("many-{s}"), 8000 + s);
    }
    let client = client(&agent.http_base());
    let mut watching = Vec::new();
    for k in 0..1000u16 {
        let s = k % 10;
        let instancer = Instancer::builder(&client, format!("many-{s}"))
            .build()
            .unwrap();
        let rx = subscribe(&instancer);
        watching.push((s, instancer, rx));
    }
    for (s, _instancer, rx) in &watching {
        assert_eq!(
            next_addrs(rx),
            [format!("127.0.0.1:{}", 8000 + s)],
            "many-{s}"
        );
    }
    let connections = agent_connections(agent.http_port());
    println!("agent connections with 1,000 instancers of 10 services: {connections}");
    assert!(
        connections <= 40,
        "{connections} connections for 10 watches"
    );

    // A change reaches every one of them.
    register(&agent, "many-3", 9003);
    for (s, _instancer, rx) in watching.iter().filter(|(s, ..)| *s == 3) {
        assert_eq!(next_addrs(rx).len(), 2, "many-{s}");
    }
}

#[test]
fn instancers_sharing_a_watch_keep_their_own_subscribers() {
    let Some(agent) = shared() else { return };
    register(&agent, "pair", 7101);
    let client = client(&agent.http_base());
    let first = Instancer::builder(&client, "pair").build().unwrap();
    let second = Instancer::builder(&client.clone(), "pair").build().unwrap();
    let (rx1, rx2) = (subscribe(&first), subscribe(&second));
    assert_eq!(next_addrs(&rx1), ["127.0.0.1:7101"]);
    assert_eq!(next_addrs(&rx2), ["127.0.0.1:7101"]);

    first.stop();
    register(&agent, "pair", 7102);
    let want = ["127.0.0.1:7101", "127.0.0.1:7102"];
    assert_eq!(next_addrs(&rx2), want, "the other instancer goes on");
    // Were the stopped one still attached, its copy would have come first.
    assert!(
        rx1.try_recv().is_err(),
        "a stopped instancer's subscribers get nothing"
    );
}
