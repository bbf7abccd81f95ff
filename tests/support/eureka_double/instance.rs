//! An instance as the server keeps it (the fields of Netflix's `InstanceInfo` that the
//! double emits), read from a registration body the way Eureka's codec reads it:
//! unknown fields dropped, Java's defaults for missing ones, the app upper-cased.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::registry::{STATUSES, UNKNOWN, UP, now_ms};

/// `actionType`: what the last change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Added,
    Modified,
    Deleted,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Added => "ADDED",
            Action::Modified => "MODIFIED",
            Action::Deleted => "DELETED",
        }
    }
}

/// The fields of `InstanceInfo` the double keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct Info {
    /// `instanceId`; the id is the host name without one (`InstanceInfo.getId`).
    pub instance_id: Option<String>,
    pub host_name: String,
    /// Upper case.
    pub app: String,
    pub ip_addr: String,
    /// The status reads show: the instance's, or what the override rules made of it.
    pub status: String,
    /// `overriddenstatus`: the override in force, or UNKNOWN.
    pub overridden: String,
    pub port: u16,
    pub port_enabled: bool,
    pub secure_port: u16,
    pub secure_port_enabled: bool,
    pub country_id: i64,
    /// `dataCenterInfo`'s `@class` and `name`.
    pub data_center_class: String,
    pub data_center_name: String,
    pub renewal_interval_secs: u64,
    pub duration_secs: u64,
    pub metadata: BTreeMap<String, String>,
    pub home_page_url: Option<String>,
    pub status_page_url: Option<String>,
    pub health_check_url: Option<String>,
    pub secure_health_check_url: Option<String>,
    pub vip_address: Option<String>,
    pub secure_vip_address: Option<String>,
    pub last_updated: u64,
    pub last_dirty: u64,
    pub action: Action,
}

/// A lease's timestamps (ms since the epoch) and length.
#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    pub registered: u64,
    pub last_renewal: u64,
    pub service_up: u64,
    pub eviction: u64,
    pub duration: Duration,
    /// Renewals (heartbeats, status changes) since this registration.
    pub renewals: u64,
}

impl Lease {
    pub fn new(now: u64, duration: Duration) -> Lease {
        Lease {
            registered: now,
            last_renewal: now,
            service_up: 0,
            eviction: 0,
            duration,
            renewals: 0,
        }
    }
}

/// Java's defaults for what a registration leaves out.
const DEFAULT_PORT: u16 = 7001;
const DEFAULT_SECURE_PORT: u16 = 7002;
const DEFAULT_RENEWAL_SECS: u64 = 30;
const DEFAULT_DURATION_SECS: u64 = 90;
const DEFAULT_DATA_CENTER_CLASS: &str = "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo";
/// The marker the codec writes for an empty metadata map.
pub const EMPTY_MAP_CLASS: &str = "java.util.Collections$EmptyMap";

impl Info {
    /// The instance's id: `instanceId`, else the host name.
    pub fn id(&self) -> &str {
        self.instance_id
            .as_deref()
            .filter(|id| !id.is_empty())
            .unwrap_or(&self.host_name)
    }

