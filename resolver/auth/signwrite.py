"""Sign a zone and write it as a master file in one pass, split across CPU cores.

For a large zone, making the RRSIGs and writing the signed file are the two big costs, and both
are independent per owner name. After the zone is prepared (old signatures removed, DNSKEYs
added, NSEC chain laid out: ``signer.prepare_signing``), the names in canonical order are cut
into ranges; forked workers each sign one range and render its lines (the same functions
``sign_zone`` and ``zone_to_text`` use), and the parent joins the text in order. Ed25519 and
RSA signatures are deterministic, so the file is byte-identical to a single-process run
(tests compare it with ``sign_zone`` + ``zone_to_text``). The zone itself is left prepared but
without NSEC/RRSIG records.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import dns.zone

from . import parallel_sign, render, signer
from .keys import ZoneKey


PIECES_PER_WORKER = 8  # ranges per worker when a progress bar is shown


class SignedText(NamedTuple):
    text: str
    rrsets: int  # RRsets signed
    rrsigs: int


def signed_zone_text(
    zone: dns.zone.Zone,
    keys: list[ZoneKey],
    *,
    inception: int | None = None,
    expiration: int | None = None,
    now: float | None = None,
    generic: bool = True,
    workers: int | None = None,
    progress: Callable[[int], Any] | None = None,
    total: Callable[[int], Any] | None = None,
) -> SignedText:
    """The signed zone's master-file text (``generic``: CAPS/LOAD in RFC 3597 form).

    ``workers``: processes (default: one per CPU from parallel_sign.PARALLEL_THRESHOLD RRSIGs on).
    ``total(n)`` is called with the number of names and ``progress(k)`` as each range of ``k``
    names is signed and written (a progress bar). Raises ValueError as ``sign_zone`` does.
    """
    plan = signer.prepare_signing(zone, keys, inception=inception, expiration=expiration, now=now)
    order = [(key, node) for key, _, node in plan.order]
    # names_before[i]: authoritative names among order[:i] (names is a subsequence of order).
    names_before = []
    at = 0
    for key, _ in order:
        names_before.append(at)
        if at < len(plan.names) and plan.names[at][0] is key:
            at += 1
    names_before.append(at)
    estimate = 2 * len(plan.names) * len(plan.zsks)  # about two RRSIGs per name per key
    count = parallel_sign.choose_workers(workers, estimate)

    def task(lo: int, hi: int) -> tuple[str, int, int]:
        a, b = names_before[lo], names_before[hi]
        rrsets = signer.sign_range(zone, plan, a, b)
        part = signer.ZoneSignatures(plan.origin, plan.nsec_ttl, plan.nsec[a:b], rrsets)
        text = render.nodes_text(zone, order[lo:hi], generic=generic, signatures=part)
        return text, len(rrsets), part.rrsig_count

    if total is not None:
        total(len(order))
    parts = parallel_sign.map_ranges(task, len(order), count, progress=progress,
                                     pieces=count * PIECES_PER_WORKER if progress is not None else None)
    head = f"$ORIGIN {zone.origin}\n"
    return SignedText(head + "".join(p[0] for p in parts), sum(p[1] for p in parts), sum(p[2] for p in parts))
