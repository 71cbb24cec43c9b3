"""Signed V2G messages (xmldsig over EXI, ISO 15118-2 and -20) and the certificates a session shows.

For every message whose Header carries a Signature: each Reference's element (found by its
``Id``) is re-encoded as an EXI fragment with the message's schema and its digest compared;
SignedInfo is encoded as an EXI fragment of the xmldsig schema and the ECDSA signature (r||s)
verified with the signer's public key: the certificate chain in the same message where the
standard puts one there (certificate installation and update, ISO 15118-20 authorisation), else
the contract certificate the session showed before (PaymentDetailsReq). Results: ``valid``,
``invalid`` (which digest, or the signature) or ``unverifiable`` (no certificate in the trace, an
algorithm we do not check). One :class:`SignatureChecker` per V2G connection.
"""
from __future__ import annotations

import datetime
import hashlib
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

_DIGESTS = {"http://www.w3.org/2001/04/xmlenc#sha256": "sha256",
            "http://www.w3.org/2001/04/xmlenc#sha512": "sha512"}
_SIGNATURE_HASHES = {"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256": hashes.SHA256,
                     "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512": hashes.SHA512}
# Where a message carries its signer's chain itself (element name holding the chain or certificate).
# ISO 15118-2 names first, then ISO 15118-20's.
_SIGNER_IN_MESSAGE = {"CertificateInstallationRes": ("SAProvisioningCertificateChain", "CPSCertificateChain"),
                      "CertificateUpdateRes": ("SAProvisioningCertificateChain",),
                      "CertificateInstallationReq": ("OEMProvisioningCert", "OEMProvisioningCertificateChain"),
                      "CertificateUpdateReq": ("ContractSignatureCertChain",)}
# Chains (by element name) whose leaf is the session's contract certificate from then on.
_CONTRACT_CHAINS = ("ContractSignatureCertChain", "ContractCertificateChain")
_CHAIN_ROLES = {"ContractSignatureCertChain": "contract", "ContractCertificateChain": "contract",
                "SAProvisioningCertificateChain": "SA provisioning", "CPSCertificateChain": "CPS",
                "OEMProvisioningCert": "OEM provisioning",
                "OEMProvisioningCertificateChain": "OEM provisioning", "RootCertificateID": "root"}


def _find_key(content: Any, key: str) -> Any:
    """The first value of ``key`` anywhere below ``content`` (depth first)."""
    if isinstance(content, dict):
        if key in content:
            return content[key]
        for value in content.values():
            found = _find_key(value, key)
            if found is not None:
                return found
    elif isinstance(content, list):
        for value in content:
            found = _find_key(value, key)
            if found is not None:
                return found
    return None


def _find_id(content: Any, wanted: str, name: str | None = None) -> tuple[str, Any] | None:
    """The element (name, content) whose ``@Id`` is ``wanted``."""
    if isinstance(content, dict):
        if name is not None and content.get("@Id") == wanted:
            return name, content
        for key, value in content.items():
            for item in (value if isinstance(value, list) else [value]):
                found = _find_id(item, wanted, key)
                if found is not None:
                    return found
    return None


def chain_certificates(chain: Any) -> list[bytes]:
    """DER certificates of a chain element: Certificate, then SubCertificates/Certificate."""
    if isinstance(chain, (bytes, bytearray)):
        return [bytes(chain)]
    if not isinstance(chain, dict):
        return []
    out = []
    leaf = chain.get("Certificate")
    if isinstance(leaf, (bytes, bytearray)):
        out.append(bytes(leaf))
    subs = chain.get("SubCertificates")
    if isinstance(subs, dict):
        certificates = subs.get("Certificate")
        for certificate in certificates if isinstance(certificates, list) else [certificates]:
            if isinstance(certificate, (bytes, bytearray)):
                out.append(bytes(certificate))
    return out


