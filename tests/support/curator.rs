//! Apache Curator's service discovery (`curator-x-discovery`, Debian's 5.4.0) for the
//! interop tests: Java services register through Curator's `ServiceDiscovery`, so what
//! Curator writes is the format waypost's Curator layout must read, and what waypost
//! writes must come back from Curator's queries.
//!
//! `tests/support/java/WaypostCurator.java` is compiled once per test binary (javac,
//! about 1.5 s) into a temp dir that goes with the test process. It runs as:
//! - [`Curator::register`]: a child process that registers one instance and stays
//!   registered until its stdin closes; [`CuratorRegistration`] ends it on drop (the
//!   instance is unregistered and its session closed, so its node goes at once).
//! - [`Curator::query`]: `ServiceDiscovery.queryForInstances(name)`: every instance,
//!   enabled or not. One child that is not Curator's JSON fails the whole query.
//! - [`Curator::provider`]: a `ServiceProvider`'s `getAllInstances()`: what Curator
//!   hands out, without disabled instances nor children it cannot read.
//!
//! What Curator 5.4.0 writes (an ephemeral node `BASE/NAME/ID`, open ACL, parents
//! made as containers), with its default serializer:
//!
//! ```json
//! {"name":"web","id":"a1","address":"10.0.0.1","port":8080,"sslPort":null,"payload":null,"registrationTimeUTC":1796072129404,"serviceType":"DYNAMIC","uriSpec":null}
//! ```
//!
//! The default `JsonInstanceSerializer` is in "compatible" mode, the format of Curator
//! before the `enabled` field: it writes no `enabled`, even for an instance built with
//! `enabled(false)`, which then reads back as enabled. Only the serializer made with
//! `compatibleSerializationMode = false` ([`CuratorJson::Enabled`],
//! [`CuratorJson::Disabled`]) writes `"enabled":true|false` after `uriSpec`. On
//! reading, Curator ignores unknown fields and takes a missing `enabled` as true.
//!
//! Found as `bin.rs` says: `java`, `javac` (`WAYPOST_JAVAC_BIN` or `PATH`), the
//! discovery jar (`WAYPOST_CURATOR_JAR`, else `/usr/share/java/curator-x-discovery.jar`)
//! and the recipes jar that its `ServiceProvider` needs and Debian's package does not
//! pull in (`WAYPOST_CURATOR_RECIPES_JAR`, else `/usr/share/java/curator-recipes.jar`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::java::{self, CLIENT_FLAGS, ProcessDir, run_bounded};
use super::zookeeper::{ZkInstall, require_zookeeper};

/// The Java program, compiled at test time.
const SOURCE: &str = include_str!("java/WaypostCurator.java");
const CLASS: &str = "WaypostCurator";
/// How to get Curator when it is missing.
const HINT: &str =
    "run ./scripts/test.sh, which installs libcurator-discovery-java and libcurator-recipes-java";
/// Bound of javac, of a query, and of a registration until it says so.
const JAVA_BOUND: Duration = Duration::from_secs(60);
/// How long an ended registration may take to unregister and exit before SIGKILL.
const END_BOUND: Duration = Duration::from_secs(10);

/// The compiled program and what runs it.
#[derive(Debug)]
pub struct Curator {
    zk: ZkInstall,
    discovery_jar: PathBuf,
    recipes_jar: PathBuf,
    dir: ProcessDir,
    compiled_in: Duration,
}

/// Which serializer a registration writes with (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CuratorJson {
    /// Curator's default: no `enabled` field.
    Compat,
    /// The full format, `"enabled":true`.
    Enabled,
    /// The full format, `"enabled":false`.
    Disabled,
}

/// One instance as Curator read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CuratorInstance {
    pub id: String,
    pub address: String,
    pub port: u16,
    pub enabled: bool,
}

