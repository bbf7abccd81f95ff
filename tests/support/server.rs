//! One supervised server process for integration tests, whatever the registry: a
//! backend's harness says which binary to run, which ports it needs, how its arguments
//! are built from those ports and a temp dir, and when it is ready. The launcher does
//! the rest, the same way for every backend.
//!
//! - Ports are chosen free on 127.0.0.1 at run time, all held until every one is
//!   chosen. A server that exits during start-up saying its port is taken (see
//!   [`ServerBuilder::port_taken`]) is started again on new ports.
//! - Each server has its own temp dir, `waypost-NAME-PID-N`, holding `data/` (the data
//!   dir) and `NAME.log` (the server's output, all starts, with harness markers).
//! - [`stop`](Server::stop), [`start`](Server::start), [`restart`](Server::restart) and
//!   [`restart_fresh`](Server::restart_fresh) keep the ports a client knows (a restart
//!   whose port was taken may move the others); [`pause`](Server::pause) and
//!   [`resume`](Server::resume) send SIGSTOP and SIGCONT (a hung server), and
//!   [`kill`](Server::kill) SIGKILL (a crash).
//! - When a test fails while it owns a server, or holds a [`Shared`] one, the log's tail
//!   goes to that test's output.
//!
//! # Lifetime
//!
//! The server runs under a tiny `sh` supervisor whose stdin is a pipe only this process
//! writes to. When the pipe closes, on [`Drop`] or because the test process died, the
//! supervisor ends the server (SIGTERM; SIGKILL if it is paused, since a stopped process
//! does not act on SIGTERM, or if it ignores SIGTERM for 5 s), waits for it and removes
//! the temp dir. So a server held in a static, which is never dropped, still ends with
//! its test binary. A stop or restart first writes `keep` into the pipe: the dir stays.

use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, Write};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

pub use super::ports::{Port, Ports};

/// Pause between polls of another process's state; there is nothing to block on.
const POLL: Duration = Duration::from_millis(10);
/// Start attempts when a chosen port was taken before the server bound it.
const START_ATTEMPTS: usize = 5;
/// Longest wait for a stop before this process kills the server itself (the supervisor
/// sends SIGKILL after 5 s on its own).
const STOP_BOUND: Duration = Duration::from_secs(8);
/// Lines of the log shown when a test fails.
const TAIL_LINES: usize = 40;

/// `$1` temp dir, `$2` log file, the rest is the server's command line. Prints the
/// server's pid, then blocks reading stdin: a `keep` line (stop, restart) keeps the dir,
/// end of file (drop, or the test process is gone) removes it.
const SUPERVISOR: &str = r#"dir=$1; log=$2; shift 2
"$@" >>"$log" 2>&1 </dev/null &
pid=$!
echo "$pid"
read -r how || how=
stat=$(cat "/proc/$pid/stat" 2>/dev/null) || stat=
state=${stat##*) }; state=${state%% *}
if [ "$state" = T ]; then sig=KILL; else sig=TERM; fi
kill -s "$sig" "$pid" 2>/dev/null
(sleep 5; kill -s KILL "$pid" 2>/dev/null) </dev/null >/dev/null 2>&1 &
killer=$!
wait "$pid"
status=$?
kill "$killer" 2>/dev/null
echo "--- supervisor: $pid exited with status $status after SIG$sig ---" >>"$log"
if [ "$how" != keep ]; then
    case $dir in */waypost-*) rm -rf -- "$dir" ;; esac
fi
"#;

type ArgsFn = dyn Fn(&Ports, &Path) -> Vec<OsString> + Send + Sync;
type ReadyFn = dyn Fn(&Ports) -> bool + Send + Sync;
type TakenFn = dyn Fn(&str) -> bool + Send + Sync;

/// What to run: `Server::builder("etcd", bin).port(..).args(..).ready(..).start()`.
pub struct ServerBuilder {
    name: &'static str,
    bin: PathBuf,
    ports: Vec<(&'static str, Port)>,
    args: Box<ArgsFn>,
    ready: Box<ReadyFn>,
    taken: Box<TakenFn>,
    ready_bound: Duration,
}

impl ServerBuilder {
    /// A port the server needs, known to `args` and `ready` as `name`.
    pub fn port(mut self, name: &'static str, port: Port) -> Self {
        self.ports.push((name, port));
        self
    }

