"""The committed grammar tables are exactly what the generator makes from the official XSDs."""

from __future__ import annotations

import pytest

from conftest import SHARED_DIR
from openv2gx import generate
from openv2gx.tables import GRAMMAR_DIR


@pytest.mark.skipif(not (SHARED_DIR / "schemas").is_dir(), reason="../shared/schemas is absent")
def test_regenerated_tables_equal_the_committed_ones(tmp_path):
    pytest.importorskip("xmlschema")
    written = generate.write_tables(SHARED_DIR / "schemas", tmp_path)
    assert {p.name for p in written} == {p.name for p in GRAMMAR_DIR.glob("*.json")}
    for path in written:
        assert path.read_bytes() == (GRAMMAR_DIR / path.name).read_bytes(), path.name


def test_tables_document_roots_are_sorted_by_local_name_then_uri():
    import json
    for path in GRAMMAR_DIR.glob("*.json"):
        table = json.loads(path.read_text())
        names = [tuple(reversed(table["qnames"][q])) for q, _ in table["document"]]
        assert names == sorted(names), path.name
