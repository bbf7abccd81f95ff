//! A real Consul agent (`consul agent -dev`) on loopback for integration tests.
//!
//! Each [`ConsulAgent`] runs in its own temp dir (data dir, log, config files, TLS
//! material) on ports chosen at run time, so agents never collide with each other or
//! with anything left running. Tests that need no restarts, ACLs or TLS share one agent
//! per test binary through [`shared`].
//!
//! # Finding the binary
//!
//! `WAYPOST_CONSUL_BIN` if set (authoritative: set but not executable means missing),
//! else `${WAYPOST_CACHE:-$HOME/.cache/waypost}/consul/usr/bin/consul` (where
//! `scripts/fetch-consul.sh` puts it), else `consul` on `PATH`. When none is found a test
//! fails under `CI=true` and otherwise skips with a loud `SKIPPED:` line on stderr.
//!
//! # Lifetime
//!
//! The agent runs under a tiny `sh` supervisor whose stdin is a pipe only this process
//! can write to. When the pipe closes, whether on [`Drop`] or because the test process
//! died, the supervisor sends SIGTERM to the agent, waits for it and removes the temp
//! dir. So an agent in a static (never dropped) still ends with its test binary.
//! A stop or restart first writes `keep` into the pipe, so the dir survives.

use std::collections::hash_map::RandomState;
use std::fs::{self, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};

use super::bin;
use super::http::http_request_timeout;
pub use super::http::{HttpReply, http_request};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// Longest wait for the agent to elect itself leader (it takes ~150 ms).
const READY_BOUND: Duration = Duration::from_secs(10);
/// Longest wait for SIGTERM to end the agent (it takes ~0.5 s) before SIGKILL.
const STOP_BOUND: Duration = Duration::from_secs(5);
/// Pause between polls of the external process; there is nothing to block on.
const POLL: Duration = Duration::from_millis(10);
/// Per-poll timeout of the readiness request; a slow poll is just retried.
const LEADER_POLL_TIMEOUT: Duration = Duration::from_millis(500);
/// Start attempts when a chosen port was taken before the agent bound it.
const START_ATTEMPTS: usize = 5;
/// Lines of the agent's log shown when it fails.
const TAIL_LINES: usize = 40;

/// `$1` temp dir, `$2` log file, the rest is the agent's command line. Prints the
/// agent's pid, then blocks reading stdin: a `keep` line (stop/restart) keeps the dir,
/// end of file (drop, or the test process is gone) removes it.
const SUPERVISOR: &str = r#"dir=$1; log=$2; shift 2
"$@" >>"$log" 2>&1 </dev/null &
pid=$!
echo "$pid"
read -r how || how=
kill "$pid" 2>/dev/null
wait "$pid"
echo "--- supervisor: consul $pid exited with status $? (1 is normal after SIGTERM) ---" >>"$log"
if [ "$how" != keep ]; then
    case $dir in */waypost-consul-*) rm -rf -- "$dir" ;; esac
fi
"#;

/// The Consul binary, or `None` (see the module docs for the lookup order).
pub fn consul_bin() -> Option<PathBuf> {
    bin::find("consul")
}

/// [`consul_bin`], or: under `CI=true` a panic, otherwise a loud `SKIPPED:` line and
/// `None`, so the test returns early.
pub fn require_consul() -> Option<PathBuf> {
    bin::require(
        "consul",
        "run `bash scripts/fetch-consul.sh ~/.cache/waypost/consul`",
    )
}

/// One agent per test binary, started on first use, for tests that need no restarts,
/// ACLs or TLS. `None` when the binary is missing (see [`require_consul`]).
pub fn shared() -> Option<&'static ConsulAgent> {
    static SHARED: OnceLock<ConsulAgent> = OnceLock::new();
    if let Some(agent) = SHARED.get() {
        return Some(agent);
    }
    let bin = require_consul()?;
    Some(SHARED.get_or_init(|| ConsulAgent::builder().spawn_with(bin)))
}

/// Options for a [`ConsulAgent`]: `ConsulAgent::builder().acl().spawn()`.
#[derive(Debug, Clone, Default)]
pub struct ConsulBuilder {
    hcl: String,
    acl: bool,
    tls: bool,
    verify_clients: bool,
}

