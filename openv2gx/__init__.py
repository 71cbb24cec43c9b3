"""openv2gx: schema-informed EXI codec for V2G messages (appHandshake, DIN 70121, ISO 15118-2, -20).

The grammars are data (openv2gx/grammars/*.json), generated from the official XSDs by
``python -m openv2gx.generate``; this package is the small runtime that reads them.

    >>> import openv2gx
    >>> message = openv2gx.decode(bytes.fromhex("809a00605010400000"), "din")
    >>> message.name
    'CableCheckReq'
    >>> openv2gx.encode(message, "din").hex()
    '809a00605010400000'
"""

from .decoder import decode
from .encoder import encode
from .errors import DecodeError, EncodeError, UnknownSchemaError
from .message import Message
from .tables import ISO20_SCHEMAS, SCHEMAS
from .xmlin import from_xml

__all__ = ["decode", "encode", "from_xml", "Message", "DecodeError", "EncodeError", "UnknownSchemaError",
           "SCHEMAS", "ISO20_SCHEMAS"]
