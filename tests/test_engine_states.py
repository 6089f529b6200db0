"""llama.cpp's and Ollama's state caches of recurrent / hybrid models (issue #13), against a published llama.cpp
log and the engines' own formulas.

The log (JamePeng/llama-cpp-python#78, llama.cpp loading Qwen3.5-9B, one sequence) prints the model's SSM
hyper-parameters (``ssm_d_conv = 4``, ``ssm_d_inner = 4096``, ``ssm_d_state = 128``, ``ssm_n_group = 16``), every
fourth of its 32 layers ``skipped`` by the recurrent memory, and::

    llama_memory_recurrent:      CUDA0 RS buffer size =    50.25 MiB
    llama_memory_recurrent: size =   50.25 MiB (     1 cells,  32 layers,  1 seqs), R (f32):    2.25 MiB, S (f32):   48.00 MiB

The transformers config below has those shapes (``linear_num_value_heads × linear_value_head_dim`` = d_inner,
``linear_num_key_heads`` = n_group, ``linear_key_head_dim`` = d_state, ``linear_conv_kernel_dim`` = d_conv,
``full_attention_interval`` 4); its other sizes are kept small (they do not enter the states).
"""

import pytest

import vramscope
from conftest import requires_torch
from vramscope.engines.llamacpp import RS_BYTES, layer_cache_bytes
from vramscope.sources.hf_config import spec_from_config


MiB = 2**20
QWEN35_9B_STATES = {"model_type": "qwen3_5_text", "num_hidden_layers": 32, "full_attention_interval": 4,
                    "linear_num_value_heads": 32, "linear_value_head_dim": 128, "linear_num_key_heads": 16,
                    "linear_key_head_dim": 128, "linear_conv_kernel_dim": 4, "hidden_size": 256,
                    "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 64, "intermediate_size": 256,
                    "vocab_size": 1024, "torch_dtype": "bfloat16"}


@pytest.fixture(scope="module")
def qwen35():
    return spec_from_config(QWEN35_9B_STATES, "qwen3.5-9b-states")


@requires_torch
@pytest.mark.trace
def test_llamacpp_rs_buffer_equals_the_published_log(qwen35):
    st = qwen35.state
    rec = [i for i, k in enumerate(st.kinds) if k == "state"]
    assert len(rec) == 24 and [i for i in range(32) if i not in rec] == [3, 7, 11, 15, 19, 23, 27, 31]
    per = [layer_cache_bytes(qwen35, i, 4096, 512, 64, 64, 2.0, 2.0, 1) for i in range(32)]
    r = sum(st.engine_conv_values(i) for i in rec) * RS_BYTES
    s = sum(st.recurrent_values[i] for i in rec) * RS_BYTES
    assert (r / MiB, s / MiB) == (2.25, 48.00)  # R (f32): 2.25 MiB, S (f32): 48.00 MiB
    assert sum(rs for _, rs in per) / MiB == 50.25  # CUDA0 RS buffer size = 50.25 MiB
    assert all(kv == 0 for i, (kv, _) in enumerate(per) if i in rec)  # no keys and values in recurrent layers
    assert all(kv == 4096 * 2 * 64 * 2 and rs == 0 for i, (kv, rs) in enumerate(per) if i not in rec)
    # mem_size = max(1, n_seq_max): four sequences, four times the states; the KV cache does not change
    four = [layer_cache_bytes(qwen35, i, 4096, 512, 64, 64, 2.0, 2.0, 4) for i in range(32)]
    assert sum(rs for _, rs in four) == 4 * sum(rs for _, rs in per)
    assert [kv for kv, _ in four] == [kv for kv, _ in per]


@requires_torch
@pytest.mark.trace
def test_llamacpp_and_ollama_estimates_count_the_states(qwen35, tmp_path):
    import json

    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({**QWEN35_9B_STATES, "architectures": ["Qwen3_5ForCausalLM"]}))
    e = vramscope.estimate(str(cfg), engine="llama.cpp", gpus=["rtx-4090"], seq=4096, n_parallel=2)
    g = e.engine["gpu"]
    assert g["rs_buffer_bytes"] == 2 * int(50.25 * MiB)
    assert g["kv_buffer_bytes"] == g["rs_buffer_bytes"] + 8 * 4096 * 2 * 64 * 2
    assert any(n.key == "a_llamacpp_recurrent" for n in e.assumptions)
    # Ollama's GraphSize (v0.11.11+): one sequence's (n_embd_r + n_embd_s) × 4 bytes in each layer without heads
    o = vramscope.estimate(str(cfg), engine="ollama", gpus=["rtx-4090"], seq=4096, num_parallel=2,
                           ollama_version="0.24.0")
    assert o.engine["kv_bytes"] == int(50.25 * MiB) + 8 * 2 * 4096 * 2 * 64 * 2
    assert any(n.key == "a_ollama_recurrent" for n in o.assumptions)
    old = vramscope.estimate(str(cfg), engine="ollama", gpus=["rtx-4090"], seq=4096, ollama_version="0.11.10")
    assert old.engine["kv_bytes"] == 32 * 4096 * 2 * 64 * 2  # before #12186: every layer counted as attention


