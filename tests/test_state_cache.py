"""vramscope's per-layer cache bytes of state-space and hybrid models equal what transformers' own cache holds.

For every family the installed transformers ships with a fixed-size (conv / recurrent) cache: Mamba, Falcon-Mamba,
Mamba2, Jamba, Bamba, Falcon-H1, Zamba, Zamba2, GraniteMoeHybrid, Nemotron-H, Qwen3-Next and Qwen3.5 (gated delta
net), OLMo-Hybrid and LFM2 (short convolution), Kimi-Linear (KDA beside MLA) and MiniMax (lightning attention), a tiny config with the family's own layer mix (recurrent, attention,
hybrid and MLP-only layers) is read by vramscope (the model is built on the meta device: ``sources/meta_device.py``
reads each mixer's state shapes) and then built with real bf16 CPU tensors; a prompt is prefilled and three tokens
decoded through the cache ``generate()`` creates, and each layer's bytes are read from the storages of its conv
states, recurrent states, keys and values. bf16 tells the two state dtypes apart: transformers keeps conv states in
the model's dtype and recurrent states in float32 (``zeros_like`` the scan's final state).
"""

from __future__ import annotations

import pytest

from conftest import distinct_storage_bytes, requires_torch
from vramscope.memory.kv_cache import layer_kv_bytes, transformers_layout
from vramscope.sources.hf_config import spec_from_config

pytestmark = [requires_torch, pytest.mark.trace]

PROMPT = 12
SHORT = 2  # shorter than the conv kernel: transformers pads the conv state to the kernel
STEPS = 3
BATCH = 2

_ATTN = dict(hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2, vocab_size=128)
_M2 = dict(mamba_n_heads=8, mamba_d_head=16, mamba_n_groups=2, mamba_d_state=8, mamba_chunk_size=8)

#: tiny configs keeping what decides each family's cache: its mixer, its layer mix, the head/group/state split
CONFIGS = {
    "mamba": dict(hidden_size=64, state_size=8, num_hidden_layers=2, vocab_size=128, conv_kernel=4, expand=2),
    "falcon_mamba": dict(hidden_size=64, state_size=8, num_hidden_layers=2, vocab_size=128, conv_kernel=3),
    "mamba2": dict(hidden_size=64, state_size=8, num_hidden_layers=2, vocab_size=128, num_heads=8, head_dim=16,
                   n_groups=2, expand=2, chunk_size=8),
    "jamba": dict(_ATTN, num_hidden_layers=4, mamba_d_state=8, mamba_d_conv=4, attn_layer_period=2,
                  attn_layer_offset=1, expert_layer_period=2, expert_layer_offset=1, num_experts=4,
                  num_experts_per_tok=2),
    "bamba": dict(_ATTN, **_M2, num_hidden_layers=4, attn_layer_indices=[1, 3]),
    "falcon_h1": dict(_ATTN, **_M2, num_hidden_layers=3, mamba_d_ssm=128),
    "zamba": dict(_ATTN, num_hidden_layers=5, mamba_d_state=8, attn_layer_period=2, attn_layer_offset=1,
                  n_mamba_heads=2, use_mamba_kernels=False),
    "zamba2": dict(_ATTN, num_hidden_layers=6, mamba_d_state=8, mamba_ngroups=2, n_mamba_heads=8, mamba_headdim=16,
                   use_mem_rope=False, chunk_size=8,
                   layers_block_type=["mamba", "mamba", "hybrid", "mamba", "mamba", "hybrid"]),
    "granitemoehybrid": dict(_ATTN, **_M2, num_hidden_layers=4, num_local_experts=4, num_experts_per_tok=2,
                             layer_types=["linear_attention", "full_attention", "linear_attention", "full_attention"]),
    "nemotron_h": dict(_ATTN, num_hidden_layers=4, mamba_num_heads=8, mamba_head_dim=16, n_groups=2, ssm_state_size=8,
                       head_dim=16, chunk_size=8, layers_block_type=["mamba", "attention", "mlp", "mamba"]),
    "qwen3_next": dict(_ATTN, num_hidden_layers=4, head_dim=16, linear_num_value_heads=4, linear_num_key_heads=2,
                       linear_key_head_dim=16, linear_value_head_dim=8, full_attention_interval=2, num_experts=4,
                       num_experts_per_tok=2, moe_intermediate_size=32, shared_expert_intermediate_size=32),
    "qwen3_5_text": dict(_ATTN, num_hidden_layers=4, head_dim=16, linear_num_value_heads=4, linear_num_key_heads=2,
                         linear_key_head_dim=16, linear_value_head_dim=8, full_attention_interval=2),
    "olmo_hybrid": dict(_ATTN, num_hidden_layers=4,
                        layer_types=["linear_attention", "linear_attention", "linear_attention", "full_attention"]),
    "lfm2": dict(_ATTN, num_hidden_layers=4, block_ff_dim=128, conv_L_cache=3,
                 layer_types=["conv", "full_attention", "conv", "full_attention"]),
    # Kimi Delta Attention (per-channel decay, (heads, head_dim, head_dim) state) beside MLA attention layers,
    # whose cache holds the latent
    "kimi_linear": dict({**_ATTN, "num_key_value_heads": 4}, num_hidden_layers=4, linear_num_heads=4, linear_head_dim=16, linear_conv_kernel_dim=4,
                        kv_lora_rank=16, qk_rope_head_dim=8, qk_nope_head_dim=16, v_head_dim=16, q_lora_rank=None,
                        layer_types=["linear_attention", "linear_attention", "full_attention", "linear_attention"]),
    # MiniMax's lightning attention (its own MiniMaxCache: K^T V per layer, no conv state)
    "minimax": dict(_ATTN, num_hidden_layers=4, head_dim=16, block_size=8, num_local_experts=4, num_experts_per_tok=2,
                    layer_types=["linear_attention", "full_attention", "linear_attention", "full_attention"]),
}


