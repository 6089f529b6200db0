"""Adapters under FSDP, run for real: two gloo ranks on CPU (torch 2.13's FSDP1 and FSDP2, peft's LoRA,
transformers' bitsandbytes QLoRA), each measuring on its own rank what FSDP really holds, against the analytic model.

FSDP1 is wrapped as the Hugging Face Trainer wraps a peft model (transformers ``distributed/fsdp.py``
``update_fsdp_plugin_peft``: peft's ``fsdp_auto_wrap_policy``, ``use_orig_params=False``) under accelerate's
``MixedPrecision(bf16, bf16, bf16)`` with accelerate's upcast of flat parameters that require grad
(``accelerator.py prepare_model``), and autocast around forward as accelerate's native AMP runs it. Each rank
reads FSDP's own objects: the flat parameters (the shard at rest), ``_full_param_padded`` and ``_mp_shard`` (what
an all-gather allocated) at every saved tensor's pack and unpack (forward and backward), and the gradients.
A CPU run is synchronous, so it shows one decoder layer gathered at a time; on a GPU, FSDP1's rate limiter lets
the next layer's all-gather be issued while this one computes (two in flight), which the analytic moment counts.
"""

import json

import pytest

from conftest import requires_torch
import gloo
from fixtures import TINY_LLAMA
from vramscope.api import estimate_resolved
from vramscope.memory.parallel import bnb_quant_state_bytes, fsdp_buffers, largest_layer_params
from vramscope.sources import resolve
from vramscope.workload import make_workload

pytestmark = [requires_torch, pytest.mark.trace]

WORLD = 2


def _model(case, folder):
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig, LlamaConfig, LlamaForCausalLM

    if case.get("quant"):
        # FSDP-QLoRA as peft's docs run it: 4-bit weights stored as bf16 (bnb_4bit_quant_storage) so that they can
        # join a flat parameter, the model's other weights in that dtype too
        q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=torch.bfloat16, bnb_4bit_quant_storage=torch.bfloat16)
        return AutoModelForCausalLM.from_pretrained(folder, quantization_config=q, dtype=torch.bfloat16,
                                                    device_map="cpu")
    cfg = {k: v for k, v in TINY_LLAMA.items() if k not in ("architectures", "model_type", "torch_dtype")}
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(**cfg)).to(getattr(torch, case["dtype"]))


def _fsdp1_rank(rank, world, port, folder, out_path, case):
    import functools
    import os

    import torch
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        import peft
        from peft.utils.other import fsdp_auto_wrap_policy
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
        from torch.distributed.fsdp import MixedPrecision
        from torch.distributed.fsdp.wrap import transformer_auto_wrap_policy
        from transformers.models.llama.modeling_llama import LlamaDecoderLayer

        net = peft.get_peft_model(_model(case, folder), peft.LoraConfig(r=8, target_modules="all-linear"))
        policy = fsdp_auto_wrap_policy(net) if case["policy"] == "peft" else functools.partial(
            transformer_auto_wrap_policy, transformer_layer_cls={LlamaDecoderLayer})
        bf16 = torch.bfloat16
        # backward_prefetch=None: accelerate's default (FullyShardedDataParallelPlugin: 'NO_PREFETCH'); BACKWARD_PRE:
        # torch's own default, which peft's accelerate configs and Answer.AI's script run
        from torch.distributed.fsdp import BackwardPrefetch

        fsdp = FSDP(net, auto_wrap_policy=policy, use_orig_params=case["orig"], device_id=torch.device("cpu"),
                    mixed_precision=MixedPrecision(param_dtype=bf16, reduce_dtype=bf16, buffer_dtype=bf16),
                    backward_prefetch=BackwardPrefetch.BACKWARD_PRE if case.get("prefetch") else None)
        units = [(type(m.module).__name__, m._handle) for m in FSDP.fsdp_modules(fsdp) if m._handle is not None]
        for _, h in units:  # accelerate 1.15 prepare_model: "upcasting" flat parameters that require grad
            if h.flat_param.requires_grad and h.flat_param.dtype != torch.float32:
                h.flat_param.data = h.flat_param.data.to(torch.float32)
                h._orig_param_dtype = torch.float32

        def gathered() -> int:
            total = 0
            for _, h in units:
                for name in ("_full_param_padded", "_mp_shard"):
                    t = getattr(h.flat_param, name, None)
                    if t is not None:
                        total += t.untyped_storage().nbytes()
            return total

        seen = {"forward": 0, "backward": 0}

        def pack(t):
            seen["forward"] = max(seen["forward"], gathered())
            return t

        def unpack(t):
            seen["backward"] = max(seen["backward"], gathered())
            return t

        shard = sum(h.flat_param.numel() * h.flat_param.element_size() for _, h in units)
        state_bytes = _absmax_bytes(fsdp) if case.get("quant") else 0
        x = torch.randint(0, TINY_LLAMA["vocab_size"], (2, 16))
        at_rest = gathered()
        with torch.autograd.graph.saved_tensors_hooks(pack, unpack), torch.autocast("cpu", dtype=bf16):
            out = fsdp(input_ids=x, labels=x)
        with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
            out.loss.backward()
        result = {
            "shard_bytes": shard, "at_rest": at_rest, "gathered": seen,
            # the all-gather buffer of each unit kind: what one unshard allocates (bytes)
            "unsharded": {name: max(h.flat_param._padded_unsharded_size.numel() * 2 for n, h in units if n == name)
                          for name, _ in units},
            "grad_bytes": sum(h.flat_param.grad.numel() * h.flat_param.grad.element_size()
                              for _, h in units if h.flat_param.grad is not None),
            "layer_units_with_grad": sum(1 for n, h in units if n == "LlamaDecoderLayer"
                                         and h.flat_param.grad is not None),
            "units": len(units),
        }
        if case.get("quant"):
            result["quant_state_absmax"] = state_bytes
        with open(f"{out_path}.{rank}", "w") as f:
            json.dump(result, f)
    finally:
        dist.destroy_process_group()


