//! What reads answer, in the two shapes of Eureka's codecs: JSON (`EurekaJacksonCodec`)
//! and XML (XStream's converters), both from the same entries so they cannot disagree;
//! and the reverse, XML read into the JSON shape (attributes as `@name`, an element's
//! text beside attributes as `$`), for XML registrations and for tests.

use serde_json::{Map, Value, json};

use super::instance::EMPTY_MAP_CLASS;
use super::registry::Entry;

/// An instance as Eureka's JSON codec writes it.
pub fn instance_json(e: &Entry) -> Value {
    let (i, l) = (&e.info, &e.lease);
    let mut o = Map::new();
    if let Some(id) = &i.instance_id {
        o.insert("instanceId".into(), json!(id));
    }
    o.insert("hostName".into(), json!(i.host_name));
    o.insert("app".into(), json!(i.app));
    o.insert("ipAddr".into(), json!(i.ip_addr));
    o.insert("status".into(), json!(i.status));
    o.insert("overriddenstatus".into(), json!(i.overridden));
    let port = |p: u16, on: bool| json!({"$": p, "@enabled": on.to_string()});
    o.insert("port".into(), port(i.port, i.port_enabled));
    let secure = port(i.secure_port, i.secure_port_enabled);
    o.insert("securePort".into(), secure);
    o.insert("countryId".into(), json!(i.country_id));
    o.insert(
        "dataCenterInfo".into(),
        json!({"@class": i.data_center_class, "name": i.data_center_name}),
    );
    o.insert(
        "leaseInfo".into(),
        json!({
            "renewalIntervalInSecs": i.renewal_interval_secs,
            "durationInSecs": i.duration_secs,
            "registrationTimestamp": l.registered,
            "lastRenewalTimestamp": l.last_renewal,
            "evictionTimestamp": l.eviction,
            "serviceUpTimestamp": l.service_up,
        }),
    );
    let metadata = match i.metadata.is_empty() {
        true => json!({"@class": EMPTY_MAP_CLASS}),
        false => json!(i.metadata),
    };
    o.insert("metadata".into(), metadata);
    for (key, value) in auto_fields(e) {
        o.insert(key.into(), json!(value));
    }
    Value::Object(o)
}

/// The `@Auto` fields, written as strings by both codecs, in their order.
fn auto_fields(e: &Entry) -> Vec<(&'static str, String)> {
    let i = &e.info;
    let optional = [
        ("homePageUrl", &i.home_page_url),
        ("statusPageUrl", &i.status_page_url),
        ("healthCheckUrl", &i.health_check_url),
        ("secureHealthCheckUrl", &i.secure_health_check_url),
        ("vipAddress", &i.vip_address),
        ("secureVipAddress", &i.secure_vip_address),
    ];
    let mut fields: Vec<_> = optional
        .into_iter()
        .filter_map(|(k, v)| Some((k, v.clone()?)))
        .collect();
    fields.extend([
        ("isCoordinatingDiscoveryServer", "false".to_owned()),
        ("lastUpdatedTimestamp", i.last_updated.to_string()),
        ("lastDirtyTimestamp", i.last_dirty.to_string()),
        ("actionType", i.action.as_str().to_owned()),
    ]);
    fields
}

/// `{"name":..,"instance":[..]}`.
pub fn application_json(app: &str, entries: &[&Entry]) -> Value {
    let instances: Vec<Value> = entries.iter().map(|e| instance_json(e)).collect();
    json!({"name": app, "instance": instances})
}

/// The `applications` envelope: `versions__delta`, `apps__hashcode`, then the apps of
/// `entries` (grouped by app in order of first appearance).
pub fn applications_json(version: u64, hashcode: &str, entries: &[&Entry]) -> Value {
    let apps: Vec<Value> = by_app(entries)
        .iter()
        .map(|(app, es)| application_json(app, es))
        .collect();
    json!({"applications": {
        "versions__delta": version.to_string(),
        "apps__hashcode": hashcode,
        "application": apps,
    }})
}

