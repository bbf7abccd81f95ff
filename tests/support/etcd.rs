//! A real etcd (3.4.23) on loopback for integration tests, started by the launcher in
//! `server.rs` (free ports, temp dir, supervisor, stop, kill, pause, restarts, log):
//! this file holds only what is etcd's. The harness drives etcd with `etcdctl` (API 3)
//! and raw HTTP, never with waypost's own client.
//!
//! - [`shared`]: one plain member (no TLS, no auth) per test binary, for tests that need
//!   no restart and use their own key prefix ([`super::unique`]).
//! - [`Etcd::builder`]: a member of the test's own: `auth_token_ttl`, `tls`,
//!   `tls_client_auth`; restart, kill, pause as [`Server`] does.
//! - [`Cluster::start`]: three members; kill, restart, pause one, find the leader.
//!
//! Every member runs with `--heartbeat-interval 10 --election-timeout 100` (ready in
//! about 0.1 s, a new leader 0.15–0.25 s after the old one dies) and
//! `--logger zap --log-outputs stderr` into its log. A running member takes about
//! 123 MB of disk (etcd preallocates its WAL); its temp dir goes with it.
//!
//! `etcd` is found as `bin.rs` says (`WAYPOST_ETCD_BIN`, the cache, `PATH`); `etcdctl`
//! by `WAYPOST_ETCDCTL_BIN`, else next to `etcd`, else on `PATH`. Both are required.
//!
//! # Pitfalls found while writing it
//!
//! - With `--client-cert-auth`, the JSON gateway reaches the server through gRPC with
//!   the *server's* certificate as its client certificate: without the `clientAuth`
//!   usage in it every gateway call answers `{"error":"connection closed","code":14}`
//!   (while `/health` and etcdctl work). The server certificate here has both usages.
//! - `/health` over https needs the client certificate when clients must have one, so
//!   a TLS member is probed on a plain `--listen-metrics-urls` port, which serves the
//!   same `/health`.

use std::ffi::OsString;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use parking_lot::Mutex;

#[allow(unused_imports)] // a re-export: used by the binaries that start a cluster
pub use super::etcd_cluster::Cluster;
pub use super::etcd_wire::*;
pub use super::http::HttpReply;
use super::http::http_request_timeout;
use super::server::{self, Port, Ports, Server};

/// Raft timings and logging of every member.
const FLAGS: [&str; 8] = [
    "--heartbeat-interval",
    "10",
    "--election-timeout",
    "100",
    "--logger",
    "zap",
    "--log-outputs",
    "stderr",
];
/// Bound of each of the harness's own HTTP requests (a paused member never answers).
const REQUEST_BOUND: Duration = Duration::from_secs(2);
/// Bound of one readiness or status probe; a slow one is just made again.
const PROBE_BOUND: Duration = Duration::from_millis(500);

/// The credentials [`Etcd::enable_auth`] creates.
pub const ROOT_USER: &str = "root";
pub const ROOT_PASSWORD: &str = "rootpw";
pub const APP_USER: &str = "app";
pub const APP_PASSWORD: &str = "apppw";
pub const APP_ROLE: &str = "app-rw";

/// The etcd binary (and etcdctl next to it or on PATH), or: under `CI=true` a panic,
/// otherwise a loud `SKIPPED:` line and `None`, so the test returns early.
pub fn require_etcd() -> Option<PathBuf> {
    let hint = "run ./scripts/test.sh, which installs etcd-server and etcd-client";
    let etcd = super::bin::require("etcd", hint)?;
    super::bin::require_companion("etcdctl", &etcd, hint)?;
    Some(etcd)
}

/// The etcdctl binary [`require_etcd`] found (the same rules, the same skip or panic).
pub fn require_etcdctl() -> Option<PathBuf> {
    let etcd = require_etcd()?;
    super::bin::find_companion("etcdctl", &etcd)
}

