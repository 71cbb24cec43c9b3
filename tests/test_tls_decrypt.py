"""TLS decryption (ccssniff/decode/tls.py) against real OpenSSL sessions made through Python's ssl."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ccssniff.decode import tls as tls_layer
from ccssniff.decode.keylog import KeyLog
from ccssniff.decode.tcp import Gap
from ccssniff.decode.tls import TlsSession

HERE = Path(__file__).parent
PAYLOADS = [(i % 2, bytes([0x01, 0xFE, 0x80, 0x01]) + (40 + i).to_bytes(4, "big") + bytes(range(40 + i)))
            for i in range(6)]


def openssl_session(tmp_path, version: str, cipher: str | None = None, tls13_suite: str | None = None) -> dict:
    """One real session (subprocess: OpenSSL is configured for one TLS 1.3 suite by OPENSSL_CONF)."""
    env = dict(os.environ)
    if tls13_suite:
        conf = tmp_path / "openssl.cnf"
        conf.write_text("openssl_conf = d\n[d]\nssl_conf = s\n[s]\nsystem_default = t\n[t]\n"
                        f"Ciphersuites = {tls13_suite}\n")
        env["OPENSSL_CONF"] = str(conf)
    result = subprocess.run([sys.executable, str(HERE / "tls_memory_pair.py"), version, cipher or "-"],
                            capture_output=True, text=True, env=env, timeout=60, check=True)
    return json.loads(result.stdout)


def decrypt(session: dict, keys: KeyLog | None, mangle=None) -> tuple[TlsSession, list[bytes], list]:
    """Feed the recorded chunks; returns the TLS session, the plaintext per direction and every output."""
    tls = TlsSession(keys)
    plain = [b"", b""]
    outputs = []
    for index, (direction, chunk) in enumerate(session["chunks"]):
        data = bytes.fromhex(chunk)
        items = mangle(index, direction, data) if mangle else [data]
        for output in tls.feed(direction, items):
            outputs.append(output)
            if output.kind == tls_layer.DATA:
                plain[direction] += output.value
    return tls, plain, outputs


def keylog_of(session: dict) -> KeyLog:
    keys = KeyLog()
    assert keys.add_text(session["keylog"]) > 0
    return keys


def expected_plaintext(direction: int) -> bytes:
    return b"".join(data for d, data in PAYLOADS if d == direction)


@pytest.mark.parametrize("version,cipher,suite,expected", [
    ("1.2", "ECDHE-ECDSA-AES128-SHA256", None, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"),
    ("1.2", "ECDHE-ECDSA-AES128-GCM-SHA256", None, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
    ("1.2", "ECDHE-ECDSA-AES256-GCM-SHA384", None, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
    ("1.2", "ECDHE-ECDSA-CHACHA20-POLY1305", None, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"),
    ("1.3", None, "TLS_AES_256_GCM_SHA384", "TLS_AES_256_GCM_SHA384"),
    ("1.3", None, "TLS_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"),
    ("1.3", None, "TLS_CHACHA20_POLY1305_SHA256", "TLS_CHACHA20_POLY1305_SHA256"),
])
def test_every_suite_decrypts_what_openssl_sent(tmp_path, version, cipher, suite, expected):
    session = openssl_session(tmp_path, version, cipher, suite)
    assert session["cipher"] == (cipher or suite)  # OpenSSL used the suite we asked for
    tls, plain, outputs = decrypt(session, keylog_of(session))
    assert tls.suite.name == expected
    assert tls.version_name == f"TLS {version}"
    assert plain == [expected_plaintext(0), expected_plaintext(1)]
    assert tls.failed_records == 0 and tls.key_status == "found"
    assert [o for o in outputs if o.kind == tls_layer.PROBLEM] == []
    assert any(o.kind == tls_layer.ALERT and "close_notify" in o.value for o in outputs)
    finished = [o for o in outputs if o.kind == tls_layer.HANDSHAKE and o.value == "Finished"]
    assert len(finished) == 2 and all(o.encrypted for o in finished)


def test_records_split_byte_by_byte_and_merged_decrypt_alike(tmp_path):
    session = openssl_session(tmp_path, "1.3", None, "TLS_AES_128_GCM_SHA256")
    _, plain, _ = decrypt(session, keylog_of(session),
                          mangle=lambda index, direction, data: [data[i:i + 1] for i in range(len(data))])
    assert plain == [expected_plaintext(0), expected_plaintext(1)]


def test_without_keys_records_are_counted_and_keys_reported_missing(tmp_path):
    session = openssl_session(tmp_path, "1.2", "ECDHE-ECDSA-AES128-GCM-SHA256")
    tls, plain, outputs = decrypt(session, KeyLog())
    assert plain == [b"", b""]
    assert tls.key_status == "missing" and tls.undecrypted_records > 0
    assert [o.value for o in outputs if o.kind == tls_layer.KEYS] == ["missing"]


def test_keys_of_another_session_do_not_decrypt_and_do_not_crash(tmp_path):
    one = openssl_session(tmp_path, "1.3", None, "TLS_AES_256_GCM_SHA384")
    other = openssl_session(tmp_path, "1.3", None, "TLS_AES_256_GCM_SHA384")
    tls, plain, _ = decrypt(one, keylog_of(other))
    assert plain == [b"", b""] and tls.key_status == "missing"
    # Same client random, wrong secrets: every record reported as failing to authenticate.
    wrong = KeyLog()
    wrong.add_text("".join(line.replace(line.split()[1], bytes.fromhex(one["chunks"][0][1])[11:43].hex())
                           for line in other["keylog"].splitlines(keepends=True) if not line.startswith("#")))
    tls, plain, outputs = decrypt(one, wrong)
    assert plain == [b"", b""]
    assert tls.failed_records > 0
    assert any(o.kind == tls_layer.PROBLEM and "failed to authenticate" in o.value for o in outputs)


def test_a_flipped_bit_fails_one_record_and_decoding_goes_on(tmp_path):
    session = openssl_session(tmp_path, "1.3", None, "TLS_AES_256_GCM_SHA384")
    application = [i for i, (d, chunk) in enumerate(session["chunks"]) if d == 0][-3]  # a client data record

    def flip(index, direction, data):
        if index == application:
            data = data[:-1] + bytes([data[-1] ^ 1])
        return [data]

    tls, plain, outputs = decrypt(session, keylog_of(session), mangle=flip)
    assert tls.failed_records == 1
    assert [o for o in outputs if o.kind == tls_layer.PROBLEM and "failed to authenticate" in o.value]
    assert plain[1] == expected_plaintext(1)
    assert plain[0] and plain[0] != expected_plaintext(0) and expected_plaintext(0).endswith(plain[0][-40:])


def test_lost_bytes_resynchronise_on_the_next_record(tmp_path):
    session = openssl_session(tmp_path, "1.2", "ECDHE-ECDSA-AES128-GCM-SHA256")
    lost = [i for i, (d, _) in enumerate(session["chunks"]) if d == 1][-3]

    def drop(index, direction, data):
        return [Gap(len(data))] if index == lost else [data]

    tls, plain, outputs = decrypt(session, keylog_of(session), mangle=drop)
    assert any(o.kind == tls_layer.GAP for o in outputs)
    assert tls.failed_records == 0
    assert plain[0] == expected_plaintext(0)
    assert expected_plaintext(1).endswith(plain[1][-41:]) and len(plain[1]) < len(expected_plaintext(1))


def test_truncated_and_oversized_records_are_reported_never_a_crash(tmp_path):
    session = openssl_session(tmp_path, "1.3", None, "TLS_AES_128_GCM_SHA256")
    keys = keylog_of(session)
    tls, _, _ = decrypt(session, keys)
    # A record of the largest length the record layer allows (2^14 + 2048 bytes): fails to authenticate.
    biggest = bytes([23, 3, 3]) + ((1 << 14) + 2048).to_bytes(2, "big") + os.urandom((1 << 14) + 2048)
    outputs = tls.feed(0, [biggest])
    assert [o for o in outputs if o.kind == tls_layer.PROBLEM and "failed to authenticate" in o.value]
    # One byte longer is no record: the record layer reports it lost its framing.
    too_big = bytes([23, 3, 3]) + ((1 << 14) + 2049).to_bytes(2, "big") + bytes(100)
    outputs = tls.feed(0, [too_big])
    assert [o for o in outputs if o.kind == tls_layer.PROBLEM and "no record header" in o.value]
    # A cut record: nothing comes out, nothing breaks; the next gap resets the direction.
    outputs = tls.feed(1, [bytes([23, 3, 3, 0, 200]) + bytes(50)]) + tls.feed(1, [Gap(150)])
    assert [o.kind for o in outputs] == [tls_layer.GAP]
    # A connection that ends inside a record says so.
    tls, _, _ = decrypt(session, keys)
    tls.feed(0, [bytes([23, 3, 3, 0, 200]) + bytes(50)])
    [(direction, problem)] = tls.finish()
    assert direction == 0 and "cut off" in problem.value and "55 bytes" in problem.value


def test_garbage_in_a_key_log_is_counted_not_fatal():
    keys = KeyLog()
    text = ("# comment\n\nCLIENT_RANDOM zz 11\nCLIENT_RANDOM " + "ab" * 32 + " " + "cd" * 48 + "\n"
            "SERVER_TRAFFIC_SECRET_0 " + "ab" * 31 + " " + "cd" * 48 + "\n\x00\xff garbage \n"
            "CLIENT_RANDOM " + "ab" * 32 + " " + "cd" * 32 + "\n")
    assert keys.add_text(text.encode("latin-1")) == 1
    assert keys.rejected == 4
    assert keys.lookup(bytes.fromhex("ab" * 32)) == {"CLIENT_RANDOM": bytes.fromhex("cd" * 48)}


def _expand_label(secret: bytes, label: str, length: int) -> bytes:
    """RFC 8446 7.1 with cryptography's HKDF-Expand: independent of the decoder's own derivation."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

    full = b"tls13 " + label.encode()
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + b"\x00"
    return HKDFExpand(hashes.SHA256(), length, info).derive(secret)


