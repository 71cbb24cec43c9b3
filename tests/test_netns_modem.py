"""`ccssniff modem` commands against the powerline simulator process, in network namespaces."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from ccssniff.homeplug.keys import mask_key

from ccssniff.emulate import netns
from ccssniff.homeplug import format_hex, nid_from_nmk, nmk_from_passphrase

pytestmark = pytest.mark.skipif(netns.unavailable_reason() is not None, reason=str(netns.unavailable_reason()))
CLI = [sys.executable, "-c", "from ccssniff.cli import main; main()"]
RESTART = 0.3


def test_modem_commands_list_inform_set_keys_reset_and_sniff():
    with netns.Namespaces(3) as (a, b, line):
        a_if, line_a = netns.veth(a, line, checksum_offload=False)
        b_if, line_b = netns.veth(b, line, checksum_offload=False)
        medium = line.popen([sys.executable, "-m", "ccssniff.emulate.powerline", "--port", f"a={line_a}",
                             "--port", f"b={line_b}:full", "--restart-delay", str(RESTART)],
                            stdout=subprocess.PIPE, text=True)
        assert medium.stdout.readline().strip() == "ready"

        def modem(namespace, *arguments, check=True):
            done = namespace.run(*CLI, "modem", *arguments, check=False, timeout=30)
            if check:
                assert done.returncode == 0, done.stderr
                return json.loads(done.stdout) if "--json" in arguments else done.stdout
            return done

        [alone] = modem(a, "list", a_if, "--json")["modems"]
        assert alone["local"] and alone["firmware"].startswith("MAC-QCA7420") and alone["vendor"] == "Atheros Communications"
        assert modem(a, "info", a_if, "--json")["networks"] == []

        for namespace, interface in ((a, a_if), (b, b_if)):
            answer = modem(namespace, "set-key", interface, "--passphrase", "ccs test", "--json")
            key = nmk_from_passphrase("ccs test")
            assert answer["result"] == "success" and answer["nmk"] == mask_key(key) and key.hex() not in answer["nmk"]
            assert answer["nid"] == format_hex(nid_from_nmk(nmk_from_passphrase("ccs test")))
        time.sleep(RESTART + 0.2)

        listed = modem(a, "list", a_if, "--json")["modems"]
        assert [m["local"] for m in listed] == [True, False]
        [network] = modem(a, "info", a_if, "--json")["networks"]
        assert network["nid"] == format_hex(nid_from_nmk(nmk_from_passphrase("ccs test")))
        [station] = network["stations"]
        assert station["mac"] == listed[1]["mac"] and station["tx_mbits"] > 0
        text = modem(a, "info", a_if)
        assert network["nid"] in text and station["mac"] in text

        assert modem(a, "sniffer", a_if, "on", "--json")["sniffer"] == "on"
        assert modem(a, "sniffer", a_if, "off", "--json")["sniffer"] == "off"
        assert modem(a, "reset", a_if, "--json")["result"] == "success"
        time.sleep(RESTART + 0.2)
        shown = modem(b, "set-key", b_if, "--random", "--show-key", "--json")
        assert len(shown["nmk"].replace(":", "")) == 32

        silent = modem(line, "reset", line_a, check=False)  # only a host, no modem, on this cable
        assert silent.returncode == 1 and "no modem answered VS_RS_DEV" in silent.stderr
        missing = modem(a, "list", "ccsLnothere0", check=False)
        assert missing.returncode == 2 and "no network interface" in missing.stderr
        bad = modem(a, "set-key", a_if, "--nmk", "0011", check=False)
        assert bad.returncode == 2 and "16 bytes" in bad.stderr
