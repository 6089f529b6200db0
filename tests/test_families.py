"""The family table (model/families.py): every row used, one key for a Hugging Face config and its GGUF file,
and the GGUF bugs the shared key fixed."""

import dataclasses
import json
import math
import sys
from pathlib import Path

import pytest

from vramscope.cli import main
from vramscope.memory.activations import effective_attn
from vramscope.memory.trainable import lora_modules, lora_params
from vramscope.model import families
from vramscope.model.families import DEFAULT, FAMILIES, Family, by_gguf_arch, by_model_type
from vramscope.sources import resolve
from vramscope.sources.hf_config import SUPPORTED_MODEL_TYPES

sys.path.insert(0, str(Path(__file__).parent))
import gguf_real  # noqa: E402

#: fixture of tests/gguf_real.py -> the catalog entry it was converted from
PAIRS = {
    "llama3_8b": "meta-llama/Meta-Llama-3-8B",
    "llama2_7b": "meta-llama/Llama-2-7b-hf",
    "qwen2_7b": "Qwen/Qwen2-7B",
    "gemma2_9b": "google/gemma-2-9b",
    "mixtral_8x7b": "mistralai/Mixtral-8x7B-v0.1",
    "deepseek_v2": "deepseek-ai/DeepSeek-V2",
}
QUIRKS = [f.name for f in dataclasses.fields(Family)
          if f.name not in ("name", "model_types", "gguf_archs", "gguf_moe", "source")]


@pytest.fixture(scope="module")
def gguf_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("families")
    if not gguf_real.sparse_files_work(d):
        pytest.skip("the temporary folder's filesystem does not keep sparse files")
    return d


@pytest.fixture(scope="module")
def gguf_spec(gguf_dir):
    made = {}

    def get(fixture: str):
        if fixture not in made:
            path = gguf_real.write(getattr(gguf_real, fixture)(), gguf_dir / f"{fixture}.gguf")
            made[fixture] = (path, resolve(str(path), hub=False).spec)
        return made[fixture]
    return get


def test_every_row_is_reachable_and_has_a_quirk_and_a_source():
    names = [f.name for f in FAMILIES]
    assert len(names) == len(set(names))
    for fam in FAMILIES:
        assert fam.model_types or fam.gguf_archs, fam.name
        assert set(fam.model_types) <= set(SUPPORTED_MODEL_TYPES), fam.name  # only types vramscope reads
        for mt in fam.model_types:
            assert by_model_type(mt) is fam
        for arch in fam.gguf_archs:
            assert by_gguf_arch(arch, fam.gguf_moe) is fam
            assert by_model_type(f"gguf:{arch}") in FAMILIES
        assert any(getattr(fam, q) != getattr(DEFAULT, q) for q in QUIRKS), f"{fam.name}: a row without a quirk"
        assert fam.source, fam.name


def test_every_quirk_is_set_somewhere_and_read_by_the_code():
    src = Path(families.__file__).parents[1]
    code = "\n".join(p.read_text() for p in src.rglob("*.py") if p.name != "families.py")
    for q in QUIRKS:
        assert any(getattr(f, q) != getattr(DEFAULT, q) for f in FAMILIES), q
        assert f".{q}" in code, f"Family.{q} is read nowhere"


def test_model_types_without_a_row_get_the_default():
    assert by_model_type("gpt2") is DEFAULT and by_model_type("params") is DEFAULT
    assert by_model_type("gguf:no-such-arch") is DEFAULT


@pytest.mark.parametrize("fixture", sorted(PAIRS))
def test_hf_and_gguf_of_one_model_share_the_family(fixture, gguf_spec):
    _, g = gguf_spec(fixture)
    hf = resolve(PAIRS[fixture], hub=False).spec
    assert g.model_type.startswith("gguf:") and g.family is hf.family
    assert g.family.norms_per_layer == hf.norms_per_layer


def _estimate(capsys, *argv):
    assert main(["estimate", *argv, "--json", "--no-hub"]) == 0
    return json.loads(capsys.readouterr().out)


def test_gguf_gemma2_runs_eager_and_keeps_the_offset_norm(gguf_spec, capsys):
    """Was: gguf:gemma2 missed the NO_SDPA and startswith("gemma") checks, so a GGUF Gemma 2 was estimated with
    SDPA (2.39 GiB instead of 4.71 GiB at inference on the 4-layer fixture) and without the fp32 norm values."""
    path, g = gguf_spec("gemma2_9b")
    assert effective_attn(g, "sdpa") == "eager" and g.family.offset_norm
    sdpa = _estimate(capsys, str(path), "--attn", "sdpa")
    eager = _estimate(capsys, str(path), "--attn", "eager")
    assert sdpa["total_bytes"] == eager["total_bytes"]


def test_gguf_deepseek_lora_follows_peft_all_linear(gguf_spec):
    """Was: gguf:deepseek2 missed ALL_LINEAR_MOE, so all-linear LoRA also adapted the shared experts and the dense
    layers' MLP (124,231,680 trainable parameters on the fixture instead of 122,609,664)."""
    _, g = gguf_spec("deepseek_v2")
    as_hf = g.derived(model_type="deepseek_v2")
    assert lora_params(g, 8) == lora_params(as_hf, 8)
    assert lora_modules(g, ("all-linear",)) == lora_modules(as_hf, ("all-linear",))
    assert lora_params(g, 8) < lora_params(g.derived(model_type="gguf:unknown"), 8)


def test_gguf_llama_arch_tells_mixtral_from_llama(gguf_spec):
    assert gguf_spec("mixtral_8x7b")[1].family.name == "mixtral"
    assert gguf_spec("llama3_8b")[1].family.name == "llama"


def test_gguf_gemma2_has_its_four_norms_a_layer(gguf_spec):
    """Was: a GGUF spec always had 2 norms a layer, so a GGUF Gemma 2 lost post_attention_norm and post_ffw_norm
    (the fixture: 1,710,259,712 parameters for 1,710,288,384 stored; Q4_K_M weights 114,688 B short)."""
    path, g = gguf_spec("gemma2_9b")
    stored = resolve(str(path), hub=False).stored
    assert g.norms_per_layer == 4
    assert g.params == sum(math.prod(t.shape) for t in stored)


def test_llama_cpp_70b_mix_holds_for_a_gguf_llama():
    """Was: ``is_70b`` compared model_type with "llama", so an 80-layer gguf:llama got the mix of other sizes."""
    from vramscope.memory.gguf_mix import gguf_tensors

    hf = resolve("meta-llama/Llama-2-70b-hf", hub=False).spec
    types = [t.ggml_type for t in gguf_tensors(hf, "Q4_K_M")]
    assert [t.ggml_type for t in gguf_tensors(hf.derived(model_type="gguf:llama"), "Q4_K_M")] == types
    assert [t.ggml_type for t in gguf_tensors(hf.derived(model_type="gguf:unknown"), "Q4_K_M")] != types


@pytest.mark.parametrize("n", [1, 2, 4, 6])
def test_one_sliding_rule_for_both_sources(n):
    """llama.cpp's ``il % n < n - 1`` and transformers' ``(i + 1) % n`` are the one rule."""
    assert families.sliding_layers(n, 24) == [bool((i + 1) % n) for i in range(24)]
    assert [families.slides(n, i) for i in range(24)] == families.sliding_layers(n, 24)