/// One plain member per test binary, started on first use; `None` when a binary is
/// missing (see [`require_etcd`]). Nothing stops it: its supervisor ends it with the
/// test process. Do not enable auth on it, nor stop it.
pub fn shared() -> Option<server::Shared<Etcd>> {
    static SHARED: OnceLock<Etcd> = OnceLock::new();
    server::shared(&SHARED, require_etcd, |etcd| {
        EtcdBuilder::default().spawn_with(etcd, None)
    })
}

/// Options for an [`Etcd`] member: `Etcd::builder().tls().spawn()`.
#[derive(Debug, Clone, Default)]
pub struct EtcdBuilder {
    auth_token_ttl: Option<u32>,
    tls: bool,
    client_auth: bool,
}

impl EtcdBuilder {
    /// `--auth-token-ttl SECS`: how long a simple token lives unused (300 s by default;
    /// the TTL slides with every use). For token-expiry tests, 2–3 s.
    pub fn auth_token_ttl(self, secs: u32) -> Self {
        Self {
            auth_token_ttl: Some(secs),
            ..self
        }
    }

    /// Clients over https (the client URL is `https://127.0.0.1:PORT`) with a fresh CA
    /// and server certificate for `127.0.0.1` and `localhost`; a client certificate of
    /// that CA and an unrelated CA are made too. Peers stay on http.
    pub fn tls(self) -> Self {
        Self { tls: true, ..self }
    }

    /// Like [`tls`](Self::tls), and clients must present a certificate of the CA
    /// (`--client-cert-auth --trusted-ca-file`).
    pub fn tls_client_auth(self) -> Self {
        Self {
            client_auth: true,
            ..self.tls()
        }
    }

    /// Starts the member and waits until `/health` says true. `None` when a binary is
    /// missing (etcd, etcdctl, openssl for TLS); panics, with the log's tail, if it
    /// will not start.
    pub fn spawn(self) -> Option<Etcd> {
        let etcd = require_etcd()?;
        let openssl = match self.tls {
            true => Some(super::bin::require("openssl", "install openssl")?),
            false => None,
        };
        Some(self.spawn_with(etcd, openssl))
    }

    fn spawn_with(self, etcd: PathBuf, openssl: Option<PathBuf>) -> Etcd {
        let etcdctl = super::bin::find_companion("etcdctl", &etcd).expect("require_etcd");
        let (opts, tls) = (self.clone(), self.tls);
        let mut server = Server::builder("etcd", &etcd)
            .port("client", Port::CLIENT)
            .port("peer", Port::INTERNAL)
            .port("metrics", Port::INTERNAL)
            .args(move |ports, dir| {
                let peer = format!("http://127.0.0.1:{}", ports.get("peer"));
                member_args("n1", ports, dir, &format!("n1={peer}"), None, &opts)
            })
            .ready(move |ports| healthy(ports.get(if tls { "metrics" } else { "client" })))
            .build();
        if let Some(openssl) = openssl {
            make_certificates(&openssl, &server.dir().join("tls"));
        }
        server.start();
        Etcd::new_member(server, self, etcdctl)
    }
}

/// The command line of one member's start.
pub(super) fn member_args(
    name: &str,
    ports: &Ports,
    dir: &Path,
    initial_cluster: &str,
    token: Option<&str>,
    opts: &EtcdBuilder,
) -> Vec<OsString> {
    let scheme = if opts.tls { "https" } else { "http" };
    let client = format!("{scheme}://127.0.0.1:{}", ports.get("client"));
    let peer = format!("http://127.0.0.1:{}", ports.get("peer"));
    let mut args: Vec<OsString> = vec!["--name".into(), name.into(), "--data-dir".into()];
    args.push(dir.join("data").into());
    for (flag, value) in [
        ("--listen-client-urls", &client),
        ("--advertise-client-urls", &client),
        ("--listen-peer-urls", &peer),
        ("--initial-advertise-peer-urls", &peer),
    ] {
        args.extend([flag.into(), value.into()]);
    }
    args.extend(["--initial-cluster".into(), initial_cluster.into()]);
    args.extend(["--initial-cluster-state".into(), "new".into()]);
    if let Some(token) = token {
        args.extend(["--initial-cluster-token".into(), token.into()]);
    }
    if let Some(metrics) = ports.find("metrics") {
        let url = format!("http://127.0.0.1:{metrics}");
        args.extend(["--listen-metrics-urls".into(), url.into()]);
    }
    args.extend(FLAGS.iter().map(OsString::from));
    if let Some(ttl) = opts.auth_token_ttl {
        args.extend(["--auth-token-ttl".into(), ttl.to_string().into()]);
    }
    if opts.tls {
        let tls = dir.join("tls");
        args.extend(["--cert-file".into(), tls.join("server.pem").into()]);
        args.extend(["--key-file".into(), tls.join("server.key").into()]);
    }
    if opts.client_auth {
        args.push("--client-cert-auth".into());
        args.extend(["--trusted-ca-file".into(), dir.join("tls/ca.pem").into()]);
    }
    args
}

