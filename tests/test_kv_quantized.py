"""transformers' group-wise quantized KV cache (``QuantizedCache`` with the quanto and HQQ backends, issue #13):
vramscope's per-layer bytes equal the storage of the cache object's own tensors after a real CPU forward — the
packed integer payload, the scales and the zero points (quanto ``WeightQBitsTensor``'s ``_data`` / ``_scale`` /
``_shift``, HQQ's ``W_q`` and its meta ``scale`` / ``zero``) and the full-precision residual window.

A small Llama / Qwen3 / Falcon (new decoder architecture: keys and values broadcast to the query heads) is built
in bf16 with real weights, a prompt prefilled through ``QuantizedCache(backend, config, nbits, axis_key,
axis_value, q_group_size, residual_length)`` and tokens decoded one at a time: right after the prefill every
token is quantized; after ``residual_length − 1`` steps the residual holds that many tokens (the most it holds);
one step more and it is flushed into the quantized states (compared with the prefill rule at the new length).
"""

from __future__ import annotations

import pytest

from conftest import has_module, requires_torch
from vramscope.memory.kv_cache import KvQuant, layer_kv_bytes, transformers_layout
from vramscope.sources.hf_config import spec_from_config

pytestmark = [requires_torch, pytest.mark.trace,
              pytest.mark.skipif(not (has_module("optimum.quanto") and has_module("hqq")),
                                 reason="needs optimum-quanto and hqq (the test extra)")]

PROMPT = 12
BATCH = 2

CONFIGS = {
    "llama": {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
              "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 128},
    "qwen3": {"model_type": "qwen3", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
              "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 32, "vocab_size": 128,
              "use_sliding_window": False},
    "falcon": {"model_type": "falcon", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
               "num_kv_heads": 2, "new_decoder_architecture": True, "vocab_size": 128, "parallel_attn": True,
               "bias": False, "alibi": False},
}

#: (config, backend, nbits, q_group_size, residual_length, axis_key, axis_value); quanto's axis −1 groups need
#: batch × heads × tokens to be a multiple of the group (its ``group`` raises otherwise), so those cases quantize
#: 12 and 12 + residual_length tokens with small groups; HQQ's 4-, 2- and 1-bit packing on axis 1 needs the group
#: count to be a multiple of 2, 4, 8 (``bitpack.py`` halves, quarters the rows). HQQ 0.2.8 cannot dequantize a 3-bit tensor quantized on
#: axis 1 (``Quantizer.dequantize`` slices the unpacked rows to ``shape[0] × shape[1] // group_size`` of the 4-D
#: shape: 0 rows), so vramscope refuses that combination (test_estimate_with_a_quantized_cache)
CASES = [
    ("llama", "quanto", 4, 16, 4, 0, 0), ("llama", "quanto", 2, 16, 4, -1, 0), ("llama", "quanto", 4, 16, 4, -1, -1),
    ("llama", "quanto", 4, 64, 4, 0, 0),
    ("llama", "hqq", 4, 16, 4, 0, 0), ("llama", "hqq", 2, 16, 4, 1, 0), ("llama", "hqq", 3, 32, 6, 0, 0),
    ("llama", "hqq", 8, 16, 4, 1, 1), ("llama", "hqq", 1, 64, 4, 0, 0),
    ("qwen3", "quanto", 2, 8, 4, 0, -1), ("qwen3", "hqq", 4, 64, 4, 0, 1), ("qwen3", "hqq", 3, 16, 3, 0, 0),
    ("falcon", "quanto", 4, 16, 4, 0, 0), ("falcon", "hqq", 2, 16, 4, 1, 0),
]


def _layer_bytes(layer) -> int:
    """The storage a ``QuantizedLayer`` keeps: its quantized keys and values (every tensor a quanto
    ``WeightQBitsTensor`` is made of; HQQ's packed tensor and the tensors of its meta) and the residual window."""
    import torch

    seen, total = set(), 0

    def walk(x):
        nonlocal total
        if isinstance(x, torch.Tensor) and type(x) is not torch.Tensor and hasattr(x, "__tensor_flatten__"):
            for name in x.__tensor_flatten__()[0]:
                walk(getattr(x, name))
        elif isinstance(x, torch.Tensor):
            s = x.untyped_storage()
            if s.nbytes() and s.data_ptr() not in seen:
                seen.add(s.data_ptr())
                total += s.nbytes()
        elif isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, (tuple, list)):
            for v in x:
                walk(v)

    for part in (layer._quantized_keys, layer._quantized_values, layer.keys, layer.values):
        walk(part)
    return total


