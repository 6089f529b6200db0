"""A pre-quantized checkpoint is estimated in its own storage: config.json's quantization_config decides the weights
unless --dtype / --quant override, and the bytes equal what transformers' own quantizer creates."""

from __future__ import annotations

import json

import pytest

from conftest import requires_torch
from vramscope.memory.weights import spec_weight_bytes
from vramscope.sources.hf_config import spec_from_config
from vramscope.sources.quant_config import checkpoint_quant, skipped


@pytest.mark.parametrize("q, fmt, skip", [
    # DeepSeek-V3 / R1 config.json
    ({"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8", "weight_block_size": [128, 128]},
     "fp8-block", ()),
    # FineGrainedFP8Config defaults weight_block_size to (128, 128); null is one scale per tensor
    ({"quant_method": "fp8"}, "fp8-block", ()),
    ({"quant_method": "fp8", "weight_block_size": None, "ignored_layers": ["lm_head"]}, "fp8", ("lm_head",)),
    ({"quant_method": "fp8", "weight_block_size": [64, 64]}, "", ()),
    # TheBloke / AutoGPTQ
    ({"quant_method": "gptq", "bits": 4, "group_size": 128, "desc_act": False}, "gptq-4bit", ()),
    ({"quant_method": "gptq", "bits": 8, "group_size": 32}, "gptq-8bit-g32", ()),
    # AutoAWQ
    ({"quant_method": "awq", "bits": 4, "group_size": 128, "version": "gemm", "modules_to_not_convert": None},
     "awq-4bit", ()),
    ({"quant_method": "awq", "w_bit": 4, "q_group_size": 64}, "awq-4bit-g64", ()),
    # bitsandbytes as save_pretrained writes it
    ({"quant_method": "bitsandbytes", "_load_in_4bit": True, "load_in_4bit": True, "bnb_4bit_quant_type": "nf4",
      "bnb_4bit_use_double_quant": True, "llm_int8_skip_modules": ["mlp.gate"]}, "nf4-dq", ("mlp.gate",)),
    ({"quant_method": "bitsandbytes", "load_in_8bit": True}, "int8", ()),
    # llm-compressor FP8-dynamic and W4A16
    ({"quant_method": "compressed-tensors", "ignore": ["lm_head"],
      "config_groups": {"group_0": {"weights": {"num_bits": 8, "type": "float", "strategy": "channel"}}}},
     "fp8-channel", ("lm_head",)),
    ({"quant_method": "compressed-tensors",
      "config_groups": {"group_0": {"weights": {"num_bits": 4, "type": "int", "strategy": "group",
                                                "group_size": 128}}}}, "ct-4bit", ()),
    ({"quant_method": "compressed-tensors", "format": "pack-quantized",
      "config_groups": {"group_0": {"weights": {"num_bits": 4, "type": "int", "strategy": "group",
                                                "group_size": 32, "symmetric": False}}}}, "ct-4bit-g32-asym", ()),
    ({"quant_method": "compressed-tensors", "format": "marlin-24",
      "config_groups": {"group_0": {"weights": {"num_bits": 4, "type": "int", "strategy": "group",
                                                "group_size": 128}}}}, "", ()),
    # gpt-oss
    ({"quant_method": "mxfp4", "modules_to_not_convert": ["model.layers.*.self_attn", "model.layers.*.mlp.router",
                                                          "model.embed_tokens", "lm_head"]},
     "mxfp4", ("model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head")),
    # not modelled: counted in the compute dtype, and the estimate says so
    ({"quant_method": "hqq", "nbits": 4}, "", ()),
    ({"quant_method": "torchao", "quant_type": "int4_weight_only"}, "", ()),
])
def test_quantization_config_is_read(q, fmt, skip):
    cq = checkpoint_quant(q)
    assert (cq.format, cq.skip) == (fmt, skip)


def test_skip_patterns_match_like_transformers():
    # quantizers_utils.should_convert_module: from the start up to a module boundary, or as a suffix
    assert skipped("model.layers.1.self_attn.q_proj", ("model.layers.1",))
    assert not skipped("model.layers.11.self_attn.q_proj", ("model.layers.1",))
    assert skipped("model.decoder.layers.23.fc1", ("fc1",))
    assert not skipped("model.layers.0.mlp.gate_proj", ("model.layers.0.mlp.gate",))
    assert skipped("lm_head", ("lm_head",))


