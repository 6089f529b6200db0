"""Megatron-LM's own alltoall-dispatcher permutation code, run on the CPU: what it saves for backward.

Megatron Core needs Python 3.12 from 0.17 on (this venv is 3.11) and Transformer Engine, so the module cannot be
imported; its permutation functions are plain torch, though. This script takes ``get_capacity``, ``permute``,
``unpermute`` and ``sort_chunks_by_idxs`` verbatim from ``megatron/core/transformer/moe/moe_utils.py`` at a named
release (``git show <tag>:...`` in a Megatron-LM clone; default: the fetch tool's mirror at core_v0.19.0) and
runs the dispatch → combine paths of ``MoEAlltoAllTokenDispatcher`` and ``MoEAllGatherTokenDispatcher`` (core_v0.19.0 ``token_dispatcher.py``:
``dispatch_preprocess`` permutes tokens and probs, ``dispatch_postprocess`` sorts the chunks by local expert,
``combine_preprocess`` sorts them back, ``combine_postprocess`` unpermutes without probs: they were applied inside
the experts) on one rank (the all-to-all is the identity for a balanced routing), unfused (``moe_permute_fusion``
off: the fused kernels are Transformer Engine's CUDA code). A saved-tensors hook records the storages autograd
keeps (each once, by storage), beside the bytes of ``vramscope.memory.moe_dispatch``.

    python bench/megatron_moe_dispatch.py [--repo PATH] [--tag core_v0.19.0] [--write validation/reference/megatron_moe_dispatch.json]
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

MIRROR = "/work/.mirror/NVIDIA+Megatron-LM/repo"
FUNCTIONS = ("get_capacity", "permute", "unpermute", "sort_chunks_by_idxs")
#: (tokens, experts, top-k, hidden, local experts, capacity factor or None, drop and pad)
CASES = [(512, 64, 8, 256, 8, None, False),     # DeepSeek-V3-like routing, dropless
         (512, 64, 8, 256, 8, 1.0, True),       # capacity 1.0, padded to capacity
         (384, 128, 8, 128, 16, 1.25, True),    # Qwen3-MoE-like, capacity 1.25
         (1024, 8, 2, 256, 2, None, False)]     # Mixtral-like, dropless
#: (tokens per rank, experts, top-k, hidden, EP ranks) for the allgather dispatcher
ALLGATHER = [(256, 64, 8, 128, 8), (512, 8, 2, 128, 4)]


def megatron_functions(repo: str, tag: str) -> dict[str, Any]:
    src = subprocess.run(["git", "--git-dir", str(Path(repo) / ".git") if (Path(repo) / ".git").exists() else repo,
                          "show", f"{tag}:megatron/core/transformer/moe/moe_utils.py"],
                         capture_output=True, text=True, check=True).stdout
    tree = ast.parse(src)
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in FUNCTIONS]
    assert {d.name for d in defs} == set(FUNCTIONS), [d.name for d in defs]
    import torch

    # the unfused path: no Transformer Engine (HAVE_TE False, the fused_* kernels absent)
    ns: dict[str, Any] = {"torch": torch, "math": math, "Optional": Optional, "Tuple": tuple, "List": list,
                          "HAVE_TE": False, "is_te_min_version": lambda v: False}
    for name in ("fused_permute", "fused_permute_with_probs", "fused_permute_and_pad_with_probs", "fused_unpermute",
                 "fused_sort_chunks_by_index", "fused_sort_chunks_by_index_with_probs"):
        ns[name] = None
    module = ast.Module(body=[d for d in defs], type_ignores=[])
    for d in defs:
        d.decorator_list = []
    exec(compile(module, f"megatron@{tag}/moe_utils.py", "exec"), ns)
    return ns


def run_allgather(fn: dict[str, Any], tokens: int, experts: int, k: int, hidden: int, ep: int) -> dict[str, Any]:
    """``MoEAllGatherTokenDispatcher`` (core_v0.19.0) on one rank of ``ep``: the group's ``ep·tokens`` gathered
    (here given whole), this rank's ``experts/ep`` local experts permuted without probs, their probs taken with
    ``masked_select``, unpermuted. A balanced routing (token t to experts t·k … t·k+k−1 mod E), so that the rank's
    rows are ``tokens·k``."""
    import torch

    g = ep * tokens
    x = torch.randn(g, hidden, dtype=torch.bfloat16, requires_grad=True)
    idx = (torch.arange(g).unsqueeze(1) * k + torch.arange(k)) % experts
    probs = torch.zeros(g, experts).scatter(1, idx, torch.rand(g, k)).requires_grad_()
    routing_map = torch.zeros(g, experts, dtype=torch.bool).scatter(1, idx, True)
    seen: dict[int, int] = {}

    def pack(t):
        s = t.untyped_storage()
        seen.setdefault(s.data_ptr(), s.nbytes())
        return t

    local = experts // ep
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        local_map = routing_map[:, :local].contiguous()
        local_probs = probs[:, :local].contiguous()
        tokens_per_expert = local_map.sum(dim=0).long()
        permuted, _, mapping, _, _ = fn["permute"](x, local_map, num_out_tokens=int(tokens_per_expert.sum()),
                                                   fused=False)
        local_probs = local_probs.T.contiguous().masked_select(local_map.T.contiguous())
        expert_out = permuted * local_probs.unsqueeze(-1)  # stands for the experts
        out = fn["unpermute"](expert_out, mapping, restore_shape=x.shape, routing_map=local_map, fused=False)
    # the stand-in's own saves (permuted, probs) are not the dispatcher's
    drop = {permuted.untyped_storage().data_ptr(), local_probs.untyped_storage().data_ptr()}
    out.float().sum().backward()
    return {"dispatcher": "allgather", "tokens": tokens, "experts": experts, "k": k, "hidden": hidden, "ep": ep,
            "capacity_factor": None, "drop_and_pad": False, "probs_bytes": probs.element_size(),
            "routed_rows": int(tokens_per_expert.sum()),
            "saved_bytes": sum(v for p, v in seen.items() if p not in drop)}


def run_case(fn: dict[str, Any], tokens: int, experts: int, k: int, hidden: int, local: int,
             cf: Optional[float], pad: bool) -> dict[str, Any]:
    import torch

    torch.manual_seed(0)
    x = torch.randn(tokens, hidden, dtype=torch.bfloat16, requires_grad=True)
    logits = torch.randn(tokens, experts, requires_grad=True)
    probs_all = torch.softmax(logits, dim=-1)
    top, idx = probs_all.topk(k, dim=-1)
    if cf is not None:  # Megatron's topk_routing_with_score_function with capacity: drop past each expert's capacity
        capacity = fn["get_capacity"](tokens * k, experts, cf)
        routing_map = torch.zeros(tokens, experts, dtype=torch.bool).scatter(1, idx, True)
        if pad:
            # drop_and_pad: the top-capacity tokens of each expert by score, every column exactly capacity
            score = torch.zeros(tokens, experts).scatter(1, idx, top.detach())
            keep = score.topk(capacity, dim=0).indices
            routing_map = torch.zeros(tokens, experts, dtype=torch.bool).scatter(0, keep, True)
    else:
        capacity = None
        routing_map = torch.zeros(tokens, experts, dtype=torch.bool).scatter(1, idx, True)
    probs = torch.zeros_like(logits).scatter(1, idx, top).detach().requires_grad_()
    num_out = capacity * experts if pad else int(routing_map.sum())
    seen: dict[int, int] = {}

    def pack(t):
        s = t.untyped_storage()
        seen.setdefault(s.data_ptr(), s.nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        permuted, permuted_probs, sorted_indices, _, _ = fn["permute"](
            x, routing_map, probs=probs, num_out_tokens=num_out, fused=False, drop_and_pad=pad)
        # dispatch_postprocess: chunks sorted by local expert (one rank: the experts are the "ranks × local" grid)
        per_expert = routing_map.sum(dim=0) if not pad else torch.full((experts,), capacity)
        ranks = experts // local
        grid = per_expert.view(ranks, local)
        by_expert = torch.arange(experts).view(ranks, local).T.ravel()
        by_rank = torch.arange(experts).view(local, ranks).T.ravel()
        if pad:
            sorted_in = permuted.view(ranks, local, capacity, hidden).transpose(0, 1).contiguous().flatten(0, 2)
        else:
            sorted_in, _ = fn["sort_chunks_by_idxs"](permuted, grid.ravel(), by_expert, probs=permuted_probs)
        expert_out = sorted_in * 1  # the experts (TE's grouped GEMMs) stand out of this measurement
        if pad:
            back = expert_out.view(local, ranks, capacity, hidden).transpose(0, 1).contiguous().flatten(0, 2)
        else:
            back, _ = fn["sort_chunks_by_idxs"](expert_out, grid.T.ravel(), by_rank)
        out = fn["unpermute"](back, sorted_indices, restore_shape=x.shape, routing_map=routing_map, fused=False,
                              drop_and_pad=pad)
    out.float().sum().backward()
    return {"dispatcher": "alltoall", "tokens": tokens, "experts": experts, "k": k, "hidden": hidden, "local_experts": local,
            "capacity_factor": cf, "drop_and_pad": pad, "routed_rows": int(num_out),
            "saved_bytes": sum(seen.values())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", default=MIRROR)
    ap.add_argument("--tag", default="core_v0.19.0")
    ap.add_argument("--write")
    args = ap.parse_args()
    fn = megatron_functions(args.repo, args.tag)
    from vramscope.memory.moe_dispatch import dispatcher_saved

    rows = []
    for r in [run_case(fn, *case) for case in CASES] + [run_allgather(fn, *case) for case in ALLGATHER]:
        ours = dispatcher_saved(r["tokens"], r["experts"], r["k"], r["capacity_factor"], r["drop_and_pad"],
                                r["dispatcher"], r.get("probs_bytes", 4))
        rows.append(r)  # the record holds Megatron's figures only
        print(json.dumps({**r, "vramscope_bytes": ours}))
    if args.write:
        Path(args.write).write_text(json.dumps({"megatron": args.tag, "torch": __import__("torch").__version__,
                                                "cases": rows}, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
