"""Lookup.replaced is dataclasses.replace (the oracle) without its introspection: the same
fields, equality and hash for every combination of changes, and TypeError for unknown names."""

from __future__ import annotations

import dataclasses
import itertools

import dns.name
import dns.rrset
import pytest

from resolver.engine.result import Lookup
from resolver.status import Status

NAME = dns.name.from_text("pool-1.bj.cmcc.cid.")
RRSET = dns.rrset.from_text(NAME, 300, "IN", "A", "192.0.2.1")
BASE = [Lookup(NAME, 1, "NOERROR", Status.SECURE, "signed", 300, RRSET, None, (), (), ("event",)),
        Lookup(NAME, 28, "NXDOMAIN", Status.BOGUS, "no proof", 0, stale=True)]
CHANGES = {"ttl": 12, "trace": ("a", "b"), "stale": True, "why": "stale answer", "rrset": None,
           "status": Status.INSECURE, "chain_rrsigs": (None,)}


def _fields(lookup: Lookup) -> tuple:
    return tuple((f.name, type(getattr(lookup, f.name)), getattr(lookup, f.name)) for f in dataclasses.fields(lookup))


@pytest.mark.parametrize("base", BASE)
def test_replaced_is_dataclasses_replace(base):
    for size in range(len(CHANGES) + 1):
        for keys in itertools.combinations(CHANGES, size):
            changes = {k: CHANGES[k] for k in keys}
            ours, oracle = base.replaced(**changes), dataclasses.replace(base, **changes)
            assert type(ours) is type(oracle) and _fields(ours) == _fields(oracle)
            assert ours == oracle and ours is not base
            try:
                expected = hash(oracle)
            except TypeError:  # an RRset is unhashable: both refuse
                with pytest.raises(TypeError):
                    hash(ours)
            else:
                assert hash(ours) == expected
            assert vars(ours) == vars(oracle)
    assert _fields(base) == _fields(dataclasses.replace(base))  # the original is untouched
    with pytest.raises(dataclasses.FrozenInstanceError):
        base.replaced(ttl=1).ttl = 2


def test_unknown_field_is_a_type_error_as_in_replace():
    with pytest.raises(TypeError):
        dataclasses.replace(BASE[0], nope=1)
    with pytest.raises(TypeError, match="nope"):
        BASE[0].replaced(nope=1)
