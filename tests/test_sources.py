"""Every source type on files the tests generate: config.json, safetensors, sharded, quantized, GGUF, Hub."""

import json
import struct
import sys
import types

import pytest

from fixtures import TINY_LLAMA, llama_tensors, write_model_dir, write_safetensors
from vramscope.errors import VramscopeError
from vramscope.sources import resolve
from vramscope.model.spec import ModelSpec

TINY_PARAMS = sum(
    (lambda s: __import__("math").prod(s))(s) for s in llama_tensors().values()
)


def test_config_file_and_folder(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(TINY_LLAMA))
    a = resolve(str(cfg))
    b = resolve(str(tmp_path))
    assert a.kind == b.kind == "config"
    assert a.params == b.params == TINY_PARAMS
    assert a.spec.num_kv_heads == 2 and a.spec.head_dim == 16


def test_catalog_and_config_give_the_same_spec(tmp_path):
    from vramscope.sources import catalog

    entry = catalog.find("llama-3-8b")
    (tmp_path / "config.json").write_text(json.dumps(entry["config"]))
    local = resolve(str(tmp_path)).spec
    cat = resolve("llama-3-8b").spec
    assert local.with_overrides(name="x", source="") == cat.with_overrides(name="x", source="")


def test_safetensors_single_and_sharded(tmp_path):
    one = resolve(str(write_model_dir(tmp_path / "one")))
    sharded = resolve(str(write_model_dir(tmp_path / "sharded", shards=3)))
    via_index = resolve(str(tmp_path / "sharded" / "model.safetensors.index.json"))
    for r in (one, sharded, via_index):
        assert r.kind == "safetensors"
        assert r.params == TINY_PARAMS
        assert r.stored_bytes == 2 * TINY_PARAMS
        assert r.stored_format == "bf16"


def test_safetensors_without_config_infers_shape(tmp_path):
    path = write_safetensors(tmp_path / "w.safetensors", {k: ("F16", s) for k, s in llama_tensors().items()})
    r = resolve(str(path))
    assert r.params == TINY_PARAMS and r.spec.num_layers == 2 and r.spec.hidden_size == 64
    assert any("inferred" in n for n in r.notes)


def test_estimate_uses_exact_file_bytes(tmp_path):
    import vramscope

    folder = write_model_dir(tmp_path / "m", dtype="F32")
    e = vramscope.estimate(str(folder))
    assert e.components["weights"] == 4 * TINY_PARAMS
    assert e.model.storage == "f32"


