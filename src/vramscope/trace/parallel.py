"""Tensor parallelism (with or without sequence parallelism) on the real transformers model, for the trace.

The plan is torchtitan's dense Llama plan (pytorch/torchtitan 0.3.0 ``models/common/decoder_sharding.py`` and
``models/llama3/sharding.py``; the same placements as its earlier ``parallelize_llama.apply_tp``), written with
torch's own parallel styles (``torch.distributed.tensor.parallel``) on transformers' module names:

* the token embedding row-wise (vocabulary split), its output ``Shard(1)`` under sequence parallelism (a
  reduce-scatter), else ``Replicate`` (an all-reduce);
* q/k/v and gate/up column-wise, o and down row-wise (output ``Shard(1)`` under SP, else ``Replicate``);
* under SP the norms are ``SequenceParallel`` and the attention and MLP inputs are all-gathered from ``Shard(1)``
  to ``Replicate`` (``PrepareModuleInput``) before the column-wise linears, which save that gathered input;
* the output head column-wise with ``Shard(-1)`` logits for torch's ``loss_parallel`` (torchtitan's default,
  ``disable_loss_parallel = False``), the loss and its backward inside ``loss_parallel()``.

FSDP2 then shards every unit over the data-parallel dimension of the 2-D mesh (torchtitan: TP first, FSDP on
``dp_shard × cp``); the parameters are DTensors on both dimensions.
"""

from __future__ import annotations

from typing import Any

from ..errors import Text, VramscopeError

#: transformers' Llama-layout module names the plan needs in every decoder layer
LAYER_MODULES = ("input_layernorm", "post_attention_layernorm", "self_attn.q_proj", "self_attn.k_proj",
                 "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")


def device_mesh(world: int, tp: int) -> Any:
    """A (dp, tp) CPU mesh over the current process group (fake or gloo), ``world = dp · tp``."""
    from torch.distributed.device_mesh import init_device_mesh

    return init_device_mesh("cpu", (world // tp, tp), mesh_dim_names=("dp", "tp"))


def fake_safe_mesh_concatenate() -> Any:
    """FSDP2 over a TP mesh concatenates the two sub-meshes (``_fsdp_param.py _init_sharding_spec_tp``), which
    builds the rank tensor with real ops; under ``FakeTensorMode`` that bookkeeping is run outside the fake mode
    (it is no model tensor). Returns a function that undoes the patch."""
    from torch._subclasses.fake_tensor import unset_fake_temporarily
    from torch.distributed.device_mesh import DeviceMesh

    orig = DeviceMesh._concatenate

    def concatenate(*a: Any, **k: Any) -> Any:
        with unset_fake_temporarily():
            return orig(*a, **k)

    DeviceMesh._concatenate = staticmethod(concatenate)
    def undo() -> None:
        DeviceMesh._concatenate = orig

    return undo


def apply_tensor_parallel(net: Any, tp_mesh: Any, sequence_parallel: bool) -> None:
    """torchtitan's plan (module docstring) on a transformers causal LM of the Llama layout."""
    from torch.distributed.tensor import Replicate, Shard
    from torch.distributed.tensor.parallel import (ColwiseParallel, PrepareModuleInput, RowwiseParallel,
                                                   SequenceParallel, parallelize_module)
    from transformers.modeling_layers import GradientCheckpointingLayer

    base = net.get_base_model() if hasattr(net, "get_base_model") else net
    inner = getattr(base, "model", None)
    layers = [m for m in base.modules() if isinstance(m, GradientCheckpointingLayer)]
    names = {n for layer in layers[:1] for n, _ in layer.named_modules()}
    if inner is None or not layers or any(n not in names for n in LAYER_MODULES) or \
            base.get_output_embeddings() is None or not hasattr(inner, "norm"):
        raise VramscopeError("trace_unsupported", reason=Text("r_trace_tp_layout"))
    if base.get_output_embeddings().weight is base.get_input_embeddings().weight:
        raise VramscopeError("trace_unsupported", reason=Text("r_trace_tp_tied"))
    seq = Shard(1) if sequence_parallel else Replicate()
    top = {"model.embed_tokens": RowwiseParallel(input_layouts=Replicate(), output_layouts=seq),
           "lm_head": ColwiseParallel(input_layouts=seq, output_layouts=Shard(-1), use_local_output=False)}
    if sequence_parallel:
        top["model.norm"] = SequenceParallel()
    parallelize_module(base, tp_mesh, top)
    for layer in layers:
        plan: dict[str, Any] = {
            "self_attn.q_proj": ColwiseParallel(), "self_attn.k_proj": ColwiseParallel(),
            "self_attn.v_proj": ColwiseParallel(), "self_attn.o_proj": RowwiseParallel(output_layouts=seq),
            "mlp.gate_proj": ColwiseParallel(), "mlp.up_proj": ColwiseParallel(),
            "mlp.down_proj": RowwiseParallel(output_layouts=seq)}
        if sequence_parallel:
            plan.update({
                "input_layernorm": SequenceParallel(), "post_attention_layernorm": SequenceParallel(),
                "self_attn": PrepareModuleInput(input_kwarg_layouts={"hidden_states": Shard(1)},
                                                desired_input_kwarg_layouts={"hidden_states": Replicate()}),
                "mlp": PrepareModuleInput(input_layouts=(Shard(1),), desired_input_layouts=(Replicate(),))})
        parallelize_module(layer, tp_mesh, plan)

