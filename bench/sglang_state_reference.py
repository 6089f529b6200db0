"""SGLang's own mamba / linear-attention state pool arithmetic for hybrid and pure-SSM models, written to
``validation/reference/sglang_state_cache.jsonl``.

Run with SGLang's wheel unpacked (no GPU and none of its runtime dependencies needed: only the pure-Python parts
run; torch, numpy and transformers from the environment)::

    pip download --no-deps sglang==0.5.23 -d /tmp/sgl && cd /tmp/sgl && unzip -q sglang-0.5.23-*.whl 'sglang/srt/*'
    SGLANG_SRC=/tmp/sgl python bench/sglang_state_reference.py [--write validation/reference/sglang_state_cache.jsonl]

For each case the transformers config (the defaults of its ``model_type`` in the installed transformers, with the
overrides in :data:`CASES`) is handed to SGLang's own code, in the order ``KVCacheConfigurator`` calls it:

1. SGLang's config class for the architecture (``sglang/srt/configs/<family>.py``: ``FalconH1Config``,
   ``NemotronHConfig``, ``Qwen3NextConfig``, ``GraniteMoeHybridConfig``, ``MambaConfig``, ``Mamba2Config``) gives
   ``mamba2_cache_params`` (``Mamba2StateShape.create`` / ``create_full_rank`` with the attention-TP size,
   ``mamba2_state_dtype``: conv bfloat16, SSM float32 unless the config or ``--mamba-ssm-dtype`` says otherwise)
   and its ``mamba_cache_per_req`` and ``full_attention_layer_ids``;
2. ``KVCacheConfigurator._profile_available_bytes`` (free memory after the weights less
   ``pre_model_load_memory × (1 − mem_fraction_static)``), which calls ``_handle_max_mamba_cache`` (the mamba
   budget ``rest × r / (1 + r)`` with ``r = --mamba-full-memory-ratio``, ``max_mamba_cache_size`` slots and the
   pool's padding slot taken out of the rest);
3. ``DefaultPoolConfigurator.calculate_pool_sizes`` (tokens = budget // cell size, page-aligned; a model without
   attention layers gets ``--max-total-tokens`` or the context length);
4. ``KVCacheConfigurator.resolve_max_num_reqs`` with ``_calculate_mamba_ratio`` (3 state slots per request with
   the radix cache, 5 with its extra buffer, 1 without the radix cache).

Those four functions are SGLang's source, extracted from the wheel's files and executed with SGLang's
process-wide settings replaced by plain namespaces (``get_schedule()``, ``get_exec()``, ...), the GPU's free
memory given. The KV cell size of the attention layers is SGLang's MHA branch of ``_compute_cell_size``
(``kv_heads_per_rank × (head_dim + v_head_dim) × layers × bytes``), written out here (it is already checked against
SGLang's log in ``tests/test_sglang.py``). ``tests/test_sglang_state.py`` compares vramscope's SGLang state model
with these records.
"""

from __future__ import annotations

import argparse
import ast
import gc
import importlib.util
import json
import logging
import math
import os
import sys
import types
from pathlib import Path
from types import SimpleNamespace as NS

ROOT = Path(__file__).resolve().parent.parent
GiB = 2**30
SGLANG_VERSION = "0.5.23"

#: NVIDIA-Nemotron-Nano-9B-v2's shape (its config.json as tests/test_vllm_state.py quotes it)
NANO_9B_V2 = {"num_hidden_layers": 56, "hidden_size": 4480, "intermediate_size": 15680, "num_attention_heads": 40,
              "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 131072, "mamba_num_heads": 128,
              "mamba_head_dim": 80, "n_groups": 8, "ssm_state_size": 128, "conv_kernel": 4,
              "hybrid_override_pattern": "M-M-M-MM-M-M-M*-M-M-M*-M-M-M-M*-M-M-M-M*-M-MM-M-M-M-M-M-"}

