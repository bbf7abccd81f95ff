//! Finding a registry server's binary, and what to do when it is missing.
//!
//! For a server `NAME`: `WAYPOST_<NAME>_BIN` if set (authoritative: set but not
//! executable means missing), else `${WAYPOST_CACHE:-$HOME/.cache/waypost}/NAME/usr/bin/NAME`
//! (where the project's fetch scripts unpack packages), else `NAME` on `PATH`, else in
//! `/usr/sbin` or `/sbin` (Debian's dnsmasq, not on a non-root `PATH`). A test whose
//! server is missing fails under `CI=true` and otherwise skips loudly.
//!
//! A tool that ships with a server (etcdctl with etcd) is found by [`find_companion`]:
//! `WAYPOST_<TOOL>_BIN` if set, else next to the server's binary, else on `PATH`.
//!
//! A server that is not a program of its own (ZooKeeper: a jar that `java` runs) is
//! found by [`find_file`]: `WAYPOST_<NAME>_JAR` if set, else the packaged path.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The environment variable that names `name`'s binary: `WAYPOST_<NAME>_BIN`.
pub fn env_var(name: &str) -> String {
    format!("WAYPOST_{}_BIN", name.to_ascii_uppercase())
}

/// The binary of server `name`, or `None` (see the module docs for the lookup order).
pub fn find(name: &str) -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os(env_var(name)) {
        let bin = PathBuf::from(bin);
        return is_executable(&bin).then_some(bin);
    }
    if let Some(bin) = cache_dir().map(|c| c.join(name).join("usr/bin").join(name)) {
        if is_executable(&bin) {
            return Some(bin);
        }
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(SBIN.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|bin| is_executable(bin))
}

/// Searched after `PATH`: system daemons live there, outside a non-root user's `PATH`.
const SBIN: [&str; 2] = ["/usr/sbin", "/sbin"];

/// `${WAYPOST_CACHE:-$HOME/.cache/waypost}`, where `scripts/test.sh` installs what is
/// not on the system (a package unpacked, the Eureka clients).
pub fn cache_dir() -> Option<PathBuf> {
    std::env::var_os("WAYPOST_CACHE")
        .filter(|c| !c.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/waypost")))
}

/// The tool `tool` that comes with a server whose binary is `server_bin` (etcdctl with
/// etcd): `WAYPOST_<TOOL>_BIN` if set (authoritative, as in [`find`]), else `tool` in
/// the server binary's folder (so an unpacked cache folder serves both), else on `PATH`.
pub fn find_companion(tool: &str, server_bin: &Path) -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os(env_var(tool)) {
        let bin = PathBuf::from(bin);
        return is_executable(&bin).then_some(bin);
    }
    let sibling = server_bin.parent().map(|dir| dir.join(tool));
    if let Some(bin) = sibling.filter(|b| is_executable(b)) {
        return Some(bin);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(tool))
        .find(|bin| is_executable(bin))
}

/// [`find_companion`], or what [`require`] does when a binary is missing.
pub fn require_companion(tool: &str, server_bin: &Path, hint: &str) -> Option<PathBuf> {
    if let Some(bin) = find_companion(tool, server_bin) {
        return Some(bin);
    }
    let var = env_var(tool);
    let looked = match std::env::var_os(&var) {
        Some(bin) => format!(
            "{var}={} is not an executable file",
            Path::new(&bin).display()
        ),
        None => format!(
            "looked next to {} and in PATH; set {var} or {hint}",
            server_bin.display()
        ),
    };
    missing(tool, &looked)
}

/// [`find`], or: under `CI=true` a panic (a missing backend fails in CI), otherwise a
/// loud `SKIPPED:` line on stderr and `None`, so the test returns early. `hint` says
/// how to install it.
pub fn require(name: &str, hint: &str) -> Option<PathBuf> {
    if let Some(bin) = find(name) {
        return Some(bin);
    }
    let var = env_var(name);
    let looked = match std::env::var_os(&var) {
        Some(bin) => format!(
            "{var}={} is not an executable file",
            Path::new(&bin).display()
        ),
        None => format!(
            "looked in ${{WAYPOST_CACHE:-$HOME/.cache/waypost}}/{name}/usr/bin/{name}, PATH, \
             /usr/sbin and /sbin; set {var} or {hint}"
        ),
    };
    missing(name, &looked)
}

/// The file (a jar) that `var` names if set (authoritative: set but not a file means
/// missing), else `default` if it is a file.
pub fn find_file(var: &str, default: &Path) -> Option<PathBuf> {
    let file = std::env::var_os(var).map_or_else(|| default.to_owned(), PathBuf::from);
    file.is_file().then_some(file)
}

/// [`find_file`], or what [`require`] does when a binary is missing: a panic under
/// `CI=true`, otherwise a loud `SKIPPED:` line and `None`.
pub fn require_file(name: &str, var: &str, default: &Path, hint: &str) -> Option<PathBuf> {
    if let Some(file) = find_file(var, default) {
        return Some(file);
    }
    let looked = match std::env::var_os(var) {
        Some(file) => format!("{var}={} is not a file", Path::new(&file).display()),
        None => format!("looked for {}; set {var} or {hint}", default.display()),
    };
    missing(name, &looked)
}

/// A missing binary (or package): a panic under `CI=true`, otherwise a loud `SKIPPED:`
/// line; `looked` says where it was looked for and how to get it.
pub fn missing(name: &str, looked: &str) -> Option<PathBuf> {
    let test = std::thread::current().name().unwrap_or("?").to_owned();
    if in_ci() {
        panic!(
            "{test}: {name} not found ({looked}); under CI=true a missing backend fails the test"
        );
    }
    // Straight to the process's stderr: libtest captures eprintln! of passing tests.
    let _ = writeln!(
        io::stderr(),
        "SKIPPED: {name} not found ({looked}) [test {test}]"
    );
    None
}

/// True when running under CI (`CI=true` or `CI=1`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs this test binary again on one test (an `#[ignore]`d helper test too), with
/// `env` set and `CI` as given (`None`: unset).
pub fn run_self(test: &str, env: &[(&str, &str)], ci: Option<&str>) -> std::process::Output {
    let mut cmd = std::process::Command::new(std::env::current_exe().expect("current exe"));
    cmd.args(["--exact", test, "--nocapture", "--include-ignored"]);
    cmd.envs(env.iter().copied());
    match ci {
        Some(v) => cmd.env("CI", v),
        None => cmd.env_remove("CI"),
    };
    cmd.output().expect("run the test binary")
}

/// With `var` naming no file, `test` (of this binary) fails under `CI=true` saying
/// "`name` not found", and passes without CI, saying loudly that it skipped.
pub fn assert_missing_fails_in_ci_and_skips_locally(test: &str, var: &str, name: &str) {
    let hidden = [(var, "/nonexistent")];
    let ci = run_self(test, &hidden, Some("true"));
    let ci_out = String::from_utf8_lossy(&ci.stdout) + String::from_utf8_lossy(&ci.stderr);
    assert!(!ci.status.success(), "CI=true must fail:\n{ci_out}");
    assert!(ci_out.contains(&format!("{name} not found")), "{ci_out}");

    let local = run_self(test, &hidden, None);
    let stderr = String::from_utf8_lossy(&local.stderr);
    assert!(local.status.success(), "skips locally:\n{stderr}");
    assert!(
        stderr.contains(&format!("SKIPPED: {name} not found")),
        "{stderr}"
    );
}
