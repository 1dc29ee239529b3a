"""Trace events of one resolution: small frozen records, one line each (``cid dig +trace``)."""

from __future__ import annotations

from dataclasses import dataclass

from ..status import Status


@dataclass(frozen=True)
class QuerySent:
    zone: str
    server: tuple[str, int]
    qname: str
    qtype: str
    tcp: bool = False

    def __str__(self) -> str:
        proto = "tcp" if self.tcp else "udp"
        return f";; query {self.qname} {self.qtype} -> {_addr(self.server)} ({proto}, zone {self.zone})"


@dataclass(frozen=True)
class ServerFailed:
    server: tuple[str, int]
    reason: str

    def __str__(self) -> str:
        return f";; server {_addr(self.server)} failed: {self.reason}"


@dataclass(frozen=True)
class Fallback:
    """A protocol feature turned off for this question (QNAME minimisation, EDNS, 0x20)."""

    feature: str
    reason: str

    def __str__(self) -> str:
        return f";; {self.feature} off: {self.reason}"


@dataclass(frozen=True)
class Referral:
    zone: str
    child: str
    nameservers: tuple[str, ...]
    glue: tuple[str, ...]
    has_ds: bool

    def __str__(self) -> str:
        glue = ", ".join(self.glue) or "none"
        ds = "with DS" if self.has_ds else "no DS"
        return (f";; referral from {self.zone} to {self.child} NS {' '.join(self.nameservers)}"
                f" (glue: {glue}; {ds})")


@dataclass(frozen=True)
class ZoneVerdict:
    zone: str
    status: Status
    why: str

    def __str__(self) -> str:
        return f";; zone {self.zone} keys: {self.status.value} ({self.why})"


@dataclass(frozen=True)
class AnswerVerdict:
    name: str
    rdtype: str
    rcode: str
    status: Status
    why: str

    def __str__(self) -> str:
        return f";; answer {self.name} {self.rdtype} {self.rcode}: {self.status.value} ({self.why})"


@dataclass(frozen=True)
class CacheHit:
    name: str
    rdtype: str
    status: Status

    def __str__(self) -> str:
        return f";; cache hit {self.name} {self.rdtype} ({self.status.value})"


@dataclass(frozen=True)
class CnameFollowed:
    name: str
    target: str

    def __str__(self) -> str:
        return f";; CNAME {self.name} -> {self.target}"


TraceEvent = QuerySent | ServerFailed | Fallback | Referral | ZoneVerdict | AnswerVerdict | CacheHit | CnameFollowed


def _addr(server: tuple[str, int]) -> str:
    host, port = server
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# Cache events (kept at the end; added to TraceEvent below) --------------------------------------------

@dataclass(frozen=True)
class CacheDenial:
    """A negative answer proven from cached NSEC records, without asking (RFC 8198)."""

    name: str
    rdtype: str
    rcode: str
    why: str

    def __str__(self) -> str:
        what = "NXDOMAIN" if self.rcode == "NXDOMAIN" else "NODATA"
        return f";; cached denial proves {self.name} {self.rdtype} {what} ({self.why})"


@dataclass(frozen=True)
class StaleServed:
    """Every authority failed; expired cached data was served (RFC 8767)."""

    name: str
    rdtype: str
    reason: str

    def __str__(self) -> str:
        return f";; stale answer for {self.name} {self.rdtype}: {self.reason}"


@dataclass(frozen=True)
class ProofSteps:
    """What each NSEC3 of a denial proof matched or covered (hashed owner, the name and its
    hash), or, for a failed proof, what was missing and every NSEC3 that came: the lines an
    operator reads to debug a broken chain."""

    name: str
    rdtype: str
    status: Status
    steps: tuple[str, ...]

    def __str__(self) -> str:
        return "\n".join(f";;   {self.status.value} proof: {step}" for step in self.steps)


TraceEvent = TraceEvent | CacheDenial | StaleServed | ProofSteps  # noqa: F811  (events defined above)
