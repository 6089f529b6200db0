"""llama.cpp quantization mixes: which ggml type each tensor gets for a given file type (``Q4_K_M`` ...).

For a GGUF file vramscope reads every tensor's real type from the header. Without a file (``--quant Q4_K_M``
on a catalog model) this module reproduces ``llama_tensor_get_type`` of llama.cpp's ``src/llama-quant.cpp``
(ggml-org/llama.cpp, read at commit 007dbbf): the ftype's default type (``llama_model_quantize_impl``), the
output/tied-embedding rule (Q6_K unless the default is Q8_0 or an IQ1/IQ2 type), the ``use_more_bits`` layers
that keep ``attn_v`` and ``ffn_down`` at Q6_K for ``Q4_K_M``/``Q5_K_M``, the GQA, 8-expert, 70B and Falcon
special cases, and the fallback when a row is not a multiple of the block size. Tensors that llama.cpp does not
quantize (norms, 1-D tensors, the MoE router ``ffn_gate_inp``) stay in the converter's type (F32), and 2-D
weights of an unquantized file stay F16/BF16. Per-tensor bytes then follow from ``data/ggml_types.json``.

A tied embedding is one tensor here, as in the file (``token_embd``, in the output type). llama.cpp loads it a
second time as the output layer (``TENSOR_DUPLICATED``), on the GPU whenever ``-ngl`` offloads the output layer;
``engines/llamacpp.py`` adds that copy, from a file or from this mix alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Iterator, Optional

from ..model.spec import ModelSpec

FTYPE_DEFAULT = {
    "F32": "F32", "F16": "F16", "BF16": "BF16", "Q4_0": "Q4_0", "Q4_1": "Q4_1", "Q5_0": "Q5_0", "Q5_1": "Q5_1",
    "Q8_0": "Q8_0", "Q2_K": "Q2_K", "Q2_K_S": "Q2_K", "Q3_K_S": "Q3_K", "Q3_K_M": "Q3_K", "Q3_K_L": "Q3_K",
    "Q4_K_S": "Q4_K", "Q4_K_M": "Q4_K", "Q5_K_S": "Q5_K", "Q5_K_M": "Q5_K", "Q6_K": "Q6_K",
    "IQ2_XXS": "IQ2_XXS", "IQ2_XS": "IQ2_XS", "IQ2_S": "IQ2_XS", "IQ2_M": "IQ2_S", "IQ3_XS": "IQ3_S",
    "IQ3_XXS": "IQ3_XXS", "IQ1_S": "IQ1_S", "IQ1_M": "IQ1_M", "IQ4_NL": "IQ4_NL", "IQ4_XS": "IQ4_XS",
    "IQ3_S": "IQ3_S", "IQ3_M": "IQ3_S", "TQ1_0": "TQ1_0", "TQ2_0": "TQ2_0",
}
GGUF_FTYPES = tuple(FTYPE_DEFAULT)
_IQ12 = ("IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ2_S", "IQ2_M", "IQ1_M")
_UNQUANTIZED = ("F32", "F16", "BF16")

# GGUF tensor name (without blk.N.) and our module name
_NAMES = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
          "qkv_proj": "attn_qkv", "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down",
          "gate_up_proj": "ffn_up", "q_a_proj": "attn_q_a", "q_b_proj": "attn_q_b",
          "kv_a_proj_with_mqa": "attn_kv_a_mqa", "kv_b_proj": "attn_kv_b", "query_key_value": "attn_qkv",
          "dense": "attn_output", "dense_h_to_4h": "ffn_up", "dense_4h_to_h": "ffn_down"}


@dataclass(frozen=True)
class GgufTensor:
    name: str
    shape: tuple[int, ...]  # (rows, cols) as in our inventory; cols is ggml's ne[0]
    count: int
    layer: Optional[int]
    ggml_type: str

    @property
    def numel(self) -> int:
        n = self.count
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        info = _type_info(self.ggml_type)
        return self.numel // info["block"] * info["bytes"]


@lru_cache(maxsize=None)
def _type_info(name: str) -> dict:
    from ..sources.gguf import ggml_types

    for t in ggml_types()["types"].values():
        if t["name"] == name:
            return t
    raise KeyError(name)


def _use_more_bits(i: int, n: int) -> bool:
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def _fallback(cols: int, ggml_type: str) -> str:
    """llama.cpp's ``tensor_type_fallback`` when a row is not a multiple of the block."""
    if cols % _type_info(ggml_type)["block"] == 0:
        return ggml_type
    fb = {"IQ1_S": "IQ4_NL", "IQ1_M": "IQ4_NL", "IQ2_XXS": "IQ4_NL", "IQ2_XS": "IQ4_NL", "IQ2_S": "IQ4_NL",
          "IQ3_XXS": "IQ4_NL", "IQ3_S": "IQ4_NL", "IQ4_XS": "IQ4_NL", "Q2_K": "Q4_0", "Q3_K": "Q4_0",
          "TQ1_0": "Q4_0", "TQ2_0": "Q4_0", "Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0"}.get(ggml_type, "F16")
    return fb if cols % _type_info(fb)["block"] == 0 else "F16"


