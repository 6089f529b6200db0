"""The built-in catalog: coverage, lookups, suggestions, and exact parameter counts from the spec."""

import json
import re
from collections import Counter

import pytest

from vramscope.errors import VramscopeError
from vramscope.sources import catalog, resolve, resolve_catalog

KNOWN = {
    "meta-llama/Llama-2-7b-hf": 6_738_415_616,
    "meta-llama/Meta-Llama-3-8B": 8_030_261_248,
    "meta-llama/Llama-2-70b-hf": 68_976_648_192,
    "Qwen/Qwen2.5-7B": 7_615_616_512,
    "mistralai/Mixtral-8x7B-v0.1": 46_702_792_704,
    "google/gemma-7b": 8_537_680_896,
    "google/gemma-2-9b": 9_241_705_984,
}


@pytest.mark.parametrize("model_id, expected", KNOWN.items())
def test_known_parameter_counts(model_id, expected):
    assert resolve(model_id).params == expected


def test_moe_active_parameters():
    mixtral = resolve("mixtral-8x7b")
    assert mixtral.params == 46_702_792_704
    # 2 of 8 experts per token: 46.7B - 32 layers × 6 experts × 3 × 4096 × 14336
    assert mixtral.active_params == 46_702_792_704 - 32 * 6 * 3 * 4096 * 14336
    v3 = resolve("deepseek-ai/DeepSeek-V3")
    assert 670e9 < v3.params < 672e9 and 37e9 < v3.active_params < 38e9


def test_catalog_size_and_families():
    entries = catalog.entries()
    assert len(entries) >= 60
    ids = [e["id"].lower() for e in entries]
    for needle in ("llama-2", "llama-3-", "llama-3.1", "llama-3.2", "llama-3.3", "mistral-7b", "mixtral",
                   "qwen2-", "qwen2.5", "qwen3", "qwen3-30b-a3b", "deepseek-v2", "deepseek-v3", "r1-distill",
                   "gemma-7b", "gemma-2-", "gemma-3-", "phi-3", "phi-4", "yi-", "glm-4", "internlm", "baichuan",
                   "falcon", "gpt2", "bert", "t5", "gpt-oss-120b", "qwen3-235b-a22b-fp8", "qwen3-coder-480b", "glm-4.5",
                   "glm-5", "command-r", "olmo-3", "exaone-4", "deepseek-v3.2", "devstral-2"):
        assert any(needle in i for i in ids), needle


def test_every_entry_has_source_and_resolves():
    for e in catalog.entries():
        assert e["source"].startswith("https://"), e["id"]
        assert "model_type" in e["config"], e["id"]
        r = resolve_catalog(e["id"])
        assert r is not None and r.params > 0


def test_names_are_unique():
    keys = Counter()
    for e in catalog.entries():
        for k in {e["id"].lower(), e["id"].split("/")[-1].lower(), *[a.lower() for a in e.get("aliases", [])]}:
            keys[k] += 1
    dupes = [k for k, n in keys.items() if n > 1]
    assert not dupes, dupes


@pytest.mark.parametrize("name", ["meta-llama/Meta-Llama-3-8B", "Meta-Llama-3-8B", "llama-3-8b", "LLAMA-3-8B"])
def test_lookup_by_id_short_name_alias(name):
    assert resolve(name).origin == "meta-llama/Meta-Llama-3-8B"


def test_unknown_name_suggests_closest():
    with pytest.raises(VramscopeError) as e:
        resolve("llama-3-8", hub=False)
    msg = str(e.value)
    assert "did you mean" in msg and "Meta-Llama-3-8B" in msg


def test_unknown_name_without_close_match():
    with pytest.raises(VramscopeError) as e:
        resolve("zzzzqqqq", hub=False)
    assert "vramscope models" in str(e.value)


