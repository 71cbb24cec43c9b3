"""ISO 15118-20:2022 (DC and AC, EIM/PnC, scheduled and dynamic control): sequence, timers, enumerations.

Timers: ISO 15118-20 Tables 216-219 (V2G_EVCC_Msg_Timeout per message, sequence and loop
timers). The standard gives no per-message SECC performance time table here, so
``performance_times`` stays empty. WPT and ACDP messages are named for the schema choice but are
not in the sequence table (the emulators and the check cover DC and AC).
"""

from __future__ import annotations

import enum

from .sequence import ENDED, SequenceTable, VariantRule

PROTOCOL = "iso20"
VERSION = (1, 0)

# the handshake offers one namespace per energy service; messages then use several schemas
NAMESPACE_DC = "urn:iso:std:iso:15118:-20:DC"
NAMESPACE_AC = "urn:iso:std:iso:15118:-20:AC"
NAMESPACE_WPT = "urn:iso:std:iso:15118:-20:WPT"
NAMESPACE_ACDP = "urn:iso:std:iso:15118:-20:ACDP"
NAMESPACE_COMMON = "urn:iso:std:iso:15118:-20:CommonMessages"
HANDSHAKE_NAMESPACES = (NAMESPACE_DC, NAMESPACE_AC, NAMESPACE_WPT, NAMESPACE_ACDP)

# openv2gx schema of each message family, and the V2GTP payload type that carries it
SCHEMA_BY_PREFIX = {"DC_": "iso20_DC", "AC_": "iso20_AC", "WPT_": "iso20_WPT", "ACDP_": "iso20_ACDP"}
SCHEMA_COMMON = "iso20_CommonMessages"
PAYLOAD_TYPES = {
    "iso20_CommonMessages": 0x8002,
    "iso20_AC": 0x8003,
    "iso20_DC": 0x8004,
    "iso20_ACDP": 0x8005,
    "iso20_WPT": 0x8006,
}


def schema_for_message(name: str) -> str:
    """'DC_ChargeLoopReq' -> 'iso20_DC'; 'SessionSetupReq' -> 'iso20_CommonMessages'."""
    for prefix, schema in SCHEMA_BY_PREFIX.items():
        if name.startswith(prefix):
            return schema
    return SCHEMA_COMMON


TRANSITIONS = {
    "Connected": {"supportedAppProtocol": "AppProtocolAgreed"},
    "AppProtocolAgreed": {"SessionSetup": "SessionStarted"},
    "SessionStarted": {"AuthorizationSetup": "AuthorizationOffered"},
    "AuthorizationOffered": {
        "Authorization": "Authorized",
        "CertificateInstallation": "AuthorizationOffered",
    },
    "Authorized": {"ServiceDiscovery": "ServicesDiscovered"},
    "ServicesDiscovered": {
        "ServiceDetail": "ServicesDiscovered",
        "ServiceSelection": "ServiceSelected",
    },
    "ServiceSelected": {
        "DC_ChargeParameterDiscovery": "DCParametersDiscovered",
        "AC_ChargeParameterDiscovery": "ACParametersDiscovered",
    },
    # DC
    "DCParametersDiscovered": {"ScheduleExchange": "DCScheduled"},
    "DCScheduled": {"DC_CableCheck": "DCCableChecked"},
    "DCCableChecked": {"DC_CableCheck": "DCCableChecked", "DC_PreCharge": "DCPreCharging"},
    "DCPreCharging": {"DC_PreCharge": "DCPreCharging", "PowerDelivery.Start": "DCCharging"},
    "DCCharging": {
        "DC_ChargeLoop": "DCCharging",
        "MeteringConfirmation": "DCCharging",
        "PowerDelivery.Stop": "DCPowerStopped",
        "PowerDelivery.Standby": "DCStandby",
        "PowerDelivery.ScheduleRenegotiation": "DCRenegotiating",
    },
    "DCStandby": {
        "DC_ChargeLoop": "DCStandby",
        "PowerDelivery.Start": "DCCharging",
        "PowerDelivery.Stop": "DCPowerStopped",
    },
    "DCRenegotiating": {"ScheduleExchange": "DCRescheduled"},
    "DCRescheduled": {"PowerDelivery.Start": "DCCharging"},
    "DCPowerStopped": {"DC_WeldingDetection": "DCWeldingDetecting", "SessionStop": ENDED,
                       "SessionStop.ServiceRenegotiation": "Authorized"},
    "DCWeldingDetecting": {"DC_WeldingDetection": "DCWeldingDetecting", "SessionStop": ENDED,
                           "SessionStop.ServiceRenegotiation": "Authorized"},
    # AC
    "ACParametersDiscovered": {"ScheduleExchange": "ACScheduled"},
    "ACScheduled": {"PowerDelivery.Start": "ACCharging"},
    "ACCharging": {
        "AC_ChargeLoop": "ACCharging",
        "MeteringConfirmation": "ACCharging",
        "PowerDelivery.Stop": "ACPowerStopped",
        "PowerDelivery.Standby": "ACStandby",
        "PowerDelivery.ScheduleRenegotiation": "ACRenegotiating",
    },
    "ACStandby": {
        "AC_ChargeLoop": "ACStandby",
        "PowerDelivery.Start": "ACCharging",
        "PowerDelivery.Stop": "ACPowerStopped",
    },
    "ACRenegotiating": {"ScheduleExchange": "ACRescheduled"},
    "ACRescheduled": {"PowerDelivery.Start": "ACCharging"},
    "ACPowerStopped": {"SessionStop": ENDED, "SessionStop.ServiceRenegotiation": "Authorized"},
}

