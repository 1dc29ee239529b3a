"""The JSON vectors in spec/vectors/ against the implementation and dnspython."""

from __future__ import annotations

import json
from pathlib import Path

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.zone
import pytest

import resolver  # noqa: F401  (registers CAPS/LOAD)
from resolver import identifier
from resolver.records import capsmap

VECTORS = Path(__file__).resolve().parent.parent / "spec" / "vectors"


def _load(name: str) -> dict:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


IDS = _load("identifiers.json")
CAPS = _load("caps.json")
SVCB = _load("svcb_rfc9460.json")
MAP_TYPES = ("CAPS", "LOAD")


def _typed_equal(a, b) -> bool:
    """Equality that also distinguishes 1 from 1.0 and True from 1 (JSON keeps them apart)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_typed_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_typed_equal(x, y) for x, y in zip(a, b))
    return a == b or (a != a and b != b)


# --- identifiers -----------------------------------------------------------------------

@pytest.mark.parametrize("case", IDS["valid"], ids=lambda c: c["note"])
def test_identifier_valid(case):
    name = identifier.parse(case["input"], allow_underscore=case["allow_underscore"])
    assert identifier.to_dns(name) == case["name"]
    assert name == dns.name.from_text(case["name"])
    if not case["allow_underscore"]:
        assert identifier.to_cid(name) == case["cid"]
        # both written forms of the result parse back to the same name
        assert identifier.parse(identifier.to_cid(name)) == name
        assert identifier.parse(identifier.to_dns(name)) == name


@pytest.mark.parametrize("case", IDS["invalid"], ids=lambda c: c["note"])
def test_identifier_invalid(case):
    with pytest.raises(identifier.IdentifierError):
        identifier.parse(case["input"])
    with pytest.raises(identifier.IdentifierError):
        identifier.parse(case["input"], allow_underscore=case["reason"] != "underscore-label")
    assert not identifier.is_identifier_text(case["input"])


def test_identifier_vectors_cover_the_required_reasons():
    reasons = {c["reason"] for c in IDS["invalid"]}
    assert {"empty-label", "label-too-long", "name-too-long", "underscore-label", "mixed-form",
            "whitespace", "non-ascii", "root"} <= reasons


# --- CAPS / LOAD ---------------------------------------------------------------------

@pytest.mark.parametrize("rdtype", MAP_TYPES)
@pytest.mark.parametrize("case", CAPS["valid"], ids=lambda c: c["name"])
def test_caps_presentation_to_wire(case, rdtype):
    rd = dns.rdata.from_text(dns.rdataclass.IN, rdtype, case["presentation"])
    assert rd.to_wire().hex() == case["wire_hex"]
    assert rd.to_text() == case["presentation"]
    assert _typed_equal(rd.mapping, case["value"])


@pytest.mark.parametrize("rdtype", MAP_TYPES)
@pytest.mark.parametrize("case", CAPS["valid"], ids=lambda c: c["name"])
def test_caps_wire_to_presentation(case, rdtype):
    wire = bytes.fromhex(case["wire_hex"])
    rd = dns.rdata.from_wire(dns.rdataclass.IN, rdtype, wire, 0, len(wire))
    assert rd.to_text() == case["presentation"]
    assert _typed_equal(capsmap.decode(wire), case["value"])
    assert capsmap.encode(case["value"]) == wire
    # RFC 3597 generic form of the same bytes is the same rdata
    generic = dns.rdata.from_text(dns.rdataclass.IN, rdtype, f"\\# {len(wire)} {wire.hex()}" if wire else "\\# 0")
    assert generic == rd


@pytest.mark.parametrize("case", CAPS["presentation_variants"], ids=lambda c: c["note"])
def test_caps_presentation_variants(case):
    rd = dns.rdata.from_text(dns.rdataclass.IN, "CAPS", case["input"])
    assert rd.to_text() == case["canonical"]
    assert dns.rdata.from_text(dns.rdataclass.IN, "CAPS", case["canonical"]) == rd


@pytest.mark.parametrize("case", CAPS["rejected_presentation"], ids=lambda c: c["reason"])
def test_caps_rejected_presentation(case):
    with pytest.raises(dns.exception.SyntaxError):
        dns.rdata.from_text(dns.rdataclass.IN, "CAPS", case["input"])


@pytest.mark.parametrize("rdtype", MAP_TYPES)
@pytest.mark.parametrize("case", CAPS["rejected_wire"], ids=lambda c: c["name"])
def test_caps_rejected_wire(case, rdtype):
    wire = bytes.fromhex(case["wire_hex"])
    with pytest.raises(dns.exception.FormError):
        dns.rdata.from_wire(dns.rdataclass.IN, rdtype, wire, 0, len(wire))
    with pytest.raises(capsmap.CapsError):
        capsmap.decode(wire)


def test_caps_type_codes():
    assert CAPS["types"] == {"CAPS": 65380, "LOAD": 65381}
    assert dns.rdatatype.from_text("CAPS") == 65380
    assert dns.rdatatype.from_text("LOAD") == 65381
    assert dns.rdatatype.from_text("TYPE65380") == dns.rdatatype.from_text("CAPS")


# --- RFC 9460 Appendix D --------------------------------------------------------------

def _svcb_zone(text: str) -> dns.zone.Zone:
    return dns.zone.from_text(f"$TTL 3600\n{text}\n", origin=SVCB["origin"], relativize=False,
                              check_origin=False)


@pytest.mark.parametrize("case", SVCB["vectors"], ids=lambda c: c["figure"][:9] + c["text"][-12:])
def test_rfc9460_vector(case):
    zone = _svcb_zone(case["text"])
    (rd,) = zone.find_rdataset(SVCB["origin"], case["type"])
    assert rd.to_wire().hex() == case["wire_hex"]
    wire = bytes.fromhex(case["wire_hex"])
    back = dns.rdata.from_wire(dns.rdataclass.IN, case["type"], wire, 0, len(wire))
    assert back == rd
    # dnspython's own presentation must read back to the same bytes
    assert dns.rdata.from_text(dns.rdataclass.IN, case["type"], back.to_text()).to_wire() == wire


@pytest.mark.parametrize("case", SVCB["failure_cases"], ids=lambda c: c["text"].split("1 foo.example.com. ")[1][:30])
def test_rfc9460_failure_case(case):
    if case["dnspython_rejects"]:
        with pytest.raises(dns.exception.SyntaxError):
            _svcb_zone(case["text"])
    else:  # recorded as accepted: keep the record honest if dnspython changes
        _svcb_zone(case["text"])


def test_rfc9460_vector_set_is_complete():
    figures = {c["figure"].split(":")[0] for c in SVCB["vectors"]}
    assert figures == {f"Figure {n}" for n in range(2, 11)}
    assert len(SVCB["failure_cases"]) == 10


# --- JSON result schema -----------------------------------------------------------------

def _schema_validator():
    from jsonschema import Draft202012Validator

    schema = json.loads((VECTORS.parent / "resolution.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def test_json_md_example_matches_the_schema():
    import re

    doc = (VECTORS.parent / "json.md").read_text(encoding="utf-8")
    example = json.loads(re.search(r"```json\n(.*?)```", doc, re.S).group(1))
    assert list(_schema_validator().iter_errors(example)) == []


def test_resolution_to_json_matches_the_schema():
    from resolver.resolution import Endpoint, Resolution
    from resolver.status import Status

    validator = _schema_validator()
    found = Resolution("cid:pool-7.bj.cmcc.cid", "pool-7.bj.cmcc.cid.", "NOERROR", Status.SECURE, "ok", 10,
                       (Endpoint("pool-7.bj.cmcc.cid.", 1, 8443, ("h2",), ("192.0.2.1", "2001:db8::1")),
                        Endpoint("gw.bj.cmcc.cid.", 2, None, (), ())),
                       {"accel_count": 8, "x": [1.0, None]}, {"accel_free": 3, "ts": 1})
    missing = Resolution("cid:nope.cid", "nope.cid.", "NXDOMAIN", Status.INSECURE, "proven absent", 300,
                         (), {}, None)
    bogus = Resolution("cid:bad.cid", "bad.cid.", "SERVFAIL", Status.BOGUS, "CAPS: signature expired", 0,
                       (), {}, None)
    for result in (found, missing, bogus):
        assert list(validator.iter_errors(result.to_json())) == []
    broken = found.to_json() | {"status": "valid"}
    assert list(validator.iter_errors(broken))
    assert list(validator.iter_errors(found.to_json() | {"extra": 1}))
    wrong_address = found.to_json()
    wrong_address["endpoints"][0]["addresses"] = ["192.0.2.300"]
    assert list(validator.iter_errors(wrong_address))


def test_spec_documents_link_to_files_that_exist():
    import re

    spec = VECTORS.parent
    documents = sorted(spec.glob("*.md"))
    assert {d.name for d in documents} >= {"README.md", "identifiers.md", "records.md", "capabilities.md",
                                           "dnssec.md", "delegation.md", "discovery.md", "resolution.md",
                                           "json.md"}
    for doc in documents:
        text = doc.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([A-Za-z0-9_./-]+\.(?:md|json))(?:#[^)]*)?\)", text):
            assert (spec / target).exists(), f"{doc.name} links to missing {target}"
        for vector in re.findall(r"spec/vectors/([a-z0-9_]+\.json)", text):
            assert (VECTORS / vector).exists(), f"{doc.name} names missing vector {vector}"
        # "[records.md](records.md) §3.2" must name a section that exists there
        for target, section in re.findall(r"\]\(([a-z_]+\.md)\) §(\d+)", text):
            headings = (spec / target).read_text(encoding="utf-8")
            assert re.search(rf"^##+ {section}\.", headings, re.M), f"{doc.name}: {target} has no §{section}"


@pytest.mark.parametrize("case", SVCB["wire_cases"]["cases"], ids=lambda c: c["why"])
def test_svcb_wire_cases_as_recorded(case):
    wire = bytes.fromhex(case["wire_hex"])
    if case["dnspython"] == "FormError":
        with pytest.raises(dns.exception.FormError):
            dns.rdata.from_wire(dns.rdataclass.IN, "SVCB", wire, 0, len(wire))
    else:
        rd = dns.rdata.from_wire(dns.rdataclass.IN, "SVCB", wire, 0, len(wire))
        assert rd.to_wire() == wire
