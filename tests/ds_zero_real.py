"""DeepSpeed ZeRO run for real: two gloo ranks on CPU (DeepSpeed 0.19.8's CPU accelerator, torch 2.13), each
counting on its own rank what ZeRO holds, by DeepSpeed's own objects, at the moments that can peak.

Used by tests/test_deepspeed_real.py (a fast subset) and bench/deepspeed_real.py (the sweep). DeepSpeed's CPU
accelerator runs the same ZeRO code as on a GPU (its ``current_device_name()`` is ``cpu``): what a GPU rank would
hold on the device is told apart from what the offload configurations put in host memory by the object that holds
it, as DeepSpeed places them (``stage3.py``: the fp32 partitions, optimizer states and gradient partition on
``self.device``, ``cpu`` with ``offload_optimizer``; ``partition_parameters.py``: the 16-bit partitions on ``cpu``
with ``offload_param``). DeepSpeed's shared-memory all-reduce kernel (``deepspeed/comm/torch.py build_shm_op``,
a C++ op built at first use, minutes on two cores) is an optional fast path: it is left out, gloo does the
collectives. The client optimizer is torch's AdamW with ``zero_force_ds_cpu_optimizer: false`` (DeepSpeed's CPU
Adam is a C++ op; DS_BUILD_OPS=0 leaves it unbuilt) — the same fp32 states, two per element.
"""

from __future__ import annotations

import gc
import json
import os
import socket

from fixtures import TINY_LLAMA

WORLD = 2
#: small buckets, so that each one is visible beside the tiny model (and no 5e8-element buffer is allocated)
ZERO = {"reduce_bucket_size": 20_000, "allgather_bucket_size": 20_000, "stage3_prefetch_bucket_size": 30_000,
        "stage3_param_persistence_threshold": 100, "stage3_max_live_parameters": 1_000_000_000}


def port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ds_config(case: dict) -> dict:
    zero = {"stage": case["stage"], **ZERO, **case.get("zero", {})}
    if case.get("offload_optimizer"):
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": False}
    if case.get("offload_param"):
        zero["offload_param"] = {"device": "cpu", "pin_memory": False}
    cfg = {"train_micro_batch_size_per_gpu": 2, "gradient_accumulation_steps": 1, "zero_optimization": zero,
           "zero_force_ds_cpu_optimizer": False, "steps_per_print": 10**9}
    if case.get("dtype", "bf16") == "bf16":
        cfg["bf16"] = {"enabled": True}
    return cfg


def _storages(tensors) -> dict[int, int]:
    import torch

    out = {}
    for t in tensors:
        if isinstance(t, torch.Tensor) and t.device.type != "meta":
            s = t.untyped_storage()
            out[s.data_ptr()] = max(out.get(s.data_ptr(), 0), s.nbytes())
    return out


def _live() -> dict[int, int]:
    """Every tensor storage the Python heap keeps alive (autograd's saved activations are not Python objects)."""
    import torch

    return _storages(o for o in gc.get_objects() if isinstance(o, torch.Tensor))


def _flat(x):
    if isinstance(x, (list, tuple)):
        for y in x:
            yield from _flat(y)
    elif isinstance(x, dict):
        for y in x.values():
            yield from _flat(y)
    elif x is not None:
        yield x


def categories(eng, stage: int) -> dict[str, int]:
    """Bytes per category of ZeRO state on this rank, read from DeepSpeed's own objects."""
    opt = eng.optimizer
    params = list(eng.module.parameters())
    c = {}
    states = _storages(_flat([dict(s) for s in opt.optimizer.state.values()]))
    c["optimizer_states"] = sum(states.values())
    if stage == 3:
        # every parameter's 16-bit partition: the trainable ones are views of the optimizer's flat groups
        c["param_partitions"] = sum(_storages(list(_flat(opt.fp16_partitioned_groups_flat))
                                              + [p.ds_tensor for p in params]).values())
        c["fp32_partitions"] = sum(_storages(_flat(opt.fp32_partitioned_groups_flat)).values())
        c["grad_partition"] = sum(_storages([opt.grad_partitions_flat_buffer]).values())
        c["ipg_bucket"] = sum(_storages([b.buffer for b in opt.ipg_buckets.values()]).values())
        full = _storages(p.data for p in params if p.data.numel())
        c["persistent"] = sum(_storages(p.data for p in params if getattr(p, "ds_persist", False)).values())
        c["full_params"] = sum(full.values())
    else:
        c["param_flat"] = sum(_storages(opt.bit16_groups_flat).values())
        c["fp32_partitions"] = sum(_storages(opt.single_partition_of_fp32_groups).values())
        c["fp32_grads"] = sum(_storages(g.grad for g in opt.single_partition_of_fp32_groups).values())
        c["ipg_bucket"] = sum(_storages(_flat([b.buffer for b in opt.ipg_buckets.values()])).values())
        c["grads_in_partition"] = sum(_storages([getattr(opt, "grads_in_partition", None)]).values())
        c["averaged_gradients"] = sum(_storages(_flat(getattr(opt, "averaged_gradients", {}))).values())
        c["param_grads"] = sum(_storages(p.grad for p in params).values())
    return c


def gathered(eng) -> int:
    """Bytes of the whole (unpartitioned) parameters materialized now, persistent ones excluded."""
    return sum(_storages(p.data for p in eng.module.parameters()
                         if p.data.numel() and not getattr(p, "ds_persist", False)).values())