def _absmax_bytes(net) -> int:
    """Bytes of every bitsandbytes 4-bit module's absmax (and, double-quantized, its fp32 scales) on this rank."""
    import bitsandbytes as bnb

    total = 0
    for m in net.modules():
        if isinstance(m, bnb.nn.Linear4bit):
            qs = m.quant_state
            total += qs.absmax.numel() * qs.absmax.element_size()
            if qs.nested:
                total += qs.state2.absmax.numel() * qs.state2.absmax.element_size()
    return total


def _run_fsdp1(tmp_path, case):
    import torch
    import torch.multiprocessing as mp

    folder = tmp_path / "model"
    if case.get("quant"):
        from transformers import LlamaConfig, LlamaForCausalLM

        cfg = {k: v for k, v in TINY_LLAMA.items() if k not in ("architectures", "model_type", "torch_dtype")}
        torch.manual_seed(0)
        LlamaForCausalLM(LlamaConfig(**cfg)).to(torch.bfloat16).save_pretrained(folder)
    out = tmp_path / "rank"
    mp.spawn(_fsdp1_rank, args=(WORLD, gloo.free_port(), str(folder), str(out), case), nprocs=WORLD, join=True)
    return [json.loads((tmp_path / f"rank.{r}").read_text()) for r in range(WORLD)]


@pytest.fixture
def tiny(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(TINY_LLAMA))
    return resolve(str(tmp_path))


def _padding(units: int) -> int:
    """FSDP1 pads every flat parameter to a multiple of the world size: under (world - 1) fp32 elements each."""
    return units * (WORLD - 1) * 4


