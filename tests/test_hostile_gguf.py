"""Hostile GGUF files (issue #11): every one ends in a normal answer or one clear line naming the field and what
is allowed (exit 2); never an internal error, a traceback, a hang or an absurd number.

Files are built here byte by byte (:class:`Gguf`), so any field can be made wrong: the two bases, a Gemma-2-like
dense model (sliding window, soft-capping, 5,000 tokens) and a DeepSeek-V2-like MoE with MLA, are first checked
to be valid by gguf-py's own reader. Each case runs ``vramscope estimate FILE`` and ``... --engine llama.cpp``
in-process (``hostile_util.run_cli``); a hypothesis test then mutates the headers at random.
"""

from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

import pytest

from hostile_util import assert_clean, assert_sane_estimate, run_cli, run_cli_subprocess

gguf = pytest.importorskip("gguf")

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12
FMT = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f", BOOL: "<?", U64: "<Q",
       I64: "<q", F64: "<d"}
T_F32, T_F16, T_Q8_0, T_Q4_K, T_Q6_K = 0, 1, 8, 12, 14
SIZES = {int(k): v for k, v in gguf.GGML_QUANT_SIZES.items()}
SIZES[9] = (32, 36)  # Q8_1: ggml-common.h's block_q8_1 is 36 bytes (gguf-py still says 40; see test_gguf.py)


def _str(s: Any) -> bytes:
    b = s.encode("utf-8") if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def value_bytes(vtype: int, value: Any) -> bytes:
    if vtype in FMT:
        return struct.pack(FMT[vtype], value)
    if vtype == STR:
        return _str(value)
    if vtype == ARR:
        etype, items = value
        return struct.pack("<IQ", etype, len(items)) + b"".join(value_bytes(etype, x) for x in items)
    raise ValueError(vtype)


