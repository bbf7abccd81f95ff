//! The `waypost` command (feature `cli`, issue 24), run as a process against real
//! registries from `tests/support/`, a file, and a terminal under tmux.
//!
//! Each test spawns the binary cargo built for this test (`CARGO_BIN_EXE_waypost`),
//! reads its stdout line by line on a thread, and waits for what it expects with a
//! bound. Ctrl-C is SIGINT sent with `kill -INT`, or the keys themselves under tmux.

// A build without some backends leaves their helpers unused.
#![cfg_attr(
    not(all(
        feature = "consul",
        feature = "etcd",
        feature = "zk",
        feature = "eureka"
    )),
    allow(dead_code)
)]

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use crossbeam_channel::{Receiver, bounded, unbounded};
use serde_json::Value;
use support::BOUND;
use support::scratch::Scratch;

const WAYPOST: &str = env!("CARGO_BIN_EXE_waypost");

/// A finished run: exit code, stdout, stderr.
#[derive(Debug)]
struct Done {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `waypost ARGS` to its end, within `BOUND`.
fn run(args: &[&str]) -> Done {
    let mut running = Running::spawn(args);
    let status = running.wait_exit();
    // Every line, up to the end of stdout (the reader may still be on its way).
    let mut lines = Vec::new();
    while let Ok(line) = running.lines.recv_timeout(BOUND) {
        lines.push(line);
    }
    let stdout = lines.join("\n");
    Done {
        code: status.code(),
        stdout,
        stderr: running.stderr(),
    }
}

/// A `waypost` process running: its stdout lines on a channel, its stderr collected,
/// its exit status on another channel. Killed on drop if still running.
struct Running {
    pid: u32,
    lines: Receiver<String>,
    exited: Receiver<ExitStatus>,
    status: Option<ExitStatus>,
    /// Its stderr, a line at a time.
    stderr: Receiver<String>,
}

impl Running {
    fn spawn(args: &[&str]) -> Running {
        let mut child: Child = Command::new(WAYPOST)
            .args(args)
            .env_remove("CONSUL_HTTP_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn waypost");
        let (line_tx, lines) = unbounded();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = line_tx.send(line);
            }
        });
        let (err_tx, stderr) = unbounded();
        let err_pipe = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(err_pipe).lines().map_while(Result::ok) {
                let _ = err_tx.send(line);
            }
        });
        let pid = child.id();
        let (exit_tx, exited) = bounded(1);
        std::thread::spawn(move || {
            let status = child.wait().expect("wait for waypost");
            let _ = exit_tx.send(status);
        });
        Running {
            pid,
            lines,
            exited,
            status: None,
            stderr,
        }
    }

    /// The next stdout line for which `want` holds, within `BOUND`; earlier lines are
    /// skipped. Panics with what the process said when none comes.
    fn wait_line(&mut self, what: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + BOUND;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if want(&line) => return line,
                Ok(line) => seen.push(line),
                Err(_) => {
                    let stderr = self.kill_and_stderr();
                    panic!(
                        "no line with {what} within {BOUND:?}; stdout: {seen:#?}\nstderr: {stderr}"
                    );
                }
            }
        }
    }

    /// The next JSON event for which `want` holds (see [`wait_line`](Self::wait_line)).
    fn wait_json(&mut self, what: &str, want: impl Fn(&Value) -> bool) -> Value {
        let line = self.wait_line(what, |line| {
            serde_json::from_str::<Value>(line).is_ok_and(|event| want(&event))
        });
        serde_json::from_str(&line).expect("JSON")
    }

    /// Sends SIGINT, as Ctrl-C does.
    fn interrupt(&self) {
        let sent = Command::new("kill")
            .args(["-INT", &self.pid.to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -INT {}", self.pid);
    }

    /// The exit status, within `BOUND`.
    fn wait_exit(&mut self) -> ExitStatus {
        if let Some(status) = self.status {
            return status;
        }
        match self.exited.recv_timeout(BOUND) {
            Ok(status) => {
                self.status = Some(status);
                status
            }
            Err(_) => {
                let stderr = self.kill_and_stderr();
                panic!("waypost did not exit within {BOUND:?}; stderr: {stderr}");
            }
        }
    }

    /// The next stderr line for which `want` holds, within `BOUND`.
    fn wait_stderr(&mut self, what: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + BOUND;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if want(&line) => return line,
                Ok(line) => seen.push(line),
                Err(_) => panic!("no stderr line with {what} within {BOUND:?}; stderr: {seen:#?}"),
            }
        }
    }

    /// What it wrote to stderr and nobody read yet, up to its end (once it exited).
    fn stderr(&self) -> String {
        let mut lines = Vec::new();
        while let Ok(line) = self.stderr.recv_timeout(BOUND) {
            lines.push(line);
        }
        lines.join("\n")
    }

    fn kill_and_stderr(&mut self) -> String {
        self.kill();
        self.stderr()
    }

    fn kill(&mut self) {
        if self.status.is_none() {
            let _ = Command::new("kill")
                .args(["-KILL", &self.pid.to_string()])
                .status();
            self.status = self.exited.recv_timeout(BOUND).ok();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The addresses of a JSON event's `field` (`instances`, `added`, `removed`).
fn addrs(event: &Value, field: &str) -> Vec<String> {
    event[field]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|i| i["addr"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn is_set_of(event: &Value, want: &[&str]) -> bool {
    event["event"] == "instances" && addrs(event, "instances") == want
}

/// `register URL --addr ADDR ...` running, and its first line read ("registered").
fn register(url: &str, addr: &str, more: &[&str]) -> Running {
    let mut args = vec!["register", url, "--addr", addr];
    args.extend_from_slice(more);
    let mut running = Running::spawn(&args);
    running.wait_line("registered", |line| line.contains("registered"));
    running
}

/// The story every registry that can register tells: `register` in one process,
/// `watch --json` and `resolve` in others see it (with its metadata); after SIGINT
/// `register` deregisters and exits 0, `watch` sees it go, `resolve` says empty (3),
/// and `watch` exits 0 on SIGINT.
///
/// `meta`: whether the registry carries metadata (ZooKeeper's nodes hold the address
/// only).
fn register_watch_resolve(url: &str, addr: &str, meta: bool) {
    // Polled registries (Eureka) are asked often, so the test sees changes quickly.
    let mut watch = Running::spawn(&["watch", "--json", "--interval", "0.2", url]);
    watch.wait_json("the empty first set", |e| is_set_of(e, &[]));

    let mut registered = register(url, addr, &["--meta", "team=payments", "--ttl", "10"]);
    let seen = watch.wait_json("the registration", |e| is_set_of(e, &[addr]));
    assert_eq!(addrs(&seen, "added"), [addr], "{seen}");
    if meta {
        assert_eq!(seen["instances"][0]["meta"]["team"], "payments", "{seen}");
    }

    let resolved = run(&["resolve", url, "--wait", "5"]);
    assert_eq!(resolved.code, Some(0), "{resolved:?}");
    assert!(resolved.stdout.starts_with(addr), "{resolved:?}");
    assert_eq!(
        resolved.stdout.contains("team=payments"),
        meta,
        "{resolved:?}"
    );

    registered.interrupt();
    assert!(registered.wait_exit().success(), "{}", registered.stderr());
    registered.wait_line("deregistered", |line| line.contains("deregistered"));
    let gone = watch.wait_json("the deregistration", |e| is_set_of(e, &[]));
    assert_eq!(addrs(&gone, "removed"), [addr], "{gone}");

    let resolved = run(&["resolve", url, "--wait", "5"]);
    assert_eq!(resolved.code, Some(3), "{resolved:?}");
    assert!(resolved.stderr.contains("empty"), "{resolved:?}");

    watch.interrupt();
    assert!(watch.wait_exit().success(), "{}", watch.stderr());
}

#[cfg(feature = "consul")]
#[test]
fn consul_register_watch_resolve() {
    let Some(agent) = support::consul::shared() else {
        return;
    };
    let url = format!(
        "consul://127.0.0.1:{}/{}",
        agent.http_port(),
        support::unique("cli")
    );
    register_watch_resolve(&url, "127.0.0.1:7501", true);
}

/// `register` shows what its heartbeat meets: the agent forgets the service, the TTL
/// pass fails, and the registration is made again, each a line on stderr as it happens.
#[cfg(feature = "consul")]
#[test]
fn consul_register_shows_a_lost_registration_made_again() {
    let Some(agent) = support::consul::shared() else {
        return;
    };
    let service = support::unique("cli-lost");
    let url = format!("consul://127.0.0.1:{}/{service}", agent.http_port());
    let mut registered = register(&url, "127.0.0.1:7505", &["--ttl", "3"]);
    let services = agent.get("/v1/agent/services").expect("list services");
    let listed: Value = serde_json::from_str(&services.body).expect("JSON");
    let id = listed
        .as_object()
        .and_then(|all| all.iter().find(|(_, s)| s["Service"] == service.as_str()))
        .map(|(id, _)| id.clone())
        .expect("the registered service");
    let gone = agent
        .put(&format!("/v1/agent/service/deregister/{id}"), "")
        .expect("deregister behind its back");
    assert_eq!(gone.status, 200, "{gone:?}");
    registered.wait_stderr("the failed heartbeat", |l| {
        l.contains("WARN") && l.contains("passing the TTL check")
    });
    registered.wait_stderr("registering again", |l| {
        l.contains("registered") && l.contains("again")
    });
    let resolved = run(&["resolve", &url]);
    assert_eq!(resolved.code, Some(0), "{resolved:?}");
    registered.interrupt();
    assert!(registered.wait_exit().success(), "{}", registered.stderr());
}

/// A token from the environment is used, and never printed, even at `-vv`.
#[cfg(feature = "consul")]
#[test]
fn a_token_from_the_environment_is_never_printed() {
    let Some(agent) = support::consul::shared() else {
        return;
    };
    let secret = support::unique("s3cret-token");
    let url = format!(
        "consul://127.0.0.1:{}/{}",
        agent.http_port(),
        support::unique("cli-token")
    );
    // `resolve` ends by itself within --wait; `output()` waits for it.
    let out = Command::new(WAYPOST)
        .args(["-vv", "resolve", "--json", &url, "--wait", "5"])
        .env("CONSUL_HTTP_TOKEN", &secret)
        .stdin(Stdio::null())
        .output()
        .expect("run waypost");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(stderr.contains("DEBUG"), "-vv logs: {stderr}");
    assert!(
        !stdout.contains(&secret) && !stderr.contains(&secret),
        "{stdout}\n{stderr}"
    );
}

#[cfg(feature = "etcd")]
#[test]
fn etcd_register_watch_resolve() {
    let Some(etcd) = support::etcd::shared() else {
        return;
    };
    let url = format!(
        "etcd://127.0.0.1:{}/{}/",
        etcd.client_port(),
        support::unique("cli")
    );
    register_watch_resolve(&url, "127.0.0.1:7502", true);
}

#[cfg(feature = "zk")]
#[test]
fn zookeeper_register_watch_resolve() {
    let Some(zk) = support::zookeeper::shared() else {
        return;
    };
    let url = format!("zk://127.0.0.1:{}/{}", zk.port(), support::unique("cli"));
    register_watch_resolve(&url, "127.0.0.1:7503", false);
}

#[cfg(feature = "eureka")]
#[test]
fn eureka_register_watch_resolve() {
    let eureka = support::eureka_double::EurekaDouble::start();
    let app = support::unique("CLI").to_uppercase();
    let url = format!(
        "eureka://127.0.0.1:{}{}/{app}",
        eureka.port(),
        eureka.prefix()
    );
    register_watch_resolve(&url, "127.0.0.1:7504", true);
}

#[cfg(feature = "dnssrv")]
#[test]
fn dns_urls_resolve_through_dnsmasq() {
    use support::dnsmasq::{Dnsmasq, Records};
    let records = Records::new()
        .srv(
            "_api._tcp.cli.example.test",
            "a.cli.example.test",
            8080,
            10,
            5,
        )
        .srv(
            "_api._tcp.cli.example.test",
            "b.cli.example.test",
            8081,
            10,
            5,
        )
        .host("a.cli.example.test", "127.0.0.11".parse().unwrap())
        .host("b.cli.example.test", "127.0.0.12".parse().unwrap());
    let Some(dnsmasq) = Dnsmasq::start(&records) else {
        return;
    };
    let server = dnsmasq.addr();

    let srv = run(&[
        "resolve",
        "--json",
        &format!("dns+srv://{server}/_api._tcp.cli.example.test"),
    ]);
    assert_eq!(srv.code, Some(0), "{srv:?}");
    let event: Value = serde_json::from_str(&srv.stdout).expect("one JSON object");
    let mut got = addrs(&event, "instances");
    got.sort();
    assert_eq!(
        got,
        ["a.cli.example.test:8080", "b.cli.example.test:8081"],
        "{srv:?}"
    );

    let host = run(&[
        "resolve",
        &format!("dns://{server}/a.cli.example.test:9000"),
    ]);
    assert_eq!(host.code, Some(0), "{host:?}");
    assert_eq!(host.stdout.trim(), "127.0.0.11:9000", "{host:?}");

    // A name with no records (NXDOMAIN): an empty set, exit 3.
    // (Names are under example.test, the harness's local domain: elsewhere dnsmasq,
    // with no upstream, refuses.)
    let none = run(&[
        "resolve",
        &format!("dns+srv://{server}/_none._tcp.cli.example.test"),
    ]);
    assert_eq!(none.code, Some(3), "{none:?}");
}

#[test]
fn resolve_exit_codes() {
    let scratch = Scratch::new();
    scratch.replace("10.0.0.1:80\n10.0.0.2:80 weight=2\n");
    let url = format!("file://{}", scratch.file.display());
    let found = run(&["resolve", &url]);
    assert_eq!(found.code, Some(0), "{found:?}");
    assert_eq!(found.stdout, "10.0.0.1:80\n10.0.0.2:80  weight=2");

    scratch.replace("");
    let empty = run(&["resolve", &url]);
    assert_eq!(empty.code, Some(3), "{empty:?}");
    assert_eq!(empty.stdout, "");
    assert!(empty.stderr.contains("the set is empty"), "{empty:?}");

    let unknown = run(&["resolve", "gopher://x/y"]);
    assert_eq!(unknown.code, Some(1), "{unknown:?}");
    assert!(unknown.stderr.contains("url scheme"), "{unknown:?}");

    let secret = run(&["resolve", "consul://admin:hunter2@127.0.0.1:8500/x"]);
    assert_eq!(secret.code, Some(1), "{secret:?}");
    assert!(secret.stderr.contains("url userinfo"), "{secret:?}");
    assert!(!secret.stderr.contains("hunter2"), "{secret:?}");

    let usage = run(&["register", "memory://x"]);
    assert_eq!(usage.code, Some(2), "{usage:?}");
    assert!(usage.stderr.contains("--addr"), "{usage:?}");
}

#[cfg(feature = "consul")]
#[test]
fn resolve_says_why_a_registry_cannot_be_reached_and_when_none_answers() {
    // A port nothing listens on: refused at once, the cause chain on stderr.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let refused = run(&["resolve", &format!("consul://127.0.0.1:{closed}/x")]);
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(
        refused.stderr.contains("waypost: error: consul GET"),
        "{refused:?}"
    );
    assert!(refused.stderr.contains("caused by:"), "{refused:?}");

    // A listener that never answers: no first answer within --wait (4), and the
    // process still ends promptly, its watch thread stopped mid-request.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let started = std::time::Instant::now();
    let quiet = run(&[
        "resolve",
        &format!("consul://127.0.0.1:{port}/x"),
        "--wait",
        "0.5",
    ]);
    assert_eq!(quiet.code, Some(4), "{quiet:?}");
    assert!(quiet.stderr.contains("no answer within 0.5 s"), "{quiet:?}");
    assert!(started.elapsed() < BOUND, "{:?}", started.elapsed());
}

#[test]
fn watch_prints_changes_to_a_file_and_stops_on_sigint() {
    let scratch = Scratch::new();
    scratch.replace("10.0.0.1:80\n");
    let url = format!("file://{}", scratch.file.display());
    let mut watch = Running::spawn(&["watch", "--json", &url]);
    let first = watch.wait_json("the first set", |e| is_set_of(e, &["10.0.0.1:80"]));
    assert!(
        first["time"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{first}"
    );

    scratch.replace("10.0.0.1:80 zone=z1\n10.0.0.2:80\n");
    let next = watch.wait_json("the change", |e| {
        is_set_of(e, &["10.0.0.1:80", "10.0.0.2:80"])
    });
    assert_eq!(addrs(&next, "added"), ["10.0.0.2:80"], "{next}");
    assert_eq!(addrs(&next, "changed"), ["10.0.0.1:80"], "{next}");
    assert_eq!(next["changed"][0]["zone"], "z1", "{next}");

    // The file goes: an error event that keeps the last set.
    std::fs::remove_file(&scratch.file).unwrap();
    let error = watch.wait_json("an error", |e| e["event"] == "error");
    assert_eq!(error["kept"], 2, "{error}");
    assert!(
        error["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{error}"
    );

    watch.interrupt();
    assert!(watch.wait_exit().success(), "{}", watch.stderr());
}

#[test]
fn pick_shows_a_balancers_choices() {
    let scratch = Scratch::new();
    scratch.replace("10.0.0.1:80 weight=1\n10.0.0.2:80 weight=3\n");
    let url = format!("file://{}", scratch.file.display());

    let weighted = run(&[
        "pick",
        &url,
        "--balancer",
        "weighted-round-robin",
        "-n",
        "8",
    ]);
    assert_eq!(weighted.code, Some(0), "{weighted:?}");
    assert!(
        weighted.stdout.contains("# 10.0.0.1:80  2 of 8 (25.0 %)"),
        "{weighted:?}"
    );
    assert!(
        weighted.stdout.contains("# 10.0.0.2:80  6 of 8 (75.0 %)"),
        "{weighted:?}"
    );

    let hashed = run(&[
        "pick",
        &url,
        "--balancer",
        "consistent-hash",
        "--key",
        "user-7",
        "-n",
        "5",
    ]);
    assert_eq!(hashed.code, Some(0), "{hashed:?}");
    assert!(hashed.stdout.contains(" 5 of 5 (100.0 %)"), "{hashed:?}");

    let seeded = || run(&["pick", &url, "--balancer", "p2c", "--seed", "7", "-n", "20"]).stdout;
    assert_eq!(seeded(), seeded());

    let empty = Scratch::new();
    empty.replace("");
    let none = run(&["pick", &format!("file://{}", empty.file.display())]);
    assert_eq!(none.code, Some(1), "{none:?}");
    assert!(none.stderr.contains("no endpoints"), "{none:?}");
}

#[test]
fn help_has_an_example_per_scheme_and_the_exit_codes() {
    for command in ["watch", "resolve", "register", "pick"] {
        let help = run(&[command, "--help"]);
        assert_eq!(help.code, Some(0), "{help:?}");
        for scheme in [
            "consul://",
            "consul+https://",
            "etcd://",
            "zk://",
            "dns+srv://",
            "dns://",
            "eureka://",
            "file://",
            "memory://",
        ] {
            assert!(
                help.stdout.contains(scheme),
                "{command} --help lacks {scheme}"
            );
        }
    }
    let resolve = run(&["resolve", "--help"]);
    assert!(
        resolve
            .stdout
            .contains("3  resolve: the registry answered with an empty set")
    );
}

/// A terminal: `waypost watch` in a tmux pane prints the set, then a change, and
/// exits on the Ctrl-C keys.
#[test]
fn watch_in_a_terminal_prints_a_change_and_exits_on_ctrl_c() {
    let Some(tmux) = support::bin::require("tmux", "run ./scripts/test.sh, which installs tmux")
    else {
        return;
    };
    let scratch = Scratch::new();
    scratch.replace("10.0.0.1:80\n");
    let socket = scratch.dir.join("tmux.sock");
    let tmux_cmd = |args: &[&str]| -> String {
        let out = Command::new(&tmux)
            .arg("-S")
            .arg(&socket)
            .args(args)
            .env_remove("TMUX")
            .output()
            .expect("run tmux");
        assert!(out.status.success(), "tmux {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let _server = KillTmux(tmux.clone(), socket.clone());
    let shell = format!(
        "{WAYPOST} watch file://{}; echo \"waypost exited with $?\"; read -r _",
        scratch.file.display()
    );
    tmux_cmd(&[
        "new-session",
        "-d",
        "-s",
        "cli",
        "-x",
        "160",
        "-y",
        "40",
        &shell,
    ]);
    let screen = |what: &str, want: &dyn Fn(&str) -> bool| -> String {
        let mut last = String::new();
        let found = wait_for(|| {
            last = tmux_cmd(&["capture-pane", "-p", "-t", "cli"]);
            want(&last)
        });
        assert!(found, "the pane never showed {what}:\n{last}");
        last
    };
    screen("the first set", &|s| {
        s.contains("1 instance") && s.contains("+ 10.0.0.1:80")
    });
    scratch.replace("10.0.0.1:80\n10.0.0.2:80 zone=z1\n");
    screen("the change", &|s| {
        s.contains("2 instances: 1 added") && s.contains("+ 10.0.0.2:80  zone=z1")
    });
    tmux_cmd(&["send-keys", "-t", "cli", "C-c"]);
    screen("the exit", &|s| s.contains("waypost exited with 0"));
}

/// Polls `cond` within `BOUND`, 50 ms apart (a tmux pane can only be polled).
fn wait_for(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + BOUND;
    let tick = crossbeam_channel::tick(Duration::from_millis(50));
    loop {
        if cond() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        let _ = tick.recv();
    }
}

/// Ends a test's tmux server, whatever the test's outcome.
struct KillTmux(std::path::PathBuf, std::path::PathBuf);

impl Drop for KillTmux {
    fn drop(&mut self) {
        let _ = Command::new(&self.0)
            .arg("-S")
            .arg(Path::new(&self.1))
            .arg("kill-server")
            .status();
    }
}
