"""Parameters, tensor names and tied weights equal transformers' own model on the meta device: every catalog
entry, every built-in family (tiny configs and the configuration classes' defaults), and the models vramscope
takes from transformers itself when no family is built in (``sources/meta_device.py``)."""

import json
import re
import subprocess
import sys

import pytest

from conftest import requires_torch
from vramscope.cli import main
from vramscope.errors import VramscopeError
from vramscope.model.tensors import groups, tensors
from vramscope.sources import catalog, resolve_catalog
from vramscope.sources.hf_config import SUPPORTED_MODEL_TYPES, spec_from_config

ENTRIES = catalog.entries()


@requires_torch
@pytest.mark.trace
@pytest.mark.parametrize("entry", ENTRIES, ids=[e["id"] for e in ENTRIES])
def test_meta_device_parameter_count(entry):
    """Parameters and tied weights of every catalog entry equal transformers' model on the meta device."""
    from meta_build import meta_count_and_tied

    ours = resolve_catalog(entry["id"])
    assert ours is not None
    count, tied = meta_count_and_tied(entry["config"])
    assert ours.params == count
    assert ours.spec.tie_embeddings == tied


_SMALL = dict(num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=4,
              num_key_value_heads=2, vocab_size=100)

#: (model_type, architecture, config) of each family built in since issue #13: tiny shapes that exercise each
#: switch of the reader, and (config {}) the configuration class's defaults
FAMILY_CASES = [
    ("gpt_neox", "GPTNeoXForCausalLM", dict(num_hidden_layers=2, hidden_size=64, intermediate_size=128,
                                            num_attention_heads=4, vocab_size=100)),
    ("gpt_neox", "GPTNeoXForCausalLM", dict(num_hidden_layers=2, hidden_size=64, num_attention_heads=4,
                                            vocab_size=100, tie_word_embeddings=True, attention_bias=False)),
    ("gpt_neox", "GPTNeoXForCausalLM", {}),
    ("bloom", "BloomForCausalLM", dict(n_layer=2, hidden_size=64, n_head=4, vocab_size=100)),
    ("bloom", "BloomForCausalLM", dict(n_layer=2, n_embed=96, n_head=4, vocab_size=100)),
    ("bloom", "BloomForCausalLM", {}),
    ("opt", "OPTForCausalLM", dict(num_hidden_layers=2, hidden_size=64, ffn_dim=128, num_attention_heads=4,
                                   vocab_size=100)),
    ("opt", "OPTForCausalLM", dict(num_hidden_layers=2, hidden_size=64, ffn_dim=128, num_attention_heads=4,
                                   vocab_size=100, word_embed_proj_dim=32, do_layer_norm_before=False)),
    ("opt", "OPTForCausalLM", dict(num_hidden_layers=2, hidden_size=64, ffn_dim=128, num_attention_heads=4,
                                   vocab_size=100, enable_bias=False, max_position_embeddings=100)),
    ("opt", "OPTForCausalLM", {}),
    ("gptj", "GPTJForCausalLM", dict(n_layer=2, n_embd=64, n_head=4, vocab_size=100, rotary_dim=8)),
    ("gptj", "GPTJForCausalLM", dict(n_layer=2, n_embd=64, n_head=4, vocab_size=100, rotary_dim=8, n_inner=100)),
    ("gptj", "GPTJForCausalLM", {}),
    ("gpt_bigcode", "GPTBigCodeForCausalLM", dict(n_layer=2, n_embd=64, n_head=4, vocab_size=100)),
    ("gpt_bigcode", "GPTBigCodeForCausalLM", dict(n_layer=2, n_embd=64, n_head=4, vocab_size=100,
                                                  multi_query=False, n_inner=96, n_positions=77)),
    ("gpt_bigcode", "GPTBigCodeForCausalLM", {}),
    ("mpt", "MptForCausalLM", dict(n_layers=2, d_model=64, n_heads=4, vocab_size=100)),
    ("mpt", "MptForCausalLM", dict(n_layers=2, d_model=64, n_heads=4, vocab_size=100, no_bias=False,
                                   expansion_ratio=3)),  # transformers ignores both
    ("mpt", "MptForCausalLM", {}),
    ("starcoder2", "Starcoder2ForCausalLM", _SMALL),
    ("starcoder2", "Starcoder2ForCausalLM", {**_SMALL, "use_bias": False}),
    ("starcoder2", "Starcoder2ForCausalLM", {}),
    ("cohere", "CohereForCausalLM", _SMALL),
    ("cohere", "CohereForCausalLM", {**_SMALL, "use_qk_norm": True}),
    ("cohere", "CohereForCausalLM", {}),
    ("cohere2", "Cohere2ForCausalLM", {**_SMALL, "num_hidden_layers": 8}),
    ("cohere2", "Cohere2ForCausalLM", {}),
    ("stablelm", "StableLmForCausalLM", _SMALL),
    ("stablelm", "StableLmForCausalLM", {**_SMALL, "qk_layernorm": True, "use_qkv_bias": True,
                                         "use_parallel_residual": True}),
    ("stablelm", "StableLmForCausalLM", {}),
    ("olmo", "OlmoForCausalLM", _SMALL),
    ("olmo", "OlmoForCausalLM", {}),
    ("olmo2", "Olmo2ForCausalLM", _SMALL),
    ("olmo2", "Olmo2ForCausalLM", {}),
    ("olmoe", "OlmoeForCausalLM", {**_SMALL, "num_experts": 8, "num_experts_per_tok": 2}),
    ("olmoe", "OlmoeForCausalLM", {}),
    ("granite", "GraniteForCausalLM", _SMALL),
    ("granite", "GraniteForCausalLM", {**_SMALL, "attention_bias": True, "mlp_bias": True}),
    ("granite", "GraniteForCausalLM", {}),
    ("granitemoe", "GraniteMoeForCausalLM", _SMALL),
    ("granitemoe", "GraniteMoeForCausalLM", {}),
    ("gpt_oss", "GptOssForCausalLM", {**_SMALL, "head_dim": 16, "num_local_experts": 4, "num_experts_per_tok": 2}),
    ("gpt_oss", "GptOssForCausalLM", {**_SMALL, "head_dim": 16, "num_local_experts": 4, "num_experts_per_tok": 2,
                                      "attention_bias": False}),
    ("gpt_oss", "GptOssForCausalLM", {}),
    ("smollm3", "SmolLM3ForCausalLM", {**_SMALL, "pad_token_id": 1}),
    ("smollm3", "SmolLM3ForCausalLM", {}),
    ("dbrx", "DbrxForCausalLM", dict(d_model=64, n_heads=4, n_layers=2, vocab_size=100,
                                     attn_config={"kv_n_heads": 2, "rope_theta": 5e5},
                                     ffn_config={"ffn_hidden_size": 32, "moe_num_experts": 4, "moe_top_k": 2})),
    ("dbrx", "DbrxForCausalLM", dict(attn_config={"rope_theta": 5e5})),  # the class's defaults otherwise
    ("phimoe", "PhimoeForCausalLM", {**_SMALL, "num_local_experts": 4, "num_experts_per_tok": 2}),
    ("phimoe", "PhimoeForCausalLM", {**_SMALL, "num_local_experts": 4, "num_experts_per_tok": 2,
                                     "lm_head_bias": True}),
    ("phimoe", "PhimoeForCausalLM", {}),
    ("llama4_text", "Llama4ForCausalLM", {**_SMALL, "head_dim": 16, "intermediate_size_mlp": 96,
                                         "num_local_experts": 4, "num_experts_per_tok": 1}),
    ("llama4_text", "Llama4ForCausalLM", {**_SMALL, "num_hidden_layers": 4, "head_dim": 16, "intermediate_size_mlp": 96,
                                         "num_local_experts": 4, "interleave_moe_layer_step": 2}),
    ("llama4_text", "Llama4ForCausalLM", {**_SMALL, "num_hidden_layers": 4, "head_dim": 16, "intermediate_size_mlp": 96,
                                         "num_local_experts": 4, "moe_layers": [0, 3]}),
    ("llama4_text", "Llama4ForCausalLM", {}),
    ("llama4", "Llama4ForConditionalGeneration", {}),  # Scout's shapes: 16 experts on every layer
    ("llama4", "Llama4ForConditionalGeneration", {"text_config": {"num_local_experts": 128,
                                                                  "interleave_moe_layer_step": 2}}),  # Maverick's
    ("llama4", "Llama4ForConditionalGeneration", {
        "text_config": {**_SMALL, "head_dim": 16, "intermediate_size_mlp": 96, "num_local_experts": 4},
        "vision_config": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
                          "intermediate_size": 48, "vision_output_dim": 40, "image_size": 56, "patch_size": 14,
                          "projector_input_dim": 24, "projector_output_dim": 24}}),
]


