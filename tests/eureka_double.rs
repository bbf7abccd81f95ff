//! The Eureka server double (`tests/support/eureka_double.rs`): its REST operations
//! over raw HTTP, then its faithfulness checked by two third-party clients,
//! eureka-js-client (JSON) and py-eureka-client (XML), driven as child processes
//! (`tests/support/eureka_clients.rs`). Under `CI=true` a missing client fails its
//! tests; locally they skip loudly.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::eureka_clients::{ClientConfig, EurekaClient, require_ejs, require_py};
use support::eureka_double::{Broken, EurekaDouble, Logged, xml_to_json};
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

fn call(
    d: &EurekaDouble,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> HttpReply {
    let path = format!("{}{path}", d.prefix());
    http_request(d.port(), method, &path, headers, body).expect("the double answers")
}

fn register(d: &EurekaDouble, app: &str, body: &Value) -> HttpReply {
    let headers = [("Content-Type", "application/json")];
    call(
        d,
        "POST",
        &format!("/apps/{app}"),
        &headers,
        &body.to_string(),
    )
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
    assert_eq!(
        register(&d, "web", &instance("web", "w1", 8080)).status,
        204
    );
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
    call(
        &d,
        "PUT",
        "/apps/db/d1/status?value=OUT_OF_SERVICE",
        &[],
        "",
    );
    for path in [
        "/apps",
        "/apps/delta",
        "/apps/WEB",
        "/apps/web/w2",
        "/vips/web",
    ] {
        let (j, x) = (get_json(&d, path), get_xml(&d, path));
        let (j, x) = (strings(&j), strings(&x));
        assert_eq!(j, x, "{path}");
    }
    let x = get_xml(&d, "/apps");
    assert_eq!(
        x["applications"]["apps__hashcode"],
        "OUT_OF_SERVICE_1_UP_2_"
    );
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
    assert!(
        serde_json::from_str::<Value>(&c.body)
            .unwrap()
            .get("applications")
            .is_none()
    );
    assert_eq!(call(&d, "GET", "/apps", &[], "").status, 200);
    d.script_reads(1, Broken::Close);
    assert!(http_request(d.port(), "GET", "/eureka/apps", &[], "").is_err());
    d.script_writes(1, Broken::Html(500));
    assert_eq!(register(&d, "web", &instance("web", "w1", 1)).status, 500);
    assert!(
        d.instances("web").is_empty(),
        "a scripted write changes nothing"
    );
    assert_eq!(register(&d, "web", &instance("web", "w1", 1)).status, 204);
    let statuses: Vec<u16> = d.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 503, 200, 200, 0, 500, 204]);
}

