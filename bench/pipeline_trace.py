"""torch 2.13's pipeline schedules run per stage rank on torch's fake process group with fake tensors, under
vramscope's live-bytes tracker (issue #14 items 5 and 7).

The one thing fake tensors refuse in ``torch.distributed.pipelining`` is the warm-up vote
(``schedules.py`` ``_PipelineSchedule._warmup_p2p``: ``result.item() == 1`` decides whether every rank built its
stages with static shapes). Every stage here is given ``input_args`` and ``output_args`` (static shapes), the
case in which the vote returns STATIC; the vote's outcome is set instead of read, and from there the schedule,
the stages, their P2P ops (on the fake group: right shapes, no data) and autograd run as torch wrote them.

Each stage is a bias-free ``Linear(H, H)`` on one micro-batch of ``(1, T, H)`` fp32 activations (one "unit" =
``T·H·4`` bytes), so what a rank holds after a step, beyond its inputs and weights, is its weight gradients and
what the schedule keeps: the per-micro-batch receive buffers (``memory/pipeline.py`` ``recv_buffers``). The
step is called as torchtitan calls it (``return_outputs=False``, ``trainer.py``).

Run:  python bench/pipeline_trace.py   (prints each schedule, rank, the persistent buffers traced and modelled)
      python bench/pipeline_trace.py --real [--write docs/accuracy.md]   (a real decoder split as torchtitan
      splits it, FSDP2 inside each stage, every pipeline rank traced beside the analytic stage: ``real_matrix``)
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

H, T = 256, 64
SCHEDULES = {"Schedule1F1B": "1f1b", "ScheduleGPipe": "gpipe", "ScheduleInterleaved1F1B": "interleaved",
             "ScheduleZBVZeroBubble": "zbv"}


def _static_vote() -> None:
    from torch.distributed.pipelining import schedules
    from torch.distributed.pipelining._utils import InferenceMode

    def warmup(self, stages, has_backward, p2p_done):
        for stage in stages:  # what the vote decides when every stage was given static input/output shapes
            stage._inference_mode = InferenceMode.STATIC

    schedules._PipelineSchedule._warmup_p2p = warmup


def trace_schedule(cls_name: str, pp: int, m: int, rank: int, virtual: int = 2) -> dict:
    """Rank ``rank`` of ``pp`` running two steps of ``cls_name`` over ``m`` micro-batches; bytes in units of one
    micro-batch's activations: at the start, the steady step's peak, after it, and the weight gradients."""
    import torch
    import torch.distributed as dist
    import torch.testing._internal.distributed.fake_pg as fake_pg
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.distributed.pipelining import PipelineStage
    from torch.distributed.pipelining import schedules

    from vramscope.trace.tracker import make_tracker

    warnings.filterwarnings("ignore")
    _static_vote()
    if dist.is_initialized():
        dist.destroy_process_group()
    dist.init_process_group("fake", store=fake_pg.FakeStore(), rank=rank, world_size=pp)
    mode = FakeTensorMode()
    tracker = make_tracker(None, mode)
    cls = getattr(schedules, cls_name)
    try:
        with mode, tracker:
            example = torch.randn(1, T, H)
            out = torch.randn(1, T, H, requires_grad=True)
            multi = issubclass(cls, schedules.PipelineScheduleMulti)
            if cls_name == "ScheduleZBVZeroBubble":
                idx, n = [rank, 2 * pp - 1 - rank], 2 * pp
            elif multi:
                idx, n = [rank + k * pp for k in range(virtual)], pp * virtual
            else:
                idx, n = [rank], pp
            stages = [PipelineStage(torch.nn.Linear(H, H, bias=False), i, n, torch.device("cpu"),
                                    input_args=(example,), output_args=(out,)) for i in idx]
            loss = lambda a, b: a.float().pow(2).mean()  # noqa: E731
            sched = cls(stages if multi else stages[0], n_microbatches=m, loss_fn=loss)
            x, target = torch.randn(m, T, H), torch.randn(m, T, H)
            tracker.set_phase("ready")
            for step in (1, 2):
                tracker.set_phase(f"step#{step}")
                args = (x,) if 0 in idx else ()
                kw = dict(target=target, losses=[]) if n - 1 in idx else {}
                sched.step(*args, return_outputs=False, **kw)
                tracker.set_phase(f"idle#{step}")
    finally:
        dist.destroy_process_group()
    log, unit = tracker.log, T * H * 4

    def live(index: int) -> float:
        return sum(log.sizes[k] for k in log.live_at(index)) / unit

    grads = len(idx) * H * H * 4 / unit
    return {"ready": live(log.marks["ready"]), "peak": log.phases["step#2"].bytes / unit,
            "after": live(len(log.events) - 1), "grads": grads,
            "kept": live(len(log.events) - 1) - live(log.marks["ready"]) - grads}


def main() -> None:
    """The markdown table of docs/accuracy.md's pipeline section, printed."""
    from vramscope.memory.pipeline import recv_buffers

    print("| schedule | pp | micro-batches | rank | kept after a step (traced) | recv_buffers | steady-step peak |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for cls_name, name in SCHEDULES.items():
        for pp, m in ((4, 8), (2, 4)):
            for rank in range(pp):
                r = trace_schedule(cls_name, pp, m, rank)
                model = recv_buffers(rank, pp, m, name, 1)
                shown = "not modelled" if name == "zbv" else f"{model}"
                print(f"| {cls_name} | {pp} | {m} | {rank} | {r['kept']:.1f} | {shown} | {r['peak']:.1f} |",
                      flush=True)



# ---------------------------------------------------------------------------------------------------------------
# A real decoder split as torchtitan splits it (src/vramscope/trace/pipeline.py), traced per pipeline rank.
# ---------------------------------------------------------------------------------------------------------------

HEADING_REAL = "## Pipeline stages of a real decoder, split as torchtitan splits it, traced per rank"
#: the phases compared: before the first step, the schedule's forwards and backwards (one phase: a rank runs both
#: interleaved), the optimizer step
REAL_PHASES = ("load", "step", "optimizer_step")


def real_matrix() -> list[tuple[str, int, dict]]:
    """(catalog model, reduced depth, workload keywords): torchtitan's layout (FSDP2 over dp inside each stage)."""
    base = dict(task="pretrain", precision="mixed", parallelism="fsdp", framework="torchtitan", batch=1, seq=1024)
    rows = []
    for schedule in ("1f1b", "gpipe", "interleaved"):  # ZBV: see the docs (its FSDP2 gradients never sharded)
        rows.append(("llama-3-8b", 8, {**base, "num_gpus": 8, "pp": 4, "grad_accum": 8, "pp_schedule": schedule}))
    rows.append(("llama-3-8b", 8, {**base, "num_gpus": 8, "pp": 4, "grad_accum": 8, "grad_checkpointing": "full"}))
    rows.append(("llama-3-8b", 6, {**base, "num_gpus": 4, "pp": 2, "grad_accum": 4}))
    rows.append(("qwen3-8b", 8, {**base, "num_gpus": 8, "pp": 4, "grad_accum": 8}))
    return rows


def analytic_stages(model, kw: dict, reshard_after_forward: bool = False) -> list[dict[str, int]]:
    """The analytic estimate's phases of every pipeline rank (``memory/pipeline.py pipeline_stages``), in bytes
    of tensors (runtime overhead and the allocator's cache left out: the trace counts tensors only);
    ``reshard_after_forward``: torchtitan's "always" (``--pp-reshard-after-forward``)."""
    from vramscope.api import estimate_resolved
    from vramscope.estimators import training
    from vramscope.workload import make_workload

    collected: list = []
    orig = training.pipeline_stages
    training.pipeline_stages = lambda *a, **k: orig(*a, **k, collect=collected)
    try:
        estimate_resolved(model, make_workload(**kw, **({"pp_reshard_after_forward": True}
                                                        if reshard_after_forward else {})))
    finally:
        training.pipeline_stages = orig

    def tensors(ph: dict) -> int:
        return sum(v for k, v in ph.items() if k not in ("allocator_cache", "overhead"))

    out = []
    for st in collected:
        out.append({"load": tensors(st["load"]), "step": max(tensors(st["forward"]), tensors(st["backward"])),
                    "optimizer_step": tensors(st["optimizer_step"])})
    return out


def real_rows(rows: list | None = None) -> list[dict]:
    """Every pipeline rank of every configuration: traced (``trace/pipeline.py``) beside the analytic stage."""
    import logging

    sys.path.insert(0, str(ROOT / "bench"))
    from accuracy_matrix import reduced

    from vramscope.trace.pipeline import trace_pipeline_rank
    from vramscope.workload import make_workload

    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    out = []
    for name, layers, kw in rows or real_matrix():
        model = reduced(name, layers)
        an = analytic_stages(model, kw)
        for rank in range(kw["pp"]):
            tr = trace_pipeline_rank(model, make_workload(**kw), rank)
            err = {p: (an[rank][p] - tr[p]) / tr[p] for p in REAL_PHASES}
            out.append({"model": name, "layers": layers, "kw": kw, "rank": rank, "stages": tr["stages"],
                        "stage_layers": tr["layers"], "trace": tr, "analytic": an[rank], "error": err})
            print(f"{name} L{layers} {kw['pp_schedule'] if 'pp_schedule' in kw else '1f1b'} pp{kw['pp']} "
                  f"m{kw['grad_accum']} ck={kw.get('grad_checkpointing')} rank {rank} stages {tr['stages']} "
                  f"layers {tr['layers']}: " + " ".join(
                      f"{p} {tr[p] / 2**30:.3f}/{an[rank][p] / 2**30:.3f} ({100 * err[p]:+.2f}%)" for p in REAL_PHASES),
                  flush=True)
    return out


def real_main(write: str | None = None) -> None:
    """The real-decoder rows (:func:`real_rows`) as docs/accuracy.md's section (``--write PATH``)."""
    import datetime
    import platform

    import torch
    import transformers

    rows = real_rows()
    worst = max(abs(e) for r in rows for e in r["error"].values())
    busiest = {}
    for r in rows:
        key = (r["model"], r["layers"], repr(sorted(r["kw"].items())))
        if key not in busiest or r["trace"]["step"] > busiest[key]["trace"]["step"]:
            busiest[key] = r
    worst_busiest = max(abs(r["error"]["step"]) for r in busiest.values())
    lines = [HEADING_REAL, "",
             f"Measured {datetime.date.today().isoformat()} by `python bench/pipeline_trace.py --real --write "
             f"docs/accuracy.md` (torch {torch.__version__}, transformers {transformers.__version__}, Python "
             f"{platform.python_version()}): the catalog model at a reduced depth (same layer shapes) split into stages "
             "as torchtitan splits a decoder (pytorch/torchtitan b5bcd76, `distributed/pipeline_parallel.py`: the "
             "embedding and the norm + output head each take one layer's place, `_generate_llm_fqn_per_model_part`; "
             "rank r holds stages r, r + pp, … or the ZBV pair), each stage transformers' own modules in a module "
             "that runs what the split left (`trace/pipeline.py`), FSDP2 over the data-parallel ranks inside each "
             "stage with torchtitan's MixedPrecisionPolicy and its PP default `reshard_after_forward=False`, run "
             "through torch's own `PipelineStage` and schedule (two steps, `return_outputs=False`, then AdamW) as "
             "pipeline rank r (data-parallel index 0) of torch's fake process group on fake tensors. Compared per "
             "rank with the analytic estimator's stage (`--framework torchtitan --pp N --pp-schedule S`, "
             "`memory/pipeline.py pipeline_stages`), tensors only (runtime overhead and the allocator's cache left "
             "out). The schedule interleaves forwards and backwards, so the traced phases are: before the first "
             "step (load), the steady step's forwards and backwards (analytic: the larger of its forward and "
             "backward), the optimizer step. Error = (analytic − trace) / trace.", "",
             f"**{len(rows)} pipeline ranks in {len(busiest)} configurations: worst phase error {100 * worst:.2f}%; "
             f"on each configuration's busiest rank (the per-GPU answer) worst {100 * worst_busiest:.2f}%.**", "",
             "| model | layout | schedule | rank (stages: layers) | load traced / analytic | step traced / analytic "
             "| optimizer step traced / analytic |", "|---|---|---|---|---:|---:|---:|"]
    for r in rows:
        kw, tr, an, err = r["kw"], r["trace"], r["analytic"], r["error"]
        layout = (f"{r['layers']} layers, dp{kw['num_gpus'] // kw['pp']} × pp{kw['pp']}, m{kw['grad_accum']}, "
                  f"b{kw['batch']} s{kw['seq']}" + (f", ckpt {kw['grad_checkpointing']}"
                                                     if kw.get("grad_checkpointing") else ""))
        held = ", ".join(f"{s}: {n}" for s, n in zip(r["stages"], r["stage_layers"]))
        mark = " **(busiest)**" if any(b is r for b in busiest.values()) else ""
        lines.append(f"| {r['model']} | {layout} | {kw.get('pp_schedule', '1f1b')} | {r['rank']} ({held}){mark} | "
                     + " | ".join(f"{tr[p] / 2**30:.3f} / {an[p] / 2**30:.3f} GiB ({100 * err[p]:+.2f}%)"
                                  for p in REAL_PHASES) + " |")
    lines += ["", REAL_NOTES]
    text = "\n".join(lines) + "\n"
    if write:
        sys.path.insert(0, str(ROOT / "bench"))
        from _docs import replace_section

        replace_section(write, HEADING_REAL, text)
    print(text)


REAL_NOTES = (
    "What the real split showed and the analytic model now counts (`memory/pipeline.py`, `estimators/training.py "
    "pipeline`, for `--framework torchtitan`): (1) torchtitan's split is not an even one: with the embedding and "
    "the head counted as a layer each, 8 layers on 4 stages are 2, 3, 2, 1 (Llama-3-8B's 32: 8, 9, 8, 7), so the "
    "second stage, not the first, holds the most layers and the last the fewest; the analytic split was 2, 2, 2, 2 "
    "(load and optimizer step −33% on rank 1, +29% on rank 3; now exact). (2) Under PP torchtitan turns FSDP2's "
    "`reshard_after_forward` off for every unit and torch's `PipelineStage` runs every micro-batch's backward but "
    "the last without gradient sync and without resharding: a stage stays gathered in bf16 from its first "
    "forward to the step's last backward, and its gradients accumulate unsharded in fp32 (`_fsdp_param.py "
    "to_accumulated_grad_if_needed`) until the last micro-batch's reduce-scatter. The analytic stage had two "
    "units in flight and sharded gradients: the step was 15–48% under (rank 0 of 1F1B −26.0%, its busiest rank). "
    "(3) The step's peak moment differs by stage: the first stage peaks at the embedding's backward (its bf16 "
    "gradient of the whole vocabulary beside the fp32 accumulation), the last at the loss's backward (under GPipe "
    "with every micro-batch's logits and log-softmax output waiting) or, at shorter sequences, the output head's "
    "backward (its bf16 weight gradient before it is added to the fp32 one), the middle ones inside a layer's "
    "backward (likewise); the last micro-batch's reduce-scatters run unit by unit in the stage module's order, "
    "the units before sharded. (4) GPipe (`ScheduleGPipe._step_microbatches`: every forward, then every backward "
    "in order) holds m − k micro-batches at the backward of micro-batch k, and no gradient before its first "
    "backward: at k = 0 all m in flight but only the gradients of the units passed, each unit's post-backward "
    "converting its bf16 gradient into the fp32 one (`to_accumulated_grad_if_needed`, both alive: the first "
    "stage's peak is there, at the embedding's), from k = 1 on every gradient (added in place) with one "
    "micro-batch fewer, the last stage's waiting loss tensors (alive through every moment of that backward) one "
    "fewer too, and its output head's backward writes the bf16 weight gradient beside the stage's output logits "
    "(`backward_one_chunk` holds them to its end) and their gradient (the last stage's peak at 512 tokens); the "
    "analytic GPipe stage had every micro-batch in flight beside every gradient and was +6.9% and +7.4% on the "
    "middle stages, +5.3% on the last (now +1.9%, +2.5%, −0.5%; tests/test_pipeline_real.py's 3-stage GPipe at 512 "
    "tokens: +4.8% on the middle stage before, now within 2%). (5) The last micro-batch's reduce-scatters: torch's "
    "`_PipelineScheduleRuntime` (interleaved 1F1B) adds a `REDUCE_GRAD` right after each stage's last backward "
    "(`_add_reduce_grad`), so a rank reduces its stages highest first while each lower stage still holds its last "
    "round's micro-batches (`microbatches_per_round = m // max(1, m // pp)`: 4 here); each unit is resharded "
    "first (`post_backward`: `reshard()` before `foreach_reduce`), and `foreach_reduce` allocates the reduce_dtype "
    "input, clears the gradients, but its loop variable (`for i, (fsdp_param, unsharded_grad) in ...`) keeps the "
    "unit's last gradient (the head's weight) alive through the allocation of the output. Interleaved 1F1B's last "
    "rank (stages 3 and 7, the norm and head alone) peaks there: the head's fp32 gradient, `chunk_cat`'s fp32 input "
    "and the 1/dp output, beside stage 3's gathered layer, its fp32 gradient and 4 micro-batches (0.69 GiB) in "
    "flight; the analytic reduce-scatter moments had none of the output, the other stage in flight, the receive "
    "buffers or the resharding: −4.40% before, +0.40% now (`memory/pipeline.py _reduce_moments`); with full "
    "checkpointing 1F1B's ranks 1 and 2 now peak at a reduce-scatter too (+1.34% → −0.85%, +2.66% → −1.57%). "
    "Remaining differences: the middle stages within +3.04% (inside a layer's backward the trace has freed part "
    "of the oldest micro-batch's saved tensors, counted whole). torchtitan's `fsdp_reshard_after_forward` under PP "
    "(b5bcd76 `distributed/fsdp.py get_fsdp_reshard_after_forward_policy`: \"always\" True, \"never\" False, "
    "\"default\" `not pp_enabled`): \"default\" and \"never\" are the same False, both modelled as above (a "
    "`--torchtitan` TOML with \"never\" and PP was read as ZeRO-2 before, dropping the gathered stage: llama-3-8b, "
    "dp 4 × pp 4, s2048, 60.38 → 69.23 GiB, now equal to \"default\"); \"always\" under PP (`--pp-reshard-after-forward`, "
    "or the TOML's \"always\"): each micro-batch's forward reshards every unit, its backward re-gathers them in "
    "reverse order with one prefetched and keeps them gathered (`stage.py`: `set_reshard_after_backward(False)` but "
    "for the last backward), traced (`trace/pipeline.py shard_stage(..., reshard=True)`) and modelled "
    "(`memory/pipeline.py _always_moments`): llama-3-8b at 4 layers, dp 2 × pp 2, 4 micro-batches, 512 tokens, "
    "step phase 1F1B −0.03% / −0.04%, interleaved −0.00% / +0.17%, load and optimizer step exact (1F1B's last rank "
    "11.782 GiB traced, 12.189 GiB with the PP default: one layer's bf16 copy not yet re-gathered at its peak); on "
    "interleaved 1F1B the rank's other stage is counted resharded (its last operation a forward), which matches the "
    "two traced rows but is not derived from the schedule's order. "
    "ZBV (`ScheduleZBVZeroBubble`) with FSDP2 is not in the table: on the fake process group its "
    "split backward (`stage_backward_weight`) leaves the sharded parameters without gradients after the step "
    "(the optimizer step creates no states: 1.06 GiB traced on rank 2 where its shards and states are 2.4 GiB), "
    "while torch's own composability test runs FSDP under zero bubble with gradients (pytorch/pytorch#134052 "
    "calls FSDP's post-backward after the W steps), so this is most likely the trace's own gap, not found yet; "
    "the analytic ZBV stage keeps its schedule-order count. No gloo proof yet: torch 2.13's own `ScheduleGPipe` "
    "and `Schedule1F1B` hang on two real gloo ranks even with a plain `Linear` stage and no vramscope code "
    "(bench/pipeline_gloo.py, 2026-12-02: both hung after 300 s; rank 0 waits in its backward receive, rank 1 in "
    "its first forward receive after the warm-up vote passed; pytorch/pytorch#132644), so the fake-tensor pipeline "
    "trace is proven against the analytic stage and torch's own schedule order, not yet against real "
    "tensors. Not traced: "
    "tensor or context parallelism inside the stages, `pipeline_parallel_layers_per_stage`, DualPipeV.")


if __name__ == "__main__":
    if "--real" in sys.argv:
        real_main(sys.argv[sys.argv.index("--write") + 1] if "--write" in sys.argv else None)
    else:
        main()
