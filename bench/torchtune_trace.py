"""Trace torchtune 0.6.1's own Llama-3.2 model code on fake tensors with vramscope's live-bytes tracker.

This is what calibrates ``--framework torchtune`` (docs/accuracy.md, "torchtune's own model code"). torchtune is
not a vramscope dependency; run it in a separate environment:

    python -m venv /tmp/tt && /tmp/tt/bin/pip install torch==2.13.0 && \
        /tmp/tt/bin/pip install --no-deps torchtune==0.6.1 torchao==0.13.0 && \
        /tmp/tt/bin/pip install datasets tokenizers pillow omegaconf sentencepiece tiktoken blobfile && \
        /tmp/tt/bin/pip install --no-deps -e .
    /tmp/tt/bin/python bench/torchtune_trace.py --layers 3 --method lora --rank 64 --alpha 128 --tied --fused --ac
    (per-layer bytes: the difference between --layers 3 and --layers 2; see --help for the options)

Shapes follow Llama-3.2-3B (h=3072, 24 heads, 8 kv heads, head_dim 128, I=8192, V=128256); few layers.

Each configuration runs two training steps the way torchtune's single-device recipes do
(recipes/full_finetune_single_device.py / lora_finetune_single_device.py ``_loss_step`` + ``train``):
    with activations_handling_ctx: logits = model(tokens)          # list of chunks when chunked CE
    labels shifted with hstack(ignore_index); loss = loss_fn(logits, labels); del logits
    (loss * num_tokens).backward(); scale_grads(model, 1/num_tokens); opt.step(); opt.zero_grad(True)
and numbers are taken from step 2 (optimizer states already allocated).
"""

from __future__ import annotations

import argparse
import json
from contextlib import nullcontext

import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.autograd.graph import saved_tensors_hooks
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from vramscope.trace.tracker import make_tracker  # noqa: E402


from torchtune import modules, training
from torchtune.models.llama3_2._component_builders import llama3_2, lora_llama3_2
from torchtune.modules.loss import CEWithChunkedOutputLoss
from torchtune.modules.peft import get_adapter_params, set_trainable_params

H, HEADS, KV, I, V = 3072, 24, 8, 8192, 128_256  # noqa: E741


def akey(tracker, t):
    """Allocation key (index into tracker.log.sizes) of t's storage, or None."""
    cell = tracker.track(t)
    return None if cell is None else cell.key


def _apply_scaling_vectorized(self, freqs, scale_factor, low_freq_factor, high_freq_factor, old_context_len):
    """Llama3ScaledRoPE.apply_scaling without its Python loop over tensor values (fake tensors have no values;
    the loop raises DataDependentOutputException: aten._local_scalar_dense). Same formula, torch.where."""
    import math
    low_wl, high_wl = old_context_len / low_freq_factor, old_context_len / high_freq_factor
    wavelen = 2 * math.pi / freqs
    smooth = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
    mid = (1 - smooth) * freqs / scale_factor + smooth * freqs
    return torch.where(wavelen < high_wl, freqs, torch.where(wavelen > low_wl, freqs / scale_factor, mid))


from torchtune.models.llama3_1._position_embeddings import Llama3ScaledRoPE  # noqa: E402

Llama3ScaledRoPE.apply_scaling = _apply_scaling_vectorized


class Namer(TorchDispatchMode):
    """Innermost mode: remembers which aten op allocated each storage key of the tracker."""

    def __init__(self, tracker):
        super().__init__()
        self.tracker = tracker
        self.op = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                k = akey(self.tracker, t)
                if k is not None and k not in self.op:
                    self.op[k] = str(func.overloadpacket.__name__)
        return out


class SimOffload(saved_tensors_hooks):
    """torchtune.training.OffloadActivations(use_streams=False) re-enacted without CUDA.

    pack: tensors of >= min_offload_size bytes that are not Parameters/Buffers are copied "to the CPU"
    (a clone whose storage key is remembered and excluded from GPU bytes afterwards); the GPU reference is
    dropped. unpack: a fresh "GPU" copy (counted) for the backward node, released after it.
    Smaller tensors stay referenced as they are (they stay on the GPU).
    """

    def __init__(self, tracker, min_offload_size=1024):
        self.host_keys = set()
        self.store = {}
        self.n = 0
        self.offloaded = 0
        self.kept = 0

        def pack(a):
            self.n += 1
            nbytes = a.element_size() * a.nelement()
            if nbytes >= min_offload_size and not isinstance(a, (torch.nn.Parameter, torch.nn.Buffer)):
                cpu = a.detach().clone()
                k = akey(tracker, cpu)
                if k is not None:
                    self.host_keys.add(k)
                self.store[self.n] = (cpu, True)
                self.offloaded += nbytes
            else:
                self.store[self.n] = (a, False)
                self.kept += nbytes
            return self.n

        def unpack(i):
            t, mod = self.store.pop(i)
            return t.clone() if mod else t

        super().__init__(pack, unpack)


