"""torch 2.13's own async-TP code on the CPU, for tests/test_async_tp.py (run as a subprocess: it creates a fake
process group).

A sequence-parallel Llama block's TP region (the attention's all-gather → wq and reduce-scatter after wo, the
MLP's all-gather → w1, w3 and reduce-scatter after w2), traced with make_fx on fake tensors of the given shapes, goes
through inductor's micro-pipeline TP fusions (``micro_pipeline_tp.py``: ``fuse_all_gather_matmul``,
``fuse_matmul_reduce_scatter``) under ``_symmetric_memory._test_mode`` (torch's own switch that says "symmetric
memory is enabled" where no CUDA is). Then each fused node's op implementation
(``_fused_all_gather_matmul_impl``, ``_fused_matmul_reduce_scatter_impl``) runs on meta tensors of the node's
shapes until it asks ``get_symm_mem_workspace`` for its workspace: the size it asks for is recorded. Prints JSON:
the fused ops, in graph order, with the bytes each asked for.
"""

from __future__ import annotations

import json
import sys
import warnings


class _Asked(Exception):
    pass


def main(b: int, s: int, h: int, f: int, tp: int) -> None:
    warnings.simplefilter("ignore")
    import torch
    import torch.distributed as dist
    import torch.distributed._functional_collectives as funcol
    import torch.distributed._symmetric_memory as sm
    import torch._inductor.fx_passes.micro_pipeline_tp as mp
    from torch._inductor.decomposition import select_decomp_table
    from torch._inductor.fx_passes.post_grad import view_to_reshape
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.proxy_tensor import make_fx
    from torch.fx.passes.fake_tensor_prop import FakeTensorProp
    from torch.testing._internal.distributed.fake_pg import FakeStore

    dist.init_process_group("fake", store=FakeStore(), rank=0, world_size=tp)
    group = dist.group.WORLD.group_name

    def block(x, wq, wo, w1, w3, w2):  # torchtitan's TP plan with sequence parallelism, the tokens on dim 1
        a = funcol.all_gather_tensor(x, 1, group)
        x = x + funcol.reduce_scatter_tensor(torch.matmul(torch.matmul(a, wq), wo), "sum", 1, group)
        a = funcol.all_gather_tensor(x, 1, group)
        y = torch.nn.functional.silu(torch.matmul(a, w1)) * torch.matmul(a, w3)
        return x + funcol.reduce_scatter_tensor(torch.matmul(y, w2), "sum", 1, group)

    bf16 = torch.bfloat16
    shapes = [(b, s // tp, h), (h, h // tp), (h // tp, h), (h, f // tp), (h, f // tp), (f // tp, h)]
    with FakeTensorMode() as mode:
        args = [torch.empty(sh, dtype=bf16) for sh in shapes]
    gm = make_fx(block, decomposition_table=select_decomp_table())(*args)
    view_to_reshape(gm)
    # the pass itself runs only where NCCL is (a CUDA build); its pattern matching is device-independent
    torch.distributed.is_nccl_available = lambda: True
    with sm._test_mode():
        for ag in mp.find_all_gather_patterns(gm.graph):
            mp.fuse_all_gather_matmul(ag)
        gm.recompile()
        # the nodes the first fusions inserted get their shapes (inductor has them from its own propagation)
        FakeTensorProp(gm, mode).propagate(*args)
        for rs in mp.find_reduce_scatter_patterns(gm.graph):
            mp.fuse_matmul_reduce_scatter(rs)
        gm.recompile()
        FakeTensorProp(gm, mode).propagate(*args)

    def asked(group_name, min_size):
        raise _Asked(min_size)

    sm.get_symm_mem_workspace = asked

    def meta(node):
        v = node.meta["val"]
        return torch.empty_strided(v.shape, v.stride(), dtype=v.dtype, device="meta")

    fused = []
    for n in gm.graph.nodes:
        target = str(n.target)
        if "symm_mem" not in target:
            continue
        try:
            if "fused_all_gather_matmul" in target:
                shard, bs, gather_dim, name = n.args[:4]
                sm._fused_all_gather_matmul_impl(torch.ops.aten.mm.out, meta(shard), [meta(x) for x in bs], None,
                                                 [{} for _ in bs], [None for _ in bs], gather_dim, name,
                                                 n.kwargs.get("return_A", True))
            else:
                a, w, op, scatter_dim, name = n.args[:5]
                sm._fused_matmul_reduce_scatter_impl(torch.ops.aten.mm.out, meta(a), meta(w), {}, bf16, op,
                                                     scatter_dim, name)
            size = None
        except _Asked as e:
            size = e.args[0]
        fused.append({"op": target.split(".")[1], "asked": size})
    print(json.dumps({"fused": fused}))


if __name__ == "__main__":
    main(*(int(x) for x in sys.argv[1:6]))
