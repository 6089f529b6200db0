"""Weights: bytes the parameters occupy on the GPU, per tensor, under every supported storage format.

Exact where the format is exact:

* unquantized: ``numel × element size`` (fp32 4, fp16/bf16 2);
* ``int8`` = bitsandbytes LLM.int8 (``bnb.nn.Linear8bitLt``, arXiv 2208.07339): int8 weight (1 B) plus one fp32
  scale per output row (``SCB``);
* ``nf4`` / ``fp4`` (``int4`` is nf4) = bitsandbytes 4-bit (``bnb.nn.Linear4bit``, QLoRA arXiv 2305.14314): two
  values per byte plus one fp32 absmax per 64-value block; ``-dq`` (double quantization) stores absmax as
  uint8 with one fp32 scale per 256 blocks: 4 + 8/64 + 32/(64·256) bits per weight;
* ``fp8`` (e4m3, per-tensor scale): 1 B per weight plus one fp32 scale per tensor; ``fp8-channel``: one fp32
  scale per output channel (compressed-tensors / llm-compressor "FP8 dynamic"); ``fp8-block``: one fp32
  ``weight_scale_inv`` per 128×128 block (DeepSeek-V3's published FP8 checkpoint);
* ``mxfp4`` (gpt-oss, only from a checkpoint's ``quantization_config``): the routed experts only, two fp4
  values per byte (``*_blocks``) plus one e8m0 byte per 32 values (``*_scales``);
* ``nvfp4`` / ``modelopt-fp8`` (only from a NVIDIA ModelOpt checkpoint's ``quantization_config`` or
  ``hf_quant_config.json``), the tensors each quantized linear holds as vLLM creates them
  (``ModelOptNvFp4LinearMethod`` / ``ModelOptFp8LinearMethod.create_weights``, vllm-project/vllm c9a59901113c):
  NVFP4 ``weight`` uint8 ``[out, in/2]`` (two e2m1 values per byte), ``weight_scale`` e4m3 ``[out, in/16]``
  (one per 16 values), fp32 scalars ``weight_scale_2`` and ``input_scale``: ``out·in/2 + out·in/16 + 8`` bytes;
  FP8 ``weight`` e4m3 ``[out, in]`` plus fp32 scalars ``weight_scale`` and ``input_scale``: ``out·in + 8``.
  (ModelOpt's ``FP8_PER_CHANNEL_PER_TOKEN`` is ``fp8-channel``, its ``FP8_PB_WO`` ``fp8-block``.) Per expert the
  checkpoint holds the same four tensors for each of its projections;
* ``nvfp4-a16`` (a ModelOpt ``W4A16_NVFP4`` layer of a ``MIXED_PRECISION`` checkpoint; vLLM 0.33.0
  ``modelopt.py`` ``resolve``: weight scheme ``kNvfp4Static``, no activation scheme, ``_DROP_INPUT_SCALE``
  "a no-op for genuine exports"): the NVFP4 ``weight``, ``weight_scale`` and fp32 ``weight_scale_2`` without
  ``input_scale``: ``out·in/2 + out·in/16 + 4``; routed experts as NVFP4 (``ModelOptNvFp4FusedMoE.create_weights``
  registers ``w13_input_scale`` / ``w2_input_scale`` for W4A16 too, one fp32 pair per expert and fused
  projection: ``gate_up_proj`` holds two). ``modelopt-mixed`` is no format of its
  own: each linear takes the format its ``quantized_layers`` entry names (``sources/quant_config.py:
  layer_format``), and a linear the mapping does not name, the output head included, stays in the compute
  dtype unless named;
* ``gptq-4bit`` / ``awq-4bit`` (and 2, 3, 8 bits), group size 128 unless a suffix says otherwise
  (``gptq-4bit-g32``; ``-g-1`` for one group per column), as the modules transformers 5.24 loads them into
  (gptqmodel's, ``integrations/awq.py`` / ``quantizers/quantizer_gptq.py``; read at GPTQModel f4c327a):
  GPTQ ``qweight`` int32 ``[ceil(in·bits/32), out]``, ``qzeros`` int32 ``[ceil(in/g), ceil(out·bits/32)]``,
  ``scales`` fp16 ``[ceil(in/g), out]``, ``g_idx`` int32 ``[in]``; AWQ (``AWQuantLinear``) ``qweight``
  ``[in, out/(32/bits)]``, ``qzeros`` ``[in//g, out/(32/bits)]``, ``scales`` fp16 ``[in//g, out]``, no ``g_idx``;
* ``ct-<bits>bit[-g<group>][-asym]`` (only from a checkpoint's ``quantization_config``): compressed-tensors
  ``pack-quantized`` (llm-compressor's W4A16 / W8A16), as ``compress_model`` lays a module out for transformers'
  ``CompressedTensorsHfQuantizer``: ``weight_packed`` int32 ``[out, ceil(in·bits/32)]``, ``weight_scale``
  ``[out, groups]`` in the 16-bit model dtype, ``weight_shape`` int64 ``[2]``, and only for asymmetric schemes a
  packed int32 ``weight_zero_point`` ``[ceil(out·bits/32), groups]``; no ``g_idx`` (``actorder`` ``weight``
  reorders before packing, and compressed-tensors 0.20 refuses ``group``).

Only ``nn.Linear`` weights inside the decoder layers are quantized. Embeddings, norms, biases and the output
head stay in the compute dtype: transformers' ``get_keys_to_not_convert`` keeps ``lm_head`` (and tied
embeddings) unquantized for bitsandbytes, GPTQ and AWQ. A checkpoint's own storage (``checkpoint=True``:
``sources/quant_config.py``) follows transformers 5.24's quantizers: they swap ``nn.Linear`` modules, and MoE
routers (``*TopKRouter``) are not ``nn.Linear``, so they stay in the compute dtype, as do the modules the
checkpoint's ``modules_to_not_convert`` names.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ..model.spec import ModelSpec
from ..model.tensors import Tensor, groups, tensors
from ..sources.base import ResolvedModel

QUANTS = ("none", "int8", "int4", "nf4", "fp4", "nf4-dq", "fp4-dq", "fp8", "fp8-channel", "fp8-block",
          "gptq-4bit", "gptq-8bit", "gptq-3bit", "gptq-2bit", "awq-4bit")

#: the seed article's bytes per parameter (int4 = half a byte)
SEED_QUANT_BYTES = {"int8": 1.0, "int4": 0.5}


@dataclass(frozen=True)
class WeightBytes:
    total: int
    quantized_params: int  # parameters stored in the quantized format
    kept_params: int  # parameters kept in the compute dtype
    exact_from_files: bool


_PACKED = __import__("re").compile(r"^[a-z]+-(\d+)bit(?:-g(-1|\d+))?")


def _bits_group(quant: str) -> tuple[int, int]:
    """Bits and group size of a packed format (``gptq-4bit-g32``, ``ct-8bit-g-1-asym``; group 128 unnamed)."""
    m = _PACKED.match(quant)
    return int(m.group(1)), int(m.group(2)) if m.group(2) else 128


def quantized_linear_bytes(t: Tensor, quant: str) -> int:
    """Bytes of one linear weight of shape (out, in) stored as ``quant`` (formulas in the module docstring)."""
    out_f, in_f = t.shape[0], t.shape[-1]
    n = out_f * in_f
    c = t.count
    if quant == "int8":
        return c * (n + 4 * out_f)
    if quant in ("int4", "nf4", "fp4"):
        return c * (n // 2 + 4 * -(-n // 64))
    if quant in ("nf4-dq", "fp4-dq"):
        blocks = -(-n // 64)
        return c * (n // 2 + blocks + 4 * -(-blocks // 256))
    if quant == "fp8":
        return c * (n + 4)
    if quant == "fp8-channel":
        return c * (n + 4 * out_f)
    if quant == "fp8-block":  # DeepSeek-V3: one fp32 weight_scale_inv per 128×128 block
        return c * (n + 4 * -(-out_f // 128) * -(-in_f // 128))
    if quant == "nvfp4":  # ModelOpt NVFP4: packed e2m1, e4m3 scale per 16 values, fp32 weight_scale_2 + input_scale
        return c * (out_f * (in_f // 2) + out_f * (in_f // 16) + 8)
    if quant == "nvfp4-a16":  # ModelOpt W4A16_NVFP4: as nvfp4 without input_scale (experts: vLLM keeps it)
        shards = 2 if t.name.endswith("gate_up_proj") else 1  # vLLM's w13 scalars: one per fused projection
        return c * (out_f * (in_f // 2) + out_f * (in_f // 16) + (8 * shards if t.role == "expert" else 4))
    if quant == "modelopt-fp8":  # ModelOpt FP8: e4m3 weight, fp32 weight_scale + input_scale
        return c * (n + 8)
    if quant == "mxfp4":  # gpt-oss: *_blocks (two fp4 per byte) and *_scales (one e8m0 per 32 values)
        return c * (n // 2 + -(-n // 32))
    if quant.startswith("ct-"):  # compressed-tensors pack-quantized (module docstring)
        bits, group = _bits_group(quant)
        groups = -(-in_f // group) if group > 0 else 1
        packed = out_f * -(-in_f * bits // 32) * 4
        zeros = -(-out_f * bits // 32) * groups * 4 if quant.endswith("-asym") else 0
        return c * (packed + 2 * out_f * groups + zeros + 16)
    if quant.startswith(("gptq-", "awq-")):
        bits, group = _bits_group(quant)
        if quant.startswith("gptq"):  # gptqmodel _register_gptq_buffers: ceil on both packed dimensions
            groups = -(-in_f // group) if group > 0 else 1
            packed = -(-in_f * bits // 32) * out_f * 4
            zeros = groups * -(-out_f * bits // 32) * 4
            return c * (packed + 2 * groups * out_f + zeros + 4 * in_f)
        groups = in_f // group if group > 0 else 1  # AWQuantLinear: floor divisions
        packed = in_f * (out_f // (32 // bits)) * 4
        zeros = groups * (out_f // (32 // bits)) * 4
        return c * (packed + 2 * groups * out_f + zeros)
    raise AssertionError(quant)


def is_quantized(t: Tensor, quant: str = "", skip: tuple[str, ...] = (), checkpoint: bool = False) -> bool:
    """Whether a tensor is quantized: linear weights except the output head (transformers keeps lm_head); for a
    checkpoint's own storage also not the routers nor the modules it keeps (module docstring); mxfp4 holds only
    the routed experts."""
    if not t.linear or t.role in ("lm_head", "vision", "projector"):
        return False
    if not checkpoint:
        return True
    if quant == "mxfp4":
        return t.role == "expert"
    if t.role == "router" and t.module == "gate":
        return False
    if skip:
        from ..sources.quant_config import skipped

        module = t.name[:-len(".weight")] if t.name.endswith(".weight") else t.name
        if ".experts." in module:
            module = module[:module.index(".experts.") + len(".experts")]
        return not skipped(module, skip)
    return True


def weight_bytes(model: ResolvedModel, dtype_bytes: float, quant: str, use_stored: bool,
                 skip: tuple[str, ...] = (), checkpoint: bool = False, fp32_modules: bool = True) -> WeightBytes:
    """Bytes of all weights; exact file bytes when the checkpoint's headers were read and nothing is cast."""
    if use_stored and model.stored is not None:
        return WeightBytes(model.stored_bytes or 0, 0, model.params, True)
    if not model.exact_shape:
        quant_bytes = {"none": dtype_bytes, "int8": 1.0, "fp8": 1.0}.get(quant, 0.5)
        return WeightBytes(int(model.params * quant_bytes), model.params if quant != "none" else 0,
                           model.params if quant == "none" else 0, False)
    return spec_weight_bytes(model.spec, dtype_bytes, quant, skip, checkpoint, fp32_modules)


