//! zkCli, ZooKeeper's own command-line client (`org.apache.zookeeper.ZooKeeperMain`,
//! run with `java -cp` on the same jars as the server), as the reference client of the
//! interop tests: what it writes, waypost must read, and the other way round.
//!
//! Every call is a JVM of its own (about 0.5 s here: start, connect, command, close),
//! bounded by [`CLI_BOUND`]. One-shot mode (`-server CONNECT CMD ARGS...`) runs one
//! command and exits 0, or 1 with the error on stderr (`Node does not exist: /x`,
//! `Node already exists: /x`, `Insufficient permission : /x`); its session ends with
//! it, so an ephemeral node made by zkCli is gone at once. Script mode (commands on
//! stdin, one per line) runs them on one session, which ends at the end of input; an
//! error there does not change the exit status.
//!
//! zkCli prints its own lines to stdout around the answer (`Connecting to ...`,
//! `WATCHER::`, `WatchedEvent state:SyncConnected ...`, blank lines), and not always in
//! the same order as the answer, since a watcher thread prints them: [`answer`] drops
//! them, so data made of blank lines cannot be told apart (the tests use none).
//! `Created /x` goes to stderr.

use std::process::Command;
use std::time::Duration;

use super::java::{CLIENT_FLAGS, Run, run_bounded};
use super::zookeeper::ZkInstall;

/// The longest one zkCli call may take before it is killed (a server that is down or
/// paused makes zkCli retry for ever).
pub const CLI_BOUND: Duration = Duration::from_secs(30);

/// zkCli's own lines, which [`answer`] drops.
const NOISE: [&str; 5] = [
    "Connecting to ",
    "WATCHER::",
    "WatchedEvent state:",
    "Welcome to ZooKeeper!",
    "JLine support is ",
];

/// zkCli's stdout without its own lines and blank lines, joined by newlines.
pub fn answer(stdout: &str) -> String {
    let lines = stdout
        .lines()
        .filter(|l| !l.trim().is_empty() && !NOISE.iter().any(|n| l.starts_with(n)));
    lines.collect::<Vec<_>>().join("\n")
}

/// Runs zkCli against `connect` with `args` (one-shot) or, when `args` is empty, the
/// commands of `script` on one session.
pub fn run_zkcli(
    install: &ZkInstall,
    connect: &str,
    args: &[&str],
    script: &str,
) -> Result<Run, String> {
    let mut cmd = Command::new(&install.java);
    cmd.args(CLIENT_FLAGS)
        .arg("-cp")
        .arg(install.client_classpath(&[]))
        .args(["org.apache.zookeeper.ZooKeeperMain", "-server", connect])
        .args(args);
    run_bounded(cmd, script, CLI_BOUND)
}

/// zkCli against a server or an ensemble: [`ZkCli::connect_string`] is where it
/// connects.
pub trait ZkCli {
    fn install(&self) -> &ZkInstall;
    fn connect_string(&self) -> String;

    /// `zkCli -server CONNECT ARGS...`: its [`answer`], or a panic with its stderr.
    fn zkcli(&self, args: &[&str]) -> String {
        self.try_zkcli(args)
            .unwrap_or_else(|e| panic!("zkCli {args:?} failed: {e}"))
    }

    /// [`zkcli`](Self::zkcli), with the exit status and stderr as the error.
    fn try_zkcli(&self, args: &[&str]) -> Result<String, String> {
        assert!(!args.is_empty(), "a command");
        let run = run_zkcli(self.install(), &self.connect_string(), args, "")?;
        if run.status.success() {
            Ok(answer(&run.stdout))
        } else {
            Err(format!(
                "{}: {}{}",
                run.status,
                run.stderr.trim(),
                answer(&run.stdout)
            ))
        }
    }