def _model(case):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = {k: v for k, v in TINY_LLAMA.items() if k not in ("architectures", "model_type", "torch_dtype")}
    torch.manual_seed(0)
    if case.get("zero_init"):
        # the HF Trainer's ZeRO-3 path (transformers' is_deepspeed_zero3_enabled: from_pretrained builds the model
        # inside deepspeed.zero.Init with the run's config): every parameter partitioned at construction, in the
        # config's dtype whatever the script asked for (here fp32, as peft's examples/sft loads without 4-bit)
        import deepspeed

        with deepspeed.zero.Init(config_dict_or_path=ds_config(case)):
            net = LlamaForCausalLM(LlamaConfig(**cfg))
    else:
        net = LlamaForCausalLM(LlamaConfig(**cfg))
    if case.get("dtype", "bf16") == "bf16" and not case.get("zero_init"):
        net = net.to(torch.bfloat16)
    if case.get("method") == "lora":
        import peft

        net = peft.get_peft_model(net, peft.LoraConfig(r=8, target_modules="all-linear"))
    return net


def run_case(case: dict) -> dict:
    import torch

    import deepspeed

    net = _model(case)
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-4)
    before = _live()
    eng, _, _, _ = deepspeed.initialize(model=net, optimizer=opt, config=ds_config(case))
    del net, opt
    gc.collect()
    stage = case["stage"]
    res = {"case": case, "init": categories(eng, stage)}
    seen = {}

    def bucket_bytes() -> int:
        bufs = [b.buffer for b in eng.optimizer.ipg_buckets.values()]
        return sum(_storages(_flat(bufs)).values())

    def note(key, value):
        seen[key] = max(seen.get(key, 0), value)

    x = torch.randint(0, TINY_LLAMA["vocab_size"], (2, 16))
    for step in range(case.get("steps", 1)):  # a second step runs on ZeRO-3's recorded trace

        def pack(t, step=step):
            note(f"forward{step}_gathered", gathered(eng))
            return t

        def unpack(t, step=step):
            note(f"backward{step}_gathered", gathered(eng))
            note(f"backward{step}_bucket", bucket_bytes())
            if stage < 3:  # the 16-bit .grad tensors autograd made, and what ZeRO-1/2 copied them into
                opt = eng.optimizer
                note(f"backward{step}_param_grads", sum(_storages(p.grad for p in eng.module.parameters()).values()))
                note(f"backward{step}_partition_grads", sum(_storages(_flat(
                    [getattr(opt, "grads_in_partition", None), getattr(opt, "averaged_gradients", {})])).values()))
            return t

        gc.collect()
        live0 = _live()
        with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
            loss = eng(input_ids=x, labels=x).loss
        res[f"forward{step}"] = categories(eng, stage)
        res[f"forward{step}_end_gathered"] = gathered(eng)
        res[f"forward{step}_live"] = sum(v for k, v in _live().items() if k not in before)
        eng.backward(loss)  # the unpack hooks were bound when forward saved the tensors
        del loss
        gc.collect()
        res[f"backward{step}"] = categories(eng, stage)
        res[f"backward{step}_live"] = sum(v for k, v in _live().items() if k not in before)
        eng.step()
        gc.collect()
        res[f"step{step}"] = categories(eng, stage)
        res[f"step{step}_live"] = sum(v for k, v in _live().items() if k not in before)
        res[f"start{step}_live"] = sum(v for k, v in live0.items() if k not in before)
    res["seen"] = seen
    res["trainable_dtypes"] = sorted({str(p.ds_tensor.dtype if hasattr(p, "ds_tensor") and p.ds_tensor is not None
                                          else p.dtype) for p in eng.module.parameters() if p.requires_grad})
    res["frozen_dtypes"] = sorted({str(p.ds_tensor.dtype if hasattr(p, "ds_tensor") and p.ds_tensor is not None
                                       else p.dtype) for p in eng.module.parameters() if not p.requires_grad})
    res["trainable"] = sum(p.ds_numel if hasattr(p, "ds_numel") else p.numel()
                           for p in eng.module.parameters() if p.requires_grad)
    res["params"] = sum(p.ds_numel if hasattr(p, "ds_numel") else p.numel() for p in eng.module.parameters())
    eng.destroy()
    del eng
    gc.collect()
    return res


def rank_main(rank: int, world: int, master_port: int, cases: list[dict], out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(master_port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank), LOCAL_SIZE=str(world), DS_ACCELERATOR="cpu")
    import sys

    import deepspeed

    # gloo's collectives, not the optional C++ shared-memory kernel (``deepspeed.comm.torch`` the module: the
    # package's attribute of that name is torch itself, re-exported by ``from .comm import *``)
    sys.modules["deepspeed.comm.torch"].build_shm_op = lambda: None
    deepspeed.init_distributed(dist_backend="gloo")
    results = [run_case(c) for c in cases]
    with open(f"{out}.{rank}", "w") as f:
        json.dump(results, f)


def run(cases: list[dict], folder) -> list[list[dict]]:
    """Per rank, per case: what :func:`run_case` measured."""
    import torch.multiprocessing as mp

    os.environ["DS_ACCELERATOR"] = "cpu"
    out = os.path.join(str(folder), "ds_rank")
    mp.spawn(rank_main, args=(WORLD, port(), cases, out), nprocs=WORLD, join=True)
    return [json.loads(open(f"{out}.{r}").read()) for r in range(WORLD)]
