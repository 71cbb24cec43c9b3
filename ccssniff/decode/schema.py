"""Which EXI grammar decodes a V2GTP payload, per TCP connection (sans-IO).

The supportedAppProtocol exchange at the start of a connection names the protocol: the EV lists
namespaces with SchemaIDs, the EVSE answers with the SchemaID it chose. DIN and ISO 15118-2 then
use payload type 0x8001 for everything; ISO 15118-20 names its grammar by the payload type. A
trace that starts after the handshake gets the schemas tried in turn, and the assumption reported.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, NamedTuple

from ccssniff.decode.v2gtp import PAYLOAD_TYPES

APP_HANDSHAKE = "appHandshake"

NAMESPACES = {
    "urn:din:70121:2012:MsgDef": "din",
    "urn:iso:15118:2:2013:MsgDef": "iso2",
}
# ISO 15118-20 offers one namespace per energy transfer family (CommonMessages, AC, DC, WPT, ACDP).
ISO20_NAMESPACE_PREFIX = "urn:iso:std:iso:15118:-20:"


def protocol_of_namespace(namespace: str | None) -> str | None:
    if not namespace:
        return None
    if namespace.startswith(ISO20_NAMESPACE_PREFIX):
        return "iso20"
    return NAMESPACES.get(namespace)
PROTOCOL_NAMES = {"din": "DIN SPEC 70121", "iso2": "ISO 15118-2", "iso20": "ISO 15118-20"}
# What --schema accepts: a protocol (grammar of 0x8001 payloads after the handshake) or one grammar.
FORCEABLE = ("din", "iso2", "iso20", APP_HANDSHAKE, "iso20_CommonMessages", "iso20_AC", "iso20_DC",
             "iso20_WPT", "iso20_ACDP")
# Tried in this order when the handshake is not in the trace.
GUESS_ORDER = ("din", "iso2")

# Charge loops repeat the same few byte strings; decoding each once saves most of the EXI work.
# Messages coming out of the cache are shared: consumers must treat them as read-only.
# A decoded message takes about a hundred times its payload in memory, so the cache is bounded by
# payload bytes and keeps only small payloads (the repeating ones are a few dozen bytes).
_CACHE_ENTRIES = 4096
_CACHE_BYTES = 256 * 1024
_CACHE_MAX_PAYLOAD = 4096


class DecodeOutcome(NamedTuple):
    grammar: str | None
    message: Any  # openv2gx.Message, or None
    error: str | None
    note: str | None  # an assumption worth an event of its own


def _load_decoder() -> tuple[Callable[[bytes, str], Any] | None, type[Exception], str | None]:
    try:
        import openv2gx
        decode = openv2gx.decode
        error_type = openv2gx.DecodeError
    except (ImportError, AttributeError) as error:
        return None, Exception, f"EXI decoder openv2gx is not available ({error})"
    return decode, error_type, None


_decode, _DecodeError, _UNAVAILABLE = _load_decoder()


class _PayloadCache:
    """Least recently used decode results, bounded by entries and by payload bytes."""

    __slots__ = ("_entries", "_bytes")

    def __init__(self) -> None:
        self._entries: OrderedDict[tuple[bytes, str], tuple[Any, str | None]] = OrderedDict()
        self._bytes = 0

    def decode(self, payload: bytes, grammar: str) -> tuple[Any, str | None]:
        if len(payload) > _CACHE_MAX_PAYLOAD:
            return _decode_uncached(payload, grammar)
        key = (payload, grammar)
        entries = self._entries
        result = entries.get(key)
        if result is not None:
            entries.move_to_end(key)
            return result
        result = _decode_uncached(payload, grammar)
        entries[key] = result
        self._bytes += len(payload)
        while len(entries) > _CACHE_ENTRIES or self._bytes > _CACHE_BYTES:
            (old_payload, _), _ = entries.popitem(last=False)
            self._bytes -= len(old_payload)
        return result

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0


def _decode_uncached(payload: bytes, grammar: str) -> tuple[Any, str | None]:
    try:
        return _decode(payload, grammar), None
    except _DecodeError as error:
        return None, str(error)
    except (ValueError, IndexError, KeyError, RecursionError) as error:
        # The decoder must not crash on bad bytes; if it does, the message still becomes an error.
        return None, f"{type(error).__name__}: {error}"


def decode_exi(payload: bytes, grammar: str) -> tuple[Any, str | None]:
    """(message, None) or (None, reason)."""
    if _decode is None:
        return None, _UNAVAILABLE
    return _CACHE.decode(bytes(payload), grammar)


_CACHE = _PayloadCache()


def decoder_available() -> bool:
    return _decode is not None


class SchemaSelector:
    """The schema state of one TCP connection."""

    __slots__ = ("forced", "protocol", "offered", "handshake_done", "assumed")

    def __init__(self, forced: str | None = None) -> None:
        self.forced = forced
        self.protocol: str | None = forced if forced in PROTOCOL_NAMES else None
        self.offered: dict[int, str] = {}  # SchemaID -> namespace from supportedAppProtocolReq
        self.handshake_done = False
        self.assumed = False

    def decode(self, payload_type: int, payload: bytes) -> DecodeOutcome:
        if self.forced is not None and self.forced not in PROTOCOL_NAMES:
            return self._outcome(self.forced, payload, None)
        grammar = PAYLOAD_TYPES.get(payload_type, ("", None))[1]
        if grammar is not None:
            note = None
            if self.protocol is None:
                self.protocol = "iso20"
                self.assumed = True
                note = f"no handshake seen: ISO 15118-20 taken from payload type {payload_type:#06x}"
            return self._outcome(grammar, payload, note)
        if payload_type != 0x8001:
            return DecodeOutcome(None, None, f"payload type {payload_type:#06x} carries no EXI we decode", None)
        if not self.handshake_done:
            message, error = decode_exi(payload, APP_HANDSHAKE)
            if message is not None and message.name.startswith("supportedAppProtocol") and not message.warnings:
                self._handshake(message)
                return DecodeOutcome(APP_HANDSHAKE, message, None, None)
            if self.protocol is None:
                return self._guess(payload)
        if self.protocol in ("din", "iso2"):
            outcome = self._outcome(self.protocol, payload, None)
            if outcome.error is not None and self.assumed:
                return self._guess(payload, failed=outcome)
            return outcome
        if self.protocol == "iso20":
            # After an ISO 15118-20 handshake 0x8001 only carries the handshake itself.
            return self._outcome(APP_HANDSHAKE, payload, None)
        return self._guess(payload)

    def could_decode(self, payload_type: int, payload: bytes) -> bool:
        """Whether ``payload`` decodes as a message of this connection, changing no state."""
        if self.forced is not None and self.forced not in PROTOCOL_NAMES:
            grammars: tuple[str, ...] = (self.forced,)
        elif PAYLOAD_TYPES.get(payload_type, ("", None))[1] is not None:
            grammars = (PAYLOAD_TYPES[payload_type][1],)
        elif payload_type != 0x8001:
            return False
        elif self.protocol in ("din", "iso2"):
            grammars = (self.protocol,) if self.handshake_done else (APP_HANDSHAKE, self.protocol)
        elif self.protocol == "iso20":
            grammars = (APP_HANDSHAKE,)
        else:
            grammars = (APP_HANDSHAKE,) + GUESS_ORDER
        for grammar in grammars:
            message, _ = decode_exi(payload, grammar)
            if message is not None and not message.warnings:
                return True
        return False

    def _outcome(self, grammar: str, payload: bytes, note: str | None) -> DecodeOutcome:
        message, error = decode_exi(payload, grammar)
        return DecodeOutcome(grammar, message, error, note)

    def _handshake(self, message: Any) -> None:
        if message.name == "supportedAppProtocolReq":
            protocols = message["supportedAppProtocolReq"].get("AppProtocol", [])
            if isinstance(protocols, dict):
                protocols = [protocols]
            self.offered = {p.get("SchemaID"): p.get("ProtocolNamespace", "") for p in protocols}
            return
        content = message["supportedAppProtocolRes"]
        self.handshake_done = True
        chosen = self.offered.get(content.get("SchemaID"))
        if self.forced is None and protocol_of_namespace(chosen):
            self.protocol = protocol_of_namespace(chosen)
            self.assumed = False

    def chosen_namespace(self, message: Any) -> str | None:
        """The namespace a supportedAppProtocolRes selected (None if not known)."""
        return self.offered.get(message["supportedAppProtocolRes"].get("SchemaID"))

    def _guess(self, payload: bytes, failed: DecodeOutcome | None = None) -> DecodeOutcome:
        candidates = [p for p in GUESS_ORDER if p != self.protocol] if failed else list(GUESS_ORDER)
        first_error = failed.error if failed else None
        for protocol in candidates:
            message, error = decode_exi(payload, protocol)
            if message is not None and not message.warnings:
                previous = self.protocol
                self.protocol = protocol
                self.assumed = True
                note = (f"no handshake seen: assuming {PROTOCOL_NAMES[protocol]}" if previous is None
                        else f"switching assumption from {PROTOCOL_NAMES[previous]} to {PROTOCOL_NAMES[protocol]}")
                return DecodeOutcome(protocol, message, None, note)
            first_error = first_error or error
        return DecodeOutcome(failed.grammar if failed else None, None,
                             first_error or "no schema decodes this payload", None)