def _deepseek_tiny() -> dict:
    # block-friendly widths (multiples of 128): transformers fuses the experts' gate and up projections, whose
    # one scale grid then has as many blocks as the two separate ones
    return {"model_type": "deepseek_v3", "architectures": ["DeepseekV3ForCausalLM"], "hidden_size": 256,
            "intermediate_size": 384, "moe_intermediate_size": 128, "num_hidden_layers": 3,
            "num_attention_heads": 2, "num_key_value_heads": 2, "vocab_size": 1000, "kv_lora_rank": 128,
            "q_lora_rank": 192, "qk_nope_head_dim": 64, "qk_rope_head_dim": 64, "v_head_dim": 128,
            "n_routed_experts": 4, "num_experts_per_tok": 2, "n_shared_experts": 1, "first_k_dense_replace": 1,
            "n_group": 1, "topk_group": 1, "torch_dtype": "bfloat16",
            "quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
                                    "weight_block_size": [128, 128]}}


def _qwen3_tiny(skip) -> dict:
    return {"model_type": "qwen3", "architectures": ["Qwen3ForCausalLM"], "hidden_size": 200,
            "intermediate_size": 300, "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2,
            "head_dim": 64, "vocab_size": 1000, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
            "quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
                                    "weight_block_size": [128, 128], "modules_to_not_convert": skip}}


def _fp8_meta_bytes(cfg: dict) -> int:
    """Bytes of the model transformers' FineGrainedFP8 quantizer would load a checkpoint into, on the meta
    device: ``replace_with_fp8_linear`` with the modules it keeps (``get_keys_to_not_convert`` + the config's)."""
    import torch
    import transformers
    from transformers import FineGrainedFP8Config
    from transformers.integrations.finegrained_fp8 import replace_with_fp8_linear
    from transformers.quantizers.base import get_keys_to_not_convert

    native = {k: v for k, v in cfg.items() if k != "quantization_config"}
    config = transformers.AutoConfig.for_model(**native)
    q = cfg["quantization_config"]
    qc = FineGrainedFP8Config(weight_block_size=tuple(q["weight_block_size"]),
                              modules_to_not_convert=q.get("modules_to_not_convert"))
    with torch.device("meta"):
        model = getattr(transformers, cfg["architectures"][0])._from_config(config, dtype=torch.bfloat16)
    keep = list(get_keys_to_not_convert(model)) + list(q.get("modules_to_not_convert") or [])
    replace_with_fp8_linear(model, modules_to_not_convert=keep, quantization_config=qc, pre_quantized=True)
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel() * p.element_size()
    return total


@requires_torch
@pytest.mark.trace
@pytest.mark.parametrize("make", [_deepseek_tiny, lambda: _qwen3_tiny(None),
                                  lambda: _qwen3_tiny(["model.layers.1.self_attn", "down_proj"])],
                         ids=["deepseek-v3-moe", "qwen3-dense", "qwen3-skip"])
def test_fp8_block_bytes_equal_transformers_quantizer(make):
    cfg = make()
    spec = spec_from_config(cfg, "tiny")
    assert spec.quant_format == "fp8-block"
    ours = spec_weight_bytes(spec, 2.0, spec.quant_format, spec.quant_skip, True).total
    assert ours == _fp8_meta_bytes(cfg)
    # and it is not the bf16 count
    assert ours < spec_weight_bytes(spec, 2.0, "none").total


def _ct_config(bits: int = 4, strategy: str = "group", group=128, symmetric: bool = True,
               actorder=None) -> dict:
    """A compressed-tensors quantization_config as llm-compressor writes it (W4A16 / W8A16 pack-quantized)."""
    return {"quant_method": "compressed-tensors", "format": "pack-quantized", "quantization_status": "compressed",
            "ignore": ["lm_head"], "config_groups": {"group_0": {
                "targets": ["Linear"], "input_activations": None, "output_activations": None,
                "weights": {"num_bits": bits, "type": "int", "symmetric": symmetric, "strategy": strategy,
                            "group_size": group if strategy == "group" else None, "actorder": actorder,
                            "dynamic": False, "observer": "minmax"}}}}


