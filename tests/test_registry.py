"""Capability key registry, slug and inventory importers (spec/capabilities.md)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from resolver.records import capsmap, importers, registry
from resolver.records.importers import InventoryValueError, parse_quantity
from resolver.records.registry import REGISTRY, slug, split_live, validate_caps, validate_load

GiB, MiB = 2**30, 2**20


def test_registry_keys_follow_the_key_syntax_and_conventions():
    for name, spec in REGISTRY.items():
        assert capsmap.KEY_RE.fullmatch(name), name
        assert spec.kind in ("static", "live", "any")
        if name.endswith("_bytes"):
            assert spec.unit == "bytes" and spec.type == "int", name
        if name.endswith("_count") or name.endswith("_free"):
            assert spec.type == "int" and spec.minimum == 0, name
        if name.endswith("_norm") or name == "norm_fi":
            assert (spec.minimum, spec.maximum) == (0, 10) and spec.cats == name and spec.kind == "live"
        if name.endswith("_ratio"):
            assert (spec.minimum, spec.maximum) == (0, 1)
    # every registry key appears in the normative document, and vice versa
    doc = (Path(__file__).resolve().parent.parent / "spec" / "capabilities.md").read_text()
    table = doc.split("<!-- registry:begin -->")[1].split("<!-- registry:end -->")[0]
    documented = set(re.findall(r"^\| `([a-z0-9_.\-]+)` \| (\S+) \|", table, re.M))
    assert {(k, REGISTRY[k].type) for k, _ in documented if k in REGISTRY} == documented
    assert {k for k, _ in documented} == set(REGISTRY)


def test_validate_caps_warns_but_never_rejects_unknown_keys():
    assert validate_caps({"accel_count": 8, "accel_slug": "nvidia-h100-sxm5-80gb", "vendor-private": {"x": 1}}) == []
    warnings = validate_caps({"accel_count": "8", "accel_memory_bytes": 80.0, "compute_norm": 11, "region": "BJ",
                              "accel_kind": "quantum", "cpu_count": True, "ts": 1})
    text = "\n".join(warnings)
    assert "accel_count: expected int" in text
    assert "accel_memory_bytes: expected int" in text
    assert "cpu_count: expected int" in text  # bool is not an int here
    assert "compute_norm: 11 is above 10" in text
    assert "region: 'BJ' is not a lower-case DNS label" in text
    assert "accel_kind: 'quantum' is not one of" in text
    assert "ts: a live value" in text and "compute_norm: a live value" in text


def test_validate_load():
    assert validate_load({"ts": 1764070000, "source": "measured", "accel_free": 3, "x": 1}) == []
    text = "\n".join(validate_load({"accel_free": -1, "source": "guess", "region": "bj"}))
    assert "ts: missing" in text and "accel_free: -1 is below 0" in text
    assert "source: 'guess' is not one of" in text and "region: a static property" in text


def test_split_live_keeps_every_key():
    caps, load = split_live({"accel_count": 8, "accel_free": 3, "ts": 1, "x-k8s": [["a", "b"]], "mine": 1})
    assert caps == {"accel_count": 8, "x-k8s": [["a", "b"]], "mine": 1}
    assert load == {"accel_free": 3, "ts": 1}


@pytest.mark.parametrize("args, expected", [
    (("NVIDIA", "H100", "SXM5", 80 * GiB), "nvidia-h100-sxm5-80gb"),
    (("nvidia", "A100-SXM4-40GB", "sxm4", 39538 * MiB), "nvidia-a100-sxm4-40gb"),  # measured MiB snaps to 40
    (("NVIDIA Corporation", "H100", "PCIe", 81559 * MiB), "nvidia-h100-pcie-80gb"),
    (("Advanced Micro Devices, Inc.", "MI300X", "OAM", 192 * GiB), "amd-mi300x-oam-192gb"),
    (("nvidia", "H200", "SXM5", 143771 * MiB), "nvidia-h200-sxm5-141gb"),
    (("intel", "Max 1550", None, None), "intel-max-1550"),
    ((None, "a100", None, 50 * GiB), "a100-50gb"),  # no marketed size within 10%: plain rounding
])
def test_slug(args, expected):
    assert slug(*args) == expected


def test_slug_is_always_one_dns_label():
    assert len(slug("v" * 40, "m" * 40, "f" * 40)) <= registry.SLUG_MAX == 56
    with pytest.raises(ValueError):
        slug(None, None)
    with pytest.raises(ValueError):
        slug("nvidia", "h100", None, 0)
    with pytest.raises(ValueError):
        slug("—", "!!")


def test_parse_quantity():
    assert parse_quantity("80Gi") == 80 * GiB
    assert parse_quantity("16G") == 16 * 10**9
    assert parse_quantity("16G", binary_suffix_g=True) == 16 * GiB
    assert parse_quantity("512Mi") == 512 * MiB
    assert parse_quantity("1.5Gi") == 3 * GiB // 2
    assert parse_quantity("1024") == 1024
    for bad in ("500m", "1.5", "80GB", "", "Gi", "-1Gi", "1e3"):
        with pytest.raises(InventoryValueError):
            parse_quantity(bad)


def _encodable(mapping):
    capsmap.encode(mapping)  # every importer output is a valid CAPS map
    return mapping


def test_k8s_gfd_labels():
    caps = _encodable(importers.from_k8s_labels({
        "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu.count": "8",
        "nvidia.com/gpu.memory": "81559", "nvidia.com/gpu.family": "hopper",
        "nvidia.com/gpu.compute.major": "9", "nvidia.com/gpu.compute.minor": "0",
        "topology.kubernetes.io/region": "CN-North-1", "kubernetes.io/arch": "amd64",
        "nvidia.com/gpu.present": "true", "node.kubernetes.io/instance-type": "p5.48xlarge",
    }))
    assert caps["accel_vendor"] == "nvidia" and caps["accel_model"] == "h100"
    assert caps["accel_count"] == 8 and caps["accel_memory_bytes"] == 81559 * MiB
    assert caps["accel_arch"] == "hopper" and caps["accel_compute_capability"] == "9.0"
    assert caps["accel_product"] == "NVIDIA-H100-80GB-HBM3"
    assert caps["accel_slug"] == "nvidia-h100-80gb" and caps["region"] == "cn-north-1"
    assert caps["x-k8s"] == [["node.kubernetes.io/instance-type", "p5.48xlarge"], ["nvidia.com/gpu.present", "true"]]
    assert validate_caps(caps) == []


def test_k8s_amd_intel_and_bad_values_are_kept():
    amd = _encodable(importers.from_k8s_labels({"amd.com/gpu.product-name": "AMD_Instinct_MI300X",
                                                "amd.com/gpu.vram": "192G"}))
    assert amd["accel_slug"] == "amd-mi300x-192gb" and amd["accel_memory_bytes"] == 192 * GiB
    intel = _encodable(importers.from_k8s_labels({"gpu.intel.com/product": "Max_1550",
                                                  "gpu.intel.com/device.count": "4",
                                                  "gpu.intel.com/memory.max": str(128 * GiB)}))
    assert intel["accel_vendor"] == "intel" and intel["accel_count"] == 4
    assert intel["accel_slug"] == "intel-max-1550-128gb"
    broken = _encodable(importers.from_k8s_labels({"nvidia.com/gpu.count": "eight", "nvidia.com/gpu.compute.major": "9"}))
    assert broken == {"x-k8s": [["nvidia.com/gpu.compute.major", "9"], ["nvidia.com/gpu.count", "eight"]]}


def test_slurm():
    caps = _encodable(importers.from_slurm_gres("gpu:nvidia_h100_80gb_hbm3:4(S:0-1)"))
    assert caps == {"accel_kind": "gpu", "accel_count": 4, "accel_product": "nvidia_h100_80gb_hbm3",
                    "accel_vendor": "nvidia", "accel_model": "h100", "accel_memory_bytes": 80 * GiB,
                    "accel_slug": "nvidia-h100-80gb"}
    mixed = _encodable(importers.from_slurm_gres("gpu:a100:4,gpu:v100:2,mps:200"))
    assert mixed["accel_count"] == 6 and "accel_model" not in mixed
    assert mixed["x-slurm"] == [["Gres", "gpu:a100:4,gpu:v100:2,mps:200"]]
    node = _encodable(importers.from_slurm_node({"CPUs": "64", "RealMemory": "515000", "Arch": "x86_64",
                                                 "Gres": "gpu:a100:8", "GresUsed": "gpu:a100:3(IDX:0-2)",
                                                 "CPUAlloc": "16", "State": "MIXED"}))
    assert node["memory_bytes"] == 515000 * MiB and node["cpu_arch"] == "amd64"
    assert node["accel_free"] == 5 and node["cpu_free"] == 48
    assert node["x-slurm"] == [["State", "MIXED"]]
    caps_part, load_part = split_live(node)
    assert load_part == {"accel_free": 5, "cpu_free": 48}


def test_akash():
    flat = _encodable(importers.from_akash({
        "capabilities/gpu/vendor/nvidia/model/h100/ram/80Gi/interface/sxm": "true",
        "region": "us-west", "host": "akash"}))
    assert flat["accel_slug"] == "nvidia-h100-sxm-80gb" and flat["region"] == "us-west"
    assert flat["x-akash"] == [["host", "akash"]]
    sdl = _encodable(importers.from_akash([
        {"key": "vendor/nvidia/model/a100", "value": "true"}, {"key": "units", "value": "2"},
        {"key": "ram", "value": "40Gi"}, {"key": "interface", "value": "pcie"},
        {"key": "memory.size", "value": "512Gi"}, {"key": "cpu.units", "value": "500m"}]))
    assert sdl["accel_count"] == 2 and sdl["accel_slug"] == "nvidia-a100-pcie-40gb"
    assert sdl["memory_bytes"] == 512 * GiB and sdl["x-akash"] == [["cpu.units", "500m"]]


def test_cats_dns_txt_keys():
    got = _encodable(importers.from_cats_txt([b"cpu=32", "MEM=65536", "lat=12.5", "load=40", "gpu=4",
                                               "cost=2.5", "site=bj", "load=x"]))
    assert got["cpu_count"] == 32 and got["memory_bytes"] == 65536 * 10**6
    assert got["latency_s"] == pytest.approx(0.0125) and got["load_ratio"] == pytest.approx(0.4)
    assert got["accel_count"] == 4 and got["accel_kind"] == "gpu" and got["price_per_hour"] == 2.5
    assert got["x-cats"] == [["load", "x"], ["site", "bj"]]
    named = _encodable(importers.from_cats_txt({"gpu": "H100-SXM5-80GB", "accel": "npu", "load": "101"}))
    assert named["accel_slug"] == "h100-sxm5-80gb" and named["accel_kind"] == "npu"
    assert named["x-cats"] == [["load", "101"]]


def test_openstack_placement():
    got = _encodable(importers.from_placement(
        {"VCPU": {"total": 64, "reserved": 4}, "MEMORY_MB": {"total": 515000, "reserved": 512},
         "DISK_GB": {"total": 1000}, "PGPU": {"total": 8}, "CUSTOM_FPGA": {"total": 1}},
        {"VCPU": 20, "MEMORY_MB": 1000, "PGPU": 3},
        ["HW_GPU_CUDA_COMPUTE_CAPABILITY_V9_0", "CUSTOM_GPU_PRODUCT_ID_2330"]))
    assert got["cpu_count"] == 64 and got["cpu_free"] == 40
    assert got["memory_bytes"] == 515000 * MiB and got["memory_free_bytes"] == (515000 - 512 - 1000) * MiB
    assert got["storage_bytes"] == 1000 * GiB
    assert got["accel_count"] == 8 and got["accel_free"] == 5 and got["accel_compute_capability"] == "9.0"
    assert got["x-placement"] == [["inventory:CUSTOM_FPGA", '{"total": 1}'],
                                  ["trait:CUSTOM_GPU_PRODUCT_ID_2330", "true"]]


def test_browse_names_follow_rfc6763_subtypes():
    import dns.name

    from resolver import identifier

    caps = {"accel_slug": "nvidia-h100-sxm5-80gb", "accel_vendor": "nvidia", "accel_kind": "gpu",
            "region": "bj", "accel_model": "h100"}
    names = [n.to_text() for n in registry.browse_names("bj.cmcc.cid.", caps)]
    assert names == ["_compute.bj.cmcc.cid.",
                     "_accel-nvidia-h100-sxm5-80gb._sub._compute.bj.cmcc.cid.",
                     "_vendor-nvidia._sub._compute.bj.cmcc.cid.",
                     "_kind-gpu._sub._compute.bj.cmcc.cid.",
                     "_region-bj._sub._compute.bj.cmcc.cid."]
    for name in names:  # every browse name is a valid '_'-label name
        identifier.parse(name, allow_underscore=True)
    assert registry.children_name(dns.name.from_text("cmcc.cid.")).to_text() == "_children._compute.cmcc.cid."
    # values that are not one lower-case label get no sub-type, and never a malformed name
    odd = {"region": "BJ", "accel_vendor": "a" * 60, "accel_kind": 3, "accel_slug": "x_y"}
    assert [n.to_text() for n in registry.browse_names("cid.", odd)] == ["_compute.cid."]
    assert registry.selector_for("region", "bj") == ("region", "bj")
    assert registry.selector_for("region", "BJ") is None
    assert registry.selector_for("cpu_count", 8) is None
    with pytest.raises(ValueError):
        registry.browse_name("cid.", "vendor", "Not A Label")
    with pytest.raises(ValueError):
        registry.children_name(dns.name.from_text("relative", origin=None))
    longest = registry.slug("v" * 20, "m" * 20, "f" * 20, 80 * GiB)
    assert len(registry.subtype_label("accel", longest)) <= 63