/// Java, the ZooKeeper and Curator jars and javac, the program compiled on first use;
/// or: under `CI=true` a panic, otherwise a loud `SKIPPED:` line and `None`.
pub fn require_curator() -> Option<&'static Curator> {
    static COMPILED: OnceLock<Curator> = OnceLock::new();
    if let Some(curator) = COMPILED.get() {
        return Some(curator);
    }
    let zk = require_zookeeper()?;
    let javac = java::require_javac()?;
    let discovery_jar = super::bin::require_file(
        "curator",
        "WAYPOST_CURATOR_JAR",
        Path::new("/usr/share/java/curator-x-discovery.jar"),
        HINT,
    )?;
    let recipes_jar = super::bin::require_file(
        "curator_recipes",
        "WAYPOST_CURATOR_RECIPES_JAR",
        Path::new("/usr/share/java/curator-recipes.jar"),
        HINT,
    )?;
    Some(COMPILED.get_or_init(|| Curator::compile(zk, &javac, discovery_jar, recipes_jar)))
}

impl Curator {
    fn compile(zk: ZkInstall, javac: &Path, discovery_jar: PathBuf, recipes_jar: PathBuf) -> Self {
        let dir = ProcessDir::new("curator");
        let source = dir.path().join(format!("{CLASS}.java"));
        std::fs::write(&source, SOURCE).expect("write the Java source");
        let mut curator = Curator {
            zk,
            discovery_jar,
            recipes_jar,
            dir,
            compiled_in: Duration::ZERO,
        };
        let mut cmd = Command::new(javac);
        cmd.args(CLIENT_FLAGS.iter().map(|f| format!("-J{f}")))
            .arg("-d")
            .arg(curator.dir.path())
            .arg("-cp")
            .arg(curator.classpath(false))
            .arg(&source);
        let run = run_bounded(cmd, "", JAVA_BOUND).unwrap_or_else(|e| panic!("javac: {e}"));
        assert!(
            run.status.success(),
            "javac {}: {}{}",
            source.display(),
            run.stdout,
            run.stderr
        );
        curator.compiled_in = run.took;
        curator
    }

    /// How long javac took.
    pub fn compiled_in(&self) -> Duration {
        self.compiled_in
    }

    /// The Curator jars (their manifests bring ZooKeeper, Guava, Jackson, slf4j-api),
    /// the ZooKeeper client's, and with `program` the compiled class.
    fn classpath(&self, program: bool) -> std::ffi::OsString {
        let mut more: Vec<&Path> = Vec::new();
        if program {
            more.push(self.dir.path());
        }
        more.extend([self.discovery_jar.as_path(), self.recipes_jar.as_path()]);
        self.zk.client_classpath(&more)
    }

    fn command(&self, connect: &str, base: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.zk.java);
        cmd.args(CLIENT_FLAGS)
            .arg("-cp")
            .arg(self.classpath(true))
            .args([CLASS, connect, base])
            .args(args);
        cmd
    }

    /// Registers instance `id` of service `name` at `address:port` under `base`
    /// through Curator's `ServiceDiscovery` with its default serializer; returns once
    /// Curator says it is registered (panics after a minute).
    pub fn register(
        &self,
        connect: &str,
        base: &str,
        name: &str,
        id: &str,
        address: &str,
        port: u16,
    ) -> CuratorRegistration {
        self.register_json(connect, base, name, id, address, port, CuratorJson::Compat)
    }

    /// [`register`](Self::register) with the serializer `json`.
    #[allow(clippy::too_many_arguments)]
    pub fn register_json(
        &self,
        connect: &str,
        base: &str,
        name: &str,
        id: &str,
        address: &str,
        port: u16,
        json: CuratorJson,
    ) -> CuratorRegistration {
        let json = match json {
            CuratorJson::Compat => "compat",
            CuratorJson::Enabled => "enabled",
            CuratorJson::Disabled => "disabled",
        };
        let port = port.to_string();
        let args = ["register", name, id, address, &port, json];
        CuratorRegistration::spawn(self.command(connect, base, &args), id, &self.dir)
    }

    /// `queryForInstances(name)` under `base`: every instance, sorted by id; a panic
    /// when Curator fails (see [`try_query`](Self::try_query)).
    pub fn query(&self, connect: &str, base: &str, name: &str) -> Vec<CuratorInstance> {
        self.try_query(connect, base, name)
            .unwrap_or_else(|e| panic!("Curator query {base} {name}: {e}"))
    }

    /// [`query`](Self::query), with Curator's error (a child that is not its JSON fails
    /// the whole query).
    pub fn try_query(
        &self,
        connect: &str,
        base: &str,
        name: &str,
    ) -> Result<Vec<CuratorInstance>, String> {
        self.instances(connect, base, "query", name)
    }

    /// A `ServiceProvider`'s `getAllInstances()`: the enabled instances Curator can read,
    /// sorted by id.
    pub fn provider(&self, connect: &str, base: &str, name: &str) -> Vec<CuratorInstance> {
        self.instances(connect, base, "provider", name)
            .unwrap_or_else(|e| panic!("Curator provider {base} {name}: {e}"))
    }

    fn instances(
        &self,
        connect: &str,
        base: &str,
        how: &str,
        name: &str,
    ) -> Result<Vec<CuratorInstance>, String> {
        let run = run_bounded(self.command(connect, base, &[how, name]), "", JAVA_BOUND)?;
        if !run.status.success() || !run.stdout.lines().any(|l| l == "done") {
            return Err(format!("{}: {}{}", run.status, run.stderr, run.stdout));
        }
        run.stdout
            .lines()
            .filter_map(|l| l.strip_prefix("instance "))
            .map(|l| parse_instance(l).ok_or_else(|| format!("a bad line {l:?}")))
            .collect()
    }
}

