//! A real ZooKeeper (3.8.0, Debian's jars) on loopback for integration tests, started
//! by the launcher in `server.rs` (free ports, temp dir, supervisor, stop, kill, pause,
//! restarts, log): this file holds only what is ZooKeeper's. The harness drives
//! ZooKeeper with the four-letter words, with the real client's shell (zkCli, in
//! `zk_cli.rs`) and with a raw wire client (`zk_wire.rs`), never with waypost's own.
//!
//! - [`shared`]: one standalone server per test binary, for tests that need no restart
//!   and use paths of their own ([`super::unique`]).
//! - [`Zk::new`]: a standalone server of the test's own; restart, kill, pause as
//!   [`Server`] does.
//! - [`Ensemble::start`]: three servers on loopback (`zk_ensemble.rs`).
//!
//! Each runs `java -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -cp JARS
//! org.apache.zookeeper.server.quorum.QuorumPeerMain DIR/zoo.cfg` on the tested config
//! ([`zoo_cfg`]: tickTime 500, sessions of 1–60 s, no connection limit, no admin
//! server, every four-letter word). It is ready when `srvr` names a mode (`ruok`
//! answers `imok` on a server that does not serve). A standalone server is ready
//! 0.6–1.2 s after spawn; the JVM start is most of it.
//!
//! Found as `bin.rs` says: `java` (`WAYPOST_JAVA_BIN` or `PATH`) and the ZooKeeper jar
//! (`WAYPOST_ZOOKEEPER_JAR`, else `/usr/share/java/zookeeper.jar`, whose manifest lists
//! its dependencies; see `java.rs` for other jars). The server logs WARN and above
//! through `slf4j-simple` (found next to the jar or in `/usr/share/java`) into its log;
//! `WAYPOST_ZOOKEEPER_LOG_LEVEL=info` logs more, elections included.
//!
//! # Pitfalls found while writing it
//!
//! - Without a logging binding (Debian's jar has none) ZooKeeper logs nothing at all,
//!   so a port taken at start-up (a `BindException`, exit status 1 after ~0.4 s) left
//!   no trace for the launcher to find: hence slf4j-simple.
//! - A four-letter word that arrives while the server is still loading its database
//!   logs an ERROR with a `NullPointerException` ("Error closing a command socket") and
//!   is answered all the same: harmless noise at the top of a log.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

pub use super::zk_cli::ZkCli;
#[allow(unused_imports)] // re-exports: used by the binaries that start ZooKeeper
pub use super::{zk_ensemble::Ensemble, zk_wire::*};

use super::java::{self, classpath, jar_near};
use super::server::{self, Port, Ports, Server};

/// The ZooKeeper jar Debian installs.
pub const DEBIAN_JAR: &str = "/usr/share/java/zookeeper.jar";
/// How to get ZooKeeper when it is missing.
pub const HINT: &str = "run ./scripts/test.sh, which installs Debian's zookeeper";
/// The server's JVM flags: measured to start fastest and use least memory (~56 MiB).
pub const SERVER_FLAGS: [&str; 3] = ["-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"];
/// The server's main class, standalone or in an ensemble.
const MAIN: &str = "org.apache.zookeeper.server.quorum.QuorumPeerMain";
/// Bound of one four-letter word from the harness (a paused server never answers).
pub const PROBE_BOUND: Duration = Duration::from_millis(500);

/// Where ZooKeeper and Java are on this machine: what every JVM of the harness runs.
#[derive(Debug, Clone)]
pub struct ZkInstall {
    pub java: PathBuf,
    /// The ZooKeeper jar.
    pub jar: PathBuf,
    /// slf4j-simple, for the server's log (`None`: the server logs nothing).
    pub log_binding: Option<PathBuf>,
    /// slf4j-nop, so that clients print no SLF4J warnings (`None`: they do, harmlessly).
    pub quiet_binding: Option<PathBuf>,
}

impl ZkInstall {
    /// The classpath of the server.
    pub fn server_classpath(&self) -> OsString {
        let mut entries = vec![self.jar.clone()];
        entries.extend(self.log_binding.clone());
        classpath(&entries)
    }

