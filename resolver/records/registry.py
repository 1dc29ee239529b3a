"""The capability key registry (spec/capabilities.md) as data, plus checks and the model slug.

Keys carry their unit in the name and use base units (bytes, Hz, bit/s, seconds) so that two
publishers cannot disagree about "80GB". CAPS holds static facts (``kind="static"``); LOAD holds
live values (``kind="live"``). Unknown keys are legal and are always preserved: the registry
only produces warnings, never drops anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

import dns.name

REGISTRY_VERSION = 1
SLUG_MAX = 56  # 63 minus len("_accel-"): the slug must fit in a browse sub-type label
IMPORT_PREFIX = "x-"  # x-<source>: unmapped inventory inputs, kept as [[key, value], ...]


@dataclass(frozen=True)
class KeySpec:
    name: str
    type: str            # "int" | "float" | "number" | "str" | "bool" | "list[str]" | "list[pair]"
    unit: str            # "bytes", "Hz", "bit/s", "s", "FLOP/s", "ratio", "score", "count", "" ...
    kind: str            # "static" (CAPS) | "live" (LOAD) | "any"
    description: str
    cats: str | None = None          # draft-ietf-cats-metric-definition metric type, if any
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    # How a "str" value is written (spec/capabilities.md §1.8, §7.2): "lower" (lower case, the
    # default), "label" (one lower-case DNS label), "version" (major.minor, ordered as numbers),
    # "currency" (ISO 4217, upper case), "verbatim" (as the vendor spells it).
    syntax: str | None = None

    @property
    def value_syntax(self) -> str | None:
        return self.syntax or ("lower" if self.type == "str" else None)


def _k(name, type_, unit, kind, description, cats=None, minimum=None, maximum=None, choices=None, syntax=None):
    return KeySpec(name, type_, unit, kind, description, cats, minimum, maximum, choices, syntax)


SOURCES = ("nominal", "measured", "estimated", "normalized", "aggregated")

_KEYS: tuple[KeySpec, ...] = (
    # --- what the identifier names (static) ---------------------------------------------
    _k("kind", "str", "", "static", "what the identifier names: gpu-pool, cluster, node, inference-endpoint"),
    # --- accelerator identity (static) -------------------------------------------------
    _k("accel_kind", "str", "", "static", "accelerator class", choices=("gpu", "npu", "tpu", "fpga", "asic")),
    _k("accel_vendor", "str", "", "static", "vendor, lower case: nvidia, amd, intel, huawei, ..."),
    _k("accel_model", "str", "", "static", "model without vendor, form factor or memory: h100, a100, mi300x"),
    _k("accel_form_factor", "str", "", "static", "form factor / interface: sxm4, sxm5, pcie, oam, nvl"),
    _k("accel_memory_bytes", "int", "bytes", "static", "memory per device", minimum=0),
    _k("accel_slug", "str", "", "static", "DNS-label-safe vendor-model-form-memory slug (browse sub-type)",
       syntax="label"),
    _k("accel_product", "str", "", "static", "vendor's product string verbatim, e.g. A100-SXM4-40GB",
       syntax="verbatim"),
    _k("accel_arch", "str", "", "static", "architecture / family: hopper, ampere, cdna3"),
    _k("accel_compute_capability", "str", "", "static", "CUDA compute capability major.minor, e.g. 9.0",
       syntax="version"),
    _k("accel_count", "int", "count", "static", "devices installed", minimum=0),
    _k("accel_flops_fp16", "number", "FLOP/s", "static", "peak dense FP16 rate per device", minimum=0),
    _k("accel_flops_fp32", "number", "FLOP/s", "static", "peak FP32 rate per device", minimum=0),
    _k("accel_interconnect", "str", "", "static", "device interconnect: nvlink, xgmi, pcie"),
    # --- what an inference endpoint serves (static) --------------------------------------
    _k("model", "str", "", "static", "model an inference endpoint serves, as its publisher names it: "
       "llama-3-70b-instruct", syntax="verbatim"),
    _k("max_context_tokens", "int", "count", "static", "longest context an inference endpoint accepts, in tokens",
       minimum=1),
    # --- host (static) -----------------------------------------------------------------
    _k("cpu_count", "int", "count", "static", "logical CPUs", minimum=0),
    _k("cpu_model", "str", "", "static", "CPU model string"),
    _k("cpu_arch", "str", "", "static", "instruction set: amd64, arm64 (Kubernetes spelling)"),
    _k("cpu_frequency_hz", "int", "Hz", "static", "nominal CPU clock", cats="compute_CPU_frequency", minimum=0),
    _k("memory_bytes", "int", "bytes", "static", "host memory", minimum=0),
    _k("storage_bytes", "int", "bytes", "static", "local storage", minimum=0),
    _k("network_bps", "int", "bit/s", "static", "nominal network bandwidth", minimum=0),
    # --- placement and commerce (static) ------------------------------------------------
    _k("region", "str", "", "static", "region label, DNS-label-safe (matches topology.kubernetes.io/region)",
       syntax="label"),
    _k("zone", "str", "", "static", "availability zone label"),
    _k("operator", "str", "", "static", "operator label"),
    _k("price_per_hour", "number", "currency/h", "any",
       "price per device-hour in `currency`: list price in CAPS, price now in LOAD", minimum=0),
    _k("currency", "str", "", "static", "ISO 4217 code, upper case (the only upper-case registry value)",
       syntax="currency"),
    _k("version", "int", "", "any", "registry version the publisher followed (this document: 1)", minimum=1),
    # --- live state (LOAD) ---------------------------------------------------------------
    _k("ts", "int", "s", "live", "POSIX time (UTC seconds) the values were taken", minimum=0),
    _k("source", "str", "", "live", "how the values were obtained", choices=SOURCES),
    _k("accel_free", "int", "count", "live", "devices free now", minimum=0),
    _k("accel_util_ratio", "number", "ratio", "live", "mean device utilisation 0..1", minimum=0, maximum=1),
    _k("accel_memory_free_bytes", "int", "bytes", "live", "free device memory, summed over devices", minimum=0),
    _k("cpu_free", "int", "count", "live", "logical CPUs free now", minimum=0),
    _k("cpu_util_ratio", "number", "ratio", "live", "CPU utilisation 0..1", minimum=0, maximum=1),
    _k("memory_free_bytes", "int", "bytes", "live", "free host memory", minimum=0),
    _k("load_ratio", "number", "ratio", "live", "overall load 0..1 (CATS-DNS `load`/100)", minimum=0, maximum=1),
    _k("queue_depth", "int", "count", "live", "jobs waiting", minimum=0),
    _k("queue_wait_s", "number", "s", "live", "expected wait before a new job starts", minimum=0),
    _k("latency_s", "number", "s", "live", "publisher-reported service latency", cats="delay_raw", minimum=0),
    _k("compute_norm", "int", "score", "live", "CATS L1 compute score 0..10", cats="compute_norm", minimum=0, maximum=10),
    _k("communication_norm", "int", "score", "live", "CATS L1 communication score 0..10",
       cats="communication_norm", minimum=0, maximum=10),
    _k("service_norm", "int", "score", "live", "CATS L1 service score 0..10", cats="service_norm", minimum=0, maximum=10),
    _k("composed_norm", "int", "score", "live", "CATS L1 composed score 0..10", cats="composed_norm", minimum=0, maximum=10),
    _k("norm_fi", "int", "score", "live", "CATS L2 overall score 0..10", cats="norm_fi", minimum=0, maximum=10),
)

REGISTRY: dict[str, KeySpec] = {spec.name: spec for spec in _KEYS}
STATIC_KEYS = frozenset(k for k, s in REGISTRY.items() if s.kind in ("static", "any"))
LIVE_KEYS = frozenset(k for k, s in REGISTRY.items() if s.kind in ("live", "any"))

_SLUG_PART = re.compile(r"[^a-z0-9]+")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_VENDOR_ALIASES = {
    "nvidia-corporation": "nvidia", "nvidia-corp": "nvidia", "advanced-micro-devices": "amd",
    "advanced-micro-devices-inc": "amd", "amd-ati": "amd", "ati": "amd", "intel-corporation": "intel",
    "intel-corp": "intel", "huawei-technologies": "huawei",
}
# Marketed memory sizes (GiB). Measured sizes (nvidia.com/gpu.memory reports 39538 MiB for a
# "40GB" A100) fall a few percent short; snapping keeps one slug per product.
_MARKETED_GIB = (1, 2, 3, 4, 6, 8, 10, 11, 12, 16, 20, 24, 32, 40, 48, 64, 80, 94, 96, 128, 141,
                 144, 180, 192, 256, 288)
_SNAP_FRACTION = 0.9


def _matches(spec: KeySpec, value: Any) -> bool:
    t = spec.type
    if t == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if t == "float":
        return isinstance(value, float)
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if t == "str":
        return isinstance(value, str)
    if t == "bool":
        return isinstance(value, bool)
    if t == "list[str]":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return True


def validate_caps(mapping: Mapping[str, Any], *, record: str = "CAPS") -> list[str]:
    """Warnings about registry keys with the wrong type, range or record; unknown keys are fine.

    ``record`` is "CAPS" or "LOAD": a live key in CAPS (or a static key in LOAD) is legal but
    probably a mistake, so it earns a warning too.
    """
    warnings: list[str] = []
    for key, value in mapping.items():
        spec = REGISTRY.get(key)
        if spec is None:
            continue
        if not _matches(spec, value):
            warnings.append(f"{key}: expected {spec.type}, got {type(value).__name__} {value!r}")
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if spec.minimum is not None and value < spec.minimum:
                warnings.append(f"{key}: {value!r} is below {spec.minimum:g}")
            if spec.maximum is not None and value > spec.maximum:
                warnings.append(f"{key}: {value!r} is above {spec.maximum:g}")
        if spec.choices is not None and value not in spec.choices:
            warnings.append(f"{key}: {value!r} is not one of {', '.join(spec.choices)}")
        if key in ("accel_slug", "region") and isinstance(value, str) and not _LABEL.fullmatch(value):
            warnings.append(f"{key}: {value!r} is not a lower-case DNS label")
        if record == "CAPS" and spec.kind == "live":
            warnings.append(f"{key}: a live value; publish it in LOAD, not CAPS")
        elif record == "LOAD" and spec.kind == "static":
            warnings.append(f"{key}: a static property; publish it in CAPS, not LOAD")
    return warnings


def validate_load(mapping: Mapping[str, Any]) -> list[str]:
    """validate_caps for a LOAD map, plus the two keys every LOAD map should carry."""
    warnings = validate_caps(mapping, record="LOAD")
    for key in ("ts", "source"):
        if key not in mapping:
            warnings.append(f"{key}: missing; live values must say when and how they were taken")
    return warnings


def split_live(mapping: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split one imported map into (CAPS map, LOAD map) by registry kind; unknown keys go to CAPS."""
    caps: dict[str, Any] = {}
    load: dict[str, Any] = {}
    for key, value in mapping.items():
        spec = REGISTRY.get(key)
        (load if spec is not None and spec.kind == "live" else caps)[key] = value
    return caps, load


