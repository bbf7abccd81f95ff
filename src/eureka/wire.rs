//! Eureka's JSON shapes: the answers of reads decoded into [`InstanceInfo`]s, tolerant
//! of the quirks of Eureka's codecs and of the clients that feed it, and the body of a
//! registration in the shape Eureka's own clients send.
//!
//! What reads may hold, all accepted:
//! - `applications.application` and `application.instance`: one object, an array, or
//!   absent / `null` (none);
//! - `port` / `securePort`: `{"$": 8080, "@enabled": "true"}` with `$` a number or a
//!   string and `@enabled` a bool or a string, or a bare number (enabled);
//! - `overriddenstatus` (Eureka's codec) or `overriddenStatus` (newer writers);
//! - `metadata` with Eureka's `"@class"` marker, which is dropped (an empty map is
//!   `{"@class":"java.util.Collections$EmptyMap"}`);
//! - scalars as strings or numbers, unknown fields, a status Eureka does not define
//!   ([`Status::Unknown`]).
//!
//! A body whose envelope is of the wrong shape fails to decode as a whole (the caller
//! makes that an [`HttpErrorKind::Decode`](crate::HttpErrorKind::Decode) error). One
//! instance that does not fit (a port of 70000, no id) is left out and reported in
//! [`Decoded::skipped`]: one bad registrant must not hide every other instance.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use super::client::{InstanceInfo, Status};
use super::lenient::{Lenient, Port, metadata, one_or_many, secs, text};

/// `dataCenterInfo.@class` of every data center but Amazon's.
const DEFAULT_DATA_CENTER_CLASS: &str = "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo";
/// The marker Eureka's codec writes for an empty metadata map.
const EMPTY_MAP_CLASS: &str = "java.util.Collections$EmptyMap";
/// Eureka's lease defaults, for a `leaseInfo` that leaves them out.
const RENEWAL_SECS: u64 = 30;
const DURATION_SECS: u64 = 90;
/// How many left-out instances of one answer are described one by one.
const SHOWN: usize = 5;

/// `GET {base}/apps/` and `GET {base}/vips/{VIP}`: `{"applications":{"application":..}}`.
#[derive(Deserialize)]
pub(super) struct ApplicationsAnswer {
    applications: Applications<Application>,
}

/// `GET {base}/apps/` read only to count its apps (their instances are not decoded).
#[derive(Deserialize)]
pub(super) struct AppsCount {
    applications: Applications<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "A: Deserialize<'de>"))]
struct Applications<A> {
    #[serde(default, deserialize_with = "one_or_many")]
    application: Vec<A>,
}

/// `GET {base}/apps/{APP}`: `{"application":{"name":..,"instance":..}}`.
#[derive(Deserialize)]
pub(super) struct ApplicationAnswer {
    application: Application,
}

#[derive(Deserialize)]
struct Application {
    #[serde(default, deserialize_with = "text")]
    name: Option<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    instance: Vec<Lenient<WireInstance>>,
}

/// One instance as reads carry it; every field optional, each read leniently.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireInstance {
    #[serde(default, deserialize_with = "text")]
    instance_id: Option<String>,
    #[serde(default, deserialize_with = "text")]
    host_name: Option<String>,
    #[serde(default, deserialize_with = "text")]
    app: Option<String>,
    #[serde(default, deserialize_with = "text")]
    ip_addr: Option<String>,
    #[serde(default, deserialize_with = "text")]
    status: Option<String>,
    #[serde(default, deserialize_with = "text", rename = "overriddenstatus")]
    overridden_lower: Option<String>,
    #[serde(default, deserialize_with = "text", rename = "overriddenStatus")]
    overridden_camel: Option<String>,
    #[serde(default)]
    port: Option<Port>,
    #[serde(default)]
    secure_port: Option<Port>,
    #[serde(default, deserialize_with = "text")]
    vip_address: Option<String>,
    #[serde(default, deserialize_with = "text")]
    secure_vip_address: Option<String>,
    #[serde(default)]
    data_center_info: Option<DataCenterInfo>,
    #[serde(default)]
    lease_info: Option<LeaseInfo>,
    #[serde(default, deserialize_with = "metadata")]
    metadata: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "text")]
    status_page_url: Option<String>,
    #[serde(default, deserialize_with = "text")]
    home_page_url: Option<String>,
    #[serde(default, deserialize_with = "text")]
    health_check_url: Option<String>,
}