def _case_id(case):
    mt, _, cfg = case
    return f"{mt}-{'defaults' if not cfg else '-'.join(f'{k}={v}' for k, v in cfg.items() if k not in _SMALL)}"


def _numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def _names(model):
    return {n for n, _ in model.named_parameters()}


def _expanded(spec):
    """Our tensor names with folded experts (``experts.*.``) written out per expert."""
    out = set()
    for t in tensors(spec):
        if ".*." in t.name:
            out |= {t.name.replace(".*.", f".{j}.") for j in range(t.count)}
        else:
            out.add(t.name)
    return out


@requires_torch
@pytest.mark.trace
@pytest.mark.parametrize("case", FAMILY_CASES, ids=[_case_id(c) for c in FAMILY_CASES])
def test_built_in_family_equals_meta_device(case):
    from meta_build import meta_model, meta_param_count, meta_tied_embeddings

    mt, arch, cfg = case
    cfg = {"model_type": mt, "architectures": [arch], **cfg}
    spec = spec_from_config(cfg, mt)
    assert spec.layout != "meta"  # built in: no torch needed
    assert spec.params == meta_param_count(cfg)
    model = meta_model(cfg)
    assert spec.tie_embeddings == meta_tied_embeddings(model)
    if spec.moe is None:  # same names as transformers (MoE experts are listed per expert, transformers fuses them)
        assert _expanded(spec) == _names(model)


