"""The vision towers' forward peak per patch: transformers 5.24's own towers traced on fake tensors on the CPU
(``vramscope.trace.vision``) beside vramscope's per-layer accounting of them and of vLLM 0.33.0's own modules
(``memory/image_tokens.py tower_layer_bytes``); the figures in docs/accuracy.md. Needs the trace extra::

    PYTHONPATH=src python bench/vision_tower_trace.py [--layers 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from vramscope.memory.image_tokens import tower_layer_bytes  # noqa: E402
from vramscope.sources import catalog  # noqa: E402
from vramscope.sources.hf_config import spec_from_config  # noqa: E402

#: (model, one item's Qwen grid)
MODELS = (("Qwen/Qwen2.5-VL-7B-Instruct", (1, 64, 64)), ("Qwen/Qwen2-VL-7B-Instruct", (1, 64, 64)),
          ("Qwen/Qwen3-VL-8B-Instruct", (1, 64, 64)), ("llava-hf/llava-1.5-7b-hf", (1, 0, 0)),
          ("google/gemma-3-4b-pt", (1, 0, 0)), ("internvl", (1, 0, 0)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=3,
                    help="tower depth traced (every layer frees its work: 3 peaks as the full depth does)")
    args = ap.parse_args()
    from vramscope.trace.vision import trace_tower

    print(f"{'model':32s} {'patches':>8s} {'trace B/patch':>14s} {'ours':>9s} {'error':>7s} {'vLLM':>9s}")
    for model, grid in MODELS:
        if model == "internvl":
            import transformers

            cfg = transformers.InternVLConfig().to_dict()
        else:
            cfg = catalog.find(model)["config"]
        vs = spec_from_config(cfg, cfg["model_type"]).vision
        r = trace_tower(cfg, grid, items=2, layers=args.layers)
        traced = r.peak_bytes / r.patches
        ours = tower_layer_bytes(vs, 2, impl="transformers")
        print(f"{model:32s} {r.patches:8d} {traced:14,.0f} {ours:9,.0f} {(ours - traced) / traced:+7.2%} "
              f"{tower_layer_bytes(vs, 2):9,.0f}")


if __name__ == "__main__":
    main()
