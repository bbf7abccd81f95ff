//! The REST operations: a request in, a reply out, on the registry. Paths are those of
//! Eureka's Jersey resources (`ApplicationsResource`, `ApplicationResource`,
//! `InstanceResource`, `InstancesResource`, the VIP resources) under the prefix.

use serde_json::Value;

use super::instance::Info;
use super::registry::{Entry, Outcome, Registry, hashcode};
use super::render;
use crate::support::fake_http::Seen;

/// An HTTP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// `None`: no body (and no Content-Type).
    pub content_type: Option<String>,
    pub body: String,
}

impl Reply {
    pub fn empty(status: u16) -> Reply {
        Reply {
            status,
            content_type: None,
            body: String::new(),
        }
    }

    pub fn text(status: u16, content_type: &str, body: impl Into<String>) -> Reply {
        Reply {
            status,
            content_type: Some(content_type.into()),
            body: body.into(),
        }
    }

    /// The HTML error page a Java servlet container answers with.
    pub fn html_error(status: u16) -> Reply {
        let title = format!("HTTP Status {status} – {}", reason(status));
        Reply::text(
            status,
            "text/html;charset=utf-8",
            format!(
                "<!doctype html><html lang=\"en\"><head><title>{title}</title></head>\
                 <body><h1>{title}</h1></body></html>"
            ),
        )
    }
}

/// The reason phrase of `status`.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        415 => "Unsupported Media Type",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// JSON or XML, as Eureka chooses: JSON when `Accept` contains "json", else XML.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Xml,
}

/// Answers `seen` (its path already stripped of the prefix: `rest`).
pub fn route(registry: &mut Registry, seen: &Seen, rest: &str) -> Reply {
    let segments: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let format = match seen.header("accept").is_some_and(|a| a.contains("json")) {
        true => Format::Json,
        false => Format::Xml,
    };
    let q = |key: &str| query_value(&seen.query, key);
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = seen.method.as_str();
    match (method, segs.as_slice()) {
        ("GET", ["apps"]) => {
            let entries: Vec<&Entry> = registry.all().collect();
            applications(format, 1, &registry.hashcode(), &entries)
        }
        ("GET", ["apps", "delta"]) => {
            let delta = registry.delta();
            let entries: Vec<&Entry> = delta.iter().collect();
            let (version, hash) = (registry.version(), registry.hashcode());
            applications(format, version, &hash, &entries)
        }
        (_, ["apps"] | ["apps", "delta"]) => Reply::html_error(405),
        ("GET", ["apps", app]) => match registry.app(&app.to_uppercase()) {
            Some(entries) => {
                let app = app.to_uppercase();
                match format {
                    Format::Json => json(serde_json::json!({
                        "application": render::application_json(&app, &entries)
                    })),
                    Format::Xml => xml(render::application_xml(&app, &entries)),
                }
            }
            None => Reply::empty(404),
        },
        ("POST", ["apps", app]) => register(registry, seen, &app.to_uppercase()),
        (_, ["apps", _]) => Reply::html_error(405),
        (_, ["apps", app, id, tail @ ..]) => {
            let app = app.to_uppercase();
            match (method, tail) {
                ("GET", []) => instance(format, registry.get(&app, id)),
                ("PUT", []) => {
                    outcome(registry.renew(&app, id, q("lastDirtyTimestamp").as_deref()))
                }
                ("DELETE", []) => outcome(registry.cancel(&app, id)),
                ("PUT", ["status"]) => outcome(registry.override_status(
                    &app,
                    id,
                    q("value").as_deref(),
                    q("lastDirtyTimestamp").as_deref(),
                )),
                ("DELETE", ["status"]) => outcome(registry.remove_override(
                    &app,
                    id,
                    q("value").as_deref(),
                    q("lastDirtyTimestamp").as_deref(),
                )),
                ("PUT", ["metadata"]) => {
                    let pairs = query_pairs(&seen.query);
                    outcome(registry.put_metadata(&app, id, &pairs))
                }
                (_, [] | ["status"] | ["metadata"]) => Reply::html_error(405),
                _ => Reply::html_error(404),
            }
        }
        ("GET", ["instances", id]) => {
            let found = registry.all().find(|e| e.info.id() == *id);
            instance(format, found)
        }
        ("GET", [kind @ ("vips" | "svips"), vip]) => {
            let secure = *kind == "svips";
            let entries: Vec<&Entry> = registry
                .all()
                .filter(|e| {
                    let vips = match secure {
                        true => &e.info.secure_vip_address,
                        false => &e.info.vip_address,
                    };
                    vips.as_deref()
                        .is_some_and(|v| v.split(',').any(|v| v == *vip))
                })
                .collect();
            applications(format, 1, &hashcode(entries.iter().copied()), &entries)
        }
        _ => Reply::html_error(404),
    }
}

fn register(registry: &mut Registry, seen: &Seen, app: &str) -> Reply {
    let content_type = seen.header("content-type").unwrap_or("");
    let body = String::from_utf8_lossy(&seen.body);
    let parsed = if content_type.contains("json") {
        serde_json::from_str::<Value>(&body).ok()
    } else if content_type.contains("xml") {
        render::xml_to_json(&body, &[])
    } else {
        return Reply::html_error(415);
    };
    let Some(parsed) = parsed else {
        return Reply::html_error(400);
    };
    match Info::from_registration(&parsed, app) {
        Ok(info) => {
            registry.register(info);
            Reply::empty(204)
        }
        Err(why) => Reply::text(400, "text/plain", why),
    }
}

fn outcome(outcome: Outcome) -> Reply {
    match outcome {
        Outcome::Done => Reply::empty(200),
        Outcome::NotFound => Reply::empty(404),
        Outcome::Invalid => Reply::empty(500),
    }
}

fn instance(format: Format, entry: Option<&Entry>) -> Reply {
    match (entry, format) {
        (None, _) => Reply::empty(404),
        (Some(e), Format::Json) => json(serde_json::json!({"instance": render::instance_json(e)})),
        (Some(e), Format::Xml) => xml(render::instance_xml(e)),
    }
}

fn applications(format: Format, version: u64, hash: &str, entries: &[&Entry]) -> Reply {
    match format {
        Format::Json => json(render::applications_json(version, hash, entries)),
        Format::Xml => xml(render::applications_xml(version, hash, entries)),
    }
}

fn json(value: Value) -> Reply {
    Reply::text(200, "application/json", value.to_string())
}

fn xml(body: String) -> Reply {
    Reply::text(200, "application/xml", body)
}

/// Every `key=value` of a query string, decoded (`+` is a space, as Jersey reads it).
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let decode = |s: &str| percent_decode(&s.replace('+', " "));
            (decode(k), decode(v))
        })
        .collect()
}

fn query_value(query: &str, key: &str) -> Option<String> {
    query_pairs(query)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

/// `%XX` sequences decoded (invalid ones kept as they are).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
