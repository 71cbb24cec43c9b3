"""What the EXI benchmarks share: where the data is, the typical messages, a best-of-three rate,
and the Java EXIficient codec of the PyPI package iso15118 (the peer both are measured against)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
sys.path.insert(0, str(REPO))

#: the charging-loop messages the targets speak of
TYPICAL = ("CurrentDemandReq", "CurrentDemandRes", "ChargingStatusReq", "ChargingStatusRes",
           "PreChargeReq", "PreChargeRes", "DC_ChargeLoopReq", "DC_ChargeLoopRes")
#: our grammar -> the namespace iso15118's EXICodec.jar takes to pick its grammar
JAVA_NAMESPACE = {
    "appHandshake": "urn:iso:15118:2:2010:AppProtocol",
    "din": "urn:din:70121:2012:MsgDef",
    "iso2": "urn:iso:15118:2:2013:MsgDef",
    "iso20_CommonMessages": "urn:iso:std:iso:15118:-20:CommonMessages",
    "iso20_AC": "urn:iso:std:iso:15118:-20:AC",
    "iso20_DC": "urn:iso:std:iso:15118:-20:DC",
    "iso20_WPT": "urn:iso:std:iso:15118:-20:WPT",
    "iso20_ACDP": "urn:iso:std:iso:15118:-20:ACDP",
}


def best_rate(run_all: Callable[[], None], count: int, seconds: float) -> float:
    """Items per second running ``run_all`` (``count`` items each time) over and over for about
    ``seconds``, best of three."""
    best = 0.0
    for _ in range(3):
        done = 0
        start = time.perf_counter()
        while True:
            run_all()
            done += count
            elapsed = time.perf_counter() - start
            if elapsed >= seconds / 3:
                break
        best = max(best, done / elapsed)
    return best


def java_codec():
    """iso15118's EXIficient codec through py4j, or the reason it cannot run."""
    try:
        from iso15118.shared.exificient_exi_codec import ExificientEXICodec
    except Exception as exc:  # a missing or broken install: say why, keep benchmarking ours
        return None, f"iso15118 cannot be imported ({type(exc).__name__}: {exc}); " \
                     "pip install iso15118==0.31.2 'marshmallow<4' aiofile"
    try:
        return ExificientEXICodec(), ""
    except Exception as exc:
        return None, f"the Java codec does not start ({type(exc).__name__}: {exc}); needs a JRE (default-jre-headless)"
