"""GGUF files written with the gguf package: exact per-tensor bytes, metadata to spec, bounded parsing."""

import os
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


# ---- realistic files: real vocabularies, tensor names, shapes and quant mixes (tests/gguf_real.py) ------------
# Every number vramscope derives is checked against the file as gguf-py's GGUFReader reads it, never against
# vramscope's own output.

import gguf_real  # noqa: E402


@pytest.fixture(scope="session")
def real_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("gguf_real")
    if not gguf_real.sparse_files_work(d):  # the fixtures' data sections are 0.7-6 GB holes
        pytest.skip("the temporary folder's filesystem does not keep sparse files")
    return d


@pytest.fixture(scope="session", params=list(gguf_real.MODELS))
def real(request, real_dir):
    """(path, reference read by gguf-py, vramscope's resolved model) for one realistic fixture, once a session."""
    model = gguf_real.MODELS[request.param]()
    path = gguf_real.write(model, real_dir / f"{model.name}.gguf")
    return path, gguf_real.reference(path), resolve(str(path))


def _layer(name):
    return int(name.split(".")[1]) if name.startswith("blk.") else None


def _expected(ref):
    """What the file says, with each number also read off the tensors that carry it."""
    a, T = ref.arch_key, ref.tensors
    emb = T["token_embd.weight"]["ne"]
    layers = 1 + max(i for i in map(_layer, T) if i is not None)
    heads = a("attention.head_count")
    mla = a("attention.kv_lora_rank") is not None
    mla_new = a("attention.key_length_mla") is not None
    e = dict(
        num_layers=a("block_count"), hidden_size=a("embedding_length"), num_heads=heads,
        num_kv_heads=heads if mla_new else a("attention.head_count_kv", heads),
        head_dim=a("attention.key_length_mla") or a("attention.key_length") or a("embedding_length") // heads,
        vocab_size=ref.get("tokenizer.ggml.tokens")[1], max_position_embeddings=a("context_length"),
        tie_embeddings="output.weight" not in T, sliding_window=a("attention.sliding_window"),
        intermediate_size=a("feed_forward_length"),
    )
    assert e["num_layers"] == layers and e["hidden_size"] == emb[0] and e["vocab_size"] == emb[1]
    dense = [i for i in range(layers) if f"blk.{i}.ffn_up.weight" in T]
    for i in dense:
        assert T[f"blk.{i}.ffn_up.weight"]["ne"][1] == e["intermediate_size"]
    if not mla:
        for i in range(layers):
            assert T[f"blk.{i}.attn_k.weight"]["ne"][1] == e["num_kv_heads"] * e["head_dim"]
            assert T[f"blk.{i}.attn_q.weight"]["ne"][1] == heads * e["head_dim"]
    n_exp = a("expert_count")
    if n_exp:
        gate = T["blk.1.ffn_gate_exps.weight"]["ne"]
        eff = a("expert_feed_forward_length") or a("feed_forward_length")
        assert gate[2] == n_exp and gate[1] == eff
        shared = a("expert_shared_count", 0) * eff
        if shared:
            assert T["blk.1.ffn_gate_shexp.weight"]["ne"][1] == shared
        e["moe"] = dict(num_experts=n_exp, experts_per_token=a("expert_used_count"), expert_intermediate_size=eff,
                        shared_intermediate_size=shared, dense_layers=tuple(dense))
        assert tuple(dense) == tuple(range(a("leading_dense_block_count", 0)))
    if mla:
        rope = a("rope.dimension_count")
        kv_a = T["blk.0.attn_kv_a_mqa.weight"]["ne"][1]
        assert kv_a == a("attention.kv_lora_rank") + rope
        q_lora = a("attention.q_lora_rank")
        if q_lora:
            assert T["blk.0.attn_q_a.weight"]["ne"][1] == q_lora
        v = a("attention.value_length_mla") or a("attention.value_length")
        if mla_new:
            assert T["blk.0.attn_v_b.weight"]["ne"][1:] == (v, heads)
            assert T["blk.0.attn_k_b.weight"]["ne"] == (e["head_dim"] - rope, a("attention.kv_lora_rank"), heads)
        else:
            assert T["blk.0.attn_kv_b.weight"]["ne"][1] == heads * (e["head_dim"] - rope + v)
        e["mla"] = dict(q_lora_rank=q_lora, kv_lora_rank=a("attention.kv_lora_rank"),
                        qk_nope_head_dim=e["head_dim"] - rope, qk_rope_head_dim=rope, v_head_dim=v)
    return e