impl ConsulBuilder {
    /// Extra agent configuration in HCL, written to a file passed with `-config-file`.
    pub fn hcl(mut self, text: &str) -> Self {
        self.hcl.push_str(text);
        self.hcl.push('\n');
        self
    }

    /// ACLs on with `default_policy = "deny"`; a random master token (also the agent
    /// token) is in [`ConsulAgent::master_token`].
    pub fn acl(mut self) -> Self {
        self.acl = true;
        self
    }

    /// Serve the API over https too (plain http stays on), with a fresh CA and server
    /// certificate; clients are not asked for certificates.
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Like [`tls`](Self::tls), but https clients must present a certificate signed by
    /// the agent's CA (`verify_incoming = true`); one is made for the test.
    pub fn tls_verify_clients(mut self) -> Self {
        self.tls = true;
        self.verify_clients = true;
        self
    }

    /// Starts the agent and waits until it has a leader. `None` when the binary is
    /// missing (see [`require_consul`]); panics, with the log's tail, when it won't start.
    pub fn spawn(self) -> Option<ConsulAgent> {
        Some(self.spawn_with(require_consul()?))
    }

    fn spawn_with(self, bin: PathBuf) -> ConsulAgent {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("waypost-consul-{}-{n}", std::process::id());
        let dir = std::env::temp_dir().join(&name);
        let _ = fs::remove_dir_all(&dir); // a leftover of a dead process with our pid
        fs::create_dir_all(dir.join("data")).expect("create consul temp dir");
        let mut agent = ConsulAgent {
            token: self.acl.then(random_uuid),
            ports: Ports::pick(self.tls, None),
            opts: self,
            bin,
            node: name,
            dir,
            running: None,
            ready_after: Duration::ZERO,
        };
        if agent.opts.tls {
            agent.make_certificates();
        }
        agent.launch(true);
        agent
    }
}

/// A running `consul agent -dev` on 127.0.0.1; see the module docs.
#[derive(Debug)]
pub struct ConsulAgent {
    opts: ConsulBuilder,
    bin: PathBuf,
    node: String,
    dir: PathBuf,
    ports: Ports,
    token: Option<String>,
    running: Option<Running>,
    ready_after: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Ports {
    http: u16,
    serf_lan: u16,
    server: u16,
    https: Option<u16>,
}

#[derive(Debug)]
struct Running {
    supervisor: Child,
    stdin: ChildStdin,
    pid: u32,
}

enum Attempt {
    Ready,
    PortTaken,
}

impl ConsulAgent {
    /// Options; finish with [`ConsulBuilder::spawn`].
    pub fn builder() -> ConsulBuilder {
        ConsulBuilder::default()
    }

    /// A plain agent (no ACLs, no TLS) of its own; `None` when the binary is missing.
    pub fn new() -> Option<ConsulAgent> {
        Self::builder().spawn()
    }

    /// `http://127.0.0.1:PORT`; the port stays the same across stop/start/restart.
    pub fn http_base(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.http)
    }

    /// The plain http port.
    pub fn http_port(&self) -> u16 {
        self.ports.http
    }

    /// `https://127.0.0.1:PORT`. Panics unless built with `tls()`.
    pub fn https_base(&self) -> String {
        let port = self.ports.https.expect("agent built without .tls()");
        format!("https://127.0.0.1:{port}")
    }

    /// The CA that signed the agent's certificates. Panics unless built with `tls()`.
    pub fn ca_pem_path(&self) -> PathBuf {
        self.tls_file("tls", "consul-agent-ca.pem")
    }

    /// A client certificate the agent accepts. Panics unless built with
    /// `tls_verify_clients()`.
    pub fn client_cert_path(&self) -> PathBuf {
        assert!(
            self.opts.verify_clients,
            "agent built without .tls_verify_clients()"
        );
        self.tls_file("tls", "dc1-client-consul-0.pem")
    }