VARIANTS = {
    "PowerDelivery": VariantRule("ChargeProgress"),
    # only ServiceRenegotiation keeps the session; Pause and Terminate both end it
    "SessionStop": VariantRule("ChargingSession", {"pause": "", "terminate": ""}),
}

MSG_TIMEOUTS = {  # V2G_EVCC_Msg_Timeout (s)
    "supportedAppProtocol": 2.0,
    "SessionSetup": 2.0,
    "AuthorizationSetup": 2.0,
    "Authorization": 2.0,
    "CertificateInstallation": 5.0,
    "ServiceDiscovery": 2.0,
    "ServiceDetail": 5.0,
    "ServiceSelection": 2.0,
    "DC_ChargeParameterDiscovery": 2.0,
    "AC_ChargeParameterDiscovery": 2.0,
    "ScheduleExchange": 2.0,
    "DC_CableCheck": 2.0,
    "DC_PreCharge": 2.0,
    "PowerDelivery": 2.0,
    "DC_ChargeLoop": 0.5,
    "AC_ChargeLoop": 0.5,
    "MeteringConfirmation": 2.0,
    "DC_WeldingDetection": 2.0,
    "SessionStop": 2.0,
    "VehicleCheckIn": 2.0,
    "VehicleCheckOut": 2.0,
}

V2G_SECC_SEQUENCE_TIMEOUT = 60.0
V2G_EVCC_ONGOING_TIMEOUT = 60.0
V2G_EVCC_CABLE_CHECK_TIMEOUT = 40.0
V2G_EVCC_PRE_CHARGE_TIMEOUT = 10.0
V2G_EVCC_COMMUNICATION_SETUP_TIMEOUT = 20.0

SEQUENCE = SequenceTable(
    protocol=PROTOCOL,
    initial="Connected",
    transitions=TRANSITIONS,
    variants=VARIANTS,
    msg_timeouts=MSG_TIMEOUTS,
    sequence_timeout=V2G_SECC_SEQUENCE_TIMEOUT,
    loop_timeouts={
        "Authorization": V2G_EVCC_ONGOING_TIMEOUT,
        "ScheduleExchange": V2G_EVCC_ONGOING_TIMEOUT,
        "DC_CableCheck": V2G_EVCC_CABLE_CHECK_TIMEOUT,
        "DC_PreCharge": V2G_EVCC_PRE_CHARGE_TIMEOUT,
    },
    communication_setup_timeout=V2G_EVCC_COMMUNICATION_SETUP_TIMEOUT,
)


