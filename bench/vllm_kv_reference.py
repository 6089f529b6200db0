"""vLLM's own KV cache configuration (its real ``vllm/v1/core/kv_cache_utils.py``) for the catalog's hybrid
and full-attention models, written to ``validation/reference/vllm_kv_cache_config.jsonl``.

Run with a vLLM source tree (a release's wheel unpacked, no GPU needed: only the pure-Python KV cache planner
runs) and its Python dependencies on the path::

    PYTHONPATH=/path/to/vllm-0.11.0:/path/to/deps python bench/vllm_kv_reference.py --vllm-version 0.11.0 \
        [--write validation/reference/vllm_kv_cache_config.jsonl]

For each case the layers' ``FullAttentionSpec`` / ``SlidingWindowSpec`` (block 16, bf16 or fp8) are built from
the model's config as vLLM's attention layers build them (``Attention.get_kv_cache_spec``: the layer's sliding
window, if any, gives a ``SlidingWindowSpec``; per-layer shapes and KV-shared layers as :func:`layer_shape` says,
``TP_CASES`` one tensor-parallel rank's heads), the available memory is given, and vLLM's
``get_kv_cache_configs`` (which logs "GPU KV cache size" and "Maximum concurrency") and
``check_enough_kv_cache_memory``'s needed bytes (``max_memory_usage_bytes`` over the layers) are recorded. The
config object handed to them is a plain namespace carrying the four numbers they read (max_model_len,
max_num_batched_tokens, the hybrid switch, the override of the block count); the planning code is vLLM's.
``tests/test_vllm.py`` compares vramscope's groups, block counts, printed tokens and concurrency with these.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from vramscope.sources import resolve  # noqa: E402

GiB = 2**30
#: (model, max_model_len, max_num_batched_tokens, available KV bytes, kv dtype, disable hybrid)
CASES = (
    ("google/gemma-2-9b", 8192, 2048, 20 * GiB, "bf16", False),
    ("google/gemma-2-9b", 8192, 2048, 20 * GiB, "bf16", True),
    ("google/gemma-3-27b-pt", 131072, 2048, 30 * GiB, "bf16", False),
    ("google/gemma-3-27b-pt", 131072, 8192, 30 * GiB, "bf16", False),
    ("google/gemma-3-12b-pt", 32768, 2048, 10 * GiB, "fp8", False),
    ("openai/gpt-oss-20b", 131072, 2048, 40 * GiB, "bf16", False),
    ("openai/gpt-oss-20b", 131072, 8192, 40 * GiB, "bf16", False),
    ("openai/gpt-oss-20b", 131072, 8192, 40 * GiB, "bf16", True),
    ("mistralai/Mistral-7B-v0.1", 32768, 2048, 20 * GiB, "bf16", False),
    ("meta-llama/Llama-3.1-8B", 32768, 2048, 20 * GiB, "bf16", False),
    ("openai/gpt-oss-20b", 131072, 2048, 2 * GiB, "bf16", False),
    # layers of different page sizes (vLLM 0.33.0 only): K/V widths 192/128 and 8 vs 4 kv heads (MiMo-V2),
    # per-layer shapes and KV-shared layers (Gemma 4)
    ("XiaomiMiMo/MiMo-V2-Flash", 32768, 2048, 20 * GiB, "bf16", False),
    ("XiaomiMiMo/MiMo-V2-Flash", 262144, 8192, 60 * GiB, "fp8", False),
    ("google/gemma-4-31B-it", 32768, 2048, 20 * GiB, "bf16", False),
    ("google/gemma-4-31B-it", 262144, 8192, 40 * GiB, "bf16", False),
    ("google/gemma-4-E2B-it", 32768, 2048, 4 * GiB, "bf16", False),
    ("google/gemma-4-E2B-it", 131072, 2048, 3 * GiB // 2, "fp8", False),
    ("google/gemma-4-31B-it", 262144, 2048, 2 * GiB, "bf16", False),
    ("XiaomiMiMo/MiMo-V2-Flash", 32768, 2048, 20 * GiB, "bf16", True),
    ("google/gemma-4-31B-it", 32768, 2048, 20 * GiB, "bf16", True),
    ("google/gemma-4-E2B-it", 32768, 2048, 4 * GiB, "bf16", True),
)
#: one tensor-parallel rank's layers (vLLM 0.33.0 only): (model, max_model_len, max_num_batched_tokens, available KV
#: bytes, kv dtype, disable hybrid, tp)
TP_CASES = (
    ("XiaomiMiMo/MiMo-V2-Flash", 65536, 2048, 40 * GiB, "bf16", False, 4),
    ("XiaomiMiMo/MiMo-V2-Flash", 65536, 2048, 40 * GiB, "bf16", False, 8),
    ("google/gemma-4-31B-it", 65536, 2048, 20 * GiB, "bf16", False, 8),
)
#: cases vLLM 0.11.0's planner is not run on (its page unification is not modelled)
V33_ONLY = ("XiaomiMiMo/MiMo-V2-Flash", "google/gemma-4-31B-it", "google/gemma-4-E2B-it")
#: pipeline parallel: (model, max_model_len, max_num_batched_tokens, available KV bytes per stage, kv dtype,
#: disable hybrid): each stage's layers as ``vllm.distributed.utils.get_pp_indices`` assigns them
PP_CASES = (
    ("google/gemma-2-9b", 8192, 2048, (10 * GiB, 9 * GiB), "bf16", False),
    ("google/gemma-3-27b-pt", 131072, 2048, (12 * GiB, 14 * GiB), "bf16", False),
    ("google/gemma-3-27b-pt", 131072, 2048, (6 * GiB, 7 * GiB, 7 * GiB, 5 * GiB), "bf16", False),
    ("google/gemma-3-12b-pt", 32768, 2048, (4 * GiB, 4 * GiB, 4 * GiB), "fp8", False),
    ("openai/gpt-oss-20b", 131072, 8192, (20 * GiB, 18 * GiB), "bf16", False),
    ("openai/gpt-oss-20b", 131072, 8192, (20 * GiB, 18 * GiB), "bf16", True),
    ("meta-llama/Llama-3.1-8B", 32768, 2048, (8 * GiB, 9 * GiB, 7 * GiB), "bf16", False),
    ("openai/gpt-oss-20b", 131072, 2048, (3 * GiB, 1 * GiB), "bf16", False),
    # layers of different page sizes (vLLM 0.33.0 only)
    ("XiaomiMiMo/MiMo-V2-Flash", 65536, 2048, (20 * GiB, 18 * GiB), "bf16", False),
    ("google/gemma-4-31B-it", 65536, 2048, (10 * GiB, 12 * GiB, 11 * GiB), "bf16", False),
)


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def layer_shape(spec, hf: dict, i: int) -> tuple[int, int, int] | None:
    """(kv heads, key head size, value head size) of decoder layer ``i`` as vLLM 0.33.0's model builds its
    ``Attention``, None for a layer sharing another's cache. MiMo-V2 (mimo_v2.py ``MiMoV2DecoderLayer``):
    ``hybrid_layer_pattern[i] == 1`` is a sliding layer with ``swa_num_key_value_heads``, ``swa_head_dim``,
    ``swa_v_head_dim``, the others ``num_key_value_heads``, ``head_dim``, ``v_head_dim`` (``head_size_v``).
    Gemma 4 (gemma4.py ``Gemma4DecoderLayer``): ``per_layer_config[i]``'s heads and head size (as transformers'
    Gemma4 config builds it, here through ``ModelSpec.layer_kv``), and the last ``num_kv_shared_layers`` layers
    given ``kv_sharing_target_layer_name`` (no spec). Others: the config's uniform shape."""
    if "hybrid_layer_pattern" in hf:
        if hf["hybrid_layer_pattern"][i] == 1:
            return (hf["swa_num_key_value_heads"], hf["swa_head_dim"],
                    hf.get("swa_v_head_dim") or hf["swa_head_dim"])
        return hf["num_key_value_heads"], hf["head_dim"], hf.get("v_head_dim") or hf["head_dim"]
    if spec.layer_kv:
        if i >= spec.num_layers - hf.get("num_kv_shared_layers", 0):
            return None
        heads, dim = spec.layer_kv[i]
        return heads, dim, dim
    return spec.num_kv_heads, spec.head_dim, spec.head_dim


