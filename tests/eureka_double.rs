//! The Eureka server double (`tests/support/eureka_double.rs`): its REST operations
//! over raw HTTP, then its faithfulness checked by two third-party clients,
//! eureka-js-client (JSON) and py-eureka-client (XML), driven as child processes
//! (`tests/support/eureka_clients.rs`). Under `CI=true` a missing client fails its
//! tests; locally they skip loudly.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::eureka_double::{Broken, EurekaDouble, xml_to_json};
use support::http::{HttpReply, http_request};

/// A registration body for `app`/`id` on port `port`.
fn instance(app: &str, id: &str, port: u16) -> Value {
    json!({"instance": {
        "instanceId": id, "hostName": "127.0.0.1", "app": app, "ipAddr": "127.0.0.1",
        "status": "UP", "port": {"$": port, "@enabled": "true"}, "vipAddress": app.to_lowercase(),
        "dataCenterInfo": {"@class": "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo", "name": "MyOwn"},
        "leaseInfo": {"renewalIntervalInSecs": 1, "durationInSecs": 2},
        "metadata": {"zone": "a<b&c"},
    }})
}

fn call(d: &EurekaDouble, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> HttpReply {
    let path = format!("{}{path}", d.prefix());
    http_request(d.port(), method, &path, headers, body).expect("the double answers")
}

fn register(d: &EurekaDouble, app: &str, body: &Value) -> HttpReply {
    let headers = [("Content-Type", "application/json")];
    call(d, "POST", &format!("/apps/{app}"), &headers, &body.to_string())
}

fn get_json(d: &EurekaDouble, path: &str) -> Value {
    let reply = call(d, "GET", path, &[("Accept", "application/json")], "");
    assert_eq!(reply.status, 200, "GET {path}: {reply:?}");
    serde_json::from_str(&reply.body).expect("JSON")
}

fn get_xml(d: &EurekaDouble, path: &str) -> Value {
    let reply = call(d, "GET", path, &[], "");
    assert_eq!(reply.status, 200, "GET {path}: {reply:?}");
    assert_eq!(reply.header("content-type"), Some("application/xml"));
    xml_to_json(&reply.body, &["application", "instance"]).expect("well-formed XML")
}

#[test]
fn raw_register_read_renew_cancel() {
    let d = EurekaDouble::start();
    assert_eq!(register(&d, "web", &instance("web", "w1", 8080)).status, 204);
    let all = get_json(&d, "/apps/");
    let apps = &all["applications"];
    assert_eq!(apps["apps__hashcode"], "UP_1_");
    let i = &apps["application"][0]["instance"][0];
    assert_eq!(apps["application"][0]["name"], "WEB");
    assert_eq!(i["app"], "WEB");
    assert_eq!(i["port"], json!({"$": 8080, "@enabled": "true"}));
    assert_eq!(i["overriddenstatus"], "UNKNOWN");
    assert_eq!(i["actionType"], "ADDED");
    assert_eq!(i["leaseInfo"]["durationInSecs"], 2);
    assert_eq!(call(&d, "PUT", "/apps/WEB/w1", &[], "").status, 200);
    assert_eq!(call(&d, "PUT", "/apps/web/nope", &[], "").status, 404);
    assert_eq!(d.instances("web")[0].renewals, 1);
    assert_eq!(call(&d, "GET", "/apps/WEB/w1", &[], "").status, 200);
    assert_eq!(call(&d, "GET", "/instances/w1", &[], "").status, 200);
    assert_eq!(call(&d, "GET", "/apps/NOPE", &[], "").status, 404);
    assert_eq!(call(&d, "DELETE", "/apps/web/w1", &[], "").status, 200);
    assert_eq!(call(&d, "DELETE", "/apps/web/w1", &[], "").status, 404);
    let delta = get_json(&d, "/apps/delta");
    let gone = &delta["applications"]["application"][0]["instance"][0];
    assert_eq!(gone["actionType"], "DELETED");
    assert_eq!(delta["applications"]["apps__hashcode"], "");
    let unknown = call(&d, "GET", "/nothing/here", &[], "");
    assert_eq!(unknown.status, 404);
    assert!(unknown.body.contains("<html"), "{unknown:?}");
}

#[test]
fn raw_json_and_xml_agree() {
    let d = EurekaDouble::start();
    register(&d, "web", &instance("web", "w1", 8080));
    register(&d, "web", &instance("web", "w2", 8081));
    register(&d, "db", &instance("db", "d1", 5432));
    call(&d, "PUT", "/apps/db/d1/status?value=OUT_OF_SERVICE", &[], "");
    for path in ["/apps", "/apps/delta", "/apps/WEB", "/apps/web/w2", "/vips/web"] {
        let (j, x) = (get_json(&d, path), get_xml(&d, path));
        let (j, x) = (strings(&j), strings(&x));
        assert_eq!(j, x, "{path}");
    }
    let x = get_xml(&d, "/apps");
    assert_eq!(x["applications"]["apps__hashcode"], "OUT_OF_SERVICE_1_UP_2_");
}

/// Every scalar as a string (XML has no numbers).
fn strings(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), strings(v))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(strings).collect()),
        Value::Number(n) => Value::String(n.to_string()),
        Value::Bool(b) => Value::String(b.to_string()),
        other => other.clone(),
    }
}