fn by_app<'a>(entries: &[&'a Entry]) -> Vec<(String, Vec<&'a Entry>)> {
    let mut apps: Vec<(String, Vec<&Entry>)> = Vec::new();
    for e in entries {
        match apps.iter_mut().find(|(app, _)| *app == e.info.app) {
            Some((_, es)) => es.push(e),
            None => apps.push((e.info.app.clone(), vec![e])),
        }
    }
    apps
}

/// An instance as Eureka's XML converter writes it (`<instance>...</instance>`).
pub fn instance_xml(e: &Entry) -> String {
    let (i, l) = (&e.info, &e.lease);
    let mut x = String::from("<instance>");
    if let Some(id) = &i.instance_id {
        leaf(&mut x, "instanceId", id);
    }
    leaf(&mut x, "hostName", &i.host_name);
    leaf(&mut x, "app", &i.app);
    leaf(&mut x, "ipAddr", &i.ip_addr);
    leaf(&mut x, "status", &i.status);
    leaf(&mut x, "overriddenstatus", &i.overridden);
    let mut port = |name: &str, p: u16, on: bool| {
        x.push_str(&format!("<{name} enabled=\"{on}\">{p}</{name}>"));
    };
    port("port", i.port, i.port_enabled);
    port("securePort", i.secure_port, i.secure_port_enabled);
    leaf(&mut x, "countryId", &i.country_id.to_string());
    x.push_str(&format!(
        "<dataCenterInfo class=\"{}\">",
        escape(&i.data_center_class)
    ));
    leaf(&mut x, "name", &i.data_center_name);
    x.push_str("</dataCenterInfo><leaseInfo>");
    for (name, n) in [
        ("renewalIntervalInSecs", i.renewal_interval_secs),
        ("durationInSecs", i.duration_secs),
        ("registrationTimestamp", l.registered),
        ("lastRenewalTimestamp", l.last_renewal),
        ("evictionTimestamp", l.eviction),
        ("serviceUpTimestamp", l.service_up),
    ] {
        leaf(&mut x, name, &n.to_string());
    }
    x.push_str("</leaseInfo>");
    if i.metadata.is_empty() {
        x.push_str(&format!("<metadata class=\"{EMPTY_MAP_CLASS}\"/>"));
    } else {
        x.push_str("<metadata>");
        for (k, v) in &i.metadata {
            leaf(&mut x, k, v);
        }
        x.push_str("</metadata>");
    }
    for (key, value) in auto_fields(e) {
        leaf(&mut x, key, &value);
    }
    x.push_str("</instance>");
    x
}

/// `<application><name>..</name><instance>..</instance>..</application>`.
pub fn application_xml(app: &str, entries: &[&Entry]) -> String {
    let mut x = String::from("<application>");
    leaf(&mut x, "name", app);
    for e in entries {
        x.push_str(&instance_xml(e));
    }
    x.push_str("</application>");
    x
}

/// `<applications>` with `versions__delta`, `apps__hashcode`, then the apps.
pub fn applications_xml(version: u64, hashcode: &str, entries: &[&Entry]) -> String {
    let mut x = String::from("<applications>");
    leaf(&mut x, "versions__delta", &version.to_string());
    leaf(&mut x, "apps__hashcode", hashcode);
    for (app, es) in by_app(entries) {
        x.push_str(&application_xml(&app, &es));
    }
    x.push_str("</applications>");
    x
}

fn leaf(x: &mut String, name: &str, text: &str) {
    x.push_str(&format!("<{name}>{}</{name}>", escape(text)));
}