#: model types the issue found refused that transformers ships and vramscope does not build in: (model_type,
#: architecture, config); {} is the configuration class's defaults
META_CASES = [
    ("falcon_mamba", "FalconMambaForCausalLM", {}),
    ("mamba", "MambaForCausalLM", {}),
    ("mamba2", "Mamba2ForCausalLM", {}),
    ("jamba", "JambaForCausalLM", {}),
    ("falcon_h1", "FalconH1ForCausalLM", {}),
    ("bart", "BartForConditionalGeneration", {}),
    ("whisper", "WhisperForConditionalGeneration", {}),
    ("mt5", "MT5ForConditionalGeneration", {}),
    ("vit", "ViTForImageClassification", {}),
    ("clip", "CLIPModel", {}),
    ("glm4v_moe", "Glm4vMoeForConditionalGeneration", {}),
    # llava, qwen2_5_vl and mllama are built in now (sources/vision_config.py, tests/test_vision.py); a LLaVA
    # with a SigLIP tower is still taken from transformers
    ("llava", "LlavaForConditionalGeneration", {"vision_config": {"model_type": "siglip_vision_model"}}),
    ("ministral3", "Ministral3ForCausalLM", {}),
    ("phi4_multimodal", "Phi4MultimodalForCausalLM", {}),
    ("qwen3_next", "Qwen3NextForCausalLM", {}),
]


