"""llama.cpp's KV layouts per architecture (engines/llamacpp_kv.py, read at ggml-org/llama.cpp 82bb48500) against
the buffers llama.cpp itself printed, and the architectures it has no code for (one line, exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import vramscope
from vramscope.engines import llamacpp_kv
from vramscope.sources import resolve

MIB = 2**20
ROOT = Path(__file__).resolve().parent.parent


def _kv(model: str, **kw) -> int:
    e = vramscope.estimate(model, engine="llama.cpp", quant="Q4_K_M", **kw)
    return e.engine["gpu"]["kv_buffer_bytes"] + e.engine["host"]["kv_buffer_bytes"]


def test_deepseek_v4_against_llamacpp_25468():
    """ggml-org/llama.cpp#25468 (DeepSeek-V4-Flash, --ctx-size 131072 --ubatch-size 512 --flash-attn on, f16, a
    build of 2026-07): 'SWA 32.25 MiB, CSA 672 MiB, HCA 20 MiB, lightning-indexer 168 MiB', the raw non-SWA cache
    0 layers; and #27680's compressor states (1.31 / 10.00 / 0.33 MiB: csa 8 × 1024, hca 128 × 512, lid 8 × 256,
    21 / 20 / 21 layers). The KV buffer vramscope counts is their sum."""
    kv = _kv("deepseek-ai/DeepSeek-V4-Flash", seq=131072, ubatch=512, flash_attn=True)
    states = 21 * 2 * 8 * 1024 * 4 + 20 * 2 * 128 * 512 * 4 + 21 * 2 * 8 * 256 * 4
    assert [round(x / MIB, 2) for x in (21 * 2 * 8 * 1024 * 4, 20 * 2 * 128 * 512 * 4, 21 * 2 * 8 * 256 * 4)] \
        == [1.31, 10.00, 0.33]
    assert kv == int((32.25 + 672 + 20 + 168) * MIB) + states


def test_deepseek_v4_raw_cache_against_llamacpp_27680():
    """ggml-org/llama.cpp#27680 (DeepSeek-V4-Flash, n_ctx_seq 64000, K bf16, 1/1 seqs): 'creating SWA KV cache,
    size = 4352 cells' and 'CUDA0 KV buffer size = 182.75 MiB' over 43 layers: n_swa 128 + an n_ubatch of 4096,
    padded to 256, keys only (512 wide)."""
    spec = resolve("deepseek-ai/DeepSeek-V4-Flash").spec
    assert llamacpp_kv.swa_cells(spec, 64000, 4096, 1) == 4352
    raw = sum(llamacpp_kv.dsv4_layer_bytes(spec, i, 64000, 4096, 2.0, 1)[0] for i in range(spec.num_layers))
    # the compressed caches beside it (printed on lines of their own)
    csa = 21 * 16128 * (512 + 128) * 2  # ceil(64000 / 4) = 16000 -> 16128 cells; K and the indexer's
    hca = 20 * 512 * 512 * 2  # ceil(64000 / 128) = 500 -> 512 cells
    assert raw - csa - hca == int(182.75 * MIB)


def test_mimo_v2_against_llamacpp_22493():
    """ggml-org/llama.cpp#22493 (MiMo-V2.5, the attention of V2-Flash: 9 full layers of 4 KV heads, 39 sliding of
    8; n_ctx 262144, 'SWA @ n_swa+pad' 4352 cells): 'size = 5760.00 MiB (262144 cells, 9 layers …), K (f16):
    3456.00 MiB, V (f16): 2304.00 MiB' and 'size = 828.75 MiB (4352 cells, 39 layers …)' (flash attention: V
    unpadded, 128-wide value heads)."""
    assert _kv("XiaomiMiMo/MiMo-V2-Flash", seq=262144, ubatch=4096, flash_attn=True) == int((5760 + 828.75) * MIB)
    spec = resolve("XiaomiMiMo/MiMo-V2-Flash").spec
    widths = llamacpp_kv.layer_widths(spec)
    assert sum(1 for k, _ in widths if k == 768) == 9 and 9 * 262144 * 768 * 2 == 3456 * MIB
    assert llamacpp_kv.n_swa(spec) == 128 and spec.sliding_window == 129  # transformers' +1, config.json's 128


def test_mimo_v2_without_flash_attention_pads_v():
    """Without flash attention the transposed V cache of every layer is the widest layer's (n_embd_v_gqa_max:
    8 heads × 128 = 1024), so the 9 full layers hold 1024 values, not 512 (llama-kv-cache.cpp
    [TAG_V_CACHE_VARIABLE])."""
    fa = _kv("XiaomiMiMo/MiMo-V2-Flash", seq=262144, ubatch=4096, flash_attn=True)
    no_fa = _kv("XiaomiMiMo/MiMo-V2-Flash", seq=262144, ubatch=4096, flash_attn=False)
    assert no_fa - fa == 9 * 262144 * (1024 - 512) * 2


def test_gemma4_shared_layers_and_v_padding():
    """Gemma 4 E2B (35 layers, 20 KV-shared): n_layer_kv_from_start = 15, so 12 sliding layers of 1 × 256 and 3
    full of 1 × 512 keep a cache, the shared ones none; sliding layers GGML_PAD(min(n_ctx, 512 + 512), 256) =
    1024 cells. Without flash attention the sliding layers' V is padded to 512."""
    spec = resolve("google/gemma-4-E2B-it").spec
    widths = llamacpp_kv.layer_widths(spec)
    assert sum(1 for k, _ in widths if not k) == 20
    fa = 12 * 1024 * (256 + 256) * 2 + 3 * 8192 * (512 + 512) * 2
    assert _kv("google/gemma-4-E2B-it", seq=8192, flash_attn=True) == fa
    assert _kv("google/gemma-4-E2B-it", seq=8192, flash_attn=False) == fa + 12 * 1024 * 256 * 2


