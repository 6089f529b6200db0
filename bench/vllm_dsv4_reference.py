"""vLLM 0.33.0's own KV cache planning for DeepSeek-V4 (Flash / Pro), written to
``validation/reference/vllm_dsv4_cache.jsonl``.

Run with the release's source tree (its wheel unpacked, ``*.so`` left out: only pure-Python parts run) and its
Python dependencies on the path, as ``bench/vllm_state_reference.py``::

    PYTHONPATH=/path/to/vllm-0.33.0:/path/to/deps:bench python bench/vllm_dsv4_reference.py \
        [--write validation/reference/vllm_dsv4_cache.jsonl]

For each case the catalog's config.json is made a transformers ``DeepseekV4Config`` (its ``layer_types`` and
``compress_rates``), and the cache layers vLLM 0.33.0's ``DeepseekV4Attention.__init__``
(``vllm/models/deepseek_v4/attention.py``) registers for each decoder layer are built in its order, with the
CUDA attention class ``_select_dsv4_attn_cls`` picks on a GPU of compute capability 9 or 10
(``DeepseekV4FlashMLAAttention``, ``nvidia/flashmla.py``):

1. a CSA layer (compress rate 4) first builds its lightning indexer: ``DeepseekV4IndexerCache`` (the FP8 index
   keys, ``index_head_dim + index_head_dim / 128 × 4`` bytes, ``dsa_indexer_uses_fp4`` deciding) and the
   indexer's ``CompressorStateCache``;
2. every layer a ``DeepseekV4SWACache`` (``sparse_swa.py``), the attention layer itself, and for a compress rate
   above 1 its ``CompressorStateCache`` (``compressor.py``); the kv-cache dtype is the real
   ``_resolve_dsv4_kv_cache_dtype`` (FlashMLA: ``fp8_ds_mla``);
3. ``Platform.update_block_size_for_backend`` over those layers' real backends (the block size every backend
   takes), each layer's real ``get_kv_cache_spec``, the layout ``get_supported_kv_cache_layouts`` /
   ``resolve_kv_cache_layout`` resolve for them, then the planner (``kv_cache_planning.get_kv_cache_groups``,
   ``get_kv_cache_config_from_groups``, ``_max_memory_usage_bytes_from_groups``; ``kv_cache_utils.
   get_kv_cache_capacity``).

The config object is a plain namespace carrying the fields those functions read; the computing code is vLLM's.
``tests/test_vllm_dsv4.py`` compares vramscope's vLLM estimate for DeepSeek-V4 with these records.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace as NS

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

GiB = 2**30
#: (catalog model, max_model_len, max_num_batched_tokens, available KV bytes per GPU, tensor parallel)
CASES = (
    ("deepseek-ai/DeepSeek-V4-Flash", 65536, 8192, 40 * GiB, 1),
    ("deepseek-ai/DeepSeek-V4-Flash", 1048576, 8192, 40 * GiB, 1),
    ("deepseek-ai/DeepSeek-V4-Flash", 8192, 2048, 3 * GiB, 1),
    ("deepseek-ai/DeepSeek-V4-Flash", 262144, 16384, 100 * GiB, 8),
    ("deepseek-ai/DeepSeek-V4-Flash", 131072, 8192, 1 * GiB, 1),
    ("deepseek-ai/DeepSeek-V4-Pro", 1048576, 8192, 60 * GiB, 8),
    ("deepseek-ai/DeepSeek-V4-Pro", 65536, 2048, 20 * GiB, 8),
    ("deepseek-ai/DeepSeek-V4-Pro", 4096, 16384, 7 * GiB, 1),
)


def run(model: str, max_len: int, mnbt: int, avail: int, tp: int) -> dict:
    import torch
    import transformers
    import vllm.models.deepseek_v4.attention as A
    import vllm.models.deepseek_v4.compressor as C
    from vllm.config.vllm import set_current_vllm_config
    from vllm.models.deepseek_v4.nvidia.flashmla import DeepseekV4FlashMLAAttention as Attn
    from vllm.platforms.interface import Platform
    from vllm.v1.attention.backends import utils as bu
    from vllm.v1.attention.backends.mla.sparse_swa import DeepseekV4SWACache
    from vllm.v1.core import kv_cache_planning as kp
    from vllm.v1.core import kv_cache_utils as ku

    from vllm_kv_reference import v33_config
    from vramscope.sources import resolve

    hf = dict(resolve(model, hub=False).hf_config)
    hf.pop("model_type", None)
    cfg = transformers.AutoConfig.for_model("deepseek_v4", **hf)
    vc = v33_config(max_len, mnbt, False, kv_transfer_config=None)
    vc.cache_config.__dict__.update(block_size=16, user_specified_block_size=False, cache_dtype="auto",
                                    kv_cache_dtype_skip_layers=[], kv_cache_layout=None)
    vc.parallel_config.tensor_parallel_size = tp
    vc.model_config.__dict__.update(hf_config=cfg, hf_text_config=cfg, is_hybrid=False)
    vc.compilation_config = NS(static_forward_context={})
    vc.attention_config.indexer_kv_dtype = "auto"
    vc.attention_config.resolve_indexer_kv_dtype = lambda default: default  # AttentionConfig's, for "auto"
    ctx = vc.compilation_config.static_forward_context
    with set_current_vllm_config(vc):
        fp4 = A.dsa_indexer_uses_fp4(vc)
        for i, kind in enumerate(cfg.layer_types):
            rate = max(1, cfg.compress_rates.get(kind, 0))
            p = f"model.layers.{i}.attn"
            if rate == 4:  # DeepseekV4Indexer.__init__: its k cache, then its compressor
                hd = cfg.index_head_dim
                A.DeepseekV4IndexerCache(head_dim=hd // 2 + hd // 32 if fp4 else hd + hd // 128 * 4,
                                         dtype=torch.uint8, prefix=f"{p}.indexer.k_cache",
                                         cache_config=vc.cache_config, compress_ratio=rate)
                C.CompressorStateCache(state_dim=2 * 2 * hd, dtype=torch.float32, compress_ratio=rate,
                                       prefix=f"{p}.indexer.compressor.state_cache")
            layer = Attn.__new__(Attn)  # what get_kv_cache_spec reads of DeepseekV4Attention.__init__
            torch.nn.Module.__init__(layer)
            layer.compress_ratio, layer.head_dim = rate, cfg.head_dim
            layer.kv_cache_dtype, layer.kv_cache_torch_dtype = A._resolve_dsv4_kv_cache_dtype(
                layer._uses_fp8_ds_mla_layout(), vc.cache_config.cache_dtype, vc.cache_config)
            DeepseekV4SWACache(head_dim=cfg.head_dim, window_size=cfg.sliding_window,
                               dtype=layer.kv_cache_torch_dtype, prefix=f"{p}.swa_cache",
                               cache_config=vc.cache_config, backend_cls=Attn.swa_backend_cls)
            ctx[p] = layer
            if rate > 1:
                C.CompressorStateCache(state_dim=2 * (1 + (rate == 4)) * cfg.head_dim, dtype=torch.float32,
                                       compress_ratio=rate, prefix=f"{p}.compressor.state_cache")
        Platform.update_block_size_for_backend(vc)
    specs = {k: s for k, s in ((k, layer.get_kv_cache_spec(vc)) for k, layer in ctx.items()) if s is not None}
    backends = []
    for layer in ctx.values():
        if layer.get_attn_backend() not in backends:
            backends.append(layer.get_attn_backend())
    layout = bu.resolve_kv_cache_layout(vc, [[x.name for x in bu.get_supported_kv_cache_layouts(backends)]],
                                        specs.values())
    vc.cache_config.get_resolved_kv_cache_layout = lambda: layout
    groups = kp.get_kv_cache_groups(vc, dict(specs))
    builder = kp.DefaultKVCacheConfigBuilder()
    pool_block = kp._pool_bytes_per_block_from_builder(builder, vc, groups)
    needed = kp._max_memory_usage_bytes_from_groups(builder, vc, groups) + pool_block
    c = kp.get_kv_cache_config_from_groups(vc, groups, avail)
    tokens, conc = ku.get_kv_cache_capacity(vc, c)
    per_group = [g.kv_cache_spec.max_memory_usage_pages(vc) for g in groups]
    return {
        "vllm_version": __import__("vllm").__version__, "model": model, "max_model_len": max_len,
        "max_num_batched_tokens": mnbt, "available_bytes": avail, "tensor_parallel_size": tp,
        "block_size": vc.cache_config.block_size, "cache_dtype": vc.cache_config.cache_dtype,
        "layout": layout.name, "indexer_fp4": fp4,
        "specs": sorted([list(k) + [n] for k, n in Counter(
            (type(s).__name__, s.block_size, s.page_size_bytes, getattr(s, "sliding_window", None))
            for s in specs.values()).items()]),
        "groups": [[type(g.kv_cache_spec).__name__, len(g.layer_names), g.kv_cache_spec.block_size,
                    g.kv_cache_spec.page_size_bytes, b] for g, b in zip(groups, per_group)],
        "pool_block_bytes": pool_block, "needed_bytes": needed, "num_blocks": c.num_blocks,
        "blocks_per_request": sum(per_group), "printed_tokens": tokens, "concurrency": conc,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()
    rows = [run(*case) for case in CASES]
    lines = [json.dumps(r) for r in rows]
    if args.write:
        head = (f"# vLLM {rows[0]['vllm_version']}'s own KV cache planning for DeepSeek-V4 (DeepseekV4Attention's "
                "cache layers with DeepseekV4FlashMLAAttention, their get_kv_cache_spec, Platform."
                "update_block_size_for_backend, resolve_kv_cache_layout, kv_cache_planning.get_kv_cache_groups / "
                "get_kv_cache_config_from_groups, kv_cache_utils.get_kv_cache_capacity), run on CPU by "
                "bench/vllm_dsv4_reference.py")
        args.write.write_text("\n".join([head] + lines) + "\n")
    else:
        print("\n".join(lines))


if __name__ == "__main__":
    main()
