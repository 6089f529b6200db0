"""Hostile local files (issue #11): every read of a local file is bounded, refuses what is not a regular file,
and says what is wrong in one line naming the file and the field.

Classes, each with hand-written cases and (where the inputs are open-ended) hypothesis:

1. incomplete checkpoints: missing shards, empty ``weight_map``, tensors that disagree with config.json;
2. unbounded reads: huge (sparse) files, 99 MB safetensors headers, too many tensors, long names, big ranks;
3. hangs: FIFOs and device files as the model, a config, a shard, an index, a GGUF, ``--deepspeed``/``--fsdp``
   and ``validate`` (run in a subprocess with a timeout);
4. hostile JSON (NaN, Infinity, 1e400, 5,000-digit integers, 100,000-deep nesting, non-UTF-8, BOM, UTF-16) in
   config.json, indexes, DeepSpeed/accelerate configs and validate records;
5. misleading messages: empty folders, FIFO/looping config.json, symbolic-link loops, names too long, empty
   paths, permission denied;
6. DeepSpeed/accelerate values of the wrong type or range, named by key;
7. ``validate`` records that are not objects, miss fields or carry bad values, named by line and field.
"""

from __future__ import annotations

import errno
import json
import math
import os
import struct
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixtures import TINY_LLAMA, llama_tensors, write_safetensors
from hostile_util import assert_clean, assert_sane_estimate, record, run_cli, run_cli_subprocess
from vramscope.errors import VramscopeError

HYP = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
VALID_RECORD = {"id": "ok", "kind": "inference", "model": "llama-3-8b", "measured": "nvml_used",
                "value_bytes": 17 * 2**30, "workload": {"task": "inference", "seq": 4096}}


def expect_error(argv, *needles, sub: bool = False, timeout: float = 30.0) -> str:
    """Exit 2 with one clear line that contains every needle."""
    argv = [str(a) for a in argv]
    rc, out, err = run_cli_subprocess(argv, timeout=timeout) if sub else run_cli(argv)
    assert_clean(rc, out, err, argv)
    assert rc == 2, f"{argv}: exit {rc}, stdout {out[-400:]!r}"
    for n in needles:
        assert n in err, f"{n!r} not in {err!r}"
    return err


def expect_answer(argv) -> dict:
    argv = [str(a) for a in argv] + ["--json"]
    rc, out, err = run_cli(argv)
    assert_clean(rc, out, err, argv)
    assert rc == 0, err
    d = json.loads(out)
    assert_sane_estimate(d)
    return d


def direct(fn, *args):
    """Call a reader directly; only a VramscopeError may come out (counted for the reliability report)."""
    try:
        value = fn(*args)
    except VramscopeError as e:
        record("direct", "clear error")
        return e
    except Exception:
        record("direct", "internal error")
        raise
    record("direct", "answer")
    return value


# ---- checkpoints generated at the real shapes of Llama-3-8B (sparse files: no disk, no time) -----------------

def _llama3_config() -> dict:
    from vramscope.sources import catalog

    return catalog.find("llama-3-8b")["config"]


def _numel(shape) -> int:
    return math.prod(shape)


def llama3_shards(n: int = 4) -> list[list[tuple[str, tuple[int, ...]]]]:
    """Llama-3-8B's tensors (transformers' names and shapes) split in order into ``n`` shards of ~equal bytes."""
    items = list(llama_tensors(_llama3_config()).items())
    limit = sum(2 * _numel(s) for _, s in items) / n
    shards, cur, size = [], [], 0
    for name, shape in items:
        if cur and size + 2 * _numel(shape) > limit * 1.02 and len(shards) < n - 1:
            shards.append(cur)
            cur, size = [], 0
        cur.append((name, shape))
        size += 2 * _numel(shape)
    shards.append(cur)
    return shards


def write_sparse_safetensors(path: Path, tensors, dtype: str = "BF16") -> Path:
    """A valid safetensors file whose data section is a hole: the header is real, the bytes cost nothing."""
    header, offset = {}, 0
    for name, shape in tensors:
        size = 2 * _numel(shape)
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        f.truncate(8 + len(raw) + offset)
    return path