def test_swa_cells_padded_and_per_sequence():
    """GGML_PAD(min(kv_size, n_swa × 1 + n_ubatch), 256) per stream, one stream per sequence without
    --kv-unified (kv_size = GGML_PAD(n_ctx / n_seq, 256)): Gemma 2 (n_swa 4096) at n_ctx 32768, 4 sequences: 4608
    cells each, 18432 in all (the 4608 of one sequence before)."""
    spec = resolve("gemma-2-9b").spec
    assert llamacpp_kv.swa_cells(spec, 32768, 512, 4) == 4 * 4608
    assert llamacpp_kv.swa_cells(spec, 32768, 300, 1) == 4608  # 4396 padded to 256
    assert llamacpp_kv.swa_cells(spec, 256, 512, 1) == 256  # never above the full cache


def test_context_cells_as_llama_context_pads_them():
    """llama_context: n_ctx = GGML_PAD(n_ctx, 256); unified one stream of n_ctx, else n_seq streams of
    GGML_PAD(n_ctx / n_seq, 256) (so -np 32 -c 4096 keeps 256 cells per sequence, 8192 in all)."""
    from vramscope.engines.llamacpp import llama_n_ctx
    from vramscope.workload import Workload

    assert llama_n_ctx(Workload(seq=5000)) == 5120
    assert llama_n_ctx(Workload(seq=5000, llamacpp_unpadded_ctx=True)) == 5000
    assert llamacpp_kv.context_cells(5120, 1) == (5120, 1)
    # through the engine: -c 5000 keeps 5120 cells per layer (Llama 3 8B: 32 layers x 1024 x 2 x f16)
    assert _kv("llama-3-8b", seq=5000) == 32 * 5120 * 2048 * 2
    assert _kv("llama-3-8b", seq=5000, llamacpp_unpadded_ctx=True) == 32 * 5000 * 2048 * 2
    assert llamacpp_kv.context_cells(4096, 32) == (256, 32)
    assert llamacpp_kv.context_cells(4096, 32, unified=True) == (4096, 1)
    assert llamacpp_kv.context_cells(32768, 3) == (11008, 3)  # 32768 / 3 = 10922 -> 11008


