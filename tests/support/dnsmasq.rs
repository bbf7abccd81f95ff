//! A real dnsmasq (2.90) on loopback serving SRV and A/AAAA records for the DNS tests,
//! started by the launcher in `server.rs` (free port, temp dir, supervisor, stop, kill,
//! pause, restarts, log): this file holds only what is dnsmasq's. The harness checks
//! dnsmasq with `dig` and a hand-made UDP query, never with waypost's own resolver.
//!
//! - [`Records`]: what the config says: `srv-host=` and `host-record=` lines, the TTL
//!   and the largest UDP answer.
//! - [`Dnsmasq::start`]: one server per test, in its own temp dir, on one port that is
//!   free for UDP and TCP alike ([`addr`](Dnsmasq::addr)). To change the records,
//!   [`set_records`](Dnsmasq::set_records) restarts it on the same port;
//!   [`stop`](Dnsmasq::stop) and [`start_again`](Dnsmasq::start_again) take it away and
//!   bring it back. It derefs to its [`Server`] (pause, kill, log, pid).
//! - [`Dnsmasq::dig`] and [`Dnsmasq::dig_srv`]: the reference client's view, bounded;
//!   [`DigReply`] reads dig's full output (status, flags, sections).
//!
//! Every start runs `dnsmasq --keep-in-foreground --no-resolv --no-hosts --port=P
//! --listen-address=127.0.0.1 --bind-interfaces --conf-file=DIR/dnsmasq.conf
//! --pid-file=DIR/dnsmasq.pid --log-facility=- --local=/example.test/` (plus
//! `--local-ttl`, `--edns-packet-max` when [`Records`] set them, and `--log-queries`
//! when `WAYPOST_DNSMASQ_LOG_QUERIES` is set): its log goes to stderr, into the
//! launcher's log, so a failed test shows its tail. It is ready when it answers a UDP
//! query for `CH TXT version.bind` (built by hand here: no DNS crate): measured 10–12 ms
//! after spawn (the first probe, at spawn, meets a closed port; the next, one 10 ms poll
//! later, is answered), 13–16 ms for the whole [`Dnsmasq::start`]. A stop takes 3–8 ms,
//! a [`set_records`](Dnsmasq::set_records) (stop, start, ready) 17–38 ms. (The 70–90 ms
//! of the notes were polled with dig, whose own start-up dominates.)
//!
//! dnsmasq is found as `bin.rs` says (`WAYPOST_DNSMASQ_BIN`, the cache, `PATH`, then
//! `/usr/sbin`, where Debian puts it); `dig` by `WAYPOST_DIG_BIN`, else next to
//! dnsmasq, else on `PATH`. Both are required.
//!
//! # Pitfalls (measured with 2.90; see `zookeeper-dnsmasq-eureka.md` sections 6–8)
//!
//! - Without `--bind-interfaces` it binds 0.0.0.0 and `[::]`, not just 127.0.0.1.
//! - `srv-host=NAME,TARGET,PORT,PRIORITY,WEIGHT`: port first, unlike a zone file's
//!   `PRIORITY WEIGHT PORT`. [`Records::srv`] takes them in the zone file's order of
//!   meaning (port, priority, weight as named arguments) and writes dnsmasq's.
//! - The TTL is 0 unless `--local-ttl=N` ([`Records::ttl`]).
//! - SIGHUP does not re-read the config, so `srv-host` lines never change live: a
//!   change of records is a restart on the same port (UDP clients may see a timeout
//!   in the window).
//! - Exit status 2 with "Address already in use" is a taken port (the launcher starts
//!   again on a new port at first start; on a restart it is a panic, since clients
//!   know the port); status 1 is a bad config line.
//! - Without `--local=/example.test/` an unknown name is REFUSED, not NXDOMAIN; with it,
//!   a known name asked for another type is NOERROR with no answer (NODATA).
//! - UDP answers are cut at 1232 bytes (EDNS) or 512 (no EDNS): about 30 or 12 SRV
//!   records, with TC set and the records that fit (partial, not empty). TCP has them
//!   all; so has UDP with [`Records::edns_packet_max`] 4096 and a client asking for it.
//! - Only `host-record=` targets get their A/AAAA records in the additional section
//!   (`address=/name/ip` targets do not).
//! - Started as root it drops to `nobody` after reading its config and binding: the
//!   pid file ends up owned by nobody, and a file it read later (hostsdir,
//!   addn-hosts) would have to be readable by nobody. The harness makes its dir 0755
//!   and the config 0644, and keeps the drop (no `--user=root`).
//! - SRV answers rotate on every query: [`Dnsmasq::dig_srv`] sorts them.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::ops::{Deref, DerefMut};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use super::BOUND;
use super::server::{Port, Server};

