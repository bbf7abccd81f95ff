//! Third-party Eureka clients, each driven as a child process by a small program in
//! `tests/support/eureka/`: eureka-js-client 4.5.0 (`ejs-driver.js`, run by `node`;
//! JSON, full fetches or deltas) and py-eureka-client 0.13.3 (`py-driver.py`, run by
//! its venv's python; XML, deltas after the first fetch). They check that the Eureka
//! double answers as a server those clients work with.
//!
//! Found as `bin.rs` says: `node` (`WAYPOST_NODE_BIN` or `PATH`); the folder holding
//! `node_modules/eureka-js-client` (`WAYPOST_EJS_DIR`, else
//! `${WAYPOST_CACHE:-$HOME/.cache/waypost}/ejs`); the venv with py-eureka-client
//! (`WAYPOST_PYEUREKA_VENV`, else `.../waypost/pyeureka`). `scripts/test.sh` installs
//! both there. Missing: a panic under `CI=true`, a loud skip otherwise.
//!
//! # Driver protocol
//! A driver gets one JSON config (url, app, id, port, intervals) and prints one JSON
//! line per event on stdout: `registered`, `heartbeat`, `fetched` (with `instances`:
//! every instance the client holds, `{app, id, host, port, status}`), `lookup`, `status`,
//! `cancelled`, `error` (`what`, `message`), `started`, `stopped`. It reads commands on
//! stdin: `lookup APP`, `status STATUS` (py only), `stop`; the end of stdin stops it.
//! [`EurekaClient`] reads the lines on a thread into a channel: every wait is bounded.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use serde_json::{Value, json};

use super::BOUND;
use super::bin;
use super::java::ProcessDir;

const EJS_DRIVER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/support/eureka/ejs-driver.js"
);
const PY_DRIVER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/support/eureka/py-driver.py"
);
const HINT: &str = "run ./scripts/test.sh, which installs eureka-js-client and py-eureka-client";
/// How long a stopped client may take to exit before SIGKILL.
const EXIT_BOUND: Duration = Duration::from_secs(10);

/// Which client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// eureka-js-client.
    Ejs,
    /// py-eureka-client.
    Py,
}

/// A client found on this machine: the interpreter and its arguments before the config.
#[derive(Debug, Clone)]
pub struct Install {
    kind: Kind,
    program: PathBuf,
    args: Vec<PathBuf>,
}

/// eureka-js-client, or what `bin::missing` does.
pub fn require_ejs() -> Option<Install> {
    let node = bin::require("node", HINT)?;
    let dir = located("WAYPOST_EJS_DIR", "ejs")?;
    let package = dir.join("node_modules/eureka-js-client/package.json");
    if !package.is_file() {
        return missing("eureka-js-client", "WAYPOST_EJS_DIR", &package);
    }
    Some(Install {
        kind: Kind::Ejs,
        program: node,
        args: vec![EJS_DRIVER.into(), dir],
    })
}

/// py-eureka-client in its venv, or what `bin::missing` does.
pub fn require_py() -> Option<Install> {
    let venv = located("WAYPOST_PYEUREKA_VENV", "pyeureka")?;
    let python = venv.join("bin/python");
    let installed = std::fs::read_dir(venv.join("lib")).ok().and_then(|dirs| {
        dirs.filter_map(Result::ok)
            .map(|d| d.path().join("site-packages/py_eureka_client/__init__.py"))
            .find(|p| p.is_file())
    });
    if !python.is_file() || installed.is_none() {
        return missing("py-eureka-client", "WAYPOST_PYEUREKA_VENV", &venv);
    }
    Some(Install {
        kind: Kind::Py,
        program: python,
        args: vec![PY_DRIVER.into()],
    })
}

/// `var` if set, else `cache/NAME`.
fn located(var: &str, name: &str) -> Option<PathBuf> {
    let dir = std::env::var_os(var)
        .map(PathBuf::from)
        .or_else(|| bin::cache_dir().map(|c| c.join(name)));
    match dir {
        Some(dir) => Some(dir),
        None => missing(name, var, Path::new("$HOME/.cache/waypost")),
    }
}

/// A panic under `CI=true`, else a loud skip line and `None`.
fn missing<T>(name: &str, var: &str, looked: &Path) -> Option<T> {
    let looked = format!("looked for {}; set {var} or {HINT}", looked.display());
    let _ = bin::missing(name, &looked);
    None
}

/// What a client is started with.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The double's URL (`http://127.0.0.1:P/eureka`).
    pub url: String,
    pub app: String,
    pub id: String,
    pub port: u16,
    /// Heartbeat interval: ejs takes milliseconds, py whole seconds (at least 1).
    pub heartbeat: Duration,
    /// Registry fetch interval (ejs; py fetches after each heartbeat).
    pub fetch: Duration,
    /// ejs: deltas after the first full fetch.
    pub delta: bool,
    /// py: `leaseInfo.durationInSecs` (ejs sends none: 90 s).
    pub lease_secs: u64,
}

impl ClientConfig {
    /// Short intervals for tests: heartbeats and fetches every 300 ms (py: 1 s), a 3 s lease.
    pub fn new(url: &str, app: &str, id: &str, port: u16) -> ClientConfig {
        ClientConfig {
            url: url.into(),
            app: app.into(),
            id: id.into(),
            port,
            heartbeat: Duration::from_millis(300),
            fetch: Duration::from_millis(300),
            delta: false,
            lease_secs: 3,
        }
    }

