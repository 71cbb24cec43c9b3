"""A short run of the corrupted-trace fuzzer (bench/fuzz_traces.py runs the long one): reordered,
overlapping, split, length-lying, bit-flipped and truncated traces decode without an exception."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import fuzz_traces  # noqa: E402

from ccssniff.decode.trace import decode_trace  # noqa: E402


@pytest.fixture(scope="module")
def sources():
    return fuzz_traces.sources()


@pytest.mark.parametrize("first_seed", range(100_000, 100_400, 100))
def test_corrupted_traces_decode_without_exception(sources, first_seed):
    kinds_seen = set()
    for seed in range(first_seed, first_seed + 100):
        kinds, frames = fuzz_traces.corrupted(sources, seed, 120)
        kinds_seen.update(kinds)
        summary = decode_trace(frames).to_dict()
        assert isinstance(summary, dict)
    assert kinds_seen == set(fuzz_traces.MUTATIONS)
