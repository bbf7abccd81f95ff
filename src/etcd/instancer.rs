//! `etcd::Instancer`: a range over a key prefix, then one watch stream from the next
//! revision.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::LOG;
use super::client::{Client, EventKind, WatchEvent, WatchRequest};
use super::value;
use crate::internal::publisher::Publisher;
use crate::internal::watch::{self, Due, Early, Fetched, Source, WatchOptions};
use crate::internal::worker::{StopSignal, Worker};
use crate::{Clock, Error, HttpError, HttpErrorKind, Instance, Result};

/// A created stream that lasts this long before it breaks was a working one, even with
/// no change to bring: its break is not counted towards two breaks in a row.
const LIVED: Duration = Duration::from_secs(1);

/// The longest `reopen_after`.
const MAX_REOPEN_AFTER: Duration = Duration::from_secs(3600);

/// Watches the keys under a prefix and publishes the instances their values name; see
/// the [module docs](super).
///
/// Each instancer owns one thread, `waypost-etcd-watch`: it lists the prefix, then
/// follows one watch stream, publishing the complete set after each change. `stop()`
/// (or drop) cuts the stream at once and joins the thread.
///
/// ```no_run
/// use waypost::etcd::{HttpClient, Instancer};
/// use waypost::{Event, Instancer as _};
///
/// let client = HttpClient::builder().address("http://127.0.0.1:2379").build()?;
/// let instancer = Instancer::builder(&client, "/services/payments/").build()?;
/// let (tx, rx) = waypost::crossbeam_channel::unbounded();
/// instancer.subscribe(tx);
/// if let Ok(Event::Instances(set)) = rx.recv() {
///     println!("{} instances", set.len());
/// }
/// # Ok::<(), waypost::Error>(())
/// ```
#[derive(Debug)]
#[must_use = "dropping an instancer stops its watch"]
pub struct Instancer {
    publisher: Arc<Publisher>,
    worker: Mutex<Option<Worker>>,
}

/// Builds an [`Instancer`]; see [`Instancer::builder`].
#[derive(Debug)]
#[must_use = "a builder does nothing until build()"]
pub struct InstancerBuilder {
    client: Arc<dyn Client>,
    prefix: Vec<u8>,
    default_port: Option<u16>,
    reopen_after: Duration,
    watch: WatchOptions,
}

impl Instancer {
    /// Starts a builder for the keys under `prefix` (e.g. `/services/payments/`; the
    /// prefix is taken as bytes, as etcd does: end it with `/` so that
    /// `/services/pay` does not also list `/services/payments/...`).
    pub fn builder(client: &dyn Client, prefix: impl Into<Vec<u8>>) -> InstancerBuilder {
        InstancerBuilder {
            client: client.fork(),
            prefix: prefix.into(),
            default_port: None,
            reopen_after: Duration::from_secs(60),
            watch: WatchOptions::default(),
        }
    }
}

impl InstancerBuilder {
    /// The port of an address given without one (a Go program's `Addr` of `10.0.0.1`).
    /// Default: none, and such a value is a bad value (left out, logged).
    pub fn default_port(mut self, port: u16) -> Self {
        self.default_port = Some(port);
        self
    }

    /// How long a watch stream may bring nothing before the watch lists the prefix
    /// again and opens a new stream. A member cut off from its quorum can leave a
    /// stream silent: the list (a linearizable read, bounded by the client's request
    /// timeout) then fails on that member and moves on to one that can answer. The
    /// stream also asks etcd for progress notices and to end it when the member loses
    /// its leader, which most of the time ends a cut-off stream sooner. Default 60 s.
    ///
    /// - At least 1 s and at most an hour: `build()` refuses others with
    ///   [`Error::InvalidConfig`] (`reopen_after`).
    pub fn reopen_after(mut self, after: Duration) -> Self {
        self.reopen_after = after;
        self
    }

    watch::watch_setters!(watch);

