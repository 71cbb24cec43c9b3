"""The powerline simulator as a process: simulated modems (``modem.Modem``) on one wire
(``modem.Powerline``), each bridged to an interface of this network namespace.

    python -m ccssniff.emulate.powerline --port evse=ccsLa --port pev=ccsLb --port sniff=ccsLc:full

Each ``--port NAME=INTERFACE[:VIEW]`` gets a modem (VIEW: ``filtering``, a stock AR7420, the
default; ``full``, a modem that forwards everything of its network; ``sniffer``, every frame of
every network). ``--nmk HEX --keyed NAME ...`` puts those ports' modems into one network from the
start, for sessions without SLAC. Runs until SIGTERM or SIGINT; prints ``ready`` on stdout once the
ports are open.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import sys

from ccssniff.emulate.modem import Modem, Powerline, run_modem_bridge

VIEWS = ("filtering", "full", "sniffer")


def port_spec(text: str) -> tuple[str, str, str]:
    name, separator, rest = text.partition("=")
    interface, _, view = rest.partition(":")
    view = view or "filtering"
    if not separator or not name or not interface or view not in VIEWS:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=INTERFACE[:{'|'.join(VIEWS)}]")
    return name, interface, view


def build(ports: list[tuple[str, str, str]], restart_delay: float, seed: int, nmk: bytes | None = None,
          keyed: frozenset = frozenset()) -> Powerline:
    line = Powerline()
    for index, (name, _interface, view) in enumerate(ports, start=1):
        modem = Modem(f"00:b0:52:00:10:{index:02x}", rng=random.Random(seed + index), restart_delay=restart_delay,
                      view="full" if view == "full" else "filtering", sniffer=view == "sniffer",
                      nmk=nmk if name in keyed else None)
        line.attach(name, modem, attenuation_db=5.0 + index)
    return line


async def serve(ports: list[tuple[str, str, str]], restart_delay: float, seed: int, nmk: bytes | None,
                keyed: frozenset) -> None:
    line = build(ports, restart_delay, seed, nmk, keyed)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stop.set)
    bridge = asyncio.create_task(run_modem_bridge(line, {name: interface for name, interface, _ in ports}, stop,
                                                  tick=0.25))
    await asyncio.sleep(0.05)
    if bridge.done():
        await bridge  # raises why the ports did not open
    print("ready", flush=True)
    await bridge


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ccssniff.emulate.powerline", description=__doc__.splitlines()[0])
    parser.add_argument("--port", action="append", type=port_spec, required=True, metavar="NAME=INTERFACE[:VIEW]")
    parser.add_argument("--restart-delay", type=float, default=0.5,
                        help="Seconds a modem is away after CM_SET_KEY or VS_RS_DEV (a TL-PA4010P: > 5).")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--nmk", type=bytes.fromhex, metavar="HEX",
                        help="A network the modems of --keyed ports belong to from the start (no SLAC).")
    parser.add_argument("--keyed", action="append", default=[], metavar="NAME", help="A port whose modem holds --nmk.")
    arguments = parser.parse_args(argv)
    if arguments.keyed and (arguments.nmk is None or len(arguments.nmk) != 16):
        parser.error("--keyed needs a 16-byte --nmk")
    try:
        asyncio.run(serve(arguments.port, arguments.restart_delay, arguments.seed, arguments.nmk,
                          frozenset(arguments.keyed)))
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