#[test]
fn raw_status_override_sticks_until_removed() {
    let d = EurekaDouble::start();
    register(&d, "web", &instance("web", "w1", 8080));
    let put = call(
        &d,
        "PUT",
        "/apps/web/w1/status?value=OUT_OF_SERVICE",
        &[],
        "",
    );
    assert_eq!(put.status, 200);
    let w = &d.instances("web")[0];
    assert_eq!(
        (w.status.as_str(), w.overridden.as_str()),
        ("OUT_OF_SERVICE", "OUT_OF_SERVICE")
    );
    // The instance registers again saying UP, and renews: the override stays.
    register(&d, "web", &instance("web", "w1", 8080));
    assert_eq!(
        call(&d, "PUT", "/apps/web/w1?status=UP", &[], "").status,
        200
    );
    assert_eq!(d.instances("web")[0].status, "OUT_OF_SERVICE");
    let i = &get_json(&d, "/apps/web/w1")["instance"];
    assert_eq!(
        (&i["status"], &i["overriddenstatus"]),
        (&json!("OUT_OF_SERVICE"), &json!("OUT_OF_SERVICE"))
    );
    // An instance saying DOWN is believed over the override.
    let mut down = instance("web", "w1", 8080);
    down["instance"]["status"] = json!("DOWN");
    down["instance"]["lastDirtyTimestamp"] = json!(u64::MAX.to_string());
    register(&d, "web", &down);
    assert_eq!(d.instances("web")[0].status, "DOWN");
    register(&d, "web", &instance("web", "w2", 8081));
    // Removed without a value: UNKNOWN, and the next renewal asks for a registration.
    assert_eq!(
        call(
            &d,
            "PUT",
            "/apps/web/w2/status?value=OUT_OF_SERVICE",
            &[],
            ""
        )
        .status,
        200
    );
    assert_eq!(
        call(&d, "DELETE", "/apps/web/w2/status", &[], "").status,
        200
    );
    let w2 = &d.instances("web")[1];
    assert_eq!(
        (w2.status.as_str(), w2.overridden.as_str()),
        ("UNKNOWN", "UNKNOWN")
    );
    assert_eq!(call(&d, "PUT", "/apps/web/w2", &[], "").status, 404);
    register(&d, "web", &instance("web", "w2", 8081));
    assert_eq!(d.instances("web")[1].status, "UP");
    // With a value, that value.
    call(
        &d,
        "PUT",
        "/apps/web/w2/status?value=OUT_OF_SERVICE",
        &[],
        "",
    );
    assert_eq!(
        call(&d, "DELETE", "/apps/web/w2/status?value=UP", &[], "").status,
        200
    );
    assert_eq!(d.instances("web")[1].status, "UP");
    assert_eq!(
        call(&d, "PUT", "/apps/web/nope/status?value=UP", &[], "").status,
        404
    );
    assert_eq!(
        call(&d, "PUT", "/apps/web/w2/status?value=BOGUS", &[], "").status,
        500
    );
    assert_eq!(
        get_json(&d, "/apps/delta")["applications"]["apps__hashcode"],
        "DOWN_1_UP_1_"
    );
}