def _ct_meta_bytes(cfg: dict) -> int:
    """Bytes of the model transformers' CompressedTensorsHfQuantizer loads a checkpoint into (meta device):
    ``apply_quantization_config`` then ``compress_model``, every tensor of its state dict."""
    import torch
    import transformers
    from transformers.quantizers.auto import AutoHfQuantizer

    native = {k: v for k, v in cfg.items() if k != "quantization_config"}
    config = transformers.AutoConfig.for_model(**native)
    q = AutoHfQuantizer.from_config(cfg["quantization_config"], pre_quantized=True)
    q.validate_environment()
    with torch.device("meta"):
        model = getattr(transformers, cfg["architectures"][0])._from_config(config, dtype=torch.bfloat16)
    q.preprocess_model(model, dtype=torch.bfloat16)
    # parameters and persistent buffers (weight_shape); not the rotary inv_freq, which is no weight
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


@requires_torch
@pytest.mark.trace
@pytest.mark.parametrize("kw", [{}, {"group": 32}, {"group": 64}, {"strategy": "channel"}, {"bits": 8},
                                {"actorder": "weight"}], ids=["w4-g128", "w4-g32", "w4-g64", "w4-channel", "w8-g128",
                                                              "w4-actorder"])
def test_compressed_tensors_bytes_equal_transformers_quantizer(kw):
    pytest.importorskip("compressed_tensors")
    cfg = {**_qwen3_tiny(None), "hidden_size": 256, "intermediate_size": 640,
           "quantization_config": _ct_config(**kw)}
    spec = spec_from_config(cfg, "tiny")
    assert spec.quant_format.startswith("ct-")
    assert spec_weight_bytes(spec, 2.0, spec.quant_format, spec.quant_skip, True).total == _ct_meta_bytes(cfg)