#: (model_type, architecture, SGLang config module and class, overrides, context_len, GPU memory before the
#: weights (bytes), free memory after them (bytes), mem_fraction_static, server-argument overrides, tp)
CASES = (
    ("falcon_h1", "FalconH1ForCausalLM", "falcon_h1:FalconH1Config", {}, 32768, 79 * GiB, 72 * GiB, 0.835, {}, 1),
    ("falcon_h1", "FalconH1ForCausalLM", "falcon_h1:FalconH1Config", {}, 32768, 79 * GiB, 72 * GiB, 0.835,
     {"mamba_full_memory_ratio": 0.5}, 1),
    ("falcon_h1", "FalconH1ForCausalLM", "falcon_h1:FalconH1Config", {}, 32768, 79 * GiB, 75 * GiB, 0.835, {}, 2),
    ("nemotron_h", "NemotronHForCausalLM", "nemotron_h:NemotronHConfig", NANO_9B_V2, 8192, 79 * GiB, 60 * GiB, 0.835, {}, 1),
    ("nemotron_h", "NemotronHForCausalLM", "nemotron_h:NemotronHConfig", NANO_9B_V2, 8192, 79 * GiB, 60 * GiB, 0.835,
     {"mamba_ssm_dtype": "bfloat16"}, 1),
    ("nemotron_h", "NemotronHForCausalLM", "nemotron_h:NemotronHConfig", NANO_9B_V2, 8192, 79 * GiB, 60 * GiB, 0.835,
     {"max_mamba_cache_size": 100}, 1),
    ("qwen3_next", "Qwen3NextForCausalLM", "qwen3_next:Qwen3NextConfig", {"full_attention_interval": 4}, 262144, 139 * GiB, 120 * GiB, 0.89,
     {}, 1),
    ("qwen3_next", "Qwen3NextForCausalLM", "qwen3_next:Qwen3NextConfig", {"full_attention_interval": 4}, 262144, 79 * GiB, 60 * GiB, 0.835,
     {"disable_radix_cache": True, "max_running_requests": 64}, 2),
    ("granitemoehybrid", "GraniteMoeHybridForCausalLM", "granitemoehybrid:GraniteMoeHybridConfig",
     {"layer_types": ["attention" if i % 10 == 5 else "mamba" for i in range(40)], "num_hidden_layers": 40},
     131072, 47 * GiB, 40 * GiB, 0.8, {}, 1),
    ("mamba2", "Mamba2ForCausalLM", "mamba2:Mamba2Config", {"intermediate_size": 8192}, 8192, 23 * GiB, 15 * GiB, 0.8, {}, 1),
    ("mamba", "MambaForCausalLM", "mamba:MambaConfig", {}, 8192, 23 * GiB, 20 * GiB, 0.8, {}, 1),
)

#: Mamba2: transformers 5.24's Mamba2Config no longer sets ``intermediate_size`` (``expand × hidden_size``, which
#: SGLang's Mamba2Config reads), so the case names it (8,192 = 2 × 4,096 = 128 heads × 64)

#: architectures whose radix cache keeps the extra (ping-pong) state buffer by default (``overrides.py``:
#: ``_MAMBA_EXTRA_BUFFER_ARCHS``, chosen by ``_mamba_radix_cache_resolution`` when the overlap scheduler is on and
#: the linear-attention backend is triton, both defaults); the others run ``no_buffer``
EXTRA_BUFFER = ("FalconH1ForCausalLM", "NemotronHForCausalLM", "Qwen3NextForCausalLM",
                "GraniteMoeHybridForCausalLM", "KimiLinearForCausalLM")


class _Env:
    def __init__(self, value=None):
        self.value = value

    def get(self):
        return self.value