#[test]
fn raw_renew_with_a_newer_dirty_timestamp_answers_404() {
    let d = EurekaDouble::start();
    let mut body = instance("web", "w1", 8080);
    body["instance"]["lastDirtyTimestamp"] = json!("1000");
    register(&d, "web", &body);
    assert_eq!(
        call(
            &d,
            "PUT",
            "/apps/web/w1?status=UP&lastDirtyTimestamp=1000",
            &[],
            ""
        )
        .status,
        200
    );
    assert_eq!(
        call(&d, "PUT", "/apps/web/w1?lastDirtyTimestamp=999", &[], "").status,
        200
    );
    assert_eq!(
        call(&d, "PUT", "/apps/web/w1?lastDirtyTimestamp=1001", &[], "").status,
        404
    );
    assert_eq!(
        call(&d, "PUT", "/apps/web/w1?lastDirtyTimestamp=x", &[], "").status,
        500
    );
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
    assert_eq!(
        register(&d, "Web", &instance("wEB", "w1", 8080)).status,
        204
    );
    assert_eq!(call(&d, "GET", "/apps/web/", &[], "").status, 200);
    assert_eq!(call(&d, "GET", "/apps/WeB/w1/", &[], "").status, 200);
    let put = call(&d, "PUT", "/apps/web/w1/metadata?k=v%20w&zone=b", &[], "");
    assert_eq!(put.status, 200);
    let meta = &d.instances("web")[0].metadata;
    assert_eq!((meta["k"].as_str(), meta["zone"].as_str()), ("v w", "b"));
    let x = get_xml(&d, "/apps/web/w1");
    assert_eq!(x["instance"]["metadata"]["k"], "v w");
    assert_eq!(
        x["instance"]["dataCenterInfo"]["@class"],
        "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo"
    );
    assert_eq!(call(&d, "GET", "/vips/web", &[], "").status, 200);
    assert_eq!(
        get_json(&d, "/svips/none")["applications"]["application"],
        json!([])
    );
    assert_eq!(call(&d, "GET", "/instances/none", &[], "").status, 404);
    assert_eq!(
        http_request(d.port(), "GET", "/eureka/apps", &[], "")
            .unwrap()
            .status,
        404
    );
    let text = [("Content-Type", "text/plain")];
    assert_eq!(call(&d, "POST", "/apps/web", &text, "x").status, 415);
    let mismatched = register(&d, "db", &instance("web", "w9", 1));
    assert_eq!(
        (mismatched.status, mismatched.body.as_str()),
        (400, "Mismatched appName, expecting DB but was WEB")
    );
    let mut no_dc = instance("web", "w9", 1);
    no_dc["instance"]
        .as_object_mut()
        .unwrap()
        .remove("dataCenterInfo");
    assert_eq!(register(&d, "web", &no_dc).body, "Missing dataCenterInfo");
    let xml = r#"<?xml version="1.0"?><instance><instanceId>x1</instanceId><hostName>h</hostName>
        <app>WEB</app><ipAddr>10.0.0.1</ipAddr><status>UP</status><port enabled="true">81</port>
        <dataCenterInfo class="com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo"><name>MyOwn</name></dataCenterInfo>
        <leaseInfo><durationInSecs>5</durationInSecs></leaseInfo><metadata><a>1 &amp; 2</a></metadata></instance>"#;
    let xml_type = [("Content-Type", "application/xml")];
    assert_eq!(call(&d, "POST", "/apps/web", &xml_type, xml).status, 204);
    let x1 = d
        .instances("web")
        .into_iter()
        .find(|i| i.id == "x1")
        .unwrap();
    assert_eq!(
        (x1.port, x1.lease.as_secs(), x1.metadata["a"].as_str()),
        (81, 5, "1 & 2")
    );
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

// ---- Checked by the third-party clients ----------------------------------------------

/// A double whose expired leases go within 100 ms.
fn double() -> EurekaDouble {
    EurekaDouble::config()
        .eviction_interval(Duration::from_millis(100))
        .start()
}

fn ejs_config(d: &EurekaDouble, id: &str) -> ClientConfig {
    ClientConfig::new(&d.url(), "demo-svc", id, 8080)
}

fn py_config(d: &EurekaDouble, id: &str) -> ClientConfig {
    ClientConfig::new(&d.url(), "py-svc", id, 9090)
}

fn is(method: &'static str, path: String) -> impl Fn(&Logged) -> bool {
    move |r| r.method == method && r.path == path
}

#[test]
fn ejs_registers_heartbeats_and_sees_itself_and_another() {
    let Some(ejs) = require_ejs() else { return };
    let d = double();
    register(&d, "other-svc", &instance("other-svc", "o1", 9000));
    let mut c = EurekaClient::spawn(&ejs, &ejs_config(&d, "demo-1"));
    let registered = c.wait_event("registered");
    let post = d.wait_request(
        "register",
        is("POST", d.prefix().to_owned() + "/apps/demo-svc"),
    );
    assert_eq!(post.status, 204);
    assert_eq!(post.header("accept"), Some("application/json"));
    let body: Value = serde_json::from_slice(&post.body).unwrap();
    assert_eq!(
        body["instance"]["port"],
        json!({"$": 8080, "@enabled": true})
    );
    let heartbeat = c.wait_event("heartbeat");
    let put = d.wait_request(
        "renew",
        is("PUT", d.prefix().to_owned() + "/apps/demo-svc/demo-1"),
    );
    assert_eq!(put.status, 200);
    let both = c.wait("a fetch with both", |e| {
        e.name() == "fetched" && e.sees("demo-1") && e.sees("o1")
    });
    let get = d.wait_request("full fetch", is("GET", d.prefix().to_owned() + "/apps/"));
    assert_eq!(get.status, 200);
    assert_eq!(d.instances("DEMO-SVC")[0].app, "DEMO-SVC");
    let lookup = c.lookup("other-svc");
    assert_eq!(
        lookup.instances(),
        [("OTHER-SVC".into(), "o1".into(), "UP".into())]
    );
    eprintln!(
        "timing ejs: registered {:?}, first heartbeat {:?}, sees both {:?} after spawn",
        registered.at, heartbeat.at, both.at
    );
}

#[test]
fn ejs_registers_again_when_a_renewal_answers_404() {
    let Some(ejs) = require_ejs() else { return };
    let d = double();
    let mut c = EurekaClient::spawn(&ejs, &ejs_config(&d, "demo-1"));
    c.wait_event("heartbeat");
    let mark = d.mark();
    assert!(d.forget("demo-svc", "demo-1"));
    let renew = d.prefix().to_owned() + "/apps/demo-svc/demo-1";
    let lost = d.wait_request_from(mark, "a renewal of the lost instance", |r| {
        r.method == "PUT" && r.path == renew && r.status == 404
    });
    let post = d.prefix().to_owned() + "/apps/demo-svc";
    let again = d.wait_request_from(mark, "a registration after the 404", |r| {
        r.method == "POST" && r.path == post && r.at > lost.at
    });
    assert_eq!(again.status, 204);
    d.wait_instances("demo-svc", "registered again", |now| now.len() == 1);
    eprintln!(
        "timing ejs: 404 renew to registered again {:?}",
        again.at - lost.at
    );
}

#[test]
fn ejs_stop_deletes_its_instance_under_the_netflix_prefix() {
    let Some(ejs) = require_ejs() else { return };
    let d = EurekaDouble::config().prefix("/eureka/v2").start();
    let mut c = EurekaClient::spawn(&ejs, &ejs_config(&d, "demo-1"));
    c.wait_event("registered");
    d.wait_instances("demo-svc", "registered", |now| now.len() == 1);
    let mark = d.mark();
    let took = c.stop();
    let delete = d.wait_request_from(mark, "the cancel", |r| r.method == "DELETE");
    assert_eq!(
        (delete.path.as_str(), delete.status),
        ("/eureka/v2/apps/demo-svc/demo-1", 200)
    );
    assert!(d.instances("demo-svc").is_empty());
    eprintln!("timing ejs: stop to exit {took:?}");
}

#[test]
fn ejs_deltas_follow_changes() {
    let Some(ejs) = require_ejs() else { return };
    let d = double();
    let mut config = ejs_config(&d, "demo-1");
    config.delta = true;
    let mut c = EurekaClient::spawn(&ejs, &config);
    c.wait("itself", |e| e.name() == "fetched" && e.sees("demo-1"));
    register(&d, "other-svc", &instance("other-svc", "o1", 9000));
    c.wait("o1 through a delta", |e| {
        e.name() == "fetched" && e.sees("o1")
    });
    call(&d, "DELETE", "/apps/other-svc/o1", &[], "");
    c.wait("o1 gone through a delta", |e| {
        e.name() == "fetched" && !e.sees("o1") && e.sees("demo-1")
    });
    let full = d
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/apps/"))
        .count();
    let deltas = d
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/apps/delta"))
        .count();
    assert_eq!(full, 1, "{:#?}", d.summary());
    assert!(deltas >= 2, "{:#?}", d.summary());
}

#[test]
fn ejs_reports_scripted_broken_reads_and_recovers() {
    let Some(ejs) = require_ejs() else { return };
    let d = double();
    let mut c = EurekaClient::spawn(&ejs, &ejs_config(&d, "demo-1"));
    c.wait("itself", |e| e.name() == "fetched" && e.sees("demo-1"));
    d.script_reads(1, Broken::MalformedJson);
    d.script_reads(1, Broken::Html(500));
    d.script_reads(1, Broken::WrongShape);
    for broken in ["malformed JSON", "an HTML 500", "a wrong shape"] {
        let error = c.wait(broken, |e| {
            e.name() == "error" && e.value["what"] == "fetch"
        });
        eprintln!("ejs on {broken}: {}", error.value["message"]);
    }
    c.wait("a good fetch again", |e| {
        e.name() == "fetched" && e.sees("demo-1")
    });
}

#[test]
fn ejs_registers_again_with_a_restarted_double_on_the_same_port() {
    let Some(ejs) = require_ejs() else { return };
    let d = double();
    let mut c = EurekaClient::spawn(&ejs, &ejs_config(&d, "demo-1"));
    c.wait_event("heartbeat");
    d.stop();
    c.wait("a failed heartbeat", |e| {
        e.name() == "error" && e.value["what"] == "error"
    });
    d.clear();
    let mark = d.mark();
    d.start_again();
    let post = d.wait_request_from(mark, "a registration", |r| r.method == "POST");
    assert_eq!(post.status, 204);
    let renew = d.requests()[mark..]
        .iter()
        .find(|r| r.method == "PUT")
        .cloned();
    assert_eq!(renew.map(|r| r.status), Some(404), "{:#?}", d.summary());
    c.wait_event("heartbeat");
}

#[test]
fn py_registers_upper_cased_reads_xml_and_follows_deltas() {
    let Some(py) = require_py() else { return };
    let d = double();
    // py-eureka-client drops a delta's instance of an app it does not hold yet (its
    // `get_application` never answers None), finds its hash wrong and fetches all:
    // so OTHER-SVC is there before it starts, and the deltas below change known apps.
    register(&d, "other-svc", &instance("other-svc", "o0", 9000));
    let mark = d.mark();
    let mut c = EurekaClient::spawn(&py, &py_config(&d, "py-1"));
    let registered = c.wait_event("registered");
    let post = d.wait_request_from(mark, "register", |r| r.method == "POST");
    assert_eq!(
        (post.path.as_str(), post.status),
        ("/eureka/apps/PY-SVC", 204)
    );
    let full = d.wait_request_from(mark, "the full fetch", |r| r.method == "GET");
    assert_eq!(
        (full.path.as_str(), full.header("accept")),
        ("/eureka/apps/", None)
    );
    c.wait("itself and o0", |e| {
        e.name() == "fetched" && e.sees("py-1") && e.sees("o0")
    });
    let first_delta = c.wait("a delta round", |e| {
        e.name() == "fetched" && e.value["kind"] == "delta"
    });
    register(&d, "other-svc", &instance("other-svc", "o1", 9000));
    let seen = c.wait("o1", |e| e.name() == "fetched" && e.sees("o1"));
    call(
        &d,
        "PUT",
        "/apps/other-svc/o1/status?value=OUT_OF_SERVICE",
        &[],
        "",
    );
    c.wait("o1 out of service", |e| {
        e.name() == "fetched"
            && e.instances()
                .iter()
                .any(|(_, id, s)| id == "o1" && s == "OUT_OF_SERVICE")
    });
    call(&d, "DELETE", "/apps/other-svc/o1", &[], "");
    c.wait("o1 gone", |e| {
        e.name() == "fetched" && e.value["kind"] == "delta" && !e.sees("o1")
    });
    let fulls = d
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path == "/eureka/apps/")
        .count();
    let deltas = d
        .requests()
        .iter()
        .filter(|r| r.path == "/eureka/apps/delta")
        .count();
    assert_eq!(
        fulls,
        1,
        "the hashcode matched: no full fetch after a delta; {:#?}",
        d.summary()
    );
    assert!(deltas >= 3, "{:#?}", d.summary());
    eprintln!(
        "timing py: registered {:?}, first delta {:?}, o1 seen {:?} after spawn",
        registered.at, first_delta.at, seen.at
    );
}

