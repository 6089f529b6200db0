"""Where the compiled float8 rowwise + full-checkpointing row's backward gap comes from (issue #14, docs/accuracy.md
"Compile rows"): a checkpointed, torch.compile'd block of three torchao ``Float8Linear`` (rowwise, torchao 0.18.0)
run two ways on real CPU tensors (torch 2.13):

1. as the whole-run trace runs compiled blocks (``trace/compiled.py recording_backend``: inductor's decompositions
   and partitioner, the partitioned backward graph run op by op under the live-bytes tracker), without
   ``inline_input_casts``: at the backward's peak the recomputed forward's fp32 upcast
   (``prims.convert_element_type``, 4 B per element) and bf16 ``abs`` (2 B) of the weights still waiting for
   their backward are alive; torchao's rowwise cast of a weight (``hp_tensor_to_float8_dynamic``:
   ``x.to(float32)``, ``amax(abs)``) is the same node in the forward and in the backward's second-axis cast, so
   the graph keeps it from the recomputed forward to the backward; with ``inline_input_casts`` (the trace's way
   now) only the weight being cast has its fp32 copy, as in eager mode;
2. through inductor itself (``torch.compile`` default backend, its C++ CPU code read with
   ``run_and_get_code``): the backward's buffers (``empty_strided_cpu``) hold no weight-shaped fp32 or ``abs``
   tensor at all, only the float8 casts (1 B per element), the per-row fp32 scales and the bf16 weight gradients:
   inductor inlines a cheap pointwise node into each of its users (``torch/_inductor/ir.py
   should_realize_on_reuse``: realized only above ``realize_reads_threshold`` = 4 reads, a large inner function or,
   on a CPU, a heavy op) instead of storing it.

So the op-by-op run held tensors inductor never allocates; the trace now runs such casts where each consumer
reads them (``inline_input_casts``), and the analytic model (eager mode's casts) is unchanged.
Run: python bench/compile_float8_inductor.py
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

D, F, T = 256, 512, 128


def block():
    import torch
    from torch.utils.checkpoint import checkpoint
    from torchao.float8 import Float8LinearConfig, convert_to_float8_training

    class Mlp(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.up = torch.nn.Linear(D, F, bias=False)
            self.gate = torch.nn.Linear(D, F, bias=False)
            self.down = torch.nn.Linear(F, D, bias=False)

        def forward(self, x):
            return x + self.down(torch.nn.functional.silu(self.gate(x)) * self.up(x))

    class Checkpointed(torch.nn.Module):  # torchtitan's order: checkpoint wrapper inside the compiled block
        def __init__(self) -> None:
            super().__init__()
            self.b = Mlp()

        def forward(self, x):
            return checkpoint(self.b, x, use_reentrant=False)

    torch.manual_seed(0)
    m = Checkpointed().to(torch.bfloat16)
    convert_to_float8_training(m, config=Float8LinearConfig.from_recipe_name("rowwise"))
    return m, torch.randn(T, D, dtype=torch.bfloat16, requires_grad=True)


def op_by_op(inline: bool = True) -> list[tuple[int, str, tuple, str]]:
    """The live tensors at the backward's peak, the partitioned graph run op by op (the trace's way; ``inline``:
    with ``inline_input_casts``)."""
    import torch
    from torch.utils._pytree import tree_leaves

    from vramscope.trace import compiled
    from vramscope.trace.compiled import recording_backend
    from vramscope.trace.tracker import make_tracker

    kept = compiled.inline_input_casts
    if not inline:
        compiled.inline_input_casts = lambda gm: 0
    m, x = block()
    y = torch.compile(m, fullgraph=True, backend=recording_backend([]))(x)
    tr, info = make_tracker(compiled=True), {}
    cls = tr.__class__
    orig = cls.__torch_dispatch__

    def dispatch(self, func, types, args=(), kwargs=None):
        n = len(self.log.sizes)
        out = orig(self, func, types, args, kwargs)
        shapes = [(tuple(t.shape), str(t.dtype).split(".")[-1]) for t in tree_leaves(out)
                  if isinstance(t, torch.Tensor)]
        for k in range(n, len(self.log.sizes)):
            info[k] = (str(func), *shapes[0]) if shapes else (str(func), (), "")
        return out

    cls.__torch_dispatch__ = dispatch
    try:
        with tr:
            tr.set_phase("backward")
            y.float().sum().backward()
    finally:
        compiled.inline_input_casts = kept
    log = tr.log
    return sorted(((log.sizes[k], *info.get(k, ("?", (), ""))) for k in log.live_at(log.phases["backward"].index)),
                  reverse=True)


def inductor_buffers() -> list[tuple[str, tuple, str]]:
    """The backward graph's buffers in inductor's generated code (name, shape, dtype)."""
    import torch
    from torch._inductor.utils import run_and_get_code

    m, x = block()
    mc = torch.compile(m, fullgraph=True)
    _, codes = run_and_get_code(lambda: mc(x).float().sum().backward())
    bw = codes[-1]
    return [(n, tuple(int(d) for d in s.split(",") if d.strip()), t) for n, s, t in
            re.findall(r"(buf\d+) = empty_strided_cpu\(\(([^)]*)\), \([^)]*\), torch\.(\w+)\)", bw)]


def weight_shaped(shape: tuple) -> bool:
    return set(shape) == {D, F} and len(shape) == 2


def main() -> None:
    for inline in (False, True):
        live = op_by_op(inline)
        held = [r for r in live if weight_shaped(r[2]) and r[3] == "float32"]
        print(f"op by op{' with inline_input_casts' if inline else ''}, at the backward's peak: weight-shaped fp32 "
              f"tensors {len(held)} {[r[1] for r in held]}; weight-shaped bf16 abs "
              f"{sum(1 for r in live if weight_shaped(r[2]) and 'abs' in r[1])}")
    bufs = inductor_buffers()
    fp32 = [b for b in bufs if weight_shaped(b[1]) and b[2] == "float32"]
    print("inductor's backward code:", len(bufs), "buffers; weight-shaped fp32:", len(fp32),
          "; weight-shaped float8:", sum(1 for b in bufs if weight_shaped(b[1]) and "float8" in b[2]))


if __name__ == "__main__":
    main()