#[derive(Deserialize)]
struct DataCenterInfo {
    #[serde(default, deserialize_with = "text")]
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LeaseInfo {
    #[serde(default, deserialize_with = "secs")]
    renewal_interval_in_secs: Option<u64>,
    #[serde(default, deserialize_with = "secs")]
    duration_in_secs: Option<u64>,
}

/// What a read came to: its instances, and those left out.
#[derive(Debug, Default)]
pub(super) struct Decoded {
    pub(super) instances: Vec<InstanceInfo>,
    pub(super) skipped: Skipped,
}

/// Instances of one answer that were left out: the first few described, the rest
/// counted, so that a fleet of bad registrations cannot flood the log.
#[derive(Debug, Default)]
pub(super) struct Skipped {
    pub(super) shown: Vec<String>,
    pub(super) more: usize,
}

impl Skipped {
    fn add(&mut self, why: String) {
        match self.shown.len() < SHOWN {
            true => self.shown.push(why),
            false => self.more += 1,
        }
    }

    /// One `warn!` per described instance, one for the rest; `what` names the read.
    pub(super) fn log(&self, what: &str) {
        for why in &self.shown {
            log::warn!(target: super::LOG, "{what}: left out {why}");
        }
        if self.more > 0 {
            log::warn!(target: super::LOG, "{what}: left out {} more instances", self.more);
        }
    }
}

impl ApplicationsAnswer {
    /// Every instance of every app, in the answer's order.
    pub(super) fn decode(self) -> Decoded {
        let mut decoded = Decoded::default();
        for app in self.applications.application {
            app.decode_into(&mut decoded);
        }
        decoded
    }
}

impl AppsCount {
    pub(super) fn count(&self) -> usize {
        self.applications.application.len()
    }
}

impl ApplicationAnswer {
    pub(super) fn decode(self) -> Decoded {
        let mut decoded = Decoded::default();
        self.application.decode_into(&mut decoded);
        decoded
    }
}

impl Application {
    fn decode_into(self, decoded: &mut Decoded) {
        let name = self.name.as_deref();
        for Lenient(instance) in self.instance {
            match instance.and_then(|i| i.into_info(name)) {
                Ok(info) => decoded.instances.push(info),
                Err(why) => decoded.skipped.add(why),
            }
        }
    }
}

impl WireInstance {
    /// The instance, or why it cannot be one. `app_name` (its application's `name`)
    /// stands in for a missing `app`; `hostName` for a missing `instanceId`, as in
    /// Eureka's `InstanceInfo.getId()`.
    fn into_info(self, app_name: Option<&str>) -> Result<InstanceInfo, String> {
        let host_name = self.host_name.unwrap_or_default();
        let Some(instance_id) =
            non_empty(self.instance_id).or_else(|| non_empty(Some(host_name.clone())))
        else {
            return Err("an instance with neither instanceId nor hostName".into());
        };
        let app = non_empty(self.app).or_else(|| non_empty(app_name.map(str::to_owned)));
        let Some(app) = app else {
            return Err(format!("instance {instance_id:?}: no app name"));
        };
        let lease = self.lease_info;
        let seconds = |s: Option<u64>, default: u64| {
            Duration::from_secs(s.filter(|s| *s > 0).unwrap_or(default))
        };
        Ok(InstanceInfo {
            app: app.to_ascii_uppercase(),
            instance_id,
            host_name,
            ip_addr: self.ip_addr.unwrap_or_default(),
            port: Port::resolve(self.port, true),
            secure_port: Port::resolve(self.secure_port, false),
            // Eureka's InstanceInfo starts UP: a status left out is UP, as its client reads it.
            status: self.status.map_or(Status::Up, |s| Status::parse(&s)),
            overridden_status: (self.overridden_lower.or(self.overridden_camel))
                .map_or(Status::Unknown, |s| Status::parse(&s)),
            vip_address: non_empty(self.vip_address),
            secure_vip_address: non_empty(self.secure_vip_address),
            data_center: non_empty(self.data_center_info.and_then(|d| d.name))
                .unwrap_or_else(|| "MyOwn".into()),
            renewal_interval: seconds(
                lease.as_ref().and_then(|l| l.renewal_interval_in_secs),
                RENEWAL_SECS,
            ),
            lease_duration: seconds(lease.and_then(|l| l.duration_in_secs), DURATION_SECS),
            metadata: self.metadata,
            status_page_url: non_empty(self.status_page_url),
            home_page_url: non_empty(self.home_page_url),
            health_check_url: non_empty(self.health_check_url),
        })
    }
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

/// `s` unless it is none or blank.
fn set(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.trim().is_empty())
}

/// The body of `POST {base}/apps/{APP}`: `info` in the shape Eureka's Java client and
/// py-eureka-client send, `now_ms` (ms since the epoch) as its timestamps. The
/// override is always `UNKNOWN`: an instance never sets one on itself (the server
/// would keep it); operators set it with `set_status_override`.
pub(super) fn register_body(info: &InstanceInfo, now_ms: u64) -> Vec<u8> {
    let port = |port: Option<u16>| match port {
        Some(n) => WirePort {
            number: n,
            enabled: "true",
        },
        // Eureka has no "no port": a disabled one, as its server writes it.
        None => WirePort {
            number: 0,
            enabled: "false",
        },
    };
    let mut metadata: BTreeMap<&str, &str> = (info.metadata.iter())
        .filter(|(k, _)| *k != "@class")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if metadata.is_empty() {
        metadata.insert("@class", EMPTY_MAP_CLASS);
    }
    // Java ints: a longer lease than i32::MAX seconds would not parse.
    let seconds = |d: Duration| d.as_secs().clamp(1, i32::MAX as u64);
    let body = RegisterBody {
        instance: RegisterInstance {
            instance_id: &info.instance_id,
            host_name: &info.host_name,
            app: info.app.to_ascii_uppercase(),
            ip_addr: &info.ip_addr,
            status: info.status.as_str(),
            overridden_status: Status::Unknown.as_str(),
            port: port(info.port),
            secure_port: port(info.secure_port),
            country_id: 1,
            data_center_info: WireDataCenter {
                class: DEFAULT_DATA_CENTER_CLASS,
                name: &info.data_center,
            },
            lease_info: WireLease {
                renewal_interval_in_secs: seconds(info.renewal_interval),
                duration_in_secs: seconds(info.lease_duration),
            },
            metadata,
            vip_address: set(&info.vip_address),
            secure_vip_address: set(&info.secure_vip_address),
            home_page_url: set(&info.home_page_url),
            status_page_url: set(&info.status_page_url),
            health_check_url: set(&info.health_check_url),
            is_coordinating_discovery_server: "false",
            last_updated_timestamp: now_ms.to_string(),
            last_dirty_timestamp: now_ms.to_string(),
        },
    };
    serde_json::to_vec(&body).expect("a registration serializes")
}

#[derive(Serialize)]
struct RegisterBody<'a> {
    instance: RegisterInstance<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RegisterInstance<'a> {
    instance_id: &'a str,
    host_name: &'a str,
    app: String,
    ip_addr: &'a str,
    status: &'static str,
    #[serde(rename = "overriddenstatus")]
    overridden_status: &'static str,
    port: WirePort,
    secure_port: WirePort,
    country_id: u32,
    data_center_info: WireDataCenter<'a>,
    lease_info: WireLease,
    metadata: BTreeMap<&'a str, &'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vip_address: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secure_vip_address: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    home_page_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_page_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    health_check_url: Option<&'a str>,
    is_coordinating_discovery_server: &'static str,
    last_updated_timestamp: String,
    last_dirty_timestamp: String,
}