#[test]
fn py_stop_sends_down_then_delete() {
    let Some(py) = require_py() else { return };
    let d = double();
    let mut c = EurekaClient::spawn(&py, &py_config(&d, "py-1"));
    c.wait_event("started");
    let mark = d.mark();
    let took = c.stop();
    let writes: Vec<Logged> = d.requests()[mark..]
        .iter()
        .filter(|r| r.method != "GET" && r.method != "PUT")
        .cloned()
        .collect();
    let down: Value = serde_json::from_slice(&writes[0].body).unwrap();
    assert_eq!((writes[0].method.as_str(), writes[0].status), ("POST", 204));
    assert_eq!(down["instance"]["status"], "DOWN");
    assert_eq!(
        (writes[1].method.as_str(), writes[1].status),
        ("DELETE", 200)
    );
    assert!(d.instances("py-svc").is_empty());
    eprintln!("timing py: stop to exit {took:?}");
}

#[test]
fn lease_expiry_evicts_a_killed_client() {
    let Some(py) = require_py() else { return };
    let d = double();
    let mut config = py_config(&d, "py-1");
    config.lease_secs = 2;
    let mut c = EurekaClient::spawn(&py, &config);
    c.wait_event("heartbeat");
    assert_eq!(d.instances("py-svc")[0].lease, Duration::from_secs(2));
    c.kill();
    let killed = Instant::now();
    d.wait_instances("py-svc", "evicted", |now| now.is_empty());
    let took = killed.elapsed();
    assert!(
        took >= Duration::from_secs(1),
        "evicted {took:?} after the kill"
    );
    let delta = get_json(&d, "/apps/delta");
    let i = &delta["applications"]["application"][0]["instance"][0];
    assert_eq!(
        (&i["instanceId"], &i["actionType"]),
        (&json!("py-1"), &json!("DELETED"))
    );
    eprintln!(
        "timing: kill to eviction {took:?} (lease 2 s, renewals every 1 s, eviction every 100 ms)"
    );
}

