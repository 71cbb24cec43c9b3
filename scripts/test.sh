#!/usr/bin/env bash
# Installs what the test suite needs (Debian packages, then the Python test extra into the
# project's virtual environment .venv, never the system Python) and runs it.
# Arguments go to pytest. Works non-interactively as root (CI) or as a user with sudo.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"

packages=(tshark libpcap0.8 iproute2 default-jre-headless tcpreplay chromium lua5.1 lua5.2 lua5.4)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || packages+=(python3-venv)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    # tshark asks whether non-root users may capture; answer it ahead so nothing waits for stdin.
    echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Wireshark 4.4 (Lua 5.4) beside the system's 4.0, for the Lua dissector tests; a failed download
# only costs those tests their 4.4 half, which they report as skipped with the reason.
export CCSSNIFF_WIRESHARK44="${CCSSNIFF_WIRESHARK44:-/opt/ccssniff-wireshark44}"
$SUDO scripts/fetch_wireshark44.sh "$CCSSNIFF_WIRESHARK44" || echo "warning: Wireshark 4.4 not fetched" >&2

# The same .venv the README's first command makes; pyslac's pins stay inside it.
[ -x .venv/bin/python ] || python3 -m venv .venv
export PIP_DISABLE_PIP_VERSION_CHECK=1
.venv/bin/python -m pip install -q -e '.[test]'
# pyslac (the independent EVSE-side SLAC the interop test runs against) pins environs<10, which
# iso15118 cannot live with; it works with the newer one, so it goes in without its pins.
.venv/bin/python -m pip install -q --no-deps 'pyslac==0.8.3'
# Tests start ccssniff and openv2gx as commands; the venv's bin comes first.
export PATH="$PWD/.venv/bin:$PATH"
exec .venv/bin/python -m pytest "$@"