def gguf_tensors(spec: ModelSpec, ftype: str) -> Iterator[GgufTensor]:
    """The tensors of ``spec`` as ``llama-quantize <ftype>`` would store them.

    Faithful port of ``llama_tensor_get_type`` in llama.cpp's ``src/llama-quant.cpp`` (commit 007dbbf, see the
    module docstring): its branches are kept in llama.cpp's order, one for one, so the two can be compared side by
    side; the function is long on purpose and is not split.
    """
    from ..model.tensors import tensors

    ftype = ftype.upper()
    default = FTYPE_DEFAULT[ftype]
    n_layer = spec.num_layers
    n_gqa = spec.num_heads // max(1, spec.num_kv_heads)
    n_expert = spec.moe.num_experts if spec.moe else 0
    is_70b = n_layer == spec.family.llamacpp_70b_layers  # llama.cpp LLM_TYPE_70B (Family row)
    falcon = spec.layout == "falcon"
    tied = spec.tie_embeddings
    i_wv = 0
    n_wv = sum(1 for t in tensors(spec) if t.module in ("v_proj", "qkv_proj", "query_key_value", "kv_b_proj")
               and t.linear)
    for t in tensors(spec):
        cols = t.shape[-1]
        if len(t.shape) < 2 or not t.linear and t.role not in ("embedding", "lm_head"):
            yield GgufTensor(t.name, t.shape, t.count, t.layer, "F32")
            continue
        if t.role == "router":
            yield GgufTensor(t.name, t.shape, t.count, t.layer, "F32")
            continue
        if default in _UNQUANTIZED:
            yield GgufTensor(t.name, t.shape, t.count, t.layer, default)
            continue
        cat = _NAMES.get(t.module, "")
        new = default
        i = t.layer if t.layer is not None else 0
        if t.role == "lm_head" or (tied and t.role == "embedding"):
            if falcon or cols % _type_info(default)["block"]:
                new = "Q8_0"
            elif ftype in _IQ12 or ftype == "IQ3_XXS":
                new = "Q5_K"
            elif default != "Q8_0":
                new = "Q6_K"
        elif t.role == "embedding":
            if ftype in ("IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ1_M"):
                new = "Q2_K"
            elif ftype in ("IQ2_S", "IQ2_M", "IQ3_XXS"):
                new = "IQ3_S"
            elif ftype in ("TQ1_0", "TQ2_0"):
                new = "Q4_K"
        elif ftype in _IQ12:
            if cat in ("attn_v", "attn_qkv", "attn_kv_b"):
                new = "Q4_K" if (n_gqa >= 4 or n_expert >= 4) else ("IQ3_S" if ftype in ("IQ2_S", "IQ2_M")
                                                                   else "Q2_K")
                i_wv += 1
            elif n_expert == 8 and cat == "attn_k":
                new = "Q4_K"
            elif cat == "ffn_down" and i < n_layer // 8:
                new = "IQ3_S" if ftype in ("IQ2_S", "IQ2_M") else "Q2_K"
            elif cat == "attn_output":
                if n_expert == 8:
                    new = "Q5_K"
                elif ftype in ("IQ1_S", "IQ1_M"):
                    new = "IQ2_XXS"
                elif ftype in ("IQ2_S", "IQ2_M"):
                    new = "IQ3_S"
        elif cat in ("attn_v", "attn_qkv", "attn_kv_b"):
            if cat == "attn_qkv" and ftype in ("Q3_K_M", "Q3_K_L", "IQ3_M", "Q4_K_M", "Q5_K_M"):
                new = {"Q4_K_M": "Q5_K", "Q5_K_M": "Q6_K"}.get(ftype, "Q4_K")
            elif ftype == "Q2_K":
                new = "Q4_K" if n_gqa >= 4 else "Q3_K"
            elif ftype == "Q2_K_S" and n_gqa >= 4:
                new = "Q4_K"
            elif ftype == "IQ3_XXS":
                new = "Q4_K" if n_gqa >= 4 else "IQ3_S"
            elif ftype in ("IQ3_XS", "IQ3_S") and n_gqa >= 4:
                new = "Q4_K"
            elif ftype == "IQ3_M":
                new = "Q4_K"
            elif ftype == "Q3_K_M":
                new = "Q5_K" if i_wv < 2 else "Q4_K"
            elif ftype == "Q3_K_L":
                new = "Q5_K"
            elif ftype in ("IQ4_NL", "IQ4_XS") and n_gqa >= 4:
                new = "Q5_K"
            elif ftype in ("Q4_K_M", "Q5_K_M") and _use_more_bits(i_wv, n_wv):
                new = "Q6_K"
            elif ftype == "Q4_K_S" and i_wv < 4:
                new = "Q5_K"
            if is_70b and new in ("Q3_K", "Q4_K"):
                new = "Q5_K"
            if n_expert == 8:
                new = "Q8_0"
            i_wv += 1
        elif cat == "attn_k":
            if n_expert == 8:
                new = "Q8_0"
            elif ftype == "IQ3_XS":
                new = "IQ3_XXS"
            elif ftype == "IQ3_XXS":
                new = "IQ2_S"
        elif cat == "attn_q":
            if ftype == "IQ3_XS":
                new = "IQ3_XXS"
            elif ftype == "IQ3_XXS":
                new = "IQ2_S"
        elif cat == "ffn_down":
            if ftype == "Q2_K":
                new = "Q3_K"
            elif ftype == "Q2_K_S" and i < n_layer // 8:
                new = "Q4_K"
            elif ftype == "IQ3_XXS":
                new = "Q4_K" if i < n_layer // 8 else "Q3_K"
            elif ftype == "Q3_K_M":
                new = "Q5_K" if i < n_layer // 16 else ("Q4_K" if not falcon or _use_more_bits(i, n_layer) else "Q3_K")
            elif ftype == "IQ3_M" and (i < n_layer // 8 or (n_expert == 8 and _use_more_bits(i, n_layer))):
                new = "Q4_K"
            elif ftype == "Q3_K_L":
                new = "Q4_K" if falcon else "Q5_K"
            elif ftype == "Q4_K_M":
                if falcon:
                    new = "Q6_K" if i < n_layer // 16 else ("Q5_K" if _use_more_bits(i, n_layer) else "Q4_K")
                elif _use_more_bits(i, n_layer):
                    new = "Q6_K"
            elif i < n_layer // 8 and ftype in ("IQ4_NL", "IQ4_XS"):
                new = "Q5_K"
            elif ftype == "Q5_K_M" and _use_more_bits(i, n_layer):
                new = "Q6_K"
            elif ftype == "Q4_K_S" and not falcon and i < n_layer // 8:
                new = "Q5_K"
        elif cat == "attn_output":
            if not falcon:
                if n_expert == 8:
                    if ftype in ("Q2_K", "IQ3_XS", "IQ3_XXS", "Q3_K_S", "Q3_K_M", "IQ4_NL", "Q4_K_S", "Q4_K_M",
                                 "IQ3_S", "IQ3_M", "IQ4_XS"):
                        new = "Q5_K"
                else:
                    new = {"Q2_K": "Q3_K", "IQ3_XXS": "IQ3_S", "Q3_K_M": "Q4_K", "Q3_K_L": "Q5_K",
                           "IQ3_M": "Q4_K"}.get(ftype, new)
            elif ftype == "Q3_K_L":
                new = "Q4_K"
        elif cat in ("ffn_gate", "ffn_up") and ftype == "IQ3_XS" and n_layer // 8 <= i < 7 * n_layer // 8:
            new = "IQ3_XXS"
        yield GgufTensor(t.name, t.shape, t.count, t.layer, _fallback(cols, new))


def gguf_weight_bytes(spec: ModelSpec, ftype: str) -> int:
    return sum(t.nbytes for t in gguf_tensors(spec, ftype))
