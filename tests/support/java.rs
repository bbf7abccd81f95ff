//! Java for the ZooKeeper and Curator harnesses: the `java` and `javac` binaries (found
//! as `bin.rs` says: `WAYPOST_JAVA_BIN`, `WAYPOST_JAVAC_BIN`, or `PATH`), classpaths,
//! a JVM run bounded in time, and a folder that lives exactly as long as the test
//! process (for what is made once per test binary and kept in a static).
//!
//! A jar named by a `WAYPOST_<NAME>_JAR` variable must bring its dependencies: Debian's
//! jars list them in their manifests (`Class-Path:`); for other jars, set
//! `WAYPOST_EXTRA_CLASSPATH` (Java's syntax, `dir/*` allowed), which every JVM the
//! harness runs gets at the end of its classpath.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;

use super::server::process_gone;

/// How to get Java when it is missing.
pub const JAVA_HINT: &str = "run ./scripts/test.sh, which installs openjdk-17-jdk-headless";

/// Flags of every short-lived JVM (zkCli, Curator, javac's own): a small heap, the
/// serial collector and the C1 compiler only, which start fastest.
pub const CLIENT_FLAGS: [&str; 3] = ["-Xmx64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"];

/// Where Debian puts jars; the harness looks for logging bindings here too.
pub const DEBIAN_JARS: &str = "/usr/share/java";

/// The `java` binary, or: under `CI=true` a panic, otherwise a loud `SKIPPED:` line.
pub fn require_java() -> Option<PathBuf> {
    super::bin::require("java", JAVA_HINT)
}

/// The `javac` binary (a JDK), with the same skip or panic.
pub fn require_javac() -> Option<PathBuf> {
    super::bin::require("javac", JAVA_HINT)
}

/// `entries` joined with `:`, then `WAYPOST_EXTRA_CLASSPATH` if set.
pub fn classpath<P: AsRef<OsStr>>(entries: &[P]) -> OsString {
    let mut all: Vec<OsString> = entries.iter().map(|e| e.as_ref().to_owned()).collect();
    if let Some(extra) = std::env::var_os("WAYPOST_EXTRA_CLASSPATH").filter(|e| !e.is_empty()) {
        all.push(extra);
    }
    all.join(OsStr::new(":"))
}

/// The jar `name` (`slf4j-simple.jar`, say) next to `beside`, else in Debian's folder;
/// `None` when neither has it.
pub fn jar_near(name: &str, beside: &Path) -> Option<PathBuf> {
    let near = beside.parent().map(|dir| dir.join(name));
    near.into_iter()
        .chain([Path::new(DEBIAN_JARS).join(name)])
        .find(|jar| jar.is_file())
}

/// What a bounded run gave.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// From spawn to exit.
    pub took: Duration,
}

/// Runs `cmd` with `stdin` written to it and then closed, and waits at most `bound`
/// for it to end (SIGKILL then); its output, or why there is none. The wait is on a
/// named thread that is joined before this returns.
pub fn run_bounded(mut cmd: Command, stdin: &str, bound: Duration) -> Result<Run, String> {
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn {cmd:?}: {e}"))?;
    let pid = child.id();
    // Small inputs only (commands for zkCli): they fit the pipe, so this never blocks.
    let mut input = child.stdin.take().expect("piped stdin");
    let _ = input.write_all(stdin.as_bytes());
    drop(input);
    let (tx, rx) = crossbeam_channel::bounded(1);
    let waiter = std::thread::Builder::new()
        .name("java-run-wait".into())
        .spawn(move || {
            let _ = tx.send(child.wait_with_output());
        })
        .expect("spawn the waiter");
    let output = match rx.recv_timeout(bound) {
        Ok(output) => output,
        Err(RecvTimeoutError::Timeout) => {
            if !process_gone(pid) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
            let _ = waiter.join();
            return Err(format!("{cmd:?} still ran after {bound:?}: killed"));
        }
        Err(RecvTimeoutError::Disconnected) => unreachable!("the waiter always sends"),
    };
    let _ = waiter.join();
    let output = output.map_err(|e| format!("wait for {cmd:?}: {e}"))?;
    Ok(Run {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        took: started.elapsed(),
    })
}

/// A temp dir `waypost-NAME-PID-N` that is removed when this value drops or when the
/// test process ends, whichever comes first: a `sh` janitor blocks reading a pipe only
/// this value writes to, and removes the dir when the pipe closes. So a dir held in a
/// static, which is never dropped, still goes with its test binary.
#[derive(Debug)]
pub struct ProcessDir {
    path: PathBuf,
    janitor: Child,
    /// The janitor's stdin: closed on drop, or by the kernel when this process ends.
    pipe: Option<ChildStdin>,
}

/// `$1` is the dir: wait for the end of stdin, then remove it.
const JANITOR: &str = r#"cat >/dev/null; case $1 in */waypost-*) rm -rf -- "$1" ;; esac"#;

impl ProcessDir {
    pub fn new(name: &str) -> ProcessDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("waypost-{name}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path); // a leftover of a dead process with our pid
        fs::create_dir_all(&path).expect("create the temp dir");
        let mut janitor = Command::new("sh")
            .arg("-c")
            .arg(JANITOR)
            .arg(format!("waypost-{name}-janitor"))
            .arg(&path)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sh for the janitor");
        let pipe = janitor.stdin.take();
        ProcessDir {
            path,
            janitor,
            pipe,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ProcessDir {
    fn drop(&mut self) {
        drop(self.pipe.take());
        let _ = self.janitor.wait();
        let _ = fs::remove_dir_all(&self.path);
    }
}