/// `GET /health` on plain http answers `{"health":"true"}`.
pub(super) fn healthy(port: u16) -> bool {
    http_request_timeout(port, "GET", "/health", &[], "", PROBE_BOUND)
        .is_ok_and(|r| r.status == 200 && r.body.contains(r#""health":"true""#))
}

/// A running etcd member on 127.0.0.1; the [`Server`] it derefs to stops, starts,
/// kills, pauses and restarts it ([`restart_fresh`](Server::restart_fresh): empty data
/// dir, every key and lease lost), and has its dir and log.
#[derive(Debug)]
pub struct Etcd {
    server: Server,
    opts: EtcdBuilder,
    pub(super) etcdctl: PathBuf,
    /// `root:rootpw` once auth is on: every etcdctl call of the harness then uses it.
    root: Mutex<Option<String>>,
}

/// The credentials made by [`Etcd::enable_auth`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdAuth {
    pub user: String,
    pub password: String,
    /// The role of `user`: read and write under `prefix`, nothing else.
    pub role: String,
    pub prefix: String,
    pub root_user: String,
    pub root_password: String,
}

/// What `POST /v3/maintenance/status` says of a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberStatus {
    pub member_id: String,
    /// The leader's member id; `None` while the member knows no leader.
    pub leader: Option<String>,
    pub raft_term: u64,
    pub revision: i64,
}

impl MemberStatus {
    pub fn is_leader(&self) -> bool {
        self.leader.as_deref() == Some(self.member_id.as_str())
    }
}

impl Etcd {
    /// Options; finish with [`EtcdBuilder::spawn`].
    pub fn builder() -> EtcdBuilder {
        EtcdBuilder::default()
    }

    /// A plain member of its own; `None` when a binary is missing.
    pub fn new() -> Option<Etcd> {
        Self::builder().spawn()
    }

    pub(super) fn new_member(server: Server, opts: EtcdBuilder, etcdctl: PathBuf) -> Etcd {
        Etcd {
            server,
            opts,
            etcdctl,
            root: Mutex::new(None),
        }
    }

    /// The client port; the same across stops, kills and restarts.
    pub fn client_port(&self) -> u16 {
        self.ports().get("client")
    }