def test_kv_unified_and_swa_full_sliding_cells():
    """--kv-unified: one stream, its sliding layers GGML_PAD(min(n_ctx, n_swa × n_seq + n_ubatch), 256) cells
    (Gemma 2, n_swa 4096, 4 sequences, n_ctx 32768: 16384 + 512 -> 16896); --swa-full: kv_size per stream."""
    spec = resolve("gemma-2-9b").spec
    assert llamacpp_kv.swa_cells(spec, 32768, 512, 4, unified=True) == 16896
    assert llamacpp_kv.swa_cells(spec, 32768, 512, 1, unified=True) == 4608
    assert llamacpp_kv.swa_cells(spec, 8192, 512, 4, unified=True) == 8192  # capped at the one stream's n_ctx
    assert llamacpp_kv.swa_cells(spec, 32768, 512, 4, swa_full=True) == 32768
    assert llamacpp_kv.swa_cells(spec, 32768, 512, 1, unified=True, swa_full=True) == 32768
    # through the engine: the full layers are the same either way at one sequence; 21 sliding of 42 layers
    k = v = 8 * 256
    full, slid = 21 * 32768 * (k + v) * 2, 21 * 4608 * (k + v) * 2
    assert _kv("gemma-2-9b", seq=32768, flash_attn=True) == full + slid
    assert _kv("gemma-2-9b", seq=32768, flash_attn=True, swa_full=True) == 2 * full
    assert _kv("gemma-2-9b", seq=32768, flash_attn=True, n_parallel=4, kv_unified=True) == \
        full + 21 * 16896 * (k + v) * 2


def test_phi3_window_not_used():
    """phi3.cpp: 'Phi SWA is currently disabled' (swa_type NONE): Phi-3-mini's sliding_window 2047 leaves every
    layer at n_ctx cells, and the estimate says so."""
    e = vramscope.estimate("phi-3-mini", engine="llama.cpp", quant="Q4_K_M", seq=4096)
    spec = resolve("phi-3-mini").spec
    assert e.engine["gpu"]["kv_buffer_bytes"] == spec.num_layers * 4096 * 2 * spec.num_kv_heads * spec.head_dim * 2
    assert any("2047" in a and "phi3" in a for a in e.to_dict()["assumptions"])
    assert llamacpp_kv.llamacpp_arch(spec) == "phi3" and not llamacpp_kv.slides(spec)


def test_arch_table():
    """The converter's map (conversion/__init__.py and each class's model_arch) as copied from 82bb48500."""
    data = llamacpp_kv._archs()
    hf = data["hf_to_gguf"]
    assert (hf["MiMoV2FlashForCausalLM"], hf["Gemma4ForConditionalGeneration"], hf["DeepseekV4ForCausalLM"],
            hf["MistralForCausalLM"], hf["Phi3ForCausalLM"]) == ("mimo2", "gemma4", "deepseek4", "llama", "phi3")
    assert {"mimo2", "gemma4", "deepseek4"} <= set(data["llm_arch_names"]) & set(data["swa_archs"])
    assert set(hf.values()) <= set(data["llm_arch_names"]) and set(hf) <= set(data["convert_hf_to_gguf"])
    assert "xLSTMForCausalLM" not in data["convert_hf_to_gguf"] and "xlstm" not in data["llm_arch_names"]


def _cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vramscope", *argv], capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin", "HOME": "/tmp"})


#: a small xLSTM (transformers builds it on the meta device: no built-in reader), as tests/test_state_cache.py's
XLSTM = {"model_type": "xlstm", "vocab_size": 128, "hidden_size": 256, "num_heads": 2, "num_blocks": 3,
         "num_hidden_layers": 3, "chunk_size": 16, "qk_dim_factor": 0.5, "v_dim_factor": 1.0, "pad_token_id": 0,
         "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "bfloat16"}


@pytest.mark.parametrize("cfg, arch, lang, words", [
    (XLSTM, "xlstm (xLSTMLayer)", "en", "has no architecture"),
    (dict(XLSTM, architectures=["xLSTMForCausalLM"]), "xLSTMForCausalLM", "zh", "没有")])
def test_unsupported_architecture_one_line(cfg, arch, lang, words, tmp_path):
    """xLSTM: not in llama-arch.cpp nor the converter: one line naming it and the llama.cpp version, exit 2 (a
    config without ``architectures`` by its mixer, one with them by the converter's map)."""
    import contextlib
    import io

    from vramscope.cli import main

    (tmp_path / "config.json").write_text(json.dumps(cfg))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["estimate", str(tmp_path), "--engine", "llama.cpp", "--lang", lang])
    line = err.getvalue().strip()
    assert rc == 2 and out.getvalue() == "", (rc, out.getvalue(), line)
    assert "\n" not in line and arch in line and "82bb48500" in line and words in line, line
    assert "Traceback" not in line