/// XML text and attribute escaping.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Reads XML (elements, attributes, text, entities; a declaration and comments are
/// skipped) into the JSON shape: `{root: value}` where an element with neither
/// attributes nor children is its text, and otherwise an object of `@attr`s, `$` (its
/// text, when it has no children) and children; a repeated child becomes an array, and
/// so does every child named in `arrays`. `None` when it is not well formed.
pub fn xml_to_json(text: &str, arrays: &[&str]) -> Option<Value> {
    let mut p = Parser {
        s: text.as_bytes(),
        at: 0,
    };
    p.skip_misc();
    let (name, value) = p.element(arrays)?;
    p.skip_misc();
    (p.at == p.s.len()).then(|| json!({ name: value }))
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &[u8] {
        &self.s[self.at..]
    }

    fn skip_ws(&mut self) {
        while self.rest().first().is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    /// Whitespace, `<?...?>` and `<!--...-->`.
    fn skip_misc(&mut self) {
        loop {
            self.skip_ws();
            let end = match self.rest() {
                r if r.starts_with(b"<?") => "?>",
                r if r.starts_with(b"<!--") => "-->",
                _ => return,
            };
            match find(self.rest(), end.as_bytes()) {
                Some(i) => self.at += i + end.len(),
                None => self.at = self.s.len(),
            }
        }
    }

    fn name(&mut self) -> Option<String> {
        let start = self.at;
        while self
            .rest()
            .first()
            .is_some_and(|c| !c.is_ascii_whitespace() && !b"/>=".contains(c))
        {
            self.at += 1;
        }
        (self.at > start).then(|| String::from_utf8_lossy(&self.s[start..self.at]).into_owned())
    }

    fn element(&mut self, arrays: &[&str]) -> Option<(String, Value)> {
        self.rest().starts_with(b"<").then_some(())?;
        self.at += 1;
        let name = self.name()?;
        let mut attrs = Map::new();
        loop {
            self.skip_ws();
            match self.rest().first()? {
                b'/' => {
                    self.at += 1;
                    self.rest().starts_with(b">").then_some(())?;
                    self.at += 1;
                    return Some((name, finish(attrs, Map::new(), String::new())));
                }
                b'>' => break,
                _ => {
                    let key = self.name()?;
                    self.skip_ws();
                    self.rest().starts_with(b"=").then_some(())?;
                    self.at += 1;
                    self.skip_ws();
                    let quote = *self.rest().first()?;
                    (quote == b'"' || quote == b'\'').then_some(())?;
                    self.at += 1;
                    let end = self.rest().iter().position(|c| *c == quote)?;
                    let raw = String::from_utf8_lossy(&self.rest()[..end]).into_owned();
                    self.at += end + 1;
                    attrs.insert(format!("@{key}"), Value::String(unescape(&raw)?));
                }
            }
        }
        self.at += 1;
        let (mut children, mut text) = (Map::new(), String::new());
        loop {
            if self.rest().starts_with(b"</") {
                self.at += 2;
                (self.name()? == name).then_some(())?;
                self.skip_ws();
                self.rest().starts_with(b">").then_some(())?;
                self.at += 1;
                return Some((name, finish(attrs, children, text)));
            } else if self.rest().starts_with(b"<!--") || self.rest().starts_with(b"<?") {
                self.skip_misc();
            } else if self.rest().starts_with(b"<") {
                let (child, value) = self.element(arrays)?;
                add_child(&mut children, child, value, arrays);
            } else {
                let end = self.rest().iter().position(|c| *c == b'<')?;
                text.push_str(&unescape(&String::from_utf8_lossy(&self.rest()[..end]))?);
                self.at += end;
            }
        }
    }
}

fn add_child(children: &mut Map<String, Value>, name: String, value: Value, arrays: &[&str]) {
    match children.get_mut(&name) {
        Some(Value::Array(items)) if arrays.contains(&name.as_str()) => items.push(value),
        Some(Value::Array(items)) if items.len() > 1 => items.push(value),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, value]);
        }
        None if arrays.contains(&name.as_str()) => {
            children.insert(name, Value::Array(vec![value]));
        }
        None => {
            children.insert(name, value);
        }
    }
}

fn finish(mut attrs: Map<String, Value>, children: Map<String, Value>, text: String) -> Value {
    if attrs.is_empty() && children.is_empty() {
        return Value::String(text.trim().to_owned());
    }
    if children.is_empty() && !text.trim().is_empty() {
        attrs.insert("$".into(), Value::String(text.trim().to_owned()));
    }
    attrs.extend(children);
    Value::Object(attrs)
}

fn unescape(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let end = rest[i..].find(';')? + i;
        let c = match &rest[i + 1..end] {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            n if n.starts_with("#x") => char::from_u32(u32::from_str_radix(&n[2..], 16).ok()?)?,
            n if n.starts_with('#') => char::from_u32(n[1..].parse().ok()?)?,
            _ => return None,
        };
        out.push(c);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
