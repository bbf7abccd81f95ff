//! A real Consul agent (`consul agent -dev`, 1.8.7) on loopback, started by the launcher
//! in `server.rs` (ports, temp dir, supervisor, stop, pause, restarts, log): this file
//! holds only what is Consul's. Tests that need no restarts, ACLs or TLS share one
//! agent per test binary through [`shared`]. The binary is found as `bin.rs` says.

use std::ffi::OsString;
use std::io;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

pub use super::http::HttpReply;
use super::http::{http_request, http_request_timeout};
use super::server::{self, Port, Ports, Server};

/// The Consul binary, or: under `CI=true` a panic, otherwise a loud `SKIPPED:` line and
/// `None`, so the test returns early.
pub fn require_consul() -> Option<PathBuf> {
    super::bin::require("consul", "run ./scripts/test.sh, which fetches it")
}

/// One plain agent per test binary, started on first use; `None` when the binary is
/// missing (see [`require_consul`]).
pub fn shared() -> Option<server::Shared<ConsulAgent>> {
    static SHARED: OnceLock<ConsulAgent> = OnceLock::new();
    server::shared(&SHARED, require_consul, |bin| {
        ConsulBuilder::default().spawn_with(bin)
    })
}

/// Options for a [`ConsulAgent`]: `ConsulAgent::builder().acl().spawn()`.
#[derive(Debug, Clone, Default)]
pub struct ConsulBuilder {
    acl: bool,
    tls: bool,
    verify_clients: bool,
}

impl ConsulBuilder {
    /// ACLs on, `default_policy = "deny"`; a random master token (also the agent's).
    pub fn acl(self) -> Self {
        Self { acl: true, ..self }
    }

    /// The API over https too (plain http stays on), with a fresh CA and server
    /// certificate, and an unrelated CA for wrong-CA tests.
    pub fn tls(self) -> Self {
        Self { tls: true, ..self }
    }

    /// Like [`tls`](Self::tls), and https clients must present a certificate of the
    /// agent's CA (`verify_incoming`); one is made for the test.
    pub fn tls_verify_clients(self) -> Self {
        Self {
            verify_clients: true,
            ..self.tls()
        }
    }

    /// Starts the agent and waits until it has a leader (and honours the master token).
    /// `None` when the binary is missing; panics, with the log's tail, if it won't start.
    pub fn spawn(self) -> Option<ConsulAgent> {
        Some(self.spawn_with(require_consul()?))
    }

    fn spawn_with(self, bin: PathBuf) -> ConsulAgent {
        let token = self.acl.then(random_uuid);
        let mut builder = Server::builder("consul", &bin)
            .port("http", Port::CLIENT)
            .port("serf_lan", Port::INTERNAL.and_udp())
            .port("server", Port::INTERNAL);
        if self.tls {
            builder = builder.port("https", Port::CLIENT);
        }
        let (opts, args_token, ready_token) = (self.clone(), token.clone(), token.clone());
        let mut server = builder
            .args(move |ports, dir| opts.args(ports, dir, args_token.as_deref()))
            .ready(move |ports| ready(ports.get("http"), ready_token.as_deref()))
            .build();
        if self.tls {
            make_certificates(&bin, server.dir(), self.verify_clients);
        }
        server.start();
        ConsulAgent {
            server,
            opts: self,
            token,
        }
    }

    /// The command line of one start; writes the config file it names.
    fn args(&self, ports: &Ports, dir: &Path, token: Option<&str>) -> Vec<OsString> {
        let mut config = String::from("disable_update_check = true\n");
        if let Some(t) = token {
            config += "acl {\n enabled = true\n default_policy = \"deny\"\n";
            config += &format!(" tokens {{\n  master = \"{t}\"\n  agent = \"{t}\"\n }}\n}}\n");
        }
        if let Some(https) = ports.find("https") {
            let file = |name: &str| format!("{:?}", dir.join("tls").join(name));
            config += &format!("ports {{\n https = {https}\n}}\n");
            config += &format!("ca_file = {}\n", file("consul-agent-ca.pem"));
            config += &format!("cert_file = {}\n", file("dc1-server-consul-0.pem"));
            config += &format!("key_file = {}\n", file("dc1-server-consul-0-key.pem"));
            config += &format!("verify_incoming = {}\n", self.verify_clients);
        }
        let path = dir.join("agent.hcl");
        std::fs::write(&path, config).expect("write the agent's config");
        let fixed = "agent -dev -bind=127.0.0.1 -client=127.0.0.1 -advertise=127.0.0.1 \
                     -node=test -dns-port=-1 -serf-wan-port=-1 -grpc-port=-1 -log-level=warn";
        let mut args: Vec<String> = fixed.split(' ').map(String::from).collect();
        args.push(format!("-http-port={}", ports.get("http")));
        args.push(format!("-serf-lan-port={}", ports.get("serf_lan")));
        args.push(format!("-server-port={}", ports.get("server")));
        args.push(format!("-data-dir={}", dir.join("data").display()));
        args.push(format!("-config-file={}", path.display()));
        args.into_iter().map(OsString::from).collect()
    }
}

