"""ISO 15118-2:2014 (AC and DC, EIM and PnC): message sequence, timers and enumerations.

Timers: ISO 15118-2 Table 109 (V2G_EVCC_Msg_Timeout, V2G_SECC_Msg_Performance_Time) and
Table 110 (sequence and loop timers). Enumerations: the schema's MsgDataTypes.
"""

from __future__ import annotations

import enum

from .sequence import ENDED, SequenceTable, VariantRule

PROTOCOL = "iso2"
NAMESPACE = "urn:iso:15118:2:2013:MsgDef"
VERSION = (2, 0)
SCHEMA = "iso2"

# States are named after what has happened (see din.py for the conventions). AC and DC share
# the table: the first request after ChargeParameterDiscovery picks the path.
TRANSITIONS = {
    "Connected": {"supportedAppProtocol": "AppProtocolAgreed"},
    "AppProtocolAgreed": {"SessionSetup": "SessionStarted"},
    "SessionStarted": {"ServiceDiscovery": "ServicesDiscovered"},
    "ServicesDiscovered": {
        "ServiceDetail": "ServicesDiscovered",
        "PaymentServiceSelection": "PaymentSelected",
    },
    "PaymentSelected": {
        "Authorization": "Authorized",  # EIM
        "PaymentDetails": "PaymentDetailsSent",  # PnC
        "CertificateInstallation": "CertificateReady",
        "CertificateUpdate": "CertificateReady",
    },
    "CertificateReady": {"PaymentDetails": "PaymentDetailsSent"},
    "PaymentDetailsSent": {"Authorization": "Authorized"},
    "Authorized": {"ChargeParameterDiscovery": "ChargeParametersDiscovered"},
    "ChargeParametersDiscovered": {
        "CableCheck": "CableChecked",  # DC
        "PowerDelivery.Start": "ACCharging",  # AC
    },
    # DC
    "CableChecked": {"CableCheck": "CableChecked", "PreCharge": "PreCharging"},
    "PreCharging": {"PreCharge": "PreCharging", "PowerDelivery.Start": "DCCharging"},
    "DCCharging": {
        "CurrentDemand": "DCCharging",
        "MeteringReceipt": "DCCharging",
        "PowerDelivery.Stop": "DCPowerStopped",
        "PowerDelivery.Renegotiate": "DCRenegotiating",
    },
    "DCRenegotiating": {"ChargeParameterDiscovery": "DCRenegotiated"},
    "DCRenegotiated": {"PowerDelivery.Start": "DCCharging"},
    "DCPowerStopped": {"WeldingDetection": "WeldingDetecting", "SessionStop": ENDED},
    "WeldingDetecting": {"WeldingDetection": "WeldingDetecting", "SessionStop": ENDED},
    # AC
    "ACCharging": {
        "ChargingStatus": "ACCharging",
        "MeteringReceipt": "ACCharging",
        "PowerDelivery.Stop": "ACPowerStopped",
        "PowerDelivery.Renegotiate": "ACRenegotiating",
    },
    "ACRenegotiating": {"ChargeParameterDiscovery": "ACRenegotiated"},
    "ACRenegotiated": {"PowerDelivery.Start": "ACCharging"},
    "ACPowerStopped": {"SessionStop": ENDED},
}

VARIANTS = {"PowerDelivery": VariantRule("ChargeProgress")}

MSG_TIMEOUTS = {  # V2G_EVCC_Msg_Timeout (s)
    "supportedAppProtocol": 2.0,
    "SessionSetup": 2.0,
    "ServiceDiscovery": 2.0,
    "ServiceDetail": 5.0,
    "PaymentServiceSelection": 2.0,
    "CertificateInstallation": 5.0,
    "CertificateUpdate": 5.0,
    "PaymentDetails": 5.0,
    "Authorization": 2.0,
    "ChargeParameterDiscovery": 2.0,
    "ChargingStatus": 2.0,
    "MeteringReceipt": 2.0,
    "PowerDelivery": 5.0,
    "CableCheck": 2.0,
    "PreCharge": 2.0,
    "CurrentDemand": 0.25,
    "WeldingDetection": 2.0,
    "SessionStop": 2.0,
}