@requires_torch
@pytest.mark.trace
@pytest.mark.parametrize("case", META_CASES, ids=[c[0] + ("-siglip" if c[2] else "") for c in META_CASES])
def test_meta_device_fallback_takes_transformers_own_tensors(case):
    from meta_build import meta_model, meta_param_count, meta_tied_embeddings

    mt, arch, cfg = case
    assert mt not in SUPPORTED_MODEL_TYPES or mt == "llava"  # a LLaVA with a SigLIP tower is not built in
    cfg = {"model_type": mt, "architectures": [arch], **cfg}
    spec = spec_from_config(cfg, mt)
    assert spec.layout == "meta"
    model = meta_model(cfg)
    assert spec.params == meta_param_count(cfg) == sum(p.numel() for p in model.parameters())
    assert spec.tie_embeddings == meta_tied_embeddings(model)
    assert sum(g.numel for g in groups(spec)) == sum(t.numel for t in tensors(spec)) == spec.params
    assert _expanded(spec) == _names(model)  # exact names, experts folded with their count
    shapes = {n: tuple(p.shape) for n, p in model.named_parameters()}
    for t in tensors(spec):
        if ".*." not in t.name:  # fused experts: [E, out, in], or DBRX's [E·out, in]
            real = shapes[t.name]
            assert t.numel == _numel(real) and t.shape[-1:] == real[-1:], t.name
            assert t.count == 1 and t.shape == real or t.count == real[0] or len(real) == 2, t.name
    ties = {a for a, _ in spec.inventory.tied}
    every = {n for n, _ in model.named_parameters(remove_duplicate=False)}
    assert ties == every - _names(model)  # each tied name is reported, and counted once


@requires_torch
@pytest.mark.trace
def test_meta_device_moe_counts_routed_experts_as_active(monkeypatch):
    from vramscope.sources import hf_config, meta_device

    # DBRX's flat [E·I, h] experts, as the meta device builds them (its built-in reader set aside)
    cfg = {"model_type": "dbrx", "architectures": ["DbrxForCausalLM"], "d_model": 256, "n_heads": 4, "n_layers": 2,
           "vocab_size": 1000, "attn_config": {"kv_n_heads": 2, "rope_theta": 500000},
           "ffn_config": {"ffn_hidden_size": 128, "moe_num_experts": 4, "moe_top_k": 2}}
    spec = meta_device.spec_from_meta(cfg, "dbrx", "config.json", "dbrx", 0)
    assert spec.layout == "meta"
    experts = [t for t in tensors(spec) if t.role == "expert"]
    assert experts and all(t.count == 4 for t in experts)
    assert spec.moe is not None and spec.moe.experts_per_token == 2
    routed = sum(t.numel for t in experts)
    assert spec.params - spec.active_params == routed // 2  # 2 of 4 experts idle
    built_in = hf_config.spec_from_config(cfg, "dbrx")
    assert built_in.layout == "dbrx" and (built_in.params, built_in.active_params) == (spec.params,
                                                                                        spec.active_params)