/// The domain dnsmasq answers for alone (`--local`): NXDOMAIN for unknown names in it.
pub const DOMAIN: &str = "example.test";
/// How to get dnsmasq and dig when they are missing.
pub const HINT: &str = "run ./scripts/test.sh, which installs dnsmasq-base and bind9-dnsutils";
/// Bound of one readiness probe (a UDP query); a slow one is just made again.
pub const PROBE_BOUND: Duration = Duration::from_millis(200);
/// Longest wait for a start to answer.
const READY_BOUND: Duration = Duration::from_secs(5);
/// dig's own bound, per try: `+time=2 +tries=1` (a caller's `+time`/`+tries` wins).
const DIG_TIME: &str = "+time=2";
/// Name of the port in the launcher's [`Ports`](super::server::Ports).
const PORT: &str = "dns";

/// dnsmasq's binary, or: under `CI=true` a panic, otherwise a loud `SKIPPED:` line and
/// `None`, so the test returns early.
pub fn require_dnsmasq() -> Option<PathBuf> {
    super::bin::require("dnsmasq", HINT)
}

/// dig, found as the module docs say, with the same skip or panic.
pub fn require_dig(dnsmasq: &Path) -> Option<PathBuf> {
    super::bin::require_companion("dig", dnsmasq, HINT)
}

/// What the config says; each setter returns the records, so they chain:
/// `Records::new().srv(..).srv(..).host(..).ttl(5)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Records {
    lines: Vec<String>,
    ttl: Option<u32>,
    edns_packet_max: Option<u16>,
}

impl Records {
    pub fn new() -> Records {
        Records::default()
    }

    /// An SRV record of `name` (`_svc._tcp.example.test`): `srv-host=` with dnsmasq's
    /// field order, `name,target,port,priority,weight`.
    pub fn srv(self, name: &str, target: &str, port: u16, priority: u16, weight: u16) -> Records {
        self.line(&format!(
            "srv-host={},{},{port},{priority},{weight}",
            field(name),
            field(target)
        ))
    }

    /// An A (IPv4) or AAAA (IPv6) record of `name`: `host-record=`. Given for an SRV
    /// target, it also goes in the SRV answer's additional section. Several for one
    /// name give several addresses.
    pub fn host(self, name: &str, ip: IpAddr) -> Records {
        self.line(&format!("host-record={},{ip}", field(name)))
    }

    /// Any other config line (`cname=...`, `address=/name/ip`, ...).
    pub fn line(mut self, line: &str) -> Records {
        assert!(!line.contains('\n'), "one config line: {line:?}");
        self.lines.push(line.to_owned());
        self
    }

    /// The TTL of every answer (`--local-ttl`); 0 when unset.
    pub fn ttl(mut self, secs: u32) -> Records {
        self.ttl = Some(secs);
        self
    }

    /// The largest UDP answer with EDNS (`--edns-packet-max`); 1232 when unset.
    pub fn edns_packet_max(mut self, bytes: u16) -> Records {
        self.edns_packet_max = Some(bytes);
        self
    }

    /// The config file's text.
    pub fn conf(&self) -> String {
        let mut conf = String::from("# written by tests/support/dnsmasq.rs\n");
        for line in &self.lines {
            let _ = writeln!(conf, "{line}");
        }
        conf
    }

    /// The command-line flags beyond the fixed ones.
    fn flags(&self) -> Vec<OsString> {
        let mut flags = Vec::new();
        if let Some(ttl) = self.ttl {
            flags.push(format!("--local-ttl={ttl}").into());
        }
        if let Some(max) = self.edns_packet_max {
            flags.push(format!("--edns-packet-max={max}").into());
        }
        flags
    }
}

/// A name in a comma-separated config line.
fn field(name: &str) -> &str {
    assert!(
        !name.is_empty() && !name.contains([',', '\n', ' ']),
        "not a name for a dnsmasq config line: {name:?}"
    );
    name
}

/// One SRV record as `dig +short` prints it (`PRIORITY WEIGHT PORT TARGET.`), the
/// target without its trailing dot. Orders by priority, weight, port, target.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DigSrv {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    pub target: String,
}

impl DigSrv {
    /// `10 60 8080 node1.example.test.`; `None` for anything else (dig's `;;` lines).
    pub fn parse(line: &str) -> Option<DigSrv> {
        let mut words = line.split_whitespace();
        let mut number = || words.next()?.parse().ok();
        let (priority, weight, port) = (number()?, number()?, number()?);
        let target = words.next()?;
        if words.next().is_some() {
            return None;
        }
        let target = target.strip_suffix('.').unwrap_or(target).to_owned();
        Some(DigSrv {
            priority,
            weight,
            port,
            target,
        })
    }
}