/// A running `consul agent -dev` on 127.0.0.1; the [`Server`] it derefs to stops,
/// starts, pauses and restarts it, and has its dir and log.
#[derive(Debug)]
pub struct ConsulAgent {
    server: Server,
    opts: ConsulBuilder,
    token: Option<String>,
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

    /// The plain http port; the same across stops, starts and restarts.
    pub fn http_port(&self) -> u16 {
        self.ports().get("http")
    }

    pub fn http_base(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port())
    }

    /// Panics unless built with `tls()`, as do the certificate paths.
    pub fn https_base(&self) -> String {
        let port = self
            .ports()
            .find("https")
            .expect("agent built without .tls()");
        format!("https://127.0.0.1:{port}")
    }

    /// The CA that signed the agent's certificates.
    pub fn ca_pem_path(&self) -> PathBuf {
        self.tls_file("tls/consul-agent-ca.pem")
    }

    /// A CA that has nothing to do with the agent.
    pub fn other_ca_pem_path(&self) -> PathBuf {
        self.tls_file("other-ca/consul-agent-ca.pem")
    }

    /// A client certificate the agent accepts (`tls_verify_clients()`), and its key.
    pub fn client_cert_path(&self) -> PathBuf {
        assert!(
            self.opts.verify_clients,
            "agent built without .tls_verify_clients()"
        );
        self.tls_file("tls/dc1-client-consul-0.pem")
    }

    pub fn client_key_path(&self) -> PathBuf {
        assert!(
            self.opts.verify_clients,
            "agent built without .tls_verify_clients()"
        );
        self.tls_file("tls/dc1-client-consul-0-key.pem")
    }

    fn tls_file(&self, name: &str) -> PathBuf {
        assert!(self.opts.tls, "agent built without .tls()");
        self.dir().join(name)
    }

    /// The ACL master token. Panics unless built with `acl()`.
    pub fn master_token(&self) -> &str {
        self.token.as_deref().expect("agent built without .acl()")
    }

    /// `GET path` (e.g. `/v1/agent/self`) on the http port, without a token.
    pub fn get(&self, path: &str) -> io::Result<HttpReply> {
        self.request("GET", path, None, "")
    }

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
        let headers: Vec<_> = token.map(|t| ("X-Consul-Token", t)).into_iter().collect();
        http_request(self.http_port(), method, path, &headers, body)
    }
}

impl Deref for ConsulAgent {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.server
    }
}

impl DerefMut for ConsulAgent {
    fn deref_mut(&mut self) -> &mut Server {
        &mut self.server
    }
}

/// Ready: `/v1/status/leader` names a leader, and with ACLs on the master token is
/// honoured (the leader creates it a moment after its election).
fn ready(http: u16, token: Option<&str>) -> bool {
    let headers: Vec<_> = token.map(|t| ("X-Consul-Token", t)).into_iter().collect();
    let timeout = Duration::from_millis(500); // a slow poll is just polled again
    let get = |path| http_request_timeout(http, "GET", path, &headers, "", timeout);
    let leader = get("/v1/status/leader")
        .is_ok_and(|r| r.status == 200 && !matches!(r.body.trim(), "" | "\"\""));
    leader && (token.is_none() || get("/v1/agent/self").is_ok_and(|r| r.status == 200))
}

/// `consul tls` makes a CA and a server certificate (and a client one) in `dir/tls`,
/// and an unrelated CA in `dir/other-ca`.
fn make_certificates(bin: &Path, dir: &Path, client_too: bool) {
    let run = |sub: &str, args: &[&str]| {
        std::fs::create_dir_all(dir.join(sub)).expect("create the tls dir");
        let out = Command::new(bin)
            .arg("tls")
            .args(args)
            .current_dir(dir.join(sub))
            .output();
        let out = out.expect("run consul tls");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "consul tls {args:?} failed: {said}");
    };
    run("tls", &["ca", "create"]);
    run("tls", &["cert", "create", "-server", "-dc", "dc1"]);
    if client_too {
        run("tls", &["cert", "create", "-client", "-dc", "dc1"]);
    }
    run("other-ca", &["ca", "create"]);
}

/// A random UUID-shaped token.
fn random_uuid() -> String {
    let mut bytes = [0u8; 16];
    let mut random = std::fs::File::open("/dev/urandom").expect("/dev/urandom");
    io::Read::read_exact(&mut random, &mut bytes).expect("random bytes");
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let (a, b, c, d, e) = (
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..],
    );
    format!("{a}-{b}-{c}-{d}-{e}")
}