class ResponseCode(str, enum.Enum):
    OK = "OK"
    OK_CertificateExpiresSoon = "OK_CertificateExpiresSoon"
    OK_NewSessionEstablished = "OK_NewSessionEstablished"
    OK_OldSessionJoined = "OK_OldSessionJoined"
    OK_PowerToleranceConfirmed = "OK_PowerToleranceConfirmed"
    WARNING_AuthorizationSelectionInvalid = "WARNING_AuthorizationSelectionInvalid"
    WARNING_CertificateExpired = "WARNING_CertificateExpired"
    WARNING_CertificateNotYetValid = "WARNING_CertificateNotYetValid"
    WARNING_CertificateRevoked = "WARNING_CertificateRevoked"
    WARNING_CertificateValidationError = "WARNING_CertificateValidationError"
    WARNING_ChallengeInvalid = "WARNING_ChallengeInvalid"
    WARNING_EIMAuthorizationFailure = "WARNING_EIMAuthorizationFailure"
    WARNING_eMSPUnknown = "WARNING_eMSPUnknown"
    WARNING_EVPowerProfileViolation = "WARNING_EVPowerProfileViolation"
    WARNING_GeneralPnCAuthorizationError = "WARNING_GeneralPnCAuthorizationError"
    WARNING_NoCertificateAvailable = "WARNING_NoCertificateAvailable"
    WARNING_NoContractMatchingPCIDFound = "WARNING_NoContractMatchingPCIDFound"
    WARNING_PowerToleranceNotConfirmed = "WARNING_PowerToleranceNotConfirmed"
    WARNING_ScheduleRenegotiationFailed = "WARNING_ScheduleRenegotiationFailed"
    WARNING_StandbyNotAllowed = "WARNING_StandbyNotAllowed"
    WARNING_WPT = "WARNING_WPT"
    FAILED = "FAILED"
    FAILED_AssociationError = "FAILED_AssociationError"
    FAILED_ContactorError = "FAILED_ContactorError"
    FAILED_EVPowerProfileInvalid = "FAILED_EVPowerProfileInvalid"
    FAILED_EVPowerProfileViolation = "FAILED_EVPowerProfileViolation"
    FAILED_MeteringSignatureNotValid = "FAILED_MeteringSignatureNotValid"
    FAILED_NoEnergyTransferServiceSelected = "FAILED_NoEnergyTransferServiceSelected"
    FAILED_NoServiceRenegotiationSupported = "FAILED_NoServiceRenegotiationSupported"
    FAILED_PauseNotAllowed = "FAILED_PauseNotAllowed"
    FAILED_PowerDeliveryNotApplied = "FAILED_PowerDeliveryNotApplied"
    FAILED_PowerToleranceNotConfirmed = "FAILED_PowerToleranceNotConfirmed"
    FAILED_ScheduleRenegotiation = "FAILED_ScheduleRenegotiation"
    FAILED_ScheduleSelectionInvalid = "FAILED_ScheduleSelectionInvalid"
    FAILED_SequenceError = "FAILED_SequenceError"
    FAILED_ServiceIDInvalid = "FAILED_ServiceIDInvalid"
    FAILED_ServiceSelectionInvalid = "FAILED_ServiceSelectionInvalid"
    FAILED_SignatureError = "FAILED_SignatureError"
    FAILED_UnknownSession = "FAILED_UnknownSession"
    FAILED_WrongChargeParameter = "FAILED_WrongChargeParameter"


class Processing(str, enum.Enum):
    """EVSEProcessing and EVProcessing values."""

    Finished = "Finished"
    Ongoing = "Ongoing"
    Ongoing_WaitingForCustomerInteraction = "Ongoing_WaitingForCustomerInteraction"


class EVSENotification(str, enum.Enum):
    Pause = "Pause"
    ExitStandby = "ExitStandby"
    Terminate = "Terminate"
    ScheduleRenegotiation = "ScheduleRenegotiation"
    ServiceRenegotiation = "ServiceRenegotiation"
    MeteringConfirmation = "MeteringConfirmation"


class Authorization(str, enum.Enum):
    EIM = "EIM"
    PnC = "PnC"


class ChargeProgress(str, enum.Enum):
    Start = "Start"
    Stop = "Stop"
    Standby = "Standby"
    ScheduleRenegotiation = "ScheduleRenegotiation"


class ChargingSession(str, enum.Enum):
    Pause = "Pause"
    Terminate = "Terminate"
    ServiceRenegotiation = "ServiceRenegotiation"


class PowerToleranceAcceptance(str, enum.Enum):
    PowerToleranceNotConfirmed = "PowerToleranceNotConfirmed"
    PowerToleranceConfirmed = "PowerToleranceConfirmed"


class ServiceID(enum.IntEnum):
    """Energy transfer services of ISO 15118-20 Table 204 (ServiceID in ServiceDiscoveryRes)."""

    AC = 1
    DC = 2
    WPT = 3
    DC_ACDP = 4
    AC_BPT = 5
    DC_BPT = 6
    DC_ACDP_BPT = 7
    Internet = 65
    ParkingStatus = 66


SCHEMA_TYPES = {  # enumeration -> (XSD file in schemas/iso20, simple type)
    ResponseCode: ("V2G_CI_CommonTypes.xsd", "responseCodeType"),
    Processing: ("V2G_CI_CommonTypes.xsd", "processingType"),
    EVSENotification: ("V2G_CI_CommonTypes.xsd", "evseNotificationType"),
    Authorization: ("V2G_CI_CommonMessages.xsd", "authorizationType"),
    ChargeProgress: ("V2G_CI_CommonMessages.xsd", "chargeProgressType"),
    ChargingSession: ("V2G_CI_CommonMessages.xsd", "chargingSessionType"),
    PowerToleranceAcceptance: ("V2G_CI_CommonMessages.xsd", "powerToleranceAcceptanceType"),
}