def llama3_folder(folder: Path, keep=(1, 2, 3, 4), index: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(_llama3_config()))
    shards = llama3_shards()
    weight_map = {}
    for i, part in enumerate(shards, 1):
        name = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        weight_map.update({t: name for t, _ in part})
        if i in keep:
            write_sparse_safetensors(folder / name, part)
    if index:
        (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return folder


def test_generated_llama3_shards_are_real_safetensors(tmp_path):
    """The safetensors library itself opens the generated shards and sees Llama-3-8B's 291 tensors."""
    safetensors = pytest.importorskip("safetensors")
    folder = llama3_folder(tmp_path / "l3")
    names = []
    for p in sorted(folder.glob("*.safetensors")):
        with safetensors.safe_open(str(p), framework="numpy") as f:
            names += list(f.keys())
    assert len(names) == 291 and "model.layers.31.mlp.down_proj.weight" in names
    d = expect_answer(["estimate", folder])
    assert d["model"]["params"] == 8_030_261_248


# ---- 1. incomplete checkpoints --------------------------------------------------------------------------------

@pytest.mark.parametrize("index", [True, False], ids=["index", "no-index"])
@pytest.mark.parametrize("keep", [(1,), (1, 2, 3), (2, 3, 4), (1, 3), (4,)], ids=str)
def test_missing_shards_are_named(tmp_path, keep, index):
    folder = llama3_folder(tmp_path / "l3", keep=keep, index=index)
    missing = [f"model-{i:05d}-of-00004.safetensors" for i in range(1, 5) if i not in keep]
    err = expect_error(["estimate", folder], f"{len(missing)} of the 4 shard files", missing[0])
    assert ("model.safetensors.index.json" in err) == index
    if index:  # the index itself as MODEL says the same
        expect_error(["estimate", folder / "model.safetensors.index.json"], missing[0])


def test_first_shard_alone_is_never_a_quiet_2b_model(tmp_path):
    """The reported case: config.json + only the first of four shards (renamed, so no -of- pattern)."""
    folder = llama3_folder(tmp_path / "l3", keep=(1,), index=False)
    (folder / "model-00001-of-00004.safetensors").rename(folder / "model.safetensors")
    err = expect_error(["estimate", folder], "8.03B", "config.json describes", "have no tensors")
    assert "fits" not in err


def test_shards_of_another_download(tmp_path):
    """All shard files present, but they do not hold what the index says (mixed downloads)."""
    folder = llama3_folder(tmp_path / "l3")
    write_sparse_safetensors(folder / "model-00004-of-00004.safetensors", llama3_shards()[2])
    expect_error(["estimate", folder], "model.safetensors.index.json", "are not in the shards")


@pytest.mark.parametrize("index, detail", [
    ({"metadata": {}, "weight_map": {}}, "weight_map is empty"),
    ({"metadata": {}}, "no 'weight_map'"),
    ({"weight_map": []}, "no 'weight_map'"),
    ({"weight_map": "model.safetensors"}, "no 'weight_map'"),
    ([], "no 'weight_map'"),
    ({"weight_map": {"w": 5}}, "bad shard name"),
    ({"weight_map": {"w": "../../etc/passwd"}}, "bad shard name"),
    ({"weight_map": {"w": "sub/x.safetensors"}}, "bad shard name"),
    ({"weight_map": {"w": ""}}, "bad shard name"),
])
def test_bad_index(tmp_path, index, detail):
    (tmp_path / "config.json").write_text(json.dumps(TINY_LLAMA))
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    expect_error(["estimate", tmp_path], "model.safetensors.index.json", detail)


def test_index_with_too_many_shards(tmp_path):
    from vramscope.sources.safetensors import MAX_SHARDS

    wm = {f"t{i}": f"model-{i:05d}-of-09999.safetensors" for i in range(MAX_SHARDS + 1)}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": wm}))
    expect_error(["estimate", tmp_path], f"more than {MAX_SHARDS:,} shard files")


@pytest.mark.parametrize("header, detail", [
    ({}, "holds no tensors"),
    ({"__metadata__": {"format": "pt"}}, "holds no tensors"),
    ({"a": {"dtype": "F16", "shape": [0], "data_offsets": [0, 0]}}, "hold no parameters"),
])
def test_zero_tensors(tmp_path, header, detail):
    raw = json.dumps(header).encode()
    (tmp_path / "config.json").write_text(json.dumps(TINY_LLAMA))
    (tmp_path / "model.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw)
    expect_error(["estimate", tmp_path], detail)


def _tiny_folder(folder: Path, config: dict, tensors: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    write_safetensors(folder / "model.safetensors", {k: ("BF16", s) for k, s in tensors.items()})
    return folder


def test_moderate_disagreement_is_a_warning_with_both_numbers(tmp_path):
    folder = _tiny_folder(tmp_path / "m", TINY_LLAMA, llama_tensors(dict(TINY_LLAMA, intermediate_size=400)))
    rc, out, err = run_cli(["estimate", str(folder)])
    assert_clean(rc, out, err)
    assert rc == 0 and "warning: the weight files hold 219.46K parameters but config.json describes 133.44K" in out
    d = expect_answer(["estimate", folder])
    assert any("weight files hold" in a for a in json.dumps(d).split('"'))


@pytest.mark.parametrize("files_cfg, detail", [
    (dict(TINY_LLAMA, num_hidden_layers=8), "than config"),  # 4x the layers the config has
    (dict(TINY_LLAMA, hidden_size=256, num_attention_heads=16, num_key_value_heads=8), "than config"),
])
def test_gross_disagreement_is_an_error(tmp_path, files_cfg, detail):
    folder = _tiny_folder(tmp_path / "g", TINY_LLAMA, llama_tensors(files_cfg))
    expect_error(["estimate", folder], "weight files hold", "config.json describes")


def test_tied_head_stored_twice_is_explained(tmp_path):
    tied = dict(TINY_LLAMA, tie_word_embeddings=True)
    folder = _tiny_folder(tmp_path / "t", tied, llama_tensors(TINY_LLAMA))  # lm_head stored although tied
    from vramscope.sources import resolve

    r = resolve(str(folder))
    assert not any("weight files hold" in n for n in r.notes)
    assert any("lm_head.weight is stored although config.json ties it" in n for n in r.notes)
    assert r.params == r.spec.params  # counted once, as transformers loads it


def test_missing_layers_without_config_are_an_error(tmp_path):
    t = {k: ("BF16", s) for k, s in llama_tensors(dict(TINY_LLAMA, num_hidden_layers=4)).items()
         if ".layers.2." not in k}
    path = write_safetensors(tmp_path / "w.safetensors", t)
    expect_error(["estimate", path], "layers 2 of 4 have no tensors")


def test_inferred_layer_count_is_bounded(tmp_path):
    t = {k: ("BF16", s) for k, s in llama_tensors().items()}
    t["model.layers.999999.input_layernorm.weight"] = ("BF16", (64,))
    path = write_safetensors(tmp_path / "w.safetensors", t)
    expect_error(["estimate", path], "at most 1024 layers")


def test_safetensors_package_written_shards(tmp_path):
    """Shards written by the safetensors library itself (Llama-3 names, tiny shapes): one missing is named."""
    np = pytest.importorskip("numpy")
    stnp = pytest.importorskip("safetensors.numpy")
    (tmp_path / "config.json").write_text(json.dumps(TINY_LLAMA))
    items = list(llama_tensors().items())
    for i, part in enumerate((items[:10], items[10:]), 1):
        if i == 1:
            stnp.save_file({k: np.zeros(s, dtype=np.float16) for k, s in part},
                           str(tmp_path / f"model-{i:05d}-of-00002.safetensors"))
    expect_error(["estimate", tmp_path], "1 of the 2 shard files", "model-00002-of-00002.safetensors")


@HYP
@given(drop=st.sets(st.sampled_from(sorted(llama_tensors())), max_size=8),
       extra_layers=st.integers(0, 3), inter=st.sampled_from([176, 64, 400, 1000]))
def test_any_incomplete_or_foreign_checkpoint_is_flagged(tmp_path_factory, drop, extra_layers, inter):
    """Whatever is missing or extra: an error, a warning naming both numbers, or within 2% of the config."""
    from vramscope.sources import resolve

    folder = tmp_path_factory.mktemp("h")
    files = dict(TINY_LLAMA, num_hidden_layers=2 + extra_layers, intermediate_size=inter)
    tensors = {k: s for k, s in llama_tensors(files).items() if k not in drop}
    if not tensors:
        return
    _tiny_folder(folder, TINY_LLAMA, tensors)
    got = direct(resolve, str(folder))
    if isinstance(got, VramscopeError):
        return
    expected = got.spec.params
    warned = any(n.startswith("warning: the weight files hold") for n in got.notes)
    assert warned or abs(got.params - expected) <= 0.02 * expected, (got.params, expected, got.notes)


# ---- 2. unbounded reads ---------------------------------------------------------------------------------------

def _sparse(path: Path, size: int, head: bytes = b"") -> Path:
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(size)
    return path


@pytest.mark.timeout(60)
def test_huge_files_are_refused_before_they_are_read(tmp_path):
    """50 GB (sparse) files: only the cap + 1 bytes are ever read, so each answer is immediate."""
    big = 50 * 10**9
    cfg = _sparse(tmp_path / "config.json", big, b'{"model_type": "llama"')
    expect_error(["estimate", cfg], "config.json", "larger than 10 MB", sub=True)
    ds = _sparse(tmp_path / "ds.json", big, b"{")
    expect_error(["estimate", "llama-3-8b", "--task", "finetune", "--deepspeed", ds], "larger than 1 MB", sub=True)
    acc = _sparse(tmp_path / "acc.yaml", big, b"fsdp_config:\n")
    expect_error(["estimate", "llama-3-8b", "--task", "finetune", "--fsdp", acc], "larger than 64 KiB", sub=True)
    rec = _sparse(tmp_path / "r.jsonl", big, b"{")
    expect_error(["validate", rec], "larger than 32 MiB", sub=True)
    folder = tmp_path / "idx"
    folder.mkdir()
    _sparse(folder / "model.safetensors.index.json", big, b"{")
    expect_error(["estimate", folder], "larger than 64 MiB", sub=True)


@pytest.mark.parametrize("n", [99 * 10**6, 16 * 2**20 + 1, 2**63, 2**64 - 1])
def test_declared_header_beyond_the_cap(tmp_path, n):
    p = _sparse(tmp_path / "big.safetensors", 8 + min(n, 10**9) + 8, struct.pack("<Q", n))
    expect_error(["estimate", p], "exceeds the 16 MiB limit")


@pytest.mark.timeout(120)
def test_many_empty_tensors_are_refused_before_parsing(tmp_path):
    """Just under 16 MiB of empty tensors (~300k entries): refused on counting, before a JSON object is built."""
    entry = b'"t%07d":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}'
    n = (16 * 2**20 - 16) // (len(entry % 0) + 1)
    raw = b"{" + b",".join(entry % i for i in range(n)) + b"}"
    raw += b" " * (-len(raw) % 8)
    p = tmp_path / "many.safetensors"
    p.write_bytes(struct.pack("<Q", len(raw)) + raw)
    expect_error(["estimate", p], "more than 200,000 tensors in one file")


def _header_file(path: Path, header: dict, data: int = 0) -> Path:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * data)
    return path


@pytest.mark.parametrize("entry, detail", [
    ({"dtype": "F16", "shape": [1] * 9, "data_offsets": [0, 2]}, "at most 8 dimensions"),
    ({"dtype": "F16", "shape": [2**40], "data_offsets": [0, 2]}, "bad shape"),
    ({"dtype": "F16", "shape": [-1], "data_offsets": [0, 2]}, "bad shape"),
    ({"dtype": "F16", "shape": [True], "data_offsets": [0, 2]}, "bad shape"),
    ({"dtype": "F16", "shape": [1.0], "data_offsets": [0, 2]}, "bad shape"),
    ({"dtype": "F16", "shape": "1", "data_offsets": [0, 2]}, "bad shape"),
    ({"dtype": "F16", "shape": [1], "data_offsets": [0]}, "bad data_offsets"),
    ({"dtype": "F16", "shape": [1], "data_offsets": [2, 0]}, "bad data_offsets"),
    ({"dtype": "F16", "shape": [1], "data_offsets": [0, 2.0]}, "bad data_offsets"),
    ({"dtype": "F99", "shape": [1], "data_offsets": [0, 2]}, "dtype"),
    ({"dtype": ["F16"], "shape": [1], "data_offsets": [0, 2]}, "dtype"),
    ({"dtype": "F16", "shape": [1], "data_offsets": [0, 2], "x": [[[[[[[]]]]]]]}, None),
    ([1, 2], "is not an object"),
])
def test_bad_header_entries(tmp_path, entry, detail):
    p = _header_file(tmp_path / "x.safetensors", {"model.embed_tokens.weight": entry}, data=2)
    if detail is None:  # unknown keys inside an entry are ignored, as the safetensors library does not
        rc, out, err = run_cli(["estimate", str(p)])
        assert_clean(rc, out, err)
        return
    expect_error(["estimate", p], "x.safetensors", detail)


def test_long_names_and_bad_metadata(tmp_path):
    p = _header_file(tmp_path / "n.safetensors", {"a" * 5000: {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}},
                     data=1)
    expect_error(["estimate", p], "a tensor name of 5,000 characters (at most 1024)")
    p = _header_file(tmp_path / "m.safetensors", {"__metadata__": {"a": 1},
                                                  "w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}, data=1)
    expect_error(["estimate", p], "__metadata__ must map names to strings")
    p = _header_file(tmp_path / "o.safetensors", {f"w{i}": {"dtype": "U8", "shape": [8], "data_offsets": [0, 8]}
                                                  for i in range(4)}, data=8)
    expect_error(["estimate", p], "tensors overlap")


def test_shard_budget_is_shared(tmp_path, monkeypatch):
    """The per-model bounds (total header bytes, total tensors) hold across all the shards together."""
    from vramscope.sources import safetensors as sts

    folder = llama3_folder(tmp_path / "l3")
    monkeypatch.setattr(sts, "MAX_TOTAL_HEADER_BYTES", 30_000)
    expect_error(["estimate", folder], "headers add up to more than")
    monkeypatch.undo()
    monkeypatch.setattr(sts, "MAX_TENSORS", 200)
    expect_error(["estimate", folder], "tensors")


def test_records_line_longer_than_a_mib(tmp_path):
    p = tmp_path / "r.jsonl"
    p.write_text(json.dumps(VALID_RECORD) + "\n" + '{"id": "' + "x" * (1 << 20) + '"}\n')
    expect_error(["validate", p], "line 2", "longer than 1 MiB")


# ---- 3. hangs: FIFOs and devices ------------------------------------------------------------------------------

def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this platform")


@needs_fifo
@pytest.mark.timeout(300)
@pytest.mark.parametrize("where", ["config.json", "x.json", "model.safetensors", "model.gguf",
                                   "model.safetensors.index.json", "folder/config.json",
                                   "folder/model.safetensors", "folder/model.safetensors.index.json",
                                   "folder/model.gguf", "indexed/model-00001-of-00001.safetensors",
                                   "link.safetensors"])
def test_fifo_as_the_model(tmp_path, where):
    target = tmp_path / where
    target.parent.mkdir(parents=True, exist_ok=True)
    if where == "link.safetensors":
        os.symlink(_fifo(tmp_path / "pipe"), target)
    else:
        _fifo(target)
    if where.startswith("indexed/"):
        (target.parent / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"w": target.name}}))
    model = target if "/" not in where else target.parent
    expect_error(["estimate", model], "named pipe (FIFO)", sub=True)


@needs_fifo
@pytest.mark.timeout(300)
@pytest.mark.parametrize("argv", [
    ["estimate", "llama-3-8b", "--task", "finetune", "--deepspeed", "{p}.json"],
    ["estimate", "llama-3-8b", "--task", "finetune", "--fsdp", "{p}.yaml"],
    ["estimate", "llama-3-8b", "--task", "finetune", "--fsdp", "{p}.json"],
    ["validate", "{p}.jsonl"],
])
def test_fifo_as_a_config_or_records(tmp_path, argv):
    base = str(tmp_path / "pipe")
    argv = [a.format(p=base) for a in argv]
    _fifo(Path(argv[-1]))
    expect_error(argv, "named pipe (FIFO)", sub=True)


DEVICES = [d for d in ("/dev/zero", "/dev/null", "/dev/urandom", "/dev/stdin", "/dev/tty") if os.path.exists(d)]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("device", DEVICES)
def test_devices_everywhere(tmp_path, device):
    for argv in (["estimate", device], ["estimate", "llama-3-8b", "--task", "finetune", "--deepspeed", device],
                 ["estimate", "llama-3-8b", "--task", "finetune", "--fsdp", device], ["validate", device]):
        rc, out, err = run_cli_subprocess(argv, timeout=30, stdin="")
        assert_clean(rc, out, err, argv)
        assert rc == 2 and ("not a regular file" in err or "cannot be read" in err
                            or "no such file" in err), (argv, err)
    folder = tmp_path / "m"
    folder.mkdir()
    os.symlink(device, folder / "config.json")
    expect_error(["estimate", folder], "config.json", "not a regular file", sub=True)


@needs_fifo
@pytest.mark.timeout(30)
def test_a_fifo_swapped_in_after_the_stat_cannot_block(tmp_path, monkeypatch):
    """The race between stat and open: even if the stat says "regular file", the open cannot block (O_NONBLOCK)
    and the fstat of what was opened refuses the FIFO."""
    import stat as stat_mod

    from vramscope.sources import base

    pipe = _fifo(tmp_path / "config.json")
    real = os.stat

    class Fake:
        def __init__(self, s):
            self.s = s

        def __getattr__(self, name):
            return getattr(self.s, name)

        st_mode = stat_mod.S_IFREG | 0o644

    monkeypatch.setattr(base.os, "stat", lambda p, *a, **k: Fake(real(p, *a, **k)) if str(p) == str(pipe)
                        else real(p, *a, **k))
    e = direct(base.open_regular, pipe)
    assert isinstance(e, VramscopeError) and "named pipe" in str(e)


# ---- 4. hostile JSON ------------------------------------------------------------------------------------------

DEEP = "[" * 100_000 + "]" * 100_000  # over the container bounds of some files, over the recursion limit of all
HOSTILE_VALUES = {  # JSON text put where a number goes -> what the one-line error says
    "NaN": "NaN is not a number JSON allows",
    "Infinity": "Infinity is not a number JSON allows",
    "-Infinity": "-Infinity is not a number JSON allows",
    "1e400": "too large for a float",
    "-1e400": "too large for a float",
    "9" * 5000: "an integer of 5000 digits",
    "-" + "9" * 400: "an integer of 400 digits",
    "0." + "1" * 200: "a number written with 202 characters",
    DEEP: ("nested more than", "more than 10,000 objects and arrays", "more than 100,000 objects and arrays",
           "more than 1,024 objects and arrays"),
    "[" * 5000 + "]" * 5000: ("nested more than", "more than 1,024 objects and arrays"),
    "[" * 40 + "]" * 40: ("nested more than 32 levels deep", "nested more than 8 levels deep", "bad shape"),
}


def says(err: str, expected) -> bool:
    return any(e in err for e in ((expected,) if isinstance(expected, str) else expected))
ENCODINGS = {  # whole-file bytes transforms -> what the error says (None: accepted, same answer)
    "bom": (lambda b: b"\xef\xbb\xbf" + b, None),
    "utf16": (lambda b: b.decode().encode("utf-16"), "UTF-16"),
    "latin1": (lambda b: b.replace(b"}", b', "name": "caf\xe9"}', 1), "not UTF-8"),
    "nul": (lambda b: b"\x00" + b, None),
}


def _config_text(value: str) -> str:
    return json.dumps(TINY_LLAMA)[:-1] + f', "rope_theta": {value}}}'


@pytest.mark.parametrize("value", list(HOSTILE_VALUES), ids=lambda v: v[:12])
def test_hostile_numbers_in_config_json(tmp_path, value):
    p = tmp_path / "config.json"
    p.write_text(_config_text(value))
    for model in (p, tmp_path):  # the file, and the folder that holds it
        assert says(expect_error(["estimate", model], "config.json"), HOSTILE_VALUES[value])


@pytest.mark.parametrize("value", list(HOSTILE_VALUES), ids=lambda v: v[:12])
def test_hostile_numbers_in_an_index(tmp_path, value):
    (tmp_path / "config.json").write_text(json.dumps(TINY_LLAMA))
    (tmp_path / "model.safetensors.index.json").write_text(
        '{"metadata": {"total_size": %s}, "weight_map": {"w": "model.safetensors"}}' % value)
    assert says(expect_error(["estimate", tmp_path], "model.safetensors.index.json"), HOSTILE_VALUES[value])


@pytest.mark.parametrize("value", list(HOSTILE_VALUES), ids=lambda v: v[:12])
def test_hostile_numbers_in_a_safetensors_header(tmp_path, value):
    raw = ('{"w": {"dtype": "U8", "shape": [%s], "data_offsets": [0, 1]}}' % value).encode()
    p = tmp_path / "x.safetensors"
    p.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0")
    err = expect_error(["estimate", p], "x.safetensors")
    assert says(err, HOSTILE_VALUES[value]) or "bad shape" in err or "nested more than a few hundred" in err


@pytest.mark.parametrize("value", list(HOSTILE_VALUES), ids=lambda v: v[:12])
def test_hostile_numbers_in_deepspeed_and_accelerate_json(tmp_path, value):
    ds = tmp_path / "ds.json"
    ds.write_text('{"zero_optimization": {"stage": %s}}' % value)
    assert says(expect_error(["estimate", "llama-3-8b", "--task", "finetune", "--deepspeed", ds], "ds.json"),
                HOSTILE_VALUES[value])
    acc = tmp_path / "acc.json"
    acc.write_text('{"num_processes": %s, "fsdp_config": {}}' % value)
    assert says(expect_error(["estimate", "llama-3-8b", "--task", "finetune", "--fsdp", acc], "acc.json"),
                HOSTILE_VALUES[value])


@pytest.mark.parametrize("value", list(HOSTILE_VALUES), ids=lambda v: v[:12])
def test_hostile_numbers_in_records(tmp_path, value):
    p = tmp_path / "r.jsonl"
    p.write_text(json.dumps(VALID_RECORD) + "\n" + json.dumps(VALID_RECORD)[:-1] + f', "extra": {value}}}\n')
    assert says(expect_error(["validate", p], "r.jsonl: line 2"), HOSTILE_VALUES[value])


@pytest.mark.parametrize("enc", list(ENCODINGS))
def test_encodings(tmp_path, enc):
    transform, detail = ENCODINGS[enc]
    files = {
        "config": (tmp_path / "config.json", json.dumps(TINY_LLAMA).encode(), ["estimate", tmp_path / "config.json"]),
        "deepspeed": (tmp_path / "ds.json", b'{"zero_optimization": {"stage": 2}}',
                      ["estimate", "llama-3-8b", "--task", "finetune", "--deepspeed", tmp_path / "ds.json"]),
        "accelerate": (tmp_path / "acc.yaml", b"fsdp_config:\n  fsdp_version: 2\n",
                       ["estimate", "llama-3-8b", "--task", "finetune", "--fsdp", tmp_path / "acc.yaml"]),
        "records": (tmp_path / "r.jsonl", json.dumps(VALID_RECORD).encode(), ["validate", tmp_path / "r.jsonl"]),
    }
    for name, (path, clean, argv) in files.items():
        path.write_bytes(clean)
        rc0, out0, _ = run_cli([str(a) for a in argv])
        assert rc0 == 0, name
        bad = transform(clean if name != "accelerate" else clean.replace(b"\n", b" # x}\n", 1))
        path.write_bytes(bad)
        rc, out, err = run_cli([str(a) for a in argv])
        assert_clean(rc, out, err, argv)
        if detail is None and enc == "bom":
            assert rc == 0 and out == out0, name  # a UTF-8 byte-order mark is accepted: same answer
        elif detail is None:
            assert rc == 2, name
        else:
            assert rc == 2 and detail in err and path.name in err, (name, err)


@pytest.mark.parametrize("text, detail", [
    ("num_processes: .nan\n", ".nan at line 1 is not a number"),
    ("num_processes: -.inf\n", "-.inf at line 1 is not a number"),
    ("num_processes: 1e400\n", "num_processes"),
    ("num_processes: 1.0e+400\n", "is not a number"),
    ("num_processes: " + "9" * 5000 + "\n", "an integer of 5000 digits"),
    ("a: &x [1]\nb: *x\n", "aliases"),
    ("fsdp_config: " + "[" * 100 + "]" * 100 + "\n", "nested more than 32"),
    ("fsdp_config: " + "[" * 5000 + "]" * 5000 + "\n", "nested"),
    ("fsdp_config: {\n", "not valid YAML"),
    ("- a\n- b\n", "must be a JSON object"),
    ("num_processes: 0x" + "f" * 40 + "\n", "digits"),
    ("fsdp_config:\n  x: .nan\n", "is not a number"),
    ("!!python/object:os.system {}\n", "not valid YAML"),
])
def test_hostile_yaml(tmp_path, text, detail):
    p = tmp_path / "acc.yaml"
    p.write_text(text)
    expect_error(["estimate", "llama-3-8b", "--task", "finetune", "--fsdp", p], "acc.yaml", detail)


def _json_values():
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-(10**40), 10**40),
                        st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20))
    return st.recursive(scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c,
                                                                                     max_size=4), max_leaves=12)


