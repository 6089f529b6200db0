"""transformers ``generate()``: memory by demand, with a dynamic (or static) KV cache.

``load`` holds the weights; ``prefill`` adds the KV cache of the whole context and the prefill transient;
``decode`` holds weights, the cache and a one-token transient. Under tensor parallelism each GPU holds its
slice (``memory/parallel.py: tp_shard_spec``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from .. import i18n
from ..gpus import Gpu
from ..memory.activations import inference_transient
from ..memory.kv_cache import (FP8_CACHE_DTYPES, FP8_CACHE_SINCE, KV_DTYPE_BYTES, KV_QUANT_AXES, KV_QUANT_BITS,
                               MLA_LATENT_SINCE, SLIDING_DYNAMIC_SINCE, TRANSFORMERS_KV_DTYPES, TRANSFORMERS_MODELLED,
                               KvQuant, kv_cache_bytes, parse_version, quantized_cache_applies,
                               read_transformers_version, transformers_layout, transformers_version)
from ..result import Assumption
from ..sources.base import ResolvedModel
from ..memory.device import read_alloc_conf
from ..errors import Opt
from ..options import Option
from .base import Candidate, Engine, EngineReport, Phases, rank_weights

if TYPE_CHECKING:
    from ..workload import Workload



#: help texts of the quantized-cache options name the cache choice they apply to
_Q = {"q": Opt("cache", "quantized")}


def _image_size(value, field):
    from ..memory.image_tokens import read_image_size

    return read_image_size(value, field)


i18n.register({
    "a_images": {
        "en": "{n} image(s) of {w}x{h} pixels per sequence, {per} tokens each by the processor's rules: the context "
              "is {text} text + image tokens = {seq}; cross-attention image states {states}; the vision tower's "
              "forward over them peaks at {tower} (an estimate, ±30 %)",
        "zh": "每个序列 {n} 张 {w}x{h} 像素的图像，按处理器规则每张 {per} 个 token：上下文为 {text} 个文本 token 加图像 token，"
              "共 {seq}；交叉注意力图像状态 {states}；视觉塔对其前向的峰值为 {tower}（估计值，±30%）",
    },
})


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
        Option("transformers_version", ("--transformers-version",), "custom", None, group="run",
               owner="transformers", parse=read_transformers_version, metavar="VERSION",
               help_en="the transformers version whose KV cache layout is modelled (default: the installed one, "
                       f"else {TRANSFORMERS_MODELLED})",
               help_zh="按哪个 transformers 版本的 KV 缓存布局计算（默认：已安装的版本，否则 "
                       f"{TRANSFORMERS_MODELLED}）"),
        Option("images", ("--images",), "int", 0, group="run", owner="transformers", lo=0, hi=10000,
               help_en="images in each sequence of a vision-language model: their tokens join the context (Llama-"
                       "3.2-Vision: its cross-attention layers cache their states); default 0, text only",
               help_zh="视觉语言模型每个序列中的图像数：其 token 计入上下文（Llama-3.2-Vision：交叉注意力层缓存其状态）；"
                       "默认 0，仅文本"),
        Option("image_size", ("--image-size",), "custom", None, group="run", owner="transformers",
               parse=lambda v, f: _image_size(v, f), metavar="WxH",
               help_en="pixels of each image, e.g. 1280x720 (default: the largest the model's processor allows)",
               help_zh="每张图像的像素，例如 1280x720（默认：模型处理器允许的最大尺寸）"),
        Option("kv_backend", ("--kv-backend",), "choice", "quanto", group="run", owner="transformers",
               choices=("quanto", "hqq"),
               help_en="{q}: QuantizedCache's backend, quanto (optimum-quanto, default) | hqq",
               help_zh="{q}：QuantizedCache 的后端，quanto（optimum-quanto，默认）| hqq", help_opts=_Q),
        Option("kv_nbits", ("--kv-nbits",), "int", 4, group="run", owner="transformers", lo=1, hi=8,
               help_en="{q}: bits per value (quanto 2 or 4; hqq 1, 2, 3, 4 or 8; default 4)",
               help_zh="{q}：每个值的位数（quanto 2 或 4；hqq 1、2、3、4 或 8；默认 4）", help_opts=_Q),
        Option("kv_group_size", ("--kv-group-size",), "int", 64, group="run", owner="transformers", lo=1,
               hi=1 << 20, help_en="{q}: q_group_size, values per scale (default 64)",
               help_zh="{q}：q_group_size，每个缩放因子对应的值数（默认 64）", help_opts=_Q),
        Option("kv_residual_length", ("--kv-residual-length",), "int", 128, group="run", owner="transformers",
               lo=1, hi=1 << 24, help_en="{q}: residual_length, recent tokens kept unquantized "
                                         "(default 128)",
               help_zh="{q}：residual_length，保持未量化的最近 token 数（默认 128）", help_opts=_Q),
        Option("kv_axis_key", ("--kv-axis-key",), "int", 0, group="run", owner="transformers", lo=-1, hi=1,
               help_en="{q}: axis_key (quanto 0 or -1; hqq 0 or 1; default 0)",
               help_zh="{q}：axis_key（quanto 0 或 -1；hqq 0 或 1；默认 0）", help_opts=_Q),
        Option("kv_axis_value", ("--kv-axis-value",), "int", 0, group="run", owner="transformers", lo=-1, hi=1,
               help_en="{q}: axis_value (quanto 0 or -1; hqq 0 or 1; default 0)",
               help_zh="{q}：axis_value（quanto 0 或 -1；hqq 0 或 1；默认 0）", help_opts=_Q),
    )

    def inference(self, model: ResolvedModel, w: Workload, dtype: str, notes: list[Assumption],
                  gpus: tuple[Gpu, ...]) -> tuple[Phases, Optional[EngineReport]]:
        a, spec, held = rank_weights(model, w, dtype, notes)
        kv_dtype = w.kv_dtype or dtype
        seq, states, tower = images_in_context(spec, w, a, notes)
        kv_prefill, kv_decode = transformers_kv(spec, seq, w.batch, kv_dtype, w.cache, notes,
                                                w.transformers_version, compute_dtype=dtype, image_states=states,
                                                quant=kv_quant(w))
        prefill = max(inference_transient(spec, w.batch, seq, a, w.attn, all_logits=spec.kind == "encoder"), tower)
        decode = inference_transient(spec, w.batch, 1, a, w.attn)
        notes.append(Assumption("a_inference_context", {"seq": seq, "batch": w.batch, "kv_dtype": kv_dtype,
                                                        "attn": w.attn}))
        return {
            "load": {"weights": held},
            "prefill": {"weights": held, "kv_cache": kv_prefill, "activations": prefill},
            "decode": {"weights": held, "kv_cache": kv_decode, "activations": decode},
        }, None

    def suggestions(self, model: ResolvedModel, w: Workload, usable: int, needs) -> list[Candidate]:
        cands: list[Candidate] = []
        if w.quant == "none" and not model.spec.quant_method:  # a pre-quantized checkpoint loads as it is stored
            cands += [("s_quant", {"quant": "int8"}, {"quant": "int8"}, "quality"),
                      ("s_quant", {"quant": "nf4"}, {"quant": "nf4"}, "quality")]
        if (w.kv_dtype or "") not in ("fp8", "int8", "q8_0", "q4_0"):
            cands.append(("s_kv_dtype", {"kv_dtype": "fp8"}, {"kv_dtype": "fp8"}, "quality"))
        return cands


def images_in_context(spec, w: Workload, a: float, notes: list[Assumption]) -> tuple[int, int, int]:
    """``--images N`` (``--image-size WxH``, default the largest the processor allows) for a vision-language
    model: the context (the text plus each image's tokens, :func:`vramscope.memory.image_tokens.image_tokens`),
    the image states Llama-3.2-Vision's cross-attention layers cache, and the tower's forward peak over the
    images of the batch."""
    from ..memory.image_tokens import cross_attention_states, encoder_patches, image_tokens, largest_image, \
        tower_transient

    n = w.images
    if spec.vision is None or n <= 0:
        return w.seq, 0, 0
    width, height = w.image_size or largest_image(spec)
    per = image_tokens(spec, width, height)
    states = n * cross_attention_states(spec)
    if spec.vision.kind == "mllama":
        patches = states
    else:
        patches = n * encoder_patches(spec, per)
    tower = tower_transient(spec, w.batch * patches, a, impl="transformers")
    notes.append(Assumption("a_images", {"n": n, "w": width, "h": height, "per": f"{per:,}",
                                         "text": f"{w.seq:,}", "seq": f"{w.seq + n * per:,}",
                                         "states": f"{states:,}", "tower": f"{tower / 2**20:,.1f} MiB"}))
    return w.seq + n * per, states, tower


def kv_quant(w: Workload) -> Optional[KvQuant]:
    """``--cache quantized``'s settings, checked as ``QuantoQuantizedLayer`` / ``HQQQuantizedLayer`` check them."""
    from ..errors import VramscopeError

    if w.cache != "quantized":
        return None
    q = KvQuant(backend=w.kv_backend, nbits=w.kv_nbits, q_group_size=w.kv_group_size,
                residual_length=w.kv_residual_length, axis_key=w.kv_axis_key, axis_value=w.kv_axis_value)
    if q.nbits not in KV_QUANT_BITS[q.backend]:
        raise VramscopeError("bad_choice", field="kv_nbits", value=q.nbits,
                             allowed=f"{', '.join(map(str, KV_QUANT_BITS[q.backend]))} ({q.backend})")
    for field, axis in (("kv_axis_key", q.axis_key), ("kv_axis_value", q.axis_value)):
        if axis not in KV_QUANT_AXES[q.backend]:
            raise VramscopeError("bad_choice", field=field, value=axis,
                                 allowed=f"{', '.join(map(str, KV_QUANT_AXES[q.backend]))} ({q.backend})")
        if q.backend == "hqq" and q.nbits == 3 and axis == 1:  # HQQ 0.2.8's dequantize slices 3-bit rows to 0
            raise VramscopeError("bad_choice", field=field, value=axis, allowed="0 (hqq, 3 bits)")
    return q


def transformers_kv(spec, seq: int, batch: int, kv_dtype: str, cache: str, notes: list[Assumption],
                    named_version: Optional[str] = None, compute_dtype: str = "",
                    image_states: int = 0, quant: Optional[KvQuant] = None) -> tuple[int, int]:
    """The KV cache after the prefill and while decoding, as the transformers version modelled stores it
    (``memory/kv_cache.py``: ``transformers_layout``), with the assumptions that say how."""
    version = transformers_version(named_version)
    v = parse_version(version)
    b = KV_DTYPE_BYTES[kv_dtype]
    layouts = {p: transformers_layout(spec, version, p, cache, kv_dtype, compute_dtype or kv_dtype, quant)
               for p in ("prefill", "decode")}
    enc = image_states if spec.cross_layers else seq  # encoder-decoders: the encoder's length
    kv = {p: kv_cache_bytes(spec, seq, batch, b, encoder_tokens=enc, layout=lay) for p, lay in layouts.items()}
    if spec.kind == "encoder":
        return kv["prefill"], kv["decode"]
    notes.append(Assumption("a_kv_transformers", {"version": version, "cache": cache}))
    if quant is not None:
        if layouts["decode"].quant is None:
            notes.append(Assumption("a_kv_quantized_refused", {}))
        else:
            one_layer = int(batch * seq * (spec.num_heads if layouts["decode"].broadcast_kv else spec.num_kv_heads)
                            * spec.head_dim * 2 * b)
            notes.append(Assumption("a_kv_quantized", {
                "backend": quant.backend, "nbits": quant.nbits, "g": quant.q_group_size, "r": quant.residual_length,
                "ak": quant.axis_key, "av": quant.axis_value, "r1": max(quant.residual_length - 1, 0),
                "deq": f"{one_layer / 2**20:,.1f}"}))
    since_fp8 = ".".join(map(str, FP8_CACHE_SINCE))
    if layouts["decode"].all_full:
        notes.append(Assumption("a_kv_fp8_cache", {"since": since_fp8}))
    elif kv_dtype not in TRANSFORMERS_KV_DTYPES:
        notes.append(Assumption("a_kv_dtype_foreign", {"kv_dtype": kv_dtype, "bytes": f"{b:.4g}"}))
    elif kv_dtype in FP8_CACHE_DTYPES and cache == "dynamic":
        notes.append(Assumption("a_kv_fp8_sliding" if spec.sliding_window and v >= FP8_CACHE_SINCE
                                else "a_kv_fp8_none", {"version": version, "since": since_fp8}))
    if cache == "static" and spec.compressed is not None:
        notes.append(Assumption("a_kv_static_compressed", {"version": version}))
    if not layouts["decode"].all_full and spec.sliding_window:
        if cache == "static" and spec.compressed is None:
            notes.append(Assumption("a_sliding_static", {"window": spec.sliding_window}))
        elif v >= SLIDING_DYNAMIC_SINCE:
            notes.append(Assumption("a_sliding", {"window": spec.sliding_window, "shown": spec.sliding_window - 1}))
        else:
            notes.append(Assumption("a_sliding_old", {"window": spec.sliding_window,
                                                      "since": ".".join(map(str, SLIDING_DYNAMIC_SINCE))}))
    if spec.mla is not None:
        since = ".".join(map(str, MLA_LATENT_SINCE))
        if layouts["decode"].latent_mla:
            notes.append(Assumption("a_mla_transformers_latent", {"since": since}))
        else:
            notes.append(Assumption("a_mla_transformers", {"since": since}))
    if layouts["decode"].previous_step:
        notes.append(Assumption("a_kv_legacy_tuples", {"version": version}))
    if spec.state is not None:
        _state_notes(spec, batch, layouts["decode"], b, version, v, notes)
        if kv_dtype in FP8_CACHE_DTYPES and cache == "dynamic" and v >= FP8_CACHE_SINCE:
            notes.append(Assumption("a_kv_fp8_state", {"version": version}))
    if layouts["decode"].broadcast_kv:
        notes.append(Assumption("a_kv_broadcast", {"kv": spec.num_kv_heads, "heads": spec.num_heads}))
    return kv["prefill"], kv["decode"]


def _state_notes(spec, batch: int, layout, b: float, version: str, v, notes: list[Assumption]) -> None:
    """What a recurrent / hybrid model's cache holds: the fixed states per sequence and the attention layers."""
    from ..memory.kv_cache import STATE_LAYERS_SINCE, state_layer_bytes

    st = spec.state
    n = len(st.kinds)
    per_seq = sum(state_layer_bytes(spec, i, 1, layout, b) for i in range(n))
    dtype_name = {4.0: "fp32", 2.0: "16-bit", 1.0: "8-bit"}
    # a mixer with no convolution (xLSTM's mLSTM) keeps only its recurrent state: the note must not name a conv state
    key = "a_state_cache" if any(st.conv_values) else "a_state_cache_noconv"
    notes.append(Assumption(key, {
        "mixer": st.mixer or "?", "layers": sum(k in ("state", "hybrid", "hybrid_sliding") for k in st.kinds),
        "n": n, "mib": f"{per_seq / 2**20:.2f}", "batch": batch, "total_mib": f"{batch * per_seq / 2**20:.2f}",
        "kv_layers": sum(st.has_kv(i) for i in range(n)), "version": version,
        "conv": dtype_name.get(layout.conv_state_bytes, f"{layout.conv_state_bytes:g}-byte"),
        "rec": dtype_name.get(layout.recurrent_state_bytes, f"{layout.recurrent_state_bytes:g}-byte")}))
    if v < STATE_LAYERS_SINCE:
        notes.append(Assumption("a_state_cache_old", {"version": version,
                                                      "since": ".".join(map(str, STATE_LAYERS_SINCE))}))


ENGINE = Transformers()
