"""The client configuration file (spec/resolution.md §11): where it is looked for and what it holds.

Kept apart from the Resolver so that the CLI, ``cid serve resolver`` and ``Resolver.from_config``
read one format with one set of errors, each a single line that names the file.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..engine.cache import CacheConfig, CacheConfigError
from ..engine.options import ENGINE_SETTINGS


class ResolverConfigError(ValueError):
    """A resolver configuration file is unreadable or wrong; str names the file."""


# The client configuration file (spec/resolution.md §11): where it is looked for, and its keys.
CONFIG_ENV = "CID_CONFIG"
SYSTEM_CONFIG = Path("/etc/cid/config.toml")
_CONFIG_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "hints": ((dict,), "a table of zone = [addresses]"),
    "trust_anchor": ((str,), "a file name (relative to this file)"),
    "port": ((int,), "a port number"),
    "timeout": ((int, float), "a number of seconds"),
    "max_queries": ((int,), "a whole number"),
    "max_time": ((int, float), "a number of seconds"),
    "validation": ((str,), "'on' or 'off'"),
    "require_secure": ((bool,), "true or false"),
}


def config_paths(environ: Mapping[str, str] | None = None) -> list[Path]:
    """Where the client configuration file is looked for, in order: ``$CID_CONFIG`` (when set and
    not empty), ``$XDG_CONFIG_HOME/cid/config.toml`` (``~/.config/cid/config.toml`` when
    XDG_CONFIG_HOME is unset or not absolute, as the XDG spec says), ``/etc/cid/config.toml``."""
    import os

    env = os.environ if environ is None else environ
    paths = []
    if env.get(CONFIG_ENV):
        paths.append(Path(env[CONFIG_ENV]))
    xdg = env.get("XDG_CONFIG_HOME", "")
    if xdg and Path(xdg).is_absolute():
        paths.append(Path(xdg) / "cid" / "config.toml")
    else:
        home = env.get("HOME") or (os.path.expanduser("~") if environ is None else "")
        if home and home != "~":
            paths.append(Path(home) / ".config" / "cid" / "config.toml")
    paths.append(SYSTEM_CONFIG)
    return paths


def config_path(environ: Mapping[str, str] | None = None) -> Path | None:
    """The client configuration file in effect: the first of ``config_paths()`` that exists,
    or None. A ``$CID_CONFIG`` that names no file is an error (ResolverConfigError), never
    silently passed over for another file."""
    import os

    env = os.environ if environ is None else environ
    paths = config_paths(env)
    if env.get(CONFIG_ENV):
        first = paths[0]
        if not first.is_file():
            problem = "is a directory" if first.is_dir() else "no such file"
            raise ResolverConfigError(f"{first}: {problem} (named by ${CONFIG_ENV})")
        return first
    return next((p for p in paths if p.is_file()), None)


def read(path: str | Path | None, overrides: dict[str, Any]) -> tuple[Path, Any, Any, dict[str, Any]]:
    """The Resolver arguments a configuration file gives (``Resolver.from_config`` documents the
    keys): ``(file, hints, trust_anchor, keyword options)``, ``overrides`` applied (and consumed).
    Raises ResolverConfigError, one line naming the file."""
    if path is None:
        path = config_path()
        if path is None:
            raise ResolverConfigError("no client configuration file: set $CID_CONFIG, or write "
                                      + " or ".join(str(p) for p in config_paths()[1:]))
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ResolverConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ResolverConfigError(f"{path}: {exc}") from None
    section = data.get("resolver", data)
    if not isinstance(section, dict):
        raise ResolverConfigError(f"{path}: 'resolver' must be a table")
    # [cache] at top level, or [resolver.cache] / cache = {...} inside the resolver table.
    cache_table = section.get("cache", data.get("cache") if section is not data else None)
    unknown = set(section) - set(_CONFIG_KEYS) - {"cache", "engine"}
    if unknown:
        raise ResolverConfigError(f"{path}: unknown setting(s) {', '.join(sorted(unknown))}")
    for key, (types, what) in _CONFIG_KEYS.items():
        value = section.get(key)
        if value is not None and (not isinstance(value, types) or isinstance(value, bool) is not (bool in types)):
            raise ResolverConfigError(f"{path}: '{key}' must be {what}, not {value!r}")
    if "port" in section and not 0 < section["port"] < 65536:
        raise ResolverConfigError(f"{path}: 'port' must be 1-65535, not {section['port']}")
    for key in ("timeout", "max_time"):
        if key in section and not 0 < section[key] <= 3600:
            raise ResolverConfigError(f"{path}: '{key}' must be more than 0 and at most 3600 seconds")
    hints = section.get("hints")
    if "hints" not in overrides and (not isinstance(hints, dict) or not hints):
        raise ResolverConfigError(f"{path}: 'hints' must be a table of zone = [addresses]")
    if isinstance(hints, dict):
        for zone, addresses in hints.items():
            if not isinstance(addresses, list) or not all(isinstance(a, str) for a in addresses):
                raise ResolverConfigError(f"{path}: hints: {zone!r} must be a list of addresses (strings)")
    hints = overrides.pop("hints", hints)
    options = {k: section[k] for k in ("port", "timeout", "max_queries", "max_time", "validation",
                                       "require_secure") if k in section}
    anchor = section.get("trust_anchor")
    if anchor is not None:
        anchor = path.parent / anchor
    anchor = overrides.pop("trust_anchor", anchor)
    if cache_table is not None:
        if not isinstance(cache_table, dict):
            raise ResolverConfigError(f"{path}: 'cache' must be a table")
        try:
            options["cache_config"] = CacheConfig.from_mapping(cache_table)
        except (CacheConfigError, TypeError) as exc:
            raise ResolverConfigError(f"{path}: [cache]: {exc}") from None
    engine_table = section.get("engine", data.get("engine") if section is not data else None)
    if engine_table is not None:
        if not isinstance(engine_table, dict):
            raise ResolverConfigError(f"{path}: 'engine' must be a table")
        unknown = set(engine_table) - set(ENGINE_SETTINGS)
        if unknown:
            raise ResolverConfigError(f"{path}: [engine]: unknown setting(s) {', '.join(sorted(unknown))}")
        options.update(engine_table)
    options.update(overrides)
    return path, hints, anchor, options
