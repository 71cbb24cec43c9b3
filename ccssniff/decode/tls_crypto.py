"""TLS record protection: key derivation from logged secrets and record decryption (RFC 5246, 7366, 8446).

Only the receiving side of the record layer: we never encrypt. One :class:`RecordCipher` per
direction and key epoch; ``decrypt(sequence, content_type, header, body)`` returns the inner
content type and the plaintext, or raises :class:`DecryptError` when the record does not
authenticate.
"""
from __future__ import annotations

import hashlib
import hmac
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305


class DecryptError(ValueError):
    pass


class CipherSuite(NamedTuple):
    name: str
    kind: str          # "cbc", "gcm", "chacha" (TLS 1.2) or "tls13-gcm", "tls13-chacha"
    key_length: int
    mac: str | None    # HMAC hash of a CBC suite
    prf: str           # hash of the PRF (TLS 1.2) or of HKDF (TLS 1.3)


SUITES: dict[int, CipherSuite] = {
    # ISO 15118-2 suites (TLS 1.2) and what stacks offer beside them
    0xC023: CipherSuite("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "cbc", 16, "sha256", "sha256"),
    0xC025: CipherSuite("TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256", "cbc", 16, "sha256", "sha256"),
    0xC024: CipherSuite("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384", "cbc", 32, "sha384", "sha384"),
    0xC026: CipherSuite("TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA384", "cbc", 32, "sha384", "sha384"),
    0xC027: CipherSuite("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "cbc", 16, "sha256", "sha256"),
    0xC028: CipherSuite("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384", "cbc", 32, "sha384", "sha384"),
    0xC009: CipherSuite("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "cbc", 16, "sha1", "sha256"),
    0xC00A: CipherSuite("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "cbc", 32, "sha1", "sha256"),
    0x003C: CipherSuite("TLS_RSA_WITH_AES_128_CBC_SHA256", "cbc", 16, "sha256", "sha256"),
    0xC02B: CipherSuite("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "gcm", 16, None, "sha256"),
    0xC02C: CipherSuite("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "gcm", 32, None, "sha384"),
    0xC02D: CipherSuite("TLS_ECDH_ECDSA_WITH_AES_128_GCM_SHA256", "gcm", 16, None, "sha256"),
    0xC02E: CipherSuite("TLS_ECDH_ECDSA_WITH_AES_256_GCM_SHA384", "gcm", 32, None, "sha384"),
    0xC02F: CipherSuite("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "gcm", 16, None, "sha256"),
    0xC030: CipherSuite("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "gcm", 32, None, "sha384"),
    0x009C: CipherSuite("TLS_RSA_WITH_AES_128_GCM_SHA256", "gcm", 16, None, "sha256"),
    0x009D: CipherSuite("TLS_RSA_WITH_AES_256_GCM_SHA384", "gcm", 32, None, "sha384"),
    0xCCA9: CipherSuite("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "chacha", 32, None, "sha256"),
    0xCCA8: CipherSuite("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "chacha", 32, None, "sha256"),
    # TLS 1.3 (ISO 15118-20)
    0x1301: CipherSuite("TLS_AES_128_GCM_SHA256", "tls13-gcm", 16, None, "sha256"),
    0x1302: CipherSuite("TLS_AES_256_GCM_SHA384", "tls13-gcm", 32, None, "sha384"),
    0x1303: CipherSuite("TLS_CHACHA20_POLY1305_SHA256", "tls13-chacha", 32, None, "sha256"),
}

_TAG = 16


def _p_hash(hash_name: str, secret: bytes, seed: bytes, length: int) -> bytes:
    """RFC 5246 section 5: P_hash, the TLS 1.2 PRF's expansion."""
    out = bytearray()
    a = seed
    while len(out) < length:
        a = hmac.digest(secret, a, hash_name)
        out += hmac.digest(secret, a + seed, hash_name)
    return bytes(out[:length])


def tls12_prf(hash_name: str, secret: bytes, label: bytes, seed: bytes, length: int) -> bytes:
    return _p_hash(hash_name, secret, label + seed, length)


def _hkdf_expand(hash_name: str, secret: bytes, info: bytes, length: int) -> bytes:
    out = bytearray()
    block = b""
    counter = 1
    while len(out) < length:
        block = hmac.digest(secret, block + info + bytes([counter]), hash_name)
        out += block
        counter += 1
    return bytes(out[:length])


def hkdf_expand_label(hash_name: str, secret: bytes, label: str, context: bytes, length: int) -> bytes:
    """RFC 8446 section 7.1."""
    full_label = b"tls13 " + label.encode()
    info = length.to_bytes(2, "big") + bytes([len(full_label)]) + full_label + bytes([len(context)]) + context
    return _hkdf_expand(hash_name, secret, info, length)


class RecordCipher:
    """The receive state of one direction in one key epoch."""

    __slots__ = ("suite", "secret")

    def __init__(self, suite: CipherSuite, secret: bytes = b"") -> None:
        self.suite = suite
        self.secret = secret  # TLS 1.3 traffic secret (for key updates)

    def decrypt(self, sequence: int, content_type: int, header: bytes, body: bytes) -> tuple[int, bytes]:
        raise NotImplementedError


class _Tls12Cbc(RecordCipher):
    __slots__ = ("_key", "_mac_key", "_mac_length", "_encrypt_then_mac")

    def __init__(self, suite: CipherSuite, key: bytes, mac_key: bytes, encrypt_then_mac: bool) -> None:
        super().__init__(suite)
        self._key = key
        self._mac_key = mac_key
        self._mac_length = hashlib.new(suite.mac).digest_size
        self._encrypt_then_mac = encrypt_then_mac

    def _mac(self, sequence: int, content_type: int, header: bytes, data: bytes) -> bytes:
        pseudo_header = sequence.to_bytes(8, "big") + bytes([content_type]) + header[1:3] + len(data).to_bytes(2, "big")
        return hmac.digest(self._mac_key, pseudo_header + data, self.suite.mac)

    def decrypt(self, sequence: int, content_type: int, header: bytes, body: bytes) -> tuple[int, bytes]:
        mac_length = self._mac_length
        if self._encrypt_then_mac:
            if len(body) < 16 + 16 + mac_length:
                raise DecryptError("record too short")
            ciphertext, tag = body[:-mac_length], body[-mac_length:]
            if not hmac.compare_digest(self._mac(sequence, content_type, header, ciphertext), tag):
                raise DecryptError("bad MAC")
            plain = self._cbc(ciphertext)
            pad = plain[-1]
            if pad + 1 > len(plain):
                raise DecryptError("bad padding")
            return content_type, plain[:-(pad + 1)]
        if len(body) < 32 or len(body) % 16:
            raise DecryptError(f"{len(body)} bytes are no CBC record")
        plain = self._cbc(body)
        pad = plain[-1]
        if pad + 1 + mac_length > len(plain) or plain[-(pad + 1):] != bytes([pad]) * (pad + 1):
            raise DecryptError("bad padding")
        data = plain[:-(pad + 1 + mac_length)]
        tag = plain[-(pad + 1 + mac_length):-(pad + 1)]
        if not hmac.compare_digest(self._mac(sequence, content_type, header, data), tag):
            raise DecryptError("bad MAC")
        return content_type, data

    def _cbc(self, iv_and_ciphertext: bytes) -> bytes:
        decryptor = Cipher(algorithms.AES(self._key), modes.CBC(iv_and_ciphertext[:16])).decryptor()
        return decryptor.update(iv_and_ciphertext[16:]) + decryptor.finalize()


class _Tls12Aead(RecordCipher):
    __slots__ = ("_aead", "_iv", "_explicit")

    def __init__(self, suite: CipherSuite, key: bytes, iv: bytes) -> None:
        super().__init__(suite)
        self._explicit = suite.kind == "gcm"  # GCM: 4 fixed + 8 explicit nonce bytes; ChaCha20: XOR like 1.3
        self._aead = AESGCM(key) if self._explicit else ChaCha20Poly1305(key)
        self._iv = iv

    def decrypt(self, sequence: int, content_type: int, header: bytes, body: bytes) -> tuple[int, bytes]:
        if self._explicit:
            if len(body) < 8 + _TAG:
                raise DecryptError("record too short")
            nonce, ciphertext = self._iv + body[:8], body[8:]
        else:
            if len(body) < _TAG:
                raise DecryptError("record too short")
            nonce = (int.from_bytes(self._iv, "big") ^ sequence).to_bytes(12, "big")
            ciphertext = body
        aad = sequence.to_bytes(8, "big") + bytes([content_type]) + header[1:3] + \
            (len(ciphertext) - _TAG).to_bytes(2, "big")
        try:
            return content_type, self._aead.decrypt(nonce, ciphertext, aad)
        except InvalidTag:
            raise DecryptError("bad authentication tag") from None


class _Tls13Aead(RecordCipher):
    __slots__ = ("_aead", "_iv")

    def __init__(self, suite: CipherSuite, secret: bytes) -> None:
        super().__init__(suite, secret)
        key = hkdf_expand_label(suite.prf, secret, "key", b"", suite.key_length)
        self._iv = int.from_bytes(hkdf_expand_label(suite.prf, secret, "iv", b"", 12), "big")
        self._aead = AESGCM(key) if suite.kind == "tls13-gcm" else ChaCha20Poly1305(key)

    def decrypt(self, sequence: int, content_type: int, header: bytes, body: bytes) -> tuple[int, bytes]:
        if content_type != 23:
            raise DecryptError(f"content type {content_type} in a protected TLS 1.3 record")
        if len(body) < _TAG + 1:
            raise DecryptError("record too short")
        try:
            inner = self._aead.decrypt((self._iv ^ sequence).to_bytes(12, "big"), body, header)
        except InvalidTag:
            raise DecryptError("bad authentication tag") from None
        if inner and inner[-1]:  # no padding: the usual case
            return inner[-1], inner[:-1]
        end = len(inner.rstrip(b"\x00"))
        if not end:
            raise DecryptError("inner plaintext without content type")
        return inner[end - 1], inner[:end - 1]


def tls12_ciphers(suite: CipherSuite, master: bytes, client_random: bytes, server_random: bytes,
                  encrypt_then_mac: bool = False) -> tuple[RecordCipher, RecordCipher]:
    """(client-write, server-write) receive states from the master secret (RFC 5246 section 6.3)."""
    mac_length = hashlib.new(suite.mac).digest_size if suite.kind == "cbc" else 0
    iv_length = {"cbc": 0, "gcm": 4, "chacha": 12}[suite.kind]
    total = 2 * (mac_length + suite.key_length + iv_length)
    block = tls12_prf(suite.prf, master, b"key expansion", server_random + client_random, total)
    position = 0

    def take(length: int) -> bytes:
        nonlocal position
        position += length
        return block[position - length:position]

    client_mac, server_mac = take(mac_length), take(mac_length)
    client_key, server_key = take(suite.key_length), take(suite.key_length)
    client_iv, server_iv = take(iv_length), take(iv_length)
    if suite.kind == "cbc":
        return (_Tls12Cbc(suite, client_key, client_mac, encrypt_then_mac),
                _Tls12Cbc(suite, server_key, server_mac, encrypt_then_mac))
    return _Tls12Aead(suite, client_key, client_iv), _Tls12Aead(suite, server_key, server_iv)


def tls13_cipher(suite: CipherSuite, secret: bytes) -> RecordCipher:
    if not suite.kind.startswith("tls13"):
        raise DecryptError(f"{suite.name} is not a TLS 1.3 suite")
    return _Tls13Aead(suite, secret)


def tls13_next_secret(cipher: RecordCipher) -> RecordCipher:
    """After a KeyUpdate (RFC 8446 section 7.2)."""
    suite = cipher.suite
    length = hashlib.new(suite.prf).digest_size
    return _Tls13Aead(suite, hkdf_expand_label(suite.prf, cipher.secret, "traffic upd", b"", length))
