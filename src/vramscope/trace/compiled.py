"""What a torch.compile'd decoder block saves for backward: the partitioned graph's saved tensors (torch 2.13).

torchtitan compiles each transformer block on its own (pytorch/torchtitan v0.3.0
``torchtitan/distributed/compile.py`` ``apply_compile``: ``transformer_block.compile(backend="inductor",
fullgraph=True)``, after activation checkpointing wrapped the block, ``activation_checkpoint.py``). Inductor
hands AOTAutograd its decomposition table (``torch._inductor.decomposition.select_decomp_table``) and its
``partition_fn`` (``torch/_inductor/compile_fx.py``: the joint-graph passes, then
``min_cut_rematerialization_partition(..., compiler="inductor")``), which splits the joint forward/backward graph
and decides what the forward keeps for backward: the placeholders of the backward graph that are not tangents.

``block_saved`` compiles a real transformers decoder layer (built from its config, never from repository code)
with exactly that decomposition table and partition function and records the saved set; the forward and
backward graphs then run as plain FX graphs (no code generation, so no C++ compiler), or, with ``run=False``,
the compile stops once the partition is known (full-width shapes without running them). Each saved tensor is
classified: a parameter, the block's own input (the residual stream the previous block returned), a tensor
every block shares (RoPE's cos/sin), or an activation the block allocates.

The whole-run trace (``vramscope trace --compile --compile-components model``, ``estimator.prepare_training``)
compiles the blocks the same way (:func:`compile_blocks`) inside the trace's ``FakeTensorMode``: torchtitan's
order (float8 conversion, :func:`wrap_checkpoint`, compile, then FSDP2 on the compiled blocks). Dynamo runs
under the fake mode (an infra mode it accepts) and past the live-bytes tracker (``ignore_compile_internals``,
``tracker.py``); the forward and backward graphs the partitioner returns run op by op through the dispatcher,
so the tracker sees what the compiled forward returns and saves (AOTAutograd's ``CompiledFunction`` holds the
saved set until backward) and every tensor the backward graph allocates. What inductor would fuse is not: the
graphs' intermediate tensors are each allocated, so the transients inside a block (not what it saves) are an
upper bound of inductor's buffers; one kind is run as inductor runs it, a dtype conversion or ``abs`` of a graph
input read by several consumers (:func:`inline_input_casts`: inductor recomputes it in each, where run op by op it
was kept from the first to the last). Each block compiles on its own, as Dynamo does under torchtitan (one graph per
plain block, guarded on the module; checkpoint-wrapped blocks share one).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional


@dataclass(frozen=True)
class SavedTensor:
    name: str
    shape: tuple
    dtype: str
    nbytes: int
    #: "param" | "input" (the block's own input) | "shared" (RoPE cos/sin, the mask: one per model) | "rng" (the
    #: checkpoint's saved generator state: a constant, 16 B on CUDA) | "activation"
    kind: str


@dataclass
class Partition:
    saved: list[SavedTensor] = field(default_factory=list)

    def bytes(self, *kinds: str) -> int:
        return sum(t.nbytes for t in self.saved if t.kind in kinds)


class _Partitioned(Exception):
    """Raised once the partition is recorded when the graphs are not to run."""


def _classify(name: str) -> str:
    n = name.lower()
    if "_parameters_" in n or "_buffers_" in n:
        return "param"
    if "position_embeddings" in n or "cos" in n or "sin" in n or "mask" in n:
        return "shared"
    return "input"


def recording_backend(partitions: list[Partition], run: bool = True) -> Any:
    """A torch.compile backend that partitions as inductor does and records what the forward saves."""
    import torch
    from functorch.compile import make_boxed_func
    from torch._dynamo.backends.common import aot_autograd
    from torch._functorch import config as functorch_config
    from torch._inductor import compile_fx as inductor
    from torch._inductor.decomposition import select_decomp_table

    def backend(gm: Any, example_inputs: list) -> Any:
        kinds = [_classify(n.name) for n in gm.graph.nodes if n.op == "placeholder"]

        def partition(joint: Any, joint_inputs: Any, **kwargs: Any) -> Any:
            fw, bw = inductor.partition_fn(joint, joint_inputs, **kwargs)
            primal_kind = {f"primals_{i + 1}": k for i, k in enumerate(kinds)}
            rec = Partition()
            for node in bw.graph.nodes:
                if node.op != "placeholder" or node.name.startswith("tangents"):
                    continue
                val = node.meta.get("val")
                if not isinstance(val, torch.Tensor):
                    continue  # a SymInt or a seed: no storage of its own
                nbytes = math.prod(val.shape) * val.element_size()
                kind = primal_kind.get(node.name, "rng" if node.name.startswith("rng_state") else "activation")
                rec.saved.append(SavedTensor(node.name, tuple(int(d) for d in val.shape), str(val.dtype).split(".")[-1],
                                             int(nbytes), kind))
            partitions.append(rec)
            if not run:
                raise _Partitioned()
            return fw, bw

        def nop(g: Any, _inputs: Any) -> Any:
            inline_input_casts(g)
            return make_boxed_func(g.forward)

        with functorch_config.patch(unlift_effect_tokens=True):
            return aot_autograd(fw_compiler=nop, bw_compiler=nop, partition_fn=partition,
                                decompositions=select_decomp_table(), keep_inference_input_mutations=True)(
                gm, example_inputs)

    return backend


#: pointwise ops on one tensor that inductor recomputes in each consumer rather than store (below)
_INLINED = ("prims.convert_element_type.default", "aten.abs.default")
#: views between them and the graph input (no storage of their own)
_VIEWS = ("aten.permute.default", "aten.t.default", "aten.transpose.int", "aten.view.default",
          "aten._unsafe_view.default", "aten.expand.default")


def inline_input_casts(gm: Any) -> int:
    """Run a graph input's cheap pointwise chain where each consumer reads it, as inductor does, not once for all.

    torch 2.13 inductor stores a pointwise node read by several consumers only when
    ``TensorBox.mark_reuse`` / ``StorageBox.should_realize_on_reuse`` (``torch/_inductor/ir.py``) says so: more
    than ``config.realize_reads_threshold`` (4) reads, a large inner function, on a CPU a heavy op (exp, log,
    sigmoid, tanh …), or a consumer in ``lowering.py``'s ``needs_realized_inputs`` (mm, bmm, convolution …,
    ``graph.py run_node``). A dtype conversion or ``abs`` of one graph input is none of these, so inductor
    inlines it into every consumer and no buffer holds it. Run op by op, the graph allocates it once and keeps it
    to its last consumer: torchao 0.18's rowwise float8 cast of a weight (``float8_scaling_utils.py
    hp_tensor_to_float8_dynamic``: ``x.to(float32)``, ``amax(abs(...))``) is one node in the forward cast and the
    backward's other-axis cast, so a recomputed, compiled block's backward would hold each weight's fp32 copy
    and ``abs`` from the recomputed forward to its backward (traced: 6 bytes per element of the six weights
    after ``down_proj``, 912 MiB per Llama-3-8B block; inductor's own CPU code for such a block holds none of
    them, bench/compile_float8_inductor.py). Each such op on a graph input (through views) is given one copy per
    consumer, placed before it. Returns the copies made."""
    graph = gm.graph
    made = 0
    for node in reversed(list(graph.nodes)):
        if node.op != "call_function" or str(node.target) not in _INLINED or len(node.users) < 2:
            continue
        root = node.args[0] if node.args else None
        while getattr(root, "op", None) == "call_function" and str(root.target) in _INLINED + _VIEWS:
            root = root.args[0]
        if getattr(root, "op", None) != "placeholder":
            continue
        for user in list(node.users)[1:]:
            with graph.inserting_before(user):
                copy = graph.node_copy(node)
            user.replace_input_with(node, copy)
            made += 1
    if made:
        graph.lint()
        gm.recompile()
    return made


def decoder_model(config: Any, dtype: Any, layers: int = 1, empty: bool = False) -> Any:
    """A transformers causal LM with ``layers`` decoder layers (its own classes, from the config); ``empty``:
    built on the meta device and given uninitialised CPU storage (nothing computed, pages untouched)."""
    import torch
    import transformers

    config.num_hidden_layers = layers
    for key in ("layer_types", "mlp_only_layers"):
        if isinstance(getattr(config, key, None), list):
            setattr(config, key, getattr(config, key)[:layers])
    if not empty:
        return transformers.AutoModelForCausalLM.from_config(config, dtype=dtype)
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config, dtype=dtype)
    return model.to_empty(device="cpu")


def wrap_checkpoint(model: Any, ac: str, every: int = 1) -> None:
    """torchtitan's activation checkpointing of each block (v0.3.0 ``activation_checkpoint.py``): ``full`` wraps
    the block in ``ptd_checkpoint_wrapper``; ``op`` adds the ``SelectiveAC`` policy (trace/build.py); ``every``
    > 1 is its per-layer selective AC (``_apply_layer_sac``: the count starts at 1 and the blocks whose count
    divides by ``ac_freq`` are wrapped)."""
    if ac == "none":
        return
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper

    context_fn = None
    if ac == "op":
        from torch.utils.checkpoint import create_selective_checkpoint_contexts

        from .build import sac_policy
        context_fn = lambda: create_selective_checkpoint_contexts(sac_policy())  # noqa: E731
    layers = model.model.layers
    for i, block in enumerate(list(layers)):
        if (i + 1) % every:
            continue
        kwargs = {"context_fn": context_fn} if context_fn else {}
        layers[i] = checkpoint_wrapper(block, preserve_rng_state=False, **kwargs)


@contextmanager
def compiled_run() -> Iterator[None]:
    """A trace of compiled blocks: Dynamo's caches (the compiled blocks, their guards on this run's modules) are
    cleared afterwards."""
    import torch

    try:
        yield
    finally:
        torch._dynamo.reset()


def compile_blocks(model: Any, partitions: Optional[list] = None) -> list:
    """torchtitan's ``apply_compile`` on a transformers model (after :func:`wrap_checkpoint`, before FSDP2, as
    torchtitan orders them): each entry of ``model.model.layers`` compiled on its own with ``fullgraph=True``
    and ``capture_scalar_outputs``, through :func:`recording_backend` (inductor's decompositions and partition
    function; the partitioned graphs run op by op). Returns the list the partitions are recorded in."""
    import torch

    partitions = [] if partitions is None else partitions
    torch._dynamo.reset()
    torch._dynamo.config.capture_scalar_outputs = True  # as torchtitan's apply_compile sets
    backend = recording_backend(partitions, run=True)
    for block in model.model.layers:
        block.compile(backend=backend, fullgraph=True)
    return partitions


def block_saved(config: Any, dtype: Any = None, batch: int = 1, seq: int = 64, ac: str = "none",
                run: bool = True, layers: int = 1) -> list[Partition]:
    """Compile each decoder layer of a ``layers``-layer model built from ``config`` (torchtitan's per-block
    compile) and run one forward (and backward when ``run``) on ``batch × seq`` tokens; the partitions recorded,
    one per compiled graph."""
    import torch

    dtype = dtype or torch.bfloat16
    torch.manual_seed(0)
    model = decoder_model(config, dtype, layers, empty=not run)
    model.train()
    wrap_checkpoint(model, ac)
    partitions: list[Partition] = []
    torch._dynamo.reset()
    torch._dynamo.config.capture_scalar_outputs = True  # as torchtitan's apply_compile sets
    backend = recording_backend(partitions, run=run)
    for block in model.model.layers:
        block.compile(backend=backend, fullgraph=True)
    ids = torch.randint(0, config.vocab_size, (batch, seq))
    try:
        out = model(input_ids=ids, use_cache=False)
        if run:
            out.logits.float().sum().backward()
    except _Partitioned:
        pass
    except Exception as e:  # dynamo wraps the backend's exception
        if not any(isinstance(c, _Partitioned) for c in _causes(e)):
            raise
    finally:
        torch._dynamo.reset()
    return partitions


def _causes(e: BaseException) -> list:
    out = []
    while e is not None and len(out) < 10:
        out.append(e)
        e = e.__cause__ or e.__context__
    return out


def per_token(partition: Partition, tokens: int, *kinds: str) -> float:
    return partition.bytes(*(kinds or ("activation", "input"))) / tokens
