"""Hostile safetensors headers (issue #11), fuzzed entry by entry.

A real Llama-shaped header (TINY_LLAMA's tensor names and shapes) has some of its entries replaced by hostile
ones — dtypes that are lists, numbers or unknown names; shapes with negative, huge, float, string or too many
dimensions; offsets that are reversed, overlapping, out of the file or not numbers; ``__metadata__`` of every
JSON type — and the file is estimated with and without a ``config.json`` beside it. Every outcome must be an
answer with sane numbers or one clear line naming the file; never an internal error.
"""

from __future__ import annotations

import json
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixtures import TINY_LLAMA, llama_tensors
from hostile_util import assert_clean, assert_sane_estimate, run_cli

HYP = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])
JSON = st.recursive(st.none() | st.booleans() | st.integers(-(10**30), 10**30) | st.floats(allow_nan=False)
                    | st.text(max_size=12), lambda c: st.lists(c, max_size=3)
                    | st.dictionaries(st.text(max_size=6), c, max_size=3), max_leaves=8)
DTYPES = st.sampled_from(["F16", "BF16", "F32", "I8", "U8", "F8_E4M3", "I32", "BOOL", "F64", "X9", "", "f16"]) | JSON
DIM = st.integers(-3, 2**45) | st.sampled_from([0, 1, 4096, 2**31, 2**63]) | JSON
SHAPES = st.lists(DIM, max_size=10) | JSON
OFFSETS = st.lists(st.integers(-10, 2**40), min_size=0, max_size=3) | JSON


def _entries() -> dict:
    """The header of a valid file: each tensor's dtype, shape and back-to-back offsets."""
    out, at = {}, 0
    for name, shape in llama_tensors(TINY_LLAMA).items():
        n = 2
        for d in shape:
            n *= d
        out[name] = {"dtype": "F16", "shape": list(shape), "data_offsets": [at, at + n]}
        at += n
    return out


BASE = _entries()
NAMES = sorted(BASE)


def _write(folder, header: dict, with_config: bool) -> str:
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    ends = [e["data_offsets"][1] for e in header.values() if isinstance(e, dict)
            and isinstance(e.get("data_offsets"), list) and len(e["data_offsets"]) == 2
            and all(isinstance(x, int) and 0 <= x < 2**40 for x in e["data_offsets"])]
    path = folder / "model.safetensors"
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        f.truncate(8 + len(raw) + max(ends, default=0))  # sparse: the data section costs no disk
    if with_config:
        (folder / "config.json").write_text(json.dumps(TINY_LLAMA))
    return str(path if not with_config else folder)


@HYP
@given(changes=st.dictionaries(st.sampled_from(NAMES), st.fixed_dictionaries(
    {}, optional={"dtype": DTYPES, "shape": SHAPES, "data_offsets": OFFSETS, "extra": JSON}), max_size=4),
    replaced=st.dictionaries(st.sampled_from(NAMES), JSON, max_size=2),
    metadata=st.none() | JSON, with_config=st.booleans(), task=st.sampled_from(["inference", "finetune"]))
def test_any_safetensors_header_entry(tmp_path_factory, changes, replaced, metadata, with_config, task):
    header = {k: dict(v) for k, v in BASE.items()}
    for name, change in changes.items():
        header[name].update(change)
    header.update(replaced)  # a whole entry that is not an object
    if metadata is not None:
        header["__metadata__"] = metadata
    target = _write(tmp_path_factory.mktemp("st"), header, with_config)
    argv = ["estimate", target, "--task", task, "--json"] + (["--method", "lora"] if task == "finetune" else [])
    rc, out, err = run_cli(argv)
    assert_clean(rc, out, err, argv)
    if rc == 0:
        assert_sane_estimate(json.loads(out))
    else:
        assert "model.safetensors" in err or "config.json" in err or "st" in err, err
