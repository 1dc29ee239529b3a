"""Convert what inventories already say into CAPS/LOAD maps (spec/capabilities.md §Import).

Sources: Kubernetes node labels (NVIDIA GPU Feature Discovery, AMD and Intel labellers),
Slurm node records and Gres strings, Akash provider attributes, OpenStack Placement resource
providers, and the DNS-SD TXT keys of
draft-liu-cats-dns-service-discovery. Units are converted to the registry's base units; an
input that has no registry key is kept under ``x-<source>`` as sorted ``[key, value]`` pairs,
never dropped, so a later registry version can map it without re-reading the inventory.
Live values (``accel_free``, ``load_ratio``, ...) come out in the same map; use
``registry.split_live`` to separate CAPS from LOAD.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable, Mapping

from . import registry

_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([A-Za-z]{0,2})$")
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
_FORM = re.compile(r"^(sxm[0-9]*|pcie|oam|nvl|mxm|hgx)$")
_MEMORY_TOKEN = re.compile(r"^([0-9]+)(gb|g|gib)$")
_DROP_TOKENS = {"tesla", "instinct", "hbm", "hbm2", "hbm2e", "hbm3", "hbm3e", "gddr6", "gddr6x"}
_VENDORS = ("nvidia", "amd", "intel", "huawei")
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


class InventoryValueError(ValueError):
    """An inventory value that names a known field but cannot be converted."""


def parse_quantity(text: str, *, binary_suffix_g: bool = False) -> int:
    """Bytes of a Kubernetes quantity: ``80Gi`` (2**30), ``16G`` (10**9), ``512Mi``, ``1024``.

    ``binary_suffix_g`` reads ``G``/``M``/``T`` as binary, for labellers (AMD's gpu.vram) that
    print GiB with a bare ``G``.
    """
    match = _QUANTITY.match(str(text).strip())
    if not match:
        raise InventoryValueError(f"not a quantity: {text!r}")
    number, suffix = Decimal(match.group(1)), match.group(2)
    if suffix in _BINARY:
        factor = _BINARY[suffix]
    elif suffix in _DECIMAL:  # Kubernetes: "m" is milli, not mega, so it is not listed
        factor = _BINARY[suffix.upper() + "i"] if binary_suffix_g and suffix else _DECIMAL[suffix]
    else:
        raise InventoryValueError(f"unknown quantity suffix in {text!r}")
    value = number * factor
    if value != value.to_integral_value():
        raise InventoryValueError(f"{text!r} is not a whole number of bytes")
    return int(value)


def parse_product(product: str) -> dict[str, Any]:
    """Split a product string (``NVIDIA-H100-80GB-HBM3``, ``A100-SXM4-40GB``,
    ``nvidia_h100_80gb_hbm3``, ``AMD_Instinct_MI300X``) into registry keys."""
    tokens = [t for t in re.split(r"[-_\s]+", product.lower()) if t]
    out: dict[str, Any] = {}
    model: list[str] = []
    for token in tokens:
        if token in _VENDORS and "accel_vendor" not in out:
            out["accel_vendor"] = token
        elif _FORM.match(token) and "accel_form_factor" not in out:
            out["accel_form_factor"] = token
        elif (m := _MEMORY_TOKEN.match(token)) and "accel_memory_bytes" not in out:
            out["accel_memory_bytes"] = int(m.group(1)) * 2**30  # marketed GB are GiB on devices
        elif token not in _DROP_TOKENS:
            model.append(token)
    if model:
        out["accel_model"] = "-".join(model)
    return out


def _with_slug(caps: dict[str, Any]) -> dict[str, Any]:
    if "accel_slug" not in caps and ("accel_vendor" in caps or "accel_model" in caps):
        try:
            caps["accel_slug"] = registry.slug(caps.get("accel_vendor"), caps.get("accel_model"),
                                               caps.get("accel_form_factor"), caps.get("accel_memory_bytes"))
        except ValueError:
            pass
    return caps


def _keep(caps: dict[str, Any], source: str, pairs: list[list[str]]) -> dict[str, Any]:
    if pairs:
        caps[registry.IMPORT_PREFIX + source] = sorted(pairs)
    return caps


def _int(text: Any) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise InventoryValueError(f"not an integer: {text!r}") from None
    if value < 0:
        raise InventoryValueError(f"negative count: {text!r}")
    return value


def from_k8s_labels(labels: Mapping[str, str]) -> dict[str, Any]:
    """CAPS map from a node's labels (GFD ``nvidia.com/gpu.*``, ``amd.com/gpu.*``,
    ``gpu.intel.com/*``, ``topology.kubernetes.io/*``, ``kubernetes.io/arch``)."""
    caps: dict[str, Any] = {}
    kept: list[list[str]] = []
    major = labels.get("nvidia.com/gpu.compute.major")
    minor = labels.get("nvidia.com/gpu.compute.minor")
    for key in sorted(labels):
        value = str(labels[key])
        try:
            if key == "nvidia.com/gpu.product":
                caps.update({"accel_kind": "gpu", "accel_vendor": "nvidia", "accel_product": value})
                caps.update({k: v for k, v in parse_product(value).items() if k not in caps})
            elif key == "nvidia.com/gpu.count":
                caps["accel_count"] = _int(value)
            elif key == "nvidia.com/gpu.memory":  # MiB, measured by the driver
                caps["accel_memory_bytes"] = _int(value) * 2**20
            elif key == "nvidia.com/gpu.family":
                caps["accel_arch"] = value.lower()
            elif key in ("nvidia.com/gpu.compute.major", "nvidia.com/gpu.compute.minor"):
                if major is None or minor is None:
                    raise InventoryValueError("compute capability needs both major and minor")
                caps["accel_compute_capability"] = f"{_int(major)}.{_int(minor)}"
            elif key == "amd.com/gpu.product-name":
                caps.update({"accel_kind": "gpu", "accel_vendor": "amd", "accel_product": value})
                caps.update({k: v for k, v in parse_product(value).items() if k not in caps})
            elif key == "amd.com/gpu.vram":
                caps["accel_memory_bytes"] = parse_quantity(value, binary_suffix_g=True)
            elif key == "amd.com/gpu.count":
                caps["accel_count"] = _int(value)
            elif key == "gpu.intel.com/product":
                caps.update({"accel_kind": "gpu", "accel_vendor": "intel", "accel_product": value})
                caps.update({k: v for k, v in parse_product(value).items() if k not in caps})
            elif key == "gpu.intel.com/device.count":
                caps["accel_count"] = _int(value)
            elif key == "gpu.intel.com/memory.max":  # bytes
                caps["accel_memory_bytes"] = _int(value)
            elif key == "topology.kubernetes.io/region":
                caps["region"] = value.lower()
            elif key == "topology.kubernetes.io/zone":
                caps["zone"] = value.lower()
            elif key == "kubernetes.io/arch":
                caps["cpu_arch"] = _ARCH.get(value.lower(), value.lower())
            else:
                kept.append([key, value])
        except InventoryValueError:
            kept.append([key, value])
    return _keep(_with_slug(caps), "k8s", kept)


def _split_gres(gres: str) -> list[str]:
    items, depth, current = [], 0, ""
    for ch in gres:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += ch
    items.append(current)
    return [item.strip() for item in items if item.strip()]


def _gres_gpus(gres: str) -> tuple[int, set[str], bool]:
    """(GPU count, GPU types, whether something else was in the string)."""
    count, types, other = 0, set(), False
    for item in _split_gres(gres):
        body = item.split("(", 1)[0]
        fields = body.split(":")
        if fields[0] != "gpu" or len(fields) > 3:
            other = True
            continue
        if len(fields) == 3:
            types.add(fields[1])
            count += _int(fields[2])
        elif len(fields) == 2 and fields[1].isdigit():
            count += int(fields[1])
        elif len(fields) == 2:
            types.add(fields[1])
            count += 1
        else:
            count += 1
    return count, types, other


def from_slurm_gres(gres: str) -> dict[str, Any]:
    """CAPS map from a Slurm ``Gres=`` value: ``gpu:a100:8``, ``gpu:nvidia_h100_80gb_hbm3:4(S:0-1)``."""
    caps: dict[str, Any] = {}
    try:
        count, types, other = _gres_gpus(gres)
    except InventoryValueError:
        return _keep(caps, "slurm", [["Gres", gres]])
    if count:
        caps["accel_kind"] = "gpu"
        caps["accel_count"] = count
    if len(types) == 1:
        (gpu_type,) = types
        caps["accel_product"] = gpu_type
        caps.update(parse_product(gpu_type))
    if other or len(types) > 1:
        return _keep(_with_slug(caps), "slurm", [["Gres", gres]])
    return _with_slug(caps)


def from_slurm_node(fields: Mapping[str, str]) -> dict[str, Any]:
    """CAPS (+ live) map from ``scontrol show node`` fields: CPUs, RealMemory (Slurm "MB" are
    MiB), Arch, Gres, GresUsed (gives ``accel_free``), CPUAlloc (gives ``cpu_free``)."""
    caps: dict[str, Any] = {}
    kept: list[list[str]] = []
    for key in sorted(fields):
        value = str(fields[key])
        try:
            if key == "CPUs":
                caps["cpu_count"] = _int(value)
            elif key == "RealMemory":
                caps["memory_bytes"] = _int(value) * 2**20
            elif key == "Arch":
                caps["cpu_arch"] = _ARCH.get(value.lower(), value.lower())
            elif key == "Gres":
                gres_caps = from_slurm_gres(value)
                kept.extend(gres_caps.pop(registry.IMPORT_PREFIX + "slurm", []))
                caps.update(gres_caps)
            elif key == "GresUsed":
                used, _, _ = _gres_gpus(value)
                total, _, _ = _gres_gpus(fields.get("Gres", ""))
                if total < used:
                    raise InventoryValueError("more GPUs used than installed")
                caps["accel_free"] = total - used
            elif key == "CPUAlloc" and "CPUs" in fields:
                caps["cpu_free"] = max(0, _int(fields["CPUs"]) - _int(value))
            else:
                kept.append([key, value])
        except InventoryValueError:
            kept.append([key, value])
    return _keep(caps, "slurm", kept)


def from_akash(attributes: Mapping[str, str] | Iterable[Mapping[str, str]]) -> dict[str, Any]:
    """CAPS map from Akash provider attributes (``capabilities/gpu/vendor/nvidia/model/h100/
    ram/80Gi/interface/sxm``) or SDL-style keys (``vendor/nvidia/model/h100``, ``units``,
    ``ram``, ``interface``, ``memory.size``, ``cpu.units``, ``region``)."""
    if isinstance(attributes, Mapping):
        items = [(str(k), str(v)) for k, v in attributes.items()]
    else:
        items = [(str(a["key"]), str(a["value"])) for a in attributes]
    caps: dict[str, Any] = {}
    kept: list[list[str]] = []
    for key, value in sorted(items):
        path = key.split("/")
        try:
            if "vendor" in path and "model" in path:
                i, j = path.index("vendor"), path.index("model")
                if j != i + 2 or j + 1 >= len(path):
                    raise InventoryValueError("vendor/<v>/model/<m> expected")
                caps.update({"accel_kind": "gpu", "accel_vendor": path[i + 1].lower(),
                             "accel_model": path[j + 1].lower()})
                rest = path[j + 2:]
                for name, item in zip(rest[::2], rest[1::2]):
                    if name == "ram":
                        caps["accel_memory_bytes"] = parse_quantity(item)
                    elif name == "interface":
                        caps["accel_form_factor"] = item.lower()
                    else:
                        raise InventoryValueError(f"unknown GPU attribute {name}")
                if len(rest) % 2:
                    raise InventoryValueError("dangling GPU attribute")
            elif key == "units":
                caps["accel_count"] = _int(value)
            elif key == "ram":
                caps["accel_memory_bytes"] = parse_quantity(value)
            elif key == "interface":
                caps["accel_form_factor"] = value.lower()
            elif key == "memory.size":
                caps["memory_bytes"] = parse_quantity(value)
            elif key == "cpu.units":
                caps["cpu_count"] = _int(value)  # fractional/milli CPUs are kept, not rounded
            elif key == "region":
                caps["region"] = value.lower()
            else:
                kept.append([key, value])
        except InventoryValueError:
            kept.append([key, value])
    return _keep(_with_slug(caps), "akash", kept)


def _txt_items(txt: Mapping[str, Any] | Iterable[str | bytes]) -> list[tuple[str, str]]:
    if isinstance(txt, Mapping):
        return [(str(k), str(v)) for k, v in txt.items()]
    items = []
    for entry in txt:
        text = entry.decode("utf-8", "replace") if isinstance(entry, bytes) else str(entry)
        key, _, value = text.partition("=")  # RFC 6763 §6.3: key ends at the first "="
        items.append((key, value))
    return items


def _number(text: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise InventoryValueError(f"not a number: {text!r}") from None
    if not value.is_finite() or value < 0:
        raise InventoryValueError(f"not a non-negative number: {text!r}")
    return value


def from_cats_txt(txt: Mapping[str, Any] | Iterable[str | bytes]) -> dict[str, Any]:
    """Map of draft-liu-cats-dns-service-discovery TXT keys: ``cpu`` (cores), ``mem`` (MB =
    10**6 bytes), ``lat`` (ms), ``load`` (0-100), ``gpu``/``accel`` (a count, or a model or
    kind name), ``cost`` (price per hour, currency unstated). Keys are case-insensitive
    (RFC 6763 §6.4); the result holds static and live keys (see registry.split_live)."""
    caps: dict[str, Any] = {}
    kept: list[list[str]] = []
    for raw_key, value in _txt_items(txt):
        key = raw_key.lower()
        try:
            if key == "cpu":
                caps["cpu_count"] = _int(value)
            elif key == "mem":
                caps["memory_bytes"] = int(_number(value) * 10**6)
            elif key == "lat":
                caps["latency_s"] = float(_number(value) / 1000)
            elif key == "load":
                load = _number(value)
                if load > 100:
                    raise InventoryValueError("load above 100")
                caps["load_ratio"] = float(load / 100)
            elif key in ("gpu", "accel"):
                text = value.strip()
                if text.isdigit():
                    caps["accel_count"] = int(text)
                    if key == "gpu":
                        caps["accel_kind"] = "gpu"
                elif key == "accel" and text.lower() in registry.REGISTRY["accel_kind"].choices:
                    caps["accel_kind"] = text.lower()
                elif text:
                    caps["accel_product"] = text
                    caps.update(parse_product(text))
                    if key == "gpu":
                        caps["accel_kind"] = "gpu"
                else:
                    raise InventoryValueError("empty value")
            elif key == "cost":
                caps["price_per_hour"] = float(_number(value))
            else:
                kept.append([raw_key, value])
        except InventoryValueError:
            kept.append([raw_key, value])
    return _keep(_with_slug(caps), "cats", kept)


_CUDA_TRAIT = re.compile(r"^HW_GPU_CUDA_COMPUTE_CAPABILITY_V(\d+)_(\d+)$")


def from_placement(inventories: Mapping[str, Mapping[str, Any]],
                   usages: Mapping[str, int] | None = None,
                   traits: Iterable[str] = ()) -> dict[str, Any]:
    """Map of an OpenStack Placement resource provider: inventories (``VCPU``/``PCPU``,
    ``MEMORY_MB`` in MiB, ``DISK_GB`` in GiB, ``PGPU``/``VGPU``), usages (give ``*_free`` =
    total - reserved - used) and traits (``HW_GPU_CUDA_COMPUTE_CAPABILITY_V9_0``). Other
    resource classes and traits are kept under ``x-placement``."""
    caps: dict[str, Any] = {}
    kept: list[list[str]] = []
    usages = usages or {}
    scale = {"MEMORY_MB": ("memory_bytes", "memory_free_bytes", 2**20),
             "DISK_GB": ("storage_bytes", None, 2**30),
             "VCPU": ("cpu_count", "cpu_free", 1), "PCPU": ("cpu_count", "cpu_free", 1),
             "PGPU": ("accel_count", "accel_free", 1), "VGPU": ("accel_count", "accel_free", 1)}
    for rc in sorted(inventories):
        inv = inventories[rc]
        try:
            if rc not in scale:
                raise InventoryValueError(rc)
            total_key, free_key, factor = scale[rc]
            total = _int(inv.get("total", 0))
            ratio = Decimal(str(inv.get("allocation_ratio", 1)))
            capacity = int((total - _int(inv.get("reserved", 0))) * ratio)
            caps[total_key] = caps.get(total_key, 0) + total * factor
            if free_key is not None and rc in usages:
                free = max(0, capacity - _int(usages[rc]))
                caps[free_key] = caps.get(free_key, 0) + free * factor
            if rc in ("PGPU", "VGPU"):
                caps["accel_kind"] = "gpu"
        except (InventoryValueError, InvalidOperation, AttributeError):
            kept.append([f"inventory:{rc}", json.dumps(inv, sort_keys=True, default=str)])
    for trait in sorted(set(traits)):
        if m := _CUDA_TRAIT.match(trait):
            caps["accel_compute_capability"] = f"{int(m.group(1))}.{int(m.group(2))}"
        else:
            kept.append([f"trait:{trait}", "true"])
    return _keep(caps, "placement", kept)