PERFORMANCE_TIMES = {  # V2G_SECC_Msg_Performance_Time (s)
    name: (0.025 if name == "CurrentDemand" else timeout - 0.5)
    for name, timeout in MSG_TIMEOUTS.items()
}

V2G_SECC_SEQUENCE_TIMEOUT = 60.0
V2G_EVCC_SEQUENCE_PERFORMANCE_TIME = 40.0
V2G_EVCC_ONGOING_TIMEOUT = 60.0
V2G_EVCC_CABLE_CHECK_TIMEOUT = 40.0
V2G_EVCC_PRE_CHARGE_TIMEOUT = 7.0
V2G_EVCC_COMMUNICATION_SETUP_TIMEOUT = 20.0
V2G_SECC_COMMUNICATION_SETUP_PERFORMANCE_TIME = 18.0

SEQUENCE = SequenceTable(
    protocol=PROTOCOL,
    initial="Connected",
    transitions=TRANSITIONS,
    variants=VARIANTS,
    msg_timeouts=MSG_TIMEOUTS,
    performance_times=PERFORMANCE_TIMES,
    sequence_timeout=V2G_SECC_SEQUENCE_TIMEOUT,
    loop_timeouts={
        "Authorization": V2G_EVCC_ONGOING_TIMEOUT,
        "ChargeParameterDiscovery": V2G_EVCC_ONGOING_TIMEOUT,
        "CableCheck": V2G_EVCC_CABLE_CHECK_TIMEOUT,
        "PreCharge": V2G_EVCC_PRE_CHARGE_TIMEOUT,
    },
    communication_setup_timeout=V2G_EVCC_COMMUNICATION_SETUP_TIMEOUT,
)


class ResponseCode(str, enum.Enum):
    OK = "OK"
    OK_NewSessionEstablished = "OK_NewSessionEstablished"
    OK_OldSessionJoined = "OK_OldSessionJoined"
    OK_CertificateExpiresSoon = "OK_CertificateExpiresSoon"
    FAILED = "FAILED"
    FAILED_SequenceError = "FAILED_SequenceError"
    FAILED_ServiceIDInvalid = "FAILED_ServiceIDInvalid"
    FAILED_UnknownSession = "FAILED_UnknownSession"
    FAILED_ServiceSelectionInvalid = "FAILED_ServiceSelectionInvalid"
    FAILED_PaymentSelectionInvalid = "FAILED_PaymentSelectionInvalid"
    FAILED_CertificateExpired = "FAILED_CertificateExpired"
    FAILED_SignatureError = "FAILED_SignatureError"
    FAILED_NoCertificateAvailable = "FAILED_NoCertificateAvailable"
    FAILED_CertChainError = "FAILED_CertChainError"
    FAILED_ChallengeInvalid = "FAILED_ChallengeInvalid"
    FAILED_ContractCanceled = "FAILED_ContractCanceled"
    FAILED_WrongChargeParameter = "FAILED_WrongChargeParameter"
    FAILED_PowerDeliveryNotApplied = "FAILED_PowerDeliveryNotApplied"
    FAILED_TariffSelectionInvalid = "FAILED_TariffSelectionInvalid"
    FAILED_ChargingProfileInvalid = "FAILED_ChargingProfileInvalid"
    FAILED_MeteringSignatureNotValid = "FAILED_MeteringSignatureNotValid"
    FAILED_NoChargeServiceSelected = "FAILED_NoChargeServiceSelected"
    FAILED_WrongEnergyTransferMode = "FAILED_WrongEnergyTransferMode"
    FAILED_ContactorError = "FAILED_ContactorError"
    FAILED_CertificateNotAllowedAtThisEVSE = "FAILED_CertificateNotAllowedAtThisEVSE"
    FAILED_CertificateRevoked = "FAILED_CertificateRevoked"


