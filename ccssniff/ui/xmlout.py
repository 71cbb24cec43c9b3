"""XML output: each V2G message as the XML document it was; everything else as an XML comment."""
from __future__ import annotations

from typing import TextIO

from ccssniff.decode import events as ev
from ccssniff.decode.events import Event
from ccssniff.ui.timeline import describe


def _comment(text: str) -> str:
    return "<!-- " + text.replace("--", "- -") + " -->\n"


class XmlWriter:
    def __init__(self, stream: TextIO, with_payload: bool = False, show_key: bool = False) -> None:
        self._write = stream.write
        self._with_payload = with_payload
        self._show_key = show_key

    def event(self, event: Event, start: float) -> None:
        heading = f"{event.time - start:.6f} frame {event.frame} {event.direction or ''} {event.name}"
        if event.kind == ev.V2G and event.message is not None:
            self._write(_comment(heading))
            if self._with_payload and event.payload is not None:
                self._write(_comment(f"payload {event.payload.hex()}"))
            for violation in event.fields.get("schema_violations", ()):
                self._write(_comment(f"schema violation: {violation}"))
            self._write(event.message.to_xml().strip() + "\n")
        else:
            self._write(_comment(f"{heading}: {describe(event, self._show_key)}"))
