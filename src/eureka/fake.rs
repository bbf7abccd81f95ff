//! An in-memory Eureka server behind the [`Client`] trait, for unit tests: apps of
//! instances, status overrides, scripted failures, and every call made, told on a
//! channel as it ends (so a test waits for a call, never sleeps).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::{Receiver, Sender, unbounded};
use parking_lot::Mutex;

use super::client::{Client, InstanceInfo, Status};
use crate::{Error, HttpError, HttpErrorKind, Result};

/// A call the fake answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Call {
    Register {
        app: String,
        id: String,
        status: Status,
    },
    Renew {
        app: String,
        id: String,
        known: bool,
    },
    Cancel {
        app: String,
        id: String,
    },
    SetOverride {
        app: String,
        id: String,
        status: Status,
    },
    RemoveOverride {
        app: String,
        id: String,
    },
    App(String),
    Vip(String),
    AppsCount,
    /// A call that failed as scripted.
    Failed(&'static str),
}

#[derive(Default)]
struct State {
    /// By app (upper case), by instance id: the instance as registered, and the
    /// override (`Unknown`: none).
    apps: BTreeMap<String, BTreeMap<String, (InstanceInfo, Status)>>,
    /// The next calls fail (any kind): with these errors, in turn.
    failures: VecDeque<Error>,
    /// The base path 404s everywhere: `app` answers `None` and `apps_count` fails.
    wrong_base: bool,
}

/// The fake server, shared by every fork of its client.
#[derive(Clone)]
pub(crate) struct Eureka {
    state: Arc<Mutex<State>>,
    calls_tx: Sender<Call>,
    calls: Receiver<Call>,
}

/// A client of the fake (a fork has its own shutdown flag).
#[derive(Clone)]
pub(crate) struct FakeClient {
    eureka: Eureka,
    down: Arc<AtomicBool>,
}

impl std::fmt::Debug for FakeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FakeClient")
    }
}

impl Eureka {
    pub(crate) fn new() -> Eureka {
        let (calls_tx, calls) = unbounded();
        Eureka {
            state: Arc::default(),
            calls_tx,
            calls,
        }
    }

    pub(crate) fn client(&self) -> FakeClient {
        FakeClient {
            eureka: self.clone(),
            down: Arc::default(),
        }
    }

    /// The next call answered, waited for with a bound.
    pub(crate) fn next_call(&self) -> Call {
        self.calls
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("a call")
    }

    /// Drops every call told so far.
    pub(crate) fn drain(&self) {
        while self.calls.try_recv().is_ok() {}
    }

    /// Puts an instance in, as another client's registration would.
    pub(crate) fn put(&self, info: InstanceInfo) {
        let mut state = self.state.lock();
        let app = state.apps.entry(info.app.to_ascii_uppercase()).or_default();
        app.insert(info.instance_id.clone(), (info, Status::Unknown));
    }

    /// Forgets an instance behind its client's back.
    pub(crate) fn forget(&self, app: &str, id: &str) {
        if let Some(app) = self.state.lock().apps.get_mut(&app.to_ascii_uppercase()) {
            app.remove(id);
        }
    }

    /// The instance as the server holds it (status as shown).
    pub(crate) fn get(&self, app: &str, id: &str) -> Option<InstanceInfo> {
        let state = self.state.lock();
        let (info, over) = state.apps.get(&app.to_ascii_uppercase())?.get(id)?;
        Some(shown(info, *over))
    }

    /// The next `n` calls fail with a connect error.
    pub(crate) fn fail_next(&self, n: usize) {
        let mut state = self.state.lock();
        for _ in 0..n {
            state.failures.push_back(
                HttpError::new("eureka", "GET /apps", "http://fake", HttpErrorKind::Connect).into(),
            );
        }
    }

    /// From now on the base path 404s everywhere (or answers again).
    pub(crate) fn set_wrong_base(&self, wrong: bool) {
        self.state.lock().wrong_base = wrong;
    }

    fn told(&self, call: Call) {
        let _ = self.calls_tx.send(call);
    }
}

/// An instance as reads show it: the override wins over its own status.
fn shown(info: &InstanceInfo, over: Status) -> InstanceInfo {
    let mut info = info.clone();
    if over != Status::Unknown {
        info.status = over;
    }
    info.overridden_status = over;
    info
}

impl FakeClient {
    /// Sets the override of a known instance (`Unknown`: none); the app upper-cased.
    fn set_override(&self, app: &str, id: &str, status: Status) -> String {
        let app = app.to_ascii_uppercase();
        let mut state = self.eureka.state.lock();
        if let Some((_, over)) = state.apps.get_mut(&app).and_then(|a| a.get_mut(id)) {
            *over = status;
        }
        app
    }

