"""The engine's protocol options, as users set them (``Resolver(...)`` keyword arguments and
the ``[engine]`` table of ``Resolver.from_config``), checked once (spec/resolution.md §6)."""

from __future__ import annotations

from typing import Any

EDNS_PAYLOAD = 1232  # DNS flag day 2020: avoids IP fragmentation
MAX_RETRIES = 5

ENGINE_SETTINGS = ("qname_minimisation", "case_randomisation", "edns_payload", "retries")


def engine_options(qname_minimisation: Any = True, case_randomisation: Any = True,
                   edns_payload: Any = EDNS_PAYLOAD, retries: Any = 1) -> dict[str, Any]:
    """Keyword arguments for ``Engine``; raises ValueError naming the bad setting."""
    for name, value in (("qname_minimisation", qname_minimisation), ("case_randomisation", case_randomisation)):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, not {value!r}")
    # RFC 6891 §6.2.5: below 512 is treated as 512; above 4096 invites fragmentation.
    if isinstance(edns_payload, bool) or not isinstance(edns_payload, int) or not 512 <= edns_payload <= 4096:
        raise ValueError(f"edns_payload must be an integer 512-4096, not {edns_payload!r}")
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= MAX_RETRIES:
        raise ValueError(f"retries must be an integer 0-{MAX_RETRIES}, not {retries!r}")
    return {"qname_minimisation": qname_minimisation, "case_randomisation": case_randomisation,
            "edns_payload": edns_payload, "retries": retries}
