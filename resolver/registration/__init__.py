"""Registration by signed DNS UPDATE (RFC 2136 + TSIG, RFC 8945; leases by RFC 9664): the
client side of ``cid register``, ``cid unregister``, ``cid load`` and ``cid zone delegate``.

It speaks plain standard DNS, so the same calls work against our primary (``cid serve auth``)
and against BIND and Knot primaries. Python API::

    from resolver.registration import register, unregister, update_load

    result = register("127.0.75.1:53", "upd-key:c2VjcmV0...", "cid:pool-7.bj.cmcc.cid",
                      endpoints=["h2://127.0.0.5:8443"],
                      caps={"accel_count": 8, "accel_memory_bytes": "80GiB", "region": "cn-bj"},
                      load={"accel_free": 3}, lease=300)
    print(result.line())            # NOERROR ...; lease 300 s granted
    update_load("127.0.75.1:53", key, "cid:pool-7.bj.cmcc.cid", {"accel_free": 2})

``*_async`` variants run on the current event loop; ``Keepalive`` renews and heartbeats.
"""

from .client import (Keepalive, Options, Publication, RegistrationError, Result, prepare, register,
                     register_async, unregister, unregister_async, update_load, update_load_async)
from .messages import Answer
from .transport import TransportError
from .tsigkeys import TsigKey, TsigKeyError, parse_key, read_key_file

__all__ = ["Answer", "Keepalive", "Options", "Publication", "RegistrationError", "Result", "TransportError",
           "TsigKey", "TsigKeyError", "parse_key", "prepare", "read_key_file", "register", "register_async",
           "unregister", "unregister_async", "update_load", "update_load_async"]