    /// The classpath of a client JVM (zkCli), with `more` first.
    pub fn client_classpath(&self, more: &[&Path]) -> OsString {
        let mut entries: Vec<PathBuf> = more.iter().map(|p| p.to_path_buf()).collect();
        entries.push(self.jar.clone());
        entries.extend(self.quiet_binding.clone());
        classpath(&entries)
    }
}

/// Java and the ZooKeeper jar, or: under `CI=true` a panic, otherwise a loud `SKIPPED:`
/// line and `None`, so the test returns early.
pub fn require_zookeeper() -> Option<ZkInstall> {
    let java = java::require_java()?;
    let jar = super::bin::require_file(
        "zookeeper",
        "WAYPOST_ZOOKEEPER_JAR",
        Path::new(DEBIAN_JAR),
        HINT,
    )?;
    Some(ZkInstall {
        java,
        log_binding: jar_near("slf4j-simple.jar", &jar),
        quiet_binding: jar_near("slf4j-nop.jar", &jar),
        jar,
    })
}

/// One standalone server per test binary, started on first use; `None` when Java or
/// the jar is missing (see [`require_zookeeper`]). Nothing stops it: its supervisor
/// ends it with the test process. Do not stop it nor set ACLs on `/`.
pub fn shared() -> Option<server::Shared<Zk>> {
    static SHARED: OnceLock<Zk> = OnceLock::new();
    let install = std::cell::OnceCell::new();
    server::shared(
        &SHARED,
        || {
            let found = require_zookeeper()?;
            let java = found.java.clone();
            let _ = install.set(found);
            Some(java)
        },
        |_| Zk::spawn(install.get().cloned().expect("found above")),
    )
}

/// What `srvr` says a server is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Standalone,
    Leader,
    Follower,
    Observer,
}

impl Mode {
    /// The mode in a `srvr` or `stat` answer; `None` for a server that does not serve
    /// ("This ZooKeeper instance is not currently serving requests").
    pub fn parse(srvr: &str) -> Option<Mode> {
        let mode = srvr.lines().find_map(|l| l.strip_prefix("Mode: "))?;
        match mode.trim() {
            "standalone" => Some(Mode::Standalone),
            "leader" => Some(Mode::Leader),
            "follower" => Some(Mode::Follower),
            "observer" => Some(Mode::Observer),
            _ => None,
        }
    }
}

/// Sends the four-letter word `word` (`srvr`, `mntr`, `cons`, `dump`, ...) to the
/// server at `addr` and reads the answer until the server closes, within
/// [`PROBE_BOUND`] for the connect and for each read.
pub fn four_letter(addr: SocketAddr, word: &str) -> io::Result<String> {
    four_letter_within(addr, word, PROBE_BOUND)
}

/// [`four_letter`] with another bound.
pub fn four_letter_within(addr: SocketAddr, word: &str, bound: Duration) -> io::Result<String> {
    assert_eq!(word.len(), 4, "a four-letter word");
    let mut conn = TcpStream::connect_timeout(&addr, bound)?;
    conn.set_read_timeout(Some(bound))?;
    conn.set_write_timeout(Some(bound))?;
    conn.write_all(word.as_bytes())?;
    let _ = conn.shutdown(Shutdown::Write);
    let mut answer = String::new();
    conn.read_to_string(&mut answer)?;
    Ok(answer)
}

/// The mode `srvr` gives for `addr`; `None` when it does not answer or does not serve.
pub fn mode_of(addr: SocketAddr) -> Option<Mode> {
    Mode::parse(&four_letter(addr, "srvr").ok()?)
}