def _cfg(model_type: str) -> dict:
    return {"model_type": model_type, **CONFIGS[model_type], "pad_token_id": 0, "bos_token_id": 1,
            "eos_token_id": 2, "torch_dtype": "bfloat16"}


def _build(cfg: dict):
    import torch
    import transformers

    config = transformers.AutoConfig.for_model(**{k: v for k, v in cfg.items() if k != "torch_dtype"})
    torch.manual_seed(0)
    return transformers.AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16).eval()


def _new_cache(model, static_len: int = 0):
    """The cache ``generate()`` creates: MiniMax's own ``MiniMaxCache``, else a dynamic (or static) cache."""
    from transformers import DynamicCache, StaticCache

    if model.config.model_type == "minimax":
        from transformers.models.minimax.modeling_minimax import MiniMaxCache

        return MiniMaxCache()
    if static_len:
        return StaticCache(config=model.config, max_cache_len=static_len)
    return DynamicCache(config=model.config)


def _layer_bytes(cache, i: int) -> int:
    """Bytes of the distinct storages layer ``i`` of a cache keeps alive: conv and recurrent states, keys and values
    (MiniMaxCache: its ``linear_cache`` beside the dynamic layers)."""
    layer = cache.layers[i] if i < len(cache.layers) else None
    held = [getattr(layer, "keys", None), getattr(layer, "values", None)]
    for name in ("conv_states", "recurrent_states"):
        held += list((getattr(layer, name, None) or {}).values())
    linear = getattr(cache, "linear_cache", None)
    if linear is not None and i < len(linear) and not isinstance(linear[i], list):
        held.append(linear[i])
    return distinct_storage_bytes(held)


