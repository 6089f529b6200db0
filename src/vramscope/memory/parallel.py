"""Multi-GPU sharding, per rank: tensor, sequence/context and expert parallelism; FSDP 1/2, ZeRO 1-3 buffers.

Tensor parallel (Megatron-LM, Shoeybi et al. 2019, arXiv 1909.08053; vLLM ``parallel_state``): attention heads,
MLP and expert intermediate sizes and the vocabulary (embedding and output head) split across ``n`` ranks;
norms are replicated. KV heads split too, and are replicated when there are fewer KV heads than ranks (vLLM
``get_num_kv_heads``: ``max(1, total_kv_heads // tp_size)``). vLLM requires the number of attention heads to
be divisible by the tensor-parallel size. The per-rank model is therefore a spec with those sizes divided,
and every per-rank component (weights, KV cache, activations) comes from it.

FSDP full shard / ZeRO-3 (Rajbhandari et al. 2020, arXiv 1910.02054): parameters, gradients and optimizer states
are split evenly across the ``n`` ranks of the shard group (data-parallel × context-parallel ranks, as torchtitan
meshes them; inside a node only, for hybrid sharding); unsharded buffers come on top (:func:`fsdp_buffers`,
:func:`zero3_buffers`). Activations are not sharded: each rank runs its own micro-batch.

Context parallelism (ring attention: Liu et al. 2023, arXiv 2310.01889, torch ``context_parallel``; DeepSpeed-
Ulysses: Jacobs et al. 2023, arXiv 2309.14509) splits the sequence: every per-token activation divides by the
degree; :func:`context_parallel_transient` adds the exchanged key/value chunks. Expert parallelism splits routed
experts (:func:`expert_fraction`). Megatron sequence parallelism (Korthikanti et al. 2022 §4.2.2) shards the
activations that tensor parallelism replicates (norms, residual stream, linear inputs) inside the TP group.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from ..errors import Text, VramscopeError
from ..i18n import register
from ..model.spec import ModelSpec
from ..model.tensors import groups, largest_layer, largest_tensor


def tp_shard_spec(spec: ModelSpec, n: int) -> ModelSpec:
    """The per-rank slice of ``spec`` under ``n``-way tensor parallelism."""
    if n == 1:
        return spec
    if spec.num_heads % n:
        raise VramscopeError("conflict", field="num_gpus", reason=Text("r_tp_heads", heads=spec.num_heads, n=n))
    moe = spec.moe
    if moe is not None:
        moe = replace(moe, expert_intermediate_size=-(-moe.expert_intermediate_size // n),
                      shared_intermediate_size=-(-moe.shared_intermediate_size // n))
    mla = spec.mla
    # a rank's slice is derived from a valid spec, not read from a source (vLLM's own rules apply, not ours)
    # per-layer cache shapes (Gemma 4) split their heads as the scalar ones do (a replicated head below n)
    layer_kv = tuple((max(1, h // n) if h else 0, d) for h, d in spec.layer_kv)
    inventory = spec.inventory if spec.inventory is None else rank_inventory(spec.inventory, spec.hidden_size, n)
    return spec.derived(num_heads=spec.num_heads // n, num_kv_heads=max(1, spec.num_kv_heads // n),
                        intermediate_size=-(-spec.intermediate_size // n), vocab_size=-(-spec.vocab_size // n),
                        moe=moe, mla=mla, layer_kv=layer_kv, kv_values_per_layer=_rank_widths(spec, n),
                        inventory=inventory)


#: linear layers vLLM keeps whole on every tensor-parallel rank (``ReplicatedLinear``): MLA's down-projections
#: (``deepseek_v2.py``: ``q_a_proj``, ``kv_a_proj_with_mqa``; DeepSeek-V4's single shared ``kv_proj``) and
#: Qwen's shared-expert gate (one output)
REPLICATED_LINEARS = ("q_a_proj", "kv_a_proj_with_mqa", "kv_proj", "shared_expert_gate")
#: tensors of these roles are not split by tensor parallelism (norms, MoE routers: ``ReplicatedLinear``; the
#: vision tower and projector, as for the built-in layouts, whose :class:`VisionSpec` stays whole)
#: row-parallel linears (``RowParallelLinear``: the input split, the bias whole), named where a square weight
#: leaves the dimension open
ROW_PARALLEL = ("o_proj", "down_proj", "out_proj", "dense", "fc2", "c_proj", "wo", "w2", "o_b_proj", "dense_4h_to_h")
REPLICATED_ROLES = ("norm", "router", "position_embedding", "vision", "projector", "pooler")


def rank_inventory(inv: Any, hidden: int, n: int) -> Any:
    """One of ``n`` tensor-parallel ranks' share of a meta-built inventory (architectures without a built-in
    layout, :mod:`vramscope.sources.meta_device`), by the rule the built-in layouts follow
    (:func:`tp_shard_spec`): every linear weight split along its dimension that is not the hidden size
    (column-parallel outputs and row-parallel inputs alike: vLLM's ``ColumnParallelLinear`` /
    ``RowParallelLinear``; routed experts' intermediate dimension: ``FusedMoE``; a square weight by its name,
    :data:`ROW_PARALLEL`), the embedding and the output head along the vocabulary (``VocabParallelEmbedding`` /
    ``ParallelLMHead``), a bias with a column-parallel weight and whole beside a row-parallel one; norms, routers,
    the replicated linears of :data:`REPLICATED_LINEARS`, other non-linear parameters (attention sinks,
    DeepSeek-V4's hyper-connection mixers, convolution kernels) kept whole. Checked against the built-in layouts'
    own split (tests/test_tp_inventory.py: Llama, Qwen1.5-MoE with q/k/v biases, DeepSeek-V3 built both ways)."""
    def column(w: Any) -> bool:
        if w.module in REPLICATED_LINEARS:
            return False
        if w.shape[0] != hidden:
            return True
        return w.shape[-1] == hidden and w.module not in ROW_PARALLEL

    def shard(t: Any, weights: dict) -> Any:
        if t.role in ("embedding", "lm_head"):
            return t._replace(shape=(-(-t.shape[0] // n),) + tuple(t.shape[1:]))
        if t.role in REPLICATED_ROLES:
            return t
        if t.name.endswith(".bias") and len(t.shape) == 1:  # a linear's bias goes with its weight
            w = weights.get(t.name[:-len("bias")] + "weight")
            return t._replace(shape=(-(-t.shape[0] // n),)) if w is not None and column(w) else t
        if t.module in REPLICATED_LINEARS or not t.module:
            return t
        dims = list(t.shape)
        if dims[0] == hidden and dims[-1] == hidden:
            i = len(dims) - 1 if t.module in ROW_PARALLEL else 0
        else:
            i = next(k for k in range(len(dims)) if dims[k] != hidden)
        dims[i] = -(-dims[i] // n)
        return t._replace(shape=tuple(dims))

    def all_of(ts: tuple) -> tuple:
        weights = {t.name: t for t in ts if t.linear and len(t.shape) >= 2}
        return tuple(shard(t, weights) for t in ts)

    stacks = tuple(st._replace(kinds=tuple((layers, all_of(tpl)) for layers, tpl in st.kinds)) for st in inv.stacks)
    return inv._replace(loose=all_of(inv.loose), stacks=stacks)


def _rank_widths(spec: ModelSpec, n: int) -> tuple[int, ...]:
    """Per-layer K/V widths (MiMo-V2-Flash: ``k_proj`` + ``v_proj`` output features) on one of ``n`` ranks. A
    layer's width is its kv heads × one head's key + value size; that size is taken as the narrowest layer's
    width over the config's ``num_key_value_heads`` (MiMo-V2-Flash: its full-attention layers, 1280 / 4 = 320 =
    192 + 128), and each layer keeps ``max(1, heads // n)`` heads as the scalar case does (vLLM's
    ``QKVParallelLinear`` replicates a kv head below ``n``). Widths that do not divide into such heads are
    split as they are (``cdiv(width, n)``)."""
    widths = spec.kv_values_per_layer
    if not widths:
        return widths
    head = min(widths) // spec.num_kv_heads if spec.num_kv_heads else 0
    if not head or any(x % head for x in widths):
        return tuple(-(-x // n) for x in widths)
    return tuple(max(1, (x // head) // n) * head for x in widths)


def largest_layer_params(spec: ModelSpec) -> int:
    """Parameters of the largest decoder layer (:func:`vramscope.model.tensors.largest_layer`)."""
    return largest_layer(spec)




@lru_cache(maxsize=64)
def expert_fraction(spec: ModelSpec) -> float:
    """Share of the parameters in routed experts (what expert parallelism splits)."""
    total = sum(g.numel for g in groups(spec))
    experts = sum(g.numel for g in groups(spec) if g.tensor.role == "expert")
    return experts / total if total else 0.0


def split_bytes(total: int, expert_share: float, shard: int, ep: int) -> int:
    """Per-rank bytes of a model-sized quantity: non-expert part over the shard group, routed experts over
    ``max(ep, shard)`` (expert-parallel ranks hold E/ep experts, sharded further when the shard group is larger:
    torchtitan's ``dp_shard_mod_ep`` mesh; without sharding, ``shard`` is 1 and experts divide by ``ep``)."""
    dense = total * (1 - expert_share)
    return int(-(-dense // shard) + total * expert_share / max(ep, shard))


@lru_cache(maxsize=64)
def persistent_params(spec: ModelSpec, threshold: int) -> int:
    """Parameters ZeRO-3 never partitions: tensors of at most ``stage3_param_persistence_threshold`` elements
    (``partition_parameters.py``: ``ds_persist``), kept whole on every rank — norms and biases."""
    return sum(g.numel for g in groups(spec) if g.tensor.numel // g.tensor.count <= threshold)


#: bitsandbytes' 4-bit storage formats (``bnb.nn.Linear4bit``)
BNB_4BIT = ("int4", "nf4", "fp4", "nf4-dq", "fp4-dq")


@lru_cache(maxsize=64)
def bnb_quant_state_bytes(spec: ModelSpec, quant: str) -> int:
    """Bytes of bitsandbytes' 4-bit quant state (fp32 absmax per 64 values; double quantization: uint8 absmax and
    one fp32 scale per 256 blocks), which FSDP and ZeRO-3 leave whole on every rank.

    Only the packed data is a parameter (``Params4bit``, stored as ``bnb_4bit_quant_storage``: bf16 for
    FSDP-QLoRA, so it can join a flat parameter); ``quant_state`` is a plain attribute that flattening drops and
    ``Linear4bit`` restores from the copy it keeps on the module (bitsandbytes 0.50.2 ``nn/modules.py``
    ``fix_4bit_weight_quant_state_from_module``: "the quant state got lost when the parameter got converted. This
    happens for example for fsdp"). FSDP1 flattens parameters, FSDP2 shards parameters, ZeRO-3 partitions
    parameters: none of them sees the module's quant state, which every rank loads whole."""
    if quant not in BNB_4BIT:
        return 0
    from .weights import spec_weight_bytes

    qb = spec_weight_bytes(spec, 2.0, quant, fp32_modules=False)
    return max(0, qb.total - qb.kept_params * 2 - qb.quantized_params // 2)


@dataclass(frozen=True)
class FsdpBuffers:
    """Unsharded bytes per rank at the moments that can peak: (weights side, gradients side)."""

    forward_layer: int  # while a layer's parameters are copied out (no loss head yet)
    forward_loss: int  # while the loss is computed
    backward_loss: int  # the loss's backward (what is still gathered)
    backward_start: tuple[int, int]  # the output head's backward
    backward_layer: tuple[int, int]  # a decoder layer's backward (near the end: all gradients exist)
    backward_end: tuple[int, int]  # the input embedding's backward, the very end
    end_pending: int = 0  # unsharded gradient bytes at that moment not yet reduced into the sharded gradients
    layer_pending: int = 0  # the same at the first layer's backward (that layer's and the embedding's)
    backward_reduce: tuple[int, int] = (0, 0)  # the embedding's gradient reduce-scattered, all gradients there
    forward_held: int = 0  # while a layer computes after its copy-out (its parameters and retained gather buffer)
    #: the output head's reduce-scatter copy-in (FSDP2, untied): the last layer gathered, the head's unsharded
    #: gradient beside its reduce-scatter input
    head_reduce: tuple[int, int] = (0, 0)
    #: layers (from the input side) whose gradients are not yet sharded at ``backward_layer``'s moment, beside the
    #: embedding's: 1 at the first layer's backward (the embedding prefetched), 2 at the second's when a layer is
    #: larger than the untied embedding (FSDP2: the first layer's prefetch, 2U, is then the larger moment; MoE
    #: layers, traced on Qwen3-30B-A3B)
    layer_moment_layers: int = 1
    #: the output head's reduce-scatter input (reduce_dtype; FSDP2, untied), retained until the next reduce-scatter
    #: is issued, i.e. through the last layer's backward (``foreach_reduce``: one input buffer kept)
    head_reduce_input: int = 0
    layer_grad: int = 0  # a decoder layer's unsharded gradients (U_g)


def fsdp_buffers(spec: ModelSpec, version: int, param_bytes: float, grad_bytes: float, trains_layers: bool,
                 trains_embeddings: bool, input_grads: bool = False, layer_bytes: float = 0.0,
                 reduce_bytes: float = 0.0, backward_prefetch: bool = False) -> FsdpBuffers:
    """What FSDP keeps unsharded per rank, units wrapped as accelerate wraps them (U: the largest decoder
    layer's parameters, E: the input embedding, T: final norm + output head; ``_g`` the same as gradients).

    FSDP2 (torch ``distributed/fsdp/_fully_shard``; accelerate ``fsdp2_prepare_model``: each layer, the untied
    embedding, and [norm, head] with ``reshard_after_forward=False``): an all-gather writes a flat buffer that
    ``foreach_all_gather_copy_out`` copies into the unsharded parameters, and the previous unit's buffer lives
    until the next copy-out (``wait_for_unshard``): 3U at a layer's copy-out, U + 2T at the head's, which then
    stays gathered (T, its buffer released when the root's forward ends) through the loss; then the head's
    gradient comes beside its parameters and the prefetched last layer (T + U + T_g); a layer holds its parameters, the prefetched next
    one (``_backward_prefetch``), its gradients and the previous reduce-scatter input (``foreach_reduce``,
    ``reduce_scatter_max_input_buffers = 1``): 2U + 2U_g, the first layer with the embedding prefetched
    instead (U + E + 2U_g). When the embedding's output needs a gradient (it trains, or ``input_grads``:
    checkpointed adapters make the inputs require grad) it is copied out again for its backward (2E beside
    the retained U_g), then its gradient is reduce-scattered (2E_g).
    FSDP1 (``_flat_param.py``, ``_runtime_utils.py``): gathers and reduce-scatters work in place on the flat
    parameter and gradient; the rate limiter allows two all-gathers in flight (2U) and accelerate's default is
    no backward prefetch (U + U_g; ``backward_prefetch``: BACKWARD_PRE, torch's own default, gathers the next unit
    in a unit's pre-backward hook: 2U + U_g, measured on two gloo ranks in tests/test_fsdp_lora.py); the root unit
    (embedding, norm, head) is never resharded after forward, and its flat gradient (E_g + T_g) is reduced at the
    very end.
    With a ``MixedPrecisionPolicy`` whose ``reduce_dtype`` differs from ``param_dtype`` (``reduce_bytes``; torchtitan:
    bf16 parameters, fp32 reduction) the unsharded gradients stay in the parameters' dtype and each reduce-scatter
    input is allocated in ``reduce_dtype`` (``_fsdp_collectives.py foreach_reduce``): a layer's backward holds its
    gradients (U_g) beside the previous reduce-scatter input (U_r), the embedding's reduce E_g + E_r.
    Traced on a fake process group for FSDP2 (``vramscope trace --gpus N``; tests/test_trace_matrix.py).
    """
    layer = largest_layer_params(spec)
    h, v = spec.hidden_size, spec.vocab_size
    # ``layer_bytes``: bytes per layer parameter as stored (a 4-bit QLoRA base is gathered in its storage)
    u, ug = layer * (layer_bytes or param_bytes), (layer * grad_bytes if trains_layers else 0)
    tied = spec.tie_embeddings
    t = (v * h + h) * param_bytes
    tg = v * h * grad_bytes if trains_layers else 0
    e = 0 if tied else v * h * param_bytes
    eg = v * h * grad_bytes if trains_embeddings and not tied else 0
    # the reduce-scatter inputs, in reduce_dtype
    ur = ug * reduce_bytes / grad_bytes if reduce_bytes and grad_bytes else ug
    er = eg * reduce_bytes / grad_bytes if reduce_bytes and grad_bytes else eg
    if version == 2:
        if tied:  # no separate head unit: the shared embedding belongs to the root, gathered throughout
            root = v * h * param_bytes
            return FsdpBuffers(forward_layer=int(3 * u + root), forward_loss=int(root), backward_loss=int(root),
                               forward_held=int(2 * u + root),
                               backward_start=(int(root + u), int(tg)), backward_layer=(int(2 * u + root),
                                                                                         int(ug + ur)),
                               backward_end=(int(root), int(tg + ur)), end_pending=int(tg),
                               layer_pending=int(ug + tg))
        end = (int(2 * e), int(ur)) if eg or input_grads else (0, 0)
        tr = tg * reduce_bytes / grad_bytes if reduce_bytes and grad_bytes else tg
        return FsdpBuffers(forward_layer=int(max(3 * u, u + 2 * t)), forward_loss=int(t), backward_loss=int(t),
                           forward_held=int(2 * u),
                           backward_start=(int(t + u), int(tg)), backward_layer=(int(u + max(u, e)), int(ug + ur)),
                           backward_end=end, end_pending=int(eg), backward_reduce=(0, int(eg + er)),
                           head_reduce=(int(u), int(tg + tr)),
                           layer_pending=int(ug + eg),
                           head_reduce_input=int(tr), layer_grad=int(ug),
                           layer_moment_layers=2 if u > e and spec.num_layers + spec.num_decoder_layers > 1 else 1)
    root = e + t
    return FsdpBuffers(forward_layer=int(2 * u + root), forward_loss=int(root), backward_loss=int(root),
                       forward_held=int(2 * u + root),
                       backward_start=(int(root), int(tg)),
                       backward_layer=(int((2 if backward_prefetch else 1) * u + root), int(ug)),
                       backward_end=(int(root), int(eg + tg)))


def zero3_buffers(spec: ModelSpec, param_bytes: float, prefetch: int, max_live: int, reduce_bucket: int,
                  trainable: int, persistence: int = 0) -> FsdpBuffers:
    """DeepSpeed ZeRO-3 per rank (DeepSpeed 0.19.8 ``deepspeed/runtime/zero``): parameters are gathered per
    submodule (the largest one: the embedding or output head); the coordinator prefetches up to
    ``stage3_prefetch_bucket_size`` elements ahead, bounded by ``stage3_max_live_parameters``
    (``partitioned_param_coordinator.py`` 452-454) and by the partitioned parameters there are; a coalesced gather
    copies out of its flat buffer (``partition_parameters.py`` ``AllGatherCoalescedHandle.wait``: ``torch.cat``,
    2× the module briefly). Backward adds the ``torch.cat`` copy of the gradient bucket made for the reduce-scatter
    (``reduce_scatter_coalesced``: the gradients it holds; the bucket itself is resident: :func:`zero_bucket`).
    Measured on two gloo ranks
    in tests/test_deepspeed_real.py."""
    module = largest_tensor(spec)
    partitioned = sum(g.numel for g in groups(spec)) - persistent_params(spec, persistence)
    ahead = max(0, min(prefetch, max_live - module, partitioned - module))
    gathered = int((2 * module + ahead) * param_bytes)
    # the reduce-scatter's torch.cat copy covers the gradients in the bucket (coalesced_collectives.py
    # reduce_scatter_coalesced), never more than the trainable parameters
    bucket = int(min(reduce_bucket, trainable) * param_bytes)
    return FsdpBuffers(forward_layer=gathered, forward_loss=gathered, backward_loss=gathered, forward_held=gathered,
                       backward_start=(gathered, bucket),
                       backward_layer=(gathered, bucket), backward_end=(gathered, bucket))


NO_BUFFERS = FsdpBuffers(0, 0, 0, (0, 0), (0, 0), (0, 0))


def zero_bucket(reduce_bucket: int, grad_bytes: float) -> int:
    """DeepSpeed 0.19.8's gradient bucket: ``reduce_bucket_size`` elements in the 16-bit gradient dtype, allocated
    whole whatever the trainable parameters (ZeRO-3 ``stage3.py`` 780-784: ``torch.empty(self.reduce_bucket_size)``
    at the optimizer's set-up, resident; ZeRO-1/2 ``stage_1_and_2.py setup_buckets`` 3256-3279: at the first
    gradient hook of each backward, released by ``_release_ipg_buffers`` when the backward's reduction ends). With
    LoRA and the default 5e8 elements it is 1 GB in bf16 beside a few MB of adapter gradients (measured on two gloo
    ranks: tests/test_deepspeed_real.py)."""
    return int(reduce_bucket * grad_bytes)


def zero_sizes(spec: ModelSpec, auto: tuple[str, ...], reduce_bucket: int, prefetch: int,
               persistence: int) -> tuple[int, int, int]:
    """(reduce_bucket_size, stage3_prefetch_bucket_size, stage3_param_persistence_threshold) with the sizes a
    DeepSpeed config leaves ``"auto"`` filled as the HF Trainer fills them from the model's hidden size h
    (transformers 5.24 ``integrations/deepspeed.py`` ``trainer_config_finalize``: h², 0.9·h², 10·h)."""
    h = spec.hidden_size
    return (h * h if "reduce_bucket" in auto else reduce_bucket,
            int(0.9 * h * h) if "zero_prefetch" in auto else prefetch,
            10 * h if "zero_persistence" in auto else persistence)


def context_parallel_transient(spec: ModelSpec, tokens_local: int, a: float, mode: str, n: int = 2,
                               rotate: str = "allgather") -> tuple[int, int]:
    """Extra bytes inside one attention call per rank, (forward, backward), above what is alive at its entry.

    Ring: torch 2.13's ``_templated_ring_attention`` and its backward
    (``torch/distributed/tensor/experimental/_context_parallel/_attention.py``), on the rank that peaks (any rank
    but 0 in forward, where the head-tail load balancer merges whole blocks; rank 0 merges half ones), ``T`` local
    tokens, ``n`` ranks, ``kv = 2·T·kv_dim·a`` one rank's keys and values as the rotater sends them
    (``torch.cat([key.flatten(), value.flatten()])``):

    * the rotater's buffers: ``_AllGatherRotater`` (torch's default, torchtitan 0.3.0's) all-gathers every rank's
      ``kv`` once and keeps the result through the loop (``n·kv``); ``_AllToAllRotater`` holds the one being sent
      and the one received (``min(2, n − 1)·kv``);
    * forward, ``_SDPAMerger`` with ``convert_to_f32`` (default True): the merged fp32 output, the block output
      cast to fp32, ``out − block_out``, its product with ``sigmoid(block_lse − lse)`` (the new merged output being
      written: four fp32 ``T·q_dim`` tensors at once), the block's own output in the compute dtype and three fp32
      logsumexps (``T·heads``): ``n·kv + T·q_dim·(16 + a) + 12·T·heads``;
    * backward: fp32 ``grad_query`` and the fp32 ``grad_query_`` it accumulates, the fp32 ``grad_key`` /
      ``grad_value`` accumulators, the all-to-all dK/dV rotation (``_RotateMethod.ALL_TO_ALL`` whatever the
      method) sending and receiving fp32 ``cat([grad_key, grad_value])``, the block's key and value gradients in
      the compute dtype: ``n·kv + 8·T·q_dim + 32·T·kv_dim + 2·T·kv_dim·a + 4·T·heads``.

    Traced on fake CPU tensors over torch's own CP code (``trace/context.py``; bench/pretrain_matrix.py
    ``cp_transients``): exact in forward on Llama-3-8B/70B shapes, backward within 3% (70B: 62 MiB under at
    16,384 local tokens). Ulysses' all-to-all re-lays out q, k and v (input and output buffers):
    ``2·T·(q + 2kv)·a`` both ways."""
    t = tokens_local
    if mode == "ulysses":
        u = int(2 * t * (spec.q_dim + 2 * spec.kv_dim) * a)
        return u, u
    kv = 2 * t * spec.kv_dim * a
    held = kv * (n if rotate == "allgather" else min(2, n - 1))
    forward = held + t * spec.q_dim * (16 + a) + 12 * t * spec.num_heads
    backward = held + 8 * t * spec.q_dim + 32 * t * spec.kv_dim + 2 * t * spec.kv_dim * a + 4 * t * spec.num_heads
    return int(forward), int(backward)


def ring_merged_output(spec: ModelSpec, tokens_local: int, a: float) -> int:
    """Saved per layer on top of what attention saves without context parallelism: the ring's merged output
    (``_SDPAMerger.results``: ``out.to(dtype)``, laid out (batch, heads, seq, head_dim) by the merge's ops) is the
    attention op's output, saved for its backward, and the attention output's ``transpose(1, 2).contiguous()``
    (transformers' ``sdpa_attention_forward``; torchtitan's ``Attention.forward`` too) is then a copy, which the
    output projection saves; the flash kernel's own output is laid out (batch, seq, heads, head_dim), so without
    CP that ``contiguous()`` is the same tensor. Traced (one ``T·q_dim·a`` tensor per layer)."""
    return int(tokens_local * spec.q_dim * a)


def nvme_pinned_bytes(param_partition: int, optimizer_partition: int, params_on_nvme: bool,
                      param_bytes: float) -> int:
    """ZeRO-Infinity's pinned host buffers per rank (``swap_tensor/partitioned_param_swapper.py``,
    ``optimizer_utils.py``; defaults ``offload_param.buffer_count = 5``, ``buffer_size = 1e8``,
    ``max_in_cpu = 1e9``; ``offload_optimizer.buffer_count = 4`` fp32 buffers of the largest sub-group,
    ``sub_group_size = 1e9``)."""
    opt = int(4 * 4 * min(optimizer_partition, 1_000_000_000))
    if not params_on_nvme:
        return opt
    return opt + int(5 * 100_000_000 * param_bytes) + int(min(param_partition, 1_000_000_000) * param_bytes)


register({"r_tp_heads": {"en": "tensor parallelism needs the {heads} attention heads to divide evenly by {n} GPUs",
               "zh": "张量并行要求 {heads} 个注意力头能被 {n} 个 GPU 整除"}})
