"""Reach into a decoded message: the message element's own content and its header.

DIN and ISO 15118-2 wrap every message in V2G_Message/Body; ISO 15118-20 and the application
handshake use the message as the root element. Everything downstream wants the inner mapping.
"""
from __future__ import annotations

from typing import Any, Mapping

_EMPTY: Mapping[str, Any] = {}


def content_of(message: Any) -> Mapping[str, Any]:
    """The mapping of the message element itself (e.g. the CurrentDemandReq element)."""
    root = message.get(message.root)
    if message.root == "V2G_Message" and isinstance(root, dict):
        body = root.get("Body")
        if isinstance(body, dict):
            inner = body.get(message.name)
            return inner if isinstance(inner, dict) else _EMPTY
        return _EMPTY
    return root if isinstance(root, dict) else _EMPTY


def header_of(message: Any) -> Mapping[str, Any]:
    """The message header (SessionID, for ISO 15118-20 also TimeStamp), or an empty mapping."""
    root = message.get(message.root)
    if not isinstance(root, dict):
        return _EMPTY
    header = root.get("Header")
    return header if isinstance(header, dict) else _EMPTY
