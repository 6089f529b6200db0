"""GGUF files written with the gguf package: exact per-tensor bytes, metadata to spec, bounded parsing."""

import struct

import pytest

from vramscope.errors import VramscopeError
from vramscope.sources import resolve
from vramscope.sources.gguf import ggml_types

gguf = pytest.importorskip("gguf")
np = pytest.importorskip("numpy")


def test_type_table_matches_gguf_py():
    types = ggml_types()["types"]
    for qt, (block, size) in gguf.GGML_QUANT_SIZES.items():
        entry = types.get(str(int(qt)))
        if entry is None or qt.name == "Q8_1":
            # gguf-py still lists Q8_1 as 40 bytes (fp32 d and s); ggml-common.h's block_q8_1 holds two
            # ggml_half (static_assert: 2*sizeof(ggml_half) + QK8_1 = 36). It is never a stored weight type.
            continue
        assert (entry["block"], entry["bytes"]) == (block, size), qt.name
    names = {e["name"] for e in types.values()}
    for must in ("Q4_0", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_XS", "IQ2_XXS", "BF16", "F16"):
        assert must in names


def write_gguf(path, layers=2, hidden=256, heads=4, kv_heads=2, ffn=512, vocab=512,
               qtype=gguf.GGMLQuantizationType.Q4_K, tie=False):
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(layers)
    w.add_embedding_length(hidden)
    w.add_feed_forward_length(ffn)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_context_length(4096)
    w.add_file_type(15)  # Q4_K_M
    w.add_token_list([f"t{i}".encode() for i in range(vocab)])
    hd = hidden // heads
    expected = {}

    def add(name, shape, qt):
        block, size = gguf.GGML_QUANT_SIZES[qt]
        rows, cols = (shape[0], shape[1]) if len(shape) == 2 else (1, shape[0])
        data = np.zeros((rows, cols // block * size), dtype=np.uint8)
        if qt == gguf.GGMLQuantizationType.F32:
            data = np.zeros(shape, dtype=np.float32)
            w.add_tensor(name, data)
        else:
            w.add_tensor(name, data, raw_dtype=qt)
        n = rows * cols
        expected[name] = n // block * size

    f32 = gguf.GGMLQuantizationType.F32
    add("token_embd.weight", (vocab, hidden), gguf.GGMLQuantizationType.Q6_K)
    for i in range(layers):
        add(f"blk.{i}.attn_q.weight", (heads * hd, hidden), qtype)
        add(f"blk.{i}.attn_k.weight", (kv_heads * hd, hidden), qtype)
        add(f"blk.{i}.attn_v.weight", (kv_heads * hd, hidden), gguf.GGMLQuantizationType.Q8_0)
        add(f"blk.{i}.attn_output.weight", (hidden, heads * hd), qtype)
        add(f"blk.{i}.ffn_gate.weight", (ffn, hidden), qtype)
        add(f"blk.{i}.ffn_up.weight", (ffn, hidden), qtype)
        add(f"blk.{i}.ffn_down.weight", (hidden, ffn), gguf.GGMLQuantizationType.Q6_K)
        add(f"blk.{i}.attn_norm.weight", (hidden,), f32)
        add(f"blk.{i}.ffn_norm.weight", (hidden,), f32)
    add("output_norm.weight", (hidden,), f32)
    if not tie:
        add("output.weight", (vocab, hidden), gguf.GGMLQuantizationType.Q6_K)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return expected


def test_gguf_exact_bytes_and_spec(tmp_path):
    path = tmp_path / "tiny-Q4_K_M.gguf"
    expected = write_gguf(path)
    r = resolve(str(path))
    assert r.kind == "gguf"
    assert r.stored_bytes == sum(expected.values())
    by_name = {t.name: t for t in r.stored}
    for name, nbytes in expected.items():
        assert by_name[name].nbytes == nbytes, name
    assert by_name["blk.0.attn_q.weight"].dtype == "Q4_K"
    s = r.spec
    assert (s.num_layers, s.hidden_size, s.num_heads, s.num_kv_heads, s.head_dim, s.vocab_size) == (2, 256, 4, 2, 64, 512)
    assert not s.tie_embeddings
    assert r.stored_format == "gguf Q4_K_M"
    # parameter count is exact too: the elements of every tensor
    assert r.params == sum(t.params for t in r.stored)


def test_gguf_estimate_weights_are_file_bytes(tmp_path):
    import vramscope

    path = tmp_path / "m.gguf"
    expected = write_gguf(path, tie=True)
    e = vramscope.estimate(str(path))
    assert e.components["weights"] == sum(expected.values())
    assert e.components["kv_cache"] == 2 * 4096 * 2 * 2 * 64 * 2  # layers × tokens × (k+v) × kv_heads × hd × fp16


def _header(n_tensors=0, n_kv=1):
    return b"GGUF" + struct.pack("<IQQ", 3, n_tensors, n_kv)


@pytest.mark.parametrize("blob, match", [
    (b"GGML" + b"\0" * 20, "magic"),
    (b"GGUF" + struct.pack("<I", 99) + b"\0" * 16, "version"),
    (_header(n_tensors=10**9), "exceed the limits"),
    (_header() + struct.pack("<Q", 2**40), "exceeds"),  # key length
    (_header() + struct.pack("<Q", 3) + b"abc" + struct.pack("<IQ", 8, 2**31), "exceeds"),  # value string
    (_header() + struct.pack("<Q", 3) + b"abc" + struct.pack("<IIQ", 9, 4, 2**40), "exceeds"),  # array length
    (_header() + struct.pack("<Q", 3) + b"abc" + struct.pack("<I", 77), "unknown metadata value type"),
    (_header() + struct.pack("<Q", 3) + b"ab", "truncated"),
    (b"GGUF" + struct.pack("<I", 3), "truncated"),
])
def test_malformed_gguf(tmp_path, blob, match):
    p = tmp_path / "bad.gguf"
    p.write_bytes(blob)
    with pytest.raises(VramscopeError, match=match):
        resolve(str(p))


def test_truncated_gguf_data(tmp_path):
    path = tmp_path / "t.gguf"
    write_gguf(path)
    path.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(VramscopeError, match="truncated"):
        resolve(str(path))


@pytest.mark.parametrize("vocab", [4097, 32000])
def test_long_token_list_keeps_its_length(tmp_path, vocab):
    """Issue #11: a token list longer than KEEP_ARRAY (every real model) is kept as its length only."""
    from hostile_util import assert_clean, assert_sane_estimate, run_cli

    path = tmp_path / "m.gguf"
    write_gguf(path, vocab=vocab)
    r = resolve(str(path))
    assert r.spec.vocab_size == vocab
    for extra in ([], ["--engine", "llama.cpp"]):
        rc, out, err = run_cli(["estimate", str(path), "--json", *extra])
        assert_clean(rc, out, err)
        assert rc == 0, err
        import json
        assert_sane_estimate(json.loads(out))
