"""Transformer Engine's own pure-Python rules, run on the CPU, against vramscope's memory/te_fp8.py.

Transformer Engine's PyTorch extension is CUDA only (``transformer_engine_torch`` ships as an sdist that builds
against CUDA; ``import transformer_engine.pytorch`` fails without it), but the ``transformer_engine`` wheel
(py3-none-any) carries the Python files. This script loads, from an unpacked TE source or wheel:

* ``common/recipe/__init__.py`` as a module (it imports only the standard library and pydantic-free dataclasses):
  the recipes' defaults (``DelayedScaling.amax_history_len``, formats, ``Float8BlockScaling`` block dims);
* the methods ``MXFP8Quantizer.get_scale_shape`` (``tensor/mxfp8_tensor.py``) and
  ``Float8BlockQuantizer.get_scale_shape`` (``tensor/float8_blockwise_tensor.py``), and the functions
  ``round_up_to_nearest_multiple`` and ``is_non_tn_fp8_gemm_supported`` (``utils.py``), cut out of the files with
  ``ast`` and executed as written (``torch.cuda.get_device_capability`` replaced by the capability asked);

and compares each answer with vramscope's over a grid of shapes and GPUs. ``--write`` records TE's answers in
``validation/te_fp8_shapes.json`` (tests/test_te_fp8.py checks vramscope against that file without TE).

    python bench/te_fp8_shapes.py /tmp/te_unpacked [--label "transformer_engine 2.20.2 wheel"] [--write]
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import itertools
import json
import math
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from vramscope.memory import te_fp8  # noqa: E402

OUT = ROOT / "validation" / "te_fp8_shapes.json"
SHAPES = [(4096, 4096), (6144, 4096), (28672, 4096), (4096, 14336), (8192, 4096), (1024, 4096), (4096, 1024),
          (1, 4096, 4096), (2, 2048, 4096), (2, 1000, 4096), (3, 96, 160), (128, 32), (32, 128), (4160, 2080),
          (5120, 27648), (27648, 5120), (1536, 8960)]
CAPABILITIES = ["8.0", "8.9", "9.0", "10.0", "10.3", "11.0", "12.0", "12.1", "13.0"]


def _function(path: Path, name: str, cls: str | None = None) -> str:
    tree = ast.parse(path.read_text())
    nodes = tree.body
    if cls is not None:
        nodes = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls).body
    node = next(n for n in nodes if isinstance(n, ast.FunctionDef) and n.name == name)
    node.decorator_list = []
    return ast.unparse(node)


def _constant(path: Path, name: str):
    tree = ast.parse(path.read_text())
    for n in tree.body:
        if isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in n.targets):
            return ast.literal_eval(n.value)
    raise KeyError(name)


def load(te: Path) -> dict:
    """TE's functions and recipe defaults from the source tree ``te`` (containing ``transformer_engine/``)."""
    pt = te / "transformer_engine" / "pytorch"
    ns: dict = {"math": math, "Iterable": object, "Tuple": tuple}
    exec(_function(pt / "utils.py", "round_up_to_nearest_multiple"), ns)
    ns["MXFP8_BLOCK_SCALING_SIZE"] = _constant(pt / "constants.py", "MXFP8_BLOCK_SCALING_SIZE")
    exec(_function(pt / "tensor" / "mxfp8_tensor.py", "get_scale_shape", "MXFP8Quantizer").replace(
        "def get_scale_shape(", "def mx_scale_shape(", 1), ns)
    exec(_function(pt / "tensor" / "float8_blockwise_tensor.py", "get_scale_shape", "Float8BlockQuantizer").replace(
        "def get_scale_shape(", "def block_scale_shape(", 1), ns)
    cap = {"cc": (9, 0)}
    ns["torch"] = types.SimpleNamespace(cuda=types.SimpleNamespace(get_device_capability=lambda: cap["cc"]))
    exec(_function(pt / "utils.py", "is_non_tn_fp8_gemm_supported"), ns)
    spec = importlib.util.spec_from_file_location("te_recipe", te / "transformer_engine" / "common" / "recipe" / "__init__.py")
    recipe = importlib.util.module_from_spec(spec)
    sys.modules["te_recipe"] = recipe
    spec.loader.exec_module(recipe)
    return {"ns": ns, "cap": cap, "recipe": recipe}