    /// `http://127.0.0.1:PORT`, or `https://…` when built with `tls()`.
    pub fn client_url(&self) -> String {
        let scheme = if self.opts.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port())
    }

    /// `127.0.0.1:PORT`, with no scheme.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port())
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.client_port()))
    }

    pub fn is_tls(&self) -> bool {
        self.opts.tls
    }

    /// The CA that signed the server and client certificates.
    pub fn ca_path(&self) -> PathBuf {
        self.tls_file("ca.pem")
    }

    /// A CA that has nothing to do with this member.
    pub fn other_ca_path(&self) -> PathBuf {
        self.tls_file("other-ca.pem")
    }

    pub fn server_cert_path(&self) -> PathBuf {
        self.tls_file("server.pem")
    }

    pub fn server_key_path(&self) -> PathBuf {
        self.tls_file("server.key")
    }

    /// A client certificate of the CA (made for `tls()` too), and its key.
    pub fn client_cert_path(&self) -> PathBuf {
        self.tls_file("client.pem")
    }

    pub fn client_key_path(&self) -> PathBuf {
        self.tls_file("client.key")
    }

    fn tls_file(&self, name: &str) -> PathBuf {
        assert!(self.opts.tls, "member built without .tls()");
        self.dir().join("tls").join(name)
    }

    /// Whether `/health` says true now (one probe).
    pub fn is_healthy(&self) -> bool {
        let probe = if self.opts.tls { "metrics" } else { "client" };
        self.pid().is_some() && healthy(self.ports().get(probe))
    }

    /// `POST path` with a JSON `body` on the gateway (plain http members only), with
    /// `headers` (`Authorization: TOKEN`, say); 2 s timeouts.
    pub fn post_with(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> io::Result<HttpReply> {
        assert!(
            !self.opts.tls,
            "post() speaks plain http: use etcdctl() or curl with ca_path() on a TLS member"
        );
        http_request_timeout(
            self.client_port(),
            "POST",
            path,
            headers,
            body,
            REQUEST_BOUND,
        )
    }

    pub fn post(&self, path: &str, body: &str) -> io::Result<HttpReply> {
        self.post_with(path, &[], body)
    }

    /// `POST /v3/auth/authenticate`: 200 with `"token"`, or the error reply.
    pub fn authenticate(&self, user: &str, password: &str) -> io::Result<HttpReply> {
        let body = format!(r#"{{"name":"{user}","password":"{password}"}}"#);
        self.post("/v3/auth/authenticate", &body)
    }

    /// The member's view of the cluster (`POST /v3/maintenance/status {}`); `None` when
    /// it does not answer within half a second (stopped, paused, not ready).
    pub fn status(&self) -> Option<MemberStatus> {
        self.pid()?;
        let reply = http_request_timeout(
            self.client_port(),
            "POST",
            "/v3/maintenance/status",
            &[],
            "{}",
            PROBE_BOUND,
        )
        .ok()
        .filter(|r| r.status == 200)?;
        Some(MemberStatus {
            member_id: json_field(&reply.body, "member_id")?,
            leader: json_field(&reply.body, "leader").filter(|l| l != "0"),
            raft_term: json_field(&reply.body, "raft_term")?.parse().ok()?,
            revision: json_field(&reply.body, "revision")?.parse().ok()?,
        })
    }

    /// Runs `etcdctl ARGS` (API 3) against this member, with its TLS files, and with
    /// root's credentials once auth is on; its stdout, or a panic with its stderr.
    pub fn etcdctl(&self, args: &[&str]) -> String {
        self.try_etcdctl(args)
            .unwrap_or_else(|e| panic!("etcdctl {args:?} failed: {e}"))
    }

    /// [`etcdctl`](Self::etcdctl), with its stderr as the error.
    pub fn try_etcdctl(&self, args: &[&str]) -> Result<String, String> {
        let mut flags = Vec::new();
        if self.opts.tls {
            flags.extend(["--cacert".into(), self.ca_path().into()]);
        }
        if self.opts.client_auth {
            flags.extend(["--cert".into(), self.client_cert_path().into()]);
            flags.extend(["--key".into(), self.client_key_path().into()]);
        }
        if let Some(root) = self.root.lock().clone() {
            flags.push(format!("--user={root}").into());
        }
        run_etcdctl(&self.etcdctl, &self.client_url(), &flags, args)
    }

    /// Puts `key` = `value`; the revision of the put.
    pub fn put(&self, key: &str, value: &str) -> i64 {
        let out = self.etcdctl(&["put", "-w", "json", "--", key, value]);
        revision_of(&out)
    }

    /// The value of `key`, if it has one.
    pub fn get(&self, key: &str) -> Option<String> {
        let out = self.etcdctl(&["get", "-w", "json", "--", key]);
        let value = json_field(&out, "value")?;
        let bytes = b64_decode(&value).expect("etcdctl's base64");
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Deletes `key`; how many keys went (0 or 1).
    pub fn del(&self, key: &str) -> u64 {
        let out = self.etcdctl(&["del", "--", key]);
        out.trim().parse().expect("etcdctl del prints a count")
    }

    /// Deletes every key under `prefix`; how many went.
    pub fn del_prefix(&self, prefix: &str) -> u64 {
        let out = self.etcdctl(&["del", "--prefix", "--", prefix]);
        out.trim().parse().expect("etcdctl del prints a count")
    }

    /// Compacts the history up to `rev` (`etcdctl compact`): a watch from an older
    /// revision is then canceled with `compact_revision`.
    pub fn compact(&self, rev: i64) {
        self.etcdctl(&["compact", &rev.to_string()]);
    }

    /// The member's current revision (`etcdctl endpoint status`).
    pub fn revision(&self) -> i64 {
        revision_of(&self.etcdctl(&["endpoint", "status", "-w", "json"]))
    }

    /// Grants a lease of `ttl` seconds; its id (decimal, as the gateway writes it).
    pub fn lease_grant(&self, ttl: u32) -> i64 {
        let out = self.etcdctl(&["lease", "grant", &ttl.to_string(), "-w", "json"]);
        let id = json_field(&out, "ID").unwrap_or_else(|| panic!("no lease id in {out}"));
        id.parse().expect("a lease id")
    }

    /// Revokes lease `id` (its keys go at once), as a server that lost it would.
    pub fn lease_revoke(&self, id: i64) {
        self.etcdctl(&["lease", "revoke", &format!("{id:x}")]);
    }

    /// The ids of every live lease.
    pub fn leases(&self) -> Vec<i64> {
        let out = self.etcdctl(&["lease", "list", "-w", "json"]);
        let ids = json_fields(&out, "id").into_iter();
        ids.map(|id| id.parse().expect("a lease id")).collect()
    }

    /// Turns auth on: user `root` (password `rootpw`, role `root`), role `app-rw` with
    /// read and write under `prefix` and nothing else, user `app` (password `apppw`)
    /// with that role. The harness's etcdctl calls then go as root. Never on the
    /// [`shared`] member.
    pub fn enable_auth(&self, prefix: &str) -> EtcdAuth {
        assert!(!prefix.is_empty(), "a prefix, or the role covers nothing");
        let root = format!("{ROOT_USER}:{ROOT_PASSWORD}");
        let app = format!("{APP_USER}:{APP_PASSWORD}");
        self.etcdctl(&["user", "add", &root]);
        self.etcdctl(&["role", "add", ROOT_USER]);
        self.etcdctl(&["user", "grant-role", ROOT_USER, ROOT_USER]);
        self.etcdctl(&["role", "add", APP_ROLE]);
        self.etcdctl(&[
            "role",
            "grant-permission",
            "--prefix=true",
            "--",
            APP_ROLE,
            "readwrite",
            prefix,
        ]);
        self.etcdctl(&["user", "add", &app]);
        self.etcdctl(&["user", "grant-role", APP_USER, APP_ROLE]);
        self.etcdctl(&["auth", "enable"]);
        *self.root.lock() = Some(root);
        EtcdAuth {
            user: APP_USER.into(),
            password: APP_PASSWORD.into(),
            role: APP_ROLE.into(),
            prefix: prefix.into(),
            root_user: ROOT_USER.into(),
            root_password: ROOT_PASSWORD.into(),
        }
    }
}

impl Deref for Etcd {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.server
    }
}

impl DerefMut for Etcd {
    fn deref_mut(&mut self) -> &mut Server {
        &mut self.server
    }
}

/// The first `"revision"` of etcdctl's JSON: its header's.
fn revision_of(json: &str) -> i64 {
    json_field(json, "revision")
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no revision in {json}"))
}

/// `etcdctl` with API 3, `--endpoints`, bounded dial and command times, `flags`, then
/// `args`; none of the caller's `ETCDCTL_*` variables.
pub(super) fn run_etcdctl(
    bin: &Path,
    endpoints: &str,
    flags: &[OsString],
    args: &[&str],
) -> Result<String, String> {
    let mut cmd = Command::new(bin);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("ETCDCTL_") {
            cmd.env_remove(name);
        }
    }
    cmd.env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoints}"))
        .args(["--dial-timeout=2s", "--command-timeout=5s"])
        .args(flags)
        .args(args);
    let out = cmd
        .output()
        .map_err(|e| format!("run {}: {e}", bin.display()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        ))
    }
}

