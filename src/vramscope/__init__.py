"""vramscope: how much GPU memory does this model need to run, fine-tune or train, and what fits?

The package imports nothing heavy: the estimator is pure Python. ``estimate`` is the main entry point.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["estimate", "fit", "load_model", "VramscopeError", "Estimate", "__version__"]


def __getattr__(name: str) -> Any:  # lazy: `import vramscope` stays instant
    if name in ("estimate", "load_model", "estimate_resolved", "fit"):
        from . import api

        return getattr(api, name)
    if name == "VramscopeError":
        from .errors import VramscopeError

        return VramscopeError
    if name == "Estimate":
        from .result import Estimate

        return Estimate
    raise AttributeError(name)
