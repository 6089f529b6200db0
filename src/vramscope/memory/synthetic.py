"""An order-aware analytic allocator cache: the allocation stream a workload's code makes, written from what the
analytic model knows, replayed through the caching-allocator model (``memory/allocator.py``).

A byte-weighted share of the transients (``device.CACHE_SHARES``) cannot see in which order blocks are freed and
asked for again, which is what decides the cache the allocator keeps at its peak. Where the op order of the real
code is written down here, the estimator replays it instead and takes the replay's ``max_memory_reserved −
max_memory_allocated``.

Written so far: inference prefill of the Llama layout (Llama, Mistral, Qwen2/2.5, Qwen3 with its q/k norms; dense
gated MLP; SDPA or eager attention; 16-bit or fp32 weights, the dynamic cache in their dtype) and of Gemma 2 (fp32,
its checkpoints' dtype; eager), as transformers 5.24 runs them (``modeling_llama.py``: ``LlamaRMSNorm.forward``,
``apply_rotary_pos_emb`` / ``rotate_half``, ``LlamaRotaryEmbedding.forward``, ``eager_attention_forward``,
``sdpa_attention_forward`` with its ``repeat_kv`` when a mask is passed, ``DynamicLayer.update``'s first call,
``LlamaDecoderLayer.forward``; ``modeling_gemma2.py``: ``Gemma2RMSNorm``, the scaled embeddings, the post-attention
and pre/post-feedforward norms, attention and final-logit soft-capping, ``causal_mask_mapping``'s full and
sliding-window masks; ``masking_utils.sdpa_mask``, which skips the mask — ``is_causal`` — unless a sliding window
is shorter than the prompt, and ``eager_mask``), and the trace runner's ``model(input_ids, logits_to_keep=1)`` with
its fp32 copy of the last logits.
The order was read off the fake-tensor trace of that code (``vramscope trace``'s allocation log, the same stream
``bench/allocator_matrix.py`` replays) and each free placed where Python drops the last reference. Tensors are
allocated with the sizes the real code asks for (the allocator rounds them), the model's weights first, in the
order the model builds them (``model/tensors.py``: ``tensors``), after torch's cuBLAS workspace.

Training (:func:`train_cache`): two plain full training steps on one GPU of Llama and Qwen2/2.5 (16-bit, SDPA,
tied or untied embeddings, Qwen2's q/k/v biases), as transformers 5.24 and torch 2.13 run them: the forward above
with the tensors autograd saves kept alive (``_rmsnorm``'s ``saved``: the fp32 upcast, ``rsqrt``, cast back and
output; SDPA's query, cache keys/values, output and log-sum-exp; the MLP's gate, activation, up and product; the
rotary cos/sin), ``ForCausalLMLoss`` (the full bf16 logits, their fp32 upcast, the padded labels — copied for a
batch — log-softmax, NLL), autograd's backward in the order the traced stream shows (``mm``'s weight gradient
before the input's, ``addmm``'s after it with the bias's sum; the RMSNorm backward's fp32 temporaries; the rotary
backward's slices; every saved tensor freed where autograd drops it; a tied head's gradient accumulated out of
place onto the embedding's), then ``torch.optim.AdamW``'s foreach step (``_multi_tensor_adam``: step,
``exp_avg``, ``exp_avg_sq`` per parameter on step 1; ``_foreach_sqrt``'s list freed in reverse) and
``zero_grad(set_to_none=True)`` in the parameters' order — or, with torchtune's ``optimizer_in_bwd``, each
parameter's AdamW stepped from its gradient's post-accumulate hook inside the backward; or freezing the first
layers with the (tied) embedding (``--frozen-layers``). Every request and free, in 512-byte units, is the
trace's on the traced cases (tests/test_allocator_synthetic.py).

LoRA (:func:`_lora_train_cache`): peft 0.21's adapters (``peft/tuners/lora/layer.py``: ``Linear.forward``,
vanilla LoRA, ``lora_dropout`` 0 so ``nn.Identity``, the fp32 adapters of ``autocast_adapter_dtype``) on the seven
projections of every layer, the base model, its norms, embedding and head frozen; with or without
``gradient_checkpointing_enable(use_reentrant=False)`` and peft's ``enable_input_require_grads`` (torch 2.13's
``torch/utils/checkpoint.py``: the non-reentrant frame, recompute on the first unpack, early stop after the last
saved tensor); its two steps equal the trace's event for event (tests/test_allocator_synthetic.py). Full
training with every layer checkpointed the same way (``_train_cache``'s ``ckpt``), the recompute keeping what
the full step saves.

Pure Python: a stream of ~120 events per layer for prefill, ~660 per layer for the two training steps (about
0.2 s for llama-3-70b's 80 layers), ~1,300 for LoRA and ~1,400 for checkpointed LoRA (CPU time for two steps of
llama-3-8b at 2,048 tokens, min of 5 on a loaded machine: full 0.057 s, checkpointed 0.096 s, LoRA 0.087 s,
checkpointed LoRA 0.099 s). Workloads it does not cover return None and keep the shares.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Any, Iterator, Optional

from .allocator import DEFAULT_CONFIG, AllocatorConfig, CachingAllocator, Frozen, OutOfMemory


class Stream:
    """A replay in progress: ``new`` allocates ``n`` bytes and returns a handle, ``free`` releases it; ``log``
    (when a list) records ``+n`` / ``-n`` per event, ``start`` the log's length where the workload begins."""

    def __init__(self, extra: tuple[int, ...] = (), config: AllocatorConfig = DEFAULT_CONFIG,
                 log: Optional[list[int]] = None) -> None:
        self.alloc = CachingAllocator(config=config)
        self.log = log
        self.start = 0
        for n in extra:
            self.alloc.malloc(n)

    def new(self, n: int) -> Any:
        n = int(n)
        if n < 1:
            n = 1
        if self.log is not None:
            self.log.append(n)
        a = self.alloc
        if a._fast and not a._pending:  # a cached block that fits: malloc's first step without its frame
            a._mallocs += 1
            b = a._malloc_found(n, 0)
            if b is not None:
                return b
            a._mallocs -= 1  # nothing changed: malloc counts it and takes its general path
        return a.malloc(n)

    def free(self, *blocks: Any) -> None:
        a = self.alloc
        for b in blocks:
            if b is not None:
                if self.log is not None:
                    self.log.append(-b.requested)
                if a._fast and not b.stream_uses:  # free's own first step, without its frame
                    a._free_fast(b)
                else:
                    a.free(b)


def _rmsnorm(st: Stream, rows: int, width: int, a: int, gemma: bool = False,
             saved: Optional[list] = None, input_grad: bool = True, weight_grad: bool = True) -> Any:
    """``LlamaRMSNorm.forward`` on ``rows`` × ``width``: fp32 upcast, ``pow(2)``, ``mean``, ``+ eps``, ``rsqrt``,
    the product, the cast back and the weight's product; returns the output (the input is the caller's). In fp32
    the upcast and the cast back are the tensor itself. ``gemma``: ``Gemma2RMSNorm`` (the mean freed before the
    ``rsqrt``, then ``× (1 + weight)`` in fp32; fp32 only). ``saved`` (training; a list): autograd keeps the
    upcast, the ``rsqrt`` and the cast back alive for the backward; they are appended to it instead of freed
    (``input_grad`` false — the input needs no gradient, only the weight does: the cast back alone;
    ``weight_grad`` false — a frozen weight under LoRA: the upcast and the ``rsqrt`` alone)."""
    up = st.new(4 * rows * width) if a != 4 else None
    sq = st.new(4 * rows * width)
    var = st.new(4 * rows)
    st.free(sq)
    eps = st.new(4 * rows)
    if gemma:
        st.free(var)
    rs = st.new(4 * rows)
    st.free(eps)
    prod = st.new(4 * rows * width)
    if saved is None or not input_grad:
        st.free(rs, up)
    if gemma:
        one = st.new(4 * width)  # 1 + weight
        out = st.new(4 * rows * width)
        st.free(one, prod)
        return out
    cast = st.new(a * rows * width) if a != 4 else None
    out = st.new(a * rows * width)
    if saved is None or not weight_grad:
        st.free(cast, prod, var)
        if saved is not None:
            saved.extend((up, rs, None))
    else:
        st.free(prod, var)
        saved.extend((up, rs, cast) if input_grad else (None, None, cast))
    return out