/// Makes the TLS files of a member in `dir` with `openssl`: a CA, a server certificate
/// and a client certificate signed by it, and an unrelated CA. P-256 keys (fast to
/// make; Go, rustls and curl take them); valid for two days from now. In shell:
///
/// ```text
/// ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
/// openssl req -x509 -new $ec -keyout ca.key -out ca.pem -days 2 -subj "/CN=waypost test CA" \
///     -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
/// openssl req -new $ec -keyout server.key -out server.csr -subj /CN=localhost
/// printf '%s\n' subjectAltName=IP:127.0.0.1,DNS:localhost basicConstraints=critical,CA:FALSE \
///     keyUsage=critical,digitalSignature extendedKeyUsage=serverAuth,clientAuth > server.ext
/// openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
///     -extfile server.ext -out server.pem
/// openssl req -new $ec -keyout client.key -out client.csr -subj "/CN=waypost test client"
/// printf '%s\n' basicConstraints=critical,CA:FALSE keyUsage=critical,digitalSignature \
///     extendedKeyUsage=clientAuth > client.ext
/// openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
///     -extfile client.ext -out client.pem
/// openssl req -x509 -new $ec -keyout other-ca.key -out other-ca.pem -days 2 \
///     -subj "/CN=waypost unrelated CA" -addext basicConstraints=critical,CA:TRUE \
///     -addext keyUsage=critical,keyCertSign,cRLSign
/// ```
///
/// The server certificate has `clientAuth` too: etcd's gateway presents it to etcd
/// itself under `--client-cert-auth` (see the module docs).
fn make_certificates(openssl: &Path, dir: &Path) {
    std::fs::create_dir_all(dir).expect("create the tls dir");
    let run = |args: &[&str]| {
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut cmd = Command::new(openssl);
        cmd.arg(args[0]);
        if args[0] == "req" {
            cmd.args(ec);
        }
        let out = cmd.args(&args[1..]).current_dir(dir).output();
        let out = out.expect("run openssl");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "openssl {args:?} failed: {said}");
    };
    let ca_ext = [
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ];
    let ca = |name: &str, cn: &str| {
        let (key, pem, subj) = (
            format!("{name}.key"),
            format!("{name}.pem"),
            format!("/CN={cn}"),
        );
        let mut args = vec!["req", "-x509", "-new", "-keyout", &key, "-out", &pem];
        args.extend(["-days", "2", "-subj", &subj]);
        args.extend(ca_ext);
        run(&args);
    };
    let leaf = |name: &str, cn: &str, ext: &[&str]| {
        let (key, csr, pem) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
        );
        let (subj, ext_file) = (format!("/CN={cn}"), format!("{name}.ext"));
        let mut lines = ext.join("\n");
        lines.push('\n');
        std::fs::write(dir.join(&ext_file), lines).expect("write the extensions");
        run(&["req", "-new", "-keyout", &key, "-out", &csr, "-subj", &subj]);
        run(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &ext_file,
            "-out",
            &pem,
        ]);
    };
    ca("ca", "waypost test CA");
    let leaf_ext = [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature",
    ];
    let mut server_ext = vec!["subjectAltName=IP:127.0.0.1,DNS:localhost"];
    server_ext.extend(leaf_ext);
    server_ext.push("extendedKeyUsage=serverAuth,clientAuth");
    leaf("server", "localhost", &server_ext);
    let mut client_ext = leaf_ext.to_vec();
    client_ext.push("extendedKeyUsage=clientAuth");
    leaf("client", "waypost test client", &client_ext);
    ca("other-ca", "waypost unrelated CA");
}