    /// The key of [`client_cert_path`](Self::client_cert_path).
    pub fn client_key_path(&self) -> PathBuf {
        assert!(
            self.opts.verify_clients,
            "agent built without .tls_verify_clients()"
        );
        self.tls_file("tls", "dc1-client-consul-0-key.pem")
    }

    /// A CA that has nothing to do with the agent, for wrong-CA tests.
    pub fn other_ca_pem_path(&self) -> PathBuf {
        self.tls_file("other-ca", "consul-agent-ca.pem")
    }

    fn tls_file(&self, sub: &str, name: &str) -> PathBuf {
        assert!(self.opts.tls, "agent built without .tls()");
        self.dir.join(sub).join(name)
    }

    /// The ACL master token. Panics unless built with `acl()`.
    pub fn master_token(&self) -> &str {
        self.token.as_deref().expect("agent built without .acl()")
    }

    /// The agent's temp dir (data dir, log, config, certificates).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The agent's process id, `None` while stopped.
    pub fn pid(&self) -> Option<u32> {
        self.running.as_ref().map(|r| r.pid)
    }

    /// How long the last start took from spawn to a known leader.
    pub fn ready_after(&self) -> Duration {
        self.ready_after
    }

    /// The last lines of the agent's log (all starts, with harness markers).
    pub fn log_tail(&self) -> String {
        let log = fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
    }

    /// Stops the agent (SIGTERM, ~0.5 s) and keeps its data dir and ports. No-op if
    /// stopped.
    pub fn stop(&mut self) {
        self.halt(true);
    }

    /// Starts a stopped agent again on the same ports and data dir: registrations made
    /// before the stop come back. No-op if running.
    pub fn start(&mut self) {
        if self.running.is_none() {
            self.launch(false);
        }
    }

    /// Stops the agent, wipes its data dir and starts it again on the same http (and
    /// https) port: the "agent lost my registration" case.
    pub fn restart_fresh(&mut self) {
        self.halt(true);
        let data = self.dir.join("data");
        fs::remove_dir_all(&data).expect("wipe consul data dir");
        fs::create_dir(&data).expect("recreate consul data dir");
        self.launch(false);
    }

    /// `GET path` (e.g. `/v1/agent/self`) on the http port, without a token.
    pub fn get(&self, path: &str) -> io::Result<HttpReply> {
        self.request("GET", path, None, "")
    }

    /// `PUT path` with `body` on the http port, without a token.
    pub fn put(&self, path: &str, body: &str) -> io::Result<HttpReply> {
        self.request("PUT", path, None, body)
    }