def _rotary(st: Stream, tokens: int, width: int, a: int) -> Any:
    """``apply_rotary_pos_emb`` for one of q / k (``x * cos + rotate_half(x) * sin``); returns the result."""
    xc = st.new(a * tokens * width)
    neg = st.new(a * tokens * width // 2)
    cat = st.new(a * tokens * width)
    st.free(neg)
    xs = st.new(a * tokens * width)
    st.free(cat)
    out = st.new(a * tokens * width)
    st.free(xc, xs)
    return out


def covered(spec: Any, w: Any, a: float) -> bool:
    """Whether the prefill stream of this module is written for this model and workload in ``a``-byte weights
    (16-bit or fp32; Gemma 2 in fp32, its checkpoints' dtype)."""
    if not (a in (2, 4) and not w.training and spec.kind == "decoder" and spec.layout == "llama"
            and spec.moe is None and spec.mla is None and spec.vision is None and spec.state is None
            and spec.norm == "rmsnorm" and spec.mlp_gated and not spec.fused_qkv and not spec.fused_gate_up
            and not spec.kv_broadcast and w.quant == "none" and w.kv_dtype is None
            and getattr(w, "cache", "dynamic") == "dynamic"
            and getattr(w, "tp_degree", 1) == 1 and getattr(w, "pp", 1) == 1):
        return False
    if spec.model_type in PREFILL_TYPES:
        return (spec.norms_per_layer == 2 and not spec.attn_softcap and not spec.logit_softcap
                and spec.family.sdpa and w.attn in ("sdpa", "eager"))
    # Gemma 2 runs eager attention whatever --attn says (Family.sdpa false), in fp32
    return spec.model_type == "gemma2" and a == 4 and not spec.family.sdpa and spec.norms_per_layer == 4


#: model types whose decoder layer is ``LlamaDecoderLayer``'s op for op in transformers 5.24 (Qwen3 adds its
#: per-head q/k RMSNorm, handled below); Gemma 2 (``Gemma2DecoderLayer``: four norms, soft-capping) is its own
PREFILL_TYPES = frozenset({"llama", "mistral", "qwen2", "qwen3"})


def _mlp_no_grad(st: Stream, t: int, h: int, inter: int, a: int, normed: Any) -> Any:
    """The gated MLP without autograd (inference; a frozen layer before the first trained one) on the normed
    input ``normed``: gate, its activation, up, their product, down; every intermediate and the input freed where
    Python drops them. Returns the output block."""
    gate = st.new(a * t * inter)
    act = st.new(a * t * inter)
    st.free(gate)
    up = st.new(a * t * inter)
    prod = st.new(a * t * inter)
    st.free(act, up)
    down = st.new(a * t * h)
    st.free(prod, normed)
    return down


#: False inside :func:`without_replay`: every workload keeps the byte-weighted shares (``device.CACHE_SHARES``)
_REPLAY: ContextVar[bool] = ContextVar("vramscope_replay", default=True)


@contextmanager
def without_replay() -> Iterator[None]:
    """Estimates made inside take the fitted shares even where a stream is written: ``plan`` compares a change
    the replay covers with one it does not on the same model of the cache."""
    token = _REPLAY.set(False)
    try:
        yield
    finally:
        _REPLAY.reset(token)


#: a list inside :func:`cache_floor`: a covered workload's replay is skipped (its cache taken as 0) and noted here
_FLOOR: ContextVar[Optional[list]] = ContextVar("vramscope_cache_floor", default=None)


@contextmanager
def cache_floor() -> Iterator[list]:
    """Estimates made inside take 0 for a replayed cache instead of replaying the stream (each skipped replay is
    appended to the list yielded). The replayed cache (``max_memory_reserved − max_memory_allocated``) is never
    negative and the estimate's total (its largest phase's sum, the cache in every phase but ``load``) never
    falls as the cache grows, so a total inside is a lower bound of the replayed one: ``plan.fit``'s searches
    answer "does not fit" from it without the replay (and replay where it is within the budget)."""
    skipped: list = []
    token = _FLOOR.set(skipped)
    try:
        yield skipped
    finally:
        _FLOOR.reset(token)


def _floored() -> bool:
    skipped = _FLOOR.get()
    if skipped is None:
        return False
    skipped.append(True)
    return True


def prefill_cache(spec: Any, w: Any, a: float, extra: tuple[int, ...],
                  config: AllocatorConfig = DEFAULT_CONFIG) -> Optional[int]:
    """The cache (``max_memory_reserved − max_memory_allocated``) of an inference prefill replayed through the
    allocator model under ``config``, after the allocations ``extra`` (the cuBLAS workspace); None when
    :func:`covered` is false."""
    if not _REPLAY.get() or not covered(spec, w, a):
        return None
    if _floored():
        return 0
    gemma = spec.model_type == "gemma2"
    return _prefill_cache(spec, w.batch, w.seq, int(a), extra, config, gemma or w.attn == "eager", gemma)


def _load(st: Stream, spec: Any, a: int) -> None:
    """The loaded model: its weights in the order it was built (``model/tensors.py``), the rotary buffer."""
    from ..model.tensors import tensors

    for x in tensors(spec):
        st.new(x.numel * a)
    st.new(spec.head_dim // 2 * 4)  # the rotary inv_freq buffer


@lru_cache(maxsize=32)
def _loaded(spec: Any, a: int, extra: tuple[int, ...], config: AllocatorConfig) -> Optional[Frozen]:
    """The allocator's state once the model is loaded (:meth:`CachingAllocator.freeze`: the weights are never
    freed), replayed once per model, dtype and settings; None where it cannot be frozen."""
    st = Stream(extra, config)
    _load(st, spec, a)
    return st.alloc.freeze()


@lru_cache(maxsize=128)
def _prefill_cache(spec: Any, b: int, s: int, a: int, extra: tuple[int, ...],
                   config: AllocatorConfig, eager: bool = False, gemma: bool = False) -> Optional[int]:
    st = Stream(extra, config)
    h, q, kv, inter, d = spec.hidden_size, spec.q_dim, spec.kv_dim, spec.intermediate_size, spec.head_dim
    heads, kvh, t = spec.num_heads, spec.num_kv_heads, b * s
    try:
        frozen = _loaded(spec, a, extra, config) if st.log is None and st.alloc.freezable else None
        if frozen is not None:  # the same loaded model for every batch and context (fit's searches)
            st.alloc = CachingAllocator.thaw(frozen)
        else:
            _load(st, spec, a)
        st.start = len(st.log) if st.log is not None else 0
        ids = st.new(8 * t)  # input_ids (int64)
        emb = st.new(a * t * h)  # inputs_embeds (the model's forward keeps it to the end)
        if gemma:  # Gemma2Model: hidden_states = inputs_embeds * normalizer (sqrt(hidden_size)), kept instead
            scaled = st.new(a * t * h)
            st.free(emb)
            emb = scaled
        window = spec.sliding_window
        # sdpa_mask skips the mask (is_causal) unless a sliding window is shorter than the prompt; eager_mask never
        sliding = bool(window) and (eager or window < s)
        masked = sliding or eager
        masks = []

        def sliding_mask() -> Any:  # the causal and sliding-window boolean masks (batch-broadcast), one kept
            m1 = st.new(s * s)
            m2 = st.new(s * s)
            st.free(m1)
            m3 = st.new(s * s)
            m = st.new(s * s)
            st.free(m3, m2)
            return m

        def as_float(m: Any) -> Any:  # eager_mask: the boolean mask as 0 / the dtype's minimum
            f = st.new(a * b * s * s)
            st.free(m)
            return f

        if gemma:  # causal_mask_mapping: a full and a sliding-window mask
            masks = [as_float(st.new(s * s)), as_float(sliding_mask())]
        elif sliding:
            masks = [as_float(sliding_mask()) if eager else sliding_mask()]
        elif eager:
            masks = [as_float(st.new(s * s))]
        # LlamaRotaryEmbedding: freqs, cat, cos/sin (× attention_scaling) in fp32, then cast (positions: 1 × s)
        freqs = st.new(s * d // 2 * 4)
        embf = st.new(s * d * 4)
        c0 = st.new(s * d * 4)
        c1 = st.new(s * d * 4)
        st.free(c0)
        s0 = st.new(s * d * 4)
        s1 = st.new(s * d * 4)
        st.free(s0)
        if a == 4:  # .to(fp32): the same tensors
            cos, sin = c1, s1
            st.free(freqs, embf)
        else:
            cos, sin = st.new(s * d * a), st.new(s * d * a)
            st.free(freqs, embf, c1, s1)
        x = emb
        score = a * b * heads * s * s
        for _ in range(spec.num_layers):
            normed = _rmsnorm(st, t, h, a, gemma)
            if spec.qk_norm:  # Qwen3: q_norm(q_proj(x)) then k_norm(k_proj(x)), per head
                qp = st.new(a * t * q)
                qs = _rmsnorm(st, t * heads, d, a)
                st.free(qp)
                kp = st.new(a * t * kv)
                ks = _rmsnorm(st, t * kvh, d, a)
                st.free(kp)
                vs = st.new(a * t * kv)
            else:
                qs, ks, vs = st.new(a * t * q), st.new(a * t * kv), st.new(a * t * kv)
            qe = _rotary(st, t, q, a)
            ke = _rotary(st, t, kv, a)
            st.free(qs, ks)
            ck, cv = st.new(a * t * kv), st.new(a * t * kv)  # the cache's keys and values (kept)
            st.free(ke, vs)
            reps = (st.new(a * t * q), st.new(a * t * q)) if masked and kvh != heads else ()  # repeat_kv
            probs = None
            if eager:  # eager_attention_forward: q·kᵀ, × scaling, [soft-capping], + mask, fp32 softmax, · v
                if b > 1:  # torch.matmul copies the transposed keys (its bmm folding) for a batch
                    kt = st.new(a * t * q)
                    sc = st.new(score)
                    st.free(kt)
                else:
                    sc = st.new(score)
                steps = 4 if gemma else 1  # × scaling [/ cap, tanh, × cap]
                for _ in range(steps + 1):  # ..., + mask
                    nxt_sc = st.new(score)
                    st.free(sc)
                    sc = nxt_sc
                if a == 4:  # fp32: the softmax is already in its dtype (no upcast, no cast back)
                    probs = st.new(4 * b * heads * s * s)
                    st.free(sc)
                else:
                    f1 = st.new(4 * b * heads * s * s)
                    f2 = st.new(4 * b * heads * s * s)
                    st.free(f1)
                    probs = st.new(score)  # returned as attn_weights: the layer holds it to its end
                    st.free(f2, sc)
                pv = st.new(a * t * q)
                out = st.new(a * t * q)  # transpose(1, 2).contiguous()
                st.free(pv, *reps)
            else:  # sdpa_attention_forward (with a mask: the boolean one as the query dtype)
                fmask = st.new(a * b * s * s) if masked else None
                out = st.new(a * t * q)
                lse = st.new(4 * heads * t)
                st.free(lse, fmask, *reps)
            o = st.new(a * t * h)
            st.free(out, qe, normed)
            if gemma:  # post_attention_layernorm before the residual
                po = _rmsnorm(st, t, h, a, gemma)
                st.free(o)
                o = po
            mid = st.new(a * t * h)  # residual + attention
            st.free(o)
            down = _mlp_no_grad(st, t, h, inter, a, _rmsnorm(st, t, h, a, gemma))
            if gemma:  # post_feedforward_layernorm before the residual
                pd = _rmsnorm(st, t, h, a, gemma)
                st.free(down)
                down = pd
            nxt = st.new(a * t * h)  # residual + MLP
            st.free(down, mid, probs)
            if x is not emb:
                st.free(x)
            x = nxt
        final = _rmsnorm(st, t, h, a, gemma)
        if gemma:
            st.free(x if x is not emb else None, *masks, emb, sin, cos)
        else:
            st.free(x if x is not emb else None, emb, *masks, sin, cos)
        logits = st.new(a * b * spec.vocab_size)  # logits_to_keep=1
        if gemma:  # final_logit_softcapping: / cap, tanh, × cap
            for _ in range(3):
                nl = st.new(a * b * spec.vocab_size)
                st.free(logits)
                logits = nl
        st.free(final)
        copy = st.new(4 * b * spec.vocab_size)  # the runner's fp32 copy of the last position's logits
        st.free(logits, copy, ids)
    except OutOfMemory:  # unlimited capacity: not reached
        return None
    stats = st.alloc.stats
    return stats.peak_reserved - stats.peak_allocated


# -- training: one plain (single-GPU, non-FSDP) full training step, twice ------------------------------------------

#: model types whose training step is written here (traced: Llama 3 untied, Llama 3.2 and Qwen2.5 tied)
TRAIN_TYPES = frozenset({"llama", "qwen2"})


def covered_training(spec: Any, w: Any, a: float) -> bool:
    """Whether the training stream of this module is written for this model and workload: full training or
    peft LoRA (:func:`_lora_covered`) of the Llama layout (Llama, Qwen2/2.5 with its q/k/v biases; tied or untied
    embeddings) in 16-bit weights with SDPA, no sliding window, AdamW (torch's foreach implementation), on one
    GPU, without chunked loss, offloading or accumulation, with every layer checkpointed or none
    (:func:`_checkpointed`; a step in the backward: Llama, untied, not checkpointed; freezing: the first layers
    of a tied model, not checkpointed) — the workloads whose traced stream it was checked against
    (tests/test_allocator_synthetic.py)."""
    # freezing: --frozen-layers (the embedding frozen with them) of a tied model, as traced
    freeze = (w.method == "freeze" and not w.train_modules and spec.tie_embeddings
              and 1 <= w.frozen_layers < spec.num_layers and not w.optimizer_in_backward)
    return (a == 2 and w.training and (w.method == "full" or freeze or _lora_covered(w)) and spec.kind == "decoder"
            and spec.layout == "llama"
            and spec.model_type in TRAIN_TYPES and spec.moe is None and spec.mla is None
            and spec.vision is None and spec.state is None and spec.norm == "rmsnorm" and spec.mlp_gated
            and not spec.fused_qkv and not spec.fused_gate_up and not spec.kv_broadcast and not spec.qk_norm
            and spec.norms_per_layer == 2 and not spec.attn_softcap and not spec.logit_softcap
            and spec.family.sdpa and w.attn == "sdpa" and not spec.sliding_window
            and w.quant == "none" and w.optimizer == "adamw" and w.num_gpus == 1 and w.parallelism == "none"
            and w.tp_degree == 1 and w.pp == 1 and w.sp == 1 and w.precision in ("auto", "bf16")
            and not (w.precision == "auto" and w.task == "pretrain")  # auto pretraining: mixed, fp32 masters
            and w.framework == "hf" and not w.profile.keeps_logits and w.profile.ce_upcast and not w.compile
            and not w.liger and w.float8 == "none" and w.offload == "none" and not w.packing
            and (not w.grad_checkpointing or _checkpointed(spec, w)) and w.ce_chunks == 1
            and not w.activation_offload
            and w.grad_accum == 1 and w.kv_dtype is None
            # a step in the backward (torchtune's optimizer_in_bwd) traced on an untied model without biases
            and not (w.optimizer_in_backward and (spec.tie_embeddings or spec.model_type != "llama")))


def _lora_covered(w: Any) -> bool:
    """LoRA as traced: peft's adapters on all seven projections (``all-linear`` or the seven named), no dropout
    (``nn.Identity``), not DoRA, no step in the backward."""
    targets = set(w.lora_targets)
    return (w.method == "lora" and not w.dora and not w.lora_dropout and not w.optimizer_in_backward
            and (targets == {"all-linear"} or targets == {n for n, _, _ in LORA_LINEARS}))


def _checkpointed(spec: Any, w: Any) -> bool:
    """Every decoder layer checkpointed (non-reentrant; the HF profile's default for LoRA), as traced: LoRA or
    full training (with or without grouped-query attention), no step in the backward, no freezing."""
    return (w.checkpoint_mode == "full" and w.checkpoint_every == 1 and not w.optimizer_in_backward
            and w.method in ("lora", "full"))


def train_cache(spec: Any, w: Any, a: float, extra: tuple[int, ...],
                config: AllocatorConfig = DEFAULT_CONFIG) -> Optional[int]:
    """The cache (``max_memory_reserved − max_memory_allocated``) of two training steps replayed through the
    allocator model under ``config``, after ``extra`` (the cuBLAS workspace); None when :func:`covered_training`
    is false."""
    if not _REPLAY.get() or not covered_training(spec, w, a):
        return None
    if _floored():
        return 0
    if w.method == "lora":
        return _lora_train_cache(spec, w.batch, w.seq, int(a), int(w.lora_rank), extra, config,
                                 bool(w.grad_checkpointing))
    frozen = w.frozen_layers if w.method == "freeze" else None
    return _train_cache(spec, w.batch, w.seq, int(a), extra, config, w.optimizer_in_backward, frozen,
                        bool(w.grad_checkpointing))


def _rms_backward(st: Stream, g: Any, saved: list, rows: int, width: int, a: int,
                  hook: Any = None, weight_grad: bool = True, ckpt: bool = False,
                  done: tuple = ()) -> tuple[Any, Any]:
    """``LlamaRMSNorm.forward``'s autograd backward (the norm's output already freed by its consumer's
    backward): the weight's gradient (kept, ``.grad``) and the input's, freeing the saved upcast, ``rsqrt`` and
    cast back where autograd drops them; returns (input gradient, weight gradient). ``hook`` (the weight's
    gradient): what runs when it is accumulated, after the product's backward (a step in the backward).
    ``ckpt``: the saved tensors are a checkpoint's, freed as they are unpacked (before the node's gradient);
    ``done``: what goes with the checkpoint once the upcast (its layer's first saved tensor) is unpacked."""
    up, rs, cast = saved
    m1 = st.new(a * rows * width)  # grad · weight
    if weight_grad and ckpt:
        m2 = st.new(a * rows * width)
        st.free(cast)
        wg = st.new(a * width)
        st.free(m2, g)
    elif weight_grad:
        m2 = st.new(a * rows * width)  # grad · cast (for the weight's gradient)
        wg = st.new(a * width)  # its sum over the rows: the weight's .grad
        st.free(m2, g, cast)
    else:  # a frozen weight (LoRA): no product with the cast back, no .grad
        wg = None
        st.free(g)
    if hook is not None:
        hook([wg])
    f = st.new(4 * rows * width)  # to fp32
    st.free(m1)
    n1 = st.new(4 * rows * width)
    n2 = st.new(4 * rows * width)
    r = st.new(4 * rows)
    st.free(n1, f)
    p1 = st.new(4 * rows)
    p2 = st.new(4 * rows)
    p3 = st.new(4 * rows)
    st.free(p2, p1, *((rs, r) if ckpt else (r, rs)))
    d = st.new(4 * rows * width)
    st.free(p3)
    e1 = st.new(4 * rows * width)
    e2 = st.new(4 * rows * width)
    e3 = st.new(4 * rows * width)
    st.free(e2, e1, *((up, d) if ckpt else (d, up)))
    st.free(*done)  # the last saved tensor of a checkpointed layer unpacked: its frame's inputs dropped
    sm = st.new(4 * rows * width)
    st.free(n2, e3)
    out = st.new(a * rows * width)  # back to the input's dtype
    st.free(sm)
    return out, wg


def _linear_backward(st: Stream, g: Any, x: Any, n_in: int, n_out: int, rows: int, a: int,
                     bias: bool = False, free_grad: bool = True, ckpt: bool = False) -> tuple[Any, list]:
    """A linear layer's backward on ``rows`` × ``n_out`` gradient ``g``: ``mm``'s (the weight's gradient, then
    the input's) or, with a bias, ``addmm``'s (the input's, the weight's, the bias's sum); frees ``g``
    (``free_grad``) and the saved input ``x`` where autograd drops them; returns (input gradient, new .grads).
    ``ckpt``: ``x`` a checkpoint's recomputed tensor (or a callable recomputing the layer and returning it, the
    first unpack), freed as it is unpacked, before ``g``."""
    if callable(x):
        x = x()
    if bias:
        gi = st.new(a * rows * n_in)
        wg = st.new(a * n_in * n_out)
        if ckpt:  # the input unpacked for the weight's gradient, dropped before the bias's sum
            st.free(x)
        bg = st.new(a * n_out)
        grads = [wg, bg]
    else:
        wg = st.new(a * n_in * n_out)
        gi = st.new(a * rows * n_in)
        grads = [wg]
        if ckpt:
            st.free(x)
    if free_grad:
        st.free(g)
    if not ckpt:
        st.free(x)
    return gi, grads


def _rotary_backward(st: Stream, g: Any, t: int, width: int, a: int, last: Optional[tuple] = None) -> Any:
    """``apply_rotary_pos_emb``'s backward for q or k (``rotate_half``'s slices and negation); ``last``: the
    (cos, sin) its last user frees (layer 0's q)."""
    m = st.new(a * t * width)  # grad · sin
    if last:
        st.free(last[1])
    n = st.new(a * t * width // 2)
    s1 = st.new(a * t * width)
    st.free(n)
    s2 = st.new(a * t * width)
    st.free(m)
    ad = st.new(a * t * width)
    st.free(s1, s2)
    m2 = st.new(a * t * width)  # grad · cos
    st.free(g)
    if last:
        st.free(last[0])
    out = st.new(a * t * width)
    st.free(ad, m2)
    return out


def _step_inputs(st: Stream, b: int, s: int, t: int, h: int, d: int, a: int, ckpt: bool) -> tuple:
    """A training step's inputs as the traced streams allocate them (full and LoRA training alike): the token ids,
    the embedding's output, cache_position (arange, freed) and position_ids, the causal mask under checkpointing,
    LlamaRotaryEmbedding's fp32 work cast to the dtype (cos and sin kept: the rotary backward's)."""
    ids = st.new(8 * t)
    emb = st.new(a * t * h)
    p0 = st.new(8 * s)  # cache_position (arange), position_ids (+ past length)
    pos = st.new(8 * s)
    st.free(p0)
    mask = _packed_check(st, b, s) if ckpt else None
    pf = st.new(4 * s)
    freqs = st.new(s * d // 2 * 4)
    st.free(pf)
    embf = st.new(s * d * 4)
    c0 = st.new(s * d * 4)
    c1 = st.new(s * d * 4)
    st.free(c0)
    s0 = st.new(s * d * 4)
    s1 = st.new(s * d * 4)
    st.free(s0)
    cos, sin = st.new(s * d * a), st.new(s * d * a)
    st.free(freqs, embf, c1, s1)
    return ids, emb, pos, mask, cos, sin


@lru_cache(maxsize=64)
def _train_cache(spec: Any, b: int, s: int, a: int, extra: tuple[int, ...],
                 config: AllocatorConfig = DEFAULT_CONFIG, in_backward: bool = False,
                 frozen: Optional[int] = None, ckpt: bool = False) -> Optional[int]:
    """``frozen`` (freezing, ``--frozen-layers``): the embedding (with the tied head) and the layers below it
    are frozen; they run as in inference (no tensor saved, their cache kept until the output is dropped), the
    first trained layer's input needs no gradient (its input norm keeps only the cast back, its backward stops
    at that norm's weight), and no embedding backward runs. ``ckpt``: every decoder layer checkpointed
    (non-reentrant, as :func:`_lora_train_cache` describes): the packed-sequence check (no mask follows), a
    forward that keeps only the checkpoints' inputs, each layer recomputed on ``down_proj``'s first unpack up
    to its saved input (the product), the recomputed tensors freed as they are unpacked."""
    from ..model.tensors import tensors

    st = Stream(extra, config)
    h, q, kv, inter, d = spec.hidden_size, spec.q_dim, spec.kv_dim, spec.intermediate_size, spec.head_dim
    heads, t, vocab = spec.num_heads, b * s, spec.vocab_size
    params = tensors(spec)
    bias = any(x.name.endswith("q_proj.bias") for x in params)
    tied = spec.tie_embeddings
    try:
        snap = _loaded(spec, a, extra, config) if st.log is None and st.alloc.freezable else None
        if snap is not None:
            st.alloc = CachingAllocator.thaw(snap)
        else:
            _load(st, spec, a)
        st.start = len(st.log) if st.log is not None else 0
        states: list = []
        for step in (1, 2):
            grads: dict = {}  # parameter name -> its .grad

            def adam(blocks: list) -> None:
                """torchtune's optimizer_in_bwd: each parameter's own AdamW stepped from its gradient's
                post-accumulate hook (as the accumulation runs, right after the node producing it), then its
                gradient freed (``_step_hook``)."""
                for blk in blocks:
                    if step == 1:
                        states.append((st.new(4), st.new(blk.requested), st.new(blk.requested)))
                    sc = st.new(4)
                    st.free(sc)
                    st.free(st.new(blk.requested))
                    st.free(blk)

            def put(key: str, blocks: list) -> None:
                if in_backward:
                    adam(blocks)
                else:
                    grads[key] = blocks if len(blocks) > 1 else blocks[0]

            hook = adam if in_backward else None
            ids, emb, pos, mask, cos, sin = _step_inputs(st, b, s, t, h, d, a, ckpt)
            x = emb
            layers: list = []
            first = frozen or 0  # the first layer whose input needs a gradient (or the embedding's)
            kept = []  # the frozen layers' cache keys and values (nothing saves them)
            for i in range(spec.num_layers):
                if i < first:  # a frozen layer under a frozen embedding: the inference prefill's stream
                    normed = _rmsnorm(st, t, h, a)
                    qs, ks, vs = st.new(a * t * q), st.new(a * t * kv), st.new(a * t * kv)
                    qe = _rotary(st, t, q, a)
                    ke = _rotary(st, t, kv, a)
                    st.free(qs, ks)
                    kept += [st.new(a * t * kv), st.new(a * t * kv)]
                    st.free(ke, vs)
                    out = st.new(a * t * q)
                    st.free(st.new(4 * heads * t))
                    o = st.new(a * t * h)
                    st.free(out, qe, normed)
                    mid = st.new(a * t * h)
                    st.free(o)
                    down = _mlp_no_grad(st, t, h, inter, a, _rmsnorm(st, t, h, a))
                    nxt = st.new(a * t * h)
                    st.free(down, mid)
                    if x is not emb:
                        st.free(x)
                    x = nxt
                    layers.append(None)
                    continue
                if ckpt:  # the checkpointed forward: nothing saved, the layer's input kept by the checkpoint
                    normed = _rmsnorm(st, t, h, a)
                    qs, ks, vs = st.new(a * t * q), st.new(a * t * kv), st.new(a * t * kv)
                    qe = _rotary(st, t, q, a)
                    ke = _rotary(st, t, kv, a)
                    st.free(qs, ks)
                    out = st.new(a * t * q)  # SDPA causal, grouped-query attention unrepeated
                    st.free(st.new(4 * heads * t))
                    o = st.new(a * t * h)
                    st.free(out, qe, ke, vs, normed)
                    mid = st.new(a * t * h)
                    st.free(o)
                    down = _mlp_no_grad(st, t, h, inter, a, _rmsnorm(st, t, h, a))
                    nxt = st.new(a * t * h)
                    st.free(down, mid)
                    layers.append(x)
                    x = nxt
                    continue
                sv1: list = []
                normed = _rmsnorm(st, t, h, a, saved=sv1, input_grad=frozen is None or i > first)
                qs, ks, vs = st.new(a * t * q), st.new(a * t * kv), st.new(a * t * kv)
                qe = _rotary(st, t, q, a)
                ke = _rotary(st, t, kv, a)
                st.free(qs, ks)
                ck, cv = st.new(a * t * kv), st.new(a * t * kv)  # DynamicLayer.update: the cache (sdpa's k, v)
                st.free(ke, vs)
                out = st.new(a * t * q)
                lse = st.new(4 * heads * t)
                o = st.new(a * t * h)
                mid = st.new(a * t * h)
                st.free(o)
                sv2: list = []
                normed2 = _rmsnorm(st, t, h, a, saved=sv2)
                gate = st.new(a * t * inter)
                act = st.new(a * t * inter)
                up = st.new(a * t * inter)
                prod = st.new(a * t * inter)
                down = st.new(a * t * h)
                nxt = st.new(a * t * h)
                st.free(down, mid)
                if x is not emb:
                    st.free(x)
                x = nxt
                layers.append((sv1, normed, qe, ck, cv, out, lse, sv2, normed2, gate, act, up, prod))
            svf: list = []
            final = _rmsnorm(st, t, h, a, saved=svf)
            # the model's forward returns: its locals dropped in its own order (LlamaModel: the hidden states,
            # the positions, the embeddings; Qwen2Model: the hidden states, the embeddings, the positions)
            if ckpt:  # the checkpoints hold the embeddings, the positions
                st.free(x)
            else:
                st.free(x, *((emb, pos) if spec.model_type == "qwen2" else (pos, emb)))
            logits = st.new(a * t * vocab)
            if frozen is not None:  # the tied head frozen: its mm keeps the weight, not the normed input
                st.free(final, *kept)
            # ForCausalLMLoss: logits.float(), the labels padded by one, log_softmax, nll_loss (mean)
            f32 = st.new(4 * t * vocab)
            labels = pad = st.new(8 * b * (s + 1))
            if b > 1:  # the shifted labels of a batch are not contiguous: view(-1) copies them (nll_loss keeps it)
                labels = st.new(8 * t)
            ls = st.new(4 * t * vocab)
            loss, tw = st.new(4), st.new(4)
            st.free(f32)
            if b > 1:
                st.free(pad)
            st.free(logits)  # the runner's del logits (its _to_copy backward keeps nothing)
            if frozen is not None:  # nothing saves the input ids under a frozen embedding: the runner's del
                st.free(ids)
            ones = st.new(4)
            g1 = st.new(4 * t * vocab)  # nll_loss_backward
            st.free(labels, tw)
            g2 = st.new(4 * t * vocab)  # _log_softmax_backward_data
            st.free(g1, ls)
            gl = st.new(a * t * vocab)  # back to the logits' dtype
            st.free(g2)
            if frozen is not None:  # the frozen head: the input's gradient only
                g = st.new(a * t * h)
                st.free(gl)
            else:
                g, gr = _linear_backward(st, gl, final, h, vocab, t, a)
                put("lm_head", gr)
            g, grads["norm"] = _rms_backward(st, g, svf, t, h, a, hook)
            for i in reversed(range(first, spec.num_layers)):
                pre = f"l{i}."
                if ckpt:
                    rec: list = []

                    def recompute() -> Any:
                        """The layer's forward again with its saved tensors, up to ``down_proj``'s input."""
                        sv1: list = []
                        normed = _rmsnorm(st, t, h, a, saved=sv1)
                        qs, ks, vs = st.new(a * t * q), st.new(a * t * kv), st.new(a * t * kv)
                        qe = _rotary(st, t, q, a)
                        ke = _rotary(st, t, kv, a)
                        st.free(qs, ks)
                        out = st.new(a * t * q)  # SDPA causal, grouped-query attention unrepeated
                        lse = st.new(4 * heads * t)
                        o = st.new(a * t * h)
                        mid = st.new(a * t * h)
                        st.free(o)
                        sv2: list = []
                        normed2 = _rmsnorm(st, t, h, a, saved=sv2)
                        gate = st.new(a * t * inter)
                        act = st.new(a * t * inter)
                        up = st.new(a * t * inter)
                        prod = st.new(a * t * inter)
                        st.free(mid)  # the early stop unwinds the layer's frames
                        rec.extend((sv1, normed, qe, ke, vs, out, lse, sv2, normed2, gate, act, up))  # SDPA's k, v
                        return prod

                    gp, gr = _linear_backward(st, g, recompute, inter, h, t, a, free_grad=False, ckpt=True)
                    sv1, normed, qe, ck, cv, out, lse, sv2, normed2, gate, act, up = rec
                else:
                    sv1, normed, qe, ck, cv, out, lse, sv2, normed2, gate, act, up, prod = layers[i]
                    # MLP: down_proj, the product, up_proj, silu, gate_proj
                    gp, gr = _linear_backward(st, g, prod, inter, h, t, a, free_grad=False)
                put(pre + "down", gr)
                ga = st.new(a * t * inter)
                gb = st.new(a * t * inter)
                st.free(*((act, up, gp) if ckpt else (gp, up, act)))
                gn1, gr = _linear_backward(st, ga, None, h, inter, t, a)
                put(pre + "up", gr)
                gs = st.new(a * t * inter)  # silu_backward
                st.free(*((gate, gb) if ckpt else (gb, gate)))
                gn2, gr = _linear_backward(st, gs, normed2, h, inter, t, a, ckpt=ckpt)
                gsum = st.new(a * t * h)  # the input's gradient added into the buffer before the weight's hook
                st.free(gn1, gn2)
                put(pre + "gate", gr)
                gi, grads[pre + "post_norm"] = _rms_backward(st, gsum, sv2, t, h, a, hook, ckpt=ckpt)
                r = st.new(a * t * h)  # the residual's gradient
                st.free(g, gi)
                # attention: o_proj, sdpa, the rotary of k then q, v/k/q projections
                top = frozen is not None and i == first  # the residual's input needs no gradient: r ends here
                go, gr = _linear_backward(st, r, None, q, h, t, a, free_grad=top)
                put(pre + "o", gr)
                gq, gk, gv = st.new(a * t * q), st.new(a * t * kv), st.new(a * t * kv)  # sdpa's backward
                if ckpt:  # the recomputed layer's saved tensors: its log-sum-exp freed first
                    st.free(go, lse, ck, qe, cv, out)
                else:
                    st.free(go, ck, qe, cv, lse, out)  # sdpa's saved tensors, then o_proj's input
                rk = _rotary_backward(st, gk, t, kv, a)
                rq = _rotary_backward(st, gq, t, q, a, (cos, sin) if i == first and not ckpt else None)
                gxv, gr = _linear_backward(st, gv, None, h, kv, t, a, bias)
                put(pre + "v", gr)
                ck2 = st.new(a * t * kv)  # contiguous copy of the transposed gradient
                st.free(rk)
                gxk, gr = _linear_backward(st, ck2, None, h, kv, t, a, bias)
                sk = st.new(a * t * h)
                st.free(gxv, gxk)
                put(pre + "k", gr)
                cq = st.new(a * t * q)
                st.free(rq)
                gxq, gr = _linear_backward(st, cq, normed, h, q, t, a, bias, ckpt=ckpt)
                sq = st.new(a * t * h)
                st.free(sk, gxq)
                put(pre + "q", gr)
                if top:  # the norm's weight gradient only: grad · cast back, summed
                    m2 = st.new(a * t * h)
                    grads[pre + "in_norm"] = st.new(a * h)
                    st.free(m2, sq, sv1[2])
                    break
                # the last frame's inputs: the embeddings too (nothing else holds them; under LoRA a leaf)
                done = ((layers[i],) if i else (mask, sin, cos, pos, emb)) if ckpt else ()
                gi, grads[pre + "in_norm"] = _rms_backward(st, sq, sv1, t, h, a, hook, ckpt=ckpt, done=done)
                nr = st.new(a * t * h)
                st.free(r, gi)
                g = nr
            if frozen is None:  # the embedding's backward
                ge = st.new(a * vocab * h)  # embedding_dense_backward
                st.free(g, ids)
                if tied:  # AccumulateGrad onto lm_head's gradient: out of place
                    acc = st.new(a * vocab * h)
                    st.free(grads.pop("lm_head"), ge)
                    ge = acc
                if in_backward:
                    adam([ge])
                    st.free(ones, loss)
                    continue
                grads["embed"] = ge
            st.free(ones, loss)
            # AdamW, torch's _multi_tensor_adam: the state on the first step (step, exp_avg, exp_avg_sq per
            # parameter, in the parameters' order), then exp_avg_sq's square roots for all, freed in reverse
            order = _param_grads(spec, grads, tied, bias)
            if step == 1:
                for n in order:
                    states.append((st.new(4), st.new(a * n[0]), st.new(a * n[0])))
            sc = st.new(4)
            st.free(sc)
            roots = [st.new(a * n[0]) for n in order]
            st.free(*reversed(roots))
            st.free(*[n[1] for n in order])  # zero_grad(set_to_none=True), in the parameters' order
    except OutOfMemory:
        return None
    stats = st.alloc.stats
    return stats.peak_reserved - stats.peak_allocated


def _param_grads(spec: Any, grads: dict, tied: bool, bias: bool) -> list:
    """(elements, .grad block) per parameter in ``model.parameters()`` order."""
    from ..model.tensors import tensors

    out = []
    for x in tensors(spec):
        name = x.name
        if name == "model.embed_tokens.weight":
            key, j = "embed", 0
        elif name == "lm_head.weight":
            key, j = "lm_head", 0
        elif name == "model.norm.weight":
            key, j = "norm", None
        else:
            parts = name.split(".")
            i, mod = int(parts[2]), parts[-2]
            short = {"q_proj": "q", "k_proj": "k", "v_proj": "v", "o_proj": "o", "gate_proj": "gate",
                     "up_proj": "up", "down_proj": "down", "input_layernorm": "in_norm",
                     "post_attention_layernorm": "post_norm"}[mod]
            key = f"l{i}.{short}"
            j = 1 if parts[-1] == "bias" else 0
        if key not in grads:  # frozen
            continue
        gb = grads[key]
        if isinstance(gb, list):
            gb = gb[j]
        out.append((x.numel, gb))
    return out


# -- LoRA: peft's adapters on every linear of the decoder layers, two training steps ---------------------------------

#: the projections ``all-linear`` puts an adapter on, in ``model.parameters()`` order within a layer (``q_proj`` …
#: ``down_proj``; peft leaves ``lm_head`` out), as (name, input width attribute, output width attribute)
LORA_LINEARS = (("q_proj", "hidden_size", "q_dim"), ("k_proj", "hidden_size", "kv_dim"),
                ("v_proj", "hidden_size", "kv_dim"), ("o_proj", "q_dim", "hidden_size"),
                ("gate_proj", "hidden_size", "intermediate_size"), ("up_proj", "hidden_size", "intermediate_size"),
                ("down_proj", "intermediate_size", "hidden_size"))


def _lora_shapes(spec: Any, r: int) -> list[tuple[int, int]]:
    """(A, B) elements of each adapter in ``model.parameters()`` order: per layer, per projection."""
    out = []
    for _ in range(spec.num_layers):
        for _, i, o in LORA_LINEARS:
            out.append((r * getattr(spec, i), getattr(spec, o) * r))
    return out


def _lora_forward(st: Stream, t: int, n_in: int, n_out: int, r: int, a: int) -> tuple[Any, tuple]:
    """``peft.tuners.lora.layer.Linear.forward`` (peft 0.21, vanilla LoRA, dropout ``nn.Identity``) on ``t`` rows
    of a 16-bit input: ``result = base_layer(x)``, ``x = x.to(lora_A.weight.dtype)`` (the fp32 adapters),
    ``result = result + lora_B(lora_A(x)) * scaling`` (promoted to fp32), ``result.to(torch_result_dtype)``.
    Autograd keeps the fp32 input (``lora_A``'s weight gradient) and ``lora_A``'s output (``lora_B``'s); the
    frozen base weight keeps nothing. Returns (output, saved)."""
    base = st.new(a * t * n_out)
    x32 = st.new(4 * t * n_in)
    ao = st.new(4 * t * r)
    bo = st.new(4 * t * n_out)
    sc = st.new(4 * t * n_out)  # × scaling
    st.free(bo)
    res = st.new(4 * t * n_out)  # bf16 + fp32: fp32
    st.free(sc, base)
    out = st.new(a * t * n_out)
    st.free(res)
    return out, (x32, ao)


def _lora_no_grad(st: Stream, t: int, n_in: int, n_out: int, r: int, a: int) -> Any:
    """:func:`_lora_forward` where autograd keeps nothing (a checkpointed layer's first forward): ``lora_A``'s
    output freed once ``lora_B`` has run, the fp32 input when the forward returns."""
    base = st.new(a * t * n_out)
    x32 = st.new(4 * t * n_in)
    ao = st.new(4 * t * r)
    bo = st.new(4 * t * n_out)
    st.free(ao)
    sc = st.new(4 * t * n_out)
    st.free(bo)
    res = st.new(4 * t * n_out)
    st.free(sc, base)
    out = st.new(a * t * n_out)
    st.free(res, x32)
    return out


def _lora_backward(st: Stream, g: Any, saved: Any, n_in: int, n_out: int, r: int, t: int, a: int,
                   free_grad: bool, input_grad: bool, buf: Any = None, ckpt: bool = False) -> tuple[Any, list]:
    """:func:`_lora_forward`'s backward in autograd's order on the output gradient ``g``: the cast back's
    (``g`` to fp32; ``g`` freed there when nothing else holds it, ``free_grad``), the add's (the base branch's
    gradient cast to 16 bits), the scaling's, ``lora_B``'s mm (its weight's gradient, then its input's),
    ``lora_A``'s (the weight's, the input's), the cast's backward to 16 bits, then the frozen base's input
    gradient, each input gradient added out of place into the input's buffer ``buf`` (the previous consumers'
    sum) when one is there. ``input_grad`` false (the layer's input needs no gradient): the adapters' weight
    gradients only. ``ckpt``: the saved tensors are a checkpoint's recomputed ones, freed as they are unpacked
    (before the node's input gradient); ``saved`` may then be a callable that recomputes the layer (the first
    unpack, ``lora_B``'s) and returns them. Returns (the input's gradient buffer, the adapters' .grads [A, B])."""
    g32 = st.new(4 * t * n_out)
    if free_grad:
        st.free(g)
    gb = st.new(a * t * n_out) if input_grad else None
    gsc = st.new(4 * t * n_out)
    st.free(g32)
    x32, ao = saved() if callable(saved) else saved
    wb = st.new(4 * r * n_out)
    ga = st.new(4 * t * r)
    st.free(*((ao, gsc) if ckpt else (gsc, ao)))
    wa = st.new(4 * n_in * r)
    if not input_grad:
        st.free(*((x32, ga) if ckpt else (ga, x32)))
        return None, [wa, wb]
    gx32 = st.new(4 * t * n_in)
    st.free(*((x32, ga) if ckpt else (ga, x32)))
    gxl = st.new(a * t * n_in)
    st.free(gx32)
    buf = _accumulate(st, buf, gxl, a * t * n_in)
    gxb = st.new(a * t * n_in)
    st.free(gb)
    return _accumulate(st, buf, gxb, a * t * n_in), [wa, wb]


def _accumulate(st: Stream, buf: Any, g: Any, n: int) -> Any:
    """Autograd's input buffer: the first gradient kept, each later one added out of place (both freed)."""
    if buf is None:
        return g
    s = st.new(n)
    st.free(buf, g)
    return s


def _packed_check(st: Stream, b: int, s: int) -> None:
    """transformers 5.24's ``find_packed_sequence_indices`` on a batch without a cache (checkpointed training
    turns it off): ``position_ids[:, :1] - 1``, ``torch.diff`` with it prepended (a concatenation inside),
    ``!= 1`` and ``cumsum``, then the check it reads (``[:, -1] == 0``, ``.all()``): one sequence a row, so
    ``None`` (no packing), every tensor freed; ``create_causal_mask`` then skips the mask and SDPA runs with
    ``is_causal`` (and ``enable_gqa``: no ``repeat_kv`` copies), as without checkpointing."""
    d0 = st.new(8 * b)
    cat = st.new(8 * b * (s + 1))
    diff = st.new(8 * b * s)
    st.free(cat)
    n = st.new(b * s)
    packed = st.new(8 * b * s)
    st.free(n)
    eq = st.new(b)
    al = st.new(1)
    st.free(eq, al, d0, diff, packed)
    return None


@lru_cache(maxsize=64)
def _lora_train_cache(spec: Any, b: int, s: int, a: int, r: int, extra: tuple[int, ...],
                      config: AllocatorConfig = DEFAULT_CONFIG, ckpt: bool = False) -> Optional[int]:
    """Two LoRA training steps (peft's adapters of rank ``r`` on the seven projections of every layer): the base
    model and its norms frozen, the embedding and the head too. Without checkpointing layer 0's input needs no
    gradient (its input norm and its q/k/v base projections run without autograd; its adapters compute their
    weights' gradients only); every later norm keeps its upcast and ``rsqrt`` (a frozen weight: no cast back);
    no tensor is kept for a frozen base projection, the adapters keep their fp32 input and ``lora_A``'s output;
    AdamW's states and ``_foreach_sqrt``'s temporaries are the fp32 adapters'.

    ``ckpt``: non-reentrant checkpointing of every decoder layer (``gradient_checkpointing_enable`` with
    ``use_reentrant=False``, peft's ``enable_input_require_grads``), as torch 2.13's ``torch/utils/checkpoint.py``
    runs it: no cache (``use_cache`` off), so transformers checks the positions for packed sequences
    (:func:`_packed_check`: one sequence a row, no mask) and SDPA runs causal with grouped-query attention
    unrepeated; each layer's forward keeps nothing but its inputs (the hidden states, the positions, cos/sin:
    the checkpoint's); in the backward the first unpack (``lora_B``'s of
    ``down_proj``) recomputes the layer with its saved tensors up to that last one (early stop), each freed as
    it is unpacked; layer 0's input (the embeddings, made to require a gradient) gets its gradient too."""
    st = Stream(extra, config)
    h, q, kv, inter, d = spec.hidden_size, spec.q_dim, spec.kv_dim, spec.intermediate_size, spec.head_dim
    heads, kvh, t, vocab = spec.num_heads, spec.num_kv_heads, b * s, spec.vocab_size
    shapes = _lora_shapes(spec, r)
    try:
        snap = _loaded(spec, a, extra, config) if st.log is None and st.alloc.freezable else None
        if snap is not None:
            st.alloc = CachingAllocator.thaw(snap)
        else:
            _load(st, spec, a)
        for na, nb in shapes:  # get_peft_model: lora_A then lora_B of each targeted linear, fp32
            st.new(4 * na)
            st.new(4 * nb)
        st.start = len(st.log) if st.log is not None else 0
        states: list = []

        for step in (1, 2):
            grads: list = []  # per layer, per projection: [A .grad, B .grad]
            ids, emb, pos, mask, cos, sin = _step_inputs(st, b, s, t, h, d, a, ckpt)
            x = emb
            layers: list = []
            for i in range(spec.num_layers):
                if ckpt:  # the checkpointed forward: nothing saved, the layer's input kept by the checkpoint
                    normed = _rmsnorm(st, t, h, a)
                    qs = _lora_no_grad(st, t, h, q, r, a)
                    ks = _lora_no_grad(st, t, h, kv, r, a)
                    vs = _lora_no_grad(st, t, h, kv, r, a)
                    qe = _rotary(st, t, q, a)
                    ke = _rotary(st, t, kv, a)
                    st.free(qs, ks)
                    out = st.new(a * t * q)  # SDPA causal, grouped-query attention unrepeated
                    st.free(st.new(4 * heads * t))
                    o = _lora_no_grad(st, t, q, h, r, a)
                    st.free(out, qe, ke, vs, normed)
                    mid = st.new(a * t * h)
                    st.free(o)
                    normed2 = _rmsnorm(st, t, h, a)
                    gate = _lora_no_grad(st, t, h, inter, r, a)
                    act = st.new(a * t * inter)
                    st.free(gate)
                    up = _lora_no_grad(st, t, h, inter, r, a)
                    prod = st.new(a * t * inter)
                    st.free(act, up)
                    down = _lora_no_grad(st, t, inter, h, r, a)
                    st.free(prod, normed2)
                    nxt = st.new(a * t * h)
                    st.free(down, mid)
                    layers.append(x)
                    x = nxt
                    continue
                sv1: list = []
                # layer 0: the frozen embedding's output needs no gradient, nor does its input norm
                normed = _rmsnorm(st, t, h, a) if i == 0 else _rmsnorm(st, t, h, a, saved=sv1, weight_grad=False)
                qs, sq = _lora_forward(st, t, h, q, r, a)
                ks, sk = _lora_forward(st, t, h, kv, r, a)
                vs, sv = _lora_forward(st, t, h, kv, r, a)
                qe = _rotary(st, t, q, a)
                ke = _rotary(st, t, kv, a)
                st.free(qs, ks)
                ck, cv = st.new(a * t * kv), st.new(a * t * kv)
                st.free(ke, vs)
                out = st.new(a * t * q)
                lse = st.new(4 * heads * t)
                o, so = _lora_forward(st, t, q, h, r, a)
                st.free(normed)  # nothing saves it: the attention returns
                mid = st.new(a * t * h)
                st.free(o)
                sv2: list = []
                normed2 = _rmsnorm(st, t, h, a, saved=sv2, weight_grad=False)
                gate, sg = _lora_forward(st, t, h, inter, r, a)
                act = st.new(a * t * inter)
                up, su = _lora_forward(st, t, h, inter, r, a)
                prod = st.new(a * t * inter)
                down, sd = _lora_forward(st, t, inter, h, r, a)
                st.free(prod, normed2)
                nxt = st.new(a * t * h)
                st.free(down, mid)
                if x is not emb:
                    st.free(x)
                x = nxt
                layers.append((sv1, sq, sk, sv, qe, (ck, cv), out, lse, so, sv2, sg, act, su, sd, gate, up))
            svf: list = []
            final = _rmsnorm(st, t, h, a, saved=svf, weight_grad=False)
            if ckpt:  # the checkpoints hold the embeddings, the positions
                st.free(x)
            else:
                st.free(x, *((emb, pos) if spec.model_type == "qwen2" else (pos, emb)))
            logits = st.new(a * t * vocab)
            st.free(final)  # the frozen head keeps its weight, not its input
            f32 = st.new(4 * t * vocab)
            labels = pad = st.new(8 * b * (s + 1))
            if b > 1:
                labels = st.new(8 * t)
            ls = st.new(4 * t * vocab)
            loss, tw = st.new(4), st.new(4)
            st.free(f32)
            if b > 1:
                st.free(pad)
            st.free(logits, ids)  # the runner's del logits, ids (the frozen embedding saves no ids)
            ones = st.new(4)
            g1 = st.new(4 * t * vocab)
            st.free(labels, tw)
            g2 = st.new(4 * t * vocab)
            st.free(g1, ls)
            gl = st.new(a * t * vocab)
            st.free(g2)
            g = st.new(a * t * h)  # the frozen head: the input's gradient only
            st.free(gl)
            g, _ = _rms_backward(st, g, svf, t, h, a, weight_grad=False)
            for i in reversed(range(spec.num_layers)):
                lg: list = [None] * 7
                if ckpt:
                    rec: dict = {}

                    def recompute() -> tuple:
                        """The layer's forward again with its saved tensors, up to ``down_proj``'s
                        ``lora_A`` output (the last one saved); what the early stop drops, dropped."""
                        sv1: list = []
                        normed = _rmsnorm(st, t, h, a, saved=sv1, weight_grad=False)
                        qs, sq = _lora_forward(st, t, h, q, r, a)
                        ks, sk = _lora_forward(st, t, h, kv, r, a)
                        vs, sv = _lora_forward(st, t, h, kv, r, a)
                        qe = _rotary(st, t, q, a)
                        ke = _rotary(st, t, kv, a)
                        st.free(qs, ks)
                        out = st.new(a * t * q)  # SDPA causal, grouped-query attention unrepeated
                        lse = st.new(4 * heads * t)
                        o, so = _lora_forward(st, t, q, h, r, a)
                        st.free(normed)
                        mid = st.new(a * t * h)
                        st.free(o)
                        sv2: list = []
                        normed2 = _rmsnorm(st, t, h, a, saved=sv2, weight_grad=False)
                        gate, sg = _lora_forward(st, t, h, inter, r, a)
                        act = st.new(a * t * inter)
                        up, su = _lora_forward(st, t, h, inter, r, a)
                        prod = st.new(a * t * inter)
                        base, x32, ao = st.new(a * t * h), st.new(4 * t * inter), st.new(4 * t * r)
                        st.free(base, prod, normed2, mid)  # the early stop unwinds the layer's frames
                        rec.update(sv1=sv1, sq=sq, sk=sk, sv=sv, qe=qe, kvs=(ke, vs), out=out, lse=lse,
                                   so=so, sv2=sv2, sg=sg, act=act, su=su, gate=gate, up=up)
                        return x32, ao

                    gp, lg[6] = _lora_backward(st, g, recompute, inter, h, r, t, a, False, True, ckpt=True)
                    sv1, sq, sk, sv, qe, kvs, out, lse, so, sv2, sg, act, su, gate, up = (
                        rec[k] for k in ("sv1", "sq", "sk", "sv", "qe", "kvs", "out", "lse", "so", "sv2", "sg",
                                         "act", "su", "gate", "up"))
                else:
                    sv1, sq, sk, sv, qe, kvs, out, lse, so, sv2, sg, act, su, sd, gate, up = layers[i]
                    gp, lg[6] = _lora_backward(st, g, sd, inter, h, r, t, a, False, True)
                ga = st.new(a * t * inter)
                gb = st.new(a * t * inter)
                st.free(*((act, up, gp) if ckpt else (gp, up, act)))
                gn, lg[5] = _lora_backward(st, ga, su, h, inter, r, t, a, True, True, ckpt=ckpt)
                gs = st.new(a * t * inter)  # silu_backward
                st.free(*((gate, gb) if ckpt else (gb, gate)))
                gsum, lg[4] = _lora_backward(st, gs, sg, h, inter, r, t, a, True, True, gn, ckpt)
                gi, _ = _rms_backward(st, gsum, sv2, t, h, a, weight_grad=False, ckpt=ckpt)
                res = st.new(a * t * h)
                st.free(g, gi)
                # without checkpointing layer 0's input needs no gradient: the residual's ends at o_proj
                top = i == 0 and not ckpt
                go, lg[3] = _lora_backward(st, res, so, q, h, r, t, a, top, True, ckpt=ckpt)
                ck, cv = kvs
                gq, gk, gv = st.new(a * t * q), st.new(a * t * kv), st.new(a * t * kv)  # sdpa's backward
                if ckpt:  # the recomputed layer's saved tensors: its log-sum-exp freed first
                    st.free(go, lse, ck, qe, cv, out)
                else:
                    st.free(go, ck, qe, cv, lse, out)
                rk = _rotary_backward(st, gk, t, kv, a)
                rq = _rotary_backward(st, gq, t, q, a, (cos, sin) if top else None)
                buf, lg[2] = _lora_backward(st, gv, sv, h, kv, r, t, a, True, not top, ckpt=ckpt)
                ck2 = st.new(a * t * kv)
                st.free(rk)
                buf, lg[1] = _lora_backward(st, ck2, sk, h, kv, r, t, a, True, not top, buf, ckpt)
                cq = st.new(a * t * q)
                st.free(rq)
                buf, lg[0] = _lora_backward(st, cq, sq, h, q, r, t, a, True, not top, buf, ckpt)
                grads.append(lg)
                if top:
                    break
                done = ((layers[i],) if i else (mask, sin, cos, pos)) if ckpt else ()
                gi, _ = _rms_backward(st, buf, sv1, t, h, a, weight_grad=False, ckpt=ckpt, done=done)
                nr = st.new(a * t * h)
                st.free(res, gi)
                g = nr
            if ckpt:  # the embeddings' gradient (a leaf's .grad) dropped with the graph, then the embeddings
                st.free(ones, g, emb)
                st.free(loss)
            else:
                st.free(ones, loss)
            order = [(n, blk) for lg in reversed(grads) for pair, blks in zip(
                shapes[:7], lg) for n, blk in zip(pair, blks)]
            if step == 1:
                for n, _ in order:
                    states.append((st.new(4), st.new(4 * n), st.new(4 * n)))
            sc = st.new(4)
            st.free(sc)
            roots = [st.new(4 * n) for n, _ in order]
            st.free(*reversed(roots))
            st.free(*[blk for _, blk in order])
    except OutOfMemory:
        return None
    stats = st.alloc.stats
    return stats.peak_reserved - stats.peak_allocated
