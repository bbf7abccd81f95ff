//! A `log` logger that keeps every record of this test binary, for tests that check
//! what waypost logs (and what it never logs).

use std::sync::Once;

use parking_lot::{Mutex, MutexGuard};

/// (level, target, message) of every record since the binary started or last cleared.
static RECORDS: Mutex<Vec<Record>> = Mutex::new(Vec::new());

/// One log record: level, target, message.
pub type Record = (log::Level, String, String);

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        RECORDS.lock().push((
            record.level(),
            record.target().to_owned(),
            record.args().to_string(),
        ));
    }
    fn flush(&self) {}
}

/// Installs the capture (once per binary), down to `trace!`.
pub fn capture() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        log::set_logger(&Capture).unwrap();
        log::set_max_level(log::LevelFilter::Trace);
    });
}

/// The records kept so far; hold the guard briefly.
pub fn records() -> MutexGuard<'static, Vec<Record>> {
    RECORDS.lock()
}

/// Whether a record of `level` whose target starts with `target` contains every one
/// of `parts`.
pub fn logged(level: log::Level, target: &str, parts: &[&str]) -> bool {
    records().iter().any(|(l, t, text)| {
        *l == level && t.starts_with(target) && parts.iter().all(|p| text.contains(p))
    })
}
