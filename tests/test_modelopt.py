"""NVIDIA ModelOpt checkpoints (``quant_method: modelopt``, NVFP4 / FP8) are estimated in their own storage: the
bytes per tensor are what vLLM's ``ModelOptNvFp4LinearMethod`` / ``ModelOptFp8LinearMethod.create_weights``
create (vllm-project/vllm c9a59901113c ``model_executor/layers/quantization/modelopt.py``), the exclude list is
matched as vLLM's ``is_layer_excluded`` matches it, a sidecar ``hf_quant_config.json`` is read when config.json
has no ``quantization_config``, and vLLM's KV cache follows ``kv_cache_quant_algo`` FP8."""

from __future__ import annotations

import contextlib
import io
import json
import struct
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

from fixtures import TINY_LLAMA, _ST_BYTES, llama_tensors, write_safetensors
from vramscope.memory.weights import spec_weight_bytes
from vramscope.sources.hf_config import spec_from_config
from vramscope.sources.quant_config import GLOB, checkpoint_quant, skipped

NVFP4 = {"quant_method": "modelopt", "quant_algo": "NVFP4", "group_size": 16, "ignore": ["lm_head"],
         "kv_cache_quant_algo": "FP8"}


def _vllm_modelopt_tensors(name: str, shape: tuple[int, ...], algo: str) -> dict[str, tuple[str, tuple[int, ...]]]:
    """The checkpoint tensors of one linear as vLLM's create_weights declares them (module docstring)."""
    out_f, in_f = shape
    base = name[:-len(".weight")]
    if algo == "NVFP4":  # weight uint8 [out, in // 2], weight_scale e4m3 [out, in // 16], two fp32 scalars
        return {name: ("U8", (out_f, in_f // 2)), base + ".weight_scale": ("F8_E4M3", (out_f, in_f // 16)),
                base + ".weight_scale_2": ("F32", ()), base + ".input_scale": ("F32", ())}
    if algo == "W4A16_NVFP4":  # vLLM 0.33.0 resolve: kNvfp4Static weight, no activation scheme (no input_scale)
        return {name: ("U8", (out_f, in_f // 2)), base + ".weight_scale": ("F8_E4M3", (out_f, in_f // 16)),
                base + ".weight_scale_2": ("F32", ())}
    if algo == "FP8":  # e4m3 weight, fp32 weight_scale and input_scale (one per logical width: 1 unfused)
        return {name: ("F8_E4M3", shape), base + ".weight_scale": ("F32", ()), base + ".input_scale": ("F32", ())}
    if algo == "FP8_PER_CHANNEL_PER_TOKEN":  # weight_scale [out], no input_scale
        return {name: ("F8_E4M3", shape), base + ".weight_scale": ("F32", (out_f,))}
    assert algo == "FP8_PB_WO"  # weight_scale [out / 128, 1, in / 128, 1]
    return {name: ("F8_E4M3", shape), base + ".weight_scale": ("F32", (out_f // 128, 1, in_f // 128, 1))}


def _header_bytes(path: Path) -> int:
    """Data bytes a safetensors file declares, read from its header with nothing of vramscope's."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    return sum(e["data_offsets"][1] - e["data_offsets"][0] for k, e in header.items() if k != "__metadata__")


def _checkpoint(tmp_path: Path, cfg: dict, algo: str, exclude: tuple[str, ...]) -> Path:
    """A safetensors file laid out as a ModelOpt export of ``cfg``: excluded modules and non-linears in bf16."""
    tensors: dict[str, tuple[str, tuple[int, ...]]] = {}
    for name, shape in llama_tensors(cfg).items():
        module = name[:-len(".weight")]
        linear = len(shape) == 2 and "layers." in name
        excluded = any(p in module or fnmatchcase(module, p) for p in exclude)
        if linear and not excluded:
            tensors.update(_vllm_modelopt_tensors(name, shape, algo))
        else:
            tensors[name] = ("BF16", shape)
    return write_safetensors(tmp_path / "model.safetensors", tensors)


@pytest.mark.parametrize("algo, fmt", [("NVFP4", "nvfp4"), ("FP8", "modelopt-fp8"),
                                       ("FP8_PER_CHANNEL_PER_TOKEN", "fp8-channel"), ("fp8_pb_wo", "fp8-block")])
@pytest.mark.parametrize("exclude", [("lm_head",), ("lm_head", "model.layers.0.self_attn*", "*.mlp.down_proj")])
def test_weight_bytes_equal_a_modelopt_checkpoint(tmp_path, algo, fmt, exclude):
    cfg = dict(TINY_LLAMA, hidden_size=256, intermediate_size=512, num_attention_heads=2, num_key_value_heads=1)
    q = {"quant_method": "modelopt", "quant_algo": algo, "ignore": list(exclude)}
    spec = spec_from_config(dict(cfg, quantization_config=q), "tiny")
    assert spec.quant_format == fmt and spec.quant_skip == tuple(GLOB + p for p in exclude)
    path = _checkpoint(tmp_path, cfg, algo.upper(), exclude)
    got = spec_weight_bytes(spec, 2.0, spec.quant_format, spec.quant_skip, True).total
    assert got == _header_bytes(path)
    assert got < spec_weight_bytes(spec, 2.0, "none").total


def test_llama_3_1_8b_nvfp4_matches_the_published_size():
    """nvidia/Llama-3.1-8B-Instruct-FP4 (ModelOpt 0.35, lm_head excluded): its model card gives 4.98 + 1.05 GB of
    safetensors; vLLM's layout gives 6,027,749,120 bytes (9/16 byte per linear weight + 8 bytes per linear,
    embeddings and head in bf16)."""
    cfg = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 4096,
           "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
           "vocab_size": 128256, "max_position_embeddings": 131072, "torch_dtype": "bfloat16",
           "tie_word_embeddings": False, "quantization_config": NVFP4}
    spec = spec_from_config(cfg, "llama-3.1-8b-fp4")
    got = spec_weight_bytes(spec, 2.0, spec.quant_format, spec.quant_skip, True).total
    linear = 32 * (4096 * (4096 + 1024 + 1024 + 4096) + 3 * 14336 * 4096)
    assert got == linear * 9 // 16 + 8 * 7 * 32 + 2 * 128256 * 4096 * 2 + 65 * 4096 * 2 == 6_027_749_120
    assert abs(got - (4.98 + 1.05) * 1e9) < 0.01 * got


@pytest.mark.parametrize("q, fmt, kv", [
    (NVFP4, "nvfp4", "fp8"),
    ({"quant_method": "modelopt", "quant_algo": "fp8", "ignore": ["lm_head"]}, "modelopt-fp8", ""),
    ({"quant_method": "modelopt", "quant_algo": "MIXED_PRECISION",
      "quantized_layers": {"lm_head": {"quant_algo": "W4A16_NVFP4", "group_size": 16}}}, "modelopt-mixed", ""),
    # a layer in an algorithm that is not modelled (MXFP8): the whole checkpoint in the compute dtype
    ({"quant_method": "modelopt", "quant_algo": "MIXED_PRECISION", "quantized_layers": {
        "lm_head": {"quant_algo": "FP8"}, "model.layers.0.mlp.up_proj": {"quant_algo": "MXFP8"}}}, "", ""),
    # vLLM 0.33.0 reads the flat form's kv_cache_scheme (Qwen3.6-27B-NVFP4)
    ({"quant_method": "modelopt", "quant_algo": "FP8", "kv_cache_scheme": {"num_bits": 8, "type": "float"}},
     "modelopt-fp8", "fp8"),
    ({"quant_method": "modelopt", "quant_algo": "W4A16_NVFP4"}, "", ""),
    ({"quant_method": "modelopt", "quant_algo": "NVFP4", "group_size": 32}, "", ""),
    # hf_quant_config.json's nested form (as vLLM gets it: the whole file as quantization_config)
    ({"quant_method": "modelopt", "producer": {"name": "modelopt", "version": "0.29.0"},
      "quantization": {"quant_algo": "NVFP4", "kv_cache_quant_algo": "FP8", "group_size": 16,
                       "exclude_modules": ["lm_head"]}}, "nvfp4", "fp8"),
])
def test_quant_algos(q, fmt, kv):
    cq = checkpoint_quant(q)
    assert (cq.format, cq.kv) == (fmt, kv)


def test_exclude_patterns_match_as_vllm():
    pats = (GLOB + "lm_head", GLOB + "model.layers.1.self_attn*", GLOB + "*.mlp.gate")
    assert skipped("lm_head", pats)
    assert skipped("model.layers.1.self_attn.q_proj", pats) and not skipped("model.layers.0.self_attn.q_proj", pats)
    assert skipped("model.layers.3.mlp.gate", pats) and not skipped("model.layers.3.mlp.gate_proj", pats[:2])
    # vLLM's substring rule: "mlp.gate" occurs in "mlp.gate_proj" (that is how vLLM matches it)
    assert skipped("model.layers.3.mlp.gate_proj", (GLOB + "mlp.gate",))
    # literal patterns of the other methods stay literal
    assert not skipped("model.layers.1.self_attn.q_proj", ("model.layers.1.self_attn*",))


def _main(*args: str) -> tuple[int, str, str]:
    from vramscope.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(args))
    return rc, out.getvalue(), err.getvalue()


def _write(folder: Path, cfg: dict, side: object = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(cfg))
    if side is not None:
        (folder / "hf_quant_config.json").write_text(side if isinstance(side, str) else json.dumps(side))
    return folder


def test_sidecar_hf_quant_config_is_read(tmp_path):
    cfg = dict(TINY_LLAMA, hidden_size=256, intermediate_size=512)
    side = {"producer": {"name": "modelopt", "version": "0.27.1"},
            "quantization": {"quant_algo": "NVFP4", "kv_cache_quant_algo": "FP8", "group_size": 16,
                             "exclude_modules": ["lm_head"]}}
    rc, out, _ = _main("estimate", str(_write(tmp_path / "m", cfg, side)), "--engine", "vllm", "--json")
    plain = json.loads(_main("estimate", str(_write(tmp_path / "p", cfg)), "--engine", "vllm", "--json")[1])
    e = json.loads(out)
    assert rc == 0 and e["components"]["weights"] < 0.6 * plain["components"]["weights"]
    said = json.dumps(e["assumptions"])
    assert "nvfp4" in said and "kv_cache_quant_algo" in said
    # config.json's own quantization_config wins over the sidecar, as in vLLM's get_config
    own = dict(cfg, quantization_config={"quant_method": "modelopt", "quant_algo": "FP8", "ignore": ["lm_head"]})
    e2 = json.loads(_main("estimate", str(_write(tmp_path / "o", own, side)), "--json")[1])
    assert "modelopt-fp8" in json.dumps(e2["assumptions"])


def test_vllm_kv_follows_kv_cache_quant_algo(tmp_path):
    cfg = dict(TINY_LLAMA, quantization_config=NVFP4)
    path = str(_write(tmp_path / "m", cfg) / "config.json")
    args = ("--engine", "vllm", "--gpu", "h100", "--json")
    fp8 = json.loads(_main("estimate", path, *args)[1])
    bf16 = json.loads(_main("estimate", path, *args, "--kv-dtype", "bf16")[1])
    # Llama layout: 2 layers × keys and values × 2 KV heads × head dim 16, one byte each under fp8_e4m3
    assert fp8["engine"]["kv_bytes_per_token"] == 2 * 2 * 2 * 16 == bf16["engine"]["kv_bytes_per_token"] // 2
    assert "kv_cache_quant_algo" in json.dumps(fp8["assumptions"])
    assert "kv_cache_quant_algo" not in json.dumps(bf16["assumptions"])
    hf = json.loads(_main("estimate", path, "--engine", "transformers", "--json")[1])
    assert "kv_cache_quant_algo" not in json.dumps(hf["assumptions"])
    assert "no ModelOpt quantizer" in json.dumps(hf["assumptions"])


@pytest.mark.parametrize("q, side, field", [
    ({"quant_method": "modelopt", "ignore": ["lm_head"]}, None, "quantization_config.quant_algo"),
    ({"quant_method": "modelopt", "quant_algo": "NVFP4", "ignore": "lm_head"}, None, "quantization_config.ignore"),
    ({"quant_method": "modelopt", "quant_algo": "NVFP4", "group_size": "16"}, None, "quantization_config.group_size"),
    ({"quant_method": "modelopt", "quant_algo": "NVFP4", "kv_cache_quant_algo": 8}, None,
     "quantization_config.kv_cache_quant_algo"),
    ({"quant_method": "modelopt", "quantization": ["NVFP4"]}, None, "quantization_config.quantization"),
    ({"quant_method": "modelopt", "quant_algo": "MIXED_PRECISION", "quantized_layers": {}}, None,
     "quantization_config.quantized_layers"),
    ({"quant_method": "modelopt", "quant_algo": "MIXED_PRECISION"}, None, "quantization_config.quantized_layers"),
    (None, {"quantization": {"quant_algo": "MIXED_PRECISION", "quantized_layers": {"lm_head": "FP8"}}},
     "quantization_config.quantization.quantized_layers"),
    ({"quant_method": "modelopt", "quantization": {"quant_algo": "NVFP4", "exclude_modules": [1]}}, None,
     "quantization_config.quantization.exclude_modules"),
    (None, {"quantization": "NVFP4"}, "quantization"),
    (None, "[1, 2", "hf_quant_config.json"),
])
def test_bad_values_are_one_line_exit_2(tmp_path, q, side, field):
    cfg = dict(TINY_LLAMA) if q is None else dict(TINY_LLAMA, quantization_config=q)
    rc, out, err = _main("estimate", str(_write(tmp_path / "m", cfg, side)))
    assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1 and field in err, err
    assert "Traceback" not in err


def test_catalog_deepseek_r1_fp4_follows_its_exclude_list():
    """nvidia/DeepSeek-R1-FP4's hf_quant_config.json (modelopt 0.23.0): attention projections but o_proj / q_a_proj,
    the routers, norms, embeddings, the head and the MTP layer are excluded; the experts, dense MLPs, o_proj and
    q_a_proj are NVFP4."""
    from vramscope.memory.weights import is_quantized
    from vramscope.model.tensors import tensors
    from vramscope.sources.catalog import find

    e = find("deepseek-r1-fp4")
    spec = spec_from_config(e["config"], e["id"])
    assert spec.quant_format == "nvfp4" and len(spec.quant_skip) == 489 and spec.kv_quant == ""
    got = {t.name: is_quantized(t, "nvfp4", spec.quant_skip, True) for t in tensors(spec) if t.linear}
    for name, q in [("model.layers.5.self_attn.o_proj.weight", True), ("model.layers.5.self_attn.q_a_proj.weight", True),
                    ("model.layers.5.self_attn.kv_a_proj_with_mqa.weight", False),
                    ("model.layers.5.self_attn.kv_b_proj.weight", False), ("model.layers.1.mlp.down_proj.weight", True),
                    ("lm_head.weight", False)]:
        assert got[name] is q, name
    assert any(q for n, q in got.items() if ".experts." in n)
    fp8 = spec_from_config(find("deepseek-r1")["config"], "r1")
    nvfp4 = spec_weight_bytes(spec, 2.0, "nvfp4", spec.quant_skip, True).total
    assert nvfp4 < 0.6 * spec_weight_bytes(fp8, 2.0, "fp8-block", fp8.quant_skip, True).total


@pytest.mark.parametrize("sidecar", [False, True])
def test_safetensors_folder_agrees_with_config_alone(tmp_path, sidecar):
    """A folder of ModelOpt NVFP4 safetensors: the headers' bytes are the weights, the packed uint8 weights decode
    to the config's parameter count (no mismatch warning), and the config-only estimate gives the same bytes."""
    cfg = dict(TINY_LLAMA, hidden_size=256, intermediate_size=512, num_attention_heads=2, num_key_value_heads=1)
    q = {"quant_method": "modelopt", "quant_algo": "NVFP4", "group_size": 16, "ignore": ["lm_head"]}
    side = {"producer": {"name": "modelopt"}, "quantization": {"quant_algo": "NVFP4", "group_size": 16,
                                                               "kv_cache_quant_algo": None,
                                                               "exclude_modules": ["lm_head"]}}
    folder = _write(tmp_path / "m", cfg if sidecar else dict(cfg, quantization_config=q), side if sidecar else None)
    st = _checkpoint(folder, cfg, "NVFP4", ("lm_head",))
    rc, out, _ = _main("estimate", str(folder), "--engine", "vllm", "--json")
    files = json.loads(out)
    alone = json.loads(_main("estimate", str(folder / "config.json"), "--engine", "vllm", "--json")[1])
    assert rc == 0 and files["engine"]["weights_bytes"] == _header_bytes(st) == alone["engine"]["weights_bytes"]
    assert files["model"]["params"] == alone["model"]["params"]
    assert "warning" not in json.dumps(files["assumptions"])


def test_a_sidecar_that_is_not_a_file_is_one_line_exit_2(tmp_path):
    folder = _write(tmp_path / "m", dict(TINY_LLAMA))
    (folder / "hf_quant_config.json").mkdir()
    rc, out, err = _main("estimate", str(folder / "config.json"))
    assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1 and "hf_quant_config.json" in err


MIXED = {"model.layers.0.self_attn.q_proj": "FP8", "model.layers.0.self_attn.k_proj": "FP8",
         "model.layers.0.self_attn.v_proj": "FP8", "model.layers.0.mlp.gate_proj": "W4A16_NVFP4",
         "model.layers.0.mlp.up_proj": "W4A16_NVFP4", "model.layers.1.mlp.down_proj": "NVFP4",
         "model.layers.1.self_attn.o_proj": "FP8", "lm_head": "W4A16_NVFP4"}


@pytest.mark.parametrize("sidecar", [False, True])
def test_mixed_precision_weight_bytes_equal_a_modelopt_checkpoint(tmp_path, sidecar):
    """MIXED_PRECISION (vLLM 0.33.0 ModelOptMixedPrecisionConfig): each listed linear in its own algorithm (the
    head too), the unlisted ones (layer 0's o_proj and down_proj, most of layer 1) and the excluded one in bf16;
    the bytes equal a safetensors file laid out per layer as vLLM's create_weights declares it."""
    cfg = dict(TINY_LLAMA, hidden_size=256, intermediate_size=512, num_attention_heads=2, num_key_value_heads=1)
    layers = {m: ({"quant_algo": a, "group_size": 16} if "NVFP4" in a else {"quant_algo": a}) for m, a in MIXED.items()}
    layers["model.layers.1.mlp.up_proj"] = {"quant_algo": "FP8"}
    exclude = ["model.layers.1.mlp.up_proj"]  # excluded wins over its entry (get_quant_method checks it first)
    inner = {"quant_algo": "MIXED_PRECISION", "kv_cache_quant_algo": "FP8", "quantized_layers": layers}
    if sidecar:
        spec = spec_from_config(dict(cfg, quantization_config={"quant_method": "modelopt", "producer": {},
                                                              "quantization": dict(inner, exclude_modules=exclude)}), "tiny")
    else:
        spec = spec_from_config(dict(cfg, quantization_config=dict(inner, quant_method="modelopt", ignore=exclude)), "tiny")
    assert spec.quant_format == "modelopt-mixed" and len(spec.quant_layers) == 9 and spec.kv_quant == "fp8"
    tensors: dict[str, tuple[str, tuple[int, ...]]] = {}
    for name, shape in llama_tensors(cfg).items():
        module = name[:-len(".weight")]
        if module in MIXED:
            tensors.update(_vllm_modelopt_tensors(name, shape, MIXED[module]))
        else:
            tensors[name] = ("BF16", shape)
    path = write_safetensors(tmp_path / "model.safetensors", tensors)
    got = spec_weight_bytes(spec, 2.0, spec.quant_format, spec.quant_skip, True).total
    assert got == _header_bytes(path)
    # the whole-model NVFP4 layout of the same config is another number (the mapping is read, not one algo)
    assert got != spec_weight_bytes(spec, 2.0, "nvfp4", spec.quant_skip, True).total


def test_mixed_precision_estimate_says_so(tmp_path):
    cfg = dict(TINY_LLAMA, hidden_size=256, intermediate_size=512)
    side = {"producer": {"name": "modelopt", "version": "0.44.0rc5"},
            "quantization": {"quant_algo": "MIXED_PRECISION", "kv_cache_quant_algo": "FP8",
                             "quantized_layers": {m: {"quant_algo": a} for m, a in MIXED.items()}}}
    e = json.loads(_main("estimate", str(_write(tmp_path / "m", cfg, side)), "--engine", "vllm", "--json")[1])
    plain = json.loads(_main("estimate", str(_write(tmp_path / "p", cfg)), "--engine", "vllm", "--json")[1])
    said = json.dumps(e["assumptions"])
    assert "MIXED_PRECISION" in said and "8 entries" in said and "4 modelopt-fp8" in said
    assert e["components"]["weights"] < plain["components"]["weights"]
    bf16 = json.loads(_main("estimate", str(_write(tmp_path / "m", cfg, side)), "--engine", "vllm", "--json",
                            "--dtype", "bf16")[1])
    assert bf16["components"]["weights"] == plain["components"]["weights"]


def _vllm_nvfp4_moe_bytes(experts: int, hidden: int, inter: int, shards: int) -> int:
    """Bytes vLLM 0.33.0's ModelOptNvFp4FusedMoE.create_weights allocates for one MoE layer's routed experts:
    w13_weight uint8 [E, shards·I, H/2], w13_weight_scale e4m3 [E, shards·I, H/16], w13_weight_scale_2 and
    w13_input_scale fp32 [E, shards]; w2_weight [E, H, I/2], w2_weight_scale [E, H, I/16], w2 scalars [E] each."""
    w13 = shards * inter * hidden // 2 + shards * inter * hidden // 16 + 2 * 4 * shards
    w2 = hidden * inter // 2 + hidden * inter // 16 + 2 * 4
    return experts * (w13 + w2)


def _renamed(key: str) -> str:
    return "model." + key[len("backbone."):] if key.startswith("backbone.") else key


@pytest.mark.parametrize("model", ["nvidia/NVIDIA-Nemotron-3.5-Lightning-30B-A3B-NVFP4", "nvidia/Qwen3.6-27B-NVFP4",
                                   "nvidia/Qwen3.6-35B-A3B-NVFP4"])
def test_catalog_mixed_precision_sidecars_name_the_real_modules(model):
    """The stored ModelOpt MIXED_PRECISION mappings: every quantized_layers entry names a linear of the tensor
    inventory (after vLLM's backbone → model rename; a per-expert entry its routed experts' projection, a fused
    "<...>.experts" entry both), and every linear vramscope quantizes has an entry in that algorithm."""
    import re

    from vramscope.memory.weights import _mixed_format
    from vramscope.model.tensors import tensors
    from vramscope.sources.catalog import config_of, find

    e = find(model)
    cfg = config_of(e)
    spec = spec_from_config(cfg, e["id"])
    q = cfg["quantization_config"]
    layers = (q.get("quantization") or q)["quantized_layers"]
    assert spec.quant_format == "modelopt-mixed" and len(spec.quant_layers) == len(layers)
    want = {}
    for key, recipe in layers.items():
        algo = {"FP8": "modelopt-fp8", "W4A16_NVFP4": "nvfp4-a16", "NVFP4": "nvfp4"}[recipe["quant_algo"]]
        want.setdefault(re.sub(r"\.experts\.\d+\.", ".experts.", _renamed(key)), set()).add(algo)
    got: dict[str, set] = {}
    used = set()
    for t in tensors(spec):
        fmt = _mixed_format(t, spec.quant_layers, spec.quant_skip)
        module = t.name[:-len(".weight")] if t.name.endswith(".weight") else t.name
        if fmt:
            got.setdefault(module, set()).add(fmt)
        hit = [k for k in want if k == module or (t.role == "expert" and module.startswith(k + "."))]
        assert len(hit) <= 1, module
        if hit:
            used.add(hit[0])
            assert fmt in want[hit[0]] and len(want[hit[0]]) == 1, module
        else:
            assert not fmt, module  # quantized only where the mapping names it
    assert used == set(want), sorted(set(want) - used)[:5]
    assert "lm_head" in got  # the head is in the mapping: quantized


def test_nemotron_lightning_mixed_bytes_follow_its_sidecar():
    """nvidia/NVIDIA-Nemotron-3.5-Lightning-30B-A3B-NVFP4 (hf_quant_config.json, modelopt 0.44.0rc5): Mamba in/out
    projections FP8, routed and shared experts and the head W4A16_NVFP4, attention and routers bf16; the routed
    experts as vLLM 0.33.0's fused MoE allocates them (non-gated: one w13 shard)."""
    from vramscope.model.tensors import tensors
    from vramscope.sources.catalog import config_of, find

    e = find("nemotron-3.5-lightning-30b-a3b-nvfp4")
    c = e["config"]
    spec = spec_from_config(config_of(e), e["id"])
    h, E = c["hidden_size"], c["n_routed_experts"]
    kinds = c["layers_block_type"]
    mamba, moe, attn = (kinds.count(k) for k in ("mamba", "moe", "attention"))
    assert mamba + moe + attn == c["num_hidden_layers"] and attn > 0
    got = spec_weight_bytes(spec, 2.0, spec.quant_format, spec.quant_skip, True).total
    bf16 = spec_weight_bytes(spec, 2.0, "none").total
    inv = {t.name: t for t in tensors(spec)}

    def nbytes(name: str, algo: str) -> int:
        out_f, in_f = inv[name].shape
        n = out_f * in_f
        return {"FP8": n + 8, "W4A16": n // 2 + n // 16 + 4}[algo]

    quantized = 0  # bf16 bytes of the quantized linears, and their bytes in the checkpoint's own algorithms
    own = 0
    for i, kind in enumerate(kinds):
        p = f"model.layers.{i}.mixer."
        if kind == "mamba":
            for proj in ("in_proj", "out_proj"):
                quantized += 2 * inv[p + proj + ".weight"].numel
                own += nbytes(p + proj + ".weight", "FP8")
        elif kind == "moe":
            for proj in ("up_proj", "down_proj"):
                quantized += 2 * inv[p + "shared_experts." + proj + ".weight"].numel
                own += nbytes(p + "shared_experts." + proj + ".weight", "W4A16")
                quantized += 2 * inv[p + "experts." + proj].numel
            own += _vllm_nvfp4_moe_bytes(E, h, c["moe_intermediate_size"], 1)
    quantized += 2 * inv["lm_head.weight"].numel
    own += nbytes("lm_head.weight", "W4A16")
    assert got == bf16 - quantized + own
    assert 0.25 < got / bf16 < 0.35
