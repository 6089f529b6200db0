"""vLLM's own state-cache planning (its ``MambaSpec``, the attention block size it raises to hold a mamba page, and
its KV cache planner) for recurrent and hybrid models, written to ``validation/reference/vllm_state_cache.jsonl``.

Run with vLLM 0.11.0's source tree (its wheel unpacked: no GPU needed, only the pure-Python parts run) and its
Python dependencies on the path, as ``bench/vllm_kv_reference.py``::

    PYTHONPATH=/path/to/vllm-0.11.0:/path/to/deps python bench/vllm_state_reference.py \
        [--write validation/reference/vllm_state_cache.jsonl]

For each model the transformers config (the defaults of its ``model_type`` in the installed transformers, with the
overrides in :data:`CASES`) is handed to vLLM's own code, in the order its engine calls it:

1. the model class vLLM registers for the architecture (``ModelRegistry.resolve_model_cls``) gives the state
   shapes and dtypes (``get_mamba_state_shape_from_config`` / ``get_mamba_state_dtype_from_config``: vLLM's
   ``MambaStateShapeCalculator`` and ``MambaStateDtypeCalculator``);
2. ``HybridAttentionMambaModelConfig.verify_and_update_config`` (hybrid models) raises the block size until an
   attention page holds a mamba page and pads the mamba page to it (its log lines are recorded);
3. the layers' specs are built as ``GPUModelRunner.get_kv_cache_spec`` builds them (``FullAttentionSpec`` for
   every attention layer, ``MambaSpec(block_size=max_model_len, page_size_padded=...)`` for every mamba layer;
   which layer is which is the transformers config's ``layer_types``: ``hybrid`` layers hold both);
4. ``get_kv_cache_configs`` (the "GPU KV cache size" and "Maximum concurrency" it logs),
   ``get_max_concurrency_for_kv_cache_config`` and ``max_memory_usage_bytes`` (what one request needs).

The config object is a plain namespace carrying the fields those functions read; the computing code is vLLM's.
``tests/test_vllm_state.py`` compares vramscope's vLLM state model with these records.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from pathlib import Path
from types import SimpleNamespace as NS

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

GiB = 2**30
#: (model_type, architecture vLLM registers, config overrides, max_model_len, available KV bytes, dtype,
#: mamba_ssm_cache_dtype, tensor parallel)
CASES = (
    ("jamba", "JambaForCausalLM", {}, 262144, 20 * GiB, "bfloat16", "auto", 1),
    ("jamba", "JambaForCausalLM", {}, 8192, 4 * GiB, "bfloat16", "float32", 1),
    ("falcon_h1", "FalconH1ForCausalLM", {}, 32768, 10 * GiB, "bfloat16", "auto", 1),
    ("nemotron_h", "NemotronHForCausalLM", {}, 16384, 6 * GiB, "bfloat16", "auto", 1),
    ("bamba", "BambaForCausalLM", {"attn_layer_indices": [9, 18, 27]}, 32768, 8 * GiB, "bfloat16", "auto", 1),
    ("granitemoehybrid", "GraniteMoeHybridForCausalLM",
     {"layer_types": ["full_attention" if i % 10 == 5 else "linear_attention" for i in range(40)],
      "num_hidden_layers": 40}, 131072, 12 * GiB, "bfloat16", "auto", 1),
    ("zamba2", "Zamba2ForCausalLM", {}, 4096, 3 * GiB, "bfloat16", "auto", 1),
    ("mamba2", "Mamba2ForCausalLM", {}, 8192, 2 * GiB, "bfloat16", "auto", 1),
    ("mamba", "MambaForCausalLM", {}, 8192, 1 * GiB, "bfloat16", "auto", 1),
    ("jamba", "JambaForCausalLM", {}, 65536, 16 * GiB, "bfloat16", "auto", 2),
)


from vllm_kv_reference import Capture  # noqa: E402  (vLLM's log lines, as the KV reference reads them)


def hf_config(model_type: str, overrides: dict):
    import transformers

    return transformers.AutoConfig.for_model(model_type, **overrides)


def run(model_type: str, arch: str, overrides: dict, max_len: int, avail: int, dtype: str, ssm_dtype: str,
        tp: int) -> dict:
    import torch
    from vllm.model_executor.models import ModelRegistry
    from vllm.model_executor.models.config import HybridAttentionMambaModelConfig
    from vllm.v1 import kv_cache_interface as ki
    from vllm.v1.core import kv_cache_utils as ku

    cfg = hf_config(model_type, overrides)
    text = cfg.get_text_config()
    kinds = list(text.layer_types)
    attn = [i for i, t in enumerate(kinds) if t in ("full_attention", "hybrid", "attention")]
    mamba = [i for i, t in enumerate(kinds) if t in ("linear_attention", "hybrid", "mamba")]
    heads = getattr(text, "num_attention_heads", 0) if attn else 0
    kv_heads = (getattr(text, "num_key_value_heads", None) or heads) if attn else 0
    head = (getattr(text, "head_dim", None) or getattr(text, "attention_head_dim", None)
            or text.hidden_size // heads) if attn else 0
    if model_type == "zamba2":  # Zamba2's shared attention runs on the doubled hidden state (vLLM zamba2.py)
        head = getattr(text, "attention_head_dim", None) or 2 * text.hidden_size // text.num_attention_heads
    torch_dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    parallel = NS(tensor_parallel_size=tp, decode_context_parallel_size=1)
    model_config = NS(
        hf_config=cfg, hf_text_config=text, dtype=torch_dtype, max_model_len=max_len, architecture=arch,
        model_impl="auto", runner_type="generate", convert_type="none",
        get_num_kv_heads=lambda p: max(1, kv_heads // p.tensor_parallel_size), get_head_size=lambda: head)
    cache = NS(block_size=16, cache_dtype="auto", mamba_page_size_padded=None, mamba_cache_dtype="auto",
               mamba_ssm_cache_dtype=ssm_dtype, enable_prefix_caching=False, num_gpu_blocks_override=None)
    vc = NS(model_config=model_config, cache_config=cache, parallel_config=parallel,
            compilation_config=NS(cudagraph_mode=None), speculative_config=None,
            scheduler_config=NS(max_num_batched_tokens=2048, disable_hybrid_kv_cache_manager=False))
    cls, _ = ModelRegistry.resolve_model_cls(arch, model_config=model_config)
    shapes = cls.get_mamba_state_shape_from_config(vc)
    dtypes = cls.get_mamba_state_dtype_from_config(vc)
    cap = Capture()
    logging.getLogger("vllm").addHandler(cap)
    try:
        if attn:
            HybridAttentionMambaModelConfig.verify_and_update_config(vc)
        specs = {}
        for i in attn:
            specs[f"model.layers.{i}.attn"] = ki.FullAttentionSpec(block_size=cache.block_size,
                                                                  num_kv_heads=model_config.get_num_kv_heads(parallel),
                                                                  head_size=head, dtype=torch_dtype)
        for i in mamba:
            specs[f"model.layers.{i}.mamba"] = ki.MambaSpec(shapes=tuple(shapes), dtypes=tuple(dtypes),
                                                            block_size=max_len,
                                                            page_size_padded=cache.mamba_page_size_padded,
                                                            mamba_type="mamba2")
        needed = ku.max_memory_usage_bytes(vc, specs.values())
        configs = ku.get_kv_cache_configs(vc, [dict(specs)], [avail])
    finally:
        logging.getLogger("vllm").removeHandler(cap)
    c = configs[0]
    text_log = " ".join(cap.lines)
    tokens = re.search(r"GPU KV cache size: ([\d,]+) tokens", text_log)
    conc = re.search(r"Maximum concurrency for [\d,]+ tokens per request: ([\d.]+)x", text_log)
    raised = re.search(r"Setting attention block size to (\d+) tokens", text_log)
    mamba_spec = specs[f"model.layers.{mamba[0]}.mamba"]
    return {
        "vllm_version": __import__("vllm").__version__, "model_type": model_type, "architecture": arch,
        "overrides": overrides, "max_model_len": max_len, "available_bytes": avail, "dtype": dtype,
        "mamba_ssm_cache_dtype": ssm_dtype, "tensor_parallel_size": tp, "layers": len(kinds),
        "attention_layers": len(attn), "mamba_layers": len(mamba),
        "state_shapes": [list(s) for s in shapes], "state_dtypes": [str(d).replace("torch.", "") for d in dtypes],
        "block_size": cache.block_size, "logged_block_size": int(raised.group(1)) if raised else None,
        "mamba_page_bytes": mamba_spec.page_size_bytes,
        "mamba_state_bytes": sum(__import__("math").prod(s) * d.itemsize for s, d in zip(shapes, dtypes)),
        "needed_bytes": needed, "num_blocks": c.num_blocks,
        "groups": [type(g.kv_cache_spec).__name__ for g in c.kv_cache_groups],
        "group_layers": [len(g.layer_names) for g in c.kv_cache_groups],
        "printed_tokens": int(tokens.group(1).replace(",", "")) if tokens else None,
        "printed_concurrency": float(conc.group(1)) if conc else None,
        "concurrency": ku.get_max_concurrency_for_kv_cache_config(vc, c),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()
    rows = [run(*case) for case in CASES]
    lines = [json.dumps(r) for r in rows]
    if args.write:
        head = [f"# vLLM {rows[0]['vllm_version']}'s own state-cache planning (ModelRegistry's model classes: "
                "get_mamba_state_shape_from_config / get_mamba_state_dtype_from_config; "
                "HybridAttentionMambaModelConfig.verify_and_update_config; MambaSpec; kv_cache_utils.py: "
                "get_kv_cache_configs, get_max_concurrency_for_kv_cache_config, max_memory_usage_bytes), run on CPU "
                "by bench/vllm_state_reference.py with the transformers configs of the installed transformers"]
        args.write.write_text("\n".join(head + lines) + "\n")
    else:
        print("\n".join(lines))


if __name__ == "__main__":
    main()