#[test]
fn raw_scripted_answers() {
    let d = EurekaDouble::start();
    d.script_reads(1, Broken::MalformedJson);
    d.script_reads(1, Broken::Html(503));
    d.script_reads(1, Broken::WrongShape);
    let a = call(&d, "GET", "/apps", &[("Accept", "application/json")], "");
    assert!(serde_json::from_str::<Value>(&a.body).is_err());
    let b = call(&d, "GET", "/apps", &[], "");
    assert_eq!(b.status, 503);
    let c = call(&d, "GET", "/apps", &[], "");
    assert!(serde_json::from_str::<Value>(&c.body).unwrap().get("applications").is_none());
    assert_eq!(call(&d, "GET", "/apps", &[], "").status, 200);
}

#[test]
fn raw_status_override_sticks_until_removed() {
    let d = EurekaDouble::start();
    register(&d, "web", &instance("web", "w1", 8080));
    let put = call(&d, "PUT", "/apps/web/w1/status?value=OUT_OF_SERVICE", &[], "");
    assert_eq!(put.status, 200);
    let w = &d.instances("web")[0];
    assert_eq!((w.status.as_str(), w.overridden.as_str()), ("OUT_OF_SERVICE", "OUT_OF_SERVICE"));
    // The instance registers again saying UP, and renews: the override stays.
    register(&d, "web", &instance("web", "w1", 8080));
    assert_eq!(call(&d, "PUT", "/apps/web/w1?status=UP", &[], "").status, 200);
    assert_eq!(d.instances("web")[0].status, "OUT_OF_SERVICE");
    let i = &get_json(&d, "/apps/web/w1")["instance"];
    assert_eq!((&i["status"], &i["overriddenstatus"]), (&json!("OUT_OF_SERVICE"), &json!("OUT_OF_SERVICE")));
    // An instance saying DOWN is believed over the override.
    let mut down = instance("web", "w1", 8080);
    down["instance"]["status"] = json!("DOWN");
    down["instance"]["lastDirtyTimestamp"] = json!(u64::MAX.to_string());
    register(&d, "web", &down);
    assert_eq!(d.instances("web")[0].status, "DOWN");
    register(&d, "web", &instance("web", "w2", 8081));
    // Removed without a value: UNKNOWN, and the next renewal asks for a registration.
    assert_eq!(call(&d, "PUT", "/apps/web/w2/status?value=OUT_OF_SERVICE", &[], "").status, 200);
    assert_eq!(call(&d, "DELETE", "/apps/web/w2/status", &[], "").status, 200);
    let w2 = &d.instances("web")[1];
    assert_eq!((w2.status.as_str(), w2.overridden.as_str()), ("UNKNOWN", "UNKNOWN"));
    assert_eq!(call(&d, "PUT", "/apps/web/w2", &[], "").status, 404);
    register(&d, "web", &instance("web", "w2", 8081));
    assert_eq!(d.instances("web")[1].status, "UP");
    // With a value, that value.
    call(&d, "PUT", "/apps/web/w2/status?value=OUT_OF_SERVICE", &[], "");
    assert_eq!(call(&d, "DELETE", "/apps/web/w2/status?value=UP", &[], "").status, 200);
    assert_eq!(d.instances("web")[1].status, "UP");
    assert_eq!(call(&d, "PUT", "/apps/web/nope/status?value=UP", &[], "").status, 404);
    assert_eq!(call(&d, "PUT", "/apps/web/w2/status?value=BOGUS", &[], "").status, 500);
    assert_eq!(get_json(&d, "/apps/delta")["applications"]["apps__hashcode"], "DOWN_1_UP_1_");
}

#[test]
fn raw_renew_with_a_newer_dirty_timestamp_answers_404() {
    let d = EurekaDouble::start();
    let mut body = instance("web", "w1", 8080);
    body["instance"]["lastDirtyTimestamp"] = json!("1000");
    register(&d, "web", &body);
    assert_eq!(call(&d, "PUT", "/apps/web/w1?status=UP&lastDirtyTimestamp=1000", &[], "").status, 200);
    assert_eq!(call(&d, "PUT", "/apps/web/w1?lastDirtyTimestamp=999", &[], "").status, 200);
    assert_eq!(call(&d, "PUT", "/apps/web/w1?lastDirtyTimestamp=1001", &[], "").status, 404);
    assert_eq!(call(&d, "PUT", "/apps/web/w1?lastDirtyTimestamp=x", &[], "").status, 500);
    // An older registration does not replace a newer one.
    body["instance"]["lastDirtyTimestamp"] = json!("999");
    body["instance"]["port"] = json!({"$": 1, "@enabled": "true"});
    register(&d, "web", &body);
    assert_eq!(d.instances("web")[0].port, 8080);
}

