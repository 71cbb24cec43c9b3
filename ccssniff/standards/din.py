"""DIN SPEC 70121:2014 (DC charging): message sequence, timers and enumerations.

Timers: DIN SPEC 70121 Table 75 (V2G_EVCC_Msg_Timeout, V2G_SECC_Msg_Performance_Time) and
Table 76 (sequence and loop timers). Enumerations: the schema's MsgDataTypes.
"""

from __future__ import annotations

import enum

from .sequence import ENDED, SequenceTable, VariantRule

PROTOCOL = "din"
NAMESPACE = "urn:din:70121:2012:MsgDef"
VERSION = (2, 0)  # VersionNumberMajor, VersionNumberMinor offered in the handshake
SCHEMA = "din"  # openv2gx schema name

# Each state is named after what has happened; a row lists the requests allowed next and the
# state their successful response leads to. A self-loop is a request that may repeat whatever
# the response says; repeats forced by EVSEProcessing=Ongoing need no self-loop (the tracker
# keeps the state until Finished).
TRANSITIONS = {
    "Connected": {"supportedAppProtocol": "AppProtocolAgreed"},
    "AppProtocolAgreed": {"SessionSetup": "SessionStarted"},
    "SessionStarted": {"ServiceDiscovery": "ServicesDiscovered"},
    "ServicesDiscovered": {
        "ServiceDetail": "ServicesDiscovered",
        "ServicePaymentSelection": "PaymentSelected",
    },
    "PaymentSelected": {
        "ContractAuthentication": "Authorized",
        "PaymentDetails": "PaymentDetailsSent",
    },
    "PaymentDetailsSent": {"ContractAuthentication": "Authorized"},
    "Authorized": {"ChargeParameterDiscovery": "ChargeParametersDiscovered"},
    "ChargeParametersDiscovered": {"CableCheck": "CableChecked"},
    # real chargers answer Finished and cars still repeat until the isolation status is Valid
    "CableChecked": {"CableCheck": "CableChecked", "PreCharge": "PreCharging"},
    "PreCharging": {"PreCharge": "PreCharging", "PowerDelivery.Start": "PowerStarted"},
    "PowerStarted": {"CurrentDemand": "Charging", "PowerDelivery.Stop": "PowerStopped"},
    "Charging": {"CurrentDemand": "Charging", "PowerDelivery.Stop": "PowerStopped"},
    "PowerStopped": {"WeldingDetection": "WeldingDetecting", "SessionStop": ENDED},
    "WeldingDetecting": {"WeldingDetection": "WeldingDetecting", "SessionStop": ENDED},
}

# DIN PowerDeliveryReq says start or stop with a boolean
VARIANTS = {"PowerDelivery": VariantRule("ReadyToChargeState", {"true": "Start", "false": "Stop"})}

MSG_TIMEOUTS = {  # V2G_EVCC_Msg_Timeout (s)
    "supportedAppProtocol": 2.0,
    "SessionSetup": 2.0,
    "ServiceDiscovery": 2.0,
    "ServiceDetail": 5.0,
    "ServicePaymentSelection": 2.0,
    "PaymentDetails": 5.0,
    "ContractAuthentication": 2.0,
    "ChargeParameterDiscovery": 2.0,
    "PowerDelivery": 5.0,
    "CableCheck": 2.0,
    "PreCharge": 2.0,
    "CurrentDemand": 0.25,
    "WeldingDetection": 2.0,
    "SessionStop": 2.0,
    "ChargingStatus": 2.0,
    "MeteringReceipt": 2.0,
    "CertificateInstallation": 5.0,
    "CertificateUpdate": 5.0,
}

PERFORMANCE_TIMES = {  # V2G_SECC_Msg_Performance_Time (s)
    name: (0.025 if name == "CurrentDemand" else timeout - 0.5)
    for name, timeout in MSG_TIMEOUTS.items()
}

V2G_SECC_SEQUENCE_TIMEOUT = 60.0
V2G_EVCC_SEQUENCE_PERFORMANCE_TIME = 40.0
V2G_EVCC_ONGOING_TIMEOUT = 60.0
V2G_EVCC_CABLE_CHECK_TIMEOUT = 38.0
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
        "ContractAuthentication": V2G_EVCC_ONGOING_TIMEOUT,
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
    FAILED_EVSEPresentVoltageToLow = "FAILED_EVSEPresentVoltageToLow"
    FAILED_MeteringSignatureNotValid = "FAILED_MeteringSignatureNotValid"
    FAILED_WrongEnergyTransferType = "FAILED_WrongEnergyTransferType"


class EVSEProcessing(str, enum.Enum):
    Finished = "Finished"
    Ongoing = "Ongoing"


class EVSENotification(str, enum.Enum):
    None_ = "None"
    StopCharging = "StopCharging"
    ReNegotiation = "ReNegotiation"


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


class PaymentOption(str, enum.Enum):
    Contract = "Contract"
    ExternalPayment = "ExternalPayment"


class EVSESupportedEnergyTransfer(str, enum.Enum):
    AC_single_phase_core = "AC_single_phase_core"
    AC_three_phase_core = "AC_three_phase_core"
    DC_core = "DC_core"
    DC_extended = "DC_extended"
    DC_combo_core = "DC_combo_core"
    DC_dual = "DC_dual"
    AC_core1p_DC_extended = "AC_core1p_DC_extended"
    AC_single_DC_core = "AC_single_DC_core"
    AC_single_phase_three_phase_core_DC_extended = "AC_single_phase_three_phase_core_DC_extended"
    AC_core3p_DC_extended = "AC_core3p_DC_extended"


class EVRequestedEnergyTransfer(str, enum.Enum):
    AC_single_phase_core = "AC_single_phase_core"
    AC_three_phase_core = "AC_three_phase_core"
    DC_core = "DC_core"
    DC_extended = "DC_extended"
    DC_combo_core = "DC_combo_core"
    DC_unique = "DC_unique"


class UnitSymbol(str, enum.Enum):
    h = "h"
    m = "m"
    s = "s"
    A = "A"
    Ah = "Ah"
    V = "V"
    VA = "VA"
    W = "W"
    W_per_s = "W/s"
    Wh = "Wh"


# the XSD simple type each enumeration mirrors (tests compare them with the schema)
SCHEMA_TYPES = {
    ResponseCode: "responseCodeType",
    EVSEProcessing: "EVSEProcessingType",
    EVSENotification: "EVSENotificationType",
    DC_EVSEStatusCode: "DC_EVSEStatusCodeType",
    IsolationLevel: "isolationLevelType",
    DC_EVErrorCode: "DC_EVErrorCodeType",
    PaymentOption: "paymentOptionType",
    EVSESupportedEnergyTransfer: "EVSESupportedEnergyTransferType",
    EVRequestedEnergyTransfer: "EVRequestedEnergyTransferType",
    UnitSymbol: "unitSymbolType",
}
