"""Browse names (spec/discovery.md) added to the tests/support/federation.py hierarchy, with the
mistakes and attacks a search must survive: pointers up, sideways and out of tree, stale
listings, a sub-type PTR whose CAPS do not match, another namespace's identifier.

    cid.          lists children cmcc, open (+ itself and other.net.: both must be ignored)
    cmcc.cid.     lists child bj (+ a pointer back up to cid.)
    bj.cmcc.cid.  lists pool-7, hinted, cpu-box, ghost (does not exist), pool-1.open.cid. (not its own)
                  _kind-gpu sub-type: pool-7, hinted (no CAPS), cpu-box (CAPS say cpu)
    open.cid.     unsigned; lists pool-1
"""

from __future__ import annotations

import time

from . import federation as F

EXTRA = {
    "cid.": """
_children._compute 3600 PTR cmcc
_children._compute 3600 PTR open
_children._compute 3600 PTR cid.
_children._compute 3600 PTR other.net.
""",
    "cmcc.cid.": """
_children._compute 3600 PTR bj
_children._compute 3600 PTR cid.
""",
    "bj.cmcc.cid.": """
_compute 3600 PTR pool-7
_compute 3600 PTR hinted
_compute 3600 PTR cpu-box
_compute 3600 PTR ghost
_compute 3600 PTR pool-1.open.cid.
_kind-gpu._sub._compute 3600 PTR pool-7
_kind-gpu._sub._compute 3600 PTR hinted
_kind-gpu._sub._compute 3600 PTR cpu-box
cpu-box 300 SVCB 1 . alpn=h2 port=9000
cpu-box 300 A 192.0.2.90
cpu-box 3600 CAPS accel_kind=cpu cpu_count=64
cpu-box 30 LOAD cpu_free=40
""",
    "open.cid.": """
_compute 3600 PTR pool-1
""",
}

# What a search of cid. must return, and what it must skip (name -> words in the reason).
FOUND = {"cid:pool-7.bj.cmcc.cid", "cid:hinted.bj.cmcc.cid", "cid:cpu-box.bj.cmcc.cid", "cid:pool-1.open.cid"}
SKIPPED = {
    "ghost.bj.cmcc.cid.": "does not exist",
    "pool-1.open.cid.": "outside",
    "cid.": "not below",
    "other.net.": "not below",
}


def texts(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Zone texts of the hierarchy with browse names (plus ``extra`` lines per zone)."""
    out = {}
    for zone, (_, text) in F.ZONES.items():
        out[zone] = text + EXTRA.get(zone, "") + (extra or {}).get(zone, "")
    return out


def build(extra: dict[str, str] | None = None) -> F.Federation:
    return F.build(now=time.time(), overrides=texts(extra))