def test_unknown_gguf_architecture(tmp_path):
    """A GGUF whose general.architecture llama.cpp does not know ('unknown model architecture'): one line."""
    from tests.test_hostile_gguf import STR, gemma2_base

    g = gemma2_base()
    g = type(g)([(k.replace("gemma2.", "gemma7."), t, "gemma7" if k == "general.architecture" else v)
                 for k, t, v in g.kv], g.tensors)
    path = g.write(tmp_path / "m.gguf")
    assert STR
    r = _cli("estimate", str(path), "--engine", "llama.cpp")
    assert r.returncode == 2 and "gemma7" in r.stderr and "LLM_ARCH_NAMES" in r.stderr, r
    assert len(r.stderr.strip().splitlines()) == 1
    ok = _cli("estimate", str(gemma2_base().write(tmp_path / "g.gguf")), "--engine", "llama.cpp")
    assert ok.returncode in (0, 1), ok


def test_supported_models_not_refused():
    for m in ("llama-3-8b", "XiaomiMiMo/MiMo-V2-Flash", "google/gemma-4-31B-it", "deepseek-ai/DeepSeek-V4-Flash"):
        assert llamacpp_kv.unsupported(resolve(m)) is None, m


def _gemma4_gguf(tmp_path: Path, shared: int) -> Path:
    """A two-layer Gemma 4 GGUF as conversion/gemma.py writes one: a sliding layer of 2 KV heads × 128
    (key/value_length_swa), a full one of 2 × 256 (key/value_length, head_count_kv per layer), window 512,
    ``attention.shared_kv_layers``."""
    from tests.test_hostile_gguf import ARR, STR, U32, gemma2_base

    BOOL = 7
    g = gemma2_base()
    kv = [(k.replace("gemma2.", "gemma4."), t, "gemma4" if k == "general.architecture" else v) for k, t, v in g.kv
          if not k.endswith(("attention.head_count_kv", "attention.key_length", "attention.value_length",
                             "attention.sliding_window"))]
    kv += [("gemma4.attention.head_count_kv", ARR, (U32, [2, 2])), ("gemma4.attention.key_length", U32, 256),
           ("gemma4.attention.value_length", U32, 256), ("gemma4.attention.key_length_swa", U32, 128),
           ("gemma4.attention.value_length_swa", U32, 128), ("gemma4.attention.sliding_window", U32, 512),
           ("gemma4.attention.sliding_window_pattern", ARR, (BOOL, [True, False])),
           ("gemma4.attention.shared_kv_layers", U32, shared)]
    g = type(g)(kv, g.tensors)
    for i, (name, ne, t, o) in enumerate(g.tensors):
        if name == "blk.1.attn_q.weight":
            g = g.with_tensor(i, ne=(ne[0], 4 * 256))
        elif name == "blk.1.attn_output.weight":
            g = g.with_tensor(i, ne=(4 * 256, ne[1]))
        elif name in ("blk.1.attn_k.weight", "blk.1.attn_v.weight"):
            g = g.with_tensor(i, ne=(ne[0], 2 * 256))
    assert STR
    return g.write(tmp_path / f"g4-{shared}.gguf")


