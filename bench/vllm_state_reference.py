"""vLLM's own state-cache planning (its ``MambaSpec``, the attention block size it raises to hold a mamba page, and
its KV cache planner) for recurrent and hybrid models, written to ``validation/reference/vllm_state_cache.jsonl``.

Run with a vLLM release's source tree (its wheel unpacked, ``*.so`` left out: no GPU needed, only the pure-Python
parts run) and its Python dependencies on the path, as ``bench/vllm_kv_reference.py``::

    PYTHONPATH=/path/to/vllm-0.33.0:/path/to/deps:bench python bench/vllm_state_reference.py \
        [--write validation/reference/vllm_state_cache.jsonl]

Releases before 0.21 run :func:`run` over :data:`CASES` (read at 0.11.0); later ones :func:`run_v33` over
:data:`CASES_V33` (read at 0.33.0: prefix caching of mamba states, pipeline stages). Rows of other releases already
in the file are kept.

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


def layer_shapes(model_type: str, overrides: dict):
    """The config, its text config, layer kinds, attention and mamba layer indices, KV heads and head size, as
    both vLLM versions' runs read them."""
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
    return cfg, text, kinds, attn, mamba, kv_heads, head


def run(model_type: str, arch: str, overrides: dict, max_len: int, avail: int, dtype: str, ssm_dtype: str,
        tp: int) -> dict:
    import torch
    from vllm.model_executor.models import ModelRegistry
    from vllm.model_executor.models.config import HybridAttentionMambaModelConfig
    from vllm.v1 import kv_cache_interface as ki
    from vllm.v1.core import kv_cache_utils as ku

    cfg, text, kinds, attn, mamba, kv_heads, head = layer_shapes(model_type, overrides)
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


