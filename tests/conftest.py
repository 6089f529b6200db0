import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

# Tests never reach the network: the Hub client, if installed, is forced offline.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.pop("VRAMSCOPE_LANG", None)


def has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


requires_torch = pytest.mark.skipif(not has_module("torch") or not has_module("transformers"),
                                    reason="needs the trace extra: pip install 'vramscope[trace]'")
