"""What async tensor parallelism adds on each rank (torchtitan 0.3.0 ``compile.enable_async_tensor_parallel``,
torch 2.13).

torchtitan 0.3.0's ``_maybe_enable_async_tp`` (``torchtitan/distributed/compile.py``; ``CompileConfig`` refuses it
without ``model`` compiled; its ``llama3_405b`` preset turns it on) registers the TP group's symmetric memory
(``enable_symm_mem_for_group``) and sets ``torch._inductor.config._micro_pipeline_tp``; inductor's post-grad pass (``_inductor/fx_passes/micro_pipeline_tp.py``
``micro_pipeline_tp_pass``) then replaces, in each compiled block's forward and backward graphs,

* ``all_gather(A_shard) @ B_0, @ B_1, ...`` (sequence parallelism's gather before the column-parallel wq/wk/wv,
  w1/w3 and the loss-parallel output head) by ``symm_mem.fused_all_gather_matmul``, and
* ``reduce_scatter(A @ B)`` (after the row-parallel wo and w2) by ``symm_mem.fused_matmul_reduce_scatter``.

What these allocate (``torch/distributed/_symmetric_memory/__init__.py``):

* ``_fused_all_gather_matmul_impl``: the gathered ``A`` (returned, and saved for backward as the plain all-gather's
  output was) and each full output — the same tensors the unfused graph held; the chunks are views of them;
* ``_fused_matmul_reduce_scatter_impl``: ``stacked_partials`` (the full ``A @ B``, as the unfused matmul's output)
  reduced into the shard — again the unfused graph's tensors;
* one symmetric-memory **workspace per process group**, ``get_symm_mem_workspace(group, min_size)``: a uint8 tensor
  from ``_SymmetricMemory.empty_strided_p2p`` that is re-allocated only to grow and is kept in the module's
  ``_group_name_to_workspace_tensor`` for the life of the process. ``_pipelined_all_gather_and_consume`` asks for the
  shard's bytes, ``_pipelined_produce_and_all2all`` for two output chunks (``2 · out.chunk(tp)[0]``: it double-buffers),
  so the workspace is the largest of these over every fused op: two ``(b · T/tp) × h`` chunks of the row-parallel
  outputs. It is not taken from torch's caching allocator (the CUDA backend maps it itself, with a signal pad of
  ``_SymmetricMemory.signal_pad_size`` bytes), so ``max_memory_allocated`` never sees it; the device does.
* every second shard's matmul runs on a side stream (``_get_backend_stream``), and torch keeps one cuBLAS workspace
  per (handle, stream) pair (``CublasHandlePool.cpp`` ``cublas_handle_stream_to_workspace``): one more workspace,
  from the caching allocator.

Not modelled: ``inductor_force_stride_order`` on the fused ops' inputs (the pass restrides ``A`` so that the gather or
scatter dimension leads); where the producer is an inductor kernel its layout is chosen so, without a copy, and only a
fixed-layout producer with batch > 1 would be copied — that is not visible on the CPU.
"""

from __future__ import annotations

from ..i18n import register

#: torch 2.13.0 ``torch._C._distributed_c10d._SymmetricMemory.signal_pad_size`` (its default, read on the CPU build)
SIGNAL_PAD = 9216


def fused_requests(hidden: int, batch: int, tokens: int, tp: int, act_bytes: float) -> dict[str, int]:
    """The workspace bytes each kind of fused op asks for (``min_size`` of ``get_symm_mem_workspace``) in one
    decoder layer, ``tokens`` being a rank's sequence before sequence parallelism splits it ``tp`` ways.

    ``all_gather_matmul``: the norm output's shard (``_pipelined_all_gather_and_consume``: ``shard.numel() ·
    element_size()``); ``matmul_reduce_scatter``: two chunks of the row-parallel output (``_pipelined_produce_and_all2all``:
    ``out_chunks[0].numel() · element_size() · 2``). Backward's fused ops have the same shapes (the gradient of a
    row-parallel output is gathered; a column-parallel input's gradient is scattered)."""
    shard = int(batch * -(-tokens // tp) * hidden * act_bytes)
    return {"all_gather_matmul": shard, "matmul_reduce_scatter": 2 * shard}


def symm_workspace(hidden: int, batch: int, tokens: int, tp: int, act_bytes: float) -> int:
    """The TP group's symmetric-memory workspace once the first step ran: the largest request, and its signal pad."""
    return max(fused_requests(hidden, batch, tokens, tp, act_bytes).values()) + SIGNAL_PAD


register({
    "a_async_tp": {
        "en": "async TP over {n} ranks (torchtitan 0.3.0, torch 2.13 micro-pipeline TP): the fused all-gather-matmul "
              "and matmul-reduce-scatter ops hold the tensors the unfused ones held; the TP group's symmetric-memory "
              "workspace ({workspace}: two row-parallel output chunks, double-buffered) stays mapped outside torch's "
              "allocator, and the side stream's matmuls get their own cuBLAS workspace",
        "zh": "在 {n} 个进程上做异步张量并行（torchtitan 0.3.0，torch 2.13 的 micro-pipeline TP）：融合的 all-gather-matmul "
              "与 matmul-reduce-scatter 持有的张量与未融合时相同；TP 组的对称内存工作区（{workspace}：行并行输出的两个分块，"
              "双缓冲）在 torch 分配器之外常驻，旁路流上的矩阵乘另有一份 cuBLAS 工作区"},
})
