"""What a torch.compile'd decoder block saves for backward, per family, against vramscope's analytic model.

Run:  python bench/compile_blocks.py [--quick] [--write docs/compile.md]

Each case builds the real transformers decoder layer of a family (transformers 5.24, from its config) and
compiles it the way torchtitan compiles a TransformerBlock (``block.compile(fullgraph=True)`` after the block
was wrapped for activation checkpointing) with inductor's decomposition table and partition function (torch 2.13:
joint-graph passes, then ``min_cut_rematerialization_partition``; ``vramscope/trace/compiled.py``), and reads the
tensors the partitioned forward saves for backward. The saved bytes per token (activations and the block's input;
parameters and the cos/sin and mask every block shares are not the block's) are compared with
``compiled_layer_bytes_per_token`` (``compiled_op_sac_bytes_per_token`` under per-op SAC; the block's input
alone under full AC). The widths are the families' real ones; the partition is recorded without running the
graphs (``run=False``: uninitialised CPU weights, no compute), at ``seq`` 256.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from vramscope.memory.activations import compiled_layer_bytes_per_token, compiled_op_sac_bytes_per_token  # noqa: E402
from vramscope.sources.hf_config import spec_from_config  # noqa: E402

#: The families' real layer shapes (their config.json values; one decoder layer is built)
FAMILIES = {
    "llama-3-8b": dict(architectures=["LlamaForCausalLM"], model_type="llama", hidden_size=4096,
                       intermediate_size=14336, num_attention_heads=32, num_key_value_heads=8, head_dim=128),
    "llama-3-70b": dict(architectures=["LlamaForCausalLM"], model_type="llama", hidden_size=8192,
                        intermediate_size=28672, num_attention_heads=64, num_key_value_heads=8, head_dim=128),
    "mistral-7b": dict(architectures=["MistralForCausalLM"], model_type="mistral", hidden_size=4096,
                       intermediate_size=14336, num_attention_heads=32, num_key_value_heads=8, head_dim=128,
                       sliding_window=None),
    "qwen2.5-7b": dict(architectures=["Qwen2ForCausalLM"], model_type="qwen2", hidden_size=3584,
                       intermediate_size=18944, num_attention_heads=28, num_key_value_heads=4),
    "qwen3-8b": dict(architectures=["Qwen3ForCausalLM"], model_type="qwen3", hidden_size=4096,
                     intermediate_size=12288, num_attention_heads=32, num_key_value_heads=8, head_dim=128),
    "gemma-2-9b": dict(architectures=["Gemma2ForCausalLM"], model_type="gemma2", hidden_size=3584,
                       intermediate_size=14336, num_attention_heads=16, num_key_value_heads=8, head_dim=256,
                       query_pre_attn_scalar=256),
    "gemma-3-12b": dict(architectures=["Gemma3ForCausalLM"], model_type="gemma3_text", hidden_size=3840,
                        intermediate_size=15360, num_attention_heads=16, num_key_value_heads=8, head_dim=256,
                        query_pre_attn_scalar=256),
    "phi-3-mini": dict(architectures=["Phi3ForCausalLM"], model_type="phi3", hidden_size=3072,
                       intermediate_size=8192, num_attention_heads=32, num_key_value_heads=32, pad_token_id=0),
    "mixtral-8x7b": dict(architectures=["MixtralForCausalLM"], model_type="mixtral", hidden_size=4096,
                         intermediate_size=14336, num_attention_heads=32, num_key_value_heads=8,
                         num_local_experts=8, num_experts_per_tok=2),
    "qwen3-30b-a3b": dict(architectures=["Qwen3MoeForCausalLM"], model_type="qwen3_moe", hidden_size=2048,
                          intermediate_size=6144, moe_intermediate_size=768, num_attention_heads=32,
                          num_key_value_heads=4, head_dim=128, num_experts=128, num_experts_per_tok=8,
                          decoder_sparse_step=1, mlp_only_layers=[]),
}

#: reduced widths of the same families for the fast test (tests/test_compile_blocks.py)
REDUCED = dict(hidden_size=256, intermediate_size=896, num_attention_heads=8, num_key_value_heads=2, head_dim=32)

#: |analytic − partitioned| / partitioned allowed per case (what the analytic rounds: MoE routing-weight dtypes)
TOLERANCE = 0.002


HEADING = "## torch.compile per block: what the partitioner saves"
INTRO = ("Each row compiles one real transformers decoder layer of the family at its real widths as torchtitan "
         "compiles a block (inductor's decompositions and partition function: torch 2.13's "
         "`min_cut_rematerialization_partition`; `src/vramscope/trace/compiled.py`) and reads the tensors the "
         "partitioned forward saves for backward, per token (the block's input and what it allocates; parameters and "
         "the RoPE cos/sin and mask every block shares are left out), against the analytic "
         "`compiled_layer_bytes_per_token` (per-op SAC: `compiled_op_sac_bytes_per_token`; full AC: the block's "
         "input). `h` is the hidden size; the last column is vramscope's eager-mode model of the same block "
         "(`layer_bytes_per_token`, `op_sac_bytes_per_token`) and how much less the compiled block keeps.\n\n"
         "What the partitioner keeps (`compiled_layer_bytes_per_token`'s docstring has the terms): matmul outputs "
         "(the normed inputs the projections read, o_proj's output, gate, up and their product), rotated q and k, v, "
         "the attention output and its fp32 log-sum-exp, one fp32 rsqrt per row and norm, and the block's input; "
         "norm multiplies, RoPE, SiLU/GELU and the residual sums are recomputed in backward. Under full AC the "
         "block keeps its input alone (and the checkpoint's saved generator state, a constant per block, not per token); under torchtitan's per-op "
         "policy the policy's saves minus those backward never reads (down_proj's output, unless a post-MLP norm "
         "reads it), with biased projections (Qwen2's q/k/v, `aten.addmm`) saved and not counted as matmuls. "
         "Not modelled (estimated as eager, said in the assumptions): adapters (LoRA/DoRA), torchtune's and "
         "LitGPT's own modules, Liger/Unsloth kernels, non-Llama layouts, MLA, shared experts, eager attention "
         "under the per-op policy. The CUDA flash/efficient SDPA kernels save the same q, k, v, output and "
         "log-sum-exp as the CPU flash kernel traced here (plus RNG seeds); this was not run on a GPU "
         "(no device in this session).")


def reduced(cfg: dict) -> dict:
    out = {**cfg, **REDUCED}
    if "num_local_experts" in cfg or "num_experts" in cfg:
        out.update(intermediate_size=384, moe_intermediate_size=192)
        out.update({k: 4 for k in ("num_local_experts", "num_experts") if k in cfg}, num_experts_per_tok=2)
    if cfg.get("query_pre_attn_scalar"):
        out["query_pre_attn_scalar"] = REDUCED["head_dim"]
    return out


def hf_config(cfg: dict, attn: str):
    import transformers

    c = transformers.AutoConfig.for_model(**{k: v for k, v in cfg.items() if k != "architectures"},
                                         vocab_size=128, num_hidden_layers=1)
    c._attn_implementation = attn
    return c


def analytic(cfg: dict, attn: str, ac: str, seq: int, a: float = 2.0):
    spec = spec_from_config({**cfg, "vocab_size": 128, "num_hidden_layers": 1}, "bench")
    if ac == "full":
        return a * spec.hidden_size
    if ac == "op":
        return compiled_op_sac_bytes_per_token(spec, seq, a, attn)
    return compiled_layer_bytes_per_token(spec, seq, a, attn)


def eager(cfg: dict, attn: str, ac: str, seq: int, a: float = 2.0):
    """vramscope's eager-mode model of the same block (the per-op SAC policy's, under ``op``)."""
    from vramscope.memory.activations import effective_attn, layer_bytes_per_token, op_sac_bytes_per_token

    spec = spec_from_config({**cfg, "vocab_size": 128, "num_hidden_layers": 1}, "bench")
    if ac == "full":
        return a * spec.hidden_size
    if ac == "op":
        return op_sac_bytes_per_token(spec, seq, a, attn)
    return layer_bytes_per_token(spec, seq, a, effective_attn(spec, attn))


def case(name: str, cfg: dict, attn: str, ac: str, batch: int, seq: int, run: bool) -> dict:
    from vramscope.trace.compiled import block_saved, per_token

    t = time.time()
    parts = block_saved(hf_config(cfg, attn), batch=batch, seq=seq, ac=ac, run=run)
    measured = sum(per_token(p, batch * seq) for p in parts)
    want = analytic(cfg, attn, ac, seq)
    return {"family": name, "attn": attn, "ac": ac, "graphs": len(parts), "partitioned": measured,
            "analytic": want, "error": None if want is None else (want - measured) / measured,
            "h": cfg["hidden_size"], "seconds": time.time() - t, "eager": eager(cfg, attn, ac, seq),
            "saved": [s for p in parts for s in p.saved if s.kind in ("activation", "input")]}


def cases(quick: bool) -> list[tuple[str, dict, str, str]]:
    out = []
    for name, cfg in FAMILIES.items():
        attns = ("eager",) if cfg["model_type"] == "gemma2" else ("sdpa", "eager")
        for attn in attns:
            out.append((name, cfg, attn, "none"))
        out.append((name, cfg, attns[0], "full"))
        if "num_local_experts" not in cfg and "num_experts" not in cfg and cfg["model_type"] != "gemma2":
            out.append((name, cfg, "sdpa", "op"))
    return out[:6] if quick else out


def eager_cell(r: dict) -> str:
    if r["eager"] is None:
        return "—"
    return f"{r['eager'] / r['h']:.3f}·h ({100 * (r['partitioned'] - r['eager']) / r['eager']:+.0f}% compiled)"


def table(rows: list[dict]) -> str:
    lines = ["| family | attention | AC | saved per token per layer (partitioner) | analytic | error | eager model |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        err = "not modelled" if r["error"] is None else f"{100 * r['error']:+.3f}%"
        ana = "—" if r["analytic"] is None else f"{r['analytic'] / r['h']:.3f}·h"
        lines.append(f"| {r['family']} | {r['attn']} | {r['ac']} | {r['partitioned']:,.1f} B = "
                     f"{r['partitioned'] / r['h']:.3f}·h | {ana} | {err} | {eager_cell(r)} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--write", help="rewrite the table between the markers of this markdown file")
    args = ap.parse_args()
    import torch
    import transformers

    rows = []
    for name, cfg, attn, ac in cases(args.quick):
        r = case(name, cfg, attn, ac, 1, args.seq, run=False)
        rows.append(r)
        err = "—" if r["error"] is None else f"{100 * r['error']:+.3f}%"
        ana = "—" if r["analytic"] is None else f"{r['analytic'] / r['h']:.3f}·h"
        print(f"{name:15} {attn:5} {ac:4} partitioned {r['partitioned'] / r['h']:8.3f}·h  analytic {ana}  {err}"
              f"  ({r['seconds']:.0f} s)", flush=True)
    text = table(rows)
    print(text)
    if args.write:
        from _docs import replace_section
        replace_section(args.write, HEADING, f"{HEADING}\n\n{INTRO}\n\n{text}\n\n(torch {torch.__version__}, "
                                             f"transformers {transformers.__version__}, seq {args.seq}, bf16, batch 1; "
                                             f"regenerate: `python bench/compile_blocks.py --write {args.write}`.)\n")
    bad = [r for r in rows if r["error"] is not None and abs(r["error"]) > TOLERANCE]
    if bad:
        raise SystemExit(f"{len(bad)} cases outside {TOLERANCE:.1%}")


if __name__ == "__main__":
    main()
