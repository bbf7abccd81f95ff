//! The double's registry: instances by app and id, their leases, the status overrides,
//! the recent-changes window behind `/apps/delta`, and eviction. The rules are those of
//! Netflix's `AbstractInstanceRegistry` (register, renew, cancel, statusUpdate,
//! deleteStatusOverride, evict) and its status-override rules (`DownOrStartingRule`,
//! `OverrideExistsRule`, `LeaseExistsRule`), without peers or self-preservation.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::instance::{Action, Info, Lease};

pub const UP: &str = "UP";
pub const DOWN: &str = "DOWN";
pub const STARTING: &str = "STARTING";
pub const OUT_OF_SERVICE: &str = "OUT_OF_SERVICE";
pub const UNKNOWN: &str = "UNKNOWN";
/// Eureka's `InstanceStatus` values; anything else reads as UNKNOWN.
pub const STATUSES: [&str; 5] = [UP, DOWN, STARTING, OUT_OF_SERVICE, UNKNOWN];

/// Milliseconds since the epoch, as Eureka's timestamps.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// How the registry is tuned (see `Config` in the parent module).
#[derive(Debug, Clone)]
pub struct Rules {
    /// Every lease lasts this long, whatever the registration says.
    pub lease_override: Option<Duration>,
    /// How long a change stays in `/apps/delta`.
    pub delta_retention: Duration,
    /// Eureka's `Lease.renew()` bug: a renewed lease lasts twice its duration.
    pub lease_bug: bool,
}

/// One registered instance: what it said, what the server made of it, its lease.
#[derive(Debug, Clone)]
pub struct Entry {
    pub info: Info,
    pub lease: Lease,
    /// When the lease ends, on this process's clock.
    renewed_at: Instant,
    renewed: bool,
}

/// A change kept for `/apps/delta`: the instance's last action in the window; for a
/// DELETED one, the instance as it was removed.
#[derive(Debug, Clone)]
struct Change {
    at: Instant,
    gone: Option<Entry>,
}

#[derive(Debug)]
pub struct Registry {
    rules: Rules,
    apps: BTreeMap<String, BTreeMap<String, Entry>>,
    /// Status overrides, by instance id (Eureka keys them by id alone).
    overrides: HashMap<String, String>,
    recent: HashMap<(String, String), Change>,
    /// Bumped on every change: `versions__delta` of the delta.
    version: u64,
}

/// What a write did, as the REST layer answers it.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    NotFound,
    /// A value the server cannot parse (a status, a timestamp): Eureka answers 500.
    Invalid,
}

impl Registry {
    pub fn new(rules: Rules) -> Registry {
        Registry {
            rules,
            apps: BTreeMap::new(),
            overrides: HashMap::new(),
            recent: HashMap::new(),
            version: 1,
        }
    }

    pub fn get(&self, app: &str, id: &str) -> Option<&Entry> {
        self.apps.get(app)?.get(id)
    }

    /// Every instance, by app then id.
    pub fn all(&self) -> impl Iterator<Item = &Entry> {
        self.apps.values().flat_map(|ids| ids.values())
    }