def build(cfg):
    kw = dict(vocab_size=cfg.vocab, num_layers=cfg.layers, num_heads=HEADS, num_kv_heads=KV, embed_dim=H,
              max_seq_len=cfg.seq, intermediate_dim=I, tie_word_embeddings=cfg.tied)
    with training.set_default_dtype(torch.bfloat16):
        if cfg.method == "full":
            model = llama3_2(**kw)
        else:
            model = lora_llama3_2(lora_attn_modules=["q_proj", "v_proj", "output_proj"], apply_lora_to_mlp=True,
                                  apply_lora_to_output=False, lora_rank=cfg.rank, lora_alpha=cfg.alpha,
                                  lora_dropout=0.0, quantize_base=cfg.method == "qlora", **kw)
    if cfg.method != "full":
        set_trainable_params(model, get_adapter_params(model))
    if cfg.ac:
        training.set_activation_checkpointing(model, auto_wrap_policy={modules.TransformerSelfAttentionLayer})
    return model


def skip_wrapper_subclasses(tracker, hits):
    """vramscope's tracker counts a wrapper tensor subclass (torchao's NF4Tensor) by its nominal storage,
    numel x bf16 bytes, although that storage holds no memory (the data live in the inner uint8/int8
    tensors, which the tracker sees as ordinary aten outputs). Skip such wrappers."""
    from torch.utils._python_dispatch import is_traceable_wrapper_subclass
    orig = tracker.track

    def track(t):
        if is_traceable_wrapper_subclass(t):
            hits[type(t).__name__] = hits.get(type(t).__name__, 0) + 1
            return None
        return orig(t)

    tracker.track = track


