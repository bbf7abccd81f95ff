//! waypost's ZooKeeper backend with the real clients of the Java world: zkCli
//! (`ZooKeeperMain`) and Curator's service discovery, on a real ZooKeeper 3.8.0; and
//! digest ACLs set by zkCli.

#![cfg(feature = "zk")]

mod support;

use support::curator::{CuratorJson, require_curator};
use support::events::{is_set, subscribe, wait_event};
use support::unique;
use support::zookeeper::{ZkCli, shared};
use waypost::zk::{Client, Instancer, Layout, Registrar};
use waypost::{Error, ZkErrorKind};

#[test]
fn zkcli_and_waypost_see_each_others_nodes() {
    let Some(zk) = shared() else {
        return;
    };
    let path = format!("/{}", unique("zkcli"));
    zk.create(&path, "");
    zk.create(&format!("{path}/java"), "10.1.0.1:80");
    let client = Client::builder(&zk.connect_string()).build().unwrap();
    let instancer = Instancer::builder(&client, path.as_str()).build().unwrap();
    let rx = subscribe(&instancer);
    wait_event(&rx, "zkCli's node", is_set(&["10.1.0.1:80"]));
    let registrar = Registrar::new(&client, &path, "rust", "10.1.0.2:80").unwrap();
    let _registration = registrar.register().unwrap();
    wait_event(&rx, "both", is_set(&["10.1.0.1:80", "10.1.0.2:80"]));
    let mut listed = zk.ls(&path);
    listed.sort();
    assert_eq!(listed, ["java", "rust"], "zkCli lists waypost's node");
    assert_eq!(
        zk.get(&format!("{path}/rust")).as_deref(),
        Some("10.1.0.2:80")
    );
}

#[test]
fn curator_registrations_are_found_and_disabled_ones_left_out() {
    let Some(zk) = shared() else {
        return;
    };
    let Some(curator) = require_curator() else {
        return;
    };
    let base = format!("/{}", unique("curator"));
    let connect = zk.connect_string();
    let _a = curator.register(&connect, &base, "web", "a1", "10.2.0.1", 8080);
    let _b = curator.register_json(
        &connect,
        &base,
        "web",
        "b1",
        "10.2.0.2",
        8081,
        CuratorJson::Enabled,
    );
    let _c = curator.register_json(
        &connect,
        &base,
        "web",
        "c1",
        "10.2.0.3",
        8082,
        CuratorJson::Disabled,
    );
    let client = Client::builder(&connect).build().unwrap();
    let instancer = Instancer::builder(&client, format!("{base}/web"))
        .layout(Layout::Curator)
        .build()
        .unwrap();
    let rx = subscribe(&instancer);
    let event = wait_event(
        &rx,
        "Curator's enabled instances",
        is_set(&["10.2.0.1:8080", "10.2.0.2:8081"]),
    );
    let waypost::Event::Instances(set) = event else {
        unreachable!()
    };
    let ids: Vec<_> = set
        .iter()
        .filter_map(|i| i.metadata()?.get("id").map(str::to_owned))
        .collect();
    assert_eq!(ids, ["a1", "b1"]);
    // What Curator's ServiceProvider lists agrees.
    let provider = curator.provider(&connect, &base, "web");
    let addrs: Vec<_> = provider
        .iter()
        .map(|i| format!("{}:{}", i.address, i.port))
        .collect();
    assert_eq!(addrs, ["10.2.0.1:8080", "10.2.0.2:8081"]);
}

#[test]
fn digest_acls_the_right_credentials_read_and_wrong_ones_get_no_auth() {
    let Some(zk) = shared() else {
        return;
    };
    let path = format!("/{}", unique("acl"));
    zk.create(&path, "");
    zk.create(&format!("{path}/secret"), "10.3.0.1:80");
    zk.set_acl_digest(&format!("{path}/secret"), "app", "apppw");
    let right = Client::builder(&zk.connect_string())
        .digest("app", "apppw")
        .build()
        .unwrap();
    let (data, _) = right.get_data(&format!("{path}/secret")).unwrap();
    assert_eq!(data, b"10.3.0.1:80");
    // addauth never fails: a wrong password just matches nothing.
    let wrong = Client::builder(&zk.connect_string())
        .digest("app", "wrong")
        .build()
        .unwrap();
    let err = wrong.get_data(&format!("{path}/secret")).unwrap_err();
    let Error::ZooKeeper(zk_err) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        (zk_err.kind, zk_err.code),
        (ZkErrorKind::NoAuth, Some(-102))
    );
    assert!(
        !format!("{err} {err:?} {wrong:?}").contains("wrong"),
        "no credential shown"
    );
}

#[test]
fn a_curator_layout_registration_is_found_by_curator() {
    let Some(zk) = shared() else {
        return;
    };
    let Some(curator) = require_curator() else {
        return;
    };
    let base = format!("/{}", unique("curator-rust"));
    let connect = zk.connect_string();
    let client = Client::builder(&connect).build().unwrap();
    let registrar = Registrar::builder(&client, format!("{base}/web"), "10.5.0.1:9090")
        .name("rust-1")
        .layout(Layout::Curator)
        .build()
        .unwrap();
    let _registration = registrar.register().unwrap();
    let found = curator.query(&connect, &base, "web");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (
            found[0].id.as_str(),
            found[0].address.as_str(),
            found[0].port,
            found[0].enabled
        ),
        ("rust-1", "10.5.0.1", 9090, true)
    );
}