    /// A scripted failure, or a cancelled call after shutdown.
    fn check(&self, what: &'static str) -> Result<()> {
        if self.down.load(Ordering::SeqCst) {
            return Err(
                HttpError::new("eureka", what, "http://fake", HttpErrorKind::Cancelled).into(),
            );
        }
        let failure = self.eureka.state.lock().failures.pop_front();
        match failure {
            Some(err) => {
                self.eureka.told(Call::Failed(what));
                Err(err)
            }
            None => Ok(()),
        }
    }
}

impl Client for FakeClient {
    fn register(&self, instance: &InstanceInfo) -> Result<()> {
        self.check("register")?;
        let app = instance.app.to_ascii_uppercase();
        {
            let mut state = self.eureka.state.lock();
            let entry = state.apps.entry(app.clone()).or_default();
            let over = entry
                .get(&instance.instance_id)
                .map_or(Status::Unknown, |(_, over)| *over);
            entry.insert(instance.instance_id.clone(), (instance.clone(), over));
        }
        self.eureka.told(Call::Register {
            app,
            id: instance.instance_id.clone(),
            status: instance.status,
        });
        Ok(())
    }

    fn renew(&self, app: &str, id: &str) -> Result<bool> {
        self.check("renew")?;
        let app = app.to_ascii_uppercase();
        let known = self
            .eureka
            .state
            .lock()
            .apps
            .get(&app)
            .is_some_and(|a| a.contains_key(id));
        self.eureka.told(Call::Renew {
            app,
            id: id.to_owned(),
            known,
        });
        Ok(known)
    }

    fn cancel(&self, app: &str, id: &str) -> Result<bool> {
        self.check("cancel")?;
        let app = app.to_ascii_uppercase();
        let known = self
            .eureka
            .state
            .lock()
            .apps
            .get_mut(&app)
            .and_then(|a| a.remove(id))
            .is_some();
        self.eureka.told(Call::Cancel {
            app,
            id: id.to_owned(),
        });
        Ok(known)
    }

    fn set_status_override(&self, app: &str, id: &str, status: Status) -> Result<()> {
        self.check("set_status_override")?;
        let app = self.set_override(app, id, status);
        self.eureka.told(Call::SetOverride {
            app,
            id: id.to_owned(),
            status,
        });
        Ok(())
    }

    fn remove_status_override(&self, app: &str, id: &str) -> Result<()> {
        self.check("remove_status_override")?;
        let app = self.set_override(app, id, Status::Unknown);
        self.eureka.told(Call::RemoveOverride {
            app,
            id: id.to_owned(),
        });
        Ok(())
    }

    fn app(&self, app: &str) -> Result<Option<Vec<InstanceInfo>>> {
        self.check("app")?;
        let app = app.to_ascii_uppercase();
        let answer = {
            let state = self.eureka.state.lock();
            match state.wrong_base {
                true => None,
                false => state
                    .apps
                    .get(&app)
                    .filter(|a| !a.is_empty())
                    .map(|a| a.values().map(|(i, o)| shown(i, *o)).collect()),
            }
        };
        self.eureka.told(Call::App(app));
        Ok(answer)
    }

    fn vip(&self, vip: &str) -> Result<Vec<InstanceInfo>> {
        self.check("vip")?;
        let answer = self
            .eureka
            .state
            .lock()
            .apps
            .values()
            .flat_map(|a| a.values())
            .filter(|(i, _)| i.vip_address.as_deref() == Some(vip))
            .map(|(i, o)| shown(i, *o))
            .collect();
        self.eureka.told(Call::Vip(vip.to_owned()));
        Ok(answer)
    }

    fn apps_count(&self) -> Result<usize> {
        self.check("apps_count")?;
        self.eureka.told(Call::AppsCount);
        let state = self.eureka.state.lock();
        match state.wrong_base {
            true => {
                Err(
                    HttpError::new("eureka", "GET /apps/", "http://fake", HttpErrorKind::Status)
                        .with_status(404)
                        .into(),
                )
            }
            false => Ok(state.apps.values().filter(|a| !a.is_empty()).count()),
        }
    }

    fn fork(&self) -> Arc<dyn Client> {
        Arc::new(FakeClient {
            eureka: self.eureka.clone(),
            down: Arc::default(),
        })
    }

    fn shutdown(&self) {
        self.down.store(true, Ordering::SeqCst);
    }
}