/// The tested zoo.cfg for a server whose temp dir is `dir` (data in `dir/data`), with
/// `servers` (`server.N=...` lines) for an ensemble member.
pub fn zoo_cfg(dir: &Path, client_port: u16, servers: &str) -> String {
    let mut cfg = String::new();
    for line in [
        "tickTime=500",
        "initLimit=10",
        "syncLimit=5",
        // The defaults are 2 and 20 ticks: a client asking for 30 s would get 10 s.
        "minSessionTimeout=1000",
        "maxSessionTimeout=60000",
        "clientPortAddress=127.0.0.1",
        // Every test client is 127.0.0.1: the default allows 60 per address.
        "maxClientCnxns=0",
        "admin.enableServer=false",
        "4lw.commands.whitelist=*",
    ] {
        let _ = writeln!(cfg, "{line}");
    }
    let _ = writeln!(cfg, "dataDir={}", dir.join("data").display());
    let _ = writeln!(cfg, "clientPort={client_port}");
    cfg.push_str(servers);
    cfg
}

/// The command line (after `java`) of one start: writes `dir/zoo.cfg` first.
pub(super) fn server_args(
    install: &ZkInstall,
    ports: &Ports,
    dir: &Path,
    servers: &str,
) -> Vec<OsString> {
    let cfg = dir.join("zoo.cfg");
    std::fs::write(&cfg, zoo_cfg(dir, ports.get("client"), servers)).expect("write zoo.cfg");
    let level = std::env::var("WAYPOST_ZOOKEEPER_LOG_LEVEL").unwrap_or_else(|_| "warn".into());
    let mut args: Vec<OsString> = SERVER_FLAGS.iter().map(OsString::from).collect();
    args.extend([
        format!("-Dorg.slf4j.simpleLogger.defaultLogLevel={level}").into(),
        "-Dorg.slf4j.simpleLogger.showDateTime=true".into(),
        "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS".into(),
        "-cp".into(),
        install.server_classpath(),
        MAIN.into(),
        // Absolute: a relative one makes ZooKeeper warn.
        cfg.into(),
    ]);
    args
}

/// Whether the server on `port` serves (any mode).
pub(super) fn serving(port: u16) -> bool {
    mode_of(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).is_some()
}

/// A running ZooKeeper server on 127.0.0.1, standalone or an ensemble's member; the
/// [`Server`] it derefs to stops, starts, kills, pauses and restarts it
/// ([`restart_fresh`](Server::restart_fresh): an empty data dir, every node lost),
/// and has its dir and log. Its zkCli methods are in [`ZkCli`].
#[derive(Debug)]
pub struct Zk {
    server: Server,
    install: ZkInstall,
}

impl Zk {
    /// A standalone server of its own; `None` when Java or the jar is missing.
    pub fn new() -> Option<Zk> {
        Some(Self::spawn(require_zookeeper()?))
    }

    fn spawn(install: ZkInstall) -> Zk {
        let for_args = install.clone();
        let server = Server::builder("zookeeper", &install.java)
            .port("client", Port::CLIENT)
            .args(move |ports, dir| server_args(&for_args, ports, dir, ""))
            .ready(|ports| serving(ports.get("client")))
            .start();
        Zk { server, install }
    }

    pub(super) fn from_server(server: Server, install: ZkInstall) -> Zk {
        Zk { server, install }
    }

    pub fn install(&self) -> &ZkInstall {
        &self.install
    }

    /// The client port; the same across stops, kills and restarts.
    pub fn port(&self) -> u16 {
        self.ports().get("client")
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port()))
    }

    /// `127.0.0.1:PORT`, as clients take it.
    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port())
    }

    /// [`four_letter`] to this server.
    pub fn four_letter(&self, word: &str) -> io::Result<String> {
        four_letter(self.addr(), word)
    }

    /// Its mode now; `None` when stopped, paused, or not serving.
    pub fn mode(&self) -> Option<Mode> {
        self.pid()?;
        mode_of(self.addr())
    }
}

impl Deref for Zk {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.server
    }
}

impl DerefMut for Zk {
    fn deref_mut(&mut self) -> &mut Server {
        &mut self.server
    }
}

impl ZkCli for Zk {
    fn install(&self) -> &ZkInstall {
        &self.install
    }
    fn connect_string(&self) -> String {
        Zk::connect_string(self)
    }
}
