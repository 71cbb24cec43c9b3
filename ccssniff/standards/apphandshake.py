"""The SupportedAppProtocol handshake (ISO 15118-2 8.4.2 / DIN 70121): namespaces and codes.

Common to every protocol: the EV lists the protocols it speaks with priorities, the EVSE answers
with the SchemaID of the one it picked. The sequence tables of din, iso2 and iso20 start with
this exchange ("supportedAppProtocol").
"""

from __future__ import annotations

import enum

from . import din, iso2, iso20

NAMESPACE = "urn:iso:15118:2:2010:AppProtocol"
SCHEMA = "appHandshake"
MAX_APP_PROTOCOLS = 20  # AppProtocol maxOccurs in V2G_CI_AppProtocol.xsd
MAX_PRIORITY = 20  # Priority is 1 (highest) .. 20


class ResponseCode(str, enum.Enum):
    OK_SuccessfulNegotiation = "OK_SuccessfulNegotiation"
    OK_SuccessfulNegotiationWithMinorDeviation = "OK_SuccessfulNegotiationWithMinorDeviation"
    Failed_NoNegotiation = "Failed_NoNegotiation"


SCHEMA_TYPES = {ResponseCode: "responseCodeType"}

# protocol namespace offered in the handshake -> (protocol name, version the emulators offer)
PROTOCOL_BY_NAMESPACE = {
    din.NAMESPACE: ("din", din.VERSION),
    iso2.NAMESPACE: ("iso2", iso2.VERSION),
    iso20.NAMESPACE_DC: ("iso20", iso20.VERSION),
    iso20.NAMESPACE_AC: ("iso20", iso20.VERSION),
    iso20.NAMESPACE_WPT: ("iso20", iso20.VERSION),
    iso20.NAMESPACE_ACDP: ("iso20", iso20.VERSION),
}