def _part(text: str | None) -> list[str]:
    if not text:
        return []
    cleaned = _SLUG_PART.sub("-", str(text).lower()).strip("-")
    return [t for t in cleaned.split("-") if t]


def memory_slug(memory_bytes: int) -> str:
    """``80gb`` for 80 GiB; measured sizes within 10% below a marketed size snap up to it."""
    gib = memory_bytes / 2**30
    for size in _MARKETED_GIB:
        if size >= gib - 1e-9:
            if gib >= size * _SNAP_FRACTION:
                return f"{size}gb"
            break
    return f"{max(1, round(gib))}gb"


def slug(vendor: str | None, model: str | None, form_factor: str | None = None,
         memory_bytes: int | None = None) -> str:
    """DNS-label-safe accelerator slug, e.g. ``slug("NVIDIA", "H100", "SXM5", 80 * 2**30)`` ->
    ``nvidia-h100-sxm5-80gb``. Tokens already present are not repeated (so a model string that
    already names its form factor or memory, like ``A100-SXM4-40GB``, yields the same slug)."""
    vendor_tokens = _part(vendor)
    alias = _VENDOR_ALIASES.get("-".join(vendor_tokens))
    if alias:
        vendor_tokens = [alias]
    tokens: list[str] = []
    parts = [vendor_tokens, _part(model), _part(form_factor)]
    if memory_bytes is not None:
        if not isinstance(memory_bytes, int) or isinstance(memory_bytes, bool) or memory_bytes <= 0:
            raise ValueError(f"memory_bytes must be a positive integer, got {memory_bytes!r}")
        parts.append([memory_slug(memory_bytes)])
    for part in parts:
        for token in part:
            if token not in tokens:
                tokens.append(token)
    if not tokens:
        raise ValueError("slug needs at least a vendor or a model")
    text = "-".join(tokens)
    while len(text) > SLUG_MAX:  # fits `_accel-<slug>` in one label; drop whole tokens, never cut one
        tokens.pop()
        text = "-".join(tokens)
    if not _LABEL.fullmatch(text):
        raise ValueError(f"cannot make a DNS label from {vendor!r} {model!r} {form_factor!r}")
    return text


