#!/usr/bin/env bash
# The one test command: makes sure the registry servers the integration tests start
# are installed, then runs every test (unit, integration and doc tests) three times:
# with every feature on, with no feature (the core, memory and file), and with the
# network backends but without TLS (a plain-HTTP build, where an https:// address is
# refused). Extra
# arguments go to each `cargo test`, e.g.
#
#   ./scripts/test.sh                 # everything
#   ./scripts/test.sh memory          # tests whose name contains "memory"
#   ./scripts/test.sh -- --nocapture  # arguments for the test binaries
#
# Server binaries are found on PATH, or taken from WAYPOST_<NAME>_BIN (for example
# WAYPOST_CONSUL_BIN=/opt/consul/bin/consul). When neither has one, its line in
# ensure_servers installs it with Debian's apt (root or sudo), or unpacks an older
# release's package into a cache folder. The tests read the same variables, so a binary
# outside PATH is found by both.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'test.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root or sudo to run: $*"
    fi
}

# True when the server binary NAME is available: WAYPOST_<NAME>_BIN names an
# executable, or COMMAND is on PATH. NAME is the backend's name (consul, etcd, ...).
have_bin() {
    local name=$1 command=$2
    local var="WAYPOST_${name^^}_BIN"
    if [[ -n ${!var:-} ]]; then
        [[ -x ${!var} ]] || die "$var=${!var} is not an executable file"
        return 0
    fi
    command -v "$command" >/dev/null 2>&1
}

# True when the file FILE a server needs is there, for a server that is not a program
# of its own (ZooKeeper is a jar run by java): WAYPOST_<NAME>_JAR names a file, or FILE
# is one.
have_jar() {
    local name=$1 file=$2
    local var="WAYPOST_${name^^}_JAR"
    if [[ -n ${!var:-} ]]; then
        [[ -f ${!var} ]] || die "$var=${!var} is not a file"
        return 0
    fi
    [[ -f $file ]]
}

# Installs Debian packages with apt-get; `apt-get update` runs at most once per call of
# this script. Used by the server lines below.
apt_updated=false
ensure_apt_packages() {
    command -v apt-get >/dev/null 2>&1 \
        || die "apt-get not found: install $* yourself, or set WAYPOST_<NAME>_BIN"
    if [[ $apt_updated == false ]]; then
        log "apt-get update"
        as_root apt-get update -qq
        apt_updated=true
    fi
    log "apt-get install $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

# One line per backend whose tests start a real server, in ensure_servers below:
#
#   server NAME COMMAND apt PACKAGE...      a package of this machine's release
#   server NAME COMMAND deb PACKAGE RELEASE an older release's package, unpacked into
#                                           ${WAYPOST_CACHE:-~/.cache/waypost}/NAME
#   server NAME /path/FILE.jar apt PACKAGE... a jar of a package (run by java)
#
# NAME names the variable (WAYPOST_<NAME>_BIN, WAYPOST_<NAME>_JAR for a jar) and the
# cache folder; COMMAND is the binary. A step returns at once when the binary is there
# (have_bin; have_jar for a jar), so a server on PATH or named by its variable is never
# installed. The tests find an unpacked one in the cache. A tool the tests run beside a
# server (etcdctl) has a line of its own, so WAYPOST_<TOOL>_BIN or PATH is checked for
# it too.
#
# The memory and file backends need no server.
server() {
    local name=$1 command=$2 how=$3
    shift 3
    case $command in
        *.jar) have_jar "$name" "$command" && return 0 ;;
        *) have_bin "$name" "$command" && return 0 ;;
    esac
    case $how in
        apt) ensure_apt_packages "$@" ;;
        deb)
            local cache=${WAYPOST_CACHE:-$HOME/.cache/waypost} var="WAYPOST_${name^^}_BIN" bin
            [[ -x $cache/$name/usr/bin/$command ]] \
                || log "fetching $1 from Debian $2 into $cache/$name"
            bin=$(scripts/fetch-deb.sh "$1" "$2" "$cache/$name" "$command")
            printf -v "$var" '%s' "$bin"
            export "${var?}"
            ;;
        *) die "server $name: unknown install method $how (apt or deb)" ;;
    esac
}

