"""A model folder's own image processor settings (processor_config.json / preprocessor_config.json /
video_preprocessor_config.json) decide the tokens an image becomes, as transformers 5.24 loads them
(``AutoImageProcessor.from_pretrained`` on the same folder is the reference) and as vLLM 0.33.0 budgets them."""

import json
import subprocess
import sys

import pytest

import vramscope
from conftest import requires_torch
from vramscope.errors import VramscopeError
from vramscope.memory.image_tokens import image_tokens, max_tokens_per_item
from vramscope.sources import resolve

QWEN = "Qwen/Qwen2.5-VL-7B-Instruct"
QWEN3 = "Qwen/Qwen3-VL-8B-Instruct"

#: image processor files as checkpoints ship them (Qwen2.5-VL's published keys; a fine-tune lowering max_pixels;
#: one leaving the bounds out, which gets the class's; transformers 5's nested processor_config.json)
QWEN_FILES = [
    {"preprocessor_config.json": {"image_processor_type": "Qwen2VLImageProcessor", "min_pixels": 3136,
                                  "max_pixels": 12845056, "patch_size": 14, "temporal_patch_size": 2,
                                  "merge_size": 2, "processor_class": "Qwen2_5_VLProcessor"}},
    {"preprocessor_config.json": {"image_processor_type": "Qwen2VLImageProcessor", "max_pixels": 1003520,
                                  "processor_class": "Qwen2_5_VLProcessor"}},
    {"preprocessor_config.json": {"image_processor_type": "Qwen2VLImageProcessor",
                                  "processor_class": "Qwen2_5_VLProcessor"}},
    {"preprocessor_config.json": {"image_processor_type": "Qwen2VLImageProcessor", "max_pixels": 12845056},
     "processor_config.json": {"processor_class": "Qwen2_5_VLProcessor",
                               "image_processor": {"image_processor_type": "Qwen2VLImageProcessor",
                                                   "size": {"shortest_edge": 200704, "longest_edge": 802816}}}},
]


def _folder(tmp_path, model, files, cfg=None):
    cfg = cfg if cfg is not None else resolve(model, hub=False).hf_config
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    for name, body in files.items():
        (tmp_path / name).write_text(json.dumps(body))
    return tmp_path


@requires_torch
@pytest.mark.parametrize("files", QWEN_FILES, ids=["published", "lowered", "class-default", "nested"])
def test_qwen_bounds_are_what_transformers_loads_from_the_folder(tmp_path, files):
    from transformers import AutoImageProcessor

    folder = _folder(tmp_path, QWEN, files)
    own = dict(resolve(str(folder), hub=False).spec.vision.processor)
    ref = AutoImageProcessor.from_pretrained(str(folder)).size
    assert (own["shortest_edge"], own["longest_edge"]) == (ref.shortest_edge, ref.longest_edge)


@requires_torch
def test_qwen_budget_follows_the_folder_and_requests_still_override(tmp_path):
    """vLLM 0.33.0 _get_vision_size: the processor's size, then the request's size, then min/max_pixels."""
    catalog = resolve(QWEN, hub=False).spec
    folder = _folder(tmp_path, QWEN, QWEN_FILES[1])
    spec = resolve(str(folder), hub=False).spec
    assert max_tokens_per_item(spec, 32768) == max_tokens_per_item(catalog, 32768, {"max_pixels": 1003520})
    assert max_tokens_per_item(spec, 32768)["image"] == 1280 < max_tokens_per_item(catalog, 32768)["image"]
    assert max_tokens_per_item(spec, 32768, {"max_pixels": 12845056}) == max_tokens_per_item(catalog, 32768)
    assert max_tokens_per_item(spec, 32768, {"size": {"shortest_edge": 3136, "longest_edge": 12845056}}) == \
        max_tokens_per_item(catalog, 32768)
    # the transformers engine's images: the processor built from the same file
    assert image_tokens(spec, 1920, 1080) == image_tokens(catalog, 1920, 1080, {"max_pixels": 1003520})
    est = vramscope.estimate(str(folder), engine="vllm", gpus=["h100"], max_model_len=32768).engine
    assert est["mm_max_tokens_per_item"]["image"] == 1280


def _class_size(module: str, cls: str) -> tuple[int, int]:
    """A processor class's ``size`` default read from the installed transformers' source (the video processor
    class itself needs torchvision to import)."""
    import ast
    import importlib.util

    tree = ast.parse(open(importlib.util.find_spec(module).origin).read())
    node = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == cls)
    value = next(st.value for st in node.body if isinstance(st, ast.Assign) and
                 any(isinstance(t, ast.Name) and t.id == "size" for t in st.targets))
    size = eval(compile(ast.Expression(value), "<size>", "eval"), {"__builtins__": {}})
    return size["shortest_edge"], size["longest_edge"]