def _run(model, cache, prompt: int) -> tuple[list[int], list[int]]:
    import inspect

    import torch

    # Mamba, Falcon-Mamba and Mamba2 take the cache as ``cache`` (5.24; ``cache_params`` before), the others as
    # ``past_key_values``
    params = inspect.signature(model.forward).parameters
    name = next(n for n in ("past_key_values", "cache", "cache_params") if n in params)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 128, (BATCH, prompt), generator=g)
    n = model.config.get_text_config().num_hidden_layers
    with torch.no_grad():
        model(input_ids=ids, use_cache=True, **{name: cache})
        after_prefill = [_layer_bytes(cache, i) for i in range(n)]
        for _ in range(STEPS):
            model(input_ids=torch.randint(3, 128, (BATCH, 1), generator=g), use_cache=True, **{name: cache})
    return after_prefill, [_layer_bytes(cache, i) for i in range(n)]


def _ours(spec, tokens: int, phase: str, cache: str = "dynamic") -> list[int]:
    import transformers

    layout = transformers_layout(spec, transformers.__version__, phase, cache, "bf16", "bf16")
    return layer_kv_bytes(spec, tokens, BATCH, 2.0, layout)


@pytest.mark.parametrize("prompt", [PROMPT, SHORT])
@pytest.mark.parametrize("model_type", list(CONFIGS))
def test_state_cache_bytes_per_layer(model_type, prompt):
    cfg = _cfg(model_type)
    spec = spec_from_config(cfg, "tiny")
    assert spec.state is not None and any(k != "full" for k in spec.state.kinds)
    model = _build(cfg)
    assert list(spec.state.kinds) == [
        {"linear_attention": "state", "conv": "state", "moe": "none", "mlp": "none"}.get(t, t.replace("_attention", ""))
        for t in model.config.get_text_config().layer_types]
    prefill, decode = _run(model, _new_cache(model), prompt)
    assert prefill == _ours(spec, prompt, "prefill")
    assert decode == _ours(spec, prompt + STEPS, "decode")


@pytest.mark.parametrize("model_type", ["jamba", "falcon_h1", "qwen3_next"])
def test_state_cache_in_a_static_cache(model_type):
    """StaticCache keeps the same LinearAttentionLayer states beside its preallocated attention layers
    (``LinearAttentionAndStaticFullAttentionLayer`` for Falcon-H1's hybrid layers)."""
    cfg = _cfg(model_type)
    spec = spec_from_config(cfg, "tiny")
    model = _build(cfg)
    length = PROMPT + STEPS
    prefill, decode = _run(model, _new_cache(model, length), PROMPT)
    assert prefill == _ours(spec, length, "prefill", "static")
    assert decode == _ours(spec, length, "decode", "static")


def test_state_does_not_grow_with_the_sequence():
    spec = spec_from_config({"model_type": "mamba2"}, "mamba2")  # every layer recurrent, no attention
    layout = transformers_layout(spec, "5.24.0", "decode", "dynamic", "bf16", "bf16")
    assert layer_kv_bytes(spec, 10, 1, 2.0, layout) == layer_kv_bytes(spec, 100_000, 1, 2.0, layout)


def test_states_before_the_unified_cache_layers_are_in_the_model_dtype():
    """transformers 5.0.0's MambaCache / Mamba2Cache allocate both states with the model's dtype (measured with
    this test's Mamba2 config under 5.0.0: conv (2, 2, 160, 4) and ssm (2, 2, 8, 16, 8) bf16, 5,120 + 8,192
    bytes for the two layers); 5.12.0 on keeps the recurrent state in float32."""
    cfg = _cfg("mamba2")
    spec = spec_from_config(cfg, "tiny")
    old = transformers_layout(spec, "5.0.0", "decode", "dynamic", "bf16", "bf16")
    assert sum(layer_kv_bytes(spec, 15, BATCH, 2.0, old)) == 5120 + 8192
    new = transformers_layout(spec, "5.12.0", "decode", "dynamic", "bf16", "bf16")
    assert sum(layer_kv_bytes(spec, 15, BATCH, 2.0, new)) == 5120 + 2 * 8192