    /// Reads the `instance` of a registration body (`{"instance":{...}}`, or the XML
    /// read into the same shape) and checks it as `ApplicationResource.addInstance`
    /// does, against `app` from the URL (upper case): the 400 message when it fails.
    pub fn from_registration(body: &Value, app: &str) -> Result<Info, String> {
        let Some(i) = body.get("instance").filter(|i| i.is_object()) else {
            return Err("Missing instance".into());
        };
        let text = |key: &str| i.get(key).and_then(scalar);
        let blank = |s: &Option<String>| s.as_deref().is_none_or(|s| s.trim().is_empty());
        let (port, port_enabled) = read_port(i.get("port"), DEFAULT_PORT, true);
        let (secure_port, secure_port_enabled) =
            read_port(i.get("securePort"), DEFAULT_SECURE_PORT, false);
        let lease = |key: &str, default: u64| {
            i.get("leaseInfo")
                .and_then(|l| l.get(key))
                .and_then(scalar)
                .and_then(|n| n.parse::<u64>().ok())
                .filter(|n| *n > 0)
                .unwrap_or(default)
        };
        let status = |key: &str, default: &str| {
            let s = text(key).unwrap_or_else(|| default.to_owned());
            match STATUSES.contains(&s.as_str()) {
                true => s,
                false => UNKNOWN.to_owned(),
            }
        };
        let info = Info {
            instance_id: text("instanceId"),
            host_name: text("hostName").unwrap_or_default(),
            app: text("app").unwrap_or_default().to_uppercase(),
            ip_addr: text("ipAddr").unwrap_or_default(),
            status: status("status", UP),
            overridden: match i.get("overriddenstatus") {
                Some(_) => status("overriddenstatus", UNKNOWN),
                None => status("overriddenStatus", UNKNOWN),
            },
            port,
            port_enabled,
            secure_port,
            secure_port_enabled,
            country_id: text("countryId").and_then(|c| c.parse().ok()).unwrap_or(1),
            data_center_class: String::new(),
            data_center_name: String::new(),
            renewal_interval_secs: lease("renewalIntervalInSecs", DEFAULT_RENEWAL_SECS),
            duration_secs: lease("durationInSecs", DEFAULT_DURATION_SECS),
            metadata: metadata(i.get("metadata")),
            home_page_url: text("homePageUrl"),
            status_page_url: text("statusPageUrl"),
            health_check_url: text("healthCheckUrl"),
            secure_health_check_url: text("secureHealthCheckUrl"),
            vip_address: text("vipAddress"),
            secure_vip_address: text("secureVipAddress"),
            last_updated: now_ms(),
            last_dirty: text("lastDirtyTimestamp")
                .and_then(|t| t.parse().ok())
                .unwrap_or_else(now_ms),
            action: Action::Added,
        };
        let dc = i.get("dataCenterInfo").filter(|d| d.is_object());
        if blank(&Some(info.id().to_owned())) {
            Err("Missing instanceId".into())
        } else if blank(&Some(info.host_name.clone())) {
            Err("Missing hostname".into())
        } else if blank(&Some(info.ip_addr.clone())) {
            Err("Missing ip address".into())
        } else if info.app.trim().is_empty() {
            Err("Missing appName".into())
        } else if info.app != app {
            Err(format!(
                "Mismatched appName, expecting {app} but was {}",
                info.app
            ))
        } else if dc.is_none() {
            Err("Missing dataCenterInfo".into())
        } else if let Some(name) = dc.and_then(|d| d.get("name")).and_then(scalar) {
            let class = dc.and_then(|d| d.get("@class")).and_then(scalar);
            Ok(Info {
                data_center_class: class.unwrap_or_else(|| DEFAULT_DATA_CENTER_CLASS.into()),
                data_center_name: name,
                ..info
            })
        } else {
            Err("Missing dataCenterInfo Name".into())
        }
    }
}

/// A string or number as text (`"8080"` and `8080` alike); `None` for null and the rest.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `{"$":N,"@enabled":"true"}` (`$` a number or string, `@enabled` a bool or string),
/// or a bare number; the defaults when absent.
fn read_port(v: Option<&Value>, default: u16, enabled: bool) -> (u16, bool) {
    let Some(v) = v else {
        return (default, enabled);
    };
    let number = |v: Option<&Value>| v.and_then(scalar).and_then(|p| p.parse().ok());
    match v {
        Value::Object(o) => (
            number(o.get("$")).unwrap_or(default),
            o.get("@enabled")
                .and_then(scalar)
                .map_or(enabled, |e| e == "true"),
        ),
        other => (number(Some(other)).unwrap_or(default), enabled),
    }
}

/// The metadata map, without the codec's `@class` marker.
fn metadata(v: Option<&Value>) -> BTreeMap<String, String> {
    let Some(Value::Object(o)) = v else {
        return BTreeMap::new();
    };
    o.iter()
        .filter(|(k, _)| k.as_str() != "@class")
        .filter_map(|(k, v)| Some((k.clone(), scalar(v).or_else(|| Some(v.to_string()))?)))
        .collect()
}