    /// Instances of `app` (upper case), or `None` when the app has none.
    pub fn app(&self, app: &str) -> Option<Vec<&Entry>> {
        let ids = self.apps.get(app).filter(|ids| !ids.is_empty())?;
        Some(ids.values().collect())
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    /// `apps__hashcode`: `STATUS_count_` for each status present, sorted by status,
    /// over every instance (`Applications.getReconcileHashCode`).
    pub fn hashcode(&self) -> String {
        hashcode(self.all())
    }

    /// Instances changed within the retention window, oldest change first, each with
    /// its last action: current state unless DELETED (`getApplicationDeltas`).
    pub fn delta(&mut self) -> Vec<Entry> {
        let retention = self.rules.delta_retention;
        self.recent.retain(|_, c| c.at.elapsed() <= retention);
        let mut changes: Vec<_> = self.recent.iter().collect();
        changes.sort_by_key(|(_, c)| c.at);
        changes
            .into_iter()
            .filter_map(|((app, id), c)| c.gone.clone().or_else(|| self.get(app, id).cloned()))
            .collect()
    }

    fn changed(&mut self, app: &str, id: &str, gone: Option<Entry>) {
        let change = Change {
            at: Instant::now(),
            gone,
        };
        self.recent.insert((app.to_owned(), id.to_owned()), change);
        self.version += 1;
    }

    /// `register`: a newer registration replaces the instance unless the stored one
    /// has a later `lastDirtyTimestamp`; the status follows the override rules.
    pub fn register(&mut self, mut info: Info) {
        let (app, id) = (info.app.clone(), info.id().to_owned());
        let now = now_ms();
        let existing = self.get(&app, &id).cloned();
        if let Some(old) = &existing {
            if old.info.last_dirty > info.last_dirty {
                info = old.info.clone();
            }
        }
        let duration = self
            .rules
            .lease_override
            .unwrap_or(Duration::from_secs(info.duration_secs));
        let mut lease = Lease::new(now, duration);
        if let Some(old) = &existing {
            lease.service_up = old.lease.service_up;
        }
        if info.overridden != UNKNOWN && !self.overrides.contains_key(&id) {
            self.overrides.insert(id.clone(), info.overridden.clone());
        }
        if let Some(status) = self.overrides.get(&id) {
            info.overridden = status.clone();
        }
        let held = existing.as_ref().map(|e| e.info.status.as_str());
        info.status = self.effective(&info.status, &id, held);
        if info.status == UP {
            lease.service_up = now;
        }
        info.action = Action::Added;
        info.last_updated = now;
        let entry = Entry {
            info,
            lease,
            renewed_at: Instant::now(),
            renewed: false,
        };
        self.apps
            .entry(app.clone())
            .or_default()
            .insert(id.clone(), entry);
        self.changed(&app, &id, None);
    }

    /// The status the override rules give: DOWN/STARTING/UNKNOWN from the instance
    /// win, then an override, then the held status when UP or OUT_OF_SERVICE.
    fn effective(&self, own: &str, id: &str, held: Option<&str>) -> String {
        if own != UP && own != OUT_OF_SERVICE {
            return own.to_owned();
        }
        if let Some(status) = self.overrides.get(id) {
            return status.clone();
        }
        match held {
            Some(held) if held == UP || held == OUT_OF_SERVICE => held.to_owned(),
            _ => own.to_owned(),
        }
    }

    /// `renew`, then the `lastDirtyTimestamp` check of `InstanceResource.renewLease`:
    /// a client timestamp newer than the server's answers 404 (register again).
    pub fn renew(&mut self, app: &str, id: &str, last_dirty: Option<&str>) -> Outcome {
        let Some(status) = self.get(app, id).map(|e| e.info.status.clone()) else {
            return Outcome::NotFound;
        };
        let status = self.effective(&status, id, Some(&status));
        if status == UNKNOWN {
            return Outcome::NotFound;
        }
        let entry = self.entry_mut(app, id);
        entry.info.status = status;
        entry.renew();
        let held = entry.info.last_dirty;
        match last_dirty.map(str::parse::<u64>) {
            None => Outcome::Done,
            Some(Err(_)) => Outcome::Invalid,
            Some(Ok(theirs)) if theirs > held => Outcome::NotFound,
            Some(Ok(_)) => Outcome::Done,
        }
    }

    fn entry_mut(&mut self, app: &str, id: &str) -> &mut Entry {
        self.apps
            .get_mut(app)
            .and_then(|ids| ids.get_mut(id))
            .expect("checked present")
    }

    /// `cancel` (also eviction): the instance goes, its override with it.
    pub fn cancel(&mut self, app: &str, id: &str) -> Outcome {
        self.overrides.remove(id);
        let Some(mut entry) = self.apps.get_mut(app).and_then(|ids| ids.remove(id)) else {
            return Outcome::NotFound;
        };
        if self.apps.get(app).is_some_and(BTreeMap::is_empty) {
            self.apps.remove(app);
        }
        let now = now_ms();
        entry.lease.eviction = now;
        entry.info.action = Action::Deleted;
        entry.info.last_updated = now;
        self.changed(app, id, Some(entry));
        Outcome::Done
    }

    /// `PUT .../status?value=`: renews, and when the status differs stores the override
    /// and takes it as the status.
    pub fn override_status(
        &mut self,
        app: &str,
        id: &str,
        value: Option<&str>,
        last_dirty: Option<&str>,
    ) -> Outcome {
        if self.get(app, id).is_none() {
            return Outcome::NotFound;
        }
        let Some(status) = value.filter(|v| STATUSES.contains(v)) else {
            return Outcome::Invalid;
        };
        let Ok(theirs) = last_dirty.map_or(Ok(0), str::parse::<u64>) else {
            return Outcome::Invalid;
        };
        let entry = self.entry_mut(app, id);
        entry.renew();
        if entry.info.status == status {
            return Outcome::Done;
        }
        let now = now_ms();
        if status == UP {
            entry.lease.service_up = now;
        }
        entry.info.overridden = status.to_owned();
        entry.info.status = status.to_owned();
        entry.info.last_dirty = entry.info.last_dirty.max(theirs);
        entry.info.action = Action::Modified;
        entry.info.last_updated = now;
        self.overrides.insert(id.to_owned(), status.to_owned());
        self.changed(app, id, None);
        Outcome::Done
    }

    /// `DELETE .../status[?value=]`: renews; an override there is removed and the status
    /// becomes `value`, UNKNOWN without one (the next renewal then answers 404).
    pub fn remove_override(
        &mut self,
        app: &str,
        id: &str,
        value: Option<&str>,
        last_dirty: Option<&str>,
    ) -> Outcome {
        if self.get(app, id).is_none() {
            return Outcome::NotFound;
        }
        let status = value.unwrap_or(UNKNOWN);
        let Ok(theirs) = last_dirty.map_or(Ok(0), str::parse::<u64>) else {
            return Outcome::Invalid;
        };
        if !STATUSES.contains(&status) {
            return Outcome::Invalid;
        }
        self.entry_mut(app, id).renew();
        if self.overrides.remove(id).is_none() {
            return Outcome::Done;
        }
        let entry = self.entry_mut(app, id);
        entry.info.overridden = UNKNOWN.to_owned();
        entry.info.status = status.to_owned();
        entry.info.last_dirty = entry.info.last_dirty.max(theirs);
        entry.info.action = Action::Modified;
        entry.info.last_updated = now_ms();
        self.changed(app, id, None);
        Outcome::Done
    }

    /// `PUT .../metadata?k=v`: the pairs join the metadata and the instance is
    /// registered again (as Eureka does: a new lease, action ADDED).
    pub fn put_metadata(&mut self, app: &str, id: &str, pairs: &[(String, String)]) -> Outcome {
        let Some(entry) = self.get(app, id) else {
            return Outcome::NotFound;
        };
        let mut info = entry.info.clone();
        for (k, v) in pairs {
            info.metadata.insert(k.clone(), v.clone());
        }
        self.register(info);
        Outcome::Done
    }

    /// Removes every instance whose lease ended; their (app, id).
    pub fn evict(&mut self) -> Vec<(String, String)> {
        let lease_bug = self.rules.lease_bug;
        let expired: Vec<(String, String)> = self
            .all()
            .filter(|e| e.expired(lease_bug))
            .map(|e| (e.info.app.clone(), e.info.id().to_owned()))
            .collect();
        for (app, id) in &expired {
            self.cancel(app, id);
        }
        expired
    }

    /// Drops an instance without a trace (no delta entry, no version bump): as if the
    /// server had lost it.
    pub fn forget(&mut self, app: &str, id: &str) -> bool {
        let gone = self
            .apps
            .get_mut(app)
            .and_then(|ids| ids.remove(id))
            .is_some();
        if self.apps.get(app).is_some_and(BTreeMap::is_empty) {
            self.apps.remove(app);
        }
        self.overrides.remove(id);
        self.recent.remove(&(app.to_owned(), id.to_owned()));
        gone
    }

    /// Empties the registry, as a server started afresh.
    pub fn clear(&mut self) {
        let rules = self.rules.clone();
        *self = Registry::new(rules);
    }
}

impl Entry {
    fn renew(&mut self) {
        self.lease.last_renewal = now_ms();
        self.renewed_at = Instant::now();
        self.renewed = true;
        self.lease.renewals += 1;
    }

    /// `Lease.isExpired`: the duration after the last renewal (twice it with the
    /// bug modelled, once renewed).
    fn expired(&self, lease_bug: bool) -> bool {
        let duration = self.lease.duration;
        let lasts = match lease_bug && self.renewed {
            true => duration * 2,
            false => duration,
        };
        self.renewed_at.elapsed() > lasts
    }
}

/// `STATUS_count_...` over `entries`, sorted by status.
pub fn hashcode<'a>(entries: impl Iterator<Item = &'a Entry>) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for entry in entries {
        *counts.entry(entry.info.status.as_str()).or_default() += 1;
    }
    counts.iter().map(|(s, n)| format!("{s}_{n}_")).collect()
}