def test_rwkv_state_list():
    """RWKV keeps no Cache object: ``RwkvModel`` returns its five ``(batch, hidden, layers)`` states (two in the
    model's dtype, three float32) and takes them back for the next step; their bytes are the layers' sum."""
    import torch

    cfg = {"model_type": "rwkv", "hidden_size": 64, "num_hidden_layers": 3, "vocab_size": 128,
           "attention_hidden_size": 64, "intermediate_size": 128, "torch_dtype": "bfloat16"}
    spec = spec_from_config(cfg, "tiny")
    assert spec.state is not None and spec.state.kinds == ("state",) * 3
    model = _build(cfg)
    ids = torch.randint(3, 128, (BATCH, PROMPT), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = model(input_ids=ids, use_cache=True)
        prefill = distinct_storage_bytes(out.state)
        for _ in range(STEPS):
            out = model(input_ids=ids[:, :1], state=out.state, use_cache=True)
    assert [s.dtype for s in out.state] == [torch.bfloat16] * 2 + [torch.float32] * 3
    assert prefill == distinct_storage_bytes(out.state) == sum(_ours(spec, PROMPT, "prefill")) \
        == sum(_ours(spec, PROMPT + STEPS, "decode"))
    # every version: the WKV state is float32 (the 5.0 rule of the model's dtype does not apply)
    old = transformers_layout(spec, "5.0.0", "decode", "dynamic", "bf16", "bf16")
    assert sum(layer_kv_bytes(spec, 15, BATCH, 2.0, old)) == prefill


def test_recurrent_gemma_module_states():
    """RecurrentGemma (Griffin) keeps its recurrent blocks' states in the modules (``rg_lru.recurrent_states`` float32,
    ``conv1d_state`` in the model's dtype, set up by ``_setup_cache``) and its attention blocks' keys and values in
    the ``DynamicCache`` ``generate()`` passes (sliding-window layers of ``attention_window_size``): their bytes
    after ``generate()`` (12-token prompt, 3 new tokens) equal vramscope's per layer."""
    import torch

    cfg = {"model_type": "recurrent_gemma", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 3,
           "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 16, "lru_width": 96,
           "attention_window_size": 5, "vocab_size": 128, "conv1d_width": 4, "pad_token_id": 0, "bos_token_id": 1,
           "eos_token_id": 2, "torch_dtype": "bfloat16"}
    spec = spec_from_config(cfg, "tiny")
    assert spec.state is not None and spec.state.kinds == ("state", "state", "sliding")
    model = _build(cfg)
    ids = torch.randint(3, 128, (BATCH, PROMPT), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=STEPS, min_new_tokens=STEPS, do_sample=False,
                             return_dict_in_generate=True)
    measured = []
    for i, layer in enumerate(model.model.layers):
        block = layer.temporal_block
        if hasattr(block, "rg_lru"):
            assert block.rg_lru.recurrent_states.dtype == torch.float32
            measured.append(distinct_storage_bytes([block.rg_lru.recurrent_states, block.conv1d_state]))
        else:
            measured.append(_layer_bytes(out.past_key_values, i))
    # the decode state after 3 steps: 14 tokens cached (the last new token is not fed back); the conv state is a
    # view of the conv1d_width-column concatenation (its storage: 96 × 4 bf16 values per sequence)
    assert measured == _ours(spec, PROMPT + STEPS - 1, "decode")
    assert measured[0] == BATCH * (96 * 4 + 96 * 4 * 2)


def test_xlstm_cache():
    """xLSTM keeps its own ``xLSTMCache``: per layer the mLSTM matrix memory ``(batch, heads, qk_head_dim,
    v_head_dim)``, normaliser ``(batch, heads, qk_head_dim)`` and stabiliser ``(batch, heads, 1)``, allocated in the
    model's dtype by ``xLSTMModel.forward`` and updated in place. A real bf16 CPU forward (prefill, then three
    decode steps through the returned cache, then ``generate()``) holds what vramscope counts per layer. The config
    keeps ``hidden × qk_dim_factor`` and ``hidden × v_dim_factor`` multiples of 64: the cache sizes its heads from
    the config's dims rounded up to 64, the layers from the unrounded ones, and transformers' own step kernel
    refuses the cache when they differ (``matC_old has wrong shape``: the smaller configs tried before)."""
    import torch

    cfg = {"model_type": "xlstm", "vocab_size": 128, "hidden_size": 256, "num_heads": 2, "num_blocks": 3,
           "num_hidden_layers": 3, "chunk_size": 16, "qk_dim_factor": 0.5, "v_dim_factor": 1.0, "pad_token_id": 0,
           "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "bfloat16"}
    spec = spec_from_config(cfg, "tiny")
    assert spec.state is not None and spec.state.kinds == ("state",) * 3
    model = _build(cfg)
    ids = torch.randint(3, 128, (BATCH, PROMPT), generator=torch.Generator().manual_seed(1))

    def held(cache):
        return [distinct_storage_bytes(list(cache.rnn_state[i])) for i in range(3)]

    with torch.no_grad():
        out = model(input_ids=ids, use_cache=True)
        prefill = held(out.cache)
        for _ in range(STEPS):
            out = model(input_ids=ids[:, :1], cache=out.cache, use_cache=True)
        gen = model.generate(ids, max_new_tokens=STEPS, min_new_tokens=STEPS, do_sample=False,
                             return_dict_in_generate=True)
    assert {t.dtype for s in out.cache.rnn_state.values() for t in s} == {torch.bfloat16}
    assert prefill == _ours(spec, PROMPT, "prefill")
    assert held(out.cache) == held(gen.cache) == _ours(spec, PROMPT + STEPS, "decode")
    assert prefill[0] == BATCH * 2 * (64 * 128 + 64 + 1) * 2


def test_xlstm_note_names_no_conv_state(tmp_path):
    """xLSTM's mLSTM layers keep only a recurrent state: the transformers note says so instead of naming a conv
    state that the cache does not hold (in both languages)."""
    import contextlib
    import io
    import json

    from vramscope.cli import main

    cfg = {"model_type": "xlstm", "vocab_size": 50304, "hidden_size": 4096, "num_heads": 8, "num_blocks": 32,
           "num_hidden_layers": 32, "qk_dim_factor": 0.5, "v_dim_factor": 1.0, "torch_dtype": "bfloat16"}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    for lang, head in (("en", "recurrent layers (xLSTMLayer)"), ("zh", "循环层（xLSTMLayer）")):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            assert main(["estimate", str(tmp_path), "--json", "--lang", lang]) == 0
        notes = [a for a in json.loads(buf.getvalue())["assumptions"] if a.startswith(head)]
        assert len(notes) == 1, notes
        assert ("no conv state" if lang == "en" else "没有卷积状态") in notes[0]
        assert "keep a conv state" not in notes[0] and "保存固定大小的卷积状态" not in notes[0]


@requires_torch
def test_meta_device_estimate_writes_nothing_on_stderr(tmp_path):
    """A config built on the meta device (xLSTM is not built in) prints its estimate and nothing on stderr: the
    torchao that transformers' quantizer table imports (the trace extra pins it) logs its CUDA kernels failing
    to load on a CPU, and torch's pytree logs deprecations; neither belongs in a memory estimate. A fresh
    process, since an earlier import in this one would hide the lines."""
    import json
    import subprocess
    import sys

    cfg = {"model_type": "xlstm", "vocab_size": 50304, "hidden_size": 4096, "num_heads": 8, "num_blocks": 32,
           "num_hidden_layers": 32, "qk_dim_factor": 0.5, "v_dim_factor": 1.0, "torch_dtype": "bfloat16"}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    run = subprocess.run([sys.executable, "-m", "vramscope", "estimate", str(tmp_path)], capture_output=True,
                         text=True, timeout=300, env={**__import__("os").environ, "VRAMSCOPE_LANG": "en"})
    assert run.returncode == 0, run.stderr
    assert "6.87B parameters" in run.stdout
    assert run.stderr == ""
