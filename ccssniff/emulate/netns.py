"""Linux network namespaces and veth pairs for tests: created on entry, always removed on exit.

    with Namespaces(2) as (ev, evse):
        ev_if, evse_if = veth(ev, evse)          # one cable between them, IPv6 link-local only
        evse.run("ip", "-6", "addr")             # a command inside a namespace
        server = evse.popen(["python3", "-m", "..."])  # stopped when the namespace goes
        with ev.entered():                       # this thread's sockets now open inside `ev`
            sock = open_link(ev_if)
        address = ev.link_local(ev_if)           # 'fe80::...' once the kernel assigned it

Names start with ``ccs`` and a random suffix, or are the caller's own. Deleting a namespace deletes the veth ends in it
and their peers. Every step is bounded in time; needs root and iproute2 (``unavailable_reason``).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import secrets
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Iterator, Sequence

PREFIX = "ccs"
COMMAND_TIMEOUT = 10.0
CLONE_NEWNET = 0x40000000
_NETNS_DIR = "/var/run/netns"
SIOCETHTOOL = 0x8946
ETHTOOL_STXCSUM = 0x17


def unavailable_reason() -> str | None:
    """Why namespaces cannot be made here (a skip reason for tests), or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    return None


def _ip(*args: str, namespace: str | None = None, timeout: float = COMMAND_TIMEOUT) -> str:
    command = ["ip"] + (["-n", namespace] if namespace else []) + list(args)
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise OSError(f"{' '.join(command)}: {done.stderr.strip() or 'failed'}")
    return done.stdout


def _sysctl(namespace: Namespace, key: str, value: str) -> None:
    namespace.run("sysctl", "-q", "-w", f"{key}={value}")


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error))


class Namespace:
    """One network namespace; use ``Namespaces`` to create and remove them."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._processes: list[subprocess.Popen] = []

    def __repr__(self) -> str:
        return f"Namespace({self.name!r})"

    def run(self, *command: str, check: bool = True, timeout: float = COMMAND_TIMEOUT,
            **options) -> subprocess.CompletedProcess:
        """Run a command inside the namespace and wait for it (output captured as text)."""
        options.setdefault("capture_output", True)
        options.setdefault("text", True)
        return subprocess.run(["ip", "netns", "exec", self.name, *command], check=check,
                              timeout=timeout, **options)

    def popen(self, command: Sequence[str], **options) -> subprocess.Popen:
        """Start a command inside the namespace; it is stopped when the namespace is removed."""
        process = subprocess.Popen(["ip", "netns", "exec", self.name, *command], **options)
        self._processes.append(process)
        return process

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """Move the calling thread into the namespace for the block (sockets opened stay there)."""
        with open("/proc/thread-self/ns/net") as home, open(os.path.join(_NETNS_DIR, self.name)) as target:
            _setns(target.fileno())
            try:
                yield
            finally:
                _setns(home.fileno())

    def link_local(self, interface: str, timeout: float = 5.0) -> str:
        """The interface's IPv6 link-local address, waiting until the kernel has assigned it."""
        end = time.monotonic() + timeout
        while True:
            for line in _ip("-6", "-o", "addr", "show", "dev", interface, "scope", "link",
                            namespace=self.name).splitlines():
                fields = line.split()
                if "inet6" in fields and "tentative" not in fields:
                    return fields[fields.index("inet6") + 1].split("/")[0]
            if time.monotonic() > end:
                raise TimeoutError(f"{interface} in {self.name} got no link-local address in {timeout} s")
            time.sleep(0.05)

    def stop_processes(self, grace: float = 3.0) -> None:
        for process in self._processes:
            if process.poll() is None:
                process.terminate()
        for process in self._processes:
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(grace)
        self._processes.clear()


class Namespaces:
    """``with Namespaces(n) as (a, b, ...)``: n fresh namespaces with loopback up, removed at exit.

    ``names``: the namespaces' names instead of random ones (a command that names its own)."""

    def __init__(self, count: int, names: Sequence[str] | None = None) -> None:
        if count < 1:
            raise ValueError("at least one namespace")
        if names is not None and len(names) != count:
            raise ValueError(f"{count} namespaces, {len(names)} names")
        self.count = count
        self.names = list(names) if names is not None else None
        self.namespaces: list[Namespace] = []

    def __enter__(self) -> tuple[Namespace, ...]:
        try:
            for index in range(self.count):
                namespace = Namespace(self.names[index] if self.names else f"{PREFIX}{secrets.token_hex(4)}")
                _ip("netns", "add", namespace.name)
                self.namespaces.append(namespace)
                _ip("link", "set", "lo", "up", namespace=namespace.name)
        except BaseException:
            self.close()
            raise
        return tuple(self.namespaces)

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        for namespace in self.namespaces:
            try:
                namespace.stop_processes()
            finally:
                try:
                    _ip("netns", "del", namespace.name)
                except (OSError, subprocess.TimeoutExpired):
                    pass  # already gone; nothing else we can do within the time bound
        self.namespaces.clear()


def disable_checksum_offload(namespace: Namespace, interface: str) -> None:
    """Make the kernel fill in TCP/UDP checksums before a frame leaves ``interface``.

    A veth hands frames on with the checksum still to be done; a bridge that relays them
    through raw sockets (the powerline simulator) would pass on wrong checksums, and the
    receiving stack drops those datagrams.
    """
    value = ctypes.create_string_buffer(struct.pack("II", ETHTOOL_STXCSUM, 0))
    request = struct.pack("16sP", interface.encode(), ctypes.addressof(value))
    request += bytes(40 - len(request))
    with namespace.entered(), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        fcntl.ioctl(sock, SIOCETHTOOL, request)


def veth(a: Namespace, b: Namespace, *, mtu: int | None = None, checksum_offload: bool = True,
         names: tuple[str, str] | None = None) -> tuple[str, str]:
    """A veth pair between namespaces ``a`` and ``b``, both ends up; returns (name in a, name in b).

    IPv6 only, with link-local addresses assigned before it returns (no duplicate address
    detection) and no router solicitations, so the only traffic is the test's own.
    ``checksum_offload=False`` for frames that a raw-socket bridge relays (see
    :func:`disable_checksum_offload`). ``names``: the two ends' names instead of random ones.
    """
    suffix = secrets.token_hex(3)
    name_a, name_b = names or (f"{PREFIX}{suffix}a", f"{PREFIX}{suffix}b")
    _ip("link", "add", name_a, "type", "veth", "peer", "name", name_b, "netns", b.name, namespace=a.name)
    for namespace, name in ((a, name_a), (b, name_b)):
        for key, value in (("accept_dad", "0"), ("router_solicitations", "0"), ("disable_ipv6", "0")):
            _sysctl(namespace, f"net.ipv6.conf.{name}.{key}", value)
        if mtu is not None:
            _ip("link", "set", name, "mtu", str(mtu), namespace=namespace.name)
        if not checksum_offload:
            disable_checksum_offload(namespace, name)
        _ip("link", "set", name, "up", namespace=namespace.name)
    for namespace, name in ((a, name_a), (b, name_b)):
        namespace.link_local(name)  # usable as soon as we return
    return name_a, name_b
