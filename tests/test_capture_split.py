"""`listen --split-sessions`: one pcapng per charging session, named by start time and charger MAC."""

from __future__ import annotations

import pytest

from ccssniff.capture.reader import read_packets
from ccssniff.capture.split import SESSION_GAP, SessionFiles
from ccssniff.homeplug import BROADCAST, CmSlacParamCnf, CmSlacParamReq, MacAddress

EV = MacAddress("02:00:00:00:0e:01")
CHARGERS = [MacAddress("02:00:00:00:cc:01"), MacAddress("02:00:00:00:cc:02")]
START = 1_767_225_600  # 2026-01-01T00:00:00Z
IDLE = bytes(BROADCAST) + bytes(EV) + b"\x86\xdd" + bytes(46)


def session(files: SessionFiles, at: float, charger: MacAddress) -> None:
    """A plug-in: PARAM.REQ, the charger's PARAM.CNF, then a few other frames."""
    frames = [CmSlacParamReq(dst=BROADCAST, src=EV, run_id=bytes(8)).build_frame(pad=True),
              CmSlacParamCnf(dst=EV, src=charger, run_id=bytes(8)).build_frame(pad=True), IDLE, IDLE]
    for offset, frame in enumerate(frames):
        files.write(frame, timestamp_ns=int((at + offset * 0.1) * 1e9))


def test_each_plug_in_gets_its_own_file_named_after_time_and_charger(tmp_path):
    files = SessionFiles(tmp_path, 1, "eth0")
    files.write(IDLE, timestamp_ns=START * 10**9)  # before the first session: same file
    session(files, START + 1, CHARGERS[0])
    session(files, START + 5, CHARGERS[0])  # a SLAC retry within the gap: the same session
    session(files, START + 5 + SESSION_GAP + 1, CHARGERS[1])
    files.write(IDLE, timestamp_ns=(START + 100) * 10**9)  # idle after it: stays in its file
    files.close()
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == ["20260101T000000Z-02-00-00-00-cc-01.pcapng", "20260101T000026Z-02-00-00-00-cc-02.pcapng"]
    assert [len(list(read_packets(tmp_path / name))) for name in names] == [9, 5]


def test_the_ring_keeps_the_newest_files(tmp_path):
    files = SessionFiles(tmp_path, 1, "eth0", ring=2)
    for number in range(4):
        session(files, START + number * (SESSION_GAP + 10), CHARGERS[number % 2])
    files.close()
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "20260101T000100Z-02-00-00-00-cc-01.pcapng", "20260101T000130Z-02-00-00-00-cc-02.pcapng"]
    assert files.files == sorted(tmp_path.iterdir())
    with pytest.raises(ValueError):
        SessionFiles(tmp_path, 1, "eth0", ring=0)


def test_a_session_without_a_charger_answer_keeps_its_unknown_name(tmp_path):
    files = SessionFiles(tmp_path, 1, "eth0")
    files.write(CmSlacParamReq(dst=BROADCAST, src=EV, run_id=bytes(8)).build_frame(pad=True), START * 10**9)
    files.write(CmSlacParamReq(dst=BROADCAST, src=EV, run_id=bytes(8)).build_frame(pad=True),
                int((START + SESSION_GAP + 1) * 1e9))
    files.close()
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "20260101T000000Z-unknown.pcapng", "20260101T000021Z-unknown.pcapng"]