def run(cfg):
    tracker = make_tracker()
    wrapper_hits = {}
    skip_wrapper_subclasses(tracker, wrapper_hits)
    namer = Namer(tracker)
    marks = {}
    saved_keys = set()
    out = {"cfg": vars(cfg).copy()}
    fake = FakeTensorMode() if not cfg.real else nullcontext()
    with fake, tracker, namer:
        torch.manual_seed(0)
        model = build(cfg)
        if cfg.loss == "chunked":
            loss_fn = CEWithChunkedOutputLoss(num_output_chunks=8)
            model.set_num_output_chunks(8)
        else:
            loss_fn = torch.nn.CrossEntropyLoss(ignore_index=-100)
        params = [p for p in model.parameters() if p.requires_grad]
        out["trainable_params"] = sum(p.numel() for p in params)
        out["param_dtypes"] = sorted({str(p.dtype) for p in params})
        adapter_dtypes = sorted({str(p.dtype) for n, p in model.named_parameters() if "lora_" in n})
        out["adapter_dtypes"] = adapter_dtypes
        grads_alive = {"max": 0, "max_bytes": 0}
        if cfg.opt_in_bwd:
            optim = {p: torch.optim.AdamW([p], lr=1e-5) for p in params}

            def step_one(p):
                alive = [q for q in params if q.grad is not None]
                grads_alive["max"] = max(grads_alive["max"], len(alive))
                grads_alive["max_bytes"] = max(grads_alive["max_bytes"],
                                               sum(q.grad.numel() * q.grad.element_size() for q in alive))
                optim[p].step()
                optim[p].zero_grad()

            for p in params:
                p.register_post_accumulate_grad_hook(step_one)
            opt = None
        else:
            opt = torch.optim.AdamW(params, lr=1e-5, fused=cfg.fused, weight_decay=0.01)
        if cfg.offload == "sim":
            act_ctx = SimOffload(tracker)
        elif cfg.offload == "real":
            act_ctx = training.get_act_offloading_ctx_manager(model, True)
        else:
            act_ctx = nullcontext()
        if cfg.offload == "sim":  # the recipe helper's NoOpManager around the output projection
            from torchtune.training._activation_offloading import NoOpManager
            noop = NoOpManager()
            head = model.output.linear if isinstance(model.output, modules.TiedLinear) else model.output
            head.register_forward_pre_hook(lambda *a: noop.__enter__())
            head.register_forward_hook(lambda *a: noop.__exit__(), always_call=True)
        step_tag = {"s": 0}

        def mark(name):
            tracker.set_phase(f"{name}#{step_tag['s']}")
            marks[f"{name}#{step_tag['s']}"] = tracker.live

        model.norm.register_forward_pre_hook(lambda *a: mark("head"))
        mid = model.layers[cfg.layers // 2]
        key_range = {}
        mid.register_forward_pre_hook(lambda *a: key_range.__setitem__("start", len(tracker.log.sizes)))
        mid.register_forward_hook(lambda *a: key_range.__setitem__("end", len(tracker.log.sizes)))

        # backward of the middle layer: from the gradient reaching its output to the gradient of its input
        def mid_out_hook(mod, args, output):
            if torch.is_grad_enabled() and output.requires_grad:
                output.register_hook(lambda g: mark("midbwd"))

        def mid_in_hook(mod, args):
            if torch.is_grad_enabled() and args[0].requires_grad:
                args[0].register_hook(lambda g: mark("after_mid"))

        mid.register_forward_hook(mid_out_hook)
        mid.register_forward_pre_hook(mid_in_hook)
        # forward of the middle layer (its transient peak above the live bytes at its start)
        mid.register_forward_pre_hook(lambda *a: mark("midfwd") if torch.is_grad_enabled() else None)
        mid.register_forward_hook(lambda *a: mark("after_midfwd") if torch.is_grad_enabled() else None)

        def on_saved(t):
            if isinstance(t, torch.Tensor):
                k = akey(tracker, t)
                if k is not None:
                    saved_keys.add(k)
            return t

        ignore = torch.full((cfg.batch, 1), -100, dtype=torch.long)
        for step in (1, 2):
            step_tag["s"] = step
            saved_keys.clear()
            tokens = torch.randint(0, cfg.vocab, (cfg.batch, cfg.seq))
            labels = torch.randint(0, cfg.vocab, (cfg.batch, cfg.seq))
            num_tokens = (labels != -100).sum()
            mark("forward")
            hook = saved_tensors_hooks(on_saved, lambda t: t) if cfg.offload == "none" else nullcontext()
            with hook:
                with act_ctx:
                    logits = model(tokens)
                mark("loss")
                labels = torch.hstack((labels[..., 1:], ignore))
                if not isinstance(logits, list):
                    labels = labels.reshape(-1)
                    logits = logits.reshape(-1, logits.size(-1))
                out["logits_is_list"] = isinstance(logits, list)
                out["logits_dtype"] = str((logits[0] if isinstance(logits, list) else logits).dtype)
                loss = loss_fn(logits, labels)
                del logits
                loss = loss * num_tokens
            mark("backward")
            loss.backward()
            del loss
            mark("optimizer")
            if opt is not None:
                training.scale_grads(model, torch.tensor(1 / cfg.tokens))
                opt.step()
                opt.zero_grad(set_to_none=True)
            mark("idle")
            if step == 2:
                # per-layer saved tensors of the middle layer: keys allocated inside it that autograd saved
                rows = {}
                live_end = tracker.log.live_at(tracker.log.marks["backward#2"])
                for k in range(key_range["start"], key_range["end"]):
                    if k in live_end and (k in saved_keys or cfg.offload != "none"):
                        op = namer.op.get(k, "?")
                        rows.setdefault(op, [0, 0])
                        rows[op][0] += tracker.log.sizes[k]
                        rows[op][1] += 1
                out["mid_layer_live_at_end_of_forward"] = {
                    op: round(b / cfg.tokens / H, 3) for op, (b, n) in sorted(rows.items(), key=lambda x: -x[1][0])}
        host = act_ctx.host_keys if cfg.offload == "sim" else set()
        if cfg.offload == "sim":
            out["offload_bytes_offloaded_per_step"] = act_ctx.offloaded // 2
            out["offload_bytes_kept"] = act_ctx.kept // 2
    log = tracker.log
    # replay the event log without the storages that the offloading simulation put "on the CPU"
    live, phase_peak, at_mark, cur = 0, {}, {}, None
    mark_at = {}
    for name, idx in log.marks.items():
        mark_at.setdefault(idx, []).append(name)
    for i in range(-1, len(log.events)):
        if i >= 0:
            ev = log.events[i]
            k = abs(ev) - 1
            if k not in host:
                live += log.sizes[k] if ev > 0 else -log.sizes[k]
        for name in mark_at.get(i, []):
            cur = name
            at_mark[name] = live
        if cur is not None:
            phase_peak[cur] = max(phase_peak.get(cur, 0), live)
    out["live_at"] = {k: at_mark[k] for k in at_mark if k.endswith("#2")}
    out["peak"] = {k: phase_peak[k] for k in phase_peak if k.endswith("#2")}
    out["grads_alive"] = grads_alive if cfg.opt_in_bwd else None
    out["wrapper_subclass_outputs_skipped"] = wrapper_hits
    return out


def run_head(cfg):
    """The loss head alone: final hidden state x [b, s, h] (bf16, requires grad) -> output projection (frozen
    bf16 weight, so no weight gradient is counted) -> loss, exactly as TransformerDecoder.unembed and the
    recipes do it (chunked: list of 8 bf16 chunks + CEWithChunkedOutputLoss; plain: one bf16 logits tensor
    upcast with .float() in unembed + nn.CrossEntropyLoss). Bytes per token in units of V."""
    import torch.nn.functional as F
    tracker = make_tracker()
    ph = {}
    with FakeTensorMode(), tracker:
        W = torch.empty(cfg.vocab, H, dtype=torch.bfloat16)
        x = torch.empty(cfg.batch, cfg.seq, H, dtype=torch.bfloat16).requires_grad_(True)
        labels = torch.randint(0, cfg.vocab, (cfg.batch, cfg.seq))
        ignore = torch.full((cfg.batch, 1), -100, dtype=torch.long)
        num_tokens = (labels != -100).sum()
        base = tracker.live

        def mark(n):
            tracker.set_phase(n)
            ph[n] = tracker.live

        mark("unembed")
        if cfg.loss == "chunked":
            loss_fn = CEWithChunkedOutputLoss(num_output_chunks=8)
            logits = [F.linear(c, W) for c in x.chunk(8, dim=1)]
        else:
            loss_fn = torch.nn.CrossEntropyLoss(ignore_index=-100)
            logits = F.linear(x, W).float()
        mark("loss")
        labels = torch.hstack((labels[..., 1:], ignore))
        if not isinstance(logits, list):
            labels = labels.reshape(-1)
            logits = logits.reshape(-1, logits.size(-1))
        loss = loss_fn(logits, labels)
        del logits
        loss = loss * num_tokens
        mark("backward")
        loss.backward()
        mark("end")
    unit = cfg.tokens * cfg.vocab
    res = {"peak_unembed": (tracker.log.phases["unembed"].bytes - base) / unit,
           "peak_loss": (tracker.log.phases["loss"].bytes - base) / unit,
           "retained_into_backward": (ph["backward"] - base) / unit,
           "peak_backward": (tracker.log.phases["backward"].bytes - base) / unit,
           "note": "per token, units of V; x.grad (2h) included in backward, negligible"}
    return {"cfg": vars(cfg), "head": res}


def parse(argv=None):
    global H, HEADS, KV, I  # scaled-down shapes for real-tensor runs keep the Llama-3.2-3B ratios  # noqa: E741
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", default="full", choices=["full", "lora", "qlora"])
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--vocab", type=int, default=V)
    ap.add_argument("--rank", type=int, default=64)
    ap.add_argument("--alpha", type=float, default=128)
    ap.add_argument("--ac", action="store_true")
    ap.add_argument("--offload", default="none", choices=["none", "sim", "real"])
    ap.add_argument("--loss", default="chunked", choices=["chunked", "plain"])
    ap.add_argument("--opt-in-bwd", action="store_true")
    ap.add_argument("--tied", action="store_true")
    ap.add_argument("--fused", action="store_true")
    ap.add_argument("--real", action="store_true", help="real CPU tensors instead of fake ones")
    ap.add_argument("--head-only", action="store_true", help="trace only the output projection + loss")
    ap.add_argument("--hidden", type=int, default=H)
    ap.add_argument("--heads", type=int, default=HEADS)
    ap.add_argument("--kv-heads", type=int, default=KV)
    ap.add_argument("--inter", type=int, default=I)
    cfg = ap.parse_args(argv)
    cfg.tokens = cfg.batch * cfg.seq
    H, HEADS, KV, I = cfg.hidden, cfg.heads, cfg.kv_heads, cfg.inter  # noqa: E741
    return cfg


if __name__ == "__main__":
    cfg = parse()
    print(json.dumps(run_head(cfg) if cfg.head_only else run(cfg), indent=1))