    /// The server's arguments for one start: its ports and temp dir in hand (the data
    /// dir is `dir/data`). Called before every start, so it may write config files.
    pub fn args(
        mut self,
        args: impl Fn(&Ports, &Path) -> Vec<OsString> + Send + Sync + 'static,
    ) -> Self {
        self.args = Box::new(args);
        self
    }

    /// Whether the started server is ready; polled until it is. Keep each poll short.
    pub fn ready(mut self, ready: impl Fn(&Ports) -> bool + Send + Sync + 'static) -> Self {
        self.ready = Box::new(ready);
        self
    }

    /// Whether the log a failed start wrote says a port was taken; by default it
    /// contains "address already in use" or "address in use", in any case.
    pub fn port_taken(mut self, taken: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        self.taken = Box::new(taken);
        self
    }

    /// Longest wait for readiness (10 s by default).
    pub fn ready_bound(mut self, bound: Duration) -> Self {
        self.ready_bound = bound;
        self
    }

    /// Makes the temp dir and chooses the ports, without starting the server: for a
    /// harness that prepares files (certificates, say) first.
    pub fn build(self) -> Server {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("waypost-{}-{}-{n}", self.name, std::process::id()));
        let _ = fs::remove_dir_all(&dir); // a leftover of a dead process with our pid
        fs::create_dir_all(dir.join("data")).expect("create the server's temp dir");
        Server {
            ports: Ports::pick(&self.ports, None),
            spec: self,
            dir,
            running: None,
            started: false,
            ready_after: Duration::ZERO,
        }
    }

    /// Starts the server and waits until it is ready; panics, with the log's tail, when
    /// it will not start.
    pub fn start(self) -> Server {
        let mut server = self.build();
        server.start();
        server
    }
}

/// A server process of a test; see the module docs.
pub struct Server {
    spec: ServerBuilder,
    dir: PathBuf,
    ports: Ports,
    running: Option<Running>,
    /// Whether it ever started: until then every port may still move.
    started: bool,
    ready_after: Duration,
}

struct Running {
    stdin: ChildStdin,
    /// The server's pid.
    pid: u32,
    supervisor_pid: u32,
    /// Disconnects when the supervisor has exited (it reaps the server first).
    exited: Receiver<()>,
    /// Waits for the supervisor; joined once `exited` says so.
    waiter: std::thread::JoinHandle<()>,
}

/// Waits for `supervisor` on a named thread; the receiver disconnects when it exits.
fn watch_exit(mut supervisor: Child, name: &str) -> (Receiver<()>, std::thread::JoinHandle<()>) {
    let (tx, exited) = crossbeam_channel::bounded::<()>(0);
    let waiter = std::thread::Builder::new()
        .name(format!("{name}-supervisor-wait"))
        .spawn(move || {
            let _ = supervisor.wait();
            drop(tx);
        })
        .expect("spawn the supervisor's waiter");
    (exited, waiter)
}

/// Waits up to `bound` for the supervisor to exit; true if it did.
fn exited_within(exited: &Receiver<()>, bound: Duration) -> bool {
    matches!(
        exited.recv_timeout(bound),
        Err(RecvTimeoutError::Disconnected)
    )
}

impl Server {
    /// A server called `name` (its temp dir and log are named after it) run from `bin`.
    pub fn builder(name: &'static str, bin: impl Into<PathBuf>) -> ServerBuilder {
        ServerBuilder {
            name,
            bin: bin.into(),
            ports: Vec::new(),
            args: Box::new(|_, _| Vec::new()),
            ready: Box::new(|_| true),
            taken: Box::new(|log| {
                let log = log.to_ascii_lowercase();
                log.contains("address already in use") || log.contains("address in use")
            }),
            ready_bound: Duration::from_secs(10),
        }
    }

    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    /// The binary it runs.
    pub fn bin(&self) -> &Path {
        &self.spec.bin
    }

