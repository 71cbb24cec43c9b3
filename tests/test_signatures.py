"""Signatures of Plug & Charge messages checked when decoding (decode/signatures.py), on the
dsV2Gshark PnC captures (RISE-V2G against dSPACE's test system) and with flipped bits."""
from __future__ import annotations

import copy

import pytest

from ccssniff.capture.reader import read_packets
from ccssniff.decode.events import TLS, V2G
from ccssniff.decode.pipeline import Pipeline
from ccssniff.decode.signatures import SignatureChecker
from ccssniff.decode.trace_keys import keys_in_capture

CAPTURES = {
    "ISO-2_DC_PnC_TLS_Contract_DS5366_RiseV2G": {"AuthorizationReq": 1},
    "ISO-2_AC_PnC_TLS_Contract_MeteringReceipt_DS5366_RiseV2G": {"AuthorizationReq": 1, "MeteringReceiptReq": 2},
    "ISO-2_DC_PnC_TLS_CertInstallation_DS5366_RiseV2G": {"CertificateInstallationReq": 1,
                                                         "CertificateInstallationRes": 1, "AuthorizationReq": 1},
    "ISO-2_DC_PnC_TLS_CertUpdate_DS5366_RiseV2G": {"CertificateUpdateReq": 1, "CertificateUpdateRes": 1,
                                                   "AuthorizationReq": 1},
}


def decoded(shared_dir, name):
    path = shared_dir / "captures" / "dsv2gshark" / f"{name}.pcapng"
    pipeline = Pipeline(keys=keys_in_capture(path).keys)
    events = []
    for packet in read_packets(path):
        events += pipeline.feed(packet)
    return events + list(pipeline.finish())


@pytest.mark.parametrize("name", CAPTURES)
def test_signed_messages_of_the_pnc_captures_verify(shared_dir, name):
    events = decoded(shared_dir, name)
    valid = {}
    for event in events:
        verdict = event.fields.get("signature") if event.kind == V2G else None
        if verdict and event.message.name in CAPTURES[name]:
            assert verdict["result"] == "valid", (event.message.name, verdict)
            assert verdict["signature"] == "valid"
            if event.message.name in ("AuthorizationReq", "MeteringReceiptReq"):
                assert "DEABC123456789Y" in verdict["signer"]  # the contract certificate signed it
            assert all(r["digest"] == "valid" for r in verdict["references"])
            valid[event.message.name] = valid.get(event.message.name, 0) + 1
    assert valid == CAPTURES[name]
    # Certificate chains are shown with subject, issuer, validity and role.
    [payment] = [e for e in events if e.kind == V2G and e.message.name == "PaymentDetailsReq"]
    leaf, *subs = payment.fields["certificates"]
    assert leaf["role"] == "contract" and "DEABC123456789Y" in leaf["subject"]
    assert {"issuer", "not_before", "not_after"} <= set(leaf) and all(s["role"] == "contract sub-CA" for s in subs)
    tls_chain = [e for e in events if e.kind == TLS and e.name == "Certificate"][0].fields["certificates"]
    assert tls_chain[0]["role"] == "SECC"


@pytest.fixture(scope="module")
def authorization(shared_dir):
    events = decoded(shared_dir, "ISO-2_DC_PnC_TLS_Contract_DS5366_RiseV2G")
    messages = {e.message.name: e.message for e in events if e.kind == V2G}
    return messages["PaymentDetailsReq"], messages["AuthorizationReq"]


def checked(payment, message):
    checker = SignatureChecker()
    if payment is not None:
        checker.certificates(payment.name, payment.body)
    return checker.check(message, "iso2")


def test_a_flipped_bit_in_the_signed_element_is_an_invalid_digest(authorization):
    payment, message = authorization
    assert checked(payment, message)["result"] == "valid"
    tampered = copy.deepcopy(message)
    body = tampered["V2G_Message"]["Body"]["AuthorizationReq"]
    body["GenChallenge"] = bytes([body["GenChallenge"][0] ^ 0x01]) + body["GenChallenge"][1:]
    verdict = checked(payment, tampered)
    assert verdict["result"] == "invalid"
    assert verdict["references"][0]["digest"] == "invalid"


def test_a_flipped_bit_in_the_signature_value_is_an_invalid_signature(authorization):
    payment, message = authorization
    tampered = copy.deepcopy(message)
    value = tampered["V2G_Message"]["Header"]["Signature"]["SignatureValue"]
    value["#text"] = value["#text"][:-1] + bytes([value["#text"][-1] ^ 0x80])
    verdict = checked(payment, tampered)
    assert verdict["result"] == "invalid" and verdict["signature"].startswith("invalid")
    assert verdict["references"][0]["digest"] == "valid"


def test_without_the_contract_certificate_the_signature_is_unverifiable(authorization):
    _, message = authorization
    verdict = checked(None, message)
    assert verdict["result"] == "unverifiable" and "not in the trace" in verdict["signature"]
