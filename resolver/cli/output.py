"""Rendering DNS messages for people (dig's layout), scripts (+short) and programs (JSON).

CAPS and LOAD print in their friendly ``key=value`` form (their rdata classes are registered
on ``import resolver``), and as plain JSON maps in the JSON form.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Literal

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.svcbbase as svcbbase
import dns.rrset

from resolver.records.mapdata import MapRdata

Style = Literal["dig", "short", "json"]

_FLAG_ORDER = (
    (dns.flags.QR, "qr"), (dns.flags.AA, "aa"), (dns.flags.TC, "tc"), (dns.flags.RD, "rd"),
    (dns.flags.RA, "ra"), (dns.flags.AD, "ad"), (dns.flags.CD, "cd"),
)


def render_message(msg: dns.message.Message, style: Style = "dig") -> str:
    """The message as dig prints it (``dig``), answer data only (``short``), or JSON (``json``)."""
    if style == "json":
        return json.dumps(message_to_json(msg), indent=2, ensure_ascii=False)
    if style == "short":
        return "\n".join(rd.to_text() for rrset in msg.answer for rd in rrset)
    if style == "dig":
        return _dig_text(msg)
    raise ValueError(f"unknown style {style!r}")


def header_flags(msg: dns.message.Message) -> list[str]:
    return [text for flag, text in _FLAG_ORDER if msg.flags & flag]


def _count(section: list[dns.rrset.RRset]) -> int:
    return sum(len(rrset) for rrset in section)


def _dig_text(msg: dns.message.Message) -> str:
    rcode = msg.rcode()
    lines = [
        f";; ->>HEADER<<- opcode: {dns.opcode.to_text(msg.opcode())}, "
        f"status: {dns.rcode.to_text(rcode)}, id: {msg.id}",
        f";; flags: {' '.join(header_flags(msg))}; QUERY: {len(msg.question)}, "
        f"ANSWER: {_count(msg.answer)}, AUTHORITY: {_count(msg.authority)}, "
        f"ADDITIONAL: {_count(msg.additional) + (1 if msg.edns >= 0 else 0)}",
    ]
    if msg.flags & dns.flags.QR and msg.flags & dns.flags.RD and not msg.flags & dns.flags.RA:
        lines.append(";; WARNING: recursion requested but not available")
    if msg.edns >= 0:
        eflags = " do" if msg.ednsflags & dns.flags.DO else ""
        lines += ["", ";; OPT PSEUDOSECTION:",
                  f"; EDNS: version: {msg.edns}, flags:{eflags}; udp: {msg.payload}"]
        for option in msg.options:
            lines.append(f"; {_option_name(option)}: {option.to_text()}")
    lines += [";; QUESTION SECTION:"] if msg.edns >= 0 else ["", ";; QUESTION SECTION:"]
    for q in msg.question:
        lines.append(
            f";{q.name}\t\t{dns.rdataclass.to_text(q.rdclass)}\t{dns.rdatatype.to_text(q.rdtype)}"
        )
    for title, section in (("ANSWER", msg.answer), ("AUTHORITY", msg.authority),
                           ("ADDITIONAL", msg.additional)):
        if section:
            lines += ["", f";; {title} SECTION:"]
            for rrset in section:
                lines.extend(_rr_lines(rrset))
    return "\n".join(lines) + "\n"


def _rr_lines(rrset: dns.rrset.RRset) -> list[str]:
    rdclass = dns.rdataclass.to_text(rrset.rdclass)
    rdtype = dns.rdatatype.to_text(rrset.rdtype)
    return [f"{rrset.name}\t{rrset.ttl}\t{rdclass}\t{rdtype}\t{rd.to_text()}" for rd in rrset]


def _option_name(option: dns.edns.Option) -> str:
    try:
        return dns.edns.OptionType(option.otype).name
    except ValueError:
        return f"OPT{int(option.otype)}"


def rdata_to_json(rdata: dns.rdata.Rdata) -> Any:
    """A JSON value for one rdata: CAPS/LOAD as their map, A/AAAA as the address, SVCB/HTTPS
    as ``{"priority", "target", "params"}``, anything else as its presentation text."""
    if isinstance(rdata, MapRdata):
        return rdata.mapping
    rdtype = rdata.rdtype
    if rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
        return rdata.address
    if isinstance(rdata, svcbbase.SVCBBase):
        return {
            "priority": rdata.priority,
            "target": rdata.target.to_text(),
            "params": {svcbbase.key_to_text(k): _svc_param(v) for k, v in rdata.params.items()},
        }
    return rdata.to_text()


def _svc_param(value: Any) -> Any:
    if isinstance(value, svcbbase.ALPNParam):
        return [alpn.decode("utf-8", "backslashreplace") for alpn in value.ids]
    if isinstance(value, svcbbase.PortParam):
        return value.port
    if isinstance(value, (svcbbase.IPv4HintParam, svcbbase.IPv6HintParam)):
        return list(value.addresses)
    if isinstance(value, svcbbase.MandatoryParam):
        return [svcbbase.key_to_text(k) for k in value.keys]
    if isinstance(value, svcbbase.GenericParam):
        return base64.b64encode(value.value).decode() if value.value is not None else None
    return value.to_text() if hasattr(value, "to_text") else None


def rrset_to_json(rrset: dns.rrset.RRset) -> list[dict[str, Any]]:
    name = rrset.name.to_text()
    rdclass = dns.rdataclass.to_text(rrset.rdclass)
    rdtype = dns.rdatatype.to_text(rrset.rdtype)
    return [
        {"name": name, "ttl": rrset.ttl, "class": rdclass, "type": rdtype,
         "data": rdata_to_json(rd), "text": rd.to_text()}
        for rd in rrset
    ]


def message_to_json(msg: dns.message.Message) -> dict[str, Any]:
    edns = None
    if msg.edns >= 0:
        edns = {
            "version": msg.edns,
            "flags": ["do"] if msg.ednsflags & dns.flags.DO else [],
            "udp": msg.payload,
            "options": [{"code": int(o.otype), "name": _option_name(o), "text": o.to_text()}
                        for o in msg.options],
        }
    return {
        "id": msg.id,
        "opcode": dns.opcode.to_text(msg.opcode()),
        "rcode": dns.rcode.to_text(msg.rcode()),
        "flags": header_flags(msg),
        "edns": edns,
        "question": [
            {"name": q.name.to_text(), "class": dns.rdataclass.to_text(q.rdclass),
             "type": dns.rdatatype.to_text(q.rdtype)}
            for q in msg.question
        ],
        "answer": [rr for rrset in msg.answer for rr in rrset_to_json(rrset)],
        "authority": [rr for rrset in msg.authority for rr in rrset_to_json(rrset)],
        "additional": [rr for rrset in msg.additional for rr in rrset_to_json(rrset)],
    }