def _write_qwen35_gguf(path, n_layers=32, nextn=0, interval=None):
    """A GGUF with the metadata of the published Qwen3.5-9B log's SSM (``qwen35.ssm.*``), its block count and
    small attention sizes; one norm tensor per layer (the states come from the keys alone)."""
    import gguf
    import numpy as np

    w = gguf.GGUFWriter(str(path), "qwen35")
    w.add_block_count(n_layers)
    w.add_embedding_length(256)
    w.add_feed_forward_length(512)
    w.add_head_count(4)
    w.add_head_count_kv(1)
    w.add_key_length(64)
    w.add_value_length(64)
    w.add_context_length(262144)
    w.add_uint32("qwen35.ssm.conv_kernel", 4)
    w.add_uint32("qwen35.ssm.inner_size", 4096)
    w.add_uint32("qwen35.ssm.state_size", 128)
    w.add_uint32("qwen35.ssm.time_step_rank", 32)
    w.add_uint32("qwen35.ssm.group_count", 16)
    if nextn:
        w.add_uint32("qwen35.nextn_predict_layers", nextn)
    if interval:
        w.add_uint32("qwen35.full_attention_interval", interval)
    w.add_token_list([f"t{i}".encode() for i in range(512)])
    w.add_tensor("token_embd.weight", np.zeros((512, 256), dtype=np.float32))
    for i in range(n_layers):
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.zeros((256,), dtype=np.float32))
    w.add_tensor("output_norm.weight", np.zeros((256,), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_gguf_hybrid_states_from_the_ssm_keys(tmp_path):
    """llama.cpp's qwen35 loader (models/qwen35.cpp): every layer but each 4th is recurrent; the file's ssm.* keys
    give n_embd_r = 3 × (4096 + 2 × 16 × 128) and n_embd_s = 128 × 4096: the log's R 2.25 MiB and S 48.00 MiB for
    one sequence, the 8 attention layers keeping keys and values."""
    import vramscope
    from vramscope.sources import resolve

    r = resolve(str(_write_qwen35_gguf(tmp_path / "q35.gguf")))
    st = r.spec.state
    assert [i for i, k in enumerate(st.kinds) if k == "full"] == [3, 7, 11, 15, 19, 23, 27, 31]
    rec = [i for i, k in enumerate(st.kinds) if k == "state"]
    assert sum(st.engine_conv_values(i) for i in rec) * RS_BYTES == 2.25 * MiB
    assert sum(st.recurrent_values[i] for i in rec) * RS_BYTES == 48 * MiB
    e = vramscope.estimate(str(tmp_path / "q35.gguf"), engine="llama.cpp", gpus=["rtx-4090"], seq=4096)
    assert e.engine["gpu"]["rs_buffer_bytes"] == 50.25 * MiB
    assert e.engine["gpu"]["kv_buffer_bytes"] == 50.25 * MiB + 8 * 4096 * 2 * 64 * 2
    # a NextN (MTP) layer appended beyond the stack is attention-only (the 65-layer Qwen3.5-27B logs skip it)
    mtp = resolve(str(_write_qwen35_gguf(tmp_path / "mtp.gguf", n_layers=9, nextn=1, interval=2))).spec.state
    assert mtp.kinds == ("state", "full", "state", "full", "state", "full", "state", "full", "full")


@pytest.mark.parametrize("fixture, per_seq_mib", [("mamba_codestral_7b", 263.5), ("mamba_130m", None)])
def test_pure_ssm_gguf_recurrent_memory(tmp_path, fixture, per_seq_mib):
    """Pure Mamba / Mamba2 GGUFs (llama.cpp's ``mamba`` / ``mamba2`` architectures, ``llm_arch_is_recurrent``: no
    attention, ``attention.head_count`` 0 as convert_hf_to_gguf.py writes it) keep only ``llama_memory_recurrent``:
    per layer ``r_l`` = (d_conv − 1) × (d_inner + 2 × n_group × d_state) and ``s_l`` = d_state × d_inner f32 values
    per sequence, for ``max(1, n_seq_max)`` sequences, and no KV cache. ggml-org/llama.cpp#9126 (compilade,
    2024-08-21): "Mamba-Codestral-7B-v0.1 takes 263.5 MiB (in F32) per sequence (e.g. with -np 1)"; the files have
    the real tensor names, shapes and vocabularies (tests/gguf_real.py), all their blocks."""
    import gguf_real
    import vramscope
    from vramscope.sources import resolve

    m = getattr(gguf_real, fixture)()
    path = gguf_real.write_sparse(m, tmp_path / f"{m.name}.gguf")
    r = resolve(str(path))
    st = r.spec.state
    assert st is not None and set(st.kinds) == {"state"} and len(st.kinds) == m.real_layers
    assert sorted(t.name for t in r.stored) == sorted(n for n, _, _ in m.tensors)
    known = gguf_real.llama_cpp_names(m.arch, m.layers)
    assert {t.name for t in r.stored} <= known | {n.rsplit(".", 1)[0] for n in known}  # ssm_a / ssm_d: no suffix
    per_seq = sum(st.engine_conv_values(i) + st.recurrent_values[i] for i in range(len(st.kinds))) * RS_BYTES
    if per_seq_mib is not None:
        assert per_seq == per_seq_mib * MiB
    else:  # mamba-130m: 24 × (3 × 1,536 + 16 × 1,536) values
        assert per_seq == 24 * (3 * 1536 + 16 * 1536) * 4
    for n_seq in (1, 4):
        e = vramscope.estimate(str(path), engine="llama.cpp", gpus=["rtx-4090"], seq=8192, n_parallel=n_seq)
        assert e.engine["gpu"]["rs_buffer_bytes"] == per_seq * n_seq
        assert e.engine["gpu"]["kv_buffer_bytes"] == per_seq * n_seq  # no keys and values at any length
    assert r.spec.vocab_size == m.vocab and r.spec.tie_embeddings == (fixture == "mamba_130m")
