//! How the examples print an instance: its address and, when it has any, its metadata.

use waypost::Instance;

/// `addr`, or `addr weight=.. zone=.. tags=[..] key=value ...`.
pub fn describe(instance: &Instance) -> String {
    let Some(meta) = instance.metadata() else {
        return instance.to_string();
    };
    let tags: Vec<&str> = meta.tags().collect();
    let values: Vec<String> = meta.values().map(|(k, v)| format!("{k}={v}")).collect();
    format!(
        "{instance} weight={:?} zone={:?} tags={tags:?} {}",
        meta.weight(),
        meta.zone().unwrap_or("-"),
        values.join(" ")
    )
}