@pytest.mark.parametrize("shared", [0, 1])
def test_gemma4_gguf_per_layer(shared, tmp_path):
    """From the file: the sliding layer keeps 2 × 128 keys and values in GGML_PAD(min(4096, 512 + 512), 256) =
    1024 cells, the full layer 2 × 256 in 4096; a shared layer (the last shared_kv_layers) none. Without flash
    attention the sliding layer's V is padded to the widest (512)."""
    path = str(_gemma4_gguf(tmp_path, shared))
    spec = resolve(path).spec
    assert spec.layer_kv == ((2, 128), (2, 256) if not shared else (0, 0))
    full = 0 if shared else 4096 * (512 + 512) * 2
    e = vramscope.estimate(path, engine="llama.cpp", seq=4096, flash_attn=True)
    assert e.engine["gpu"]["kv_buffer_bytes"] == 1024 * (256 + 256) * 2 + full
    if not shared:  # (with the only full layer shared, llama.cpp still pads to its 512: not modelled)
        e = vramscope.estimate(path, engine="llama.cpp", seq=4096, flash_attn=False)
        assert e.engine["gpu"]["kv_buffer_bytes"] == 1024 * (256 + 512) * 2 + full


def _mimo2_gguf(tmp_path: Path) -> Path:
    """A two-layer MiMo-V2-Flash GGUF as conversion/mimo.py writes one (82bb48500): ``head_count_kv`` per layer (8 on
    the sliding layer, ``swa_num_key_value_heads``; 4 on the full one), keys of 192 and values of 128
    (``key_length`` / ``value_length``, every layer), window 128, ``sliding_window_pattern``."""
    from tests.test_hostile_gguf import ARR, U32, gemma2_base

    BOOL = 7
    g = gemma2_base()
    kv = [(k.replace("gemma2.", "mimo2."), t, "mimo2" if k == "general.architecture" else v) for k, t, v in g.kv
          if not k.endswith(("attention.head_count_kv", "attention.key_length", "attention.value_length",
                             "attention.sliding_window", "softcapping", "rope.dimension_count"))]
    kv += [("mimo2.attention.head_count", U32, 8), ("mimo2.attention.head_count_kv", ARR, (U32, [8, 4])),
           ("mimo2.attention.key_length", U32, 192), ("mimo2.attention.value_length", U32, 128),
           ("mimo2.rope.dimension_count", U32, 64), ("mimo2.attention.sliding_window", U32, 128),
           ("mimo2.attention.sliding_window_pattern", ARR, (BOOL, [True, False]))]
    kv = [x for x in kv if x[0] != "mimo2.attention.head_count" or x[2] == 8]
    g = type(g)(kv, g.tensors)
    rows = {0: 8, 1: 4}
    for i, (name, ne, t, o) in enumerate(g.tensors):
        layer = int(name.split(".")[1]) if name.startswith("blk.") else None
        if name.endswith("attn_q.weight"):
            g = g.with_tensor(i, ne=(ne[0], 8 * 192))
        elif name.endswith("attn_output.weight"):
            g = g.with_tensor(i, ne=(8 * 128, ne[1]))
        elif name.endswith("attn_k.weight"):
            g = g.with_tensor(i, ne=(ne[0], rows[layer] * 192))
        elif name.endswith("attn_v.weight"):
            g = g.with_tensor(i, ne=(ne[0], rows[layer] * 128))
    return g.write(tmp_path / "mimo2.gguf")


def test_mimo2_gguf_keys_and_values_of_their_own_sizes(tmp_path):
    """From the file, as from MiMo's config: the sliding layer keeps 8 × 192 keys and 8 × 128 values in
    GGML_PAD(min(4096, 128 + 512), 256) = 768 cells, the full layer 4 × 192 and 4 × 128 in 4096 (the reader had
    kept one width, 192 for values too, and the widest layer's heads in both). Without flash attention the full
    layer's V is padded to the widest (8 × 128)."""
    path = str(_mimo2_gguf(tmp_path))
    spec = resolve(path).spec
    assert spec.kv_values_per_layer == (8 * 320, 4 * 320) and spec.num_kv_heads == 4
    assert llamacpp_kv.layer_widths(spec) == [(8 * 192, 8 * 128), (4 * 192, 4 * 128)]
    e = vramscope.estimate(path, engine="llama.cpp", seq=4096, flash_attn=True)
    assert e.engine["gpu"]["kv_buffer_bytes"] == 768 * 8 * 320 * 2 + 4096 * 4 * 320 * 2
    e = vramscope.estimate(path, engine="llama.cpp", seq=4096, flash_attn=False)
    assert e.engine["gpu"]["kv_buffer_bytes"] == 768 * 8 * 320 * 2 + 4096 * (4 * 192 + 8 * 128) * 2