def describe(key: str) -> KeySpec | None:
    return REGISTRY.get(key)



# --- discovery names (spec/discovery.md) -------------------------------------------------

SERVICE_LABEL = "_compute"
CHILDREN_LABEL = "_children"
# sub-type selector -> the CAPS key whose value it mirrors (spec/discovery.md §1.1)
SELECTORS: dict[str, str] = {"accel": "accel_slug", "vendor": "accel_vendor", "kind": "accel_kind",
                             "region": "region"}
_SUBTYPE = re.compile(r"_[a-z0-9](?:[a-z0-9-]{0,60}[a-z0-9])?")


def subtype_label(selector: str, value: Any) -> str | None:
    """``_<selector>-<value>``, or None when the value cannot be one lower-case label."""
    if selector not in SELECTORS or not isinstance(value, str):
        return None
    label = f"_{selector}-{value}"
    return label if _LABEL.fullmatch(value) and _SUBTYPE.fullmatch(label) else None


def browse_name(namespace: dns.name.Name | str, selector: str | None = None,
                value: Any = None) -> dns.name.Name:
    """``_compute.N.`` or, with a selector, ``_<selector>-<value>._sub._compute.N.``."""
    base = _absolute(namespace)
    service = dns.name.Name([SERVICE_LABEL.encode()]).concatenate(base)
    if selector is None:
        return service
    label = subtype_label(selector, value)
    if label is None:
        raise ValueError(f"no sub-type for {selector}={value!r}")
    return dns.name.Name([label.encode(), b"_sub"]).concatenate(service)


