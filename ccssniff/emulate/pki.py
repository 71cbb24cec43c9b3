"""A test PKI with the roles of ISO 15118-2 / -20 Plug & Charge, for tests and labs only.

Three trees, each a root, two sub-CAs and a leaf, all ECDSA on secp256r1 with SHA-256 as the
certificate profiles of ISO 15118-2 Annex F describe them:

- V2G root -> CPO Sub-CA 1 -> CPO Sub-CA 2 -> SECC leaf (the charger's TLS server certificate)
- OEM root -> OEM Sub-CA 1 -> OEM Sub-CA 2 -> OEM provisioning certificate (the car)
- MO root  -> MO Sub-CA 1  -> MO Sub-CA 2  -> contract certificate (subject CN = the eMAID)

Private keys are written unencrypted. Nothing here is fit for a real charger or car.
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

TEST_ONLY_NOTE = ("TEST PKI for labs and tests only: unencrypted keys, made by ccssniff. "
                  "Never install these certificates in a real charger or car.\n")
DEFAULT_EMAID = "DEZZZC12345678X"
DEFAULT_EVSE_ID = "DEZZZE1234567"


@dataclass
class Issued:
    """One certificate with its key; ``chain`` is the certificates above it up to (not with) the root."""
    name: str
    role: str
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    chain: list[x509.Certificate] = field(default_factory=list)

    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())


def _name(common_name: str, organization: str, domain_component: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                  x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
                  x509.NameAttribute(NameOID.COUNTRY_NAME, "DE")]
    if domain_component:
        attributes.append(x509.NameAttribute(NameOID.DOMAIN_COMPONENT, domain_component))
    return x509.Name(attributes)


def _issue(name: str, role: str, subject: x509.Name, issuer: Issued | None, ca_path_length: int | None,
           days: int, now: datetime.datetime, serial: int) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(issuer.certificate.subject if issuer else subject)
               .public_key(key.public_key()).serial_number(serial)
               .not_valid_before(now - datetime.timedelta(hours=1))
               .not_valid_after(now + datetime.timedelta(days=days))
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if ca_path_length is not None or role.endswith("root"):
        builder = (builder.add_extension(x509.BasicConstraints(ca=True, path_length=ca_path_length), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                                key_encipherment=False, data_encipherment=False,
                                                key_agreement=False, key_cert_sign=True, crl_sign=True,
                                                encipher_only=False, decipher_only=False), critical=True))
    else:
        builder = (builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                                key_encipherment=False, data_encipherment=False,
                                                key_agreement=True, key_cert_sign=False, crl_sign=False,
                                                encipher_only=False, decipher_only=False), critical=True))
    signer = issuer.key if issuer else key
    certificate = builder.sign(signer, hashes.SHA256())
    # Chains in V2G messages and TLS stop below the root, which the peer already holds.
    chain = [] if issuer is None or issuer.chain is None or issuer.role.endswith("root") \
        else [issuer.certificate] + issuer.chain
    return Issued(name, role, certificate, key, chain)


@dataclass
class LabPki:
    v2g_root: Issued
    cpo_sub1: Issued
    cpo_sub2: Issued
    secc: Issued
    oem_root: Issued
    oem_sub1: Issued
    oem_sub2: Issued
    oem_provisioning: Issued
    mo_root: Issued
    mo_sub1: Issued
    mo_sub2: Issued
    contract: Issued
    emaid: str = DEFAULT_EMAID

    def all(self) -> list[Issued]:
        return [self.v2g_root, self.cpo_sub1, self.cpo_sub2, self.secc, self.oem_root, self.oem_sub1,
                self.oem_sub2, self.oem_provisioning, self.mo_root, self.mo_sub1, self.mo_sub2, self.contract]

    def write(self, directory: Path) -> list[Path]:
        """PEM files: NAME.pem and NAME.key.pem per certificate, NAME.chain.pem for leaves (leaf + sub-CAs)."""
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        (directory / "README.txt").write_text(TEST_ONLY_NOTE)
        for issued in self.all():
            for suffix, data in ((".pem", issued.pem()), (".key.pem", issued.key_pem())):
                path = directory / f"{issued.name}{suffix}"
                path.write_bytes(data)
                written.append(path)
            if issued.chain or not issued.role.endswith("root"):
                path = directory / f"{issued.name}.chain.pem"
                path.write_bytes(issued.pem() + b"".join(c.public_bytes(serialization.Encoding.PEM)
                                                         for c in issued.chain))
                written.append(path)
        (directory / "emaid.txt").write_text(self.emaid + "\n")
        return written


def create_pki(emaid: str = DEFAULT_EMAID, evse_id: str = DEFAULT_EVSE_ID, days: int = 365) -> LabPki:
    now = datetime.datetime.now(datetime.timezone.utc)
    serial = iter(range(1, 100))

    def tree(prefix: str, organization: str, root_cn: str, leaf_name: str, leaf_role: str,
             leaf_subject: x509.Name) -> list[Issued]:
        root = _issue(f"{prefix}_root", f"{prefix.upper()} root", _name(root_cn, organization, "V2G"), None, 2,
                      days * 10, now, next(serial))
        sub1 = _issue(f"{prefix}_sub_ca1", f"{prefix.upper()} Sub-CA 1",
                      _name(f"{organization} Tier1 CA", organization, "V2G"), root, 1, days * 4, now, next(serial))
        sub2 = _issue(f"{prefix}_sub_ca2", f"{prefix.upper()} Sub-CA 2",
                      _name(f"{organization} Tier2 CA", organization, "V2G"), sub1, 0, days * 2, now, next(serial))
        leaf = _issue(leaf_name, leaf_role, leaf_subject, sub2, None, days, now, next(serial))
        return [root, sub1, sub2, leaf]

    v2g = tree("cpo", "ccssniff test CPO", "ccssniff test V2G Root CA", "secc", "SECC",
               _name(evse_id, "ccssniff test CPO", "CPO"))
    v2g[0].name, v2g[0].role = "v2g_root", "V2G root"
    oem = tree("oem", "ccssniff test OEM", "ccssniff test OEM Root CA", "oem_provisioning",
               "OEM provisioning", _name("WMIV1234567890ABCDEX", "ccssniff test OEM", "OEM"))
    mo = tree("mo", "ccssniff test MO", "ccssniff test MO Root CA", "contract", "contract",
              _name(emaid, "ccssniff test MO", "MO"))
    return LabPki(*v2g, *oem, *mo, emaid=emaid)