    /// The commands `lines`, one after the other on one session (zkCli reading stdin),
    /// which ends after the last: the [`answer`] of them all, and stderr (errors).
    fn zkcli_script(&self, lines: &[&str]) -> (String, String) {
        let mut script = lines.join("\n");
        script.push('\n');
        let run = run_zkcli(self.install(), &self.connect_string(), &[], &script)
            .unwrap_or_else(|e| panic!("zkCli script {lines:?}: {e}"));
        (answer(&run.stdout), run.stderr)
    }

    /// Creates the persistent node `path` with `data` (`data` must not start with `-`:
    /// zkCli would take it for an option).
    fn create(&self, path: &str, data: &str) {
        self.zkcli(&["create", path, data]);
    }

    /// Deletes `path`, which must have no children.
    fn delete(&self, path: &str) {
        self.zkcli(&["delete", path]);
    }

    /// Deletes `path` and everything under it (`deleteall`).
    fn delete_all(&self, path: &str) {
        self.zkcli(&["deleteall", path]);
    }

    /// The children of `path`, as zkCli lists them (sorted); a panic if there is no
    /// such node.
    fn ls(&self, path: &str) -> Vec<String> {
        let out = self.zkcli(&["ls", path]);
        let list = out
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix('[')?.strip_suffix(']'))
            .unwrap_or_else(|| panic!("no list in zkCli's ls {path}: {out:?}"));
        list.split(", ")
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The data of `path` as text (empty for none), `None` when there is no such node.
    fn get(&self, path: &str) -> Option<String> {
        match self.try_zkcli(&["get", path]) {
            Ok(data) => Some(data),
            Err(e) if e.contains("Node does not exist") => None,
            Err(e) => panic!("zkCli get {path} failed: {e}"),
        }
    }

    /// Whether `path` exists (`stat`, which needs no permission).
    fn exists(&self, path: &str) -> bool {
        match self.try_zkcli(&["stat", path]) {
            Ok(_) => true,
            Err(e) if e.contains("Node does not exist") => false,
            Err(e) => panic!("zkCli stat {path} failed: {e}"),
        }
    }

    /// Gives `path` the ACL "all permissions for the digest user `user` with
    /// `password`, nobody else", in one session that authenticates first; the digest id
    /// the server made, `user:base64(sha1("user:password"))`.
    fn set_acl_digest(&self, path: &str, user: &str, password: &str) -> String {
        let auth = format!("addauth digest {user}:{password}");
        let set = format!("setAcl {path} auth::cdrwa");
        let get = format!("getAcl {path}");
        let (out, err) = self.zkcli_script(&[&auth, &set, &get]);
        // getAcl prints `'digest,'user:HASH` and then `: cdrwa`.
        let id = out
            .lines()
            .find_map(|l| l.strip_prefix("'digest,'"))
            .unwrap_or_else(|| panic!("no digest ACL on {path} after setAcl: {out}\n{err}"));
        assert!(id.starts_with(&format!("{user}:")), "{out}");
        id.trim().to_owned()
    }

    /// The data of `path` read by a session authenticated as `user` with `password`;
    /// the error zkCli printed (`Insufficient permission : PATH` for NoAuth) otherwise.
    fn get_as(&self, path: &str, user: &str, password: &str) -> Result<String, String> {
        let auth = format!("addauth digest {user}:{password}");
        let get = format!("get {path}");
        let (data, err) = self.zkcli_script(&[&auth, &get]);
        if err.contains("Insufficient permission") || err.contains("Node does not exist") {
            return Err(err.trim().to_owned());
        }
        Ok(data)
    }
}

/// zkCli against any connect string: `cli_at(install, "127.0.0.1:1,127.0.0.1:2")`.
#[derive(Debug, Clone)]
pub struct CliAt {
    install: ZkInstall,
    connect: String,
}

/// A [`ZkCli`] that connects to `connect`.
pub fn cli_at(install: &ZkInstall, connect: &str) -> CliAt {
    CliAt {
        install: install.clone(),
        connect: connect.to_owned(),
    }
}

impl ZkCli for CliAt {
    fn install(&self) -> &ZkInstall {
        &self.install
    }
    fn connect_string(&self) -> String {
        self.connect.clone()
    }
}
