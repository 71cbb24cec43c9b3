"""The command's PATH arguments as a list of capture files: files, folders (recursively), globs, URLs.

A file named on the command line is always taken (if it is no capture, that becomes an error row).
Inside folders only captures are taken: a capture file extension or capture magic bytes, so that
READMEs and logs beside the traces are passed over.
"""
from __future__ import annotations

import glob
import os
from typing import Iterable

from ccssniff.batch.work import is_url

CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".dump", ".pcap.gz", ".pcapng.gz", ".cap.gz", ".dump.gz", ".gz")
_CAPTURE_MAGIC = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d",
                  b"\x0a\x0d\x0d\x0a")
_GZIP_MAGIC = b"\x1f\x8b"
_GLOB_CHARACTERS = frozenset("*?[")


class NoInput(ValueError):
    """A PATH argument names nothing that exists."""


def expand(paths: Iterable[str]) -> list[str]:
    """Every capture the arguments name, each once, in a stable order."""
    found: dict[str, None] = {}
    for path in paths:
        members = _expand_url(path) if is_url(path) else _expand_local(path)
        if not members:
            raise NoInput(f"{path}: no such file, folder or matching capture")
        found.update(dict.fromkeys(members))
    return list(found)


def _expand_local(path: str) -> list[str]:
    if _GLOB_CHARACTERS & set(path):
        matches = sorted(glob.glob(path, recursive=True))
        return [member for match in matches
                for member in (_walk(match) if os.path.isdir(match) else [match])]
    if os.path.isdir(path):
        return _walk(path)
    return [path] if os.path.exists(path) else []


def _walk(folder: str) -> list[str]:
    members = []
    for root, folders, files in os.walk(folder):
        folders.sort()
        members.extend(os.path.join(root, name) for name in sorted(files)
                       if _looks_like_capture(os.path.join(root, name)))
    return members


def _looks_like_capture(path: str) -> bool:
    if path.lower().endswith(CAPTURE_SUFFIXES):
        return True
    try:
        with open(path, "rb") as stream:
            head = stream.read(4)
        return head in _CAPTURE_MAGIC or head[:2] == _GZIP_MAGIC
    except OSError:
        return False


def _expand_url(url: str) -> list[str]:
    import fsspec

    filesystem, root = fsspec.core.url_to_fs(url)
    protocol = url.split("://", 1)[0]
    if _GLOB_CHARACTERS & set(root):
        names = filesystem.glob(root)
    elif filesystem.isdir(root):
        names = [name for name in filesystem.find(root) if name.lower().endswith(CAPTURE_SUFFIXES)]
    else:
        names = [root] if filesystem.exists(root) else []
    return [f"{protocol}://{name}" if not name.startswith(f"{protocol}://") else name for name in sorted(names)]
