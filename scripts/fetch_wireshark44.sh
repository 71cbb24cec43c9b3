#!/usr/bin/env bash
# Unpacks Wireshark 4.4 (tshark, Lua 5.4) from Debian 13 (trixie) beside the system, for the tests of
# the Lua dissectors (tests/test_wireshark_tshark.py reads CCSSNIFF_WIRESHARK44, default
# /opt/ccssniff-wireshark44). Nothing is installed: a private apt state downloads tshark and its
# dependencies, dpkg-deb -x unpacks them, and tests run tshark through the unpacked loader.
# Usage: scripts/fetch_wireshark44.sh [DEST]
set -euo pipefail
dest="${1:-${CCSSNIFF_WIRESHARK44:-/opt/ccssniff-wireshark44}}"
if [ -x "$dest/root/usr/bin/tshark" ]; then
    echo "Wireshark 4.4 already in $dest"
    exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/etc/apt.conf.d" "$work/etc/preferences.d" "$work/state/lists/partial" "$work/cache/archives/partial"
touch "$work/state/status"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
    > "$work/etc/sources.list"
cat > "$work/apt.conf" <<CONF
Dir::Etc "$work/etc";
Dir::Etc::sourcelist "$work/etc/sources.list";
Dir::Etc::sourceparts "-";
Dir::State "$work/state";
Dir::State::status "$work/state/status";
Dir::Cache "$work/cache";
Debug::NoLocking "1";
APT::Architecture "amd64";
Acquire::Languages "none";
CONF
export APT_CONFIG="$work/apt.conf"
apt-get -qq update
apt-get -qq install --download-only -y --no-install-recommends tshark
mkdir -p "$dest/root"
for deb in "$work"/cache/archives/*.deb; do
    dpkg-deb -x "$deb" "$dest/root"
done
chmod -R a+rX "$dest"
"$dest/root/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" \
    --library-path "$dest/root/usr/lib/x86_64-linux-gnu:$dest/root/lib/x86_64-linux-gnu" \
    "$dest/root/usr/bin/tshark" --version | head -1