#[derive(Serialize)]
struct WirePort {
    #[serde(rename = "$")]
    number: u16,
    #[serde(rename = "@enabled")]
    enabled: &'static str,
}

#[derive(Serialize)]
struct WireDataCenter<'a> {
    #[serde(rename = "@class")]
    class: &'static str,
    name: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireLease {
    renewal_interval_in_secs: u64,
    duration_in_secs: u64,
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn apps(body: &str) -> Result<Decoded, serde_json::Error> {
        serde_json::from_str::<ApplicationsAnswer>(body).map(ApplicationsAnswer::decode)
    }

    fn app(body: &str) -> Result<Decoded, serde_json::Error> {
        serde_json::from_str::<ApplicationAnswer>(body).map(ApplicationAnswer::decode)
    }

    /// An instance as Eureka's server writes it (§9 of the backend notes).
    fn server_instance(id: &str, port: u16) -> Value {
        json!({
            "instanceId": id, "hostName": "host-1", "app": "DEMO-SVC", "ipAddr": "10.0.0.1",
            "status": "UP", "overriddenstatus": "UNKNOWN",
            "port": {"$": port, "@enabled": "true"}, "securePort": {"$": 443, "@enabled": "false"},
            "countryId": 1,
            "dataCenterInfo": {"@class": DEFAULT_DATA_CENTER_CLASS, "name": "MyOwn"},
            "leaseInfo": {"renewalIntervalInSecs": 30, "durationInSecs": 90,
                "registrationTimestamp": 1_700_000_000_000u64, "lastRenewalTimestamp": 1_700_000_000_000u64,
                "evictionTimestamp": 0, "serviceUpTimestamp": 1_700_000_000_000u64},
            "metadata": {"@class": EMPTY_MAP_CLASS},
            "vipAddress": "demo-svc", "statusPageUrl": "http://host-1:8080/info",
            "isCoordinatingDiscoveryServer": "false", "lastUpdatedTimestamp": "1700000000000",
            "lastDirtyTimestamp": "1700000000000", "actionType": "ADDED"
        })
    }

    fn expected(id: &str, port: u16) -> InstanceInfo {
        let mut info = InstanceInfo::new("demo-svc", id, "host-1", "10.0.0.1").with_port(port);
        info.status_page_url = Some("http://host-1:8080/info".into());
        info
    }

    #[test]
    fn the_server_shape_decodes_with_arrays() {
        let body = json!({"applications": {"versions__delta": "1", "apps__hashcode": "UP_2_",
            "application": [{"name": "DEMO-SVC",
                "instance": [server_instance("d1", 8080), server_instance("d2", 8081)]}]}});
        let decoded = apps(&body.to_string()).unwrap();
        assert_eq!(
            decoded.instances,
            [expected("d1", 8080), expected("d2", 8081)]
        );
        assert!(decoded.skipped.shown.is_empty());
    }

    #[test]
    fn one_object_stands_for_a_list_of_one() {
        let body = json!({"applications": {"application": {"name": "DEMO-SVC",
            "instance": server_instance("d1", 8080)}}});
        assert_eq!(
            apps(&body.to_string()).unwrap().instances,
            [expected("d1", 8080)]
        );
        let body =
            json!({"application": {"name": "DEMO-SVC", "instance": server_instance("d1", 8080)}});
        assert_eq!(
            app(&body.to_string()).unwrap().instances,
            [expected("d1", 8080)]
        );
        let body =
            json!({"application": {"name": "DEMO-SVC", "instance": [server_instance("d1", 8080)]}});
        assert_eq!(
            app(&body.to_string()).unwrap().instances,
            [expected("d1", 8080)]
        );
    }

    #[test]
    fn absent_or_null_lists_are_empty() {
        for body in [
            r#"{"applications":{"versions__delta":"1","apps__hashcode":"","application":[]}}"#,
            r#"{"applications":{"application":null}}"#,
            r#"{"applications":{}}"#,
            r#"{"applications":{"application":{"name":"X"}}}"#,
            r#"{"applications":{"application":[{"name":"X","instance":null}]}}"#,
        ] {
            let decoded = apps(body).unwrap();
            assert!(decoded.instances.is_empty(), "{body}");
        }
        let count = |body| serde_json::from_str::<AppsCount>(body).unwrap().count();
        assert_eq!(count(r#"{"applications":{"application":[]}}"#), 0);
        assert_eq!(count(r#"{"applications":{"application":{"name":"A"}}}"#), 1);
        assert_eq!(
            count(r#"{"applications":{"application":[{"name":"A"},{"name":"B","instance":[1]}]}}"#),
            2
        );
    }

    #[test]
    fn port_quirks() {
        let with = |port: Value, secure: Value| {
            let mut i = server_instance("d1", 1);
            i["port"] = port;
            i["securePort"] = secure;
            let body = json!({"application": {"instance": i}});
            let info = app(&body.to_string()).unwrap().instances.pop().unwrap();
            (info.port, info.secure_port)
        };
        let off = json!({"$": 0, "@enabled": "false"});
        assert_eq!(
            with(json!({"$": "8080", "@enabled": "true"}), off.clone()),
            (Some(8080), None)
        );
        assert_eq!(
            with(json!({"$": 8080, "@enabled": true}), off.clone()),
            (Some(8080), None)
        );
        assert_eq!(
            with(json!({"$": 8080, "@enabled": "TRUE"}), off.clone()),
            (Some(8080), None)
        );
        assert_eq!(
            with(json!(8080), json!({"$": "8443", "@enabled": true})),
            (Some(8080), Some(8443))
        );
        assert_eq!(with(json!("8080"), json!(8443)), (Some(8080), Some(8443)));
        assert_eq!(
            with(json!({"$": 8080, "@enabled": false}), off.clone()),
            (None, None)
        );
        assert_eq!(
            with(json!({"$": 8080, "@enabled": "no"}), off.clone()),
            (None, None)
        );
        // Eureka's defaults when `@enabled` is left out: plain on, secure off.
        assert_eq!(
            with(json!({"$": 8080}), json!({"$": 8443})),
            (Some(8080), None)
        );
        assert_eq!(with(json!({"@enabled": "true"}), json!(null)), (None, None));
        assert_eq!(with(json!({"$": 0, "@enabled": "true"}), off), (None, None));
    }

    #[test]
    fn statuses_overrides_metadata_and_leases() {
        let mut i = server_instance("d1", 8080);
        i["status"] = json!("OUT_OF_SERVICE");
        i.as_object_mut().unwrap().remove("overriddenstatus");
        i["overriddenStatus"] = json!("OUT_OF_SERVICE");
        i["metadata"] =
            json!({"@class": "java.util.HashMap", "zone": "a", "weight": 3, "gone": null});
        i["leaseInfo"] = json!({"renewalIntervalInSecs": "10", "durationInSecs": 0});
        i["dataCenterInfo"] = json!({"@class": "com.netflix.appinfo.AmazonInfo", "name": "Amazon"});
        let body = json!({"application": {"instance": i}});
        let info = app(&body.to_string()).unwrap().instances.pop().unwrap();
        assert_eq!(info.status, Status::OutOfService);
        assert_eq!(info.overridden_status, Status::OutOfService);
        let metadata: Vec<_> = info
            .metadata
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(metadata, [("weight", "3"), ("zone", "a")]);
        assert_eq!(info.renewal_interval, Duration::from_secs(10));
        assert_eq!(info.lease_duration, Duration::from_secs(90));
        assert_eq!(info.data_center, "Amazon");

        let mut i = server_instance("d1", 8080);
        i["status"] = json!("RESTARTING");
        i["overriddenstatus"] = json!("down");
        i.as_object_mut().unwrap().remove("leaseInfo");
        let body = json!({"application": {"instance": i}});
        let info = app(&body.to_string()).unwrap().instances.pop().unwrap();
        assert_eq!(
            (info.status, info.overridden_status),
            (Status::Unknown, Status::Down)
        );
        assert_eq!(info.lease_duration, Duration::from_secs(90));
        assert!(info.metadata.is_empty());
    }

    #[test]
    fn ids_and_apps_fall_back_as_eurekas_do() {
        let body = r#"{"application":{"name":"web","instance":[
            {"hostName":"h1","ipAddr":"10.0.0.1","port":80,"unknown":{"deep":[1,2]}},
            {"instanceId":"","hostName":"h2","app":"other"}]}}"#;
        let infos = app(body).unwrap().instances;
        assert_eq!(infos[0].instance_id, "h1");
        assert_eq!(infos[0].app, "WEB");
        assert_eq!(infos[0].status, Status::Up);
        assert_eq!(infos[0].data_center, "MyOwn");
        assert_eq!(
            (infos[1].instance_id.as_str(), infos[1].app.as_str()),
            ("h2", "OTHER")
        );
    }

    #[test]
    fn an_instance_that_does_not_fit_is_left_out_and_described() {
        let good = server_instance("good", 8080);
        let body = json!({"applications": {"application": [{"name": "DEMO-SVC", "instance": [
            {"instanceId": "p", "port": {"$": 70000, "@enabled": "true"}},
            {"instanceId": "q", "port": {"$": "http", "@enabled": "true"}},
            {"ipAddr": "10.0.0.9"},
            {"instanceId": "m", "metadata": "zone=a"},
            7,
            good,
            {"instanceId": "n", "hostName": ["h"]},
            {"instanceId": "o", "port": [8080]},
        ]}]}});
        let decoded = apps(&body.to_string()).unwrap();
        assert_eq!(decoded.instances, [expected("good", 8080)]);
        let shown = &decoded.skipped.shown;
        assert_eq!((shown.len(), decoded.skipped.more), (SHOWN, 2));
        assert!(
            shown[0].contains("\"p\"") && shown[0].contains("70000"),
            "{shown:?}"
        );
        assert!(shown[1].contains("\"http\""), "{shown:?}");
        assert!(
            shown[2].contains("neither instanceId nor hostName"),
            "{shown:?}"
        );
    }

    #[test]
    fn envelopes_of_the_wrong_shape_fail() {
        for body in [
            "",
            "[]",
            "null",
            r#"{"registry":[]}"#,
            r#"{"applications":null}"#,
            r#"{"applications":1}"#,
            r#"{"applications":{"application":[1]}}"#,
            r#"{"applications":{"application":"web"}}"#,
            r#"{"applications":{"versions__delta":"1","application":[{"name":"#,
            "<html><body>503</body></html>",
        ] {
            assert!(apps(body).is_err(), "{body}");
        }
        for body in [r#"{"applications":{}}"#, r#"{"application":7}"#, "{}"] {
            assert!(app(body).is_err(), "{body}");
        }
    }

    #[test]
    fn the_register_body_is_eurekas_shape() {
        let mut info = InstanceInfo::new("web", "web-1", "host-1", "10.0.0.1")
            .with_port(8080)
            .with_metadata("zone", "a");
        info.health_check_url = Some("http://host-1:8080/health".into());
        info.lease_duration = Duration::from_millis(2500);
        info.renewal_interval = Duration::from_millis(300);
        let body: Value = serde_json::from_slice(&register_body(&info, 1_700_000_000_123)).unwrap();
        let want = json!({"instance": {
            "instanceId": "web-1", "hostName": "host-1", "app": "WEB", "ipAddr": "10.0.0.1",
            "status": "UP", "overriddenstatus": "UNKNOWN",
            "port": {"$": 8080, "@enabled": "true"}, "securePort": {"$": 0, "@enabled": "false"},
            "countryId": 1,
            "dataCenterInfo": {"@class": DEFAULT_DATA_CENTER_CLASS, "name": "MyOwn"},
            "leaseInfo": {"renewalIntervalInSecs": 1, "durationInSecs": 2},
            "metadata": {"zone": "a"},
            "vipAddress": "web", "healthCheckUrl": "http://host-1:8080/health",
            "isCoordinatingDiscoveryServer": "false",
            "lastUpdatedTimestamp": "1700000000123", "lastDirtyTimestamp": "1700000000123",
        }});
        assert_eq!(body, want);

        let mut bare = InstanceInfo::new("Web", "w", "h", "10.0.0.1")
            .with_secure_port(8443)
            .with_status(Status::Starting)
            .with_metadata("@class", "x");
        bare.overridden_status = Status::OutOfService;
        bare.app = "web".into();
        let body: Value = serde_json::from_slice(&register_body(&bare, 0)).unwrap();
        let i = &body["instance"];
        assert_eq!(i["app"], "WEB");
        assert_eq!(i["status"], "STARTING");
        assert_eq!(i["overriddenstatus"], "UNKNOWN");
        assert_eq!(i["port"], json!({"$": 0, "@enabled": "false"}));
        assert_eq!(i["securePort"], json!({"$": 8443, "@enabled": "true"}));
        assert_eq!(i["metadata"], json!({"@class": EMPTY_MAP_CLASS}));
        assert_eq!(
            i["leaseInfo"],
            json!({"renewalIntervalInSecs": 30, "durationInSecs": 90})
        );
    }
}