#[test]
fn each_client_sees_the_other_and_an_override_hides_py_from_ejs() {
    let (Some(ejs), Some(py)) = (require_ejs(), require_py()) else {
        return;
    };
    let d = double();
    let mut p = EurekaClient::spawn(&py, &py_config(&d, "py-1"));
    let mut e = EurekaClient::spawn(&ejs, &ejs_config(&d, "demo-1"));
    let from_ejs = e.wait("py-1 from ejs", |ev| {
        ev.name() == "fetched" && ev.sees("py-1") && ev.sees("demo-1")
    });
    let from_py = p.wait("demo-1 from py", |ev| {
        ev.name() == "fetched" && ev.sees("demo-1")
    });
    // JSON (ejs) and XML (py) give the same registry.
    let sorted = |mut v: Vec<(String, String, String)>| {
        v.sort();
        v
    };
    assert_eq!(sorted(from_ejs.instances()), sorted(from_py.instances()));
    p.send("status OUT_OF_SERVICE");
    p.wait_event("status");
    let now = d.wait_instances("py-svc", "out of service", |now| {
        now[0].status == "OUT_OF_SERVICE"
    });
    assert_eq!(now[0].overridden, "OUT_OF_SERVICE");
    e.wait("py-1 filtered out by ejs", |ev| {
        ev.name() == "fetched" && !ev.sees("py-1") && ev.sees("demo-1")
    });
    assert!(e.lookup("py-svc").instances().is_empty());
    // py's renewals (`?status=OUT_OF_SERVICE`) keep it so.
    let mark = d.mark();
    d.wait_request_from(mark, "a renewal", |r| {
        r.method == "PUT" && r.path == "/eureka/apps/PY-SVC/py-1"
    });
    assert_eq!(d.instances("py-svc")[0].status, "OUT_OF_SERVICE");
    // The override removed without a value: UNKNOWN; py's next renewal gets 404, it
    // registers again UP, and ejs sees it again.
    let mark = d.mark();
    assert_eq!(
        call(&d, "DELETE", "/apps/PY-SVC/py-1/status", &[], "").status,
        200
    );
    let lost = d.wait_request_from(mark, "a 404 renewal", |r| {
        r.method == "PUT" && r.status == 404
    });
    let again = d.wait_request_from(mark, "py registers again", |r| {
        r.method == "POST" && r.at > lost.at
    });
    assert_eq!(again.status, 204);
    d.wait_instances("py-svc", "UP again", |now| now[0].status == "UP");
    e.wait("py-1 back in ejs", |ev| {
        ev.name() == "fetched" && ev.sees("py-1")
    });
}
