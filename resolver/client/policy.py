"""The validation policy, fail closed (spec/resolution.md §5.1): which answers callers get.

``bogus`` is never data (the engine answers SERVFAIL); ``indeterminate`` (no trust anchor covers
the name) is refused while validation is on; ``insecure`` (a proven unsigned delegation) is
accepted and marked, and refused under ``require_secure``. One place decides, so the Python
API, the HTTP API and the CLI refuse the same answers.
"""

from __future__ import annotations

from typing import Any

from ..status import Status

VALIDATION_MODES = ("on", "off")


class ValidationRefused(LookupError):
    """An answer the validation policy does not accept (spec/resolution.md §5.1): not validated
    (``indeterminate``: no trust anchor covers its namespace) while validation is on, or from a
    provably unsigned zone (``insecure``) under ``require_secure``. ``result`` is the refused
    Resolution, Lookup or FindResult, for callers who want to look at it anyway."""

    def __init__(self, name: str, status: Status, why: str, result: Any):
        self.name, self.status, self.why, self.result = name, status, why, result
        if status is Status.INDETERMINATE:
            advice = ("give the Resolver a trust anchor for its namespace (trust_anchor=FILE of DS/DNSKEY "
                      "records), or validation='off' to accept unvalidated answers")
        else:
            advice = "require_secure=False accepts answers from unsigned zones (they stay marked insecure)"
        super().__init__(f"{name}: refused, answer is {status.value} ({why}); {advice}")



def refuses_answer(status: Status, rcode: str, validation: str, require_secure: bool) -> bool:
    """Whether the policy refuses one lookup's answer of this status (failures are not answers)."""
    if status is Status.SECURE or rcode == "SERVFAIL" or status is Status.BOGUS:
        return False
    if status is Status.INDETERMINATE:
        return validation == "on"
    return status is Status.INSECURE and require_secure


def refuses_result(result: Any, validation: str, require_secure: bool) -> bool:
    """A Resolution or FindResult: refused when built on unvalidated answers (validation on)
    or, under require_secure, when not secure; failures are not refusals."""
    if result.status is Status.BOGUS:
        return False
    if result.unvalidated and validation == "on":
        return True
    # Under require_secure only an answer from an unsigned zone is refused: an indeterminate
    # result that is a failure (a budget spent, servers down) stays a failure.
    return require_secure and result.status is Status.INSECURE