def _install_stubs(src: str, parallel: NS, env: NS) -> None:
    """Module stand-ins for the parts of SGLang its config files import (the process-wide parallel state, the
    environment), so that the config modules themselves can be executed from the wheel's files."""

    def pkg(name, path=None):
        m = types.ModuleType(name)
        m.__path__ = [path] if path else []
        sys.modules[name] = m

    pkg("sglang", f"{src}/sglang")
    pkg("sglang.srt", f"{src}/sglang/srt")
    pkg("sglang.srt.configs", f"{src}/sglang/srt/configs")
    pkg("sglang.srt.distributed")
    du = types.ModuleType("sglang.srt.distributed.utils")
    du.divide = _divide
    sys.modules[du.__name__] = du
    en = types.ModuleType("sglang.srt.environ")
    en.envs = env
    sys.modules[en.__name__] = en
    rc = types.ModuleType("sglang.srt.runtime_context")
    rc.get_parallel = lambda: parallel
    rc.linear_attn_tp_size = lambda: parallel.attn_tp_size
    sys.modules[rc.__name__] = rc
    uc = types.ModuleType("sglang.srt.configs.update_config")
    uc.adjust_tp_num_heads_if_necessary = lambda *a: None  # CPU-only head padding: not the CUDA path
    sys.modules[uc.__name__] = uc
    ut = types.ModuleType("sglang.srt.utils")
    ut.is_cpu = lambda: False
    sys.modules[ut.__name__] = ut


def _divide(numerator: int, denominator: int) -> int:
    """``sglang.srt.distributed.utils.divide`` (ensure_divisibility, then floor division)."""
    assert numerator % denominator == 0, f"{numerator} is not divisible by {denominator}"
    return numerator // denominator


def _load(src: str, module: str):
    name = f"sglang.srt.configs.{module}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, f"{src}/sglang/srt/configs/{module}.py")
    m = importlib.util.module_from_spec(spec)
    sys.modules[name] = m
    spec.loader.exec_module(m)
    return m


def _methods(path: str, cls: str, names: tuple[str, ...], namespace: dict) -> dict:
    """The named methods of ``cls`` in ``path``, compiled from SGLang's source into ``namespace``."""
    text = Path(path).read_text()
    tree = ast.parse(text)
    out = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == cls:
            for fn in node.body:
                if isinstance(fn, ast.FunctionDef) and fn.name in names:
                    code = ast.get_source_segment(text, fn)
                    exec(compile(ast.parse(code), path, "exec"), namespace)  # noqa: S102 (SGLang's own source)
                    out[fn.name] = namespace[fn.name]
    missing = set(names) - set(out)
    assert not missing, f"not found in {path}: {missing}"
    return out


def _constants(path: str, names: tuple[str, ...]) -> dict:
    tree = ast.parse(Path(path).read_text())
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and getattr(node.targets[0], "id", None) in names:
            out[node.targets[0].id] = ast.literal_eval(node.value)
    return out


