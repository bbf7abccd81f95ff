//! How the command prints: timestamps, instances and their metadata, the difference
//! between two sets, errors with their causes; as text for people and as one JSON
//! object a line for scripts.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};
use waypost::{Error, Instance, InstanceSet};

/// The time now, in RFC 3339 (UTC, milliseconds): `2026-12-01T05:10:00.123Z`.
pub(crate) fn now() -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(since.as_secs(), since.subsec_millis())
}

/// `secs` after the Unix epoch as an RFC 3339 UTC time, with `millis`.
pub(crate) fn rfc3339(secs: u64, millis: u32) -> String {
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_date(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01: counted in 400-year eras of
/// 146,097 days, each read from March so that February's leap day ends the year.
fn civil_date(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// An instance's metadata as `key=value` words: weight, zone, scheme, tags, then its
/// values; a value with spaces (or none) is quoted.
pub(crate) fn metadata_words(instance: &Instance) -> String {
    let Some(metadata) = instance.metadata() else {
        return String::new();
    };
    let mut words = Vec::new();
    if let Some(weight) = metadata.weight() {
        words.push(format!("weight={weight}"));
    }
    if let Some(zone) = metadata.zone() {
        words.push(format!("zone={}", quoted(zone)));
    }
    if let Some(scheme) = metadata.scheme() {
        words.push(format!("scheme={}", quoted(scheme)));
    }
    if metadata.tags().len() > 0 {
        let tags: Vec<&str> = metadata.tags().collect();
        words.push(format!("tags={}", quoted(&tags.join(","))));
    }
    for (key, value) in metadata.values() {
        words.push(format!("{}={}", quoted(key), quoted(value)));
    }
    words.join(" ")
}

fn quoted(text: &str) -> String {
    match text.is_empty() || text.contains(|c: char| c.is_whitespace() || c == '"') {
        true => format!("{text:?}"),
        false => text.to_owned(),
    }
}

/// One instance on a line: its address, then its metadata.
pub(crate) fn instance_line(instance: &Instance) -> String {
    let words = metadata_words(instance);
    match words.is_empty() {
        true => instance.addr().to_owned(),
        false => format!("{}  {words}", instance.addr()),
    }
}

/// An instance as a JSON object: `addr`, then what it has of `weight`, `zone`,
/// `scheme`, `tags` and `meta`.
pub(crate) fn instance_json(instance: &Instance) -> Value {
    let mut object = Map::new();
    object.insert("addr".into(), instance.addr().into());
    if let Some(metadata) = instance.metadata() {
        if let Some(weight) = metadata.weight() {
            object.insert("weight".into(), weight.into());
        }
        if let Some(zone) = metadata.zone() {
            object.insert("zone".into(), zone.into());
        }
        if let Some(scheme) = metadata.scheme() {
            object.insert("scheme".into(), scheme.into());
        }
        if metadata.tags().len() > 0 {
            object.insert("tags".into(), metadata.tags().collect::<Vec<_>>().into());
        }
        let meta: Map<String, Value> = metadata
            .values()
            .map(|(k, v)| (k.to_owned(), v.into()))
            .collect();
        if !meta.is_empty() {
            object.insert("meta".into(), meta.into());
        }
    }
    object.into()
}

/// What changed from one set to the next, by address: instances added, removed, and
/// kept with other metadata.
#[derive(Debug, Default)]
pub(crate) struct Change<'a> {
    pub(crate) added: Vec<&'a Instance>,
    pub(crate) removed: Vec<&'a Instance>,
    pub(crate) changed: Vec<&'a Instance>,
}

impl<'a> Change<'a> {
    /// From `before` (none: everything is added) to `after`.
    pub(crate) fn between(before: Option<&'a InstanceSet>, after: &'a InstanceSet) -> Self {
        let old: BTreeMap<&str, &Instance> = before
            .into_iter()
            .flat_map(|set| set.iter())
            .map(|i| (i.addr(), i))
            .collect();
        let new: BTreeMap<&str, &Instance> = after.iter().map(|i| (i.addr(), i)).collect();
        let mut change = Change::default();
        for (addr, instance) in &new {
            match old.get(addr) {
                None => change.added.push(instance),
                Some(was) if !was.same(instance) => change.changed.push(instance),
                Some(_) => {}
            }
        }
        change.removed = (old.iter())
            .filter(|(addr, _)| !new.contains_key(*addr))
            .map(|(_, i)| *i)
            .collect();
        change
    }
}

/// "1 instance", "3 instances".
pub(crate) fn count(n: usize) -> String {
    match n {
        1 => "1 instance".to_owned(),
        n => format!("{n} instances"),
    }
}

/// A set as text: a heading at `time`, then a line per added (`+`), removed (`-`) and
/// changed (`~`) instance. `first` is the watch's first set.
pub(crate) fn set_text(time: &str, set: &InstanceSet, change: &Change<'_>, first: bool) -> String {
    let mut heading = format!("{time}  {}", count(set.len()));
    if !first {
        let mut parts = Vec::new();
        for (n, what) in [
            (change.added.len(), "added"),
            (change.removed.len(), "removed"),
            (change.changed.len(), "changed"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        match parts.is_empty() {
            true => heading.push_str(", unchanged (the registry answers again)"),
            false => heading.push_str(&format!(": {}", parts.join(", "))),
        }
    }
    let mut text = heading;
    for (mark, instances) in [
        ('+', &change.added),
        ('-', &change.removed),
        ('~', &change.changed),
    ] {
        for instance in instances {
            text.push_str(&format!("\n  {mark} {}", instance_line(instance)));
        }
    }
    text
}

/// A set as one JSON object: `time`, `event: "instances"`, the whole set, and what
/// was added, removed and changed since the last set.
pub(crate) fn set_json(time: &str, set: &InstanceSet, change: &Change<'_>) -> Value {
    let list =
        |instances: &[&Instance]| -> Value { instances.iter().map(|i| instance_json(i)).collect() };
    json!({
        "time": time,
        "event": "instances",
        "count": set.len(),
        "instances": set.iter().map(instance_json).collect::<Value>(),
        "added": list(&change.added),
        "removed": list(&change.removed),
        "changed": list(&change.changed),
    })
}

/// An error's message and then each of its causes' that says more.
pub(crate) fn causes(err: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut said = vec![err.to_string()];
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        // A message that already ends with its cause's text is not repeated.
        if !said.last().is_some_and(|last| last.ends_with(&text)) {
            said.push(text);
        }
        source = cause.source();
    }
    said
}

/// An error event as text: the error, its causes, and what the watch keeps.
pub(crate) fn error_text(time: &str, err: &Error, kept: Option<usize>) -> String {
    let keeping = match kept {
        Some(n) => format!("keeping the last set, {}", count(n)),
        None => "no set yet".to_owned(),
    };
    let mut lines = causes(err).into_iter();
    let mut text = format!(
        "{time}  error ({keeping}): {}",
        lines.next().unwrap_or_default()
    );
    for cause in lines {
        text.push_str(&format!("\n    caused by: {cause}"));
    }
    text
}

/// An error event as one JSON object: `event: "error"`, the message, its causes, and
/// how many instances the watch keeps (`null` before the first set).
pub(crate) fn error_json(time: &str, err: &Error, kept: Option<usize>) -> Value {
    let mut lines = causes(err);
    let message = lines.remove(0);
    json!({
        "time": time,
        "event": "error",
        "error": message,
        "causes": lines,
        "kept": kept,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_are_rfc3339_utc() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(rfc3339(1_796_083_199, 999), "2026-11-30T23:59:59.999Z");
        assert_eq!(rfc3339(4_107_542_400, 0), "2100-03-01T00:00:00.000Z");
    }

    #[test]
    fn a_change_is_read_by_address() {
        let a = Instance::new("10.0.0.1:80");
        let b = Instance::new("10.0.0.2:80");
        let b2 = Instance::builder("10.0.0.2:80").tag("v2").build();
        let c = Instance::new("10.0.0.3:80");
        let before = InstanceSet::new(vec![a.clone(), b]);
        let after = InstanceSet::new(vec![b2, c]);
        let change = Change::between(Some(&before), &after);
        let addrs = |v: &[&Instance]| v.iter().map(|i| i.addr().to_owned()).collect::<Vec<_>>();
        assert_eq!(addrs(&change.added), ["10.0.0.3:80"]);
        assert_eq!(addrs(&change.removed), ["10.0.0.1:80"]);
        assert_eq!(addrs(&change.changed), ["10.0.0.2:80"]);
        let text = set_text("T", &after, &change, false);
        assert_eq!(
            text,
            "T  2 instances: 1 added, 1 removed, 1 changed\n  + 10.0.0.3:80\n  - 10.0.0.1:80\n  ~ 10.0.0.2:80  tags=v2"
        );
        let same = Change::between(Some(&after), &after);
        assert!(same.added.is_empty() && same.removed.is_empty() && same.changed.is_empty());
        assert!(
            set_text("T", &after, &same, false).ends_with("unchanged (the registry answers again)")
        );
    }

    #[test]
    fn metadata_is_printed_and_quoted_where_needed() {
        let i = Instance::builder("10.0.0.1:80")
            .weight(3)
            .zone("eu 1")
            .tag("a")
            .tag("b")
            .value("k", "")
            .build();
        assert_eq!(
            instance_line(&i),
            r#"10.0.0.1:80  weight=3 zone="eu 1" tags=a,b k="""#
        );
        assert_eq!(
            instance_json(&i),
            json!({"addr": "10.0.0.1:80", "weight": 3, "zone": "eu 1", "tags": ["a", "b"], "meta": {"k": ""}})
        );
    }
}