def test_catalog_files_are_valid_json_lists():
    for path in catalog.DATA.glob("*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        assert isinstance(data, list) and data


def test_explicit_head_dim_is_kept():
    nemo = resolve("mistralai/Mistral-Nemo-Base-2407").spec
    assert nemo.head_dim == 128 and nemo.hidden_size // nemo.num_heads == 160
    gemma = resolve("google/gemma-7b").spec
    assert gemma.head_dim == 256 and gemma.tie_embeddings


def test_per_layer_attention_patterns():
    g2 = resolve("google/gemma-2-9b").spec
    assert g2.layer_types[:2] == ("sliding_attention", "full_attention") and g2.sliding_window == 4096
    g3 = resolve("google/gemma-3-1b-pt").spec
    assert g3.layer_types[:6] == ("sliding_attention",) * 5 + ("full_attention",)


def test_mla_and_moe_specs():
    v2 = resolve("deepseek-ai/DeepSeek-V2-Lite").spec
    assert v2.mla is not None and v2.mla.q_lora_rank is None and v2.mla.kv_lora_rank == 512
    assert v2.moe is not None and v2.moe.dense_layers == (0,)
    q = resolve("Qwen/Qwen1.5-MoE-A2.7B").spec
    assert q.moe is not None and q.moe.shared_expert_gate and q.moe.shared_intermediate_size > 0


def test_encoder_and_encoder_decoder():
    assert resolve("bert-base-uncased").spec.kind == "encoder"
    t5 = resolve("t5-base").spec
    assert t5.kind == "encoder-decoder" and t5.num_decoder_layers == 12


def test_every_verbatim_copy_names_the_commit_it_was_copied_from():
    """An entry whose note says it is a verbatim copy names the public file it was copied from at a full commit,
    and its note names that commit; the others say they are reconstructed."""
    verbatim = 0
    for e in catalog.entries():
        note = e.get("note", "")
        if "verbatim copy of" in note and "not a verbatim copy" not in note:
            verbatim += 1
            m = re.fullmatch(r"https://github\.com/[^/]+/[^/]+/blob/([0-9a-f]{40})/.+", e.get("copied_from", ""))
            assert m is not None, e["id"]
            assert m.group(1)[:12] in note, e["id"]
            assert e["source"].startswith("https://huggingface.co/") and e["source"].endswith("/config.json"), e["id"]
        elif note:
            assert "not a verbatim copy" in note, e["id"]
    assert verbatim >= 40


def test_quantized_checkpoints_are_estimated_in_their_own_format():
    """quantization_config in a catalog config decides the weights' storage by default (FP8 block, MXFP4)."""
    for e in catalog.entries():
        method = (catalog.config_of(e).get("quantization_config") or {}).get("quant_method")
        if method:
            assert resolve(e["id"]).spec.quant_method == method, e["id"]
    fp8 = resolve("Qwen/Qwen3-235B-A22B-FP8")
    bf16 = resolve("Qwen/Qwen3-235B-A22B")
    assert fp8.params == bf16.params and fp8.spec.quant_method == "fp8" and bf16.spec.quant_method == ""
    import vramscope

    w8, w16 = (vramscope.estimate(m).components["weights"] for m in ("Qwen/Qwen3-235B-A22B-FP8", "Qwen/Qwen3-235B-A22B"))
    assert 0.45 * w16 < w8 < 0.55 * w16  # one byte a weight (plus block scales) against two


def test_a_stored_modelopt_sidecar_is_the_quantization_config():
    """An entry whose config.json has no quantization_config stores NVIDIA's hf_quant_config.json beside it, copied
    from a public file at a full commit; it is read as vLLM reads a checkpoint folder (sources/local.py), so the
    weights are NVFP4 or FP8, not the bf16 of config.json alone."""
    side = [e for e in catalog.entries() if "hf_quant_config" in e]
    assert len(side) >= 10
    for e in side:
        assert "quantization_config" not in e["config"], e["id"]
        m = re.fullmatch(r"https://github\.com/[^/]+/[^/]+/blob/([0-9a-f]{40})/.+hf_quant_config\.json",
                         e.get("hf_quant_config_from", ""))
        assert m is not None and m.group(1)[:12] in e["note"], e["id"]
        q = catalog.config_of(e)["quantization_config"]
        assert q["quant_method"] == "modelopt" and q["quantization"] == e["hf_quant_config"]["quantization"]
    import vramscope

    w = {m: vramscope.estimate(m).components["weights"] for m in (
        "nvidia/NVIDIA-Nemotron-3-Ultra-550B-A55B-BF16", "nvidia/NVIDIA-Nemotron-3-Ultra-550B-A55B-FP8",
        "nvidia/NVIDIA-Nemotron-3-Ultra-550B-A55B-NVFP4")}
    bf16, fp8, fp4 = w.values()
    assert resolve("nvidia/NVIDIA-Nemotron-3-Ultra-550B-A55B-NVFP4").params == resolve(
        "nvidia/NVIDIA-Nemotron-3-Ultra-550B-A55B-BF16").params
    assert fp4 < fp8 < bf16 and fp8 < 0.6 * bf16 and fp4 < 0.6 * fp8


def test_a_bad_stored_sidecar_is_refused_with_its_origin():
    entry = {"id": "x/y", "config": {"model_type": "llama"}, "hf_quant_config": {"producer": {}},
             "hf_quant_config_from": "https://github.com/a/b/blob/c/hf_quant_config.json"}
    with pytest.raises(VramscopeError) as e:
        catalog.config_of(entry)
    assert "quantization" in str(e.value)