class EVSEProcessing(str, enum.Enum):
    Finished = "Finished"
    Ongoing = "Ongoing"
    Ongoing_WaitingForCustomerInteraction = "Ongoing_WaitingForCustomerInteraction"


class EVSENotification(str, enum.Enum):
    None_ = "None"
    StopCharging = "StopCharging"
    ReNegotiation = "ReNegotiation"


class ChargeProgress(str, enum.Enum):
    Start = "Start"
    Stop = "Stop"
    Renegotiate = "Renegotiate"


class ChargingSession(str, enum.Enum):
    Terminate = "Terminate"
    Pause = "Pause"


class EnergyTransferMode(str, enum.Enum):
    AC_single_phase_core = "AC_single_phase_core"
    AC_three_phase_core = "AC_three_phase_core"
    DC_core = "DC_core"
    DC_extended = "DC_extended"
    DC_combo_core = "DC_combo_core"
    DC_unique = "DC_unique"


class PaymentOption(str, enum.Enum):
    Contract = "Contract"
    ExternalPayment = "ExternalPayment"


class DC_EVSEStatusCode(str, enum.Enum):
    EVSE_NotReady = "EVSE_NotReady"
    EVSE_Ready = "EVSE_Ready"
    EVSE_Shutdown = "EVSE_Shutdown"
    EVSE_UtilityInterruptEvent = "EVSE_UtilityInterruptEvent"
    EVSE_IsolationMonitoringActive = "EVSE_IsolationMonitoringActive"
    EVSE_EmergencyShutdown = "EVSE_EmergencyShutdown"
    EVSE_Malfunction = "EVSE_Malfunction"
    Reserved_8 = "Reserved_8"
    Reserved_9 = "Reserved_9"
    Reserved_A = "Reserved_A"
    Reserved_B = "Reserved_B"
    Reserved_C = "Reserved_C"


class IsolationLevel(str, enum.Enum):
    Invalid = "Invalid"
    Valid = "Valid"
    Warning = "Warning"
    Fault = "Fault"
    No_IMD = "No_IMD"


class DC_EVErrorCode(str, enum.Enum):
    NO_ERROR = "NO_ERROR"
    FAILED_RESSTemperatureInhibit = "FAILED_RESSTemperatureInhibit"
    FAILED_EVShiftPosition = "FAILED_EVShiftPosition"
    FAILED_ChargerConnectorLockFault = "FAILED_ChargerConnectorLockFault"
    FAILED_EVRESSMalfunction = "FAILED_EVRESSMalfunction"
    FAILED_ChargingCurrentdifferential = "FAILED_ChargingCurrentdifferential"
    FAILED_ChargingVoltageOutOfRange = "FAILED_ChargingVoltageOutOfRange"
    Reserved_A = "Reserved_A"
    Reserved_B = "Reserved_B"
    Reserved_C = "Reserved_C"
    FAILED_ChargingSystemIncompatibility = "FAILED_ChargingSystemIncompatibility"
    NoData = "NoData"


class UnitSymbol(str, enum.Enum):
    h = "h"
    m = "m"
    s = "s"
    A = "A"
    V = "V"
    W = "W"
    Wh = "Wh"


SCHEMA_TYPES = {
    ResponseCode: "responseCodeType",
    EVSEProcessing: "EVSEProcessingType",
    EVSENotification: "EVSENotificationType",
    ChargeProgress: "chargeProgressType",
    ChargingSession: "chargingSessionType",
    EnergyTransferMode: "EnergyTransferModeType",
    PaymentOption: "paymentOptionType",
    DC_EVSEStatusCode: "DC_EVSEStatusCodeType",
    IsolationLevel: "isolationLevelType",
    DC_EVErrorCode: "DC_EVErrorCodeType",
    UnitSymbol: "unitSymbolType",
}
