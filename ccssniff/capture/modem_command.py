"""``ccssniff modem``: talk to the HomePlug modems behind an interface (Qualcomm VS_* and CM_SET_KEY)."""

from __future__ import annotations

import json
import select
import time
from typing import Any, Callable

import click

from ccssniff.ui.errors import UsageFailure

ANSWER_WAIT = 1.0  # s: modems answer within milliseconds; remote ones cross the powerline first


def exchange(link: Any, requests: list[bytes], accept: Callable[[Any], bool], wait: float = ANSWER_WAIT,
             first_only: bool = False) -> list[Any]:
    """Send ``requests`` and collect the parsed answers ``accept`` takes, for ``wait`` seconds."""
    from ccssniff.homeplug import MmeError, parse_frame

    for frame in requests:
        link.send(frame)
    answers: list[Any] = []
    end = time.monotonic() + wait
    while (left := end - time.monotonic()) > 0:
        select.select([link], [], [], left)
        for _stamp, frame in link.read():
            if frame[12:14] != b"\x88\xe1" or frame[0:6] != link.mac:
                continue
            try:
                message = parse_frame(frame)
            except (MmeError, ValueError):
                continue
            if accept(message):
                answers.append(message)
                if first_only:
                    return answers
    return answers


def _open(interface: str):
    from ccssniff.capture.live import LinkError, LiveLink

    try:
        return LiveLink(interface, bpf="ether proto 0x88e1")
    except LinkError as exc:
        raise UsageFailure(str(exc)) from None


def _target(modem: str | None):
    from ccssniff.capture.join import LOCAL_MODEM
    from ccssniff.homeplug import parse_mac

    if modem is None:
        return LOCAL_MODEM
    try:
        return parse_mac(modem)
    except ValueError:
        raise UsageFailure(f"--modem: {modem!r} is not a MAC address") from None


def _emit(as_json: bool, record: dict[str, Any], text: str) -> None:
    click.echo(json.dumps(record) if as_json else text)


def _no_answer(what: str, interface: str) -> None:
    raise click.ClickException(f"no modem answered {what} on {interface} within {ANSWER_WAIT:.0f} s")


def _common(function):
    function = click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")(function)
    function = click.option("--modem", metavar="MAC",
                            help="The modem's MAC (default: the local one, 00:b0:52:00:00:01).")(function)
    return click.argument("interface")(function)


@click.group()
def modem() -> None:
    """The HomePlug modems on an interface: list, network info, keys, reset, QCA sniffer mode.

    \b
    Examples:
      ccssniff modem list eth0                       every modem answering VS_SW_VER
      ccssniff modem info eth0 --json                networks, members, PHY rates
      ccssniff modem set-key eth0 --passphrase HomePlugAV
      ccssniff modem sniffer eth0 on
    """


@modem.command(name="list")
@click.argument("interface")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
def list_modems(interface: str, as_json: bool) -> None:
    """Every modem that answers VS_SW_VER: the local one, then the members of its network."""
    from ccssniff.capture.join import LOCAL_MODEM
    from ccssniff.homeplug.vendor import vendor_of
    from ccssniff.homeplug import BROADCAST, VsSwVerCnf, VsSwVerReq

    with _open(interface) as link:
        is_version = lambda m: isinstance(m, VsSwVerCnf)  # noqa: E731
        local = exchange(link, [VsSwVerReq(dst=LOCAL_MODEM, src=link.mac).build_frame(pad=True)], is_version,
                         first_only=True)
        others = exchange(link, [VsSwVerReq(dst=BROADCAST, src=link.mac).build_frame(pad=True)], is_version)
    modems: dict[str, dict[str, Any]] = {}
    for answer, is_local in [(a, True) for a in local] + [(a, False) for a in others]:
        modems.setdefault(str(answer.src), {
            "mac": str(answer.src), "local": is_local, "firmware": answer.version_text,
            "device": answer.key_fields().get("device_id"), "vendor": vendor_of(answer.src)})
    if not modems:
        _no_answer("VS_SW_VER", interface)
    listed = list(modems.values())
    _emit(as_json, {"interface": interface, "modems": listed},
          "\n".join(f"{m['mac']}  {'local ' if m['local'] else 'remote'}  {m['device']}  {m['firmware']}  "
                    f"{m['vendor'] or ''}".rstrip() for m in listed))