#[test]
fn raw_paths_cases_prefix_metadata_and_bad_bodies() {
    let d = EurekaDouble::config().prefix("/eureka/v2/").start();
    assert!(d.url().ends_with("/eureka/v2"), "{}", d.url());
    assert_eq!(register(&d, "Web", &instance("wEB", "w1", 8080)).status, 204);
    assert_eq!(call(&d, "GET", "/apps/web/", &[], "").status, 200);
    assert_eq!(call(&d, "GET", "/apps/WeB/w1/", &[], "").status, 200);
    let put = call(&d, "PUT", "/apps/web/w1/metadata?k=v%20w&zone=b", &[], "");
    assert_eq!(put.status, 200);
    let meta = &d.instances("web")[0].metadata;
    assert_eq!((meta["k"].as_str(), meta["zone"].as_str()), ("v w", "b"));
    let x = get_xml(&d, "/apps/web/w1");
    assert_eq!(x["instance"]["metadata"]["k"], "v w");
    assert_eq!(x["instance"]["dataCenterInfo"]["@class"], "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo");
    assert_eq!(call(&d, "GET", "/vips/web", &[], "").status, 200);
    assert_eq!(get_json(&d, "/svips/none")["applications"]["application"], json!([]));
    assert_eq!(call(&d, "GET", "/instances/none", &[], "").status, 404);
    assert_eq!(http_request(d.port(), "GET", "/eureka/apps", &[], "").unwrap().status, 404);
    let text = [("Content-Type", "text/plain")];
    assert_eq!(call(&d, "POST", "/apps/web", &text, "x").status, 415);
    let mismatched = register(&d, "db", &instance("web", "w9", 1));
    assert_eq!((mismatched.status, mismatched.body.as_str()), (400, "Mismatched appName, expecting DB but was WEB"));
    let mut no_dc = instance("web", "w9", 1);
    no_dc["instance"].as_object_mut().unwrap().remove("dataCenterInfo");
    assert_eq!(register(&d, "web", &no_dc).body, "Missing dataCenterInfo");
    let xml = r#"<?xml version="1.0"?><instance><instanceId>x1</instanceId><hostName>h</hostName>
        <app>WEB</app><ipAddr>10.0.0.1</ipAddr><status>UP</status><port enabled="true">81</port>
        <dataCenterInfo class="com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo"><name>MyOwn</name></dataCenterInfo>
        <leaseInfo><durationInSecs>5</durationInSecs></leaseInfo><metadata><a>1 &amp; 2</a></metadata></instance>"#;
    let xml_type = [("Content-Type", "application/xml")];
    assert_eq!(call(&d, "POST", "/apps/web", &xml_type, xml).status, 204);
    let x1 = d.instances("web").into_iter().find(|i| i.id == "x1").unwrap();
    assert_eq!((x1.port, x1.lease.as_secs(), x1.metadata["a"].as_str()), (81, 5, "1 & 2"));
}

#[test]
fn raw_stop_and_start_again_keep_the_port() {
    let d = EurekaDouble::start();
    register(&d, "web", &instance("web", "w1", 8080));
    d.stop();
    assert!(http_request(d.port(), "GET", "/eureka/apps", &[], "").is_err());
    d.start_again();
    assert_eq!(d.instances("web").len(), 1);
    assert_eq!(call(&d, "PUT", "/apps/web/w1", &[], "").status, 200);
    d.clear();
    assert_eq!(call(&d, "PUT", "/apps/web/w1", &[], "").status, 404);
}

#[test]
fn raw_leases_last_what_the_registration_says() {
    let d = EurekaDouble::config()
        .eviction_interval(Duration::from_millis(50))
        .start();
    let mut long = instance("web", "w1", 8080);
    long["instance"]["leaseInfo"]["durationInSecs"] = json!(60);
    register(&d, "web", &long);
    let started = Instant::now();
    register(&d, "web", &instance("web", "w2", 8081)); // a 2 s lease
    let left = d.wait_instances("web", "w2 evicted", |now| now.len() == 1);
    let took = started.elapsed();
    assert_eq!(left[0].id, "w1");
    assert!(took >= Duration::from_secs(2), "evicted after {took:?}");
    let delta = get_json(&d, "/apps/delta");
    let deleted: Vec<&Value> = delta["applications"]["application"][0]["instance"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["actionType"] == "DELETED")
        .collect();
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["instanceId"], "w2");
}
