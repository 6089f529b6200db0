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

Pure Python: a stream of ~120 events per layer (a few milliseconds for 80 layers, ``bench/startup.py``).
Workloads it does not cover return None and keep the shares.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Optional

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
        n = max(1, int(n))
        if self.log is not None:
            self.log.append(n)
        return self.alloc.malloc(n)

    def free(self, *blocks: Any) -> None:
        for b in blocks:
            if b is not None:
                if self.log is not None:
                    self.log.append(-b.requested)
                self.alloc.free(b)


def _rmsnorm(st: Stream, rows: int, width: int, a: int, gemma: bool = False) -> Any:
    """``LlamaRMSNorm.forward`` on ``rows`` × ``width``: fp32 upcast, ``pow(2)``, ``mean``, ``+ eps``, ``rsqrt``,
    the product, the cast back and the weight's product; returns the output (the input is the caller's). In fp32
    the upcast and the cast back are the tensor itself. ``gemma``: ``Gemma2RMSNorm`` (the mean freed before the
    ``rsqrt``, then ``× (1 + weight)`` in fp32; fp32 only)."""
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
    st.free(rs, up)
    if gemma:
        one = st.new(4 * width)  # 1 + weight
        out = st.new(4 * rows * width)
        st.free(one, prod)
        return out
    cast = st.new(a * rows * width) if a != 4 else None
    out = st.new(a * rows * width)
    st.free(cast, prod, var)
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


def prefill_cache(spec: Any, w: Any, a: float, extra: tuple[int, ...],
                  config: AllocatorConfig = DEFAULT_CONFIG) -> Optional[int]:
    """The cache (``max_memory_reserved − max_memory_allocated``) of an inference prefill replayed through the
    allocator model under ``config``, after the allocations ``extra`` (the cuBLAS workspace); None when
    :func:`covered` is false."""
    if not covered(spec, w, a):
        return None
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
            normed = _rmsnorm(st, t, h, a, gemma)
            gate = st.new(a * t * inter)
            act = st.new(a * t * inter)
            st.free(gate)
            up = st.new(a * t * inter)
            prod = st.new(a * t * inter)
            st.free(act, up)
            down = st.new(a * t * h)
            st.free(prod, normed)
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