@requires_torch
def test_qwen3_video_bounds_from_the_video_processor_file(tmp_path):
    from vramscope.sources.processor_config import QWEN3_VIDEO_SIZE, QWEN_IMAGE_SIZE

    assert _class_size("transformers.models.qwen3_vl.video_processing_qwen3_vl", "Qwen3VLVideoProcessor") == \
        QWEN3_VIDEO_SIZE
    assert _class_size("transformers.models.qwen2_vl.image_processing_qwen2_vl", "Qwen2VLImageProcessor") == \
        QWEN_IMAGE_SIZE
    files = {"video_preprocessor_config.json": {"video_processor_type": "Qwen3VLVideoProcessor",
                                                "size": {"shortest_edge": 4096, "longest_edge": 6291456}}}
    folder = _folder(tmp_path, QWEN3, files)
    spec = resolve(str(folder), hub=False).spec
    own = dict(spec.vision.processor)
    assert (own["video_shortest_edge"], own["video_longest_edge"]) == (4096, 6291456)
    assert "shortest_edge" not in own  # no image processor file: the published image bounds stay
    catalog = resolve(QWEN3, hub=False).spec
    assert max_tokens_per_item(spec, 262144)["image"] == max_tokens_per_item(catalog, 262144)["image"]
    # Qwen3VLProcessingInfo.get_max_video_tokens: two frames at the video bound, a quarter of the published one
    assert max_tokens_per_item(spec, 262144)["video"] * 4 == max_tokens_per_item(catalog, 262144)["video"]
    (tmp_path / "nested").mkdir()
    nested = _folder(tmp_path / "nested", QWEN3, {
        "processor_config.json": {"video_processor": {"size": {"shortest_edge": 4096, "longest_edge": 6291456}}}})
    assert dict(resolve(str(nested), hub=False).spec.vision.processor) == own


INTERNVL_FILES = [
    {"image_processor_type": "GotOcr2ImageProcessor", "crop_to_patches": False, "max_patches": 12,
     "min_patches": 1, "size": {"height": 448, "width": 448}, "processor_class": "InternVLProcessor"},
    {"image_processor_type": "GotOcr2ImageProcessor", "crop_to_patches": True, "max_patches": 6,
     "size": {"height": 448, "width": 448}, "processor_class": "InternVLProcessor"},
    {"image_processor_type": "GotOcr2ImageProcessor", "size": {"height": 448, "width": 448}},
]


@requires_torch
@pytest.mark.parametrize("body", INTERNVL_FILES, ids=["crop-off", "crop-on-6", "class-default"])
def test_internvl_budget_is_vllms_over_the_folders_image_processor(tmp_path, body):
    """vLLM 0.33.0 InternS1ProcessingInfo.get_max_image_tokens over the image processor transformers builds from the
    folder: resolve_target_ratios from its own max_patches and crop_to_patches, get_number_of_image_patches on
    each grid with the (empty) request kwargs, the processor's attributes standing in."""
    import transformers
    from transformers import AutoImageProcessor

    folder = _folder(tmp_path, "internvl", {"preprocessor_config.json": body},
                     cfg=transformers.InternVLConfig().to_dict())
    spec = resolve(str(folder), hub=False).spec
    proc = AutoImageProcessor.from_pretrained(str(folder))
    own = dict(spec.vision.processor)
    assert (own["crop_to_patches"], own["min_patches"], own["max_patches"]) == \
        (proc.crop_to_patches, proc.min_patches, proc.max_patches)
    top = proc.max_patches + (1 if proc.crop_to_patches else 0)
    grids = {(i, j) for n in range(1, top + 1) for i in range(1, n + 1) for j in range(1, n + 1) if i * j <= top}
    image = max(256 * proc.get_number_of_image_patches(448 * j, 448 * i, {}) for i, j in grids)
    assert max_tokens_per_item(spec, 32768, None, {"image": 1}) == {"image": image}
    # a request still overrides the file
    on = max_tokens_per_item(spec, 32768, {"crop_to_patches": True, "max_patches": 12}, {"image": 1})
    assert on == {"image": 13 * 256}
    # the transformers engine: InternVLProcessor's own images_kwargs tile (crop_to_patches True) whatever the file
    # says, within the file's patch bounds
    tiles = proc.get_number_of_image_patches(448 * 2, 448 * 5, {"crop_to_patches": True})
    assert image_tokens(spec, 448 * 5, 448 * 2) == 256 * tiles


def test_no_processor_file_keeps_the_published_defaults(tmp_path):
    folder = _folder(tmp_path, QWEN, {})
    model = resolve(str(folder), hub=False)
    assert model.spec.vision.processor == ()
    assert max_tokens_per_item(model.spec, 32768) == max_tokens_per_item(resolve(QWEN, hub=False).spec, 32768)
    assert not any("preprocessor" in str(n) for n in model.notes)


def test_the_note_names_the_file_and_settings(tmp_path):
    folder = _folder(tmp_path, QWEN, QWEN_FILES[1])
    notes = [str(n) for n in resolve(str(folder), hub=False).notes]
    assert any("preprocessor_config.json" in n and "longest_edge 1,003,520" in n for n in notes), notes