def _dump(value) -> str:
    return json.dumps(value, allow_nan=True)


@HYP
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300),
                 _json_values().map(_dump),
                 st.tuples(st.sampled_from(list(HOSTILE_VALUES)[:-2] + ["[", "{", '"', "\\u", "\x00", "\ufeff"]),
                           st.integers(0, 200)).map(lambda t: _config_text("1")[:t[1]] + t[0]
                                                    + _config_text("1")[t[1]:])))
def test_loader_only_ever_returns_json_or_a_clear_problem(raw):
    from vramscope.sources.base import JsonProblem, parse_json

    try:
        value = parse_json(raw, max_containers=1000, max_items=10_000)
    except JsonProblem as e:
        record("loader", "clear error")
        assert str(e) and "\n" not in str(e)
        return
    record("loader", "answer")
    text = raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw
    assert value == json.loads(text)  # what it accepts, it reads exactly as json does
    json.dumps(value, allow_nan=False)  # never NaN or Infinity inside


@HYP
@given(key=st.sampled_from(["rope_theta", "hidden_size", "vocab_size", "num_hidden_layers", "torch_dtype",
                            "tie_word_embeddings", "quantization_config", "rope_scaling", "max_position_embeddings",
                            "num_key_value_heads", "model_type", "intermediate_size", "sliding_window"]),
       value=_json_values())