#: vLLM 0.33: (model_type, architecture, config overrides, max_model_len, available KV bytes per pipeline stage,
#: dtype, mamba_ssm_cache_dtype, tensor parallel, prefix caching (None: the model's default,
#: ``ModelConfig.is_prefix_caching_supported``: on for hybrid models, off for attention-free ones))
CASES_V33 = (
    ("jamba", "JambaForCausalLM", {}, 262144, (20 * GiB,), "bfloat16", "auto", 1, None),
    ("jamba", "JambaForCausalLM", {}, 262144, (20 * GiB,), "bfloat16", "auto", 1, False),
    ("jamba", "JambaForCausalLM", {}, 8192, (4 * GiB,), "bfloat16", "float32", 1, None),
    ("falcon_h1", "FalconH1ForCausalLM", {}, 32768, (10 * GiB,), "bfloat16", "auto", 1, None),
    ("falcon_h1", "FalconH1ForCausalLM", {}, 32768, (10 * GiB,), "bfloat16", "auto", 1, False),
    ("nemotron_h", "NemotronHForCausalLM", {}, 16384, (6 * GiB,), "bfloat16", "auto", 1, None),
    ("nemotron_h", "NemotronHForCausalLM", {}, 16384, (6 * GiB,), "bfloat16", "auto", 1, False),
    ("granitemoehybrid", "GraniteMoeHybridForCausalLM",
     {"layer_types": ["full_attention" if i % 10 == 5 else "linear_attention" for i in range(40)],
      "num_hidden_layers": 40}, 131072, (12 * GiB,), "bfloat16", "auto", 1, None),
    ("zamba2", "Zamba2ForCausalLM", {}, 4096, (3 * GiB,), "bfloat16", "auto", 1, None),
    ("mamba2", "Mamba2ForCausalLM", {}, 8192, (2 * GiB,), "bfloat16", "auto", 1, None),
    ("mamba2", "Mamba2ForCausalLM", {}, 8192, (2 * GiB,), "bfloat16", "auto", 1, True),
    ("mamba", "MambaForCausalLM", {}, 8192, (1 * GiB,), "bfloat16", "auto", 1, None),
    ("mamba", "MambaForCausalLM", {}, 8192, (1 * GiB,), "bfloat16", "auto", 1, True),
    ("jamba", "JambaForCausalLM", {}, 65536, (16 * GiB,), "bfloat16", "auto", 2, None),
    # pipeline parallel: each stage's layers as get_pp_indices gives them, the whole model's groups projected
    ("jamba", "JambaForCausalLM", {}, 65536, (8 * GiB, 7 * GiB), "bfloat16", "auto", 1, None),
    ("jamba", "JambaForCausalLM", {}, 65536, (8 * GiB, 7 * GiB), "bfloat16", "auto", 1, False),
    ("falcon_h1", "FalconH1ForCausalLM", {}, 32768, (5 * GiB, 4 * GiB, 6 * GiB), "bfloat16", "auto", 1, None),
    ("nemotron_h", "NemotronHForCausalLM", {}, 16384, (3 * GiB, 3 * GiB), "bfloat16", "auto", 1, None),
    ("granitemoehybrid", "GraniteMoeHybridForCausalLM",
     {"layer_types": ["full_attention" if i % 10 == 5 else "linear_attention" for i in range(40)],
      "num_hidden_layers": 40}, 131072, (6 * GiB, 7 * GiB), "bfloat16", "auto", 1, False),
    ("mamba2", "Mamba2ForCausalLM", {}, 8192, (1 * GiB, 1 * GiB), "bfloat16", "auto", 1, None),
    ("jamba", "JambaForCausalLM", {}, 262144, (1 * GiB, 2 * GiB), "bfloat16", "auto", 1, None),
    # gated delta net: the GDN prefill kernel vLLM resolves here (Triton: not Hopper / Blackwell), so no
    # checkpoint block and no 64-token alignment (FlashInfer's, on those GPUs)
    ("qwen3_next", "Qwen3NextForCausalLM", {}, 65536, (12 * GiB,), "bfloat16", "auto", 1, None),
    ("qwen3_next", "Qwen3NextForCausalLM", {}, 65536, (12 * GiB,), "bfloat16", "auto", 1, False),
    ("qwen3_next", "Qwen3NextForCausalLM", {}, 65536, (6 * GiB, 6 * GiB), "bfloat16", "auto", 1, None),
)

#: vLLM 0.33 on a Hopper GPU (compute capability 9.0: ``_resolve_gdn_prefill_backend`` picks FlashInfer's GDN
#: prefill kernel, whose layer exports prefill checkpoints aligned to 64 tokens): the case and the capability the
#: platform reports (the only platform queries that function makes: is_xpu / is_rocm / is_cuda /
#: is_device_capability(90) / is_device_capability_family / get_cuda_runtime_major)
CASES_V33_HOPPER = (
    (("qwen3_next", "Qwen3NextForCausalLM", {}, 65536, (12 * GiB,), "bfloat16", "auto", 1, None), "9.0"),
    (("qwen3_next", "Qwen3NextForCausalLM", {}, 65536, (12 * GiB,), "bfloat16", "auto", 1, False), "9.0"),
    (("qwen3_next", "Qwen3NextForCausalLM", {}, 262144, (40 * GiB,), "bfloat16", "auto", 2, None), "9.0"),
    (("qwen3_next", "Qwen3NextForCausalLM", {}, 65536, (6 * GiB, 6 * GiB), "bfloat16", "auto", 1, None), "9.0"),
)

#: the mamba layer class vLLM 0.33's model file builds for each architecture (jamba.py, mamba.py: MambaMixer;
#: mamba2.py, falcon_h1.py, nemotron_h.py, granitemoehybrid.py, zamba2.py: MambaMixer2; qwen3_next.py:
#: QwenGatedDeltaNetAttention)
MIXER_V33 = {"JambaForCausalLM": "MambaMixer", "MambaForCausalLM": "MambaMixer",
             "Qwen3NextForCausalLM": "QwenGatedDeltaNetAttention"}