@requires_torch
@pytest.mark.trace
def test_meta_device_estimate_runs_end_to_end(tmp_path, capsys):
    cfg = {"model_type": "whisper", "architectures": ["WhisperForConditionalGeneration"], "d_model": 384,
           "encoder_layers": 4, "decoder_layers": 4, "encoder_attention_heads": 6, "decoder_attention_heads": 6,
           "vocab_size": 51865, "torch_dtype": "float32"}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    assert main(["estimate", str(path), "--json", "--no-hub"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"]["params"] == 37_760_640
    assert any("WhisperForConditionalGeneration on the meta device" in a for a in out["assumptions"])
    assert "tied weights, counted once: proj_out.weight = model.decoder.embed_tokens.weight" in out["assumptions"]


@requires_torch
@pytest.mark.trace
@pytest.mark.parametrize("mt, mixer", [("mamba", "MambaMixer"), ("jamba", "JambaMambaMixer"),
                                       ("falcon_h1", "FalconH1Mixer"), ("qwen3_next", "Qwen3NextGatedDeltaNet"),
                                       ("kimi_linear", "KimiLinearDeltaAttention"),
                                       ("minimax", "MiniMaxLightningAttention"), ("rwkv", "RwkvSelfAttention"),
                                       ("xlstm", "xLSTMLayer"),
                                       ("recurrent_gemma", "RecurrentGemmaRglru")])
def test_meta_device_reads_recurrent_state_caches(mt, mixer):
    """The mixers' conv and recurrent states are read (tests/test_state_cache.py checks their bytes against
    transformers' cache objects); no 'not modelled' note then."""
    spec = spec_from_config({"model_type": mt}, mt)
    assert spec.state is not None and spec.state.mixer == mixer
    assert not any(getattr(n, "key", "") == "a_meta_recurrent" for n in spec.notes)
    # which engines model them is said
    assert any(getattr(n, "key", "") == "a_state_engines" and n.params["mixer"] == mixer for n in spec.notes)


@requires_torch
@pytest.mark.trace
@pytest.mark.parametrize("mt, mixer", [("xlstm", "xLSTM")])
def test_meta_device_states_that_unread_recurrent_caches_are_not_modelled(mt, mixer, monkeypatch):
    """A mixer whose cache is not read (xLSTM's, as it was before its reader: the reader made to find nothing)
    is named, and its layers counted as attention."""
    from vramscope.sources import meta_device

    monkeypatch.setattr(meta_device, "_xlstm_state", lambda text, n: None)
    spec = spec_from_config({"model_type": mt}, "unread")  # a name of its own: not the cached spec of the reader
    notes = [n for n in spec.notes if getattr(n, "key", "") == "a_meta_recurrent"]
    assert spec.state is None and notes and mixer in notes[0].params["mixers"]
    assert not any(getattr(n, "key", "") == "a_meta_recurrent"
                   for n in spec_from_config({"model_type": "whisper"}, "w").notes)


def test_refusal_names_what_was_tried_without_the_trace_extra(monkeypatch):
    from vramscope.sources import meta_device

    monkeypatch.setattr(meta_device, "available", lambda: False)
    with pytest.raises(VramscopeError) as e:
        spec_from_config({"model_type": "whisper"}, "w")
    en, zh = e.value.render("en"), e.value.render("zh")
    assert f"not one of the {len(SUPPORTED_MODEL_TYPES)} model types built in" in en and "trace extra" in en
    assert "\n" not in en and len(en) < 400
    assert f"{len(SUPPORTED_MODEL_TYPES)} 种内置模型类型" in zh and "trace 扩展" in zh


@requires_torch
@pytest.mark.trace
def test_refusal_of_a_model_type_transformers_does_not_ship(capsys, tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "my_remote_arch", "auto_map": {"AutoModel": "modeling_x.X"}}))
    assert main(["estimate", str(path), "--no-hub"]) == 2
    err = capsys.readouterr().err.strip()
    assert "my_remote_arch" in err and "does not ship it (remote code is never run)" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


@requires_torch
@pytest.mark.trace
def test_meta_device_refuses_a_hostile_shape_before_building():
    with pytest.raises(VramscopeError, match="num_hidden_layers"):
        spec_from_config({"model_type": "mamba", "num_hidden_layers": 10**6}, "m")
    with pytest.raises(VramscopeError, match="text_config.num_hidden_layers"):
        spec_from_config({"model_type": "llava", "text_config": {"num_hidden_layers": 10**7}}, "m")
    with pytest.raises(VramscopeError, match="layers × experts: 1024 × 8192"):  # 8M expert modules: hours
        spec_from_config({"model_type": "jamba", "num_hidden_layers": 1024, "num_experts": 8192}, "m")
    with pytest.raises(VramscopeError, match="text_config.layers × experts: 512 × 1024"):
        # a LLaVA with a SigLIP tower is built on the meta device (a CLIP one is built in: tests/test_vision.py)
        spec_from_config({"model_type": "llava", "vision_config": {"model_type": "siglip_vision_model"},
                          "text_config": {"model_type": "mixtral", "num_hidden_layers": 512,
                                          "num_local_experts": 1024}}, "m")