def _utc(value: datetime.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def describe_certificate(der: bytes, role: str) -> dict[str, Any]:
    """Subject, issuer, validity and role of one certificate (or why it cannot be read)."""
    try:
        certificate = x509.load_der_x509_certificate(der)
    except ValueError as error:
        return {"role": role, "error": f"not a certificate: {error}"}
    try:
        is_ca = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    return {"role": role + (" sub-CA" if is_ca else ""), "subject": certificate.subject.rfc4514_string(),
            "issuer": certificate.issuer.rfc4514_string(),
            "not_before": _utc(certificate.not_valid_before_utc), "not_after": _utc(certificate.not_valid_after_utc)}


def describe_chain(ders: list[bytes], role: str) -> list[dict[str, Any]]:
    return [describe_certificate(der, role if index == 0 else role.split(" ")[0]) for index, der in enumerate(ders)]


def _load(der: bytes) -> x509.Certificate | None:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        return None


class SignatureChecker:
    """What one connection showed: the contract certificate, and each signed message's verdict."""

    def __init__(self) -> None:
        self.contract: bytes | None = None
        self.checked = {"valid": 0, "invalid": 0, "unverifiable": 0}

    def certificates(self, name: str, body: Any) -> list[dict[str, Any]]:
        """The certificate chains a message carries, described; remembers the contract certificate."""
        shown: list[dict[str, Any]] = []
        if not isinstance(body, dict):
            return shown
        for key, role in _CHAIN_ROLES.items():
            chain = _find_key(body, key)
            if chain is None or key == "RootCertificateID":
                continue
            ders = chain_certificates(chain)
            if not ders:
                continue
            if key in _CONTRACT_CHAINS and name not in ("CertificateInstallationRes", "CertificateUpdateRes"):
                self.contract = ders[0]
            for entry in describe_chain(ders, role):
                entry["element"] = key
                shown.append(entry)
        return shown

    def check(self, message: Any, schema: str) -> dict[str, Any] | None:
        """The verdict on a message's signature, or None when it carries none."""
        root = message.get(message.root) if hasattr(message, "root") else None
        if not isinstance(root, dict):
            return None
        header = root.get("Header")
        signature = header.get("Signature") if isinstance(header, dict) else None
        if not isinstance(signature, dict):
            return None
        body = root.get("Body") if message.root == "V2G_Message" else root
        verdict = self._verify(message.name, signature, body, schema)
        self.checked[verdict["result"]] += 1
        return verdict

    def _verify(self, name: str, signature: dict, body: Any, schema: str) -> dict[str, Any]:
        import openv2gx
        from openv2gx.message import Message

        signed_info = signature.get("SignedInfo") or {}
        references = signed_info.get("Reference") or []
        references = references if isinstance(references, list) else [references]
        verdict: dict[str, Any] = {"result": "valid", "references": []}
        for reference in references:
            uri = str(reference.get("@URI", ""))
            element = _find_id(body, uri.lstrip("#"))
            digest_name = _DIGESTS.get((reference.get("DigestMethod") or {}).get("@Algorithm"))
            entry = {"uri": uri}
            if element is None:
                entry["digest"] = "invalid: no element with this Id in the message"
                verdict["result"] = "invalid"
            elif digest_name is None:
                entry["digest"] = "unverifiable: digest algorithm not supported"
                if verdict["result"] == "valid":
                    verdict["result"] = "unverifiable"
            else:
                entry["element"] = element[0]
                try:
                    fragment = openv2gx.encode(Message({element[0]: element[1]}, schema=schema, fragment=True))
                except Exception as error:  # noqa: BLE001 - any codec failure makes it unverifiable
                    entry["digest"] = f"unverifiable: fragment does not encode ({error})"
                    verdict["result"] = "unverifiable" if verdict["result"] == "valid" else verdict["result"]
                else:
                    matches = hashlib.new(digest_name, fragment).digest() == reference.get("DigestValue")
                    entry["digest"] = "valid" if matches else "invalid"
                    if not matches:
                        verdict["result"] = "invalid"
            verdict["references"].append(entry)
        signer = self._signer(name, body)
        hash_class = _SIGNATURE_HASHES.get((signed_info.get("SignatureMethod") or {}).get("@Algorithm"))
        value = signature.get("SignatureValue")
        value = value.get("#text") if isinstance(value, dict) else value
        if signer is None:
            verdict["signature"] = "unverifiable: the signer's certificate is not in the trace"
        elif hash_class is None:
            verdict["signature"] = "unverifiable: signature algorithm not supported"
        elif not isinstance(value, (bytes, bytearray)) or not value or len(value) % 2:
            verdict["signature"] = "invalid: no r||s signature value"
        else:
            verdict["signer"] = signer.subject.rfc4514_string()
            verdict["signature"] = self._signature(signer, bytes(value), signed_info, hash_class)
        if verdict["signature"] != "valid":
            if verdict["signature"].startswith("invalid"):
                verdict["result"] = "invalid"
            elif verdict["result"] == "valid":
                verdict["result"] = "unverifiable"
        return verdict

    def _signer(self, name: str, body: Any) -> x509.Certificate | None:
        in_message = _SIGNER_IN_MESSAGE.get(name, ())
        if name == "AuthorizationReq":
            in_message = ("ContractCertificateChain",)  # ISO 15118-20 Plug & Charge
        for element in in_message:
            ders = chain_certificates(_find_key(body, element))
            if ders:
                return _load(ders[0])
        if in_message and name != "AuthorizationReq":
            return None
        return _load(self.contract) if self.contract else None

    @staticmethod
    def _signature(signer: x509.Certificate, value: bytes, signed_info: dict, hash_class) -> str:
        import openv2gx
        from openv2gx.message import Message

        key = signer.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            return "unverifiable: the signer's key is not an ECDSA key"
        half = len(value) // 2
        der_signature = utils.encode_dss_signature(int.from_bytes(value[:half], "big"),
                                                   int.from_bytes(value[half:], "big"))
        try:
            data = openv2gx.encode(Message({"SignedInfo": signed_info}, schema="xmldsig", fragment=True))
        except Exception as error:  # noqa: BLE001
            return f"unverifiable: SignedInfo does not encode ({error})"
        try:
            key.verify(der_signature, data, ec.ECDSA(hash_class()))
        except InvalidSignature:
            return "invalid: the signature does not match SignedInfo and the signer's key"
        return "valid"
