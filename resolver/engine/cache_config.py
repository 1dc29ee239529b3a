"""Cache settings: sizes and TTL caps, checked when built (a TOML ``[cache]`` table goes
through ``CacheConfig.from_mapping``), and the RFC defaults they start from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

# Defaults (RFC 4035 §4.7: bogus data cached briefly; RFC 2308 §5 / RFC 8767 §4 caps).
BOGUS_TTL = 60
MAX_NEGATIVE_TTL = 3600
MAX_TTL = 86400
STALE_TTL = 30  # RFC 8767 §4: the TTL of a stale answer
PREFETCH_FRACTION = 0.1  # refresh an entry hit in its last 10 % of TTL ...
PREFETCH_MIN_TTL = 10  # ... if its TTL was at least this long (else it is not worth it)


class CacheConfigError(ValueError):
    """A cache setting is unknown or out of range; str says which."""


@dataclass(frozen=True)
class CacheConfig:
    """Sizes and TTL caps. TTLs in seconds; ``max_bytes`` is the hard memory bound."""

    max_bytes: int = 64 * 1024 * 1024
    max_ttl: int = MAX_TTL
    min_ttl: int = 0
    max_negative_ttl: int = MAX_NEGATIVE_TTL
    bogus_ttl: int = BOGUS_TTL
    serve_stale: bool = True
    stale_max: int = 86400
    prefetch: bool = True

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type in ("bool", bool):
                if not isinstance(value, bool):
                    raise CacheConfigError(f"cache setting {f.name} must be true or false")
            elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise CacheConfigError(f"cache setting {f.name} must be an integer >= 0")
        if self.max_bytes < 4096:
            raise CacheConfigError("cache setting max_bytes must be at least 4096")
        if self.min_ttl > self.max_ttl:
            raise CacheConfigError("cache setting min_ttl must not exceed max_ttl")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> CacheConfig:
        """From a TOML ``[cache]`` table; unknown keys are an error, not silently ignored."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise CacheConfigError(f"unknown cache setting(s) {', '.join(sorted(unknown))}")
        return cls(**dict(data))
