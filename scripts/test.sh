#!/usr/bin/env bash
# Installs what the test suite needs (Debian packages and the Python test extra) and runs it.
# Arguments go to pytest. Works non-interactively as root (CI) or as a user with sudo.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"

packages=(tshark libpcap0.8 iproute2 default-jre-headless)
python3 -m pip --version >/dev/null 2>&1 || packages+=(python3-pip)
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

# Debian's own python3 refuses pip installs outside a venv (PEP 668); this checkout is the
# machine's purpose, so install into it. Harmless where python3 is not Debian's.
export PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1
python3 -m pip install -q -e '.[test]'
# pyslac (the independent EVSE-side SLAC the interop test runs against) pins environs<10, which
# iso15118 cannot live with; it works with the newer one, so it goes in without its pins.
python3 -m pip install -q --no-deps 'pyslac==0.8.3'
python3 -m pytest "$@"
