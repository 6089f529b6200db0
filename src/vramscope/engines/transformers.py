"""transformers ``generate()``: memory by demand, with a dynamic (or static) KV cache.

``load`` holds the weights; ``prefill`` adds the KV cache of the whole context and the prefill transient;
``decode`` holds weights, the cache and a one-token transient. Under tensor parallelism each GPU holds its
slice (``memory/parallel.py: tp_shard_spec``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from ..gpus import Gpu
from ..memory.activations import inference_transient
from ..memory.kv_cache import KV_DTYPE_BYTES, kv_cache_bytes
from ..result import Assumption
from ..sources.base import ResolvedModel
from ..memory.device import read_alloc_conf
from ..options import Option
from .base import Candidate, Engine, EngineReport, Phases, rank_weights

if TYPE_CHECKING:
    from ..workload import Workload



class Transformers(Engine):
    name = "transformers"
    traceable = True
    caching_allocator = True
    overhead_note = "a_overhead_torch"
    aliases = ("hf",)
    trains = True
    static_cache = True
    options = (
        Option("alloc_conf", ("--alloc-conf",), "custom", None, group="run", owner="transformers",
               parse=read_alloc_conf, metavar="PYTORCH_CUDA_ALLOC_CONF",
               help_en="torch's caching-allocator settings, as PYTORCH_CUDA_ALLOC_CONF: expandable_segments:True, "
                       "max_split_size_mb:128, roundup_power2_divisions:4, garbage_collection_threshold:0.8, ... "
                       "(vramscope trace replays the allocations under them; default: torch's defaults)",
               help_zh="torch 缓存分配器设置，写法同 PYTORCH_CUDA_ALLOC_CONF：expandable_segments:True、"
                       "max_split_size_mb:128、roundup_power2_divisions:4、garbage_collection_threshold:0.8 等"
                       "（vramscope trace 会按这些设置重放分配序列；默认：torch 的默认设置）"),
    )

    def inference(self, model: ResolvedModel, w: Workload, dtype: str, notes: list[Assumption],
                  gpus: tuple[Gpu, ...]) -> tuple[Phases, Optional[EngineReport]]:
        a, spec, held = rank_weights(model, w, dtype, notes)
        kv_dtype = w.kv_dtype or dtype
        # transformers' DynamicCache keeps every prompt token through prefill, sliding-window layers included
        # (DynamicSlidingWindowLayer crops only from the first decode step on; checked by trace). A static cache
        # (cache_implementation="static") preallocates max_cache_len = the context, sliding layers only their
        # window.
        kv = kv_cache_bytes(spec, w.seq, w.batch, KV_DTYPE_BYTES[kv_dtype], encoder_tokens=w.seq,
                            cap_sliding=w.cache == "static")
        prefill = inference_transient(spec, w.batch, w.seq, a, w.attn, all_logits=spec.kind == "encoder")
        decode = inference_transient(spec, w.batch, 1, a, w.attn)
        notes.append(Assumption("a_inference_context", {"seq": w.seq, "batch": w.batch, "kv_dtype": kv_dtype,
                                                        "attn": w.attn}))
        if spec.sliding_window and spec.kind != "encoder":
            notes.append(Assumption("a_sliding", {"window": spec.sliding_window}))
        if spec.mla is not None:
            notes.append(Assumption("a_mla_transformers"))
        return {
            "load": {"weights": held},
            "prefill": {"weights": held, "kv_cache": kv, "activations": prefill},
            "decode": {"weights": held, "kv_cache": kv, "activations": decode},
        }, None

    def suggestions(self, model: ResolvedModel, w: Workload, usable: int, needs) -> list[Candidate]:
        cands: list[Candidate] = []
        if w.quant == "none":
            cands += [("s_quant", {"quant": "int8"}, {"quant": "int8"}, "quality"),
                      ("s_quant", {"quant": "nf4"}, {"quant": "nf4"}, "quality")]
        if (w.kv_dtype or "") not in ("fp8", "int8", "q8_0", "q4_0"):
            cands.append(("s_kv_dtype", {"kv_dtype": "fp8"}, {"kv_dtype": "fp8"}, "quality"))
        return cands


ENGINE = Transformers()