/// dig's full (not `+short`) output, read: the header's status and flags and the
/// records of each section, one line each as dig prints them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigReply {
    /// `NOERROR`, `NXDOMAIN`, `REFUSED`...; empty when nothing answered.
    pub status: String,
    /// `qr`, `aa`, `tc`, `rd`, `ra`...
    pub flags: Vec<String>,
    pub answer: Vec<String>,
    pub authority: Vec<String>,
    pub additional: Vec<String>,
}

impl DigReply {
    pub fn parse(out: &str) -> DigReply {
        let mut reply = DigReply::default();
        let mut section: Option<&mut Vec<String>> = None;
        for line in out.lines() {
            if let Some(rest) = line.split_once("status: ").map(|(_, r)| r) {
                reply.status = rest.split(',').next().unwrap_or("").trim().to_owned();
            } else if let Some(rest) = line.strip_prefix(";; flags:") {
                let flags = rest.split(';').next().unwrap_or("");
                reply.flags = flags.split_whitespace().map(str::to_owned).collect();
            } else if line.starts_with(";; ") && line.ends_with(" SECTION:") {
                section = match line {
                    ";; ANSWER SECTION:" => Some(&mut reply.answer),
                    ";; AUTHORITY SECTION:" => Some(&mut reply.authority),
                    ";; ADDITIONAL SECTION:" => Some(&mut reply.additional),
                    _ => None,
                };
            } else if line.trim().is_empty() || line.starts_with(';') {
                if line.trim().is_empty() {
                    section = None;
                }
            } else if let Some(records) = section.as_deref_mut() {
                records.push(line.to_owned());
            }
        }
        reply
    }

    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// The answer's records of type `rtype` (`SRV`, `A`...).
    pub fn answers(&self, rtype: &str) -> usize {
        count_type(&self.answer, rtype)
    }
}

/// How many of `records` (dig's lines: name, TTL, class, type, data) are of `rtype`.
fn count_type(records: &[String], rtype: &str) -> usize {
    records
        .iter()
        .filter(|r| r.split_whitespace().nth(3) == Some(rtype))
        .count()
}

/// Whether a DNS server answers a UDP query (`CH TXT version.bind`) at `addr` within
/// `bound`: any reply with the query's id and the QR bit counts, whatever its rcode.
pub fn answers_udp(addr: SocketAddr, bound: Duration) -> bool {
    static NEXT_ID: AtomicU16 = AtomicU16::new(0x5A00);
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let query = version_bind_query(id);
    let ask = || -> std::io::Result<bool> {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        // Connected: a closed port is an ICMP error at once, not a wait for the bound.
        socket.connect(addr)?;
        socket.set_read_timeout(Some(bound))?;
        socket.send(&query)?;
        let mut reply = [0u8; 512];
        let n = socket.recv(&mut reply)?;
        Ok(n >= 12 && reply[..2] == id.to_be_bytes() && reply[2] & 0x80 != 0)
    };
    ask().unwrap_or(false)
}

/// A DNS query for `version.bind`, class CHAOS, type TXT, which dnsmasq answers with
/// its version whatever its records.
pub fn version_bind_query(id: u16) -> Vec<u8> {
    let mut q = Vec::with_capacity(30);
    q.extend_from_slice(&id.to_be_bytes());
    // Flags 0 (a plain query, no recursion wanted), 1 question, no records.
    q.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in ["version", "bind"] {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&16u16.to_be_bytes()); // TXT
    q.extend_from_slice(&3u16.to_be_bytes()); // CH
    q
}

/// Runs `cmd`, its output piped, for at most `bound` (then kills it and panics).
fn output_within(mut cmd: Command, bound: Duration) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let pid = child.id();
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(bound) {
        Ok(out) => out.unwrap_or_else(|e| panic!("run {cmd:?}: {e}")),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("{cmd:?} ran longer than {bound:?}")
        }
    }
}

/// A dnsmasq of the test's own; see the module docs. Stopped, and its dir removed, on
/// drop.
#[derive(Debug)]
pub struct Dnsmasq {
    server: Server,
    /// What the next start writes into the config.
    records: Arc<Mutex<Records>>,
    dig: PathBuf,
}

impl Dnsmasq {
    /// Starts dnsmasq serving `records` and waits until it answers; `None` when dnsmasq
    /// or dig is missing (see [`require_dnsmasq`]).
    pub fn start(records: &Records) -> Option<Dnsmasq> {
        let bin = require_dnsmasq()?;
        let dig = require_dig(&bin)?;
        let records = Arc::new(Mutex::new(records.clone()));
        let for_args = Arc::clone(&records);
        let server = Server::builder("dnsmasq", bin)
            .port(PORT, Port::CLIENT.and_udp())
            .args(move |ports, dir| args(&for_args.lock(), ports.get(PORT), dir))
            .ready(|ports| answers_udp(addr_of(ports.get(PORT)), PROBE_BOUND))
            .ready_bound(READY_BOUND)
            .start();
        Some(Dnsmasq {
            server,
            records,
            dig,
        })
    }

