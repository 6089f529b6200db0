"""DeepSpeed ZeRO run for real, the sweep: ZeRO-1/2/3, ZeRO-3 with optimizer (and parameter) offload, ZeRO-2 with
optimizer offload, full fine-tuning and peft LoRA, two optimizer steps each, on two gloo ranks (DeepSpeed 0.19.8's
CPU accelerator; tests/ds_zero_real.py, whose fast subset is tests/test_deepspeed_real.py), beside vramscope's
per-rank analytic components of the same run.

Run:  python bench/deepspeed_real.py [--write docs/accuracy.md]   (several minutes on two cores)

What a GPU rank would hold on the device is told from what offload puts in host memory by the object holding it, as
DeepSpeed places it (tests/ds_zero_real.py). Bytes per rank (rank 0; rank 1 holds the same within one tensor).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from _docs import replace_section  # noqa: E402

CASES = [{"stage": 1}, {"stage": 2}, {"stage": 3}, {"stage": 3, "method": "lora"},
         {"stage": 3, "method": "lora", "zero_init": True},
         {"stage": 2, "offload_optimizer": True}, {"stage": 3, "offload_optimizer": True},
         {"stage": 3, "offload_optimizer": True, "offload_param": True},
         {"stage": 3, "method": "lora", "offload_optimizer": True, "offload_param": True}]
HEADING = "## DeepSpeed ZeRO run for real (two gloo ranks)"


def _name(c: dict) -> str:
    off = " + offload " + ("optimizer+params" if c.get("offload_param") else "optimizer") \
        if c.get("offload_optimizer") else ""
    init = " (zero.Init)" if c.get("zero_init") else ""
    return f"ZeRO-{c['stage']} {c.get('method', 'full')}{init}{off}"


def measured(r: dict) -> tuple[dict, dict]:
    """(device, host) bytes of rank state after the second step (the bucket: its peak in backward)."""
    s, c = r["step1"], r["case"]
    bucket = max(s.get("ipg_bucket", 0), r["seen"].get("backward1_bucket", 0))
    off_opt, off_par = c.get("offload_optimizer"), c.get("offload_param")
    if c["stage"] == 3:
        params = {"16-bit partitions": s["param_partitions"], "persistent": s["persistent"]}
        grads = {"gradient partition": s["grad_partition"], "bucket": bucket}
    else:
        params = {"16-bit parameters": s["param_flat"]}
        grads = {"gradient partition": r["seen"].get("backward1_partition_grads", 0), "bucket": bucket}
    states = {"fp32 master": s["fp32_partitions"], "optimizer states": s["optimizer_states"]}
    dev, host = {}, {}
    dev.update(params) if not off_par else (host.update({k: v for k, v in params.items() if k != "persistent"}),
                                            dev.update(persistent=params.get("persistent", 0)))
    (host if off_opt else dev).update(states)
    dev["bucket"] = grads["bucket"]
    if c["stage"] == 1:  # the 16-bit gradients autograd made, whole (ZeRO-2's are views of the bucket/partition)
        dev["16-bit gradients"] = r["seen"].get("backward1_param_grads", 0)
    (host if off_opt else dev)["gradient partition"] = grads["gradient partition"]
    return dev, host


def analytic(tiny, c: dict) -> dict:
    """vramscope's per-rank components of the same run (the sizes of tests/ds_zero_real.py's config)."""
    import ds_zero_real as ds

    from vramscope.api import estimate_resolved
    from vramscope.workload import make_workload

    z = ds.ZERO
    lora = {"lora_rank": 8} if c.get("method") == "lora" else {"precision": "deepspeed"}
    off = {"offload": "optimizer+params" if c.get("offload_param") else "optimizer"} \
        if c.get("offload_optimizer") else {}
    w = make_workload(task="finetune", method=c.get("method", "full"), dtype="bf16", **lora, **off,
                      num_gpus=ds.WORLD, parallelism=f"zero{c['stage']}", batch=2, seq=16, grad_checkpointing=False,
                      reduce_bucket=z["reduce_bucket_size"], zero_prefetch=z["stage3_prefetch_bucket_size"],
                      zero_persistence=z["stage3_param_persistence_threshold"])
    est = estimate_resolved(tiny, w)
    step, bwd = est.phases["optimizer_step"], est.phases["backward"]
    return {"weights": step["weights"], "gradients": max(step.get("gradients", 0), bwd.get("gradients", 0)),
            "states": step.get("optimizer_states", 0)}


def main() -> None:
    import ds_zero_real as ds
    from fixtures import TINY_LLAMA

    from vramscope.sources import resolve

    ap = argparse.ArgumentParser()
    ap.add_argument("--write")
    ap.add_argument("--results", default=str(ROOT / "bench" / "results" / "deepspeed_real.json"))
    ap.add_argument("--reuse", action="store_true", help="read --results instead of running DeepSpeed")
    args = ap.parse_args()
    if args.reuse:
        ranks = json.loads(Path(args.results).read_text())
    else:
        with tempfile.TemporaryDirectory() as d:
            ranks = ds.run([{**c, "steps": 2} for c in CASES], d)
        Path(args.results).write_text(json.dumps(ranks, indent=1) + "\n")
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "config.json").write_text(json.dumps(TINY_LLAMA))
        tiny = resolve(d)
        rows = []
        for r in ranks[0]:
            dev, host = measured(r)
            a = analytic(tiny, r["case"])
            est_dev = a["weights"] + a["gradients"] + a["states"]
            rows.append(f"| {_name(r['case'])} | {sum(dev.values()):,} | {est_dev:,} | "
                        + ", ".join(f"{k} {v:,}" for k, v in dev.items() if v) + f" | {sum(host.values()):,} |")
    text = (f"{HEADING}\n\nDeepSpeed 0.19.8 on its CPU accelerator, two gloo ranks, the tiny Llama (hidden 64, "
            "133,440 parameters, bf16; LoRA r=8 all-linear: 18,688 trainable), torch AdamW, buckets shrunk to be "
            "visible (`reduce_bucket_size` 20000, `stage3_prefetch_bucket_size` 30000, "
            "`stage3_param_persistence_threshold` 100), two steps. Per rank, the ZeRO state a GPU would hold (model "
            "states and the bucket; gathered parameters and activations apart), read from DeepSpeed's own objects "
            "(`tests/ds_zero_real.py`), beside vramscope's weights + gradients (the backward's) + optimizer states "
            "of the same run; bytes. `python bench/deepspeed_real.py --write docs/accuracy.md`.\n\n"
            "| run | measured on the GPU | vramscope | measured, by object | measured on the host |\n"
            "|---|---:|---:|---|---:|\n" + "\n".join(rows) + "\n\n"
            "Each run agrees to one tensor: ZeRO-1/2 keep a parameter that straddles two ranks' partitions whole on "
            "both (`grads_in_partition` sums the parameters in the partition), and ZeRO-1's 16-bit gradients are "
            "their peak at the last saved tensor's unpack (the embedding's not made yet). What is on the GPU under "
            "offload is the persistent parameters and the bucket, allocated whole: everything else is on the host.\n")
    print(text)
    if args.write:
        replace_section(args.write, HEADING, text)


if __name__ == "__main__":
    main()
