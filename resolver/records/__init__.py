"""Record types of the scheme, registered with dnspython on import.

After ``import resolver.records`` every dnspython API (master files, messages, rdata.from_text,
``dns.rdatatype.from_text("CAPS")``) knows CAPS and LOAD, in friendly and RFC 3597 form.
"""

import dns.rdata
import dns.rdatatype

from . import caps, load
from .capsmap import CapsError, decode, encode, normalize

def _register() -> None:
    for module, code, text in ((caps, caps.TYPE, "CAPS"), (load, load.TYPE, "LOAD")):
        # Name the type first: dnspython freezes the mnemonic into the enum value it makes,
        # and rdata.register_type makes that value before it records the name.
        dns.rdatatype.register_type(dns.rdatatype.RdataType(code), text)
        try:
            dns.rdata.register_type(module, code, text)
        except dns.rdata.RdatatypeExists:
            pass  # already registered (module re-import)


_register()
CAPS = dns.rdatatype.RdataType.make(caps.TYPE)
LOAD = dns.rdatatype.RdataType.make(load.TYPE)

__all__ = ["CAPS", "LOAD", "CapsError", "decode", "encode", "normalize"]
