import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def pytest_collection_modifyitems(config, items) -> None:
    """Tests marked ``slow`` (long fuzz and soak runs) are left out of the default run, which
    must stay within its ~10-minute budget; ``-m slow`` (or any -m naming it) runs them."""
    if "slow" in (config.getoption("markexpr") or ""):
        return
    keep = [item for item in items if item.get_closest_marker("slow") is None]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item.get_closest_marker("slow")])
        items[:] = keep