@pytest.mark.parametrize("prefetch", [False, True], ids=["no-prefetch", "backward-pre"])
def test_fsdp1_lora_fp32_base_under_accelerate_mixed_precision(tiny, tmp_path, prefetch):
    """peft's SFT example without 4-bit loads the base in fp32; accelerate's mixed precision gathers it in bf16."""
    ranks = _run_fsdp1(tmp_path, dict(dtype="float32", policy="peft", orig=False, prefetch=prefetch))
    spec = tiny.spec
    w = make_workload(task="finetune", method="lora", lora_rank=8, num_gpus=WORLD, parallelism="fsdp",
                      fsdp_version=1, precision="mixed", grad_checkpointing=False,
                      fsdp_backward_prefetch="pre" if prefetch else "none")
    est = estimate_resolved(tiny, w)
    buf = fsdp_buffers(spec, 1, 2.0, 4.0, trains_layers=False, trains_embeddings=False, backward_prefetch=prefetch)
    root, layer = buf.forward_loss, (buf.forward_layer - buf.forward_loss) // 2
    for r in ranks:
        # at rest: the fp32 shard of base and adapters (accelerate keeps the adapters fp32), nothing gathered
        assert r["at_rest"] == 0
        assert abs(r["shard_bytes"] - est.phases["load"]["weights"]) <= _padding(r["units"])
        # one all-gather buffer per unit kind, in bf16: the root (embedding, final norm, head) and a decoder layer
        assert r["unsharded"]["PeftModel"] == pytest.approx(root, abs=WORLD * 2)
        assert r["unsharded"]["LlamaDecoderLayer"] == pytest.approx(layer, abs=WORLD * 2)
        assert layer == largest_layer_params(spec) * 2
        # forward: the root stays gathered (FSDP1 never reshards the root after forward) beside the layer that
        # computes (one on a synchronous CPU run; two in flight on a GPU: buf.forward_layer = 2 layers + root)
        lora_units = r["unsharded"]["Linear"]
        assert r["unsharded"]["PeftModel"] + r["unsharded"]["LlamaDecoderLayer"] <= r["gathered"]["forward"] \
            <= r["unsharded"]["PeftModel"] + r["unsharded"]["LlamaDecoderLayer"] + 2 * lora_units
        # backward: the layer gathered again beside the root (and, with BACKWARD_PRE, the next layer prefetched in
        # its pre-backward hook) = the analytic backward moment's unsharded bytes
        assert r["gathered"]["backward"] - buf.backward_layer[0] <= 2 * lora_units + 2 * WORLD * 2
        assert r["gathered"]["backward"] >= buf.backward_layer[0] - 2 * WORLD * 2
        # gradients: none for the frozen layer units; the adapters' fp32 shards, as the optimizer step holds them
        assert r["layer_units_with_grad"] == 0
        assert abs(r["grad_bytes"] - est.phases["optimizer_step"]["gradients"]) <= _padding(r["units"])