def test_llama_server_logits_rows_and_auto_sequences():
    """llama-server (llama.cpp#23861): the reserved graph's logits have n_outputs_max = n_parallel rows, not
    n_ubatch; with -np left at auto, 4 sequences over a unified cache. Llama-3-8B at n_ctx 2048, ubatch 512, no
    flash attention: llama-cli's GPU compute buffer is its logits (128256 x 512 f32 + the 4096-wide rows), under
    llama-server the attention scores (2048 x 512 x 33 heads f32 + four 4096 x 512 activations) peak instead."""
    from vramscope.engines.llamacpp import llama_outputs, llama_sequences
    from vramscope.workload import Workload

    assert llama_sequences(Workload(llama_server=True)) == (4, True)
    assert llama_sequences(Workload(llama_server=True, n_parallel=2)) == (2, False)
    assert llama_sequences(Workload()) == (1, False) and llama_outputs(Workload()) is None
    assert llama_outputs(Workload(llama_server=True)) == 4
    kw = dict(engine="llama.cpp", quant="Q4_K_M", seq=2048, ubatch=512, flash_attn=False)
    cli = vramscope.estimate("llama-3-8b", **kw).engine["gpu"]["compute_buffer_bytes"]
    srv = vramscope.estimate("llama-3-8b", llama_server=True, **kw).engine["gpu"]["compute_buffer_bytes"]
    assert cli == 128256 * 512 * 4 + 4096 * 512 * 4
    assert srv == 2048 * 512 * 33 * 4 + 4 * 4096 * 512 * 4
    # its KV: 4 sequences unified keep the same 2048 cells as one (no sliding layers)
    kv = vramscope.estimate("llama-3-8b", llama_server=True, **kw).engine["gpu"]["kv_buffer_bytes"]
    assert kv == 32 * 2048 * 2048 * 2


def _flash_config() -> dict:
    """The catalog's copy of DeepSeek-V4-Flash's config.json."""
    with (ROOT / "src" / "vramscope" / "data" / "models" / "deepseek.json").open(encoding="utf-8") as f:
        return dict(next(e for e in json.load(f) if e["id"] == "deepseek-ai/DeepSeek-V4-Flash")["config"])


def _dsv4_config(tmp_path: Path) -> Path:
    """DeepSeek-V4-Flash's config.json at the shapes of ``deepseek4_base`` (tests/test_hostile_gguf.py): 5
    layers of compress_ratios 0, 4, 128, 4, 0 (+ the MTP entry), head_dim 64, index_head_dim 32, window 128."""
    from tests.test_hostile_gguf import DSV4_RATIOS, VOCAB

    c = _flash_config()
    c.pop("quantization_config")
    c.update(hidden_size=256, num_attention_heads=4, head_dim=64, qk_rope_head_dim=16, q_lora_rank=64, o_groups=2,
             o_lora_rank=32, index_n_heads=4, index_head_dim=32, n_routed_experts=4, num_experts_per_tok=2,
             moe_intermediate_size=128, num_hidden_layers=5, compress_ratios=list(DSV4_RATIOS), vocab_size=VOCAB,
             num_hash_layers=1)
    (tmp_path / "hf").mkdir()
    path = tmp_path / "hf" / "config.json"
    path.write_text(json.dumps(c), encoding="utf-8")
    return path


