"""How a session (SLAC run, SDP exchange, V2G connection) ended, and why: one shape for all.

An :class:`Outcome` is ``completed``, ``failed`` or ``incomplete`` with the first cause in plain
words and the frame it was seen in. :class:`Verdicts` keeps the violations of a session, bounded,
and groups every verdict that follows the first cause under it, so that one failure reported
300 times by the sequence check reads as one cause with 299 follow-ons.
"""
from __future__ import annotations

from typing import Any

COMPLETED = "completed"
FAILED = "failed"
INCOMPLETE = "incomplete"

# Verdicts kept per session; the rest are only counted (a broken trace may hold millions).
MAX_VERDICTS = 200


class Outcome:
    __slots__ = ("result", "cause", "frame")

    def __init__(self, result: str, cause: str | None = None, frame: int | None = None) -> None:
        self.result = result
        self.cause = cause
        self.frame = frame

    def to_dict(self) -> dict[str, Any]:
        return {"result": self.result, "cause": self.cause, "frame": self.frame}

    def __repr__(self) -> str:
        return f"Outcome({self.result!r}, {self.cause!r}, frame={self.frame})"


class Verdict:
    __slots__ = ("kind", "name", "frame", "time", "text", "caused_by")

    def __init__(self, kind: str, name: str, frame: int, time: float, text: str) -> None:
        self.kind = kind  # "sequence", "timing", "schema", "session_id", "response_code", "error"
        self.name = name
        self.frame = frame
        self.time = time
        self.text = text
        self.caused_by: int | None = None  # frame of the first cause this verdict follows from

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "frame": self.frame, "text": self.text,
                "caused_by": self.caused_by}


class Verdicts:
    """The violations of one session, in order, at most MAX_VERDICTS of them kept."""

    __slots__ = ("kept", "counts", "total")

    def __init__(self) -> None:
        self.kept: list[Verdict] = []
        self.counts: dict[str, int] = {}
        self.total = 0

    def add(self, verdict: Verdict) -> None:
        self.total += 1
        self.counts[verdict.kind] = self.counts.get(verdict.kind, 0) + 1
        if len(self.kept) < MAX_VERDICTS:
            self.kept.append(verdict)

    def count(self, kind: str) -> int:
        return self.counts.get(kind, 0)

    def first(self, *kinds: str) -> Verdict | None:
        for verdict in self.kept:
            if verdict.kind in kinds:
                return verdict
        return None

    def group_under(self, cause_frame: int | None, cause: Verdict | None = None) -> int:
        """Mark every verdict from the cause's frame on (but the cause) as its follow-on;
        returns how many follow, counting those no longer kept."""
        if cause_frame is None:
            return 0
        follow = 0
        for verdict in self.kept:
            if verdict is not cause and verdict.frame >= cause_frame:
                verdict.caused_by = cause_frame
                follow += 1
        return follow + (self.total - len(self.kept))

    def to_list(self) -> list[dict[str, Any]]:
        return [verdict.to_dict() for verdict in self.kept]