def test_real_fixture_is_what_it_claims(real):
    """The fixture itself: real vocabulary, file length and tensor types as llama.cpp would write them."""
    path, ref, _ = real
    model = gguf_real.MODELS[path.stem]()
    assert ref.get("tokenizer.ggml.tokens") == ("array", model.vocab)
    assert ref.get("tokenizer.ggml.token_type") == ("array", model.vocab)
    if model.tokenizer == "gpt2":
        assert ref.get("tokenizer.ggml.merges") == ("array", model.merges)
    else:
        assert ref.get("tokenizer.ggml.scores") == ("array", model.vocab)
    assert ref.get("general.architecture") == model.arch and ref.get("general.file_type") == model.file_type
    assert set(ref.tensors) <= gguf_real.llama_cpp_names(model.arch, model.layers)  # names llama.cpp loads
    last = max(ref.tensors.values(), key=lambda t: t["data_offset"])
    assert ref.size == last["data_offset"] + (last["n_bytes"] + 31) // 32 * 32  # the whole data section
    assert {t["type"] for t in ref.tensors.values()} >= {"F32"}
    assert os.stat(path).st_blocks * 512 < 50e6  # sparse: the data section takes no disk space


def test_real_tensors_bytes_and_params(real):
    path, ref, r = real
    stored = {t.name: t for t in r.stored}
    assert set(stored) == set(ref.tensors)
    for name, t in ref.tensors.items():
        s = stored[name]
        assert (s.shape, s.dtype, s.nbytes, s.params) == (t["ne"], t["type"], t["n_bytes"], t["n_elements"]), name
    assert r.params == sum(t["n_elements"] for t in ref.tensors.values())
    assert r.stored_bytes == sum(t["n_bytes"] for t in ref.tensors.values())
    n_exp, used = ref.arch_key("expert_count"), ref.arch_key("expert_used_count")
    skipped = sum(t["n_elements"] * (n_exp - used) // n_exp for n, t in ref.tensors.items() if "_exps." in n) \
        if n_exp else 0
    assert r.active_params == r.params - skipped
    ftype = gguf.LlamaFileType(ref.get("general.file_type")).name.removeprefix("MOSTLY_")
    assert r.stored_format == f"gguf {ftype}"
    assert r.spec.name == ref.get("general.name")


def test_real_spec(real):
    path, ref, r = real
    s, e = r.spec, _expected(ref)
    for key in ("num_layers", "hidden_size", "num_heads", "num_kv_heads", "head_dim", "vocab_size",
                "max_position_embeddings", "tie_embeddings", "sliding_window", "intermediate_size"):
        assert getattr(s, key) == e[key], key
    if "moe" in e:
        for key, value in e["moe"].items():
            assert getattr(s.moe, key) == value, key
    else:
        assert s.moe is None
    if "mla" in e:
        for key, value in e["mla"].items():
            assert getattr(s.mla, key) == value, key
    else:
        assert s.mla is None
    if ref.get("general.architecture") == "gemma2":  # llama.cpp: sliding on even layers (set_swa_pattern(2))
        assert s.layer_types == tuple("sliding_attention" if i % 2 == 0 else "full_attention"
                                      for i in range(e["num_layers"]))
        assert s.attn_softcap == (ref.arch_key("attn_logit_softcapping") > 0)
        assert s.logit_softcap == (ref.arch_key("final_logit_softcapping") > 0)
    assert s.qkv_bias == ("blk.0.attn_q.bias" in ref.tensors)


def _llamacpp_kv(ref, n_ctx, n_ubatch=512):
    """llama.cpp's KV buffer (f16) from the file's keys: n_embd_k_gqa = key_length × head_count_kv per cell.

    A DeepSeek GGUF with the *_mla keys is MLA (hparams.is_mla()): no V cache at all (llama-kv-cache.cpp,
    has_v = !is_mla, since llama.cpp #19067); one without them runs as plain MHA with the same formula."""
    a = ref.arch_key
    heads = a("attention.head_count")
    kv = a("attention.head_count_kv", heads)
    k = a("attention.key_length", a("embedding_length") // heads) * kv
    v = a("attention.value_length", a("attention.key_length", a("embedding_length") // heads)) * kv
    if a("attention.key_length_mla") is not None:
        v = 0
    window = a("attention.sliding_window")
    n_ctx = -(-n_ctx // 256) * 256  # llama_context pads n_ctx to 256 (src/llama-context.cpp, #17046)
    total = 0
    for i in range(a("block_count")):
        cells = n_ctx
        if window and ref.get("general.architecture") == "gemma2" and i % 2 == 0:
            cells = min(n_ctx, -(-(window + n_ubatch) // 256) * 256)
        total += cells * (k + v) * 2
    return total


@pytest.mark.parametrize("n_ctx", [4096, 8192])
def test_real_kv_cache(real, n_ctx):
    """KV cache bytes from the file's own head counts and sizes, for transformers and for llama.cpp."""
    import vramscope

    path, ref, r = real
    e = _expected(ref)
    est = vramscope.estimate(str(path), seq=n_ctx)
    per_token = 0
    for i in range(e["num_layers"]):
        if "mla" in e:  # transformers (5.15+, the version the tests pin) caches MLA's latent
            per_token += e["mla"]["kv_lora_rank"] + e["mla"]["qk_rope_head_dim"]
        else:
            per_token += 2 * e["num_kv_heads"] * e["head_dim"]
    assert est.components["kv_cache"] == n_ctx * per_token * 2  # bf16
    ll = vramscope.estimate(str(path), seq=n_ctx, engine="llama.cpp").to_dict()["engine"]
    assert ll["gpu"]["kv_buffer_bytes"] + ll["host"]["kv_buffer_bytes"] == _llamacpp_kv(ref, n_ctx)


def test_real_llamacpp_model_buffers(real):
    """-ngl all: the token embedding stays in host memory, every other tensor goes to the GPU; without an
    output.weight llama.cpp loads token_embd a second time as the output layer (TENSOR_DUPLICATED), on the GPU."""
    import vramscope

    path, ref, r = real
    ll = vramscope.estimate(str(path), engine="llama.cpp").to_dict()["engine"]
    emb = ref.tensors["token_embd.weight"]["n_bytes"]
    total = sum(t["n_bytes"] for t in ref.tensors.values())
    gpu = total - emb + (emb if "output.weight" not in ref.tensors else 0)
    assert (ll["gpu"]["model_buffer_bytes"], ll["host"]["model_buffer_bytes"]) == (gpu, emb)


def test_real_llamacpp_ngl_placement(real):
    """-ngl N (llama.cpp load_tensors, since #18148): layers il >= n_layer + 1 - N on the GPU, the output layer
    (il = n_layer) first; a tied embedding's output copy goes with the output layer, the input copy stays in host
    memory; rope_freqs (one tensor, TENSOR_DUPLICATED per layer) sits on every device that holds a layer."""
    import vramscope

    path, ref, _ = real
    n_layer, tied = ref.arch_key("block_count"), "output.weight" not in ref.tensors
    emb = ref.tensors["token_embd.weight"]["n_bytes"]
    per_cell = _llamacpp_kv(ref, 1) // n_layer  # n_ctx 1 keeps 256 cells (padded), no window below that
    for ngl in (0, 1, 2, n_layer, n_layer + 1):
        first, out = n_layer + 1 - ngl, ngl >= 1
        gpu, host = (emb if tied and out else 0), emb
        for name, t in ref.tensors.items():
            layer = _layer(name)
            if name == "token_embd.weight":
                continue
            if name == "rope_freqs.weight":
                gpu += t["n_bytes"] if first < n_layer else 0
                host += t["n_bytes"] if first > 0 else 0
            elif (layer is None and out) or (layer is not None and layer >= first):
                gpu += t["n_bytes"]
            else:
                host += t["n_bytes"]
        ll = vramscope.estimate(str(path), engine="llama.cpp", seq=1, n_gpu_layers=ngl).to_dict()["engine"]
        assert (ll["gpu"]["model_buffer_bytes"], ll["host"]["model_buffer_bytes"]) == (gpu, host), ngl
        assert (ll["n_gpu_layers"], ll["output_on_gpu"]) == (n_layer - min(first, n_layer), out), ngl
        assert ll["gpu"]["kv_buffer_bytes"] == per_cell * (n_layer - min(first, n_layer)), ngl
        assert ll["host"]["kv_buffer_bytes"] == per_cell * min(first, n_layer), ngl
    if tied:  # -ngl 1: the output layer alone, i.e. output_norm and the second copy of token_embd
        ll = vramscope.estimate(str(path), engine="llama.cpp", n_gpu_layers=1).to_dict()["engine"]
        assert ll["gpu"]["model_buffer_bytes"] == emb + ref.tensors["output_norm.weight"]["n_bytes"]


@pytest.mark.timeout(120)
def test_real_cli_answers(real):
    import json

    from hostile_util import assert_clean, assert_sane_estimate, run_cli

    path, _, _ = real
    for extra in ([], ["--engine", "llama.cpp"]):
        rc, out, err = run_cli(["estimate", str(path), "--json", *extra])
        assert_clean(rc, out, err, extra)
        assert rc == 0, err
        assert_sane_estimate(json.loads(out))


def test_ref_reader_and_writer_match_gguf_py(tmp_path):
    """The two speed-ups of tests/gguf_real.py change no byte and no offset."""
    path = tmp_path / "m.gguf"
    write_gguf(path, vocab=3000)  # token list longer than gguf_real.BULK
    stock, fast = gguf.GGUFReader(str(path)), gguf_real.RefReader(str(path))
    assert [(f.name, f.offset, f.types) for f in stock.fields.values()] == \
        [(f.name, f.offset, f.types) for f in fast.fields.values()]
    assert [(t.name, t.tensor_type, list(t.shape), t.n_bytes, t.data_offset) for t in stock.tensors] == \
        [(t.name, t.tensor_type, list(t.shape), t.n_bytes, t.data_offset) for t in fast.tensors]
    model = gguf_real.llama2_7b()
    a = gguf_real.write(model, tmp_path / "a.gguf", writer=gguf.GGUFWriter)
    b = gguf_real.write(gguf_real.llama2_7b(), tmp_path / "b.gguf")
    n = gguf_real.reference(a).data_offset
    with open(a, "rb") as fa, open(b, "rb") as fb:
        assert fa.read(n) == fb.read(n)
    assert os.path.getsize(a) == os.path.getsize(b)