    /// Any request on the http port, with `X-Consul-Token` when `token` is given.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &str,
    ) -> io::Result<HttpReply> {
        let headers: Vec<(&str, &str)> = token.map(|t| ("X-Consul-Token", t)).into_iter().collect();
        http_request(self.ports.http, method, path, &headers, body)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("consul.log")
    }

    /// Starts the agent, retrying on new ports when one was taken. A first start may
    /// move every port; a restart keeps the http and https ports.
    fn launch(&mut self, first_start: bool) {
        for attempt in 1..=START_ATTEMPTS {
            if attempt > 1 {
                let keep = (!first_start).then_some(self.ports);
                self.ports = Ports::pick(self.opts.tls, keep.as_ref());
            }
            if let Attempt::Ready = self.attempt() {
                return;
            }
        }
        panic!(
            "consul: a port stayed taken over {START_ATTEMPTS} start attempts\n{}",
            self.log_tail()
        );
    }

    fn attempt(&mut self) -> Attempt {
        let config_files = self.write_config();
        let log_path = self.log_path();
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("open consul log");
        let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let p = self.ports;
        writeln!(
            log,
            "--- harness: starting consul: http {} https {:?} serf-lan {} server {} ---",
            p.http, p.https, p.serf_lan, p.server
        )
        .expect("write consul log");

        let data = self.dir.join("data");
        let mut supervisor = Command::new("sh")
            .arg("-c")
            .arg(SUPERVISOR)
            .arg("waypost-consul-supervisor")
            .arg(&self.dir)
            .arg(&log_path)
            .arg(&self.bin)
            .args(["agent", "-dev", "-bind=127.0.0.1", "-client=127.0.0.1"])
            .args(["-advertise=127.0.0.1", "-dns-port=-1", "-serf-wan-port=-1"])
            .args(["-grpc-port=-1", "-log-level=warn"])
            .arg(format!("-node={}", self.node))
            .arg(format!("-http-port={}", p.http))
            .arg(format!("-serf-lan-port={}", p.serf_lan))
            .arg(format!("-server-port={}", p.server))
            .arg(format!("-data-dir={}", data.display()))
            .args(["-hcl", "disable_update_check = true"])
            .args(
                config_files
                    .iter()
                    .map(|f| format!("-config-file={}", f.display())),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn sh for the consul supervisor");
        let stdin = supervisor.stdin.take().expect("piped stdin");
        let mut line = String::new();
        let _ =
            BufReader::new(supervisor.stdout.take().expect("piped stdout")).read_line(&mut line);
        let Ok(pid) = line.trim().parse() else {
            let _ = supervisor.kill();
            let _ = supervisor.wait();
            panic!(
                "consul supervisor printed no pid ({line:?})\n{}",
                self.log_tail()
            );
        };
        self.running = Some(Running {
            supervisor,
            stdin,
            pid,
        });

        let started = Instant::now();
        loop {
            // Exit first: whatever holds a taken port may accept and never answer.
            if process_gone(pid) {
                let mut since = String::new();
                if let Ok(mut f) = fs::File::open(&log_path) {
                    use std::io::Seek;
                    let _ = f.seek(io::SeekFrom::Start(log_start));
                    let _ = f.read_to_string(&mut since);
                }
                self.halt(true);
                if since.contains("address already in use") {
                    return Attempt::PortTaken;
                }
                panic!("consul exited during start-up\n{}", self.log_tail());
            }
            if self.leader_known() && self.acl_ready() {
                self.ready_after = started.elapsed();
                return Attempt::Ready;
            }
            if started.elapsed() > READY_BOUND {
                self.halt(true);
                panic!(
                    "consul had no leader after {READY_BOUND:?}\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// With ACLs on, the leader creates the master token a moment after it is elected:
    /// until then the token is "ACL not found". Ready = the token is honoured.
    fn acl_ready(&self) -> bool {
        let Some(token) = self.token.as_deref() else {
            return true;
        };
        http_request_timeout(
            self.ports.http,
            "GET",
            "/v1/agent/self",
            &[("X-Consul-Token", token)],
            "",
            LEADER_POLL_TIMEOUT,
        )
        .is_ok_and(|reply| reply.status == 200)
    }

    /// Ready = `/v1/status/leader` answers a non-empty body other than `""`.
    fn leader_known(&self) -> bool {
        let headers: Vec<(&str, &str)> = self
            .token
            .as_deref()
            .map(|t| ("X-Consul-Token", t))
            .into_iter()
            .collect();
        match http_request_timeout(
            self.ports.http,
            "GET",
            "/v1/status/leader",
            &headers,
            "",
            LEADER_POLL_TIMEOUT,
        ) {
            Ok(reply) => {
                let body = reply.body.trim();
                reply.status == 200 && !body.is_empty() && body != "\"\""
            }
            Err(_) => false,
        }
    }

    /// Closes the supervisor's stdin (with `keep` first to keep the dir) and waits for
    /// the supervisor, which waits for the agent; SIGKILL after [`STOP_BOUND`].
    fn halt(&mut self, keep_dir: bool) {
        let Some(Running {
            mut supervisor,
            mut stdin,
            pid,
        }) = self.running.take()
        else {
            return;
        };
        if keep_dir {
            let _ = stdin.write_all(b"keep\n");
        }
        drop(stdin);
        let deadline = Instant::now() + STOP_BOUND;
        while let Ok(None) = supervisor.try_wait() {
            if Instant::now() > deadline {
                eprintln!("consul {pid} ignored SIGTERM for {STOP_BOUND:?}: SIGKILL");
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
                let _ = supervisor.kill();
                let _ = supervisor.wait();
                break;
            }
            std::thread::sleep(POLL);
        }
        // The supervisor reaps the agent; after a SIGKILL, init does (slowly).
        let deadline = Instant::now() + STOP_BOUND;
        while !process_gone(pid) && Instant::now() < deadline {
            std::thread::sleep(POLL);
        }
    }

    fn make_certificates(&self) {
        let run = |sub: &str, args: &[&str]| {
            let cwd = self.dir.join(sub);
            fs::create_dir_all(&cwd).expect("create tls dir");
            let out = Command::new(&self.bin)
                .args(["tls"])
                .args(args)
                .current_dir(&cwd)
                .output()
                .expect("run consul tls");
            assert!(
                out.status.success(),
                "consul tls {args:?} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run("tls", &["ca", "create"]);
        run("tls", &["cert", "create", "-server", "-dc", "dc1"]);
        if self.opts.verify_clients {
            run("tls", &["cert", "create", "-client", "-dc", "dc1"]);
        }
        run("other-ca", &["ca", "create"]);
    }

    /// Writes one config file per option (extra HCL, ACL, TLS); returns their paths.
    fn write_config(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        let mut write = |name: &str, text: String| {
            let path = self.dir.join(name);
            fs::write(&path, text).expect("write consul config");
            files.push(path);
        };
        if !self.opts.hcl.is_empty() {
            write("extra.hcl", self.opts.hcl.clone());
        }
        if let Some(token) = &self.token {
            write(
                "acl.hcl",
                format!(
                    "acl {{\n  enabled = true\n  default_policy = \"deny\"\n  \
                     tokens {{\n    master = \"{token}\"\n    agent = \"{token}\"\n  }}\n}}\n"
                ),
            );
        }
        if let Some(https) = self.ports.https {
            let tls = self.dir.join("tls");
            let q = |name: &str| hcl_string(&tls.join(name));
            write(
                "tls.hcl",
                format!(
                    "ports {{\n  https = {https}\n}}\nca_file = {}\ncert_file = {}\n\
                     key_file = {}\nverify_incoming = {}\n",
                    q("consul-agent-ca.pem"),
                    q("dc1-server-consul-0.pem"),
                    q("dc1-server-consul-0-key.pem"),
                    self.opts.verify_clients
                ),
            );
        }
        files
    }
}

impl Drop for ConsulAgent {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "consul log ({}):\n{}",
                self.log_path().display(),
                self.log_tail()
            );
        }
        self.halt(false);
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Ports {
    /// Free ports on 127.0.0.1 (serf LAN free for TCP and UDP), all held until every
    /// one is chosen. With `keep`, the http and https ports stay as they are.
    fn pick(tls: bool, keep: Option<&Ports>) -> Ports {
        let mut held_tcp = Vec::new();
        let mut held_udp = Vec::new();
        let mut taken: Vec<u16> = keep
            .into_iter()
            .flat_map(|k| [Some(k.http), k.https])
            .flatten()
            .collect();
        let mut next = |udp_too: bool| loop {
            let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a free port");
            let port = tcp.local_addr().expect("local addr").port();
            if taken.contains(&port) {
                continue;
            }
            if udp_too {
                match UdpSocket::bind((Ipv4Addr::LOCALHOST, port)) {
                    Ok(udp) => held_udp.push(udp),
                    Err(_) => continue,
                }
            }
            taken.push(port);
            held_tcp.push(tcp);
            return port;
        };
        Ports {
            http: keep.map_or_else(|| next(false), |k| k.http),
            serf_lan: next(true),
            server: next(false),
            https: match keep {
                Some(k) => k.https,
                None => tls.then(|| next(false)),
            },
        }
    }
}

pub use super::bin::process_gone;

fn hcl_string(path: &Path) -> String {
    let s = path.display().to_string();
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A random UUID-shaped token (std only: `RandomState` is seeded from the OS).
fn random_uuid() -> String {
    let state = RandomState::new();
    let word = |salt: u8| {
        let mut h = state.build_hasher();
        h.write_u8(salt);
        h.write_u32(std::process::id());
        if let Ok(t) = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
            h.write_u128(t.as_nanos());
        }
        h.finish()
    };
    let (a, b) = (word(1), word(2));
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}
