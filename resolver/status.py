"""Validation statuses of RFC 4035 §4.3, shared by the validator, the engine and the API."""

from __future__ import annotations

import enum


class Status(str, enum.Enum):
    """How far an answer is trusted. The string values are the JSON/CLI spelling."""

    SECURE = "secure"            # chain of signatures from the trust anchor verified
    INSECURE = "insecure"        # proven (signed NSEC) that the chain ends in an unsigned zone
    BOGUS = "bogus"              # should be signed, but a signature, key or proof failed
    INDETERMINATE = "indeterminate"  # no trust anchor covers the name, or validation not attempted

    def __str__(self) -> str:
        return self.value
