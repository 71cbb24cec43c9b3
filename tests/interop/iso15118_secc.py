"""iso15118's SECC with a minimal DC power stage behind it (run as a script in the SECC's folder).

The package's own ``iso15118.secc.main`` plugs in ``SimEVSEController``, which is no power stage:
it reports an EVSEPresentVoltage of 1 V whatever the EV asks for, and never switches off. A PEV
that waits in PreCharge until the EVSE voltage matches its battery (DIN 70121 and ISO 15118
require that before closing its contactors) never gets there, and one that waits in
WeldingDetection for the output to fall never leaves. ``send_charging_command`` and
``stop_charger`` are where the package hands the EV's targets and the stop to the hardware, so
this controller has its output follow them, as a real power stage (with its discharge circuit)
would within a loop or two; every message the SECC sends is still built, encoded and sequenced
by iso15118 itself.
"""
from __future__ import annotations

import asyncio
from typing import Optional

from iso15118.secc import SECCHandler
from iso15118.secc.controller.interface import ServiceStatus
from iso15118.secc.controller.simulator import SimEVSEController
from iso15118.secc.secc_settings import Config
from iso15118.shared.exificient_exi_codec import ExificientEXICodec

# The inrush limit the package itself enforces during PreCharge (IEC 61851-23 CC.5.2).
PRECHARGE_CURRENT_LIMIT = 2


class PowerStageController(SimEVSEController):
    async def send_charging_command(self, ev_target_voltage: Optional[float],
                                    ev_target_current: Optional[float], is_precharge: bool = False,
                                    is_session_bpt: bool = False):
        context = self.evse_data_context
        if ev_target_voltage is not None:
            context.present_voltage = int(round(ev_target_voltage))
        if ev_target_current is not None:
            current = min(ev_target_current, PRECHARGE_CURRENT_LIMIT) if is_precharge else ev_target_current
            context.present_current = int(round(current))

    async def stop_charger(self) -> None:
        self.evse_data_context.present_voltage = 0
        self.evse_data_context.present_current = 0


async def main() -> None:
    config = Config()
    config.load_envs()
    controller = PowerStageController()
    await controller.set_status(ServiceStatus.STARTING)
    await SECCHandler(exi_codec=ExificientEXICodec(), evse_controller=controller, config=config).start(config.iface)


if __name__ == "__main__":
    asyncio.run(main())