def run_case(src: str, case: tuple) -> dict:
    import torch
    import transformers

    model_type, arch, where, overrides, context_len, total, available, mfs, server, tp = case
    parallel = NS(attn_tp_size=tp, tp_size=tp, pp_size=1, attn_dcp_size=1, launch_world_size=tp,
                  world_group=NS(cpu_group=None))
    env = NS(SGLANG_MAMBA_CONV_DTYPE=_Env(), SGLANG_MAMBA_SSM_DTYPE=_Env(server.get("mamba_ssm_dtype")),
             SGLANG_OPT_MAMBA_SKIP_DECODE_LOCK=_Env(False))
    _install_stubs(src, parallel, env)
    module, cls = where.split(":")
    _load(src, "mamba_utils")
    sgl_cls = getattr(_load(src, module), cls)

    hf = transformers.AutoConfig.for_model(model_type, **overrides).to_dict()
    hf.update(overrides)
    hf["architectures"] = [arch]
    for key in ("model_type", "transformers_version"):
        hf.pop(key, None)
    if "hybrid_override_pattern" in overrides:  # SGLang's NemotronHConfig derives its layer list from the pattern
        for key in ("layers_block_type", "layer_types"):
            hf.pop(key, None)
    config = sgl_cls(**hf)
    params = config.mamba2_cache_params
    full_ids = list(config.full_attention_layer_ids)

    schedule = NS(mem_fraction_static=mfs, prefill_max_requests=None, max_running_requests=server.get(
        "max_running_requests"), max_mamba_cache_size=server.get("max_mamba_cache_size"),
        mamba_full_memory_ratio=server.get("mamba_full_memory_ratio", 0.9), max_total_tokens=None, page_size=1,
        disable_overlap_schedule=arch not in EXTRA_BUFFER, dp_size=1)
    memory = NS(disable_radix_cache=server.get("disable_radix_cache", False), enable_unified_memory=False)
    extra = arch in EXTRA_BUFFER and not memory.disable_radix_cache
    exec_ = NS(mamba=NS(enable_linear_replayssm_spec=False, enable_mamba_extra_buffer=extra,
                        enable_mamba_extra_buffer_lazy=False, linear_replayssm_cache_len=0),
               graph=NS(cuda_graph_config=NS(prefill=NS(full_prefill_max_req=None, backend=None))))

    class _Context:
        def override(self, _why, **kw):  # the schedule bag's resolved fields
            for k, v in kw.items():
                setattr(schedule, k, v)

    from sglang.srt.mem_cache.allocation_sizing import get_mamba_tracking_slots  # noqa: F401 (see below)

    cfg_path = f"{src}/sglang/srt/mem_cache/kv_cache_configurator.py"
    ns = {"get_schedule": lambda: schedule, "get_memory": lambda: memory, "get_exec": lambda: exec_,
          "get_spec": lambda: NS(speculative_num_draft_tokens=None), "get_context": _Context,
          "get_parallel": lambda: parallel, "get_disagg": lambda: NS(disaggregation_mode="null"),
          "get_mm": lambda: NS(mm_feature_transport=None), "envs": env, "logger": logging.getLogger("sglang"),
          "logging": logging, "math": math, "gc": gc, "torch": torch, "Backend": NS(FULL="full"),
          "get_available_gpu_memory": lambda *a, **k: available / GiB,
          "mm_runtime_reservation_gb": lambda **k: 0.0, "_pd_prefill_skips_mamba_spec_state": lambda: False,
          "get_mamba_tracking_slots": sys.modules["sglang.srt.mem_cache.allocation_sizing"].get_mamba_tracking_slots,
          "get_pp_indices": None}
    ns.update(_constants(cfg_path, ("MAMBA_CACHE_SIZE_MAX_RUNNING_REQUESTS_RATIO", "MAMBA_CACHE_BASE_RATIO_DROP_ON_SKIP",
                                    "MAMBA_CACHE_V2_ADDITIONAL_RATIO_NO_BUFFER")))
    m = _methods(cfg_path, "KVCacheConfigurator",
                 ("_profile_available_bytes", "_handle_max_mamba_cache", "_calculate_mamba_ratio",
                  "resolve_max_num_reqs"), ns)
    pool_ns = {"get_schedule": lambda: schedule, "MemoryPoolConfig": lambda **kw: NS(**kw)}
    pool = _methods(f"{src}/sglang/srt/model_executor/pool_configurator.py", "DefaultPoolConfigurator",
                    ("calculate_pool_sizes",), pool_ns)

    kv_heads = max(1, hf.get("num_key_value_heads") or hf.get("num_attention_heads") or 0) if full_ids else 0
    head_dim = hf.get("head_dim") or (hf["hidden_size"] // hf["num_attention_heads"] if full_ids else 0)
    dtype_bytes = 2  # bfloat16 KV cache
    cell = max(1, kv_heads // tp) * (head_dim + head_dim) * len(full_ids) * dtype_bytes if full_ids else 0

    kvc = NS(mambaish_config=config, post_capture_kv_active=False, device="cuda", gpu_id=0, pp_size=1,
             spec_algorithm=NS(is_none=lambda: True), hybrid_gdn_config=None, hybrid_kda_config=None,
             extra_mamba_cache_bytes_per_req=0, fused_entry_bytes=lambda _n: None, attn_dp_size=1,
             model_config=NS(context_len=context_len, is_multimodal=False, num_hidden_layers=hf.get(
                 "num_hidden_layers")))
    kvc._handle_max_mamba_cache = types.MethodType(m["_handle_max_mamba_cache"], kvc)
    kvc._calculate_mamba_ratio = types.MethodType(m["_calculate_mamba_ratio"], kvc)
    rest = m["_profile_available_bytes"](kvc, total / GiB)
    pc = NS(_fixed_overhead_bytes=0, _cell_size=cell, _zero_kv_max_tokens=schedule.max_total_tokens or context_len)
    tokens = pool["calculate_pool_sizes"](pc, rest, schedule.page_size).max_total_num_tokens
    reqs = m["resolve_max_num_reqs"](kvc, tokens)
    dt = params.dtype
    return {
        "sglang_version": SGLANG_VERSION, "model_type": model_type, "architecture": arch, "overrides": overrides,
        "context_len": context_len, "total_bytes": total, "available_bytes": available, "mem_fraction_static": mfs,
        "server_args": server, "tensor_parallel_size": tp, "layers": hf.get("num_hidden_layers"),
        "attention_layers": len(full_ids), "mamba_layers": len(params.layers),
        "conv_shapes": [list(s) for s in params.shape.conv], "temporal_shape": list(params.shape.temporal),
        "conv_dtype": str(dt.conv).removeprefix("torch."), "ssm_dtype": str(dt.temporal).removeprefix("torch."),
        "mamba_cache_per_req": params.mamba_cache_per_req, "max_mamba_cache_size": schedule.max_mamba_cache_size,
        "mamba_pool_bytes": (schedule.max_mamba_cache_size + 1) * params.mamba_cache_per_req,
        "mamba_ratio": kvc._calculate_mamba_ratio(), "kv_budget_bytes": rest, "cell_size": cell,
        "max_total_num_tokens": tokens, "max_running_requests": reqs,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()
    src = os.environ.get("SGLANG_SRC")
    if not src or not Path(src, "sglang/srt/mem_cache/kv_cache_configurator.py").is_file():
        sys.exit("SGLANG_SRC must point at an unpacked SGLang wheel (see the module's docstring)")
    sys.path.insert(0, src)  # sglang.srt.mem_cache.allocation_sizing is imported from the wheel itself
    pkgs = ("sglang", "sglang.srt", "sglang.srt.mem_cache")
    rows = []
    for case in CASES:
        for p in pkgs:
            sys.modules.pop(p, None)
        _install_stubs(src, NS(attn_tp_size=1), NS())
        mc = types.ModuleType("sglang.srt.mem_cache")
        mc.__path__ = [f"{src}/sglang/srt/mem_cache"]
        sys.modules[mc.__name__] = mc
        spec = importlib.util.spec_from_file_location("sglang.srt.mem_cache.allocation_sizing",
                                                      f"{src}/sglang/srt/mem_cache/allocation_sizing.py")
        al = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = al
        try:
            spec.loader.exec_module(al)
        except ImportError:  # its module-level imports reach the runtime; only the pure helper is needed
            src_text = Path(spec.origin).read_text()
            tree = ast.parse(src_text)
            fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "get_mamba_tracking_slots")
            exec(compile(ast.parse(ast.get_source_segment(src_text, fn)), spec.origin, "exec"), al.__dict__)
        for k in [k for k in sys.modules if k.startswith("sglang.srt.configs.")]:
            sys.modules.pop(k)
        row = run_case(src, case)
        rows.append(row)
        print(f"{row['model_type']:17} tp{row['tensor_parallel_size']} {json.dumps(row['server_args']):42} "
              f"per_req {row['mamba_cache_per_req'] / 2**20:8.2f} MiB  slots {row['max_mamba_cache_size']:6}  "
              f"tokens {row['max_total_num_tokens']:9,}  reqs {row['max_running_requests']}")
    if args.write:
        head = ("# SGLang 0.5.23's own mamba state pool arithmetic (configs/<family>.py mamba2_cache_params, "
                "configs/mamba_utils.py, KVCacheConfigurator._profile_available_bytes / _handle_max_mamba_cache / "
                "_calculate_mamba_ratio / resolve_max_num_reqs, DefaultPoolConfigurator.calculate_pool_sizes), run "
                "on CPU from its wheel by bench/sglang_state_reference.py with the installed transformers' configs")
        args.write.write_text(head + "\n" + "".join(json.dumps(r) + "\n" for r in rows))


if __name__ == "__main__":
    main()