@dataclass
class Gguf:
    """A GGUF file as fields: metadata (key, type, value) and tensor records (name, ne, type, offset or None)."""

    kv: list[tuple[str, int, Any]]
    tensors: list[tuple[str, tuple[int, ...], int, Optional[int]]]
    magic: bytes = b"GGUF"
    version: int = 3
    n_tensors: Optional[int] = None  # None: the real counts
    n_kv: Optional[int] = None
    data: Optional[int] = None  # bytes of data section; None: what the tensors need
    cut: Optional[int] = None  # truncate the file to this many bytes
    _kv_cache: dict = field(default_factory=dict, repr=False, compare=False)
    log: tuple = ()  # what was changed from the base, for a readable failure

    def __repr__(self) -> str:
        return f"Gguf({self.kv[0][2]!r} base; {'; '.join(self.log) or 'unchanged'})"

    def _short(self, v: Any) -> str:
        r = repr(v)
        return r if len(r) < 60 else r[:60] + "…"

    def nbytes(self, ne: tuple[int, ...], ttype: int) -> int:
        block, size = SIZES.get(ttype, (1, 4))
        n = 1
        for d in ne:
            n *= d
        return n // block * size

    def header(self) -> bytes:
        out = [self.magic, struct.pack("<I", self.version),
               struct.pack("<QQ", len(self.tensors) if self.n_tensors is None else self.n_tensors,
                           len(self.kv) if self.n_kv is None else self.n_kv)]
        for key, vtype, value in self.kv:
            hit = self._kv_cache.get((key, id(value)))
            if hit is None or hit[0] is not value:  # the cache holds the value itself: ids are never reused
                hit = self._kv_cache[(key, id(value))] = (value, _str(key) + struct.pack("<I", vtype)
                                                          + value_bytes(vtype, value))
            out.append(hit[1])
        offset = 0
        for name, ne, ttype, off in self.tensors:
            out.append(_str(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne)
                       + struct.pack("<IQ", ttype, offset if off is None else off))
            offset = (offset + (self.nbytes(ne, ttype) + 31) // 32 * 32) % 2**64
        return b"".join(out)

    def data_size(self) -> int:
        if self.data is not None:
            return self.data
        return sum((self.nbytes(ne, t) + 31) // 32 * 32 for _, ne, t, _ in self.tensors)

    def write(self, path: Path) -> Path:
        h = self.header()
        start = (len(h) + 31) // 32 * 32
        with open(path, "wb") as f:
            f.write(h)
            f.write(b"\0" * (start - len(h)))
            f.truncate(start + min(self.data_size(), 1 << 30))  # the data section is a hole (at most 1 GiB)
            if self.cut is not None:
                f.truncate(self.cut)
        return path

    def weights(self) -> int:
        """Bytes of the tensors the header declares (the first ``n_tensors`` records)."""
        return sum(self.nbytes(ne, t) for _, ne, t, _ in self.tensors[:self.n_tensors])

    def output_copy(self) -> int:
        """The second copy of ``token_embd`` llama.cpp loads as the output layer (TENSOR_DUPLICATED) when the header
        has no ``output.weight``: on the GPU with the default -ngl (engines/llamacpp.py)."""
        records = self.tensors[:self.n_tensors]
        if any(name == "output.weight" for name, _, _, _ in records):
            return 0
        return sum(self.nbytes(ne, t) for name, ne, t, _ in records if name == "token_embd.weight")

    def with_kv(self, key: str, vtype: int, value: Any) -> "Gguf":
        kv = [(k, t, v) for k, t, v in self.kv if k != key] + [(key, vtype, value)]
        return replace(self, kv=kv, _kv_cache=self._kv_cache,
                       log=self.log + (f"{key} = type {vtype} {self._short(value)}",))

    def without(self, key: str) -> "Gguf":
        return replace(self, kv=[e for e in self.kv if e[0] != key], _kv_cache=self._kv_cache,
                       log=self.log + (f"drop {key}",))

    def with_tensor(self, i: int, name=None, ne=None, ttype=None, offset=...) -> "Gguf":
        tensors = list(self.tensors)
        n0, ne0, t0, o0 = tensors[i]
        tensors[i] = (n0 if name is None else name, ne0 if ne is None else ne, t0 if ttype is None else ttype,
                      o0 if offset is ... else offset)
        return replace(self, tensors=tensors, _kv_cache=self._kv_cache,
                       log=self.log + (f"tensor {n0}: {tensors[i][1:]!r}"[:120],))


VOCAB = 5000


def _vocab_kv() -> list:
    tokens = ["<unk>", "<s>", "</s>"] + [f"\u2581p{i}" for i in range(VOCAB - 3)]
    return [("tokenizer.ggml.model", STR, "llama"), ("tokenizer.ggml.tokens", ARR, (STR, tokens)),
            ("tokenizer.ggml.scores", ARR, (F32, [float(-i) for i in range(VOCAB)])),
            ("tokenizer.ggml.token_type", ARR, (I32, [1] * VOCAB)), ("tokenizer.ggml.bos_token_id", U32, 1)]


def gemma2_base() -> Gguf:
    """A small Gemma 2: 2 blocks, hidden 256, 4 heads of 128 (key_length ≠ hidden/heads), 2 KV heads, SWA."""
    a, h, heads, kv, hd, ff = "gemma2", 256, 4, 2, 128, 512
    meta = [("general.architecture", STR, a), ("general.name", STR, "tiny-gemma2"), ("general.file_type", U32, 7),
            ("general.alignment", U32, 32), (f"{a}.context_length", U32, 8192), (f"{a}.embedding_length", U32, h),
            (f"{a}.block_count", U32, 2), (f"{a}.feed_forward_length", U32, ff),
            (f"{a}.attention.head_count", U32, heads), (f"{a}.attention.head_count_kv", U32, kv),
            (f"{a}.attention.key_length", U32, hd), (f"{a}.attention.value_length", U32, hd),
            (f"{a}.attention.sliding_window", U32, 4096), (f"{a}.attn_logit_softcapping", F32, 50.0),
            (f"{a}.final_logit_softcapping", F32, 30.0), (f"{a}.rope.dimension_count", U32, hd),
            (f"{a}.attention.layer_norm_rms_epsilon", F32, 1e-6)] + _vocab_kv()
    t = [("token_embd.weight", (h, VOCAB), T_Q8_0, None)]
    for i in range(2):
        t += [(f"blk.{i}.attn_norm.weight", (h,), T_F32, None),
              (f"blk.{i}.attn_q.weight", (h, heads * hd), T_Q8_0, None),
              (f"blk.{i}.attn_k.weight", (h, kv * hd), T_Q8_0, None),
              (f"blk.{i}.attn_v.weight", (h, kv * hd), T_Q8_0, None),
              (f"blk.{i}.attn_output.weight", (heads * hd, h), T_Q8_0, None),
              (f"blk.{i}.post_attention_norm.weight", (h,), T_F32, None),
              (f"blk.{i}.ffn_norm.weight", (h,), T_F32, None),
              (f"blk.{i}.ffn_gate.weight", (h, ff), T_Q4_K, None), (f"blk.{i}.ffn_up.weight", (h, ff), T_Q4_K, None),
              (f"blk.{i}.ffn_down.weight", (ff, h), T_Q6_K, None), (f"blk.{i}.post_ffw_norm.weight", (h,), T_F32, None)]
    t += [("output_norm.weight", (h,), T_F32, None)]
    return Gguf(meta, t)


def deepseek2_base() -> Gguf:
    """A small DeepSeek-V2 as llama.cpp writes it now: MLA as MQA over the latent, 1 dense + 1 MoE block."""
    a, h, heads, q_lora, kv_lora, rope, nope, v, ff, eff, n_exp = "deepseek2", 256, 4, 128, 128, 32, 64, 64, 512, \
        256, 8
    meta = [("general.architecture", STR, a), ("general.name", STR, "tiny-deepseek2"), ("general.file_type", U32, 7),
            (f"{a}.context_length", U32, 16384), (f"{a}.embedding_length", U32, h), (f"{a}.block_count", U32, 2),
            (f"{a}.feed_forward_length", U32, ff), (f"{a}.attention.head_count", U32, heads),
            (f"{a}.attention.head_count_kv", U32, 1), (f"{a}.vocab_size", U32, VOCAB),
            (f"{a}.leading_dense_block_count", U32, 1), (f"{a}.attention.q_lora_rank", U32, q_lora),
            (f"{a}.attention.kv_lora_rank", U32, kv_lora), (f"{a}.attention.key_length", U32, kv_lora + rope),
            (f"{a}.attention.value_length", U32, kv_lora), (f"{a}.attention.key_length_mla", U32, nope + rope),
            (f"{a}.attention.value_length_mla", U32, v), (f"{a}.rope.dimension_count", U32, rope),
            (f"{a}.expert_feed_forward_length", U32, eff), (f"{a}.expert_count", U32, n_exp),
            (f"{a}.expert_shared_count", U32, 1), (f"{a}.expert_used_count", U32, 2),
            (f"{a}.expert_weights_scale", F32, 1.0)] + _vocab_kv()
    t = [("token_embd.weight", (h, VOCAB), T_Q8_0, None)]
    for i in range(2):
        t += [(f"blk.{i}.attn_norm.weight", (h,), T_F32, None), (f"blk.{i}.attn_q_a.weight", (h, q_lora), T_Q8_0, None),
              (f"blk.{i}.attn_q_a_norm.weight", (q_lora,), T_F32, None),
              (f"blk.{i}.attn_q_b.weight", (q_lora, heads * (nope + rope)), T_Q8_0, None),
              (f"blk.{i}.attn_kv_a_mqa.weight", (h, kv_lora + rope), T_Q8_0, None),
              (f"blk.{i}.attn_kv_a_norm.weight", (kv_lora,), T_F32, None),
              (f"blk.{i}.attn_k_b.weight", (nope, kv_lora, heads), T_Q8_0, None),
              (f"blk.{i}.attn_v_b.weight", (kv_lora, v, heads), T_Q8_0, None),
              (f"blk.{i}.attn_output.weight", (heads * v, h), T_Q8_0, None),
              (f"blk.{i}.ffn_norm.weight", (h,), T_F32, None)]
        if i == 0:
            t += [(f"blk.0.ffn_gate.weight", (h, ff), T_Q8_0, None), (f"blk.0.ffn_up.weight", (h, ff), T_Q8_0, None),
                  (f"blk.0.ffn_down.weight", (ff, h), T_Q8_0, None)]
        else:
            t += [(f"blk.1.ffn_gate_inp.weight", (h, n_exp), T_F32, None),
                  (f"blk.1.ffn_gate_exps.weight", (h, eff, n_exp), T_Q8_0, None),
                  (f"blk.1.ffn_up_exps.weight", (h, eff, n_exp), T_Q8_0, None),
                  (f"blk.1.ffn_down_exps.weight", (eff, h, n_exp), T_Q8_0, None),
                  (f"blk.1.ffn_gate_shexp.weight", (h, eff), T_Q8_0, None),
                  (f"blk.1.ffn_up_shexp.weight", (h, eff), T_Q8_0, None),
                  (f"blk.1.ffn_down_shexp.weight", (eff, h), T_Q8_0, None)]
    t += [("output_norm.weight", (h,), T_F32, None), ("output.weight", (h, VOCAB), T_Q8_0, None)]
    return Gguf(meta, t)


#: a small DeepSeek-V4's compress_ratios: two plain sliding layers, CSA, HCA, CSA, and the MTP layer's entry the
#: converter keeps (config.json's list runs one past num_hidden_layers)
DSV4_RATIOS = (0, 4, 128, 4, 0, 0)


def deepseek4_base(ratios: tuple[int, ...] = DSV4_RATIOS, head: int = 64, indexer: int = 32, window: int = 128,
                   layers: Optional[int] = None) -> Gguf:
    """A small DeepSeek-V4 as llama.cpp's converter writes one (82bb48500: conversion/deepseek.py
    ``DeepseekV4Model``, gguf-py constants.py; the tensors and shapes src/models/deepseek4.cpp
    ``load_arch_tensors`` creates): ``attention.compress_ratios`` (int32, one entry past block_count),
    ``attention.indexer.key_length``, ``attention.sliding_window``, ``key_length`` = ``value_length`` =
    ``head_dim``, one KV head; on a layer of ratio r ≠ 0 the compressor (``attn_compressor_kv`` / ``_gate`` of
    coff × head rows, coff 2 on CSA layers, ``_ape`` of r columns, ``_norm``), on CSA layers the lightning indexer
    (``indexer.proj``, ``indexer.attn_q_b``, ``indexer_compressor_*`` of 2 × indexer rows); hyper-connections, a
    hash-routed first layer (``ffn_gate_tid2eid``, I32), 4 routed experts and a shared one."""
    a, h, heads, rope, q_lora, og, o_lora, idx_heads, n_exp, used, eff, hc = \
        "deepseek4", 256, 4, 16, 64, 2, 32, 4, 4, 2, 128, 4
    n = len(ratios) - 1 if layers is None else layers
    mix = (2 + hc) * hc
    meta = [("general.architecture", STR, a), ("general.name", STR, "tiny-deepseek4"), ("general.file_type", U32, 7),
            (f"{a}.context_length", U32, 1048576), (f"{a}.embedding_length", U32, h), (f"{a}.block_count", U32, n),
            (f"{a}.attention.head_count", U32, heads), (f"{a}.attention.head_count_kv", U32, 1),
            (f"{a}.attention.key_length", U32, head), (f"{a}.attention.value_length", U32, head),
            (f"{a}.attention.layer_norm_rms_epsilon", F32, 1e-6), (f"{a}.vocab_size", U32, VOCAB),
            (f"{a}.rope.dimension_count", U32, rope), (f"{a}.attention.q_lora_rank", U32, q_lora),
            (f"{a}.attention.sliding_window", U32, window), (f"{a}.expert_feed_forward_length", U32, eff),
            (f"{a}.expert_count", U32, n_exp), (f"{a}.expert_used_count", U32, used),
            (f"{a}.expert_shared_count", U32, 1), (f"{a}.expert_weights_scale", F32, 1.5),
            (f"{a}.expert_weights_norm", BOOL, True), (f"{a}.expert_gating_func", U32, 4),
            (f"{a}.swiglu_clamp_exp", ARR, (F32, [10.0] * n)), (f"{a}.swiglu_clamp_shexp", ARR, (F32, [10.0] * n)),
            (f"{a}.attention.indexer.head_count", U32, idx_heads),
            (f"{a}.attention.indexer.key_length", U32, indexer), (f"{a}.attention.indexer.top_k", U32, 512),
            (f"{a}.attention.output_group_count", U32, og), (f"{a}.attention.output_lora_rank", U32, o_lora),
            (f"{a}.attention.compress_ratios", ARR, (I32, list(ratios))),
            (f"{a}.attention.compress_rope_freq_base", F32, 160000.0), (f"{a}.hyper_connection.count", U32, hc),
            (f"{a}.hyper_connection.sinkhorn_iterations", U32, 20), (f"{a}.hyper_connection.epsilon", F32, 1e-6),
            (f"{a}.hash_layer_count", U32, 1), (f"{a}.embedding_length_out", U32, h * hc)] + _vocab_kv()
    t = [("token_embd.weight", (h, VOCAB), T_Q8_0, None), ("output_norm.weight", (h,), T_F32, None),
         ("output.weight", (h, VOCAB), T_Q8_0, None), ("output_hc_fn.weight", (hc * h, hc), T_F32, None),
         ("output_hc_base.weight", (hc,), T_F32, None), ("output_hc_scale.weight", (1,), T_F32, None)]
    for i in range(n):
        b = f"blk.{i}."
        t += [(b + "attn_norm.weight", (h,), T_F32, None), (b + "attn_sinks.weight", (heads,), T_F32, None),
              (b + "attn_q_a.weight", (h, q_lora), T_Q8_0, None), (b + "attn_q_a_norm.weight", (q_lora,), T_F32, None),
              (b + "attn_q_b.weight", (q_lora, heads * head), T_Q8_0, None),
              (b + "attn_kv.weight", (h, head), T_Q8_0, None), (b + "attn_kv_a_norm.weight", (head,), T_F32, None),
              (b + "attn_output_a.weight", (heads * head // og, o_lora * og), T_Q8_0, None),
              (b + "attn_output_b.weight", (og * o_lora, h), T_Q8_0, None)]
        for part in ("attn", "ffn"):
            t += [(b + f"hc_{part}_fn.weight", (hc * h, mix), T_F32, None),
                  (b + f"hc_{part}_base.weight", (mix,), T_F32, None),
                  (b + f"hc_{part}_scale.weight", (3,), T_F32, None)]
        r = ratios[i]
        if r:
            coff = 2 if r == 4 else 1
            t += [(b + "attn_compressor_kv.weight", (h, coff * head), T_Q8_0, None),
                  (b + "attn_compressor_gate.weight", (h, coff * head), T_Q8_0, None),
                  (b + "attn_compressor_ape.weight", (coff * head, r), T_F32, None),
                  (b + "attn_compressor_norm.weight", (head,), T_F32, None)]
        if r == 4:
            t += [(b + "indexer.proj.weight", (h, idx_heads), T_F32, None),
                  (b + "indexer.attn_q_b.weight", (q_lora, idx_heads * indexer), T_Q8_0, None),
                  (b + "indexer_compressor_kv.weight", (h, 2 * indexer), T_Q8_0, None),
                  (b + "indexer_compressor_gate.weight", (h, 2 * indexer), T_Q8_0, None),
                  (b + "indexer_compressor_ape.weight", (2 * indexer, r), T_F32, None),
                  (b + "indexer_compressor_norm.weight", (indexer,), T_F32, None)]
        t += [(b + "ffn_gate_inp.weight", (h, n_exp), T_F32, None)]
        t += [(b + "ffn_gate_tid2eid.weight", (used, VOCAB), 26, None)] if i == 0 else \
            [(b + "exp_probs_b.bias", (n_exp,), T_F32, None)]
        t += [(b + "ffn_norm.weight", (h,), T_F32, None),
              (b + "ffn_gate_exps.weight", (h, eff, n_exp), T_Q8_0, None),
              (b + "ffn_down_exps.weight", (eff, h, n_exp), T_Q8_0, None),
              (b + "ffn_up_exps.weight", (h, eff, n_exp), T_Q8_0, None),
              (b + "ffn_gate_shexp.weight", (h, eff), T_Q8_0, None),
              (b + "ffn_down_shexp.weight", (eff, h), T_Q8_0, None),
              (b + "ffn_up_shexp.weight", (h, eff), T_Q8_0, None)]
    return Gguf(meta, t)


BASES = {"gemma2": gemma2_base(), "deepseek2": deepseek2_base(), "deepseek4": deepseek4_base()}
ENGINES = ([], ["--engine", "llama.cpp"])


def run_both(path: Path, weights: Optional[int] = None, output_copy: int = 0) -> list[tuple[int, str, str]]:
    """Both engines on ``path``: each a clean outcome; an answer is sane, and (given ``weights``) weighs exactly
    the file's tensors (llama.cpp: plus ``output_copy``, a tied embedding's second copy)."""
    results = []
    for extra in ENGINES:
        argv = ["estimate", str(path), "--json", *extra]
        rc, out, err = run_cli(argv)
        assert_clean(rc, out, err, argv)
        if rc in (0, 1):
            d = json.loads(out)
            assert_sane_estimate(d)
            if weights is not None:
                if extra:
                    got = d["engine"]["gpu"]["model_buffer_bytes"] + d["engine"]["host"]["model_buffer_bytes"] \
                        - output_copy
                else:
                    got = d["components"]["weights"]
                assert got == weights, (argv, got, weights)
        results.append((rc, out, err))
    return results


def expect_error(g: Gguf, tmp_path: Path, *needles: str) -> str:
    """Exit 2 with one line for both engines, mentioning every needle; returns the line."""
    path = g.write(tmp_path / "hostile.gguf")
    lines = []
    for rc, out, err in run_both(path):
        assert rc == 2, f"expected a clear error, got exit {rc}: {out[:300]}"
        for n in needles:
            assert n in err, (n, err)
        lines.append(err.strip())
    assert lines[0] == lines[1]
    return lines[0]


@pytest.mark.parametrize("base", list(BASES))
def test_bases_are_valid_gguf_and_answer(base, tmp_path):
    g = BASES[base]
    path = g.write(tmp_path / "base.gguf")
    r = gguf.GGUFReader(str(path))  # gguf-py accepts the hand-built file
    assert len(r.tensors) == len(g.tensors) and r.fields["general.architecture"].contents() == base
    assert sum(int(t.n_bytes) for t in r.tensors) == g.weights()
    for rc, out, err in run_both(path, weights=g.weights(), output_copy=g.output_copy()):
        assert rc == 0, err
        assert json.loads(out)["model"]["params"] == sum(int(t.n_elements) for t in r.tensors)


# ---- one class at a time ----------------------------------------------------------------------------------
G, D, V4 = BASES["gemma2"], BASES["deepseek2"], BASES["deepseek4"]

BAD_VALUES = [
    # (label, base, key, type, value, words the message must contain)
    ("head count 0", G, "gemma2.attention.head_count", U32, 0, ["attention.head_count", "from 1"]),
    ("kv head count 0", G, "gemma2.attention.head_count_kv", U32, 0, ["head_count_kv"]),
    ("kv heads do not divide heads", G, "gemma2.attention.head_count_kv", U32, 3, ["head_count_kv", "divisor"]),
    ("kv heads above heads", G, "gemma2.attention.head_count_kv", U32, 8, ["head_count_kv"]),
    ("string block_count", G, "gemma2.block_count", STR, "2", ["block_count", "whole number"]),
    ("float block_count", G, "gemma2.block_count", F32, 2.0, ["block_count"]),
    ("NaN block_count", G, "gemma2.block_count", F32, math.nan, ["block_count", "nan"]),
    ("bool block_count", G, "gemma2.block_count", BOOL, True, ["block_count"]),
    ("negative embedding_length", G, "gemma2.embedding_length", I32, -256, ["embedding_length", "-256"]),
    ("huge embedding_length", G, "gemma2.embedding_length", U64, 2**63, ["embedding_length"]),
    ("block_count 2^32-1", G, "gemma2.block_count", U32, 2**32 - 1, ["block_count"]),
    ("block_count more than the tensors", G, "gemma2.block_count", U32, 3, ["block_count", "is 3", "blocks 0, 1"]),
    ("block_count fewer than the tensors", G, "gemma2.block_count", U32, 1, ["block_count", "blocks 0, 1"]),
    ("huge context_length", G, "gemma2.context_length", U64, 2**64 - 1, ["context_length"]),
    ("zero context_length", G, "gemma2.context_length", U32, 0, ["context_length"]),
    ("negative key_length", G, "gemma2.attention.key_length", I32, -1, ["key_length"]),
    ("key_length disagrees with attn_k", G, "gemma2.attention.key_length", U32, 64,
     ["attention.key_length", "2 × 64", "attn_k", "256 rows"]),
    ("embedding_length disagrees with token_embd", G, "gemma2.embedding_length", U32, 512, ["token_embd"]),
    ("feed_forward_length disagrees with ffn_up", G, "gemma2.feed_forward_length", U32, 1024, ["ffn_up"]),
    ("NaN soft-capping", G, "gemma2.attn_logit_softcapping", F32, math.nan, ["attn_logit_softcapping", "finite"]),
    ("infinite soft-capping", G, "gemma2.final_logit_softcapping", F64, math.inf, ["final_logit_softcapping"]),
    ("negative soft-capping", G, "gemma2.final_logit_softcapping", F32, -30.0, ["final_logit_softcapping"]),
    ("string soft-capping", G, "gemma2.attn_logit_softcapping", STR, "50", ["attn_logit_softcapping"]),
    ("negative sliding window", G, "gemma2.attention.sliding_window", I32, -4096, ["sliding_window"]),
    ("string sliding window", G, "gemma2.attention.sliding_window", STR, "4096", ["sliding_window"]),
    ("sliding pattern too short", G, "gemma2.attention.sliding_window_pattern", ARR, (BOOL, [True]),
     ["sliding_window_pattern", "true or false"]),
    ("sliding pattern of ints", G, "gemma2.attention.sliding_window_pattern", ARR, (U32, [1, 0]),
     ["sliding_window_pattern"]),
    ("block_count as array", G, "gemma2.block_count", ARR, (U32, [2, 2]), ["block_count"]),
    ("kv heads array of strings", G, "gemma2.attention.head_count_kv", ARR, (STR, ["2", "2"]), ["head_count_kv"]),
    ("kv heads array of the wrong length", G, "gemma2.attention.head_count_kv", ARR, (U32, [2, 2, 2]),
     ["head_count_kv", "3 per-layer", "expected 2"]),
    ("kv heads long array", G, "gemma2.attention.head_count_kv", ARR, (U32, [2] * 5000), ["head_count_kv", "5000"]),
    ("tokens as int32s", G, "tokenizer.ggml.tokens", ARR, (I32, list(range(VOCAB))), ["tokenizer.ggml.tokens"]),
    ("tokens fewer than the embedding rows", G, "tokenizer.ggml.tokens", ARR, (STR, ["a"] * 100),
     ["tokenizer.ggml.tokens", "token_embd"]),
    ("architecture missing", G, "general.architecture", None, None, ["general.architecture", "missing"]),
    ("architecture as a number", G, "general.architecture", U32, 7, ["general.architecture"]),
    ("architecture with a newline", G, "general.architecture", STR, "gem\nma2", ["general.architecture", "name"]),
    ("keys of another architecture", G, "general.architecture", STR, "llama", ["llama.block_count", "missing"]),
    ("alignment 0", G, "general.alignment", U32, 0, ["general.alignment", "power of two"]),
    ("alignment 3", G, "general.alignment", U32, 3, ["general.alignment"]),
    ("alignment string", G, "general.alignment", STR, "32", ["general.alignment"]),
    ("split count as string", G, "split.count", STR, "2", ["split.count"]),
    ("split shards missing", G, "split.count", U16, 3, ["split", "00001-of-00003"]),
    ("expert_count 0 with expert tensors", D, "deepseek2.expert_count", U32, 0, ["expert_count", "missing"]),
    ("expert_count disagrees with tensors", D, "deepseek2.expert_count", U32, 16, ["expert_count", "8 experts"]),
    ("expert_count huge", D, "deepseek2.expert_count", U32, 2**31, ["expert_count"]),
    ("more experts used than there are", D, "deepseek2.expert_used_count", U32, 9, ["expert_used_count"]),
    ("no experts used", D, "deepseek2.expert_used_count", U32, 0, ["expert_used_count"]),
    ("expert width disagrees", D, "deepseek2.expert_feed_forward_length", U32, 512, ["expert_feed_forward_length"]),
    ("negative shared experts", D, "deepseek2.expert_shared_count", I32, -1, ["expert_shared_count"]),
    ("kv_lora_rank disagrees", D, "deepseek2.attention.kv_lora_rank", U32, 64, ["kv_lora_rank", "attn_kv_a_mqa"]),
    ("kv_lora_rank NaN", D, "deepseek2.attention.kv_lora_rank", F32, math.nan, ["kv_lora_rank"]),
    ("rope dims = key length", D, "deepseek2.rope.dimension_count", U32, 96, ["rope.dimension_count"]),
    ("rope dims 0", D, "deepseek2.rope.dimension_count", U32, 0, ["rope.dimension_count"]),
    ("key_length_mla disagrees with q_b", D, "deepseek2.attention.key_length_mla", U32, 128, ["attn_q_b"]),
    ("value_length_mla missing", D, "deepseek2.attention.value_length_mla", None, None, ["value_length_mla"]),
    ("vocab_size disagrees", D, "deepseek2.vocab_size", U32, 6000, ["vocab_size", "token_embd"]),
    ("vocab_size string", D, "deepseek2.vocab_size", STR, "5000", ["vocab_size"]),
    # DeepSeek-V4 (deepseek4): compress_ratios, the indexer's key length and the window llama.cpp requires
    ("compress_ratios missing", V4, "deepseek4.attention.compress_ratios", None, None,
     ["attention.compress_ratios", "missing"]),
    ("compress_ratios shorter than block_count", V4, "deepseek4.attention.compress_ratios", ARR, (I32, [0, 4, 128, 4]),
     ["attention.compress_ratios", "5 to 512", "0, 4 or 128"]),
    ("compress_ratios of 600 entries", V4, "deepseek4.attention.compress_ratios", ARR, (I32, [0] * 600),
     ["attention.compress_ratios", "array[600]", "512"]),
    ("compress_ratios of 5000 entries", V4, "deepseek4.attention.compress_ratios", ARR, (I32, [0] * 5000),
     ["attention.compress_ratios", "5000"]),
    ("compress ratio 8", V4, "deepseek4.attention.compress_ratios", ARR, (I32, [0, 4, 8, 4, 0, 0]),
     ["attention.compress_ratios", "0, 4 or 128"]),
    ("compress ratio negative", V4, "deepseek4.attention.compress_ratios", ARR, (I32, [0, 4, 128, -4, 0, 0]),
     ["attention.compress_ratios"]),
    ("compress_ratios a number", V4, "deepseek4.attention.compress_ratios", U32, 4, ["attention.compress_ratios"]),
    ("compress_ratios of strings", V4, "deepseek4.attention.compress_ratios", ARR, (STR, ["0"] * 6),
     ["attention.compress_ratios"]),
    ("compress_ratios of bools", V4, "deepseek4.attention.compress_ratios", ARR, (BOOL, [False] * 6),
     ["attention.compress_ratios"]),
    ("compress_ratios of floats", V4, "deepseek4.attention.compress_ratios", ARR, (F32, [0.0, 4.0, 128.0, 4.0, 0.0]),
     ["attention.compress_ratios"]),
    ("ratio 0 on a layer with a compressor", V4, "deepseek4.attention.compress_ratios", ARR,
     (I32, [0, 0, 128, 4, 0, 0]), ["attention.compress_ratios[1]", "is 0", "no tensor", "blk.1.attn_compressor_kv"]),
    ("ratio 4 on a layer without a compressor", V4, "deepseek4.attention.compress_ratios", ARR,
     (I32, [4, 4, 128, 4, 0, 0]), ["attention.compress_ratios[0]", "is 4", "blk.0.attn_compressor_kv", "none"]),
    ("ratio 4 on an HCA layer", V4, "deepseek4.attention.compress_ratios", ARR, (I32, [0, 4, 4, 4, 0, 0]),
     ["compress_ratios[2]' → 'deepseek4.attention.key_length", "4 → 2 × 64", "blk.2.attn_compressor_kv",
      "64 rows"]),
    ("ratio 128 on a CSA layer", V4, "deepseek4.attention.compress_ratios", ARR, (I32, [0, 128, 128, 4, 0, 0]),
     ["compress_ratios[1]' → 'deepseek4.attention.key_length", "128 → 1 × 64", "blk.1.attn_compressor_kv",
      "128 rows"]),
    ("indexer key length missing", V4, "deepseek4.attention.indexer.key_length", None, None,
     ["attention.indexer.key_length", "missing"]),
    ("indexer key length disagrees", V4, "deepseek4.attention.indexer.key_length", U32, 16,
     ["compress_ratios[1]' → 'deepseek4.attention.indexer.key_length", "4 → 2 × 16",
      "blk.1.indexer_compressor_kv", "64 rows"]),
    ("indexer key length 0", V4, "deepseek4.attention.indexer.key_length", U32, 0, ["attention.indexer.key_length"]),
    ("indexer key length NaN", V4, "deepseek4.attention.indexer.key_length", F32, math.nan,
     ["attention.indexer.key_length"]),
    ("dsv4 window missing", V4, "deepseek4.attention.sliding_window", None, None,
     ["attention.sliding_window", "missing"]),
    ("dsv4 window 0", V4, "deepseek4.attention.sliding_window", U32, 0, ["attention.sliding_window", "from 1"]),
    ("dsv4 window 2^32-1", V4, "deepseek4.attention.sliding_window", U32, 2**32 - 1, ["attention.sliding_window"]),
    ("dsv4 key_length disagrees with attn_kv", V4, "deepseek4.attention.key_length", U32, 32,
     ["attention.key_length", "attn_kv", "64 rows"]),
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("label, base, key, vtype, value, needles", BAD_VALUES, ids=[b[0] for b in BAD_VALUES])
def test_bad_metadata_value(label, base, key, vtype, value, needles, tmp_path):
    g = base.without(key) if vtype is None else base.with_kv(key, vtype, value)
    line = expect_error(g, tmp_path, *needles)
    assert "internal" not in line


def _first(g: Gguf, name: str) -> int:
    return next(i for i, t in enumerate(g.tensors) if t[0] == name)


STRUCTURE = [
    ("wrong magic GGML", replace(G, magic=b"GGML"), ["magic"]),
    ("wrong magic ggjt", replace(G, magic=b"tjgg"), ["magic"]),
    ("version 1", replace(G, version=1), ["version 1"]),
    ("version 4", replace(G, version=4), ["version 4"]),
    ("big-endian version", replace(G, version=3 << 24), ["big-endian"]),
    ("tensor count 2^63", replace(G, n_tensors=2**63), ["exceed"]),
    ("tensor count 10^6 + 1", replace(G, n_tensors=10**6 + 1), ["exceed"]),
    ("tensor count one too many", replace(G, n_tensors=len(G.tensors) + 1), []),
    ("metadata count 2^64-1", replace(G, n_kv=2**64 - 1), ["exceed"]),
    ("metadata count one too many", replace(G, n_kv=len(G.kv) + 1), []),
    ("no tensors", replace(G, tensors=[]), ["no tensors"]),
    ("duplicated tensor name", G.with_tensor(2, name="token_embd.weight"), ["token_embd.weight", "twice"]),
    ("duplicated key", replace(G, kv=G.kv + [G.kv[5]]), ["twice"]),
    ("5 dimensions", G.with_tensor(1, ne=(256, 1, 1, 1, 1)), ["5 dimensions"]),
    ("1000 dimensions", G.with_tensor(1, ne=(1,) * 1000), ["1000 dimensions"]),
    ("negative dimension", G.with_tensor(1, ne=(2**64 - 256,)), ["negative dimension"]),
    ("dims overflow int64", G.with_tensor(0, ne=(2**32, 2**32, 2**32)), ["overflow"]),
    ("dims overflow to zero", G.with_tensor(0, ne=(2**33, 2**31)), ["overflow"]),
    ("row not a multiple of the block", G.with_tensor(2, ne=(100, 512)), ["Q8_0", "block"]),
    ("unknown ggml type", G.with_tensor(1, ttype=999), ["unknown ggml type 999"]),
    ("removed ggml type Q4_2", G.with_tensor(1, ttype=4), ["unknown ggml type 4"]),
    ("offset past the end", G.with_tensor(len(G.tensors) - 1, offset=2**40), ["offset"]),
    ("offset misaligned", G.with_tensor(3, offset=8), ["offset"]),
    ("offset overlapping", G.with_tensor(3, offset=0), ["offset"]),
    ("data section cut short", replace(G, data=1000), ["truncated", "data of tensor"]),
    ("empty data section", replace(G, data=0), ["truncated"]),
    ("tensor name of 70,000 bytes", G.with_tensor(0, name="x" * 70000), ["exceeds"]),
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("label, g, needles", STRUCTURE, ids=[s[0] for s in STRUCTURE])
def test_bad_structure(label, g, needles, tmp_path):
    expect_error(g, tmp_path, *needles)


def _raw_kv(tmp_path: Path, extra: bytes, n_extra: int = 1) -> Path:
    """The Gemma base with hand-made bytes appended to its metadata."""
    h = G.header()
    counts = struct.pack("<QQ", len(G.tensors), len(G.kv) + n_extra)
    kv_end = len(G.header()) - len(replace(G, kv=[]).header()) + 24
    blob = h[:8] + counts + h[24:kv_end] + extra + h[kv_end:]
    start = (len(blob) + 31) // 32 * 32
    path = tmp_path / "raw.gguf"
    with open(path, "wb") as f:
        f.write(blob + b"\0" * (start - len(blob)))
        f.truncate(start + G.data_size())
    return path


RAW = [
    ("unknown value type", _str("x.y") + struct.pack("<I", 13), ["unknown metadata value type 13"]),
    ("array of arrays", _str("x.y") + struct.pack("<IIQ", ARR, ARR, 1) + struct.pack("<IQ", U8, 1) + b"\1",
     ["arrays of arrays"]),
    ("array of unknown type", _str("x.y") + struct.pack("<IIQ", ARR, 99, 1) + b"\0", ["element type 99"]),
    ("array of 2^40 elements", _str("x.y") + struct.pack("<IIQ", ARR, U8, 2**40), ["exceeds"]),
    ("array longer than the file", _str("x.y") + struct.pack("<IIQ", ARR, U64, 10**7), ["truncated"]),
    ("string of 2^31 bytes", _str("x.y") + struct.pack("<IQ", STR, 2**31), ["exceeds"]),
    ("key of 2^40 bytes", struct.pack("<Q", 2**40), ["exceeds"]),
    ("string array with a 2^31-byte string", _str("x.y") + struct.pack("<IIQ", ARR, STR, 5000)
     + struct.pack("<Q", 2**31), ["exceeds"]),
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("label, extra, needles", RAW, ids=[r[0] for r in RAW])
def test_bad_raw_metadata(label, extra, needles, tmp_path):
    path = _raw_kv(tmp_path, extra)
    for rc, out, err in run_both(path):
        assert rc == 2, out[:300]
        for n in needles:
            assert n in err, (n, err)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("base", list(BASES))
def test_truncated_everywhere(base, tmp_path):
    """Cut the file at ~85 points through the header and the data: always a clear 'truncated' line."""
    g = BASES[base]
    path = g.write(tmp_path / "full.gguf")
    size = os.path.getsize(path)
    header = len(g.header())
    cuts = sorted(set([0, 1, 3, 4, 7, 8, 15, 16, 23, 24] + [header * k // 60 for k in range(60)]
                      + [header + (size - header) * k // 15 for k in range(15)] + [size - 1]))
    for cut in cuts:
        p = replace(g, cut=cut, _kv_cache=g._kv_cache).write(tmp_path / "cut.gguf")
        for rc, out, err in run_both(p):
            assert rc == 2, (cut, out[:200])
            assert "truncated" in err or "magic" in err, (cut, err)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX only")
@pytest.mark.timeout(120)
def test_fifo_named_gguf_does_not_hang(tmp_path):
    fifo = tmp_path / "model.gguf"
    os.mkfifo(fifo)
    rc, out, err = run_cli_subprocess(["estimate", str(fifo)], timeout=60)
    assert_clean(rc, out, err)
    assert rc == 2 and "regular file" in err


def test_error_in_chinese(tmp_path):
    path = G.with_kv("gemma2.attention.head_count", U32, 0).write(tmp_path / "zh.gguf")
    rc, out, err = run_cli(["estimate", str(path), "--lang", "zh"])
    assert_clean(rc, out, err)
    assert rc == 2 and "GGUF 元数据键 'gemma2.attention.head_count' 的值为 0" in err


def test_split_model_reads_every_shard(tmp_path):
    """gguf-py's own split writer: the first shard names the others; every shard's tensors are counted."""
    np = pytest.importorskip("numpy")
    w = gguf.GGUFWriter(str(tmp_path / "m.gguf"), "llama", split_max_tensors=4)
    for key, vtype, value in G.kv:
        if key.startswith(("gemma2.", "general.architecture")):
            continue
        if vtype == ARR:
            w.add_array(key, value[1]) if key != "tokenizer.ggml.tokens" else w.add_token_list(value[1])
    for k, v in (("block_count", 2), ("embedding_length", 256), ("feed_forward_length", 512), ("context_length", 4096)):
        w.add_uint32(f"llama.{k}", v)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    total = 0
    for name, ne, ttype, _ in G.tensors:
        if "post_" in name:
            continue
        shape = tuple(reversed(ne))
        if name.endswith(("attn_q.weight", "attn_output.weight")):  # llama: 4 heads of 64
            shape = (256, 256)
        if name.endswith(("attn_k.weight", "attn_v.weight")):
            shape = (128, 256)
        data = np.zeros(shape, dtype=np.float32)
        w.add_tensor(name, data)
        total += data.nbytes
    w.add_tensor("output.weight", np.zeros((VOCAB, 256), dtype=np.float32))
    total += VOCAB * 256 * 4
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    shards = sorted(tmp_path.glob("m-*-of-*.gguf"))
    assert len(shards) > 2
    from vramscope.sources import resolve

    for shard in shards:  # any shard stands for the whole model
        r = resolve(str(shard))
        assert r.stored_bytes == total and r.spec.num_layers == 2 and r.spec.vocab_size == VOCAB
    renamed = tmp_path / "renamed.gguf"  # a shard whose name no longer locates the others
    renamed.write_bytes(shards[1].read_bytes())
    rc, out, err = run_cli(["estimate", str(renamed)])
    assert_clean(rc, out, err)
    assert rc == 2 and "pattern" in err
    shards[-1].unlink()
    rc, out, err = run_cli(["estimate", str(shards[0])])
    assert_clean(rc, out, err)
    assert rc == 2 and "missing" in err and shards[-1].name in err


# ---- hypothesis: random mutations of the two bases --------------------------------------------------------

INTERESTING_KEYS = [
    "general.architecture", "general.alignment", "general.name", "general.file_type", "split.count", "split.no",
    "tokenizer.ggml.tokens",
] + [f"{a}.{k}" for a in ("gemma2", "deepseek2") for k in (
    "block_count", "embedding_length", "feed_forward_length", "context_length", "vocab_size",
    "attention.head_count", "attention.head_count_kv", "attention.key_length", "attention.value_length",
    "attention.key_length_swa", "attention.sliding_window", "attention.sliding_window_pattern",
    "attention.kv_lora_rank", "attention.q_lora_rank", "attention.key_length_mla", "attention.value_length_mla",
    "rope.dimension_count", "expert_count", "expert_used_count", "expert_feed_forward_length",
    "expert_shared_count", "expert_shared_feed_forward_length", "leading_dense_block_count",
    "attn_logit_softcapping", "final_logit_softcapping")]

_INT_EDGE = [0, 1, 2, 3, 4, 7, 8, 31, 32, 64, 128, 255, 256, 4096, 5000, 2**15, 2**16, 2**31 - 1, 2**31, 2**32 - 1]
_INT_RANGE = {U8: (0, 255), I8: (-128, 127), U16: (0, 65535), I16: (-32768, 32767), U32: (0, 2**32 - 1),
              I32: (-2**31, 2**31 - 1), U64: (0, 2**64 - 1), I64: (-2**63, 2**63 - 1)}


@st.composite
def scalar(draw, vtype=None):
    vtype = draw(st.sampled_from([U8, I8, U16, I16, U32, I32, U64, I64, F32, F64, BOOL, STR])) if vtype is None \
        else vtype
    if vtype in _INT_RANGE:
        lo, hi = _INT_RANGE[vtype]
        v = draw(st.one_of(st.sampled_from([x for x in _INT_EDGE + [-1, lo, hi] if lo <= x <= hi]),
                           st.integers(lo, hi)))
        return vtype, v
    if vtype in (F32, F64):
        v = draw(st.one_of(st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 1e38, 2.0, 50.0]),
                           st.floats(width=32 if vtype == F32 else 64)))
        return vtype, v
    if vtype == BOOL:
        return vtype, draw(st.booleans())
    return vtype, draw(st.one_of(st.sampled_from(["", "2", "llama", "gemma2", "deepseek2", "nan", "a\nb"]),
                                 st.text(max_size=20)))


@st.composite
def any_value(draw):
    if draw(st.integers(0, 4)) == 0:
        etype = draw(st.sampled_from([U32, I32, F32, BOOL, STR, U8]))
        n = draw(st.sampled_from([0, 1, 2, 3, 5000]))
        if n == 5000:
            items = [1] * n if etype not in (F32, BOOL, STR) else ([1.0] * n if etype == F32 else
                                                                     ([True] * n if etype == BOOL else ["t"] * n))
        else:
            items = [draw(scalar(etype))[1] for _ in range(n)]
        return ARR, (etype, items)
    return draw(scalar())


@st.composite
def mutation(draw):
    base = draw(st.sampled_from(list(BASES)))
    g = BASES[base]
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["set", "set", "set", "drop", "tensor", "tensor", "count", "bytes"]))
        if kind == "set":
            vtype, value = draw(any_value())
            g = g.with_kv(draw(st.sampled_from(INTERESTING_KEYS)), vtype, value)
        elif kind == "drop":
            g = g.without(draw(st.sampled_from(INTERESTING_KEYS)))
        elif kind == "tensor":
            i = draw(st.integers(0, len(g.tensors) - 1))
            what = draw(st.sampled_from(["ne", "type", "offset", "name"]))
            if what == "ne":
                n = draw(st.integers(0, 5))
                ne = tuple(draw(st.one_of(st.sampled_from(_INT_EDGE + [2**63, 2**64 - 1]), st.integers(0, 2**64 - 1)))
                           for _ in range(n))
                g = g.with_tensor(i, ne=ne)
            elif what == "type":
                g = g.with_tensor(i, ttype=draw(st.one_of(st.integers(0, 40), st.integers(0, 2**32 - 1))))
            elif what == "offset":
                g = g.with_tensor(i, offset=draw(st.one_of(st.sampled_from([0, 1, 32, 2**40, 2**64 - 1]),
                                                           st.integers(0, 2**64 - 1))))
            else:
                g = g.with_tensor(i, name=draw(st.sampled_from([t[0] for t in g.tensors] + ["blk.99.x", "blk.1", ""])))
        elif kind == "count":
            if draw(st.booleans()):
                n = draw(st.one_of(st.integers(0, 200), st.just(2**64 - 1)))
                g = replace(g, n_tensors=n, _kv_cache=g._kv_cache, log=g.log + (f"n_tensors {n}",))
            else:
                n = draw(st.integers(0, 200))
                g = replace(g, n_kv=n, _kv_cache=g._kv_cache, log=g.log + (f"n_kv {n}",))
        else:
            n = draw(st.integers(0, 60_000))
            g = replace(g, cut=n, _kv_cache=g._kv_cache, log=g.log + (f"cut at {n}",))
    return g


@pytest.fixture(scope="module")
def hypo_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("hostile_gguf")


@pytest.mark.timeout(600)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                   HealthCheck.function_scoped_fixture])
@given(g=mutation())
def test_hypothesis_mutated_headers(g, hypo_dir):
    # an answer weighs exactly the tensors
    run_both(g.write(hypo_dir / "mutated.gguf"), weights=g.weights(), output_copy=g.output_copy())
