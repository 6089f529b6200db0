import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

# Tests never reach the network: the Hub client, if installed, is forced offline.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.pop("VRAMSCOPE_LANG", None)
# The transformers whose caches estimates model is pinned (the installed one is the default otherwise), so that
# expected numbers do not follow the installed version; tests/test_kv_real.py runs the installed one for real.
os.environ["VRAMSCOPE_TRANSFORMERS_VERSION"] = "5.24.0"


def has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


requires_torch = pytest.mark.skipif(not has_module("torch") or not has_module("transformers"),
                                    reason="needs the trace extra: pip install 'vramscope[trace]'")


def pytest_sessionfinish(session, exitstatus):
    """With VRAMSCOPE_RELIABILITY_OUT set, write the hostile-input tallies (bench/reliability.py reads them)."""
    out = os.environ.get("VRAMSCOPE_RELIABILITY_OUT")
    if not out:
        return
    import json

    mod = sys.modules.get("hostile_util")
    rows = [] if mod is None else [
        {"suite": k[0], "how": k[1], "outcome": k[2], "count": v[0], "worst_s": round(v[1], 4)}
        for k, v in sorted(mod.TALLY.items())]
    import resource

    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # this pytest process's own peak (Linux: KiB)
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"rows": rows, "max_rss_kib": peak_kib}, f, indent=1)


def distinct_storage_bytes(tensors) -> int:
    """Bytes of the distinct storages the given tensors keep alive (non-tensors skipped; a view of a storage
    already counted adds nothing; empty storages, which may share a null pointer, each count their 0 bytes)."""
    import torch

    seen, total = set(), 0
    for t in tensors:
        if isinstance(t, torch.Tensor):
            s = t.untyped_storage()
            if s.data_ptr() not in seen or s.nbytes() == 0:
                seen.add(s.data_ptr())
                total += s.nbytes()
    return total