@pytest.mark.parametrize("name, body, key", [
    ("preprocessor_config.json", {"max_pixels": "big"}, "max_pixels"),
    ("preprocessor_config.json", {"size": [1, 2]}, "size"),
    ("preprocessor_config.json", [1, 2, 3], None),
    ("processor_config.json", {"image_processor": 5}, "image_processor"),
])
def test_bad_processor_files_are_refused_naming_the_key(tmp_path, name, body, key):
    folder = _folder(tmp_path, QWEN, {name: body})
    with pytest.raises(VramscopeError) as err:
        resolve(str(folder), hub=False)
    assert name in str(err.value) and (key is None or key in str(err.value))


def test_bad_processor_file_on_the_command_line_is_one_line_exit_2(tmp_path):
    folder = _folder(tmp_path, QWEN, {"preprocessor_config.json": {"max_patches": 1, "max_pixels": -4}})
    r = subprocess.run([sys.executable, "-m", "vramscope", "estimate", str(folder), "--engine", "vllm"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "max_pixels" in r.stderr


def test_oversized_processor_file_is_refused_before_reading_it_all(tmp_path):
    folder = _folder(tmp_path, QWEN, {})
    (folder / "preprocessor_config.json").write_text('{"a": "' + "x" * 1_100_000 + '"}')
    with pytest.raises(VramscopeError):
        resolve(str(folder), hub=False)


# ---------------------------------------------------------------- the same files from the Hub (a stub client)

class _StubHub:
    """The two calls of huggingface_hub that sources/hub.py makes for side files, served from a folder: the
    repository listing with sizes (``HfApi().model_info(files_metadata=True)``) and ``hf_hub_download``."""

    def __init__(self, root, sizes=None):
        self.root, self.sizes, self.downloaded = root, sizes or {}, []

    def HfApi(self):  # noqa: N802 (huggingface_hub's name)
        from types import SimpleNamespace

        stub = self

        class _Api:
            def model_info(self, name, files_metadata=False):
                assert files_metadata
                return SimpleNamespace(siblings=[SimpleNamespace(rfilename=p.name,
                                                                 size=stub.sizes.get(p.name, p.stat().st_size))
                                                 for p in stub.root.iterdir()])
        return _Api()

    def hf_hub_download(self, repo_id, filename):
        self.downloaded.append(filename)
        path = self.root / filename
        if not path.exists():
            raise type("EntryNotFoundError", (Exception,), {})(f"404 {filename}")
        return str(path)

    def get_safetensors_metadata(self, name):
        raise RuntimeError("no safetensors")


def _hub_model(monkeypatch, stub, name="someone/finetuned-vl"):
    from vramscope.sources import hub

    monkeypatch.setattr(hub, "_hub", lambda: stub)
    monkeypatch.setattr(hub, "_probe", lambda n: None)
    return hub.resolve_hub(name)


def test_hub_reads_the_processor_and_quant_side_files(tmp_path, monkeypatch):
    folder = _folder(tmp_path, QWEN, QWEN_FILES[1])
    stub = _StubHub(folder)
    model = _hub_model(monkeypatch, stub)
    local = resolve(str(folder), hub=False)
    assert model.spec.vision.processor == local.spec.vision.processor != ()
    assert any("preprocessor_config.json" in str(n) for n in model.notes)
    assert "hf_quant_config.json" not in stub.downloaded  # only the files the listing names are fetched


def test_hub_modelopt_sidecar_is_read(tmp_path, monkeypatch):
    cfg = resolve("meta-llama/Llama-3.1-8B", hub=False).hf_config
    folder = _folder(tmp_path, None, {"hf_quant_config.json": {
        "producer": {"name": "modelopt", "version": "0.27.1"},
        "quantization": {"quant_algo": "NVFP4", "kv_cache_quant_algo": "FP8", "group_size": 16,
                         "exclude_modules": ["lm_head"]}}}, cfg=cfg)
    model = _hub_model(monkeypatch, _StubHub(folder), "nvidia/Llama-3.1-8B-Instruct-FP4")
    assert model.hf_config["quantization_config"]["quant_method"] == "modelopt"
    est = vramscope.estimate("nvidia/Llama-3.1-8B-Instruct-FP4", gpus=["h100"])  # through the stubbed Hub
    plain = vramscope.estimate("meta-llama/Llama-3.1-8B", gpus=["h100"])
    assert est.components["weights"] < 0.6 * plain.components["weights"]


def test_hub_side_file_over_its_bound_is_refused_before_download(tmp_path, monkeypatch):
    folder = _folder(tmp_path, QWEN, QWEN_FILES[1])
    stub = _StubHub(folder, sizes={"preprocessor_config.json": 5_000_000})
    with pytest.raises(VramscopeError) as err:
        _hub_model(monkeypatch, stub)
    assert "preprocessor_config.json" in str(err.value) and stub.downloaded == ["config.json"]