    fn json(&self) -> String {
        json!({
            "url": self.url, "app": self.app, "id": self.id, "port": self.port,
            "heartbeat_ms": self.heartbeat.as_millis() as u64,
            "heartbeat_secs": self.heartbeat.as_secs().max(1),
            "fetch_ms": self.fetch.as_millis() as u64,
            "delta": self.delta, "lease_secs": self.lease_secs,
        })
        .to_string()
    }
}

/// One event a driver printed, and when (since the client was spawned).
#[derive(Debug, Clone)]
pub struct ClientEvent {
    pub at: Duration,
    pub value: Value,
}

impl ClientEvent {
    pub fn name(&self) -> &str {
        self.value["event"].as_str().unwrap_or("")
    }

    /// `(app, id, status)` of each instance of a `fetched` or `lookup` event.
    pub fn instances(&self) -> Vec<(String, String, String)> {
        let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
        self.value["instances"]
            .as_array()
            .map(|all| {
                all.iter()
                    .map(|i| (text(&i["app"]), text(&i["id"]), text(&i["status"])))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// True when the instances include `id`.
    pub fn sees(&self, id: &str) -> bool {
        self.instances().iter().any(|(_, i, _)| i == id)
    }
}

/// A running client; dropping it closes its stdin (it deregisters and exits), then
/// kills it if it outlives [`EXIT_BOUND`].
#[derive(Debug)]
pub struct EurekaClient {
    kind: Kind,
    child: Child,
    stdin: Option<ChildStdin>,
    events: Receiver<ClientEvent>,
    /// Every event read so far (for failure messages).
    seen: Vec<ClientEvent>,
    reader: Option<JoinHandle<()>>,
    stderr: PathBuf,
    _dir: ProcessDir,
}

impl EurekaClient {
    /// Spawns `install`'s driver with `config`.
    pub fn spawn(install: &Install, config: &ClientConfig) -> EurekaClient {
        let dir = ProcessDir::new("eureka-client");
        let stderr = dir.path().join("stderr.log");
        let started = Instant::now();
        let mut child = Command::new(&install.program)
            .args(&install.args)
            .arg(config.json())
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("create the client's log"))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {:?}: {e}", install.program));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, events) = crossbeam_channel::unbounded();
        let reader = std::thread::Builder::new()
            .name("eureka-client-out".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let value = serde_json::from_str(&line)
                        .unwrap_or_else(|_| json!({"event": "output", "line": line}));
                    let event = ClientEvent {
                        at: started.elapsed(),
                        value,
                    };
                    if tx.send(event).is_err() {
                        break;
                    }
                }
            })
            .expect("spawn the reader");
        EurekaClient {
            kind: install.kind,
            stdin: child.stdin.take(),
            child,
            events,
            seen: Vec::new(),
            reader: Some(reader),
            stderr,
            _dir: dir,
        }
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next event `want` accepts (skipping others), within [`BOUND`]; panics with
    /// the events and stderr so far, naming `what`, when none comes.
    pub fn wait(&mut self, what: &str, want: impl Fn(&ClientEvent) -> bool) -> ClientEvent {
        let deadline = Instant::now() + BOUND;
        loop {
            match self.events.recv_deadline(deadline) {
                Ok(event) => {
                    self.seen.push(event.clone());
                    if want(&event) {
                        return event;
                    }
                }
                Err(e) => panic!(
                    "{:?}: no {what} within {BOUND:?} ({e}); events: {:#?}; stderr: {}",
                    self.kind,
                    self.seen.iter().map(|e| &e.value).collect::<Vec<_>>(),
                    self.stderr_text()
                ),
            }
        }
    }

    /// The next event named `name`.
    pub fn wait_event(&mut self, name: &str) -> ClientEvent {
        self.wait(name, |e| e.name() == name)
    }

    /// Every event read so far (by the waits).
    pub fn events(&self) -> &[ClientEvent] {
        &self.seen
    }

    /// Sends a command line.
    pub fn send(&mut self, command: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{command}").expect("write a command");
        stdin.flush().expect("flush a command");
    }

    /// `lookup APP`: the instances the client gives for `app` now.
    pub fn lookup(&mut self, app: &str) -> ClientEvent {
        self.send(&format!("lookup {app}"));
        self.wait_event("lookup")
    }

    /// `stop`: waits for `stopped` and for the process to exit.
    pub fn stop(mut self) -> Duration {
        let started = Instant::now();
        self.send("stop");
        self.wait_event("stopped");
        self.finish();
        started.elapsed()
    }

    /// SIGKILL, as a crash: no deregistration.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// What the driver wrote to stderr.
    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Closes stdin, waits (bounded) for the output to end, kills past the bound, reaps.
    fn finish(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + EXIT_BOUND;
        loop {
            match self.events.recv_deadline(deadline) {
                Ok(event) => self.seen.push(event),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    eprintln!(
                        "{:?} client {} outlived its stdin by {EXIT_BOUND:?}: SIGKILL",
                        self.kind,
                        self.child.id()
                    );
                    let _ = self.child.kill();
                    break;
                }
            }
        }
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

impl Drop for EurekaClient {
    fn drop(&mut self) {
        self.finish();
    }
}