def test_any_config_json_value(tmp_path_factory, key, value):
    p = tmp_path_factory.mktemp("c") / "config.json"
    p.write_text(json.dumps(dict(TINY_LLAMA, **{key: value}), allow_nan=True))
    rc, out, err = run_cli(["estimate", str(p), "--json"])
    assert_clean(rc, out, err, (key, value))
    if rc == 0:
        assert_sane_estimate(json.loads(out))


# ---- 5. messages that say what is wrong -----------------------------------------------------------------------

def test_folders_without_a_model(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    err = expect_error(["estimate", empty], "found no config.json")
    assert "pickle" not in err
    other = tmp_path / "other"
    other.mkdir()
    for name in ("README.md", "notes.txt", ".hidden.bin", "tokenizer.json"):
        (other / name).write_text("x")
    err = expect_error(["estimate", other], "found no config.json")
    assert "pickle" not in err
    (other / "pytorch_model.bin").write_bytes(b"\x80\x04")
    expect_error(["estimate", other], "pickle checkpoints")


@pytest.mark.skipif(not os.path.isdir("/root") or not os.access("/root", os.R_OK), reason="no readable /root")
def test_root_folder():
    rc, out, err = run_cli(["estimate", "/root"])
    assert_clean(rc, out, err)
    assert rc == 0 or "pickle" not in err or any(n.endswith(".bin") for n in os.listdir("/root"))


@pytest.mark.parametrize("make, detail", [
    (lambda p: os.mkfifo(p), "named pipe (FIFO)"),
    (lambda p: os.symlink(p, p), "symbolic link loop"),
    (lambda p: (os.symlink(p.parent / "b", p), os.symlink(p, p.parent / "b")), "symbolic link loop"),
    (lambda p: os.symlink(p.parent / "nowhere.json", p), "no such file or directory"),
    (lambda p: p.mkdir(), "is a folder"),
])
@pytest.mark.timeout(60)
def test_config_json_that_is_not_a_file(tmp_path, make, detail):
    folder = tmp_path / "m"
    folder.mkdir()
    make(folder / "config.json")
    err = expect_error(["estimate", folder], "config.json", detail, sub=True)
    assert "pickle" not in err
    # also beside safetensors weights
    write_safetensors(folder / "model.safetensors", {k: ("BF16", s) for k, s in llama_tensors().items()})
    expect_error(["estimate", folder], "config.json", detail, sub=True)


def test_symlink_loop_as_the_model(tmp_path):
    loop = tmp_path / "loop"
    os.symlink(loop, loop)
    expect_error(["estimate", loop], "symbolic link loop")
    expect_error(["estimate", "llama-3-8b", "--task", "finetune", "--deepspeed", loop], "symbolic link loop")
    expect_error(["validate", loop], "symbolic link loop")
    link = tmp_path / "model.safetensors"
    os.symlink(link, link)
    expect_error(["estimate", link], "symbolic link loop")


@pytest.mark.parametrize("name", ["/" + "a" * 300, "./" + "b" * 300 + ".json", "/tmp/" + "c" * 256 + ".gguf",
                                  "/" + "/".join(["d" * 200] * 30)])
def test_names_too_long(name):
    err = expect_error(["estimate", name])
    assert "too long" in err or "no such file" in err or "at most 4096 characters" in err
    assert len(err) < 600  # the name is shortened in the message
    expect_error(["estimate", "llama-3-8b", "--task", "finetune", "--deepspeed", name + ".json"], "too long")
    expect_error(["validate", name], "too long")


def test_a_bare_model_name_too_long():
    err = expect_error(["estimate", "x" * 300])  # too long to be a file name: simply not a file, not an OSError
    assert "not in the catalog" in err and "x" * 300 not in err  # the name is shown cut short


def test_nul_in_a_path():
    from vramscope.sources import base

    err = expect_error(["estimate", "/tmp/x\0y.json"])
    assert "NUL" in err or "printable" in err  # the CLI may refuse it before any reader sees it
    e = direct(base.stat_path, "/tmp/x\0y.json")
    assert isinstance(e, VramscopeError) and "NUL" in str(e)
    for fn in (base.read_limited, base.open_regular):
        assert isinstance(direct(fn, "/tmp/x\0y.json", *([10] if fn is base.read_limited else [])), VramscopeError)
    assert base.path_exists("/tmp/x\0y.json") is False and base.path_exists("y" * 300) is False


def test_empty_paths():
    from vramscope.configs import from_deepspeed
    from vramscope.validate import read_records

    for fn in (read_records, from_deepspeed):
        e = direct(fn, "")
        assert isinstance(e, VramscopeError) and "empty path" in str(e)
    err = expect_error(["validate", ""])
    assert "empty path" in err or "is a folder" in err  # the CLI hands Path('') == '.' over today


@pytest.mark.parametrize("where", ["open", "scandir"])
def test_permission_denied_is_one_clear_line(tmp_path, monkeypatch, where):
    """As root nothing is denied, so the OSError is injected where the readers meet it."""
    from vramscope.sources import base, local

    (tmp_path / "config.json").write_text(json.dumps(TINY_LLAMA))

    def deny(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied")

    if where == "open":
        monkeypatch.setattr(base.os, "open", deny)
        expect_error(["estimate", tmp_path / "config.json"], "config.json", "permission denied")
        expect_error(["validate", tmp_path / "config.json"], "permission denied")
    else:
        monkeypatch.setattr(local.os, "scandir", deny)
        expect_error(["estimate", tmp_path], "permission denied")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads everything")
def test_permission_denied_for_real(tmp_path):
    p = tmp_path / "config.json"
    p.write_text(json.dumps(TINY_LLAMA))
    p.chmod(0)
    expect_error(["estimate", p], "permission denied")


# ---- 6. DeepSpeed / accelerate values -------------------------------------------------------------------------

DS_BAD = [  # (config, key named in the error)
    ({"zero_optimization": {"stage": "2"}}, "zero_optimization.stage"),
    ({"zero_optimization": {"stage": 2.5}}, "zero_optimization.stage"),
    ({"zero_optimization": {"stage": True}}, "zero_optimization.stage"),
    ({"zero_optimization": {"stage": [2]}}, "zero_optimization.stage"),
    ({"zero_optimization": {"stage": {"v": 2}}}, "zero_optimization.stage"),
    ({"zero_optimization": {"stage": -1}}, "zero_optimization.stage"),
    ({"zero_optimization": {"stage": 4}}, "zero_optimization.stage"),
    ({"zero_optimization": {"stage": None}}, "zero_optimization.stage"),
    ({"zero_optimization": []}, "zero_optimization"),
    ({"zero_optimization": "yes"}, "zero_optimization"),
    ({"zero_optimization": 3}, "zero_optimization"),
    ({"zero_optimization": {"stage": 3, "offload_optimizer": "cpu"}}, "offload_optimizer"),
    ({"zero_optimization": {"stage": 3, "offload_optimizer": {"device": 5}}}, "offload_optimizer.device"),
    ({"zero_optimization": {"stage": 3, "offload_optimizer": {"device": ["cpu"]}}}, "offload_optimizer.device"),
    ({"zero_optimization": {"stage": 3, "offload_param": {"device": "CPU"}}}, "offload_param.device"),
    ({"zero_optimization": {"stage": 1, "offload_param": {"device": "cpu"}}}, "only with stage 3"),
    ({"zero_optimization": {"stage": 2, "cpu_offload": "maybe"}}, "zero_optimization.cpu_offload"),
    ({"bf16": []}, "bf16"),
    ({"bf16": "true"}, "bf16"),
    ({"bf16": {"enabled": "maybe"}}, "bf16.enabled"),
    ({"bf16": {"enabled": 2}}, "bf16.enabled"),
    ({"fp16": {"enabled": [True]}}, "fp16.enabled"),
    ({"bf16": {"enabled": True}, "fp16": {"enabled": True}}, "fp16.enabled"),
    ({"train_micro_batch_size_per_gpu": 0}, "train_micro_batch_size_per_gpu"),
    ({"train_micro_batch_size_per_gpu": -4}, "train_micro_batch_size_per_gpu"),
    ({"train_micro_batch_size_per_gpu": "4"}, "train_micro_batch_size_per_gpu"),
    ({"train_micro_batch_size_per_gpu": 4.5}, "train_micro_batch_size_per_gpu"),
    ({"train_micro_batch_size_per_gpu": True}, "train_micro_batch_size_per_gpu"),
    ({"train_micro_batch_size_per_gpu": 10**9}, "train_micro_batch_size_per_gpu"),
    ({"gradient_accumulation_steps": [8]}, "gradient_accumulation_steps"),
    ({"gradient_accumulation_steps": 0}, "gradient_accumulation_steps"),
    ({"zero_optimization": {"stage": 3, "reduce_bucket_size": -1}}, "zero_optimization.reduce_bucket_size"),
    ({"zero_optimization": {"stage": 3, "reduce_bucket_size": -5e8}}, "zero_optimization.reduce_bucket_size"),
    ({"zero_optimization": {"stage": 3, "stage3_prefetch_bucket_size": 1.5}},
     "zero_optimization.stage3_prefetch_bucket_size"),
    ({"zero_optimization": {"stage": 3, "stage3_max_live_parameters": [1]}},
     "zero_optimization.stage3_max_live_parameters"),
    ({"zero_optimization": {"stage": 3, "stage3_param_persistence_threshold": True}},
     "zero_optimization.stage3_param_persistence_threshold"),
    ({"zero_optimization": {"stage": 3, "stage3_param_persistence_threshold": 1e30}},
     "zero_optimization.stage3_param_persistence_threshold"),
]
DS_GOOD = [  # (config, a subset of the options read from it): what DeepSpeed / the HF integration accept
    ({"zero_optimization": {"stage": 2.0}}, {"parallelism": "zero2"}),
    ({"zero_optimization": True}, {"parallelism": "zero1"}),  # DeepSpeed's deprecated boolean form
    ({"zero_optimization": {"stage": 2, "cpu_offload": True}}, {"offload": "optimizer"}),
    ({"bf16": {"enabled": "auto"}, "fp16": {"enabled": "auto"}}, {"parallelism": "ddp"}),
    ({"bf16": {"enabled": "true"}}, {"dtype": "bf16"}),
    ({"fp16": {"enabled": 1}}, {"dtype": "fp16"}),
    ({"train_micro_batch_size_per_gpu": "auto", "gradient_accumulation_steps": "auto"}, {"parallelism": "ddp"}),
    ({"zero_optimization": {"stage": 3, "reduce_bucket_size": 5e8, "stage3_prefetch_bucket_size": "auto"}},
     {"reduce_bucket": 500_000_000}),
    ({"zero_optimization": {"stage": 3, "offload_param": {"device": None}}}, {"parallelism": "zero3"}),
]


@pytest.mark.parametrize("cfg, key", DS_BAD, ids=lambda v: json.dumps(v)[:50] if isinstance(v, dict) else v)
def test_deepspeed_bad_values_name_the_key(tmp_path, cfg, key):
    p = tmp_path / "ds.json"
    p.write_text(json.dumps(cfg))
    expect_error(["estimate", "llama-3-8b", "--task", "finetune", "--deepspeed", p], "ds.json", key)


@pytest.mark.parametrize("cfg, want", DS_GOOD, ids=lambda v: json.dumps(v)[:50])
def test_deepspeed_values_deepspeed_accepts(tmp_path, cfg, want):
    from vramscope.configs import from_deepspeed

    p = tmp_path / "ds.json"
    p.write_text(json.dumps(cfg))
    got = direct(from_deepspeed, str(p))
    assert not isinstance(got, VramscopeError), got
    assert {k: got.get(k) for k in want} == want
    rc, out, err = run_cli(["estimate", "llama-3-8b", "--task", "finetune", "--deepspeed", str(p)])
    assert_clean(rc, out, err)


ACC_BAD = [
    ("num_processes: eight\n", "num_processes"),
    ("num_processes: -1\n", "num_processes"),
    ("num_processes: 0\n", "num_processes"),
    ("num_processes: 1.5\n", "num_processes"),
    ("num_processes: [8]\n", "num_processes"),
    ("num_machines: {a: 1}\n", "num_machines"),
    ("fsdp_config:\n  fsdp_version: 3\n", "fsdp_version"),
    ("fsdp_config:\n  fsdp_version: x\n", "fsdp_version"),
    ("fsdp_config:\n  fsdp_version: true\n", "fsdp_version"),
    ("fsdp_config:\n  fsdp_sharding_strategy: 7\n", "fsdp_sharding_strategy"),
    ("fsdp_config:\n  fsdp_sharding_strategy: [FULL_SHARD]\n", "fsdp_sharding_strategy"),
    ("fsdp_config:\n  fsdp_sharding_strategy: true\n", "fsdp_sharding_strategy"),
    ("fsdp_config:\n  fsdp_offload_params: maybe\n", "fsdp_offload_params"),
    ("fsdp_config:\n  fsdp_offload_params: 2\n", "fsdp_offload_params"),
    ("fsdp_config:\n  fsdp_activation_checkpointing: [true]\n", "fsdp_activation_checkpointing"),
    ("fsdp_config:\n  fsdp_version: 2\n  fsdp_reshard_after_forward: sometimes\n", "fsdp_reshard_after_forward"),
    ("fsdp_config: [1, 2]\n", "fsdp_config"),
    ("fsdp_config: text\n", "fsdp_config"),
    ("mixed_precision: fp8\n", "mixed_precision"),
    ("mixed_precision: 5\n", "mixed_precision"),
    ("distributed_type: MULTI_GPU\n", "distributed_type"),
    ("distributed_type: DEEPSPEED\ndeepspeed_config:\n  zero_stage: 4\n", "deepspeed_config.zero_stage"),
    ("distributed_type: DEEPSPEED\ndeepspeed_config:\n  offload_optimizer_device: disk\n",
     "deepspeed_config.offload_optimizer_device"),
    ("distributed_type: DEEPSPEED\ndeepspeed_config:\n  zero_stage: 2\n  offload_param_device: cpu\n",
     "deepspeed_config.offload_param_device"),
    ("distributed_type: DEEPSPEED\ndeepspeed_config:\n  deepspeed_config_file: ds.json\n",
     "deepspeed_config.deepspeed_config_file"),
    ("distributed_type: DEEPSPEED\ndeepspeed_config: 3\n", "deepspeed_config"),
]


@pytest.mark.parametrize("text, key", ACC_BAD)
def test_accelerate_bad_values_name_the_key(tmp_path, text, key):
    p = tmp_path / "acc.yaml"
    p.write_text(text)
    expect_error(["estimate", "llama-3-8b", "--task", "finetune", "--fsdp", p], "acc.yaml", key)


def test_accelerate_values_accelerate_accepts(tmp_path):
    from vramscope.configs import from_accelerate_fsdp

    p = tmp_path / "acc.yaml"
    p.write_text("distributed_type: FSDP\nmixed_precision: no\nnum_processes: 8.0\nfsdp_config:\n"
                 "  fsdp_offload_params: 'true'\n  fsdp_activation_checkpointing: 'yes'\n  fsdp_sharding_strategy: 2\n")
    got = from_accelerate_fsdp(str(p))
    assert got == {"parallelism": "zero2", "fsdp_version": 1, "offload": "optimizer+params",
                   "grad_checkpointing": True, "num_gpus": 8}


def test_accelerate_without_pyyaml(tmp_path, monkeypatch):
    """Without PyYAML the subset reader gives the same answers and the same bounds."""
    monkeypatch.setitem(sys.modules, "yaml", None)
    from vramscope.configs import from_accelerate_fsdp

    assert from_accelerate_fsdp(str(EXAMPLES / "accelerate_fsdp.yaml"))["num_gpus"] == 8
    for text, key in ACC_BAD[:4] + [("num_processes: .nan\n", "num_processes"), ("- a\n", "not 'key: value'")]:
        p = tmp_path / "acc.yaml"
        p.write_text(text)
        expect_error(["estimate", "llama-3-8b", "--task", "finetune", "--fsdp", p], key)


_DS_KEYS = ["zero_optimization", "zero_optimization.stage", "zero_optimization.offload_optimizer",
            "zero_optimization.offload_optimizer.device", "zero_optimization.offload_param.device",
            "zero_optimization.reduce_bucket_size", "zero_optimization.stage3_prefetch_bucket_size",
            "zero_optimization.cpu_offload", "bf16", "bf16.enabled", "fp16.enabled",
            "train_micro_batch_size_per_gpu", "gradient_accumulation_steps"]


def _nest(key: str, value):
    out: dict = {}
    cur = out
    parts = key.split(".")
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
    cur[parts[-1]] = value
    return out


@HYP
@given(key=st.sampled_from(_DS_KEYS), value=_json_values(), stage=st.sampled_from([None, 0, 1, 2, 3]))
def test_any_deepspeed_value(tmp_path_factory, key, value, stage):
    """Any value at any key: options of the right type and range, or one error naming that key."""
    from vramscope.configs import from_deepspeed

    cfg = _nest(key, value)
    if stage is not None and isinstance(cfg.get("zero_optimization"), dict):
        cfg["zero_optimization"].setdefault("stage", stage)
    p = tmp_path_factory.mktemp("d") / "ds.json"
    p.write_text(json.dumps(cfg, allow_nan=True))
    got = direct(from_deepspeed, str(p))
    if isinstance(got, VramscopeError):
        text = str(got)
        assert "\n" not in text and "ds.json" in text
        assert "not valid JSON" in text or any(k in text for k in (key, key.split(".")[0], "stage 3",
                                                                   "zero_optimization.stage"))
        return
    for opt in ("batch", "grad_accum", "zero_prefetch", "zero_max_live", "zero_persistence", "reduce_bucket"):
        assert opt not in got or (type(got[opt]) is int and got[opt] >= 0), got
    assert got["parallelism"] in ("ddp", "zero1", "zero2", "zero3")


# ---- 7. validate records --------------------------------------------------------------------------------------

def _rec(**changes):
    rec = dict(VALID_RECORD)
    for k, v in changes.items():
        if v is ...:
            rec.pop(k)
        else:
            rec[k] = v
    return json.dumps(rec, allow_nan=True)


RECORD_BAD = [  # (line 2 of the file, what the error names)
    (b"\xff\xfe{}", "not UTF-8"),
    (b"{\"id\": \"caf\xe9\"}", "not UTF-8"),
    (b"null", "not null"),
    (b"42", "not a int"),
    (b"-3.5", "not a float"),
    (b'"text"', "not a str"),
    (b"[1, 2]", "not an array"),
    (b"true", "not a bool"),
    (b"NaN", "NaN is not a number"),
    (b"{nope", "not JSON"),
    (b"{}", "missing 'id'"),
    (_rec(id=...).encode(), "missing 'id'"),
    (_rec(model=...).encode(), "missing 'model'"),
    (_rec(measured=...).encode(), "missing 'measured'"),
    (_rec(value_bytes=...).encode(), "missing 'value_bytes'"),
    (_rec(value_bytes=-352586465380).encode(), "'value_bytes'"),
    (_rec(value_bytes=0).encode(), "'value_bytes'"),
    (_rec(value_bytes="17GB").encode(), "'value_bytes'"),
    (_rec(value_bytes=True).encode(), "'value_bytes'"),
    (_rec(value_bytes=None).encode(), "'value_bytes'"),
    (_rec(value_bytes=1e300).encode(), "'value_bytes'"),
    (_rec(value_bytes=[1]).encode(), "'value_bytes'"),
    (_rec(value_bytes=float("nan")).encode(), "NaN is not a number"),
    (_rec(id=5).encode(), "'id'"),
    (_rec(id="").encode(), "'id'"),
    (_rec(id=None).encode(), "'id'"),
    (_rec(model=5).encode(), "'model'"),
    (_rec(model="").encode(), "'model'"),
    (_rec(model={"name": "x"}).encode(), "'model'"),
    (_rec(measured="bogus").encode(), "'measured'"),
    (_rec(measured=5).encode(), "'measured'"),
    (_rec(kind=5).encode(), "'kind'"),
    (_rec(kind=["training"]).encode(), "'kind'"),
    (_rec(source=5).encode(), "'source'"),
    (_rec(framework={"a": 1}).encode(), "'framework'"),
    (_rec(gpu=80).encode(), "'gpu'"),
    (_rec(num_gpus=0).encode(), "'num_gpus'"),
    (_rec(num_gpus="2").encode(), "'num_gpus'"),
    (_rec(num_gpus=2.5).encode(), "'num_gpus'"),
    (_rec(workload=[]).encode(), "'workload'"),
    (_rec(workload="inference").encode(), "'workload'"),
    (_rec(workload={"seq": "2048"}).encode(), "'workload.seq'"),
    (_rec(workload={"seq": -1}).encode(), "'workload.seq'"),
    (_rec(workload={"seq": 1.5}).encode(), "'workload.seq'"),
    (_rec(workload={"batch": True}).encode(), "'workload.batch'"),
    (_rec(workload={"lora_targets": "q_proj"}).encode(), "'workload.lora_targets'"),
    (_rec(workload={"lora_targets": [1]}).encode(), "'workload.lora_targets'"),
    (_rec(workload={"attn": ["sdpa"]}).encode(), "'workload.attn'"),
    (_rec(workload={"task": {"a": 1}}).encode(), "'workload.task'"),
    (_rec(workload={"engine": "vllm", "tensor_parallel_size": "2"}).encode(), "'workload.tensor_parallel_size'"),
    (_rec(workload={"zero_stage": 7}).encode(), "'workload.zero_stage'"),
    (_rec(workload={"fsdp_version": "2"}).encode(), "'workload.fsdp_version'"),
    (_rec(workload={"gpu_memory_utilization": 1.5}).encode(), "'workload.gpu_memory_utilization'"),
    (_rec(workload={"gpu_memory_utilization": 0}).encode(), "'workload.gpu_memory_utilization'"),
    (_rec(workload={"grad_checkpointing": "yes"}).encode(), "'workload.grad_checkpointing'"),
    (_rec(workload={"offload_optimizer": 3}).encode(), "'workload.offload_optimizer'"),
    (_rec(components_measured=[]).encode(), "'components_measured'"),
    (_rec(components_measured={"weights": -1}).encode(), "'components_measured.weights'"),
    (_rec(components_measured={"weights": "1GB"}).encode(), "'components_measured.weights'"),
]


@pytest.mark.parametrize("line, detail", RECORD_BAD, ids=lambda v: v[:40].decode("utf-8", "replace")
                         if isinstance(v, bytes) else v)
def test_bad_records_name_line_and_field(tmp_path, line, detail):
    p = tmp_path / "r.jsonl"
    p.write_bytes(json.dumps(VALID_RECORD).encode() + b"\n" + line + b"\n")
    expect_error(["validate", p], "r.jsonl: line 2", detail)


def test_records_that_are_fine():
    """Comments, blank lines, CRLF, a BOM and a missing workload are all fine, and the numbers are sane."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "r.jsonl"
        p.write_bytes(b"\xef\xbb\xbf# comment\r\n\r\n" + json.dumps(VALID_RECORD).encode() + b"\r\n"
                      + _rec(id="b", workload=None).encode() + b"\n")
        rc, out, err = run_cli(["validate", str(p), "--json"])
        assert_clean(rc, out, err)
        assert rc == 0
        rows = json.loads(out)["rows"]
        assert len(rows) == 2 and all(r["measured_bytes"] > 0 for r in rows)
        assert all(r["analytic_error"] is None or math.isfinite(r["analytic_error"]) for r in rows)


@HYP
@given(key=st.sampled_from(["id", "model", "measured", "value_bytes", "kind", "num_gpus", "workload",
                            "components_measured", "source", "framework", "gpu", "workload.seq",
                            "workload.batch", "workload.task", "workload.engine", "workload.lora_targets",
                            "workload.tensor_parallel_size", "workload.zero_stage", "workload.attn",
                            "workload.dtype", "workload.gpu_memory_utilization", "workload.n_gpu_layers",
                            "components_measured.weights"]),
       value=_json_values())
def test_any_record_value(tmp_path_factory, key, value):
    """Any value in any field: a compared or skipped row, or one error naming line 1 and the field."""
    rec = dict(VALID_RECORD, workload=dict(VALID_RECORD["workload"]), components_measured={"weights": 1})
    parts = key.split(".")
    (rec[parts[0]] if len(parts) == 2 else rec)[parts[-1]] = value
    p = tmp_path_factory.mktemp("v") / "r.jsonl"
    p.write_text(json.dumps(rec, allow_nan=True) + "\n")
    rc, out, err = run_cli(["validate", str(p), "--json"])
    assert_clean(rc, out, err, (key, value))
    if rc == 2:
        assert "r.jsonl: line 1" in err, err
        assert f"'{key}" in err or "not JSON" in err or "NaN" in err or "Infinity" in err, err
    else:
        for row in json.loads(out)["rows"]:
            assert row["measured_bytes"] >= 0
            for k in ("analytic_error", "trace_error"):
                assert row[k] is None or math.isfinite(row[k])


@pytest.mark.parametrize("text, detail", [
    (_config_text("NaN"), "NaN is not a number"),
    (_config_text("1e400"), "too large for a float"),
    ("[1, 2]", "must be a JSON object"),
    (_config_text("[" * 5000 + "]" * 5000), "nested more than"),
])
def test_hub_config_is_read_like_a_local_one(monkeypatch, tmp_path, text, detail):
    """The Hub's cached config.json is a local file too: same bounds, named as the repository's file."""
    from test_sources import _fake_hub
    from vramscope.sources import resolve

    _fake_hub(monkeypatch, tmp_path)
    (tmp_path / "hub_config.json").write_text(text)
    e = direct(resolve, "someone/tiny-llama")
    assert isinstance(e, VramscopeError) and "someone/tiny-llama/config.json" in str(e) and detail in str(e)


def test_undecoded_packing_only_warns(tmp_path):
    """Integer tensors of a packing vramscope does not decode (EXL2-style q_weight) cannot prove a checkpoint
    incomplete: a warning with both numbers, not an error."""
    t = {}
    for k, s in llama_tensors().items():
        if ".layers." in k and k.endswith("proj.weight"):
            t[k.replace(".weight", ".q_weight")] = ("I32", (s[0] // 8, s[1]))
        else:
            t[k] = ("BF16", s)
    (tmp_path / "config.json").write_text(json.dumps(TINY_LLAMA))
    write_safetensors(tmp_path / "model.safetensors", t)
    rc, out, err = run_cli(["estimate", str(tmp_path)])
    assert_clean(rc, out, err)
    assert rc == 0 and "warning: the weight files hold" in out


def test_compressed_tensors_packed_weights_are_decoded(tmp_path):
    from vramscope.sources import resolve

    quant = {"quant_method": "compressed-tensors", "config_groups": {"group_0": {"weights": {"num_bits": 4}}}}
    t = {}
    for k, s in llama_tensors().items():
        if ".layers." in k and k.endswith("proj.weight"):
            t[k.replace(".weight", ".weight_packed")] = ("I32", (s[0], s[1] // 8))
            t[k.replace(".weight", ".weight_scale")] = ("BF16", (s[0], s[1] // 16))
            t[k.replace(".weight", ".weight_shape")] = ("I32", (2,))
        else:
            t[k] = ("BF16", s)
    (tmp_path / "config.json").write_text(json.dumps(dict(TINY_LLAMA, quantization_config=quant)))
    write_safetensors(tmp_path / "model.safetensors", t)
    r = resolve(str(tmp_path))
    assert r.params == r.spec.params and not any("weight files hold" in n for n in r.notes)