    /// Validates, starts the `waypost-etcd-watch` thread and waits for the first
    /// answer up to the first-fetch timeout. Errors: [`Error::InvalidConfig`] for an
    /// empty prefix, a `reopen_after` outside 1 s to an hour, a `min_interval` over an
    /// hour, a backoff `max` below its `initial`; [`Error::Io`] if the thread cannot
    /// start.
    pub fn build(self) -> Result<Instancer> {
        if self.prefix.is_empty() {
            return Err(Error::invalid_config(
                "prefix",
                "must not be empty (it would watch every key)",
            ));
        }
        if self.reopen_after < Duration::from_secs(1) || self.reopen_after > MAX_REOPEN_AFTER {
            return Err(Error::invalid_config(
                "reopen_after",
                "must be within [1 s, 1 h]",
            ));
        }
        self.watch.validate()?;
        let publisher = Arc::new(Publisher::new());
        let spec = self.watch.spec(
            "waypost-etcd-watch",
            "etcd watch",
            LOG,
            format!("{:?}", String::from_utf8_lossy(&self.prefix)),
        );
        let cancel = self.client.clone();
        let source = Watch {
            client: self.client,
            prefix: self.prefix,
            default_port: self.default_port,
            idle: self.reopen_after,
            keys: BTreeMap::new(),
            bad: BTreeMap::new(),
            revision: None,
            broke_last: false,
            clock: self.watch.clock.clone(),
        };
        let worker = watch::start(spec, publisher.clone(), source, move || cancel.shutdown())?;
        Ok(Instancer {
            publisher,
            worker: Mutex::new(Some(worker)),
        })
    }
}

/// The watch's state: the instances by key, and the revision they are at.
struct Watch {
    client: Arc<dyn Client>,
    prefix: Vec<u8>,
    default_port: Option<u16>,
    idle: Duration,
    /// The keys whose values name an instance.
    keys: BTreeMap<Vec<u8>, Instance>,
    /// The keys whose values do not, with the revision of the value logged.
    bad: BTreeMap<Vec<u8>, i64>,
    /// The revision `keys` is at; `None`: list before watching.
    revision: Option<i64>,
    /// The last stream broke before it brought anything: if the next one does too, it
    /// is an error (with backoff), not a re-list at once.
    broke_last: bool,
    clock: Arc<dyn Clock>,
}

/// How a stream ended.
enum End {
    /// The server ended it, or it broke (the error).
    Broke(Option<Error>),
    /// The start revision was compacted away.
    Compacted(i64),
    /// The server cancelled the watch for another reason.
    Canceled(String),
}

impl Source for Watch {
    fn fetch(&mut self, stop: &StopSignal, early: &mut Early<'_>) -> Result<Fetched> {
        let Some(revision) = self.revision else {
            return self.list();
        };
        let request = WatchRequest {
            prefix: &self.prefix,
            start_revision: revision + 1,
            idle: self.idle,
        };
        let mut end = None;
        // The stream was created; it brought changes or progress.
        let (mut created, mut delivered) = (false, false);
        let opened = self.clock.now();
        let (keys, bad, current) = (&mut self.keys, &mut self.bad, &mut self.revision);
        let default_port = self.default_port;
        let result = self.client.watch(&request, &mut |message| {
            if message.canceled {
                end = Some(match message.compact_revision {
                    0 => End::Canceled(message.cancel_reason),
                    compacted => End::Compacted(compacted),
                });
                return false;
            }
            if message.created {
                created = true;
                // The set stands (a watch reopened after an error without a list:
                // subscribers hear it again; otherwise the publisher drops the repeat).
                // Its header has the store's revision, not what was sent: the events
                // from the start revision on come after it.
                early.instances(keys.values().cloned().collect());
                return true;
            }
            delivered = true;
            if apply(keys, bad, revision, &message.events, default_port) {
                early.instances(keys.values().cloned().collect());
            }
            // How far the set is: the newest event's revision, or for a progress notice
            // (no events) its header's, as etcd sends one only when all before it was.
            let reached = match message.events.iter().map(|e| e.kv.mod_revision).max() {
                Some(newest) => newest,
                None => message.revision,
            };
            if let Some(current) = current.as_mut() {
                *current = (*current).max(reached);
            }
            true
        });
        if stop.is_stopped() {
            return result.map(|()| Fetched::Pending(Due::Now));
        }
        let end = end.unwrap_or(End::Broke(result.err()));
        // The revision the set is at; a retry after an error watches from there again
        // without a list in between, whose success would reset the backoff.
        let followed = self.revision.take();
        match end {
            End::Compacted(compacted) => {
                log::info!(target: LOG,
                    "the watch of {} fell behind compaction (revision {compacted}); listing again",
                    self.what());
                self.list()
            }
            End::Canceled(reason) => {
                let mut err = HttpError::new("etcd", "POST /v3/watch", "", HttpErrorKind::Status)
                    .with_excerpt(format!("the watch was cancelled: {reason:.200}"));
                if let Some(code) = super::wire::grpc_code(&reason) {
                    err = err.with_code(code);
                }
                self.revision = followed;
                Err(err.into())
            }
            End::Broke(err) => {
                // Nothing came for `reopen_after` on a stream that was created: a quiet
                // prefix, or a silent member. A stream that never started is a failure.
                let idle = created && err.as_ref().is_some_and(Error::is_timeout);
                // A stream that lived a while without changes was a working one too.
                let lived = self.clock.now().saturating_duration_since(opened) >= LIVED;
                let delivered = delivered || (created && lived);
                let why = err
                    .as_ref()
                    .map_or("the server ended it".into(), |e| e.to_string());
                if self.broke_last && !delivered && !idle {
                    self.revision = followed;
                    return Err(err.unwrap_or_else(|| ended(&self.prefix)));
                }
                self.broke_last = !delivered && !idle;
                log::debug!(target: LOG, "the watch stream of {} ended ({why}); listing again",
                    self.what());
                self.list()
            }
        }
    }