def test_deepseek4_gguf_layout_as_from_its_config(tmp_path):
    """A DeepSeek-V4 GGUF as the converter writes it (``deepseek4_base``: compress_ratios, indexer.key_length,
    sliding_window; the compressor and indexer tensors): its compressors per layer equal those transformers builds
    from the same config.json on the meta device (CSA layers 1 and 3 with the indexer, HCA layer 2, 0 and 4
    plain), and llama.cpp's KV buffer, layer by layer, equals the config's at every context and sequence count
    (the reader had read no compress_ratios: a uniform 64-wide sliding cache, 5 × 768 × 64 × 2 bytes at 4096)."""
    from tests.test_hostile_gguf import deepseek4_base

    gguf_path = str(deepseek4_base().write(tmp_path / "ds4.gguf"))
    hf_path = str(_dsv4_config(tmp_path))
    g, hf = resolve(gguf_path).spec, resolve(hf_path).spec
    assert g.compressed == hf.compressed
    assert [c[0][0] if c else 0 for c in g.compressed.compressors] == [0, 4, 128, 4, 0]
    assert g.compressed.compressors[1] == ((4, 64, 128), (4, 32, 64))
    assert g.compressed.compressors[2] == ((128, 64, 64),)
    assert (g.head_dim, g.num_kv_heads, g.sliding_window, g.num_layers) == (64, 1, 128, 5) \
        == (hf.head_dim, hf.num_kv_heads, hf.sliding_window, hf.num_layers)
    assert llamacpp_kv.layout_shown(g) == llamacpp_kv.layout_shown(hf) \
        == "deepseek4: K 64, n_swa 128 (all 5), CSA 2, HCA 1"
    for n_ctx, ub, n_seq in ((4096, 512, 1), (131072, 512, 1), (65536, 4096, 3), (256, 2048, 2)):
        assert [llamacpp_kv.dsv4_layer_bytes(g, i, n_ctx, ub, 2.0, n_seq) for i in range(5)] \
            == [llamacpp_kv.dsv4_layer_bytes(hf, i, n_ctx, ub, 2.0, n_seq) for i in range(5)]
    for kw in (dict(seq=4096), dict(seq=131072, ubatch=512), dict(seq=8192, n_parallel=3),
               dict(seq=16384, llama_server=True), dict(seq=4096, kv_dtype="q8_0")):
        a = vramscope.estimate(gguf_path, engine="llama.cpp", **kw).engine
        b = vramscope.estimate(hf_path, engine="llama.cpp", **kw).engine
        assert a["gpu"]["kv_buffer_bytes"] == b["gpu"]["kv_buffer_bytes"], kw
    # at 4096 (one sequence, ubatch 512): raw 768 cells × 64 in every layer; CSA 1024 cells of 64 + 32, HCA 256
    # cells of 64; f32 states: CSA 2 × (2·64 × 8 + 2·32 × 8), HCA 2 × 64 × 128
    kv = vramscope.estimate(gguf_path, engine="llama.cpp", seq=4096).engine["gpu"]["kv_buffer_bytes"]
    assert kv == (5 * 768 * 64 + 2 * 1024 * (64 + 32) + 256 * 64) * 2 \
        + (2 * 2 * (128 * 8 + 64 * 8) + 2 * 64 * 128) * 4


def test_deepseek4_gguf_flash_against_llamacpp_25468(tmp_path):
    """A GGUF of DeepSeek-V4-Flash's attention shapes (43 layers, compress_ratios as its config.json writes them,
    44 entries; head_dim 512, index_head_dim 128, window 128): llama.cpp#25468's buffers at --ctx-size 131072
    --ubatch-size 512, 'SWA 32.25 MiB, CSA 672 MiB, HCA 20 MiB, lightning-indexer 168 MiB' plus #27680's
    compressor states, as test_deepseek_v4_against_llamacpp_25468 gets them from the config."""
    from tests.test_hostile_gguf import deepseek4_base

    ratios = tuple(_flash_config()["compress_ratios"])
    assert len(ratios) == 44
    path = str(deepseek4_base(ratios, head=512, indexer=128).write(tmp_path / "flash.gguf"))
    spec = resolve(path).spec
    assert llamacpp_kv.layout_shown(spec) == "deepseek4: K 512, n_swa 128 (all 43), CSA 21, HCA 20"
    e = vramscope.estimate(path, engine="llama.cpp", seq=131072, ubatch=512, flash_attn=True)
    states = 21 * 2 * 8 * 1024 * 4 + 20 * 2 * 128 * 512 * 4 + 21 * 2 * 8 * 256 * 4
    kv = e.engine["gpu"]["kv_buffer_bytes"] + e.engine["host"]["kv_buffer_bytes"]
    assert kv == int((32.25 + 672 + 20 + 168) * MIB) + states == _kv("deepseek-ai/DeepSeek-V4-Flash", seq=131072,
                                                                    ubatch=512, flash_attn=True)
