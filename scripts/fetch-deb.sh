#!/usr/bin/env bash
# Usage: fetch-deb.sh PACKAGE RELEASE DEST_DIR [BINARY]
#
# Unpacks the Debian package PACKAGE of release RELEASE (a suite name: bullseye,
# bookworm, ...) under DEST_DIR, and prints DEST_DIR/usr/bin/BINARY (BINARY defaults to
# PACKAGE; stdout carries nothing else). For a registry server this machine's release
# does not package, such as Consul 1.8.7, which only Debian 11 (bullseye) has:
#
#   scripts/fetch-deb.sh consul bullseye ~/.cache/waypost/consul
#
# apt runs under a throw-away configuration in a temp dir, so the machine's own package
# lists, cache and locks are left alone, and the package is unpacked with dpkg-deb -x
# (nothing is installed; the package's dependencies are not fetched). Returns at once
# when the binary is already there.
#
# The mirror is whatever this machine's apt already uses: the first URIs: line of
# /etc/apt/sources.list.d/debian.sources, or the first deb line of /etc/apt/sources.list.
set -euo pipefail

usage="usage: fetch-deb.sh PACKAGE RELEASE DEST_DIR [BINARY]"
package=${1:?$usage}
release=${2:?$usage}
dest=${3:?$usage}
binary=${4:-$package}
bin="$dest/usr/bin/$binary"
if [ -x "$bin" ]; then
    printf '%s\n' "$bin"
    exit 0
fi

mirror_from_apt() {
    local deb822=/etc/apt/sources.list.d/debian.sources one_line=/etc/apt/sources.list
    if [ -f "$deb822" ]; then
        # "URIs: first [second ...]" -> first
        sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' "$deb822" | head -n 1
    elif [ -f "$one_line" ]; then
        # "deb [options] URI suite components" -> URI
        awk '$1 == "deb" {
                 for (i = 2; i <= NF; i++) {
                     if ($i ~ /^\[/) { while ($i !~ /\]$/ && i < NF) i++; continue }
                     print $i; exit
                 }
             }' "$one_line"
    fi
}

mirror=$(mirror_from_apt)
if [ -z "$mirror" ]; then
    echo "fetch-deb.sh: no mirror found in this machine's apt configuration" >&2
    exit 1
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/lists/partial" "$scratch/cache/archives/partial" "$scratch/root"
printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n' \
    "$mirror" "$release" >"$scratch/sources.list"

# Every path apt would write to points into the scratch dir. The sandbox user is root
# because mktemp's 0700 dir is not readable by _apt (apt warns otherwise).
apt_private=(
    -o "Dir::Etc::sourcelist=$scratch/sources.list"
    -o "Dir::Etc::sourceparts=-"
    -o "Dir::State::Lists=$scratch/lists"
    -o "Dir::Cache=$scratch/cache"
    -o "APT::Get::List-Cleanup=0"
    -o "Debug::NoLocking=1"
    -o "APT::Sandbox::User=root"
)
apt-get "${apt_private[@]}" -qq update >&2
(cd "$scratch" && apt-get "${apt_private[@]}" -qq download "$package" >&2)

debs=("$scratch/${package}"_*.deb)
[ -f "${debs[0]}" ] || { echo "fetch-deb.sh: apt did not download $package" >&2; exit 1; }
dpkg-deb -x "${debs[0]}" "$scratch/root"
[ -x "$scratch/root/usr/bin/$binary" ] \
    || { echo "fetch-deb.sh: $package has no usr/bin/$binary" >&2; exit 1; }
echo "fetch-deb.sh: $package $(dpkg-deb -f "${debs[0]}" Version) from $release" >&2

# Copy the tree, then move the binary in last with a rename, so a concurrent caller that
# sees DEST_DIR/usr/bin/BINARY sees a complete file.
mkdir -p "$dest/usr/bin"
mv "$scratch/root/usr/bin/$binary" "$scratch/$binary"
cp -R "$scratch/root/." "$dest/"
cp "$scratch/$binary" "$dest/usr/bin/.$binary.$$"
mv -f "$dest/usr/bin/.$binary.$$" "$bin"
printf '%s\n' "$bin"
