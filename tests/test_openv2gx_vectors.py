"""Every vector of ../shared/vectors: decode to its XML, re-encode bit-exact, XML -> same bytes."""

from __future__ import annotations

import json
from xml.etree import ElementTree

import pytest

import openv2gx
from conftest import SHARED_DIR

VECTOR_FILES = ("appHandshake", "din", "iso2", "iso20", "fragments", "sessions")


def load_vectors():
    cases = []
    for name in VECTOR_FILES:
        path = SHARED_DIR / "vectors" / f"{name}.jsonl"
        if not path.exists():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            record = json.loads(line)
            if not record.get("grammar"):  # SDP payloads of sessions.jsonl are not EXI
                continue
            label = f"{name}:{number}:{record.get('message') or record.get('root')}"
            cases.append(pytest.param(record, id=label))
    return cases


VECTORS = load_vectors()
pytestmark = pytest.mark.skipif(not VECTORS, reason=f"no vectors in {SHARED_DIR} (shared folder absent)")


def infoset(xml: str):
    """Element tree as nested tuples: expanded names, attributes, stripped text, in order."""
    def walk(element):
        return (element.tag, tuple(sorted(element.attrib.items())), (element.text or "").strip(),
                tuple(walk(child) for child in element))
    return walk(ElementTree.fromstring(xml.encode("utf-8")))


def exi_of(record) -> bytes:
    return bytes.fromhex(record.get("exi_hex") or record["payload_hex"])


@pytest.mark.parametrize("record", VECTORS)
def test_vector_decodes_to_its_xml_and_back(record):
    fragment = record.get("fragment", False)
    data = exi_of(record)
    message = openv2gx.decode(data, record["grammar"], fragment=fragment)
    assert message.warnings == []
    assert infoset(message.to_xml()) == infoset(record["xml"])
    assert openv2gx.encode(message, record["grammar"], fragment=fragment) == data
    from_xml = openv2gx.from_xml(record["xml"], record["grammar"], fragment=fragment)
    assert from_xml == message
    assert openv2gx.encode(from_xml, record["grammar"], fragment=fragment) == data


def test_every_vector_file_was_read():
    grammars = {record.values[0]["grammar"] for record in VECTORS}
    assert grammars >= {"appHandshake", "din", "iso2", "iso20_CommonMessages", "iso20_AC", "iso20_DC",
                        "iso20_WPT", "iso20_ACDP", "xmldsig"}
    assert len(VECTORS) >= 1100
