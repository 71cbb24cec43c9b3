#!/usr/bin/env bash
# Installs what the test suite needs (Debian packages and the Python test extra) and runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends tshark libpcap0.8 iproute2 default-jre-headless >/dev/null
python3 -m pip install -q -e '.[test]'
python3 -m pytest "$@"
