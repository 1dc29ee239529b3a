"""What the demo federation contains: namespaces, their servers, and the compute they list.

Pure data and zone building; signing, files and serving live in resolver/demo/build.py.
Capability keys follow the registry in spec/capabilities.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

APEX = "cid."
GIB = 1024**3


@dataclass(frozen=True)
class Resource:
    """One identifier: a pool, cluster or inference endpoint with its endpoints and capabilities."""

    label: str
    caps: dict
    load: dict
    port: int = 8443
    alpn: tuple[str, ...] = ("h2",)
    gateway: bool = False  # also reachable through the namespace's shared gateway (SVCB priority 2)


@dataclass(frozen=True)
class Namespace:
    """One zone, served by its own server on its own loopback address."""

    name: str
    host: int  # last octet of 127.0.10.x
    signed: bool = True
    children: tuple[str, ...] = ()
    resources: tuple[Resource, ...] = field(default_factory=tuple)
    region: str | None = None


def _accel(vendor: str, model: str, form: str, mem_gib: int, count: int, arch: str) -> dict:
    return {
        "accel_kind": "gpu",
        "accel_vendor": vendor,
        "accel_model": model,
        "accel_form_factor": form,
        "accel_memory_bytes": mem_gib * GIB,
        "accel_count": count,
        "accel_arch": arch,
        "accel_slug": f"{vendor}-{model}-{form}-{mem_gib}gb",
    }


def _pool(label: str, region: str, accel: dict, cpus: int, mem_gib: int, free: int, util: float,
          price: float, *, kind: str = "gpu-pool", extra: dict | None = None,
          gateway: bool = False) -> Resource:
    caps = {
        "version": 1,
        "kind": kind,
        "region": region,
        "currency": "CNY" if region.startswith("cn-") else "USD",
        "cpu_count": cpus,
        "memory_bytes": mem_gib * GIB,
        **accel,
        **(extra or {}),
    }
    load = {
        "accel_free": free,
        "accel_util_ratio": util,
        "queue_depth": max(0, int(util * 10) - free),
        "price_per_hour": price,
        "source": "measured",
        "version": 1,
    }
    return Resource(label, caps, load, gateway=gateway)


H100 = _accel("nvidia", "h100", "sxm5", 80, 8, "hopper")
A100 = _accel("nvidia", "a100", "sxm4", 40, 8, "ampere")
L4 = _accel("nvidia", "l4", "pcie", 24, 4, "ada")
MI300X = _accel("amd", "mi300x", "oam", 192, 8, "cdna3")
GAUDI2 = _accel("intel", "gaudi2", "oam", 96, 8, "gaudi")


def namespaces() -> list[Namespace]:
    """The federation: apex → three operators (one unsigned) → regions → resources."""
    return [
        Namespace("cid.", 1, children=("cmcc.cid.", "acme.cid.", "plain.cid.")),
        Namespace("cmcc.cid.", 2, children=("bj.cmcc.cid.", "sh.cmcc.cid.")),
        Namespace("acme.cid.", 3, children=("us-east.acme.cid.", "eu-west.acme.cid.")),
        Namespace("plain.cid.", 8, signed=False, region="cn-gz", resources=(
            _pool("cpu-1", "cn-gz", {}, 128, 512, 0, 0.2, 0.9, kind="cluster"),
            _pool("l4-1", "cn-gz", L4, 32, 128, 3, 0.25, 0.6),
            _pool("l4-2", "cn-gz", L4, 32, 128, 1, 0.75, 0.6),
        )),
        Namespace("bj.cmcc.cid.", 4, region="cn-bj", resources=(
            _pool("pool-7", "cn-bj", H100, 224, 2048, 5, 0.38, 21.5, gateway=True),
            _pool("pool-8", "cn-bj", H100, 224, 2048, 0, 1.0, 21.5, gateway=True),
            _pool("pool-9", "cn-bj", A100, 128, 1024, 6, 0.25, 9.8),
            _pool("l4-edge", "cn-bj", L4, 32, 128, 4, 0.0, 0.7),
            _pool("llama-70b", "cn-bj", H100, 224, 2048, 2, 0.75, 0.0, kind="inference-endpoint",
                  extra={"model": "llama-3-70b-instruct", "max_context_tokens": 8192}),
            _pool("cpu-batch", "cn-bj", {}, 512, 4096, 0, 0.6, 2.4, kind="cluster"),
        )),
        Namespace("sh.cmcc.cid.", 5, region="cn-sh", resources=(
            _pool("pool-1", "cn-sh", A100, 128, 1024, 8, 0.0, 9.2),
            _pool("pool-2", "cn-sh", A100, 128, 1024, 3, 0.63, 9.2),
            _pool("mi-1", "cn-sh", MI300X, 192, 2048, 7, 0.13, 14.0),
            _pool("qwen-72b", "cn-sh", A100, 128, 1024, 1, 0.88, 0.0, kind="inference-endpoint",
                  extra={"model": "qwen2-72b-instruct", "max_context_tokens": 32768}),
            _pool("gaudi-1", "cn-sh", GAUDI2, 160, 1024, 8, 0.0, 8.1),
        )),
        Namespace("us-east.acme.cid.", 6, region="us-east", resources=(
            _pool("h100-a", "us-east", H100, 224, 2048, 1, 0.88, 24.0, gateway=True),
            _pool("h100-b", "us-east", H100, 224, 2048, 8, 0.0, 24.0, gateway=True),
            _pool("mi300-a", "us-east", MI300X, 192, 2048, 4, 0.5, 15.5),
            _pool("mixtral", "us-east", H100, 224, 2048, 3, 0.63, 0.0, kind="inference-endpoint",
                  extra={"model": "mixtral-8x22b-instruct", "max_context_tokens": 65536}),
        )),
        Namespace("eu-west.acme.cid.", 7, region="eu-west", resources=(
            _pool("a100-1", "eu-west", A100, 128, 1024, 2, 0.75, 11.0),
            _pool("gaudi-eu", "eu-west", GAUDI2, 160, 1024, 6, 0.25, 7.9),
            _pool("l4-eu", "eu-west", L4, 32, 128, 4, 0.0, 0.8),
        )),
    ]