def layer_specs(ki, spec, kv: str, lo: int = 0, hi: int | None = None, hf: dict | None = None, tp: int = 1
                ) -> dict:
    """The KV cache spec vLLM's attention layers build for each decoder layer (``ki``: vLLM's
    ``v1.kv_cache_interface``): a sliding-window spec for sliding layers, full attention for the others; ``lo`` to
    ``hi``: one pipeline stage's layers."""
    import torch

    hf = hf or {}
    dtype = {"bf16": torch.bfloat16, "fp8": torch.uint8}[kv]  # vLLM stores an fp8 cache as uint8 (1 byte)
    specs = {}
    for i in range(lo, spec.num_layers if hi is None else hi):
        shape = layer_shape(spec, hf, i)
        if shape is None:  # reads another layer's keys and values: no spec of its own
            continue
        heads, k_size, v_size = shape
        heads = max(1, heads // tp)  # one tensor-parallel rank's heads (QKVParallelLinear replicates below tp)
        kw = dict(block_size=16, num_kv_heads=heads, head_size=k_size, head_size_v=v_size, dtype=dtype)
        if "hybrid_layer_pattern" in hf:  # MiMo-V2: its own pattern and window (mimo_v2.py)
            sliding, window = hf["hybrid_layer_pattern"][i] == 1, hf["sliding_window_size"]
        else:
            sliding, window = spec.sliding_window and spec.layer_type(i) == "sliding_attention", spec.sliding_window
        if sliding:
            specs[f"model.layers.{i}.self_attn.attn"] = ki.SlidingWindowSpec(sliding_window=window, **kw)
        else:
            specs[f"model.layers.{i}.self_attn.attn"] = ki.FullAttentionSpec(**kw)
    return specs


def case_record(version: str, model: str, spec, max_len: int, mnbt: int, avail: int, kv: str, disable: bool,
                needed: int) -> dict:
    """The case and the model's shape, as each record of the reference file starts."""
    return {"vllm_version": version, "model": model, "layers": spec.num_layers, "kv_heads": spec.num_kv_heads,
            "head_dim": spec.head_dim, "sliding_window": spec.sliding_window,
            "sliding_layers": sum(1 for i in range(spec.num_layers) if spec.sliding_window
                                  and spec.layer_type(i) == "sliding_attention"),
            "max_model_len": max_len, "max_num_batched_tokens": mnbt, "available_bytes": avail, "kv_dtype": kv,
            "disable_hybrid_kv_cache_manager": disable, "needed_bytes": needed}


def run(model: str, max_len: int, mnbt: int, avail: int, kv: str, disable: bool, version: str) -> dict:
    from vllm.v1 import kv_cache_interface as ki
    from vllm.v1.core import kv_cache_utils as ku

    spec = resolve(model, hub=False).spec
    specs = layer_specs(ki, spec, kv)
    cfg = SimpleNamespace(
        model_config=SimpleNamespace(max_model_len=max_len),
        scheduler_config=SimpleNamespace(max_num_batched_tokens=mnbt, disable_hybrid_kv_cache_manager=disable),
        parallel_config=SimpleNamespace(decode_context_parallel_size=1),
        cache_config=SimpleNamespace(num_gpu_blocks_override=None),
    )
    needed = ku.max_memory_usage_bytes(cfg, specs.values())
    cap = Capture()
    logging.getLogger("vllm").addHandler(cap)
    try:
        configs = ku.get_kv_cache_configs(cfg, [dict(specs)], [avail])
        error = None
    except ValueError as e:
        configs, error = None, str(e)
    finally:
        logging.getLogger("vllm").removeHandler(cap)
    out = case_record(version, model, spec, max_len, mnbt, avail, kv, disable, needed)
    if configs is None:
        out["error"] = error
        return out
    c = configs[0]
    text = " ".join(cap.lines)
    tokens = re.search(r"GPU KV cache size: ([\d,]+) tokens", text)
    conc = re.search(r"Maximum concurrency for [\d,]+ tokens per request: ([\d.]+)x", text)
    out.update(num_blocks=c.num_blocks, groups=[type(g.kv_cache_spec).__name__ for g in c.kv_cache_groups],
               group_layers=[len(g.layer_names) for g in c.kv_cache_groups],
               tensor_bytes=sum(t.size for t in c.kv_cache_tensors),
               printed_tokens=int(tokens.group(1).replace(",", "")) if tokens else None,
               printed_concurrency=float(conc.group(1)) if conc else None,
               concurrency=ku.get_max_concurrency_for_kv_cache_config(cfg, c))
    return out


def v33_config(max_len: int, mnbt: int, disable: bool, **extra: object) -> SimpleNamespace:
    """The parts of vLLM 0.33's VllmConfig its KV cache planners read (NHD layout, prefix caching on, no
    context parallelism); ``extra``: further top-level fields (the pipeline planner's ``kv_transfer_config``)."""
    from vllm.config.cache import _layout_from_name

    layout = _layout_from_name("NHD")
    return SimpleNamespace(
        model_config=SimpleNamespace(max_model_len=max_len),
        scheduler_config=SimpleNamespace(max_num_batched_tokens=mnbt, disable_hybrid_kv_cache_manager=disable),
        parallel_config=SimpleNamespace(decode_context_parallel_size=1, tensor_parallel_size=1),
        cache_config=SimpleNamespace(num_gpu_blocks_override=None, prefix_cache_retention_interval=None,
                                     enable_prefix_caching=True, get_resolved_kv_cache_layout=lambda: layout),
        attention_config=SimpleNamespace(hisparse_config=None),
        speculative_config=None, max_in_flight_tokens=2 * mnbt, num_prefill_lookahead_tokens=0, **extra,
    )


def run_v33(model: str, max_len: int, mnbt: int, avail: int, kv: str, disable: bool, version: str,
            tp: int = 1) -> dict:
    """The same with vLLM >= 0.21's planner (``kv_cache_planning.py``: ``get_kv_cache_groups``,
    ``get_kv_cache_config_from_groups``; ``kv_cache_utils.get_kv_cache_capacity``, whose tokens are the
    "GPU KV cache size" it logs). ``max_in_flight_tokens`` is ``VllmConfig.max_in_flight_tokens`` with
    asynchronous scheduling (its default): 2 × max_num_batched_tokens; the layout is FlashAttention's ``NHD``."""
    from vllm.v1 import kv_cache_interface as ki
    from vllm.v1.core import kv_cache_planning as kp
    from vllm.v1.core import kv_cache_utils as ku

    resolved = resolve(model, hub=False)
    spec, hf = resolved.spec, resolved.hf_config or {}
    specs = layer_specs(ki, spec, kv, hf=hf.get("text_config", hf), tp=tp)
    cfg = v33_config(max_len, mnbt, disable)
    groups = kp.get_kv_cache_groups(cfg, dict(specs))
    builder = kp.DefaultKVCacheConfigBuilder()
    # get_kv_cache_configs' check: the groups' usage against the memory less the null block's pool block
    needed = kp._max_memory_usage_bytes_from_groups(builder, cfg, groups) \
        + kp._pool_bytes_per_block_from_builder(builder, cfg, groups)
    out = case_record(version, model, spec, max_len, mnbt, avail, kv, disable, needed)
    if tp > 1:
        out["tp"] = tp
    c = kp.get_kv_cache_config_from_groups(cfg, groups, avail)
    tokens, conc = ku.get_kv_cache_capacity(cfg, c)
    out.update(num_blocks=c.num_blocks, groups=[type(g.kv_cache_spec).__name__ for g in c.kv_cache_groups],
               group_layers=[len(g.layer_names) for g in c.kv_cache_groups],
               printed_tokens=tokens, printed_concurrency=round(conc, 2), concurrency=conc)
    if needed > avail:
        out["error"] = "needed > available"
    return out


def stage_specs(ki, spec, kv: str, pp: int, hf: dict | None = None) -> list[dict]:
    """Each pipeline stage's layer specs, the stage's layers being vLLM's own ``get_pp_indices``."""
    from vllm.distributed.utils import get_pp_indices

    return [layer_specs(ki, spec, kv, *get_pp_indices(spec.num_layers, r, pp), hf=hf) for r in range(pp)]


def pp_record(version: str, model: str, spec, max_len: int, mnbt: int, avail: tuple, kv: str, disable: bool,
              workers: list[dict], configs, needed: list[int], tokens, conc: float, alloc: list[int]) -> dict:
    """``tokens``: the "GPU KV cache size" logged (vLLM 0.11: one line per worker, each its own count before the
    minimum; 0.33: once, at the minimum); ``alloc``: the KV cache bytes each worker allocates."""
    out = case_record(version, model, spec, max_len, mnbt, list(avail), kv, disable, needed)
    out.update(pp=len(avail), stage_layers=[len(w) for w in workers])
    if configs is None:
        return out
    c = configs[0]
    out.update(num_blocks=c.num_blocks, groups=[type(g.kv_cache_spec).__name__ for g in c.kv_cache_groups],
               stage_group_layers=[[len(g.layer_names) for g in k.kv_cache_groups] for k in configs],
               stage_kv_bytes=alloc, printed_tokens=tokens, printed_concurrency=round(conc, 2),
               concurrency=conc)
    return out


def run_pp(model: str, max_len: int, mnbt: int, avail: tuple, kv: str, disable: bool, version: str) -> dict:
    """Pipeline parallel with vLLM 0.11's ``get_kv_cache_configs``: the groups of the whole model, each worker's
    projected on its layers, its own block count, then the smallest on every worker (the tensors keep their
    size). What is logged per worker before the minimum is not kept: the capacity recorded is the minimum's."""
    from vllm.v1 import kv_cache_interface as ki
    from vllm.v1.core import kv_cache_utils as ku

    spec = resolve(model, hub=False).spec
    workers = stage_specs(ki, spec, kv, len(avail))
    cfg = SimpleNamespace(
        model_config=SimpleNamespace(max_model_len=max_len),
        scheduler_config=SimpleNamespace(max_num_batched_tokens=mnbt, disable_hybrid_kv_cache_manager=disable),
        parallel_config=SimpleNamespace(decode_context_parallel_size=1),
        cache_config=SimpleNamespace(num_gpu_blocks_override=None),
    )
    needed = [ku.max_memory_usage_bytes(cfg, w.values()) for w in workers]
    cap = Capture()
    logging.getLogger("vllm").addHandler(cap)
    try:
        configs = ku.get_kv_cache_configs(cfg, [dict(w) for w in workers], list(avail))
    except ValueError:
        configs = None
    finally:
        logging.getLogger("vllm").removeHandler(cap)
    if configs is None:
        out = pp_record(version, model, spec, max_len, mnbt, avail, kv, disable, workers, None, needed, 0, 0.0, [])
        out["error"] = "not enough KV cache memory on a stage"
        return out
    conc = ku.get_max_concurrency_for_kv_cache_config(cfg, configs[0])
    tokens = [int(m.replace(",", "")) for m in re.findall(r"GPU KV cache size: ([\d,]+) tokens", " ".join(cap.lines))]
    alloc = [sum(t.size for t in c.kv_cache_tensors) for c in configs]  # the tensors keep their pre-minimum size
    return pp_record(version, model, spec, max_len, mnbt, avail, kv, disable, workers, configs, needed, tokens,
                     conc, alloc)


def run_pp_v33(model: str, max_len: int, mnbt: int, avail: tuple, kv: str, disable: bool, version: str) -> dict:
    """Pipeline parallel with vLLM 0.33's ``get_global_kv_cache_groups`` and ``get_kv_cache_configs`` (each
    worker's groups projected on its layers, checked, sized, and re-planned at the smallest block count, which
    shrinks the other workers' tensors)."""
    from vllm.v1 import kv_cache_interface as ki
    from vllm.v1.core import kv_cache_planning as kp
    from vllm.v1.core import kv_cache_utils as ku

    spec = resolve(model, hub=False).spec
    hf = resolve(model, hub=False).hf_config or {}
    workers = stage_specs(ki, spec, kv, len(avail), hf.get("text_config", hf))
    cfg = v33_config(max_len, mnbt, disable, kv_transfer_config=None)
    cfg.model_config.original_max_model_len, cfg.model_config.supports_kv_cache_grouping = max_len, False
    groups = kp.get_global_kv_cache_groups(cfg, [dict(w) for w in workers])
    builder = kp.DefaultKVCacheConfigBuilder()
    projected = [kp._project_kv_cache_groups_to_worker(groups, w) for w in workers]
    needed = [kp._max_memory_usage_bytes_from_groups(builder, cfg, g)
              + kp._pool_bytes_per_block_from_builder(builder, cfg, g) for g in projected]
    try:
        configs = kp.get_kv_cache_configs(cfg, [dict(w) for w in workers], list(avail), groups)
    except ValueError:
        configs = None
    if configs is None:
        out = pp_record(version, model, spec, max_len, mnbt, avail, kv, disable, workers, None, needed, 0, 0.0, [])
        out["error"] = "not enough KV cache memory on a stage"
        return out
    tokens, conc = ku.get_kv_cache_capacity(cfg, configs[0])
    # re-planned at the smallest count: each worker's pool is that many of its own pool blocks
    alloc = [c.num_blocks * kp._pool_bytes_per_block_from_builder(builder, cfg, g) for c, g in zip(configs, projected)]
    return pp_record(version, model, spec, max_len, mnbt, avail, kv, disable, workers, configs, needed, tokens,
                     conc, alloc)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vllm-version", required=True)
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()
    fn = run_v33 if tuple(int(x) for x in args.vllm_version.split(".")[:2]) >= (0, 21) else run
    rows = [fn(*case, version=args.vllm_version) for case in CASES if fn is run_v33 or case[0] not in V33_ONLY]
    if fn is run_v33:
        rows += [run_v33(*case[:6], version=args.vllm_version, tp=case[6]) for case in TP_CASES]
    pp_fn = run_pp_v33 if fn is run_v33 else run_pp
    rows += [pp_fn(*case, version=args.vllm_version) for case in PP_CASES
             if pp_fn is run_pp_v33 or case[0] not in V33_ONLY]
    lines = [json.dumps(r) for r in rows]
    if args.write:
        funcs = ("kv_cache_planning.py: get_kv_cache_groups, get_kv_cache_config_from_groups, "
                 "_max_memory_usage_bytes_from_groups + _pool_bytes_per_block_from_builder; kv_cache_utils.py: "
                 "get_kv_cache_capacity" if fn is run_v33 else
                 "kv_cache_utils.py: get_kv_cache_configs (its logged 'GPU KV cache size' and 'Maximum "
                 "concurrency'), get_max_concurrency_for_kv_cache_config, max_memory_usage_bytes")
        head = [f"# vLLM {args.vllm_version}'s own KV cache planner (vllm/v1/core/{funcs}), run on CPU by "
                "bench/vllm_kv_reference.py; layer specs as vLLM's attention layers build them"]
        old = [ln for ln in args.write.read_text().splitlines() if ln and not ln.startswith("#")
               and json.loads(ln)["vllm_version"] != args.vllm_version] if args.write.exists() else []
        prev_head = [ln for ln in args.write.read_text().splitlines() if ln.startswith("#")] \
            if args.write.exists() else []
        heads = [h for h in prev_head if args.vllm_version not in h] + head
        args.write.write_text("\n".join(heads + old + lines) + "\n")
    else:
        print("\n".join(lines))


if __name__ == "__main__":
    main()