    fn reset(&mut self) {
        self.revision = None;
        self.broke_last = false;
    }
}

impl Watch {
    fn what(&self) -> String {
        format!("{:?}", String::from_utf8_lossy(&self.prefix))
    }

    /// Lists the prefix: the complete set, and the revision to watch from.
    fn list(&mut self) -> Result<Fetched> {
        let range = self.client.range_prefix(&self.prefix)?;
        let mut keys = BTreeMap::new();
        let mut bad = BTreeMap::new();
        for kv in range.kvs {
            match value::parse(&kv.value, self.default_port) {
                Ok(instance) => {
                    keys.insert(kv.key, instance);
                }
                Err(err) => {
                    if self.bad.get(&kv.key) != Some(&kv.mod_revision) {
                        log_bad(&kv.key, &err);
                    }
                    bad.insert(kv.key, kv.mod_revision);
                }
            }
        }
        self.keys = keys;
        self.bad = bad;
        self.revision = Some(range.revision);
        Ok(Fetched::Instances(
            self.keys.values().cloned().collect(),
            Due::Now,
        ))
    }
}

/// Applies the events newer than `at` (the revision listed, or reached by the stream
/// before this one: older events are in the set already); true if the set changed.
fn apply(
    keys: &mut BTreeMap<Vec<u8>, Instance>,
    bad: &mut BTreeMap<Vec<u8>, i64>,
    at: i64,
    events: &[WatchEvent],
    default_port: Option<u16>,
) -> bool {
    let mut changed = false;
    for event in events {
        let kv = &event.kv;
        if kv.mod_revision <= at {
            continue; // already in the set: a list at `at` included it
        }
        match event.kind {
            EventKind::Delete => {
                bad.remove(&kv.key);
                changed |= keys.remove(&kv.key).is_some();
            }
            EventKind::Put => match value::parse(&kv.value, default_port) {
                Ok(instance) => {
                    bad.remove(&kv.key);
                    let old = keys.insert(kv.key.clone(), instance.clone());
                    changed |= old.is_none_or(|old| !old.same(&instance));
                }
                Err(err) => {
                    log_bad(&kv.key, &err);
                    bad.insert(kv.key.clone(), kv.mod_revision);
                    changed |= keys.remove(&kv.key).is_some();
                }
            },
        }
    }
    changed
}

fn log_bad(key: &[u8], err: &Error) {
    log::warn!(target: LOG, "key {:?} is left out: {err}", String::from_utf8_lossy(key));
}

fn ended(prefix: &[u8]) -> Error {
    HttpError::new("etcd", "POST /v3/watch", "", HttpErrorKind::Transport)
        .with_excerpt(format!(
            "the watch stream of {:?} ended twice in a row before it brought anything",
            String::from_utf8_lossy(prefix)
        ))
        .into()
}

crate::internal::publisher::instancer_methods!(Instancer, |self| {
    if let Some(mut worker) = self.worker.lock().take() {
        worker.stop();
    }
});

impl Drop for Instancer {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
#[path = "instancer_tests.rs"]
mod tests;