def test_built_in_families_never_import_torch():
    code = ("import sys; from vramscope.sources.hf_config import spec_from_config; "
            "[spec_from_config({'model_type': mt}, mt).params for mt in "
            "('gpt_neox', 'bloom', 'opt', 'gptj', 'gpt_bigcode', 'mpt', 'starcoder2', 'cohere', 'cohere2', "
            "'stablelm', 'olmo', 'olmo2', 'olmoe', 'granite', 'granitemoe')]; "
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_new_family_is_read_by_a_built_in_reader():
    for mt, _, _ in FAMILY_CASES:
        assert mt in SUPPORTED_MODEL_TYPES
    assert re.fullmatch(r"[a-z0-9_, ]+", ", ".join(SUPPORTED_MODEL_TYPES))


@requires_torch
@pytest.mark.trace
@pytest.mark.parametrize("model_type", ["whisper", "bart", "mamba", "jamba", "llava", "qwen2_5_vl", "falcon_h1"])
def test_meta_device_models_answer_every_workload(model_type, tmp_path):
    import vramscope
    from test_smoke_catalog import WORKLOADS

    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": model_type}))
    for kw in WORKLOADS:
        e = vramscope.estimate(str(path), **kw)
        assert e.total_bytes > 0 and e.total_bytes == sum(e.components.values()), kw
    assert vramscope.fit(str(path), gpu="rtx-4090", task="finetune") is not None


@requires_torch
@pytest.mark.trace
def test_meta_device_keeps_the_checkpoints_quantization_method():
    cfg = {"model_type": "whisper", "quantization_config": {"quant_method": "gptq", "bits": 4}}
    assert spec_from_config(cfg, "w").quant_method == "gptq"  # never handed to transformers' quantizers
    assert spec_from_config({"model_type": "whisper"}, "w").quant_method == ""


@requires_torch
@pytest.mark.trace
def test_absent_q_lora_rank_is_transformers_default():
    """A DeepSeek config without ``q_lora_rank`` builds q_a_proj/q_b_proj of rank 1536 (the config class's
    default), not an uncompressed q_proj: the same parameters as vramscope reads."""
    from meta_build import meta_param_count

    cfg = {k: v for k, v in resolve_catalog("deepseek-v2-lite").hf_config.items() if k != "q_lora_rank"}
    cfg["num_hidden_layers"] = 2
    assert spec_from_config(cfg, "x").params == meta_param_count(cfg)


@requires_torch
@pytest.mark.trace
@pytest.mark.parametrize("q_lora_rank", [24, None])
def test_kimi_k2_is_read_and_built_as_deepseek_v3(q_lora_rank):
    """Kimi K2's ``model_type: kimi_k2`` is DeepSeek-V3's own remote code (architectures DeepseekV3ForCausalLM):
    the built-in reader's count and tied embeddings equal transformers' DeepseekV3ForCausalLM built from the same
    config (``trace/build.py: equivalent_config``), tensor by tensor where there is no MoE, and equal the count of
    the config read as deepseek_v3; llama.cpp's deepseek2 stays DeepSeek's row."""
    from meta_build import meta_count_and_tied

    from vramscope.model.families import by_gguf_arch
    from vramscope.trace.build import equivalent_config

    mla = dict(kv_lora_rank=16, q_lora_rank=q_lora_rank, qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=8)
    for moe in ({}, dict(n_routed_experts=4, num_experts_per_tok=2, moe_intermediate_size=16, n_shared_experts=1,
                         first_k_dense_replace=1, n_group=1, topk_group=1)):
        cfg = {"model_type": "kimi_k2", "architectures": ["DeepseekV3ForCausalLM"], **_SMALL, **mla, **moe}
        spec = spec_from_config(cfg, "kimi")
        assert spec.layout != "meta" and spec.mla is not None
        assert (spec.params, spec.tie_embeddings) == meta_count_and_tied(cfg)
        assert spec.params == spec_from_config({**cfg, "model_type": "deepseek_v3"}, "v3").params
        native, arch = equivalent_config(cfg)
        assert native["model_type"] == "deepseek_v3" and arch == "DeepseekV3ForCausalLM"
        if not moe:
            from meta_build import _build_native

            assert _expanded(spec) == _names(_build_native(cfg)[0])
    assert by_gguf_arch("deepseek2").name == "deepseek"
