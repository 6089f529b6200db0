"""The order-aware analytic cache (``memory/synthetic.py``): the prefill stream written from the analytic model,
replayed through the allocator model, against the replay of the real code's trace.

The traced cases (2-layer cuts of real catalog configs, the real transformers code on fake tensors) cover what the
stream branches on: no mask (``is_causal``), a sliding-window mask with ``repeat_kv`` (Mistral, s > window),
batch > 1, Qwen3's q/k norms, fp32 (no upcast copies), eager attention (its float mask, score-sized tensors,
matmul's copy of the transposed keys for a batch, the attention weights the layer holds to its end), Gemma 2
(four norms, soft-capping, a full and a sliding mask). The synthetic stream's large requests and frees must be the
trace's, in order, and its peak allocated and reserved match the trace's replay to 0.5% (its cache to 2% or
2 MiB): a misplaced free or a wrong tensor size breaks it.
"""

import pytest

from conftest import requires_torch
from test_trace_matrix import two_layers
from vramscope.api import estimate_resolved
from vramscope.memory import synthetic
from vramscope.memory.allocator import DEFAULT_CONFIG, parse_alloc_conf, replay
from vramscope.memory.overhead import CUBLAS_WORKSPACE
from vramscope.workload import make_workload

MiB = 2**20

TRACED = [
    ("llama-3.2-3b", dict(task="inference", seq=4096, batch=4)),  # no mask (is_causal), a batch
    ("mistral-7b-v0.1", dict(task="inference", seq=4500)),  # window < prompt: the sliding mask, repeat_kv
    ("qwen3-8b", dict(task="inference", seq=2048)),  # per-head q/k norms
    ("llama-3-8b", dict(task="inference", seq=768, batch=3, dtype="fp32")),  # fp32: no upcast copies
    ("llama-3-8b", dict(task="inference", seq=768, batch=3, attn="eager")),  # eager, matmul's kᵀ copy
    ("mistral-7b-v0.1", dict(task="inference", seq=4500, attn="eager")),
    ("gemma-2-2b", dict(task="inference", seq=4500)),  # Gemma 2: fp32, four norms, soft-capping, two masks
    ("gemma-2-2b", dict(task="inference", seq=768, batch=3)),
]


def _bytes(model, w):
    from vramscope.estimators.common import compute_dtype, dtype_bytes

    return int(dtype_bytes(compute_dtype(model, w)))


def _synthetic(model, w, config=DEFAULT_CONFIG, log=None):
    """The synthetic replay's (peak allocated, peak reserved); ``log`` (a list) gets its events from the
    workload's first allocation on (``+bytes`` / ``-bytes``)."""
    synthetic._prefill_cache.cache_clear()
    st = synthetic.Stream((CUBLAS_WORKSPACE,), config, [])
    orig = synthetic.Stream
    synthetic.Stream = lambda *a: st  # the stream prefill_cache builds is this one
    try:
        cache = synthetic.prefill_cache(model.spec, w, _bytes(model, w), (CUBLAS_WORKSPACE,), config)
    finally:
        synthetic.Stream = orig
        synthetic._prefill_cache.cache_clear()
    assert cache == st.alloc.stats.peak_reserved - st.alloc.stats.peak_allocated
    if log is not None:
        log.extend(st.log[st.start:])
    return st.alloc.stats.peak_allocated, st.alloc.stats.peak_reserved


@requires_torch
@pytest.mark.trace
@pytest.mark.parametrize("name, kw", TRACED,
                         ids=[f"{n}-{kw['seq']}x{kw.get('batch', 1)}-{kw.get('attn', 'sdpa')}-{kw.get('dtype', '')}"
                              for n, kw in TRACED])