    /// The port, the same for UDP and TCP and across restarts.
    pub fn port(&self) -> u16 {
        self.server.ports().get(PORT)
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        addr_of(self.port())
    }

    /// The records it serves (or will serve, once started again).
    pub fn records(&self) -> Records {
        self.records.lock().clone()
    }

    /// Serves `records` from now on: rewrites the config and restarts on the same
    /// port, returning once the new server answers (dnsmasq never reloads `srv-host`).
    /// Starts it if stopped.
    pub fn set_records(&mut self, records: &Records) {
        *self.records.lock() = records.clone();
        self.server.stop();
        self.start_again();
    }

    /// Stops it (SIGTERM, then waits for the exit): queries get no answer (UDP: port
    /// unreachable; TCP: connection refused). No-op if stopped.
    pub fn stop(&mut self) {
        self.server.stop();
    }

    /// Starts it again on the same port and waits until it answers; panics when the
    /// port was taken meanwhile (clients know the port). No-op if running.
    pub fn start_again(&mut self) {
        if !self.server.start_once() {
            panic!(
                "dnsmasq: port {} (UDP or TCP) was taken while dnsmasq was stopped, so it \
                 cannot come back on the port its clients know\n{}",
                self.port(),
                self.server.log_tail()
            );
        }
    }

    /// Whether it answers a UDP query now (within [`PROBE_BOUND`]).
    pub fn answers(&self) -> bool {
        answers_udp(self.addr(), PROBE_BOUND)
    }

    /// `dig @127.0.0.1 -p PORT +time=2 +tries=1 ARGS...`: its stdout, then its stderr.
    /// A caller's `+time=`/`+tries=` in `args` override the defaults.
    pub fn dig(&self, args: &[&str]) -> String {
        let out = self.run_dig(args);
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        text
    }

    /// [`dig`](Self::dig) read as a [`DigReply`].
    pub fn dig_reply(&self, args: &[&str]) -> DigReply {
        DigReply::parse(&self.dig(args))
    }

    /// The SRV records of `name` as `dig +tcp +short SRV name` sees them, sorted
    /// (dnsmasq rotates them); panics when dig prints anything else (an error).
    pub fn dig_srv(&self, name: &str) -> Vec<DigSrv> {
        let out = self.run_dig(&["+tcp", "+short", "SRV", name]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mut srvs: Vec<DigSrv> = stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                DigSrv::parse(l).unwrap_or_else(|| {
                    panic!(
                        "dig SRV {name}: not an SRV record: {l:?}\n{stdout}{}",
                        String::from_utf8_lossy(&out.stderr)
                    )
                })
            })
            .collect();
        srvs.sort();
        srvs
    }

    fn run_dig(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(&self.dig);
        cmd.arg("@127.0.0.1")
            .args(["-p", &self.port().to_string(), DIG_TIME, "+tries=1"])
            .args(args);
        // dig bounds itself; this only catches a dig that would not.
        output_within(cmd, BOUND)
    }
}

fn addr_of(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// The command line of one start: writes `dir/dnsmasq.conf` first, readable by nobody.
fn args(records: &Records, port: u16, dir: &Path) -> Vec<OsString> {
    // dnsmasq reads its config as root, but anything it reads after dropping to
    // nobody must be readable by nobody: the launcher's dir may be 0700.
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).expect("chmod the dir");
    let conf = dir.join("dnsmasq.conf");
    fs::write(&conf, records.conf()).expect("write dnsmasq.conf");
    fs::set_permissions(&conf, fs::Permissions::from_mode(0o644)).expect("chmod the conf");
    let mut args: Vec<OsString> = [
        "--keep-in-foreground",
        "--no-resolv",
        "--no-hosts",
        "--listen-address=127.0.0.1",
        "--bind-interfaces",
        "--log-facility=-",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    args.push(format!("--port={port}").into());
    args.push(format!("--local=/{DOMAIN}/").into());
    let mut path_flag = |flag: &str, file: &str| {
        let mut arg = OsString::from(flag);
        arg.push(dir.join(file));
        args.push(arg);
    };
    path_flag("--conf-file=", "dnsmasq.conf");
    path_flag("--pid-file=", "dnsmasq.pid");
    args.extend(records.flags());
    if std::env::var_os("WAYPOST_DNSMASQ_LOG_QUERIES").is_some() {
        args.push("--log-queries".into());
    }
    args
}

impl Deref for Dnsmasq {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.server
    }
}

impl DerefMut for Dnsmasq {
    fn deref_mut(&mut self) -> &mut Server {
        &mut self.server
    }
}