    /// The temp dir (data dir, log, whatever the harness writes).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn ports(&self) -> &Ports {
        &self.ports
    }

    /// The server's process id, `None` while stopped.
    pub fn pid(&self) -> Option<u32> {
        self.running.as_ref().map(|r| r.pid)
    }

    /// How long the last start took from spawn to ready.
    pub fn ready_after(&self) -> Duration {
        self.ready_after
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join(format!("{}.log", self.spec.name))
    }

    /// The last lines of the log (every start, with the harness's markers).
    pub fn log_tail(&self) -> String {
        let log = fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
    }

    /// Starts a stopped server on the same ports and data dir. No-op if running.
    pub fn start(&mut self) {
        if self.running.is_some() {
            return;
        }
        for attempt in 1..=START_ATTEMPTS {
            if attempt > 1 {
                let old = self.started.then_some(&self.ports);
                self.ports = Ports::pick(&self.spec.ports, old);
            }
            if self.attempt() {
                self.started = true;
                return;
            }
        }
        panic!(
            "{}: a port stayed taken over {START_ATTEMPTS} start attempts\n{}",
            self.spec.name,
            self.log_tail()
        );
    }

    /// One start on the current ports, without choosing new ones: true when ready,
    /// false when a port was taken (the server is then stopped). For a harness that
    /// starts several servers that know each other's ports (an etcd cluster) and must
    /// choose them all again when one is taken. True at once if running.
    pub fn start_once(&mut self) -> bool {
        if self.running.is_some() {
            return true;
        }
        let ready = self.attempt();
        self.started |= ready;
        ready
    }

    /// Ends the server at once (SIGKILL), as a crash would, and keeps its data dir and
    /// ports: [`start`](Self::start) brings it back. No-op if stopped.
    pub fn kill(&mut self) {
        let Some(pid) = self.pid() else {
            return;
        };
        if let Ok(mut log) = OpenOptions::new().append(true).open(self.log_path()) {
            let _ = writeln!(log, "--- harness: SIGKILL {pid} ---");
        }
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        // No assert: a harness's drop kills too, and a panic there would abort.
        let until = Instant::now() + STOP_BOUND;
        while !process_gone(pid) && Instant::now() < until {
            std::thread::yield_now();
        }
        self.halt(true);
    }

    /// Stops the server (SIGTERM; SIGKILL if paused) and keeps its data dir and ports.
    /// No-op if stopped.
    pub fn stop(&mut self) {
        self.halt(true);
    }

    /// Stops and starts again on the same ports and data dir.
    pub fn restart(&mut self) {
        self.halt(true);
        self.start();
    }

    /// Stops, wipes the data dir and starts again on the same client ports: a server
    /// that lost its state.
    pub fn restart_fresh(&mut self) {
        self.halt(true);
        let data = self.data_dir();
        fs::remove_dir_all(&data).expect("wipe the data dir");
        fs::create_dir(&data).expect("recreate the data dir");
        self.start();
    }

    /// Freezes the server (SIGSTOP): connections are still accepted by the kernel, and
    /// nothing answers. Stop and drop end a paused server too.
    pub fn pause(&self) {
        self.signal("-STOP");
        // The signal is delivered asynchronously: return once the kernel shows the
        // process stopped, so a test's next step meets a paused server.
        let pid = self.pid().expect("a running server");
        let until = Instant::now() + Duration::from_secs(5);
        while !process_paused(pid) {
            assert!(
                Instant::now() < until,
                "process {pid} did not stop on SIGSTOP"
            );
            std::thread::yield_now();
        }
    }

    /// Thaws a paused server (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
        let pid = self.pid().expect("a running server");
        let until = Instant::now() + Duration::from_secs(5);
        while process_paused(pid) {
            assert!(
                Instant::now() < until,
                "process {pid} did not go on after SIGCONT"
            );
            std::thread::yield_now();
        }
    }

    fn signal(&self, sig: &str) {
        let pid = self.pid().expect("a running server").to_string();
        let status = Command::new("kill").args([sig, &pid]).status();
        assert!(status.is_ok_and(|s| s.success()), "kill {sig} {pid}");
    }

    /// One start: true when ready, false when a port was taken.
    fn attempt(&mut self) -> bool {
        let args = (self.spec.args)(&self.ports, &self.dir);
        let log_path = self.log_path();
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("open the server's log");
        let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let name = self.spec.name;
        writeln!(log, "--- harness: starting {name}: {} ---", self.ports).expect("write the log");
        let mut supervisor = Command::new("sh")
            .arg("-c")
            .arg(SUPERVISOR)
            .arg(format!("waypost-{name}-supervisor"))
            .arg(&self.dir)
            .arg(&log_path)
            .arg(&self.spec.bin)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn sh for the supervisor");
        let stdin = supervisor.stdin.take().expect("piped stdin");
        let mut line = String::new();
        let _ =
            BufReader::new(supervisor.stdout.take().expect("piped stdout")).read_line(&mut line);
        let Ok(pid) = line.trim().parse() else {
            let _ = supervisor.kill();
            let _ = supervisor.wait();
            panic!(
                "{name}: the supervisor printed no pid ({line:?})\n{}",
                self.log_tail()
            );
        };
        let supervisor_pid = supervisor.id();
        let (exited, waiter) = watch_exit(supervisor, name);
        self.running = Some(Running {
            stdin,
            pid,
            supervisor_pid,
            exited: exited.clone(),
            waiter,
        });

        let started = Instant::now();
        loop {
            // Exit first: whatever holds a taken port may accept and never answer.
            if process_gone(pid) {
                let mut since = String::new();
                if let Ok(mut f) = fs::File::open(&log_path) {
                    let _ = f.seek(std::io::SeekFrom::Start(log_start));
                    let _ = f.read_to_string(&mut since);
                }
                self.halt(true);
                if (self.spec.taken)(&since) {
                    return false;
                }
                panic!("{name} exited during start-up\n{}", self.log_tail());
            }
            if (self.spec.ready)(&self.ports) {
                self.ready_after = started.elapsed();
                return true;
            }
            if started.elapsed() > self.spec.ready_bound {
                self.halt(true);
                let bound = self.spec.ready_bound;
                panic!("{name} was not ready after {bound:?}\n{}", self.log_tail());
            }
            // The next probe after POLL, or at once when the supervisor exits.
            exited_within(&exited, POLL);
        }
    }

    /// Closes the supervisor's stdin (after `keep` to keep the dir) and waits for the
    /// supervisor, which waits for the server; kills both after [`STOP_BOUND`].
    fn halt(&mut self, keep_dir: bool) {
        let Some(Running {
            mut stdin,
            pid,
            supervisor_pid,
            exited,
            waiter,
        }) = self.running.take()
        else {
            return;
        };
        if keep_dir {
            let _ = stdin.write_all(b"keep\n");
        }
        drop(stdin);
        if !exited_within(&exited, STOP_BOUND) {
            eprintln!(
                "{} {pid} outlived its stop by {STOP_BOUND:?}: SIGKILL",
                self.spec.name
            );
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string(), &supervisor_pid.to_string()])
                .status();
            exited_within(&exited, STOP_BOUND);
            // Reparented, the killed server is reaped by init, a moment later.
            let deadline = Instant::now() + STOP_BOUND;
            while !process_gone(pid) && Instant::now() < deadline {
                std::thread::yield_now();
            }
        }
        let _ = waiter.join();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            print_tail(self);
        }
        self.halt(false);
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("name", &self.spec.name)
            .field("dir", &self.dir)
            .field("ports", &self.ports)
            .field("pid", &self.pid())
            .finish()
    }
}

