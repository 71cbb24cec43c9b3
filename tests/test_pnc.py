"""Plug & Charge in the lab (ISO 15118-2 over TLS 1.2, ISO 15118-20 over TLS 1.3): the car's
contract chain and signed AuthorizationReq, checked by the charger, and by the decoder in the
recorded capture."""
from __future__ import annotations

import dataclasses

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import ec

from ccssniff.capture.reader import read_packets
from ccssniff.cli import cli
from ccssniff.decode.events import V2G
from ccssniff.decode.pipeline import Pipeline
from ccssniff.decode.trace_keys import keys_in_capture
from ccssniff.emulate.lab import Lab, LabConfig
from ccssniff.emulate.pki import create_pki
from ccssniff.emulate.pnc import ContractCredentials


def run(tmp_path, change_contract=None, protocol="iso2"):
    pki = tmp_path / "pki"
    if not pki.exists():
        create_pki().write(pki)
    frames = []
    config = LabConfig(protocol=protocol, charge_time=2.0, tls=True, pnc=True, pki_dir=pki)
    lab = Lab(config, lambda frame, at, comment: frames.append(frame))
    if change_contract is not None:
        lab.pev.contract = change_contract(lab.pev.contract)
    return lab.run(), lab


@pytest.mark.parametrize("mode", ["dc", "ac"])
def test_pnc_session_completes_and_its_signatures_verify_when_decoded(tmp_path, mode):
    capture = tmp_path / "pnc.pcapng"
    result = CliRunner().invoke(cli, ["emulate", "lab", "--protocol", "iso2", "--mode", mode, "--tls", "--pnc",
                                      "--charge-time", "3", "-w", str(capture)], prog_name="ccssniff")
    assert result.exit_code == 0, result.output
    assert "PaymentDetailsReq x1" in result.output and "AuthorizationReq x1" in result.output
    pipeline = Pipeline(keys=keys_in_capture(capture).keys)
    events = [e for packet in read_packets(capture) for e in pipeline.feed(packet)] + list(pipeline.finish())
    messages = {e.message.name: e for e in events if e.kind == V2G}
    assert messages["PaymentServiceSelectionReq"].message.body["SelectedPaymentOption"] == "Contract"
    leaf = messages["PaymentDetailsReq"].fields["certificates"][0]
    assert leaf["role"] == "contract" and "DEZZZC12345678X" in leaf["subject"]
    verdict = messages["AuthorizationReq"].fields["signature"]
    assert verdict["result"] == "valid" and "DEZZZC12345678X" in verdict["signer"]
    assert messages["AuthorizationRes"].message.body["ResponseCode"] == "OK"
    # The charger asked for a metering receipt in one charge-loop response; the car signed it.
    receipt = messages["MeteringReceiptReq"]
    assert receipt.fields["signature"]["result"] == "valid"
    assert receipt.message.body["MeterInfo"]["MeterID"] == "CCSSNIFF-METER-1"
    assert messages["MeteringReceiptRes"].message.body["ResponseCode"] == "OK"


@pytest.mark.parametrize("protocol", ["iso2", "iso20"])
def test_a_signature_by_another_key_is_refused_by_the_charger(tmp_path, protocol):
    result, _ = run(tmp_path, lambda contract: dataclasses.replace(contract, key=ec.generate_private_key(ec.SECP256R1())),
                    protocol)
    assert not result.ok and "FAILED_SignatureError" in result.reason


def test_iso20_pnc_authorization_is_signed_and_accepted(tmp_path):
    capture = tmp_path / "pnc20.pcapng"
    result = CliRunner().invoke(cli, ["emulate", "lab", "--protocol", "iso20", "--tls", "--pnc", "--charge-time", "2",
                                      "-w", str(capture)], prog_name="ccssniff")
    assert result.exit_code == 0, result.output
    pipeline = Pipeline(keys=keys_in_capture(capture).keys)
    events = [e for packet in read_packets(capture) for e in pipeline.feed(packet)] + list(pipeline.finish())
    messages = {e.message.name: e for e in events if e.kind == V2G}
    request = messages["AuthorizationReq"]
    assert request.message.body["SelectedAuthorizationService"] == "PnC"
    assert request.fields["signature"]["result"] == "valid"
    assert request.fields["certificates"][0]["role"] == "contract"
    assert messages["AuthorizationRes"].message.body["ResponseCode"] == "OK"


def test_a_contract_from_another_mo_is_refused_by_the_charger(tmp_path):
    other = tmp_path / "other"
    create_pki().write(other)
    result, _ = run(tmp_path, lambda contract: ContractCredentials.from_pki(other))
    assert not result.ok and "FAILED_NoCertificateAvailable" in result.reason


@pytest.mark.parametrize("args,message", [(["--pnc"], "over TLS"), (["--tls", "--pnc", "--protocol", "din"],
                                                                       "ISO 15118-2 or -20")])
def test_pnc_needs_tls_and_iso2(tmp_path, args, message):
    result = CliRunner().invoke(cli, ["emulate", "lab", *args, "-w", str(tmp_path / "x.pcapng")], prog_name="ccssniff")
    assert result.exit_code == 2 and message in result.output