def _gptq_dir(tmp_path, bits=4, group=32):
    cfg = dict(TINY_LLAMA, quantization_config={"quant_method": "gptq", "bits": bits, "group_size": group})
    folder = tmp_path / "gptq"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(cfg))
    tensors = {}
    pack = 32 // bits
    for name, shape in llama_tensors().items():
        if ".layers." in name and name.endswith("proj.weight"):
            out_f, in_f = shape
            base = name[: -len(".weight")]
            tensors[base + ".qweight"] = ("I32", (in_f // pack, out_f))
            tensors[base + ".qzeros"] = ("I32", (in_f // group, out_f // pack))
            tensors[base + ".scales"] = ("F16", (in_f // group, out_f))
            tensors[base + ".g_idx"] = ("I32", (in_f,))
        else:
            tensors[name] = ("F16", shape)
    write_safetensors(folder / "model.safetensors", tensors)
    return folder


def test_gptq_counts_encoded_parameters(tmp_path):
    r = resolve(str(_gptq_dir(tmp_path)))
    assert r.params == TINY_PARAMS  # packed int32 counted as the parameters they encode
    assert r.stored_format == "gptq-4bit-g32"
    assert r.stored_bytes < 2 * TINY_PARAMS


def test_bnb_4bit_and_fp8_counts(tmp_path):
    folder = tmp_path / "bnb"
    folder.mkdir()
    cfg = dict(TINY_LLAMA, quantization_config={"quant_method": "bitsandbytes", "load_in_4bit": True,
                                                "bnb_4bit_quant_type": "nf4"})
    (folder / "config.json").write_text(json.dumps(cfg))
    tensors = {}
    for name, shape in llama_tensors().items():
        if ".layers." in name and name.endswith("proj.weight"):
            n = shape[0] * shape[1]
            tensors[name] = ("U8", (n // 2, 1))
            tensors[name + ".absmax"] = ("F32", (n // 64,))
            tensors[name + ".quant_map"] = ("F32", (16,))
            tensors[name + ".quant_state.bitsandbytes__nf4"] = ("U8", (100,))
        else:
            tensors[name] = ("BF16", shape)
    write_safetensors(folder / "model.safetensors", tensors)
    r = resolve(str(folder))
    assert r.params == TINY_PARAMS and r.stored_format == "bnb-nf4"

    folder = tmp_path / "fp8"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(dict(TINY_LLAMA, quantization_config={"quant_method": "fp8"})))
    tensors = {}
    for name, shape in llama_tensors().items():
        if ".layers." in name and name.endswith("proj.weight"):
            tensors[name] = ("F8_E4M3", shape)
            tensors[name.replace(".weight", ".weight_scale")] = ("F32", (1,))
        else:
            tensors[name] = ("BF16", shape)
    write_safetensors(folder / "model.safetensors", tensors)
    r = resolve(str(folder))
    assert r.params == TINY_PARAMS and r.stored_format == "fp8"


@pytest.mark.parametrize("content, detail", [
    (b"", "shorter than 8 bytes"),
    (struct.pack("<Q", 10**9), "exceeds the 16 MiB limit"),
    (struct.pack("<Q", 100) + b"{}", "truncated header"),
    (struct.pack("<Q", 4) + b"nope", "not JSON"),
])
def test_malformed_safetensors(tmp_path, content, detail):
    p = tmp_path / "bad.safetensors"
    p.write_bytes(content)
    with pytest.raises(VramscopeError) as e:
        resolve(str(p))
    assert detail in str(e.value) and "bad.safetensors" in str(e.value)


def test_truncated_safetensors_data(tmp_path):
    p = write_safetensors(tmp_path / "t.safetensors", {"model.embed_tokens.weight": ("F16", (100, 64))})
    p.write_bytes(p.read_bytes()[:-10])
    with pytest.raises(VramscopeError, match="truncated"):
        resolve(str(p))


def test_safetensors_offsets_must_match_shape(tmp_path):
    header = {"w": {"dtype": "F16", "shape": [4, 4], "data_offsets": [0, 8]}}
    raw = json.dumps(header).encode()
    p = tmp_path / "x.safetensors"
    p.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 8)
    with pytest.raises(VramscopeError, match="data_offsets"):
        resolve(str(p))


def test_missing_shard(tmp_path):
    folder = write_model_dir(tmp_path / "s", shards=2)
    next(folder.glob("model-00002*")).unlink()
    with pytest.raises(VramscopeError, match="missing"):
        resolve(str(folder))


@pytest.mark.parametrize("suffix", [".bin", ".pt", ".pth", ".ckpt"])
def test_pickle_is_refused(tmp_path, suffix):
    p = tmp_path / f"pytorch_model{suffix}"
    p.write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(VramscopeError, match="never loaded"):
        resolve(str(p))
    with pytest.raises(VramscopeError, match="never loaded"):
        resolve(str(tmp_path))


@pytest.mark.parametrize("text, match", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('{"hidden_size": 64}', "model_type"),
    ('{"model_type": "llama", "hidden_size": 64}', "num_attention_heads"),
    ('{"model_type": "mamba2000"}', "not supported"),
    (json.dumps(dict(TINY_LLAMA, hidden_size=-5)), "hidden_size"),
    (json.dumps(dict(TINY_LLAMA, num_key_value_heads=3)), "divisor"),
    (json.dumps(dict(TINY_LLAMA, num_hidden_layers="two")), "num_hidden_layers"),
])
def test_malformed_config(tmp_path, text, match):
    p = tmp_path / "config.json"
    p.write_text(text)
    with pytest.raises(VramscopeError, match=match):
        resolve(str(p))


def test_missing_path(tmp_path):
    with pytest.raises(VramscopeError, match="no such file"):
        resolve(str(tmp_path / "nope.gguf"))


def test_params_source_nominal_shape():
    import vramscope

    m = vramscope.load_model(params="7B")
    assert m.params == 7_000_000_000 and not m.exact_shape
    assert (m.spec.num_layers, m.spec.hidden_size) == (32, 4096)
    m = vramscope.load_model(params="70b", layers=80, hidden=8192, kv_heads=8)
    assert m.spec.num_layers == 80 and m.spec.num_kv_heads == 8 and m.spec.head_dim == 128


def test_params_and_model_conflict():
    import vramscope

    with pytest.raises(VramscopeError, match="either MODEL or params"):
        vramscope.load_model("llama-3-8b", params="7B")


# ---- Hub (a fake huggingface_hub module: tests never reach the network) ----

def _fake_hub(monkeypatch, tmp_path, error=None):
    mod = types.ModuleType("huggingface_hub")
    cfg = tmp_path / "hub_config.json"
    cfg.write_text(json.dumps(TINY_LLAMA))

    def hf_hub_download(repo_id, filename):
        assert filename == "config.json"
        if error is not None:
            raise error
        return str(cfg)

    class Info:
        def __init__(self, dtype, shape):
            self.dtype, self.shape = dtype, shape

    class FileMeta:
        tensors = {k: Info("BF16", list(s)) for k, s in llama_tensors().items()}

    class Meta:
        files_metadata = {"model.safetensors": FileMeta()}

    mod.hf_hub_download = hf_hub_download
    mod.get_safetensors_metadata = lambda repo: Meta()
    monkeypatch.setitem(sys.modules, "huggingface_hub", mod)


def test_hub_config_and_metadata(monkeypatch, tmp_path):
    _fake_hub(monkeypatch, tmp_path)
    r = resolve("someone/tiny-llama")
    assert r.kind == "hub" and r.params == TINY_PARAMS and r.stored_bytes == 2 * TINY_PARAMS


@pytest.mark.parametrize("exc, match", [
    (type("GatedRepoError", (Exception,), {})("401 Client Error"), "gated"),
    (type("RepositoryNotFoundError", (Exception,), {})("404"), "no such model"),
    (type("LocalEntryNotFoundError", (Exception,), {})("offline mode is enabled"), "cannot be reached"),
    (ConnectionError("Failed to resolve 'huggingface.co'"), "cannot be reached"),
])
def test_hub_errors(monkeypatch, tmp_path, exc, match):
    _fake_hub(monkeypatch, tmp_path, error=exc)
    with pytest.raises(VramscopeError, match=match):
        resolve("someone/private-model")


def test_hub_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(VramscopeError, match="vramscope\\[hub\\]"):
        resolve("someone/unknown-model")


def test_no_hub_flag_never_imports_hub(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(VramscopeError, match="not in the catalog"):
        resolve("someone/unknown-model", hub=False)


def test_spec_is_plain_data():
    assert isinstance(resolve("llama-3-8b").spec, ModelSpec)


def test_hub_unreachable_fails_fast_with_one_line(monkeypatch, tmp_path):
    _fake_hub(monkeypatch, tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: nothing listens
    with pytest.raises(VramscopeError, match="cannot be reached"):
        resolve("someone/tiny-llama")
