"""Plug & Charge for the emulators (ISO 15118-2 contract-based identification).

The car holds a contract certificate (with its sub-CAs and key) from the test PKI; it sends the
chain and eMAID in PaymentDetailsReq and signs AuthorizationReq over its EXI fragment (xmldsig:
SHA-256 digest of the fragment, ECDSA P-256 over the EXI-encoded SignedInfo). The charger checks
the chain up to the MO root, answers with a GenChallenge, and verifies the signature and the
challenge with the same code the decoder uses (ccssniff/decode/signatures.py).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from ccssniff.decode.signatures import SignatureChecker, chain_certificates

CANONICAL_EXI = "http://www.w3.org/TR/canonical-exi/"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
SIGNED_ID = "ID1"


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


@dataclass
class ContractCredentials:
    """What the car needs for Plug & Charge: eMAID, contract certificate, sub-CAs, key."""
    emaid: str
    certificate: bytes
    sub_certificates: list[bytes]
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def from_pki(cls, directory: str | os.PathLike) -> ContractCredentials:
        folder = Path(directory)
        chain = x509.load_pem_x509_certificates((folder / "contract.chain.pem").read_bytes())
        key = serialization.load_pem_private_key((folder / "contract.key.pem").read_bytes(), password=None)
        emaid = (folder / "emaid.txt").read_text().strip()
        return cls(emaid, _der(chain[0]), [_der(c) for c in chain[1:]], key)

    def chain(self) -> dict[str, Any]:
        chain: dict[str, Any] = {"Certificate": self.certificate}
        if self.sub_certificates:
            chain["SubCertificates"] = {"Certificate": list(self.sub_certificates)}
        return chain


def sign(message: dict[str, Any], schema: str, element_name: str, element: dict[str, Any],
         key: ec.EllipticCurvePrivateKey) -> None:
    """Put an xmldsig Signature over ``element`` (which carries ``@Id``) into the message's Header."""
    import openv2gx
    from openv2gx.message import Message

    fragment = openv2gx.encode(Message({element_name: element}, schema=schema, fragment=True))
    signed_info = {
        "CanonicalizationMethod": {"@Algorithm": CANONICAL_EXI},
        "SignatureMethod": {"@Algorithm": ECDSA_SHA256},
        "Reference": [{"@URI": "#" + element["@Id"], "Transforms": {"Transform": [{"@Algorithm": CANONICAL_EXI}]},
                       "DigestMethod": {"@Algorithm": SHA256}, "DigestValue": hashlib.sha256(fragment).digest()}],
    }
    encoded = openv2gx.encode(Message({"SignedInfo": signed_info}, schema="xmldsig", fragment=True))
    r, s = utils.decode_dss_signature(key.sign(encoded, ec.ECDSA(hashes.SHA256())))
    size = (key.curve.key_size + 7) // 8
    root = message["V2G_Message"] if "V2G_Message" in message else next(iter(message.values()))
    header = root["Header"]
    header["Signature"] = {"SignedInfo": signed_info,
                           "SignatureValue": {"#text": r.to_bytes(size, "big") + s.to_bytes(size, "big")}}


class ContractVerifier:
    """The charger's side: the contract chain up to a trusted MO root, then the signed challenge."""

    def __init__(self, mo_roots: list[x509.Certificate]) -> None:
        self.mo_roots = mo_roots
        self.checker = SignatureChecker()
        self.challenge: bytes | None = None

    @classmethod
    def from_pki(cls, directory: str | os.PathLike) -> ContractVerifier:
        return cls(x509.load_pem_x509_certificates((Path(directory) / "mo_root.pem").read_bytes()))

    def payment_details(self, name: str, body: Any) -> str | None:
        """ISO 15118-2 PaymentDetailsReq: a FAILED code unless the chain leads to a trusted MO root."""
        self.checker.certificates(name, body)
        return self.chain(body.get("ContractSignatureCertChain") if isinstance(body, dict) else None)

    def chain(self, chain: Any) -> str | None:
        """A FAILED response code when the contract chain does not lead to a trusted MO root."""
        ders = chain_certificates(chain)
        try:
            certificates = [x509.load_der_x509_certificate(der) for der in ders]
        except ValueError:
            return "FAILED_CertChainError"
        if not certificates:
            return "FAILED_CertChainError"
        for issued, issuer in zip(certificates, certificates[1:]):
            try:
                issued.verify_directly_issued_by(issuer)
            except Exception:  # noqa: BLE001 - any failure breaks the chain
                return "FAILED_CertChainError"
        for root in self.mo_roots:
            try:
                certificates[-1].verify_directly_issued_by(root)
                return None
            except Exception:  # noqa: BLE001
                continue
        return "FAILED_NoCertificateAvailable"

    def new_challenge(self) -> bytes:
        self.challenge = os.urandom(16)
        return self.challenge

    def receipt(self, decoded: Any) -> str | None:
        """Why a MeteringReceiptReq's signature is not valid, or None when it is."""
        verdict = self.checker.check(decoded, "iso2")
        return None if verdict is not None and verdict["result"] == "valid" else str(verdict)

    def authorization(self, decoded: Any, challenge: Any, schema: str = "iso2") -> str | None:
        """A FAILED response code unless AuthorizationReq is signed by the contract key over our challenge."""
        verdict = self.checker.check(decoded, schema)
        if verdict is None or verdict["result"] != "valid":
            return "FAILED_SignatureError"
        if self.challenge is None or challenge != self.challenge:
            return "FAILED_ChallengeInvalid"
        return None