/// `ID ADDRESS PORT ENABLED`, as the program prints an instance.
fn parse_instance(line: &str) -> Option<CuratorInstance> {
    let mut fields = line.split(' ');
    let instance = CuratorInstance {
        id: fields.next()?.to_owned(),
        address: fields.next()?.to_owned(),
        port: fields.next()?.parse().ok()?,
        enabled: fields.next()?.parse().ok()?,
    };
    fields.next().is_none().then_some(instance)
}

/// One instance registered through Curator by a child process. Dropping it closes the
/// child's stdin: Curator unregisters and closes its session (the node goes at once),
/// and the process exits; SIGKILL after [`END_BOUND`].
#[derive(Debug)]
pub struct CuratorRegistration {
    child: Child,
    stdin: Option<ChildStdin>,
    /// Reads the child's stdout into `lines`; joined on drop.
    reader: Option<JoinHandle<()>>,
    lines: Receiver<String>,
    id: String,
    registered_after: Duration,
    log: PathBuf,
}

impl CuratorRegistration {
    fn spawn(mut cmd: Command, id: &str, dir: &ProcessDir) -> CuratorRegistration {
        let log = dir
            .path()
            .join(format!("register-{}.log", super::unique(id)));
        let stderr = std::fs::File::create(&log).expect("create the registration's log");
        let started = Instant::now();
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn java for Curator");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines): (_, Receiver<String>) = crossbeam_channel::unbounded();
        let reader = std::thread::Builder::new()
            .name("curator-register-out".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let _ = tx.send(line);
                }
            })
            .expect("spawn the reader");
        let mut registration = CuratorRegistration {
            stdin: child.stdin.take(),
            child,
            reader: Some(reader),
            lines,
            id: id.to_owned(),
            registered_after: Duration::ZERO,
            log,
        };
        let want = format!("registered {id}");
        let deadline = started + JAVA_BOUND;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match registration.lines.recv_timeout(left) {
                Ok(line) if line == want => break,
                Ok(_) => continue,
                Err(RecvTimeoutError::Timeout) => panic!(
                    "Curator did not register {id} within {JAVA_BOUND:?}: {}",
                    registration.log_text()
                ),
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "Curator exited before registering {id}: {}",
                    registration.log_text()
                ),
            }
        }
        registration.registered_after = started.elapsed();
        registration
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// From spawn to Curator saying the instance is registered.
    pub fn registered_after(&self) -> Duration {
        self.registered_after
    }

    /// The process's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the process wrote to stderr.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, as a crash: the session, and so the node, lives on until its timeout
    /// (10 s).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for CuratorRegistration {
    fn drop(&mut self) {
        drop(self.stdin.take());
        // The reader ends, and the channel disconnects, when the process exits.
        let deadline = Instant::now() + END_BOUND;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(_) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    eprintln!(
                        "Curator registration {} outlived its stdin by {END_BOUND:?}: SIGKILL",
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