def _protect(secret: bytes, sequence: int, inner: bytes) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key, iv = _expand_label(secret, "key", 16), _expand_label(secret, "iv", 12)
    header = bytes([23, 3, 3]) + (len(inner) + 16).to_bytes(2, "big")
    nonce = (int.from_bytes(iv, "big") ^ sequence).to_bytes(12, "big")
    return header + AESGCM(key).encrypt(nonce, inner, header)


def test_a_key_update_switches_to_the_next_traffic_secret(tmp_path):
    session = openssl_session(tmp_path, "1.3", None, "TLS_AES_128_GCM_SHA256")
    keys = keylog_of(session)
    tls = TlsSession(keys)
    for direction, chunk in session["chunks"]:
        outputs = tls.feed(direction, [bytes.fromhex(chunk)])
        if any(o.kind == tls_layer.ALERT for o in outputs):
            break  # stop at the close_notify: the connection goes on below
    client = tls.directions[0]
    secret = keys.lookup(tls.client_random)["CLIENT_TRAFFIC_SECRET_0"]
    key_update = _protect(secret, client.sequence - 1, bytes([24, 0, 0, 1, 0]) + bytes([22]))
    # The close_notify took the last sequence number: rewind to send the update in its place.
    client.sequence -= 1
    next_secret = _expand_label(secret, "traffic upd", 32)
    after = b"\x01\xfe\x80\x01\x00\x00\x00\x03abc"
    outputs = tls.feed(0, [key_update + _protect(next_secret, 0, after + bytes([23]))])
    assert [o.value for o in outputs if o.kind == tls_layer.HANDSHAKE] == ["KeyUpdate", "key update applied"]
    assert [o.value for o in outputs if o.kind == tls_layer.DATA] == [after]
    assert tls.failed_records == 0


def test_random_bytes_and_mangled_sessions_never_crash(tmp_path):
    import random

    session = openssl_session(tmp_path, "1.2", "ECDHE-ECDSA-AES128-SHA256")
    keys = keylog_of(session)
    rng = random.Random(5)
    for _ in range(60):
        def mangle(index, direction, data):
            data = bytearray(data)
            for _ in range(rng.randrange(4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            cut = rng.randrange(len(data) + 1)
            return [bytes(data[:cut]), Gap(3)] * rng.randrange(2) + [bytes(data[cut:])]
        tls, _, outputs = decrypt(session, keys, mangle=mangle)
        assert all(o.kind in (tls_layer.HANDSHAKE, tls_layer.DATA, tls_layer.GAP, tls_layer.ALERT,
                              tls_layer.PROBLEM, tls_layer.KEYS) for o in outputs)
    for _ in range(200):  # bytes that merely look like records
        tls = TlsSession(keys)
        tls.feed(rng.randrange(2), [bytes([rng.choice([20, 21, 22, 23]), 3, rng.randrange(1, 5)])
                                    + rng.randbytes(rng.randrange(300))])