#: modules transformers keeps in fp32 whatever the dtype (``_keep_in_fp32_modules_strict``, transformers 5.24:
#: ``modeling_deepseek_v2.py`` and ``modeling_deepseek_v3.py`` keep ``gate.weight``, the MoE router)
FP32_STRICT = {"deepseek_v2": "gate", "deepseek_v3": "gate"}


def _fp32_strict(spec: ModelSpec, t: Tensor) -> bool:
    return t.role == "router" and t.module == FP32_STRICT.get(spec.model_type) and t.name.endswith(".weight")


def _mixed_format(t: Tensor, layers: tuple[tuple[str, str], ...], skip: tuple[str, ...]) -> str:
    """A MIXED_PRECISION checkpoint's format for one tensor (``""``: the compute dtype): linear weights only,
    routers never (not ``nn.Linear`` in vLLM either: ``ReplicatedLinear`` gates are excluded by name)."""
    if not t.linear or not layers or (t.role == "router" and t.module == "gate"):
        return ""
    from ..sources.quant_config import layer_format

    module = t.name[:-len(".weight")] if t.name.endswith(".weight") else t.name
    return layer_format(module, layers, skip, t.role == "expert")


@lru_cache(maxsize=256)
def spec_weight_bytes(spec: ModelSpec, dtype_bytes: float, quant: str, skip: tuple[str, ...] = (),
                      checkpoint: bool = False, fp32_modules: bool = True) -> WeightBytes:
    """Per-tensor sum for a spec (cached: planners call it many times with the same model); ``fp32_modules``:
    the modules transformers keeps in fp32 (:data:`FP32_STRICT`) are fp32 (vLLM loads them in the dtype)."""
    total = 0.0
    q_params = kept = 0
    # skip patterns may name single layers: then every layer is looked at (else one of each kind, repeated)
    mixed = quant == "modelopt-mixed" and checkpoint
    items = ((t, 1, t.numel) for t in tensors(spec)) if skip or mixed \
        else ((g.tensor, g.repeat, g.numel) for g in groups(spec))
    for t, repeat, numel in items:
        fmt = _mixed_format(t, spec.quant_layers, skip) if mixed else quant
        if fmt and fmt != "none" and (mixed or is_quantized(t, quant, skip, checkpoint)):
            total += quantized_linear_bytes(t, fmt) * repeat
            q_params += numel
        else:
            total += numel * (4.0 if fp32_modules and dtype_bytes < 4 and _fp32_strict(spec, t) else dtype_bytes)
            kept += numel
    return WeightBytes(int(total), q_params, kept, False)


_QUANT_RE = __import__("re").compile(r"^(gptq-(2|3|4|8)bit|awq-4bit)(-g(-1|32|64|128|256|512|1024))?$")


def valid_quant(quant: str) -> bool:
    """A --quant value for the transformers/vLLM path (fixed names, or GPTQ/AWQ with a group size suffix)."""
    return quant in QUANTS or bool(_QUANT_RE.match(quant))