@requires_torch
@pytest.mark.trace
def test_compressed_tensors_asymmetric_zero_points_as_the_checkpoint_holds_them():
    """An asymmetric scheme's zero points are packed into int32 along the output dimension when compressed on real
    tensors (what a checkpoint stores): compressed-tensors' own compressor on a CPU Linear."""
    pytest.importorskip("compressed_tensors")
    import torch
    from compressed_tensors.compressors import ModelCompressor
    from compressed_tensors.quantization import QuantizationConfig, apply_quantization_config

    from vramscope.memory.weights import quantized_linear_bytes
    from vramscope.model.tensors import Tensor

    q = _ct_config(group=32, symmetric=False)
    q["ignore"] = []
    model = torch.nn.Sequential(torch.nn.Linear(256, 96, bias=False)).to(torch.bfloat16)
    config = QuantizationConfig.model_validate({k: v for k, v in q.items() if k != "quant_method"})
    apply_quantization_config(model, config)
    ModelCompressor(quantization_config=config).compress_model(model)
    held = {n: (tuple(t.shape), t.dtype) for n, t in model.state_dict().items()}
    assert held["0.weight_zero_point"] == ((-(-96 * 4 // 32), 256 // 32), torch.int32)
    total = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    fmt = checkpoint_quant(q).format
    assert fmt == "ct-4bit-g32-asym"
    assert quantized_linear_bytes(Tensor("w", (96, 256), "mlp", "down_proj", None, 1, True), fmt) == total


#: the buffers gptqmodel's quant linears register (gptqmodel/nn_modules/qlinear/__init__.py at GPTQModel
#: f4c327a17eb3: ``_register_gptq_buffers`` and ``AWQuantLinear.__init__``), the modules transformers 5.24 loads
#: GPTQ and AWQ checkpoints into (quantizers/quantizer_gptq.py, integrations/awq.py), as (shape, bytes per item)
def _gptq_buffers(in_f: int, out_f: int, bits: int, g: int) -> list:
    g = in_f if g == -1 else g
    return [((-(-in_f * bits // 32), out_f), 4), ((-(-in_f // g), -(-out_f * bits // 32)), 4),
            ((-(-in_f // g), out_f), 2), ((in_f,), 4)]


def _awq_buffers(in_f: int, out_f: int, bits: int, g: int) -> list:
    return [((in_f, out_f // (32 // bits)), 4), ((in_f // g, out_f // (32 // bits)), 4), ((in_f // g, out_f), 2)]


def _bytes(buffers: list) -> int:
    import math

    return sum(math.prod(shape) * size for shape, size in buffers)


@pytest.mark.parametrize("in_f, out_f", [(4096, 4096), (4096, 1024), (11008, 4096), (4864, 896), (200, 96)])
@pytest.mark.parametrize("bits, g", [(4, 128), (4, 32), (8, 128), (3, 128), (2, 64), (4, -1)])
def test_gptq_bytes_equal_gptqmodel_buffers(in_f, out_f, bits, g):
    from vramscope.memory.weights import quantized_linear_bytes
    from vramscope.model.tensors import Tensor

    fmt = checkpoint_quant({"quant_method": "gptq", "bits": bits, "group_size": g}).format
    t = Tensor("w", (out_f, in_f), "mlp", "down_proj", None, 1, True)
    assert quantized_linear_bytes(t, fmt) == _bytes(_gptq_buffers(in_f, out_f, bits, g))


@pytest.mark.parametrize("in_f, out_f", [(4096, 4096), (4096, 1024), (11008, 4096), (4864, 896), (896, 128)])
@pytest.mark.parametrize("g", [128, 64, 32])
def test_awq_bytes_equal_gptqmodel_buffers(in_f, out_f, g):
    from vramscope.memory.weights import quantized_linear_bytes
    from vramscope.model.tensors import Tensor

    fmt = checkpoint_quant({"quant_method": "awq", "bits": 4, "group_size": g}).format
    t = Tensor("w", (out_f, in_f), "mlp", "down_proj", None, 1, True)
    assert quantized_linear_bytes(t, fmt) == _bytes(_awq_buffers(in_f, out_f, 4, g))


def test_awq_bytes_equal_a_published_checkpoint():
    """The tensors of Intel/Qwen2-0.5B-Instruct-int4-sym-AutoRound (AWQ packing, g128; snapshot cb1835a2) as
    loaded from its model.safetensors and printed beside the code that reads them (vLLM XPU debug script,
    layer 0): q_proj qweight [896, 112] int32, scales [7, 896] fp16, qzeros [7, 112] int32; k_proj / v_proj
    qweight [896, 16], scales [7, 128], qzeros [7, 16]."""
    from vramscope.memory.weights import quantized_linear_bytes
    from vramscope.model.tensors import Tensor

    q = Tensor("q_proj.weight", (896, 896), "attention", "q_proj", None, 1, True)
    k = Tensor("k_proj.weight", (128, 896), "attention", "k_proj", None, 1, True)
    assert quantized_linear_bytes(q, "awq-4bit") == 896 * 112 * 4 + 7 * 896 * 2 + 7 * 112 * 4
    assert quantized_linear_bytes(k, "awq-4bit") == 896 * 16 * 4 + 7 * 128 * 2 + 7 * 16 * 4


def _estimate(*args):
    from vramscope.cli import main
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main([*args, "--json"]) == 0
    return json.loads(out.getvalue())


def _notes(e):
    return [a["key"] if isinstance(a, dict) else a for a in e["assumptions"]]


def test_deepseek_v3_is_estimated_in_fp8_by_default():
    e = _estimate("estimate", "deepseek-v3", "--gpus", "8", "--gpu", "h200")
    bf16 = _estimate("estimate", "deepseek-v3", "--gpus", "8", "--gpu", "h200", "--dtype", "bf16")
    assert e["components"]["weights"] < 0.55 * bf16["components"]["weights"]
    assert e["gpus"][0]["verdict"] == "fits" and bf16["gpus"][0]["verdict"] == "no"
    said = json.dumps(e["assumptions"])
    assert "fp8-block" in said and "quantization_config" in said
    assert "not the checkpoint's own storage" in json.dumps(bf16["assumptions"])


def test_unmodelled_method_is_said():
    from vramscope.api import estimate

    cfg = dict(_qwen3_tiny(None), quantization_config={"quant_method": "hqq", "nbits": 4})
    spec = spec_from_config(cfg, "tiny")
    assert spec.quant_method == "hqq" and spec.quant_format == ""
    assert estimate is not None


@pytest.mark.parametrize("q", [
    {"quant_method": ["fp8"]}, {"quant_method": "fp8", "weight_block_size": "128"},
    {"quant_method": "fp8", "weight_block_size": [128, [1]], "modules_to_not_convert": "lm_head"},
    {"quant_method": "compressed-tensors", "config_groups": {"g": {"weights": {"num_bits": 8, "type": "float",
                                                                               "strategy": ["x"]}}}},
    {"quant_method": "compressed-tensors", "config_groups": [1, 2]}, {"quant_method": "gptq", "bits": True},
    {"quant_method": "bitsandbytes", "load_in_4bit": "yes", "bnb_4bit_quant_type": {}},
    {"quant_method": "mxfp4", "modules_to_not_convert": [1, None, "x" * 10_000]},
])
def test_hostile_quantization_configs_never_raise(q):
    cq = checkpoint_quant(q)
    assert cq is not None and all(isinstance(p, str) and len(p) <= 200 for p in cq.skip)