@modem.command()
@_common
def info(interface: str, modem: str | None, as_json: bool) -> None:
    """The modem's networks (VS_NW_INFO): NID, its role, the other stations and their PHY rates."""
    from ccssniff.homeplug import VsNwInfoCnf, VsNwInfoReq, format_hex

    target = _target(modem)
    with _open(interface) as link:
        answers = exchange(link, [VsNwInfoReq(dst=target, src=link.mac).build_frame(pad=True)],
                           lambda m: isinstance(m, VsNwInfoCnf), first_only=True)
    if not answers:
        _no_answer("VS_NW_INFO", interface)
    answer = answers[0]
    networks = [{
        "nid": format_hex(n.nid), "snid": n.snid, "tei": n.tei,
        "role": _role(n.station_role),
        "cco": str(n.cco_address), "cco_tei": n.cco_tei,
        "stations": [{"mac": str(s.address), "tei": s.tei, "host_mac": str(s.bridged_address),
                      "tx_mbits": s.tx_rate, "rx_mbits": s.rx_rate} for s in n.stations],
    } for n in answer.networks]
    lines = [f"modem {answer.src}: {len(networks)} network(s)"]
    for network in networks:
        lines.append(f"  NID {network['nid']}  TEI {network['tei']}  {network['role']}  CCo {network['cco']}")
        lines += [f"    {s['mac']}  TEI {s['tei']}  host {s['host_mac']}  TX {s['tx_mbits']} / RX {s['rx_mbits']} Mbit/s"
                  for s in network["stations"]]
    _emit(as_json, {"interface": interface, "modem": str(answer.src), "networks": networks}, "\n".join(lines))


def _role(value: int) -> str:
    from ccssniff.homeplug.messages import STATION_ROLES

    return STATION_ROLES.get(value, str(value))


@modem.command(name="set-key")
@_common
@click.option("--nmk", metavar="HEX", help="The 16-byte NMK.")
@click.option("--nid", metavar="HEX", help="The 7-byte NID (default: derived from the NMK).")
@click.option("--passphrase", metavar="TEXT", help="A HomePlug network password.")
@click.option("--random", "random_key", is_flag=True, help="A fresh random NMK: a network of its own.")
@click.option("--show-key", is_flag=True, help="Show the NMK in full.")
def set_key(interface: str, modem: str | None, as_json: bool, nmk: str | None, nid: str | None,
            passphrase: str | None, random_key: bool, show_key: bool) -> None:
    """Give the modem a network key (CM_SET_KEY); it restarts and joins that network."""
    import os

    from ccssniff.capture.command import key_options
    from ccssniff.capture.listen import key_text
    from ccssniff.homeplug import CmSetKeyCnf, CmSetKeyReq, format_hex, nid_from_nmk

    if sum(bool(x) for x in (nmk, passphrase, random_key)) != 1:
        raise UsageFailure("give exactly one of --nmk, --passphrase, --random")
    if random_key:
        key = os.urandom(16)
        network = nid_from_nmk(key)
    else:
        key, network, _ = key_options(nmk, nid, passphrase)
    target = _target(modem)
    with _open(interface) as link:
        request = CmSetKeyReq(dst=target, src=link.mac, key_type=0x01, my_nonce=int.from_bytes(os.urandom(4), "big"),
                              pid=0x04, nid=network, new_eks=0x01, new_key=key)
        answers = exchange(link, [request.build_frame(pad=True)], lambda m: isinstance(m, CmSetKeyCnf),
                           first_only=True)
    if not answers:
        _no_answer("CM_SET_KEY", interface)
    result = "success" if answers[0].result == 0 else "failure"
    record = {"interface": interface, "modem": str(answers[0].src), "result": result, "nid": format_hex(network),
              "nmk": key_text(format_hex(key), show_key)}
    _emit(as_json, record, f"modem {answers[0].src}: CM_SET_KEY {result}; NID {record['nid']}, NMK {record['nmk']}; "
                           "it restarts on the new key (some modems report failure and apply it anyway)")


@modem.command()
@_common
def reset(interface: str, modem: str | None, as_json: bool) -> None:
    """Restart the modem (VS_RS_DEV)."""
    from ccssniff.homeplug import VsRsDevCnf, VsRsDevReq

    target = _target(modem)
    with _open(interface) as link:
        answers = exchange(link, [VsRsDevReq(dst=target, src=link.mac).build_frame(pad=True)],
                           lambda m: isinstance(m, VsRsDevCnf), first_only=True)
    if not answers:
        _no_answer("VS_RS_DEV", interface)
    result = "success" if answers[0].status == 0 else "failure"
    _emit(as_json, {"interface": interface, "modem": str(answers[0].src), "result": result},
          f"modem {answers[0].src}: reset {result}")


@modem.command()
@_common
@click.argument("state", type=click.Choice(["on", "off"]))
def sniffer(interface: str, modem: str | None, as_json: bool, state: str) -> None:
    """QCA sniffer mode (VS_SNIFFER): the modem then reports every PHY frame as VS_SNIFFER.IND."""
    from ccssniff.homeplug import VsSnifferCnf, VsSnifferReq

    target = _target(modem)
    with _open(interface) as link:
        answers = exchange(link, [VsSnifferReq(dst=target, src=link.mac, control=int(state == "on"))
                                  .build_frame(pad=True)], lambda m: isinstance(m, VsSnifferCnf), first_only=True)
    if not answers:
        _no_answer("VS_SNIFFER", interface)
    answer = answers[0]
    record = {"interface": interface, "modem": str(answer.src), "result": "success" if answer.status == 0 else "failure",
              "sniffer": "on" if answer.state else "off"}
    _emit(as_json, record, f"modem {answer.src}: sniffer {record['sniffer']} ({record['result']})")
