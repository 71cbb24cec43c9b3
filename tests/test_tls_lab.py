"""TLS in the lab emulator and the test PKI: sessions recorded with their keys, decoded and read by tshark."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from cryptography import x509

from ccssniff.cli import cli
from tshark_tls import tshark_v2gtp_count


def invoke(*args):
    return CliRunner().invoke(cli, [*map(str, args)], prog_name="ccssniff")


@pytest.mark.parametrize("protocol,version,suite,client_certificate", [
    ("iso2", "TLS 1.2", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", False),
    ("iso20", "TLS 1.3", "TLS_AES_256_GCM_SHA384", True),
])
def test_lab_tls_session_decodes_with_its_dsb_and_tshark_decrypts_it(tmp_path, tshark, protocol, version, suite,
                                                                      client_certificate):
    capture, keylog = tmp_path / "lab.pcapng", tmp_path / "keys.log"
    result = invoke("emulate", "lab", "--protocol", protocol, "--tls", "--charge-time", "3", "-w", capture,
                    "--keylog", keylog)
    assert result.exit_code == 0, result.output
    sent = int(result.output.split(" V2G messages")[0].rsplit(" ", 1)[1])
    decoded = invoke("decode", capture, "--json")
    assert decoded.exit_code == 0
    events = [json.loads(line) for line in decoded.output.splitlines()]
    messages = [e for e in events if e["kind"] == "v2g"]
    assert len(messages) == sent and all(m["decrypted"] for m in messages)
    assert [e for e in events if e["kind"] == "error"] == []
    sdp = [e for e in events if e["kind"] == "sdp"]
    assert {e["security"] for e in sdp} == {"TLS"}
    [summary] = [e for e in events if e["kind"] == "tls" and e["name"] == "TLS session"]
    assert summary["version"] == version and summary["cipher_suite"] == suite
    assert ("Certificate" in summary["handshake_ev"]) is client_certificate  # ISO-20: mutual authentication
    assert "Certificate" in summary["handshake_evse"] or version == "TLS 1.3"
    assert tshark_v2gtp_count(tshark, capture) == sent  # stock tshark, no options: the DSB
    assert keylog.read_text().count("\n") >= 1


def test_din_has_no_tls(tmp_path):
    result = invoke("emulate", "lab", "--protocol", "din", "--tls", "-w", tmp_path / "x.pcapng")
    assert result.exit_code == 2 and "DIN 70121 has no TLS" in result.output


def test_pki_create_makes_the_three_trees(tmp_path):
    result = invoke("pki", "create", tmp_path / "pki", "--emaid", "DEABCC00000001")
    assert result.exit_code == 0 and "tests only" in result.output
    folder = tmp_path / "pki"

    def load(name):
        return x509.load_pem_x509_certificate((folder / f"{name}.pem").read_bytes())

    for chain in (["v2g_root", "cpo_sub_ca1", "cpo_sub_ca2", "secc"],
                  ["oem_root", "oem_sub_ca1", "oem_sub_ca2", "oem_provisioning"],
                  ["mo_root", "mo_sub_ca1", "mo_sub_ca2", "contract"]):
        certificates = [load(name) for name in chain]
        for issuer, subject in zip(certificates, certificates[1:]):
            subject.verify_directly_issued_by(issuer)
        assert certificates[0].extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert not certificates[-1].extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    contract = load("contract")
    assert contract.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "DEABCC00000001"
    assert "tests only" in (folder / "README.txt").read_text()