def test_prefill_stream_matches_the_traced_replay(name, kw):
    from vramscope.trace.estimator import quiet_libraries, run_trace

    model, w = two_layers(name), make_workload(**kw)
    assert synthetic.covered(model.spec, w, _bytes(model, w))
    with quiet_libraries():
        log, _, _ = run_trace(model, w)
    sim = replay(log.sizes, log.events, marks=log.marks, start=log.marks["ready"], extra=(CUBLAS_WORKSPACE,),
                 streams=log.streams)
    ours: list[int] = []
    alloc, reserved = _synthetic(model, w, log=ours)
    # the same large requests and frees as the real code's, in the same order (at least 1 MiB: the large pool's;
    # in 512-byte units)
    theirs = [(log.sizes[abs(ev) - 1] if ev > 0 else -log.sizes[-ev - 1])
              for ev in log.events[log.marks["prefill"] + 1:log.marks["decode"] + 1]]
    def big(xs):  # in the allocator's 512-byte units (the tracker's sizes of a bool mask are rounded up)
        return [(1 if x > 0 else -1) * -(-abs(x) // 512) for x in xs if abs(x) >= MiB]

    assert big(ours) == big(theirs)
    assert alloc == pytest.approx(sim.peak_allocated, rel=0.005)
    assert reserved == pytest.approx(sim.peak_reserved, rel=0.005)
    assert abs((reserved - alloc) - (sim.peak_reserved - sim.peak_allocated)) <= max(
        2 * MiB, 0.02 * (sim.peak_reserved - sim.peak_allocated))
    # and the estimate's cache term is that replay's
    assert estimate_resolved(model, w).memory.terms["allocator_cache"] == reserved - alloc


#: the training step's traced cases: Llama 3 (untied head), Qwen2.5 (tied embeddings: the head's gradient
#: accumulated onto the embedding's out of place; q/k/v biases: addmm's backward order), Llama 3.2 (tied, a batch)
TRACED_TRAIN = [
    ("llama-3-8b", dict(task="finetune", seq=256)),
    ("qwen2.5-0.5b", dict(task="finetune", seq=512)),
    ("llama-3.2-1b", dict(task="finetune", seq=384, batch=2)),
    ("llama-3.2-1b", dict(task="finetune", seq=200, dtype="fp16")),  # fp16 weights, a context off the 512 grid
    # torchtune's optimizer_in_bwd: each parameter stepped from its gradient's hook, inside the backward
    ("llama-3-8b", dict(task="finetune", seq=256, optimizer_in_backward=True)),
    # freezing the first layer with the (tied) embedding: that layer runs as in inference, the next one's input
    # needs no gradient, the head has no weight gradient, no embedding backward
    ("qwen2.5-0.5b", dict(task="finetune", seq=256, method="freeze", frozen_layers=1)),
    # peft LoRA (rank 16 on all seven projections, no dropout), no checkpointing: the frozen base keeps nothing,
    # the adapters their fp32 input and lora_A's output; layer 0's input needs no gradient; fp32 AdamW states
    ("llama-3-8b", dict(task="finetune", seq=256, method="lora", grad_checkpointing=False)),
    ("qwen2.5-0.5b", dict(task="finetune", seq=256, batch=2, method="lora", grad_checkpointing=False)),
    # LoRA with every layer checkpointed (the HF profile's default): the causal mask built, repeat_kv under it,
    # nothing saved in the forward, each layer recomputed up to down_proj's lora_A output in the backward
    ("llama-3-8b", dict(task="finetune", seq=384, method="lora", grad_checkpointing=True)),
    ("qwen2.5-0.5b", dict(task="finetune", seq=256, batch=2, method="lora", grad_checkpointing=True)),
    ("llama-2-7b", dict(task="finetune", seq=256, method="lora", grad_checkpointing=True)),  # no GQA: no copies
    # full training with every layer checkpointed: the recompute keeps what the full step saves, up to
    # down_proj's input; addmm's (q/k/v biases) input freed between the weight's and the bias's gradient
    ("llama-3-8b", dict(task="finetune", seq=256, grad_checkpointing=True)),
    ("qwen2.5-0.5b", dict(task="finetune", seq=256, batch=2, grad_checkpointing=True)),
    ("llama-2-7b", dict(task="finetune", seq=256, grad_checkpointing=True)),
]


def _train_synthetic(model, w, config=DEFAULT_CONFIG, log=None):
    """The synthetic training replay's (peak allocated, peak reserved), its events (from the workload's first
    allocation on) appended to ``log``."""
    synthetic._train_cache.cache_clear()
    synthetic._lora_train_cache.cache_clear()
    st = synthetic.Stream((CUBLAS_WORKSPACE,), config, [])
    orig = synthetic.Stream
    synthetic.Stream = lambda *a: st
    try:
        cache = synthetic.train_cache(model.spec, w, _bytes(model, w), (CUBLAS_WORKSPACE,), config)
    finally:
        synthetic.Stream = orig
        synthetic._train_cache.cache_clear()
        synthetic._lora_train_cache.cache_clear()
    assert cache == st.alloc.stats.peak_reserved - st.alloc.stats.peak_allocated
    if log is not None:
        log.extend(st.log[st.start:])
    return st.alloc.stats.peak_allocated, st.alloc.stats.peak_reserved


def _train_id(n, kw):
    extra = ("-in-bwd" * kw.get("optimizer_in_backward", False) + "-frozen" * ("frozen_layers" in kw)
             + "-lora" * (kw.get("method") == "lora") + "-ckpt" * kw.get("grad_checkpointing", False)
             + (f"-{kw['dtype']}" if "dtype" in kw else ""))
    return f"{n}-{kw['seq']}x{kw.get('batch', 1)}{extra}"


@requires_torch
@pytest.mark.trace
@pytest.mark.parametrize("name, kw", TRACED_TRAIN, ids=[_train_id(n, kw) for n, kw in TRACED_TRAIN])
def test_training_stream_matches_the_traced_replay(name, kw):
    """Two full training steps (forward with its saved tensors, the loss head, autograd's backward, AdamW's
    foreach step with its state on step 1, zero_grad): every request and free of the trace (in 512-byte units)
    from the first step's input ids to the last gradient freed, in order — the large ones and the small pool's."""
    from vramscope.trace.estimator import quiet_libraries, run_trace

    model, w = two_layers(name), make_workload(**kw)
    assert synthetic.covered_training(model.spec, w, _bytes(model, w))
    with quiet_libraries():
        log, _, _ = run_trace(model, w)
    sim = replay(log.sizes, log.events, marks=log.marks, start=log.marks["ready"], extra=(CUBLAS_WORKSPACE,),
                 streams=log.streams)
    ours: list[int] = []
    alloc, reserved = _train_synthetic(model, w, log=ours)
    theirs = [(log.sizes[abs(ev) - 1] if ev > 0 else -log.sizes[-ev - 1])
              for ev in log.events[log.marks["ready"] + 1:log.marks["end"] + 1]]

    def units(xs, least=0):
        return [(1 if x > 0 else -1) * -(-abs(x) // 512) for x in xs if abs(x) >= least]

    assert len(units(ours, MiB)) > 100  # the large-pool events of both steps (the frozen case: 122)
    assert units(ours, MiB) == units(theirs, MiB)
    assert units(ours) == units(theirs)
    assert alloc == pytest.approx(sim.peak_allocated, rel=0.005)
    assert reserved == pytest.approx(sim.peak_reserved, rel=0.005)
    assert abs((reserved - alloc) - (sim.peak_reserved - sim.peak_allocated)) <= max(
        2 * MiB, 0.02 * (sim.peak_reserved - sim.peak_allocated))
    assert estimate_resolved(model, w).memory.terms["allocator_cache"] == reserved - alloc


def test_training_covered_only_where_the_stream_is_written():
    llama, qwen = two_layers("llama-3-8b"), two_layers("qwen2.5-0.5b")
    full = make_workload(task="finetune", seq=256)
    assert synthetic.covered_training(llama.spec, full, 2)
    assert synthetic.covered_training(qwen.spec, full, 2)
    assert not synthetic.covered_training(llama.spec, full, 4)  # fp32 weights: not traced
    assert not synthetic.covered_training(llama.spec, make_workload(task="inference", seq=256), 2)
    for ckpt in (False, True):
        lora = make_workload(task="finetune", seq=256, method="lora", grad_checkpointing=ckpt)
        assert synthetic.covered_training(llama.spec, lora, 2) and synthetic.covered_training(qwen.spec, lora, 2)
        for kw in (dict(dora=True), dict(lora_dropout=0.05), dict(lora_targets="q_proj,v_proj"),
                   dict(optimizer_in_backward=True), dict(ce_chunks=8), dict(activation_offload=True)):
            assert not synthetic.covered_training(llama.spec, make_workload(
                task="finetune", seq=256, method="lora", grad_checkpointing=ckpt, **kw), 2), kw
    for kw in (dict(checkpoint_every=2), dict(grad_checkpointing="selective")):
        assert not synthetic.covered_training(llama.spec, make_workload(task="finetune", seq=256, method="lora",
                                                                        **kw), 2), kw
    ckpt = make_workload(task="finetune", seq=256, grad_checkpointing=True)
    assert synthetic.covered_training(llama.spec, ckpt, 2) and synthetic.covered_training(qwen.spec, ckpt, 2)
    for kw in (dict(checkpoint_every=2), dict(grad_checkpointing="selective"), dict(grad_checkpointing="op"),
               dict(optimizer_in_backward=True), dict(method="freeze", frozen_layers=1)):
        assert not synthetic.covered_training(qwen.spec if "frozen_layers" in kw else llama.spec, make_workload(
            task="finetune", seq=256, **{"grad_checkpointing": True, **kw}), 2), kw
    for kw in (dict(method="freeze"), dict(ce_chunks=8),
               dict(attn="eager"), dict(activation_offload=True),
               dict(num_gpus=2, parallelism="fsdp"), dict(grad_accum=2), dict(optimizer="sgd"),
               dict(checkpoint_mode="op")):
        assert not synthetic.covered_training(llama.spec, make_workload(task="finetune", seq=256, **kw), 2), kw
    assert not synthetic.covered_training(llama.spec, make_workload(task="pretrain", seq=256), 2)  # mixed
    in_bwd = make_workload(task="finetune", seq=256, optimizer_in_backward=True)
    assert synthetic.covered_training(llama.spec, in_bwd, 2)
    assert not synthetic.covered_training(qwen.spec, in_bwd, 2)  # tied, biases: the hooks' order not traced
    frozen = make_workload(task="finetune", seq=256, method="freeze", frozen_layers=1)
    assert synthetic.covered_training(qwen.spec, frozen, 2)
    assert not synthetic.covered_training(llama.spec, frozen, 2)  # untied: a trained head under it, not traced
    for kw in (dict(frozen_layers=0), dict(frozen_layers=2), dict(train_modules="o_proj,down_proj")):
        assert not synthetic.covered_training(qwen.spec, make_workload(task="finetune", seq=256, method="freeze",
                                                                       **kw), 2), kw
    for other in ("mistral-7b-v0.1", "qwen3-8b", "gemma-2-2b", "mixtral-8x7b", "phi-3-mini-4k-instruct"):
        assert not synthetic.covered_training(two_layers(other).spec, full, 2), other
    # not covered: the fitted shares stand
    assert "replayed" not in {k for k, v in _features(llama, make_workload(task="finetune", seq=256,
                                                                           method="lora", dora=True)).items() if v}
    assert _features(llama, make_workload(task="finetune", seq=256, method="lora"))["replayed"] > 0
    assert _features(llama, full)["replayed"] > 0


def _features(model, w):
    from vramscope.estimators.common import compute_dtype, dtype_bytes
    from vramscope.memory.device import cache_features

    return cache_features({"forward": {"activations": 1}}, model.spec, w,
                          dtype_bytes(compute_dtype(model, w)), False)


def test_training_alloc_conf_is_replayed():
    """``expandable_segments:True`` and ``max_split_size_mb`` reach the training replay, and the estimate takes it."""
    model = two_layers("llama-3-8b")
    w = make_workload(task="finetune", seq=256)
    a0, r0 = _train_synthetic(model, w)
    for conf in ("expandable_segments:True", "max_split_size_mb:64"):
        a1, r1 = _train_synthetic(model, w, parse_alloc_conf(conf))
        assert r1 - a1 != r0 - a0, conf
        w2 = make_workload(task="finetune", seq=256, alloc_conf=conf)
        assert estimate_resolved(model, w2).memory.terms["allocator_cache"] == r1 - a1


def test_covered_only_where_the_stream_is_written():
    llama = two_layers("llama-3-8b")
    inf = make_workload(task="inference", seq=512)
    assert synthetic.covered(llama.spec, inf, 2)
    assert synthetic.covered(llama.spec, inf, 4)
    assert not synthetic.covered(llama.spec, inf, 1)  # 8-bit weights: not written
    assert synthetic.covered(llama.spec, make_workload(task="inference", seq=512, attn="eager"), 2)
    assert not synthetic.covered(llama.spec, make_workload(task="inference", seq=512, attn="flash"), 2)
    assert not synthetic.covered(llama.spec, make_workload(task="inference", seq=512, kv_dtype="fp8"), 2)
    assert not synthetic.covered(llama.spec, make_workload(task="finetune", seq=512), 2)
    assert not synthetic.covered(two_layers("mixtral-8x7b").spec, inf, 2)
    assert synthetic.covered(two_layers("gemma-2-2b").spec, inf, 4)
    assert not synthetic.covered(two_layers("gemma-2-2b").spec, inf, 2)  # Gemma 2 in 16 bits: not checked
    assert not synthetic.covered(two_layers("phi-3-mini-4k-instruct").spec, inf, 2)  # fused qkv / gate_up
    # not covered: the fitted shares stand (prefill_attention)
    w = make_workload(task="inference", seq=512, attn="flash")
    assert estimate_resolved(llama, w).memory.terms["allocator_cache"] > 0


def test_alloc_conf_is_replayed():
    """``expandable_segments:True`` maps pages instead of splitting cached segments: the replayed prefill keeps
    less cache than under the default settings; ``max_split_size_mb`` keeps large blocks whole."""
    model = two_layers("llama-3.2-3b")
    w = make_workload(task="inference", seq=4096, batch=4)
    a0, r0 = _synthetic(model, w)
    a1, r1 = _synthetic(model, w, parse_alloc_conf("expandable_segments:True"))
    assert a1 == pytest.approx(a0, rel=1e-3)  # a whole block is the request there, not a remainder > 1 MiB
    assert r1 - a1 < (r0 - a0) / 2
    w2 = make_workload(task="inference", seq=4096, batch=4, alloc_conf="expandable_segments:True")
    assert estimate_resolved(model, w2).memory.terms["allocator_cache"] == r1 - a1


def _llama_3_70b():
    """The catalog's Llama-3-70B as the estimator reads it: 80 layers, for the full-depth cost bounds."""
    from vramscope.sources import catalog
    from vramscope.sources.hf_config import spec_from_config

    return spec_from_config(catalog.find("llama-3-70b")["config"], name="llama-3-70b")


def test_replay_is_fast_at_full_depth():
    """An estimate stays under 0.3 s: the prefill of an 80-layer model is replayed in a fraction of it."""
    import time

    spec = _llama_3_70b()
    w = make_workload(task="inference", seq=8192)
    synthetic._prefill_cache.cache_clear()
    t = time.perf_counter()
    assert synthetic.prefill_cache(spec, w, 2, (CUBLAS_WORKSPACE,)) > 0
    assert time.perf_counter() - t < 0.25  # ~20 ms on an idle core; CI shares 2 cores


def test_training_replay_at_full_depth_is_bounded():
    """Two training steps of an 80-layer model replay in well under a second (~0.2 s on an idle core)."""
    import time

    spec = _llama_3_70b()
    w = make_workload(task="finetune", seq=4096)
    synthetic._train_cache.cache_clear()
    t = time.perf_counter()
    assert synthetic.train_cache(spec, w, 2, (CUBLAS_WORKSPACE,)) > 0
    assert time.perf_counter() - t < 0.8
    synthetic._train_cache.cache_clear()


def test_lora_replay_at_full_depth_is_bounded():
    """Two checkpointed LoRA steps of llama-3-8b at 2,048 tokens (about 1,400 events per layer) replay in
    well under a second of CPU (~0.17 s on an idle core; the process's CPU time, not the wall clock)."""
    import time

    from vramscope.sources import catalog
    from vramscope.sources.hf_config import spec_from_config

    spec = spec_from_config(catalog.find("llama-3-8b")["config"], name="llama-3-8b")
    w = make_workload(task="finetune", seq=2048, method="lora")
    synthetic._lora_train_cache.cache_clear()
    t = time.process_time()
    assert synthetic.train_cache(spec, w, 2, (CUBLAS_WORKSPACE,)) > 0
    assert time.process_time() - t < 1.0
    synthetic._lora_train_cache.cache_clear()


def test_loaded_model_once_same_cache():
    """The replay starts from the loaded model's frozen allocator (``_loaded``, once per model, dtype and
    settings) and takes the allocator's inlined path: the same cache as replaying the weights each time through
    the general path, on the shapes fit's searches probe (contexts 1 … 8192, batches, eager, fp32, Mistral's
    window, Gemma 2) and under settings that keep the general path."""
    from vramscope.memory import allocator

    cases = [("llama-3-8b", 1, s, 2, False) for s in (1, 2, 64, 1000, 4096, 8192)]
    cases += [("llama-3-8b", 3, 1500, 2, True), ("llama-3-8b", 2, 777, 4, False), ("mistral-7b-v0.1", 1, 4500, 2, False),
              ("qwen3-8b", 4, 513, 2, False), ("gemma-2-2b", 1, 4500, 4, True)]
    confs = [DEFAULT_CONFIG, parse_alloc_conf("max_split_size_mb:64"), parse_alloc_conf("expandable_segments:True")]
    post = allocator.CachingAllocator.__post_init__

    def general(self):
        post(self)
        self._fast = False

    cases += [("llama-3.2-1b:full", 1, s, 2, False) for s in (1, 4096)]
    for name, b, s, a, eager in cases:
        if name.endswith(":full"):
            from vramscope.sources import catalog
            from vramscope.sources.hf_config import spec_from_config

            spec = spec_from_config(catalog.find(name[:-5])["config"], name=name[:-5])
        else:
            spec = two_layers(name).spec
        for conf in confs:
            synthetic._prefill_cache.cache_clear()
            synthetic._loaded.cache_clear()
            args = (spec, b, s, a, (CUBLAS_WORKSPACE,), conf, eager, spec.model_type == "gemma2")
            now = synthetic._prefill_cache(*args)
            assert synthetic._loaded.cache_info().currsize == (1 if conf is DEFAULT_CONFIG else 0)
            synthetic._prefill_cache.cache_clear()
            synthetic._loaded.cache_clear()
            allocator.CachingAllocator.__post_init__ = general
            try:
                assert synthetic._loaded(spec, a, (CUBLAS_WORKSPACE,), conf) is None  # the general path: not frozen
                synthetic._loaded.cache_clear()
                assert synthetic._prefill_cache(*args) == now, (name, b, s, conf.text)
            finally:
                allocator.CachingAllocator.__post_init__ = post
                synthetic._prefill_cache.cache_clear()
                synthetic._loaded.cache_clear()