# One line per third-party client package the tests drive, in ensure_servers below,
# installed at an exact version into ${WAYPOST_CACHE:-~/.cache/waypost}/NAME (never
# into the system), with the machine's own npm and pip configuration:
#
#   client NAME npm PACKAGE VERSION   npm install into NAME/node_modules, no lockfile
#                                     (WAYPOST_<NAME>_DIR names another folder)
#   client NAME pip PACKAGE VERSION   a venv NAME with pip install PACKAGE==VERSION
#                                     (WAYPOST_<NAME>_VENV names another venv)
#
# A step returns at once when that version is already there, or when the variable is
# set (then it must hold the package). The tests look in the same places.
client() {
    local name=$1 how=$2 package=$3 version=$4
    local cache=${WAYPOST_CACHE:-$HOME/.cache/waypost} have
    case $how in
        npm)
            local var="WAYPOST_${name^^}_DIR"
            local dir=${!var:-$cache/$name}
            local manifest=$dir/node_modules/$package/package.json
            have=$(node -p "require('$manifest').version" 2>/dev/null) || have=
            [[ $have == "$version" ]] && return 0
            [[ -n ${!var:-} ]] && die "$var=$dir has no $package $version (has: ${have:-none})"
            log "npm install $package@$version into $dir"
            mkdir -p "$dir"
            npm install --prefix "$dir" --no-package-lock --no-save --no-audit --no-fund \
                --loglevel=error "$package@$version" >&2
            ;;
        pip)
            local var="WAYPOST_${name^^}_VENV"
            local venv=${!var:-$cache/$name}
            have=$("$venv/bin/python" -c "import importlib.metadata as m; print(m.version('$package'))" \
                2>/dev/null) || have=
            [[ $have == "$version" ]] && return 0
            [[ -n ${!var:-} ]] && die "$var=$venv has no $package $version (has: ${have:-none})"
            log "pip install $package==$version into the venv $venv"
            [[ -x $venv/bin/python ]] || python3 -m venv "$venv"
            "$venv/bin/pip" install --quiet --disable-pip-version-check "$package==$version" >&2
            ;;
        *) die "client $name: unknown install method $how (npm or pip)" ;;
    esac
}

ensure_servers() {
    # Consul 1.8.7 is not packaged for Debian 12: Debian 11's package.
    server consul consul deb consul bullseye
    # etcd 3.4.23 and etcdctl, from Debian 12 itself; the harness drives etcd with
    # etcdctl.
    server etcd etcd apt etcd-server etcd-client
    # etcdctl next to a WAYPOST_ETCD_BIN is found by the tests as well.
    [[ -n ${WAYPOST_ETCD_BIN:-} && -x ${WAYPOST_ETCD_BIN%/*}/etcdctl ]] \
        || server etcdctl etcdctl apt etcd-client
    # The etcd TLS tests make their CA and certificates with openssl.
    server openssl openssl apt openssl
    # ZooKeeper 3.8.0 from Debian 12: jars that java runs. javac compiles the Curator
    # interop program at test time (the JDK brings java too).
    server java java apt openjdk-17-jdk-headless
    server javac javac apt openjdk-17-jdk-headless
    server zookeeper /usr/share/java/zookeeper.jar apt zookeeper
    # Curator's service discovery, and its recipes, which its ServiceProvider needs and
    # Debian's libcurator-discovery-java does not pull in.
    server curator /usr/share/java/curator-x-discovery.jar apt libcurator-discovery-java
    server curator_recipes /usr/share/java/curator-recipes.jar apt libcurator-recipes-java
    # dnsmasq 2.90 serves the DNS tests' SRV and A records; dig checks that waypost and
    # a reference client see the same set. Debian puts dnsmasq in /usr/sbin.
    server dnsmasq /usr/sbin/dnsmasq apt dnsmasq-base
    server dig dig apt bind9-dnsutils
    # The `waypost` command's terminal test runs it in a tmux pane (send-keys, capture-pane).
    server tmux tmux apt tmux
    # No Eureka server can be installed here: the tests carry a double, checked with two
    # third-party clients. Node and npm for eureka-js-client, CPython with venv for
    # py-eureka-client.
    server node node apt nodejs
    server npm npm apt npm
    server python3 python3 apt python3 python3-venv
    client ejs npm eureka-js-client 4.5.0
    client pyeureka pip py-eureka-client 0.13.3
}

ensure_servers

# The feature sets, one `cargo test` each. .ci/run lints and documents the same sets.
feature_sets=(
    "--all-features"
    "--no-default-features"
    "--no-default-features --features consul,etcd,zk,dnssrv,eureka"
)

# A hung test must fail the run in minutes, not use up CI's 90: the three runs take a
# few minutes with their builds, so 25 for all of them is far beyond any honest run.
limit=${WAYPOST_TEST_TIMEOUT:-1500}
deadline=$((SECONDS + limit))
for features in "${feature_sets[@]}"; do
    left=$((deadline - SECONDS))
    ((left > 0)) || die "out of time (${limit} s) before cargo test $features"
    log "cargo test $features $* (at most ${left} s left of ${limit})"
    # $features is several words on purpose.
    # shellcheck disable=SC2086
    timeout --kill-after=30 "$left" cargo test $features "$@"
done