def test_fsdp1_frozen_and_trainable_in_one_unit_get_the_whole_flat_gradient(tiny, tmp_path):
    """use_orig_params=True with the layers as units (no peft policy): each flat parameter requires grad when any
    of its parameters does (torch _flat_param.py _validate_tensors_to_flatten), so its gradient covers the frozen
    base too — what peft's FSDP guide means by 'use_orig_params needs to be False to realize GPU memory savings'."""
    ranks = _run_fsdp1(tmp_path, dict(dtype="float32", policy="layers", orig=True))
    spec = tiny.spec
    lora = estimate_resolved(tiny, make_workload(task="finetune", method="lora", lora_rank=8)).model.trainable_params
    layers = spec.num_layers * largest_layer_params(spec)
    for r in ranks:
        assert r["layer_units_with_grad"] == spec.num_layers
        # each layer unit's fp32 gradient shard: the frozen base's parameters and the adapters together, where the
        # analytic model (adapters wrapped apart, as the Trainer wraps them) holds the adapters' only
        assert abs(r["grad_bytes"] - (layers + lora) * 4 // WORLD) <= _padding(r["units"])


def test_fsdp1_qlora_quant_state_is_whole_on_every_rank(tiny, tmp_path):
    """FSDP-QLoRA through transformers' bitsandbytes loader (bitsandbytes' CPU backend): the packed 4-bit data in
    bf16 storage is flat-parameterized and sharded; the quant state (absmax, nested absmax) stays whole."""
    ranks = _run_fsdp1(tmp_path, dict(quant="nf4-dq", policy="peft", orig=False))
    spec = tiny.spec
    state = bnb_quant_state_bytes(spec, "nf4-dq")
    assert state > 0
    # the run calls get_peft_model only (fp32 adapters, no k-bit casts): --kbit-prep none, not TRL's sharded default
    w = make_workload(task="finetune", method="qlora", quant="nf4-dq", lora_rank=8, num_gpus=WORLD,
                      parallelism="fsdp", fsdp_version=1, grad_checkpointing=False, kbit_prep="none")
    est = estimate_resolved(tiny, w)
    assert "a_bnb_quant_state" in [n.key for n in est.assumptions]
    layer = largest_layer_params(spec)
    per_layer_linear = layer - 2 * spec.hidden_size  # the two RMSNorm weights stay bf16
    for r in ranks:
        assert r["quant_state_absmax"] == state  # the same, whole, on both ranks
        # the layer unit gathers the packed 4-bit data (4 values per bf16 element) and the norms
        assert r["unsharded"]["LlamaDecoderLayer"] == pytest.approx(per_layer_linear // 2 + 2 * spec.hidden_size * 2,
                                                                    abs=WORLD * 2)
        # the analytic sharded weights: everything but the quant state divided, the quant state whole
        assert abs(r["shard_bytes"] + state - est.phases["load"]["weights"]) <= _padding(r["units"]) + 64


def test_fsdp2_lora_fp32_base_analytic_matches_trace():
    """FSDP2 (accelerate's units) over an fp32 base under accelerate's mixed precision: the trace of rank 0 on a
    fake process group (proven equal to real gloo ranks by tests/test_trace.py) and the analytic estimate agree
    phase by phase, checkpointed as the Trainer runs LoRA (two real Llama-3-8B layers, four ranks)."""
    from test_trace_matrix import two_layers

    from vramscope.trace.estimator import trace_estimate

    model = two_layers("llama-3-8b")
    w = make_workload(task="finetune", seq=256, num_gpus=4, parallelism="fsdp", method="lora", precision="mixed",
                      grad_checkpointing=True)
    tr, an = trace_estimate(model, w), estimate_resolved(model, w)

    def tensors(comps):
        return sum(v for k, v in comps.items() if k != "allocator_cache")

    # the fp32 shard at rest, the bf16 gathers in forward and backward
    assert an.phases["load"]["weights"] == pytest.approx(tr.phases["load"]["weights"], rel=0.001)
    assert an.phases["load"]["weights"] == pytest.approx(model.params * 4 / 4, rel=0.02)
    for phase, t_ph in tr.phases.items():
        assert tensors(an.phases[phase]) == pytest.approx(tensors(t_ph), rel=0.01), phase
    assert "a_fsdp_lora_fp32" in [n.key for n in an.assumptions]


def test_precision_mixed_for_lora_only_where_fsdp_gathers_an_fp32_base(tiny):
    """--precision with adapters stays refused, naming the field, except LoRA sharded by FSDP under a framework
    whose policy gathers in 16 bits (hf, accelerate): there the base is stored fp32 and costs 4 bytes per parameter."""
    from vramscope.errors import VramscopeError

    for bad in (dict(method="lora", precision="mixed"), dict(method="qlora", precision="mixed", num_gpus=2,
                                                              parallelism="fsdp"),
                dict(method="lora", precision="mixed", num_gpus=2, parallelism="fsdp", framework="pytorch")):
        with pytest.raises(VramscopeError) as e:
            make_workload(task="finetune", **bad)
        assert e.value.params["field"] == "precision"
    kw = dict(task="finetune", method="lora", num_gpus=2, parallelism="fsdp")
    mixed, plain = (estimate_resolved(tiny, make_workload(**kw, **x)) for x in (dict(precision="mixed"), {}))
    base = tiny.params
    assert mixed.phases["load"]["weights"] - plain.phases["load"]["weights"] == pytest.approx(base * 2 / 2, rel=0.01)


def test_peft_guide_accelerate_config_reads_as_its_run(tmp_path):
    """peft's examples/sft/configs/fsdp_config.yaml (the guide's FSDP LoRA run): FSDP1 (no fsdp_version), BACKWARD_PRE,
    mixed_precision bf16 — with LoRA now a workload (fp32 base under accelerate's mixed precision), not a refusal."""
    from vramscope.configs import from_accelerate_fsdp

    cfg = tmp_path / "fsdp_config.yaml"
    cfg.write_text("compute_environment: LOCAL_MACHINE\ndistributed_type: FSDP\ndowncast_bf16: 'no'\nfsdp_config:\n"
                   "  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP\n  fsdp_backward_prefetch: BACKWARD_PRE\n"
                   "  fsdp_cpu_ram_efficient_loading: true\n  fsdp_forward_prefetch: false\n"
                   "  fsdp_offload_params: false\n  fsdp_sharding_strategy: FULL_SHARD\n"
                   "  fsdp_state_dict_type: SHARDED_STATE_DICT\n  fsdp_sync_module_states: true\n"
                   "  fsdp_use_orig_params: false\nmachine_rank: 0\nmixed_precision: bf16\nnum_machines: 1\n"
                   "num_processes: 8\n")
    opts = from_accelerate_fsdp(str(cfg))
    assert opts["fsdp_version"] == 1 and opts["fsdp_backward_prefetch"] == "pre" and opts["precision"] == "mixed"
    w = make_workload(task="finetune", method="lora", **opts)
    assert w.num_gpus == 8 and w.fsdp_backward_prefetch == "pre"
    est = estimate_resolved(resolve("llama-2-7b"), w)
    assert "a_fsdp_lora_fp32" in [n.key for n in est.assumptions]