fn print_tail(server: &Server) {
    eprintln!(
        "{} log ({}):\n{}",
        server.spec.name,
        server.log_path().display(),
        server.log_tail()
    );
}

/// A server shared by the tests of one binary, as one test holds it: derefs to the
/// harness, and prints the server's log tail if the test fails while holding it.
pub struct Shared<T: Deref<Target = Server> + 'static>(&'static T);

impl<T: Deref<Target = Server>> Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.0
    }
}

impl<T: Deref<Target = Server>> Drop for Shared<T> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            print_tail(self.0);
        }
    }
}

/// The server in `cell`, started on first use from the binary `find` returns; `None`
/// when that is `None` (a missing binary: see `bin::require`). Nothing stops it: its
/// supervisor ends it with the test process.
pub fn shared<T: Deref<Target = Server> + Send + Sync>(
    cell: &'static OnceLock<T>,
    find: impl FnOnce() -> Option<PathBuf>,
    start: impl FnOnce(PathBuf) -> T,
) -> Option<Shared<T>> {
    if let Some(server) = cell.get() {
        return Some(Shared(server));
    }
    let bin = find()?;
    Some(Shared(cell.get_or_init(|| start(bin))))
}

/// `/proc/PID` is missing, or the process is a zombie (exited, not yet reaped).
pub fn process_gone(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "pid (comm) S ...": comm may hold spaces and parens, so split at the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_none_or(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => true,
    }
}

/// Whether the process is stopped (SIGSTOP): state `T` in `/proc/PID/stat`.
pub fn process_paused(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('T'))
    })
}