def answers(te: dict) -> dict:
    ns, cap, rec = te["ns"], te["cap"], te["recipe"]
    mx = types.SimpleNamespace()
    out: dict = {"mxfp8_block": ns["MXFP8_BLOCK_SCALING_SIZE"], "mxfp8": [], "blockwise": [], "non_tn": {}}
    for shape, col in itertools.product(SHAPES, (False, True)):
        if math.prod(shape[:-1]) % 32 == 0 and shape[-1] % 32 == 0:
            out["mxfp8"].append({"shape": list(shape), "columnwise": col,
                                 "scale_shape": list(ns["mx_scale_shape"](mx, shape, col))})
        for dim in (1, 2):
            q = types.SimpleNamespace(block_scaling_dim=dim, block_len=128)
            out["blockwise"].append({"shape": list(shape), "columnwise": col, "dim": dim,
                                     "scale_shape": list(ns["block_scale_shape"](q, shape, col))})
    for c in CAPABILITIES:
        cap["cc"] = tuple(int(x) for x in c.split("."))
        out["non_tn"][c] = bool(ns["is_non_tn_fp8_gemm_supported"]())
    d, b = rec.DelayedScaling(), rec.Float8BlockScaling()
    out["recipes"] = {
        "DelayedScaling.amax_history_len": d.amax_history_len, "DelayedScaling.fp8_format": d.fp8_format.name,
        "Float8CurrentScaling.fp8_format": rec.Float8CurrentScaling().fp8_format.name,
        "MXFP8BlockScaling.fp8_format": rec.MXFP8BlockScaling().fp8_format.name,
        "Float8BlockScaling.x_block_scaling_dim": b.x_block_scaling_dim,
        "Float8BlockScaling.w_block_scaling_dim": b.w_block_scaling_dim,
        "Float8BlockScaling.grad_block_scaling_dim": b.grad_block_scaling_dim,
    }
    return out


def compare(rec: dict) -> list[str]:
    """Mismatches between a recorded TE answer set and vramscope's te_fp8 (empty: all agree)."""
    bad = []
    if rec["mxfp8_block"] != te_fp8.MXFP8_BLOCK:
        bad.append(f"MXFP8 block {rec['mxfp8_block']} != {te_fp8.MXFP8_BLOCK}")
    for r in rec["mxfp8"]:
        mine = list(te_fp8.mxfp8_scale_shape(r["shape"], r["columnwise"]))
        if mine != r["scale_shape"]:
            bad.append(f"mxfp8 {r['shape']} col={r['columnwise']}: TE {r['scale_shape']} vramscope {mine}")
    for r in rec["blockwise"]:
        mine = list(te_fp8.blockwise_scale_shape(r["shape"], r["columnwise"], r["dim"]))
        if mine != r["scale_shape"]:
            bad.append(f"blockwise {r['shape']} col={r['columnwise']} dim={r['dim']}: TE {r['scale_shape']} "
                       f"vramscope {mine}")
    for c, v in rec["non_tn"].items():
        if te_fp8.non_tn(c) != v:
            bad.append(f"non-TN at {c}: TE {v} vramscope {te_fp8.non_tn(c)}")
    rs = rec["recipes"]
    if (rs["Float8BlockScaling.x_block_scaling_dim"], rs["Float8BlockScaling.w_block_scaling_dim"]) != (1, 2):
        bad.append(f"Float8BlockScaling block dims {rs}: vramscope assumes x 1x128, w 128x128")
    return bad


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("te", nargs="+", help="unpacked TE sources or wheels (each containing transformer_engine/)")
    ap.add_argument("--label", action="append", default=[], help="one per source: what it is (version)")
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    records = []
    for i, path in enumerate(a.te):
        rec = answers(load(Path(path)))
        rec["source"] = a.label[i] if i < len(a.label) else path
        bad = compare(rec)
        print(f"{rec['source']}: {len(rec['mxfp8'])} MXFP8 and {len(rec['blockwise'])} blockwise scale shapes, "
              f"{len(rec['non_tn'])} capabilities, recipes {rec['recipes']}: "
              + ("all agree" if not bad else f"{len(bad)} disagree"))
        for b in bad:
            print("  " + b)
        records.append(rec)
    if a.write:
        OUT.write_text(json.dumps({"about": "Transformer Engine's own answers (bench/te_fp8_shapes.py)",
                                   "records": records}, indent=1) + "\n")
        print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