def children_name(namespace: dns.name.Name | str) -> dns.name.Name:
    """``_children._compute.N.``: PTRs to child namespaces."""
    return dns.name.Name([CHILDREN_LABEL.encode(), SERVICE_LABEL.encode()]).concatenate(_absolute(namespace))


def browse_names(namespace: dns.name.Name | str, caps: Mapping[str, Any]) -> list[dns.name.Name]:
    """Every browse name under which an identifier with these CAPS is listed in ``namespace``:
    ``_compute.N.`` and one sub-type name per selector whose CAPS value is label-safe."""
    names = [browse_name(namespace)]
    for selector, key in SELECTORS.items():
        if subtype_label(selector, caps.get(key)) is not None:
            names.append(browse_name(namespace, selector, caps[key]))
    return names


def selector_for(key: str, value: Any) -> tuple[str, Any] | None:
    """The sub-type to browse for an equality condition ``key=value``, if there is one."""
    for selector, caps_key in SELECTORS.items():
        if caps_key == key and subtype_label(selector, value) is not None:
            return selector, value
    return None


def _absolute(namespace: dns.name.Name | str) -> dns.name.Name:
    name = namespace if isinstance(namespace, dns.name.Name) else dns.name.from_text(str(namespace))
    if not name.is_absolute():
        raise ValueError(f"{namespace}: namespace must be absolute")
    return name