def run_v33(model_type: str, arch: str, overrides: dict, max_len: int, avail: tuple, dtype: str, ssm_dtype: str,
            tp: int, prefix: bool | None, cc: str | None = None) -> dict:
    """vLLM 0.33's state-cache planning, in the order its engine runs it: ``MambaModelConfig.
    verify_and_update_config`` (through ``HybridAttentionMambaModelConfig``: prefix caching turns
    ``mamba_cache_mode`` to 'align' and ``mamba_block_size`` to the block size; without it ``mamba_block_size``
    is ``max_model_len``), the architecture's own config hook (``MODELS_CONFIG_MAP``: Nemotron-H's float32 SSM
    state), ``Platform.update_block_size_for_backend`` (``_align_hybrid_block_size``, FlashAttention's kernel
    block sizes as it reports them here), each mamba layer's own ``get_kv_cache_spec`` (the real ``MambaMixer`` /
    ``MambaMixer2`` method, on an instance carrying the state shapes and dtypes of the model class's
    ``get_mamba_state_shape_from_config``), attention layers as ``FullAttentionSpec``, then the planner
    (``kv_cache_planning.get_global_kv_cache_groups`` / ``get_kv_cache_configs`` over the pipeline stages'
    layers from ``get_pp_indices``, ``kv_cache_utils.get_kv_cache_capacity``)."""
    import torch
    import vllm.model_executor.layers.mamba.mamba_mixer as mm1
    import vllm.model_executor.layers.mamba.gdn.qwen_gdn_linear_attn as gdn
    import vllm.model_executor.layers.mamba.mamba_mixer2 as mm2
    from vllm.config.vllm import set_current_vllm_config
    from vllm.distributed.utils import get_pp_indices
    from vllm.model_executor.layers.attention_layer_base import AttentionLayerBase
    from vllm.model_executor.models import ModelRegistry
    from vllm.model_executor.models.config import MODELS_CONFIG_MAP, HybridAttentionMambaModelConfig, \
        MambaModelConfig
    from vllm.platforms.interface import Platform
    from vllm.v1 import kv_cache_interface as ki
    from vllm.v1.attention.backends.flash_attn import FlashAttentionBackend
    from vllm.v1.core import kv_cache_planning as kp
    from vllm.v1.core import kv_cache_utils as ku

    from vllm_kv_reference import v33_config

    cfg, text, kinds, attn, mamba, kv_heads, head = layer_shapes(model_type, overrides)
    torch_dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    mnbt = 2048
    vc = v33_config(max_len, mnbt, False, kv_transfer_config=None)
    enable = prefix if prefix is not None else bool(attn)  # is_prefix_caching_supported: hybrid yes, attn-free no
    vc.cache_config.__dict__.update(
        block_size=16, user_specified_block_size=False, cache_dtype="auto", mamba_page_size_padded=None,
        mamba_cache_dtype="auto", mamba_ssm_cache_dtype=ssm_dtype, mamba_block_size=None, mamba_cache_mode="none",
        enable_prefix_caching=enable, kv_cache_dtype_skip_layers=[], use_replayssm=False, prefix_match_unit=None)
    vc.parallel_config.__dict__.update(tensor_parallel_size=tp, pipeline_parallel_size=len(avail),
                                       decode_context_parallel_size=1)
    vc.model_config.__dict__.update(
        hf_config=cfg, hf_text_config=text, dtype=torch_dtype, architecture=arch, is_hybrid=bool(attn),
        use_mla=False, model_impl="auto", runner_type="generate", convert_type="none",
        original_max_model_len=max_len, supports_kv_cache_grouping=False,
        get_num_kv_heads=lambda p: max(1, kv_heads // p.tensor_parallel_size), get_head_size=lambda: head)
    vc.scheduler_config.enable_chunked_prefill = True
    vc.compilation_config = NS(static_forward_context={}, cudagraph_mode=None)
    vc.num_speculative_tokens = 0
    vc.additional_config = {}
    cls, _ = ModelRegistry.resolve_model_cls(arch, model_config=vc.model_config)
    hook = MODELS_CONFIG_MAP.get(arch)
    if hook is not None:
        hook.verify_and_update_config(vc)
    if attn:
        HybridAttentionMambaModelConfig.verify_and_update_config(vc)
    else:
        MambaModelConfig.verify_and_update_config(vc)
    shapes = tuple(cls.get_mamba_state_shape_from_config(vc))
    dtypes = tuple(cls.get_mamba_state_dtype_from_config(vc))
    name = MIXER_V33.get(arch, "MambaMixer2")
    mixer_cls = getattr({"MambaMixer": mm1, "QwenGatedDeltaNetAttention": gdn}.get(name, mm2), name)

    class Attn(AttentionLayerBase):  # an attention layer as the platform finds it: its backend
        def get_attn_backend(self):
            return FlashAttentionBackend

        def get_kv_cache_spec(self, vllm_config):
            return None

    if cc is not None:  # the GPU the platform reports to the GDN kernel choice
        gdn.current_platform = NS(is_xpu=lambda: False, is_rocm=lambda: False, is_cuda=lambda: True,
                                  is_device_capability=lambda c: c == int(cc.replace(".", "")),
                                  is_device_capability_family=lambda c: c == int(cc.split(".")[0]) * 10,
                                  get_cuda_runtime_major=lambda: 12)

    def mixer():
        layer = mixer_cls.__new__(mixer_cls)
        torch.nn.Module.__init__(layer)
        layer.get_state_shape = lambda: shapes
        layer.get_state_dtype = lambda: dtypes
        if name == "QwenGatedDeltaNetAttention":  # what its __init__ keeps: the prefill kernel resolved here
            _, backend = gdn._resolve_gdn_prefill_backend(vc)
            layer.vllm_config = vc
            layer._checkpoint_alignment = (gdn.FLASHINFER_GDN_CHECKPOINT_ALIGNMENT if backend == "flashinfer"
                                           and vc.cache_config.mamba_cache_mode == "align" else None)
        return layer

    ctx = vc.compilation_config.static_forward_context
    for i in attn:
        ctx[f"model.layers.{i}.attn"] = Attn()
    for i in mamba:
        ctx[f"model.layers.{i}.mamba"] = mixer()
    with set_current_vllm_config(vc):
        Platform.update_block_size_for_backend(vc)
    specs = {}
    for i in attn:
        specs[f"model.layers.{i}.attn"] = ki.FullAttentionSpec(
            block_size=vc.cache_config.block_size, num_kv_heads=vc.model_config.get_num_kv_heads(vc.parallel_config),
            head_size=head, dtype=torch_dtype)
    for i in mamba:
        specs[f"model.layers.{i}.mamba"] = ctx[f"model.layers.{i}.mamba"].get_kv_cache_spec(vc)
    order = sorted(specs, key=lambda k: int(k.split(".")[2]))
    workers = []
    for r in range(len(avail)):
        lo, hi = get_pp_indices(len(kinds), r, len(avail))
        workers.append({k: specs[k] for k in order if lo <= int(k.split(".")[2]) < hi})
    groups = kp.get_global_kv_cache_groups(vc, [dict(w) for w in workers])
    builder = kp.DefaultKVCacheConfigBuilder()
    projected = [kp._project_kv_cache_groups_to_worker(groups, w) for w in workers]
    needed = [kp._max_memory_usage_bytes_from_groups(builder, vc, g)
              + kp._pool_bytes_per_block_from_builder(builder, vc, g) for g in projected]
    try:
        configs = kp.get_kv_cache_configs(vc, [dict(w) for w in workers], list(avail), groups)
        error = None
    except ValueError as e:
        configs, error = None, str(e)
    mamba_spec = specs[f"model.layers.{mamba[0]}.mamba"]
    out = {
        "vllm_version": __import__("vllm").__version__, "model_type": model_type, "architecture": arch,
        "overrides": overrides, "max_model_len": max_len, "available_bytes": list(avail), "dtype": dtype,
        "mamba_ssm_cache_dtype": ssm_dtype, "tensor_parallel_size": tp, "pipeline_parallel_size": len(avail),
        "enable_prefix_caching": prefix, "prefix_caching": enable,
        "mamba_cache_mode": vc.cache_config.mamba_cache_mode, "mamba_block_size": mamba_spec.block_size,
        "mixer": mixer_cls.__name__, "layers": len(kinds), "attention_layers": len(attn),
        "mamba_layers": len(mamba), "stage_specs": [len(w) for w in workers],
        "state_shapes": [list(s) for s in shapes], "state_dtypes": [str(d).replace("torch.", "") for d in dtypes],
        "block_size": vc.cache_config.block_size, "mamba_page_bytes": mamba_spec.page_size_bytes,
        "mamba_state_bytes": mamba_spec.state_content_size_bytes,
        "num_prefill_checkpoint_blocks": mamba_spec.num_prefill_checkpoint_blocks,
        "mamba_blocks_per_request": ku.cdiv(mamba_spec.max_memory_usage_bytes(vc), mamba_spec.page_size_bytes),
        "needed_bytes": needed,
    }
    if cc is not None:
        out["compute_capability"] = cc
    if configs is None:
        out["error"] = error
        return out
    tokens, conc = ku.get_kv_cache_capacity(vc, configs[0])
    out.update(num_blocks=configs[0].num_blocks,
               groups=[type(g.kv_cache_spec).__name__ for g in configs[0].kv_cache_groups],
               stage_group_layers=[[len(g.layer_names) for g in c.kv_cache_groups] for c in configs],
               stage_kv_bytes=[c.num_blocks * kp._pool_bytes_per_block_from_builder(builder, vc, g)
                               for c, g in zip(configs, projected)],
               printed_tokens=tokens, concurrency=conc)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()
    v33 = tuple(int(x) for x in __import__("vllm").__version__.split(".")[:2]) >= (0, 21)
    rows = [run_v33(*case) for case in CASES_V33] + [run_v33(*case, cc=cc) for case, cc in CASES_V33_HOPPER] \
        if v33 else [run(*case) for case in CASES]
    lines = [json.dumps(r) for r in rows]
    if args.write:
        version = rows[0]["vllm_version"]
        funcs = ("MambaModelConfig / HybridAttentionMambaModelConfig.verify_and_update_config, "
                 "Platform.update_block_size_for_backend, MambaMixer/MambaMixer2.get_kv_cache_spec, MambaSpec; "
                 "kv_cache_planning.py: get_global_kv_cache_groups, get_kv_cache_configs; kv_cache_utils.py: "
                 "get_kv_cache_capacity" if v33 else
                 "HybridAttentionMambaModelConfig.verify_and_update_config; MambaSpec; kv_cache_utils.py: "
                 "get_kv_cache_configs, get_max_concurrency_for_kv_cache_config, max_memory_usage_bytes")
        head = [f"# vLLM {version}'s own state-cache planning (ModelRegistry's model classes: "
                f"get_mamba_state_shape_from_config / get_mamba_state_dtype_from_config; {funcs}), run on CPU "
                "by bench/vllm_state_reference.py with the transformers configs of the installed transformers"]
        old = [ln for ln in args.write.read_text().splitlines() if ln and not ln.startswith("#")
               and json.loads(ln)["vllm_version"] != version] if args.write.exists() else []
        prev = [ln for ln in args.write.read_text().splitlines() if ln.startswith("#") and version not in ln] \
            if args.write.exists() else []
        args.write.write_text("\n".join(prev + head + old + lines) + "\n")
    else:
        print("\n".join(lines))


if __name__ == "__main__":
    main()