_MODELS: dict = {}


def _model(name):
    """The small model of ``name``, built once (real bf16 weights, seeded)."""
    import torch
    import transformers

    if name not in _MODELS:
        torch.manual_seed(0)
        config = transformers.AutoConfig.for_model(**CONFIGS[name])
        _MODELS[name] = config, transformers.AutoModelForCausalLM.from_config(config).to(torch.bfloat16).eval()
    return _MODELS[name]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)))
def test_quantized_cache_bytes_equal_the_cache_objects(case):
    import torch
    import transformers

    name, backend, nbits, group, residual, ak, av = case
    cfg_dict = CONFIGS[name]
    config, model = _model(name)
    cache = transformers.QuantizedCache(backend=backend, config=config, nbits=nbits, axis_key=ak, axis_value=av,
                                        q_group_size=group, residual_length=residual)
    spec = spec_from_config({**cfg_dict, "torch_dtype": "bfloat16"}, name)
    q = KvQuant(backend=backend, nbits=nbits, q_group_size=group, residual_length=residual, axis_key=ak,
                axis_value=av)
    ids = torch.randint(0, 128, (BATCH, PROMPT))

    def expected(tokens, phase):
        layout = transformers_layout(spec, transformers.__version__, phase, "quantized", "bf16", "bf16", q)
        assert layout.quant == q
        return layer_kv_bytes(spec, tokens, BATCH, 2.0, layout)

    with torch.no_grad():
        model(ids, past_key_values=cache, use_cache=True)
        assert [_layer_bytes(lay) for lay in cache.layers] == expected(PROMPT, "prefill")
        for _ in range(residual - 1):
            model(ids[:, :1], past_key_values=cache, use_cache=True)
        assert cache.layers[0].keys.shape[-2] == residual - 1
        assert [_layer_bytes(lay) for lay in cache.layers] == expected(PROMPT + residual - 1, "decode")
        model(ids[:, :1], past_key_values=cache, use_cache=True)  # the residual is flushed
        assert cache.layers[0].keys.numel() == 0
        assert [_layer_bytes(lay) for lay in cache.layers] == expected(PROMPT + residual, "prefill")


def test_estimate_with_a_quantized_cache():
    """Through the API: Llama-3-8B at 8,192 tokens, quanto int4 in groups of 64 with the 128-token residual: per
    layer and per K / V, 8,065 quantized tokens (8,192 − 127) of 8 heads × 128 (½ byte each, a bf16 scale and
    shift per 64 values) and 127 bf16 tokens — 4.0 bits + 2 × 16 / 64 = 4.5 bits per quantized value."""
    import vramscope

    e = vramscope.estimate("llama-3-8b", engine="transformers", seq=8192, cache="quantized", kv_backend="quanto",
                           kv_nbits=4, gpus=["rtx-4090"])
    kv = e.phases["decode"]["kv_cache"]
    n_q = 8065 * 8 * 128
    per_layer = 2 * (n_q // 2 + 2 * (n_q // 64) * 2 + 127 * 8 * 128 * 2)
    assert kv == 32 * per_layer
    assert any(a.key == "a_kv_quantized" for a in e.assumptions)
    with pytest.raises(vramscope.VramscopeError, match="kv_nbits"):
        vramscope.estimate("llama-3-8b", engine="transformers", cache="quantized", kv_nbits=3)
    with pytest.raises(vramscope.VramscopeError, match="kv_axis_value"):
        vramscope.estimate("llama-3-8b", engine="transformers", cache="quantized", kv_backend="hqq", kv_nbits=3,
                           kv_axis_value=1)
    gemma = vramscope.estimate("gemma-2-9b", engine="transformers", cache="quantized", seq=8192)
    assert any(a.key == "a_kv_quantized_refused" for a in gemma.assumptions)
