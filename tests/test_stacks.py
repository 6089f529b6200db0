"""The fine-tuning stacks (issue #19): eager attention under checkpointed LoRA measured on a real CPU forward and
backward, Liger's kernels re-implemented in torch as Liger's source computes them, the Unsloth, LLaMA-Factory and
axolotl profiles as read from their sources."""

from __future__ import annotations

import pytest

from conftest import has_module

needs_torch = pytest.mark.skipif(not (has_module("torch") and has_module("transformers") and has_module("peft")),
                                 reason="needs torch, transformers and peft")

TINY = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 256,
        "num_hidden_layers": 2, "num_attention_heads": 8, "num_key_value_heads": 8, "vocab_size": 64,
        "max_position_embeddings": 1024, "tie_word_embeddings": False, "torch_dtype": "bfloat16"}


def _measure(attn: str, seq: int) -> tuple[int, int, int, int]:
    """Peak live bytes in forward and in backward of a real bf16 LoRA step on CPU, layers checkpointed
    (non-reentrant, as transformers 5 and TRL run it), counted by vramscope's dispatch tracker; and at each peak
    the bytes of the live tensors at least a fifth of a score matrix (b·heads·s² elements) large."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    from vramscope.trace.tracker import make_tracker

    torch.manual_seed(0)
    cfg = {k: v for k, v in TINY.items() if k not in ("model_type", "architectures", "torch_dtype")}
    net = LlamaForCausalLM(LlamaConfig(**cfg, attn_implementation=attn)).to(torch.bfloat16)
    net = get_peft_model(net, LoraConfig(r=4, target_modules="all-linear"))
    net.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    net.enable_input_require_grads()
    net.train()
    ids = torch.randint(0, TINY["vocab_size"], (1, seq))
    tracker = make_tracker()
    with tracker:
        tracker.set_phase("forward")
        out = net(input_ids=ids, labels=ids)
        loss = out.loss
        del out
        tracker.set_phase("backward")
        loss.backward()
    log = tracker.log
    scores = TINY["num_attention_heads"] * seq * seq

    def score_sized(phase: str) -> int:
        return sum(log.sizes[k] for k in log.live_at(log.phases[phase].index) if log.sizes[k] >= scores // 5)

    return log.phases["forward"].bytes, log.phases["backward"].bytes, score_sized("forward"), score_sized("backward")


@needs_torch
def test_eager_attention_scores_in_checkpointed_lora_backward():
    """transformers' eager attention under checkpointed LoRA: the score-sized tensors alive at the forward and the
    backward peaks are the ones the model says (the masked scores, fp32 upcast and fp32 softmax inside a
    checkpointed layer's forward; the saved fp32 softmax, the fp32 gradient and softmax's fp32 input gradient in
    the recomputed layer's backward; the 4-D mask in both), and the step's peaks rise over SDPA's by about them."""
    from vramscope.memory.activations import TrainFlags, eager_attention_transients, training_activations
    from vramscope.memory.trainable import lora_modules
    from vramscope.sources.hf_config import spec_from_config

    seq = 1024
    spec = spec_from_config(dict(TINY), "tiny")
    flags = TrainFlags(base=False, embeddings=False, lora=lora_modules(spec, ("all-linear",)), lora_rank=4)
    fe, be, f_scores, b_scores = _measure("eager", seq)
    fs, bs, sdpa_f, sdpa_b = _measure("sdpa", seq)
    assert sdpa_f == sdpa_b == 0  # SDPA keeps no score matrix
    eager = training_activations(spec, 1, seq, 2.0, "eager", True, flags)
    fwd, bwd = eager_attention_transients(spec, 1, seq, 2.0, checkpointed=True)
    assert eager.layer_forward_extra == fwd and eager.layer_backward_extra == bwd
    scores = TINY["num_attention_heads"] * seq * seq
    saved_probs = (4 + 2) * scores  # in one_layer: the fp32 softmax output and its bf16 copy
    assert fwd == pytest.approx(f_scores, rel=0.01)
    assert saved_probs + bwd == pytest.approx(b_scores, rel=0.01)
    # the peaks over SDPA's: the score-sized tensors, less the little of the layer freed by then (under 10%)
    assert fe - fs == pytest.approx(fwd, rel=0.10)
    assert be - bs == pytest.approx(saved_probs + bwd, rel=0.15)
    # the saved probabilities alone (what vramscope modelled before) are half of it
    assert saved_probs < 0.6 * (be - bs)


def _saved_per_token(fn, tokens: int, params=()) -> float:
    """Bytes per token autograd saves while ``fn`` runs (its storages, parameters left out), by
    ``torch.autograd.graph.saved_tensors_hooks``."""
    import torch

    skip = {p.untyped_storage().data_ptr() for p in params}
    seen: dict[int, int] = {}

    def pack(t):
        st = t.untyped_storage()
        if st.data_ptr() not in skip:
            seen[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return sum(seen.values()) / tokens, out


def _liger_silu_mul():
    """Liger's ``LigerSiLUMulFunction`` (ops/swiglu.py, 0.8.2) as its source computes it: ``c = silu(a)·b``, saving
    ``a`` and ``b`` and recomputing ``silu(a)`` in backward (the Triton kernel's arithmetic in torch)."""
    import torch

    class SiLUMul(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return torch.nn.functional.silu(a) * b

        @staticmethod
        def backward(ctx, dc):
            a, b = ctx.saved_tensors
            sig = torch.sigmoid(a.float())
            silu = a.float() * sig
            da = dc.float() * b.float() * (sig * (1 + a.float() * (1 - sig)))
            return da.to(a.dtype), (dc.float() * silu).to(b.dtype)

    return SiLUMul


def _liger_rms_norm():
    """Liger's ``LigerRMSNormFunction`` (ops/rms_norm.py, casting_mode "llama"): saves ``X`` and an fp32 ``RSTD``
    per row."""
    import torch

    class RMSNorm(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, w, eps):
            rstd = torch.rsqrt(x.float().pow(2).mean(-1) + eps)
            ctx.save_for_backward(x, w, rstd)
            return w * (x.float() * rstd[..., None]).to(x.dtype)

        @staticmethod
        def backward(ctx, dy):
            x, w, rstd = ctx.saved_tensors
            xf, r = x.float(), rstd[..., None]
            g = dy.float() * w.float()
            dx = r * (g - xf * r * r * (g * xf).mean(-1, keepdim=True))
            return dx.to(x.dtype), None, None

    return RMSNorm


def _liger_flce(tokens: int, hidden: int, vocab: int):
    """Liger's ``LigerFusedLinearCrossEntropyFunction`` (ops/fused_linear_cross_entropy.py) as its source runs it:
    chunks of ``next_power_of_2(ceil(BT / ceil(V / H)))`` rows; per chunk the logits, their gradient
    (softmax − one-hot, mean reduction) and the chunk's rows of the input gradient, written in forward; only the
    input gradient saved for backward, which scales it."""
    import torch

    from vramscope.frameworks import LIGER_KERNELS  # noqa: F401 (the kernels the option names)

    class FLCE(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, weight, target):
            bt = x.shape[0]
            inc = -(-weight.shape[0] // x.shape[1])
            per = -(-bt // inc)
            chunk = 1 << max(0, (per - 1).bit_length())
            grad_input = torch.zeros_like(x)
            loss = torch.zeros(bt, dtype=torch.float32)
            for start in range(0, bt, chunk):
                xc = x[start:start + chunk]
                logits = (xc @ weight.t()).float()
                lse = torch.logsumexp(logits, -1)
                tc = target[start:start + chunk]
                loss[start:start + chunk] = lse - logits.gather(1, tc[:, None])[:, 0]
                grad = torch.softmax(logits, -1)
                grad[torch.arange(len(tc)), tc] -= 1
                grad_input[start:start + chunk] = ((grad / bt).to(x.dtype) @ weight)
            ctx.save_for_backward(grad_input)
            ctx.chunk = chunk
            return loss.mean()

        @staticmethod
        def backward(ctx, g):
            (grad_input,) = ctx.saved_tensors
            return grad_input * g.to(grad_input.dtype), None, None

    return FLCE


@needs_torch
def test_liger_kernels_saved_tensors_against_transformers():
    """What each Liger kernel changes in a layer's saved tensors, counted by saved_tensors_hooks on transformers'
    own LlamaMLP / LlamaRMSNorm / ForCausalLM loss and on Liger's kernels rewritten in torch from their source: the
    modelled per-token differences (memory/activations.py) match the counted ones, and the fused linear
    cross-entropy's gradients equal transformers' loss gradients."""
    import torch
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaMLP, LlamaRMSNorm

    from vramscope.memory.activations import TrainFlags, fused_ce_chunk, layer_bytes_per_token, training_activations
    from vramscope.sources.hf_config import spec_from_config

    torch.manual_seed(0)
    spec = spec_from_config(dict(TINY), "tiny")
    h, inter, tok = spec.hidden_size, spec.intermediate_size, 128
    cfg = LlamaConfig(hidden_size=h, intermediate_size=inter)
    x = torch.randn(1, tok, h, dtype=torch.bfloat16, requires_grad=True)
    # SwiGLU: transformers' MLP (frozen, as under LoRA) saves gate, SiLU and up outputs; Liger's only gate and up
    mlp = LlamaMLP(cfg).to(torch.bfloat16).requires_grad_(False)
    hf_mlp, _ = _saved_per_token(lambda: mlp(x), tok, mlp.parameters())
    silu_mul = _liger_silu_mul()
    liger_mlp, out = _saved_per_token(lambda: mlp.down_proj(silu_mul.apply(mlp.gate_proj(x), mlp.up_proj(x))), tok,
                                      mlp.parameters())
    assert torch.allclose(out, mlp(x))
    # RMSNorm: transformers' fp32 upcast and rsqrt; Liger's input and fp32 rstd
    norm = LlamaRMSNorm(h).to(torch.bfloat16).requires_grad_(False)
    hf_norm, _ = _saved_per_token(lambda: norm(x), tok, norm.parameters())
    rms = _liger_rms_norm()
    liger_norm, out = _saved_per_token(lambda: rms.apply(x, norm.weight, norm.variance_epsilon), tok,
                                       norm.parameters())
    assert torch.allclose(out.float(), norm(x).float(), atol=2e-2)
    frozen = TrainFlags(base=False, embeddings=False)
    plain = layer_bytes_per_token(spec, tok, 2.0, "sdpa", frozen)
    swiglu = layer_bytes_per_token(spec, tok, 2.0, "sdpa", TrainFlags(base=False, embeddings=False,
                                                                       liger=frozenset({"swiglu"})))
    rmsn = layer_bytes_per_token(spec, tok, 2.0, "sdpa", TrainFlags(base=False, embeddings=False,
                                                                     liger=frozenset({"rms-norm"})))
    assert plain - swiglu == pytest.approx(hf_mlp - liger_mlp)  # a·I per token
    assert plain - rmsn == pytest.approx((hf_norm - liger_norm) * spec.norms_per_layer)
    # fused linear cross-entropy: transformers' loss saves the fp32 log-probabilities (4V per token); Liger's only
    # the input gradient (a·h), and its gradients are the same
    v = spec.vocab_size
    head = torch.randn(v, h, dtype=torch.bfloat16) * 0.05
    hidden = torch.randn(tok, h, dtype=torch.bfloat16, requires_grad=True)
    target = torch.randint(0, v, (tok,))
    hf_loss, loss = _saved_per_token(lambda: torch.nn.functional.cross_entropy((hidden @ head.t()).float(), target),
                                     tok, [head])
    flce = _liger_flce(tok, h, v)
    liger_loss, fused = _saved_per_token(lambda: flce.apply(hidden, head, target), tok, [head])
    g_hf, = torch.autograd.grad(loss, hidden)
    g_liger, = torch.autograd.grad(fused, hidden)
    assert torch.allclose(loss, fused, atol=1e-4) and torch.allclose(g_hf.float(), g_liger.float(), atol=1e-3)
    hf_acts = training_activations(spec, 1, tok, 2.0, "sdpa", True, frozen)
    liger_acts = training_activations(spec, 1, tok, 2.0, "sdpa", True, frozen, fused_ce="liger")
    assert hf_acts.loss_resident / tok == pytest.approx(hf_loss - 8, rel=0.01)  # less the int64 targets nll keeps
    assert liger_acts.loss_resident / tok == pytest.approx(liger_loss)
    assert liger_acts.loss_backward_extra == 0
    # the chunk rule, on the example Liger's source gives: BT = 4096·4, V = 32000, H = 4096 -> 2048 rows
    assert fused_ce_chunk(4096 * 4, spec.derived(vocab_size=32000, hidden_size=4096), "liger") == 2048


_UNSLOTH_CHUNK = r'''
import gc, resource, sys
import torch
mode, V, H, T = sys.argv[1], 32768, 256, 4096
W = torch.randn(V, H, dtype=torch.bfloat16)
X = torch.randn(T, H, dtype=torch.bfloat16)
y = torch.randint(0, V, (T,))

def compute_fused_ce_loss(x, w, labels):  # unsloth_zoo/fused_losses/cross_entropy_loss.py, bias and scaling off
    logits = torch.nn.functional.linear(x.to(dtype=w.dtype), w)
    loss = torch.nn.functional.cross_entropy(input=logits.view(-1, V).float().contiguous(),
                                             target=labels.view(-1).contiguous(), reduction="sum")
    return loss, (loss.detach(),)

def accumulate_chunk(x, w, labels, grad_inputs_j):  # UnslothFusedLoss.forward's, without the head's gradient
    (g,), (loss, (unscaled,)) = torch.func.grad_and_value(compute_fused_ce_loss, argnums=(0,), has_aux=True)(
        x, w, labels)
    grad_inputs_j[:] = g
    return unscaled

gi = torch.empty_like(X)
f = torch.compile(accumulate_chunk, dynamic=True, fullgraph=True) if mode == "compiled" else accumulate_chunk
def status(key):
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) * 1024 for l in fh if l.startswith(key))

f(X[:64], W, y[:64], gi[:64])
gc.collect()
with open("/proc/self/clear_refs", "w") as fh:  # resets the peak (VmHWM) to the current resident size
    fh.write("5")
before = status("VmRSS:")
f(X, W, y, gi)
print((status("VmHWM:") - before) / (T * V))
'''


@needs_torch
@pytest.mark.skipif(not __import__("shutil").which("g++") or not __import__("os").path.exists("/proc/self/clear_refs"),
                    reason="torch.compile on CPU needs a C++ compiler; the peak is read from Linux's /proc")
def test_unsloth_fused_ce_chunk_compiled_and_eager():
    """Unsloth's fused loss chunk (its compute_fused_ce_loss under torch.func.grad_and_value, torch.compile'd as
    UnslothFusedLoss does) run on CPU: the peak host memory it adds per logit is the compute dtype's bytes, what the
    model holds for a chunk (a·V per token); the uncompiled fallback holds far more (a + 12)."""
    import subprocess
    import sys

    from vramscope.memory.activations import TrainFlags, fused_ce_chunk, training_activations
    from vramscope.sources.hf_config import spec_from_config

    def per_logit(mode: str) -> float:
        out = subprocess.run([sys.executable, "-c", _UNSLOTH_CHUNK, mode], capture_output=True, text=True,
                             timeout=850)  # under the pytest hang guard (900 s): compiling is slow on a loaded CPU
        assert out.returncode == 0, out.stderr[-2000:]
        return float(out.stdout.strip().splitlines()[-1])

    compiled, eager = per_logit("compiled"), per_logit("eager")
    spec = spec_from_config(dict(TINY, vocab_size=32768, hidden_size=256, num_attention_heads=8,
                                 num_key_value_heads=8), "tiny")
    tokens = 4096
    acts = training_activations(spec, 1, tokens, 2.0, "sdpa", True, TrainFlags(base=False, embeddings=False),
                                fused_ce="unsloth")
    assert fused_ce_chunk(tokens, spec, "unsloth") == tokens  # 0.5 GiB of fp32 logits: one chunk under 4 GiB
    modelled = (acts.loss_forward_extra - tokens * 4) / (tokens * spec.vocab_size)
    # the peak RSS rise slightly undercounts (pages freed by the warm-up call are reused)
    assert modelled == pytest.approx(compiled, rel=0.2)
    assert eager == pytest.approx(2.0 + 12, rel=0.1)


def test_unsloth_chunks_follow_its_target():
    """get_chunk_size: one chunk while the fp32 logits fit 4 GiB, else a multiple of 4 chunks each under it."""
    from vramscope.memory.activations import fused_ce_chunk
    from vramscope.model.spec import ModelSpec  # noqa: F401
    from vramscope.sources.hf_config import spec_from_config

    spec = spec_from_config(dict(TINY, vocab_size=128256, hidden_size=4096, num_attention_heads=32,
                                 num_key_value_heads=8), "llama3-like")
    assert fused_ce_chunk(2048, spec, "unsloth") == 2048  # 0.98 GiB
    # 16384 tokens: 7.8 GiB of fp32 logits -> 4 chunks of 4096 rows (each 1.96 GiB)
    assert fused_ce_chunk(16384, spec, "unsloth") == 4096
    # 40000 tokens: 19.1 GiB -> 8 chunks (5 would do; rounded up to a multiple of 4)
    assert fused_ce_chunk(40000, spec, "unsloth") == 5000


def _estimate(**kw):
    from vramscope.api import estimate

    return estimate("llama-3-8b", task="finetune", **kw)


def test_unsloth_offloaded_checkpointing_moves_layer_inputs_to_host():
    """use_gradient_checkpointing="unsloth": 31 of Llama-3-8B's 32 layer inputs in pinned host memory (plus the
    200 initial 128K-element buffers), the GPU keeping the last one and the recompute buffer."""
    e = _estimate(method="qlora", framework="unsloth", seq=2048, batch=2)
    one = 2 * 2048 * 4096 * 2
    assert e.engine["host_bytes"] == 31 * one + 200 * 128 * 1024 * 2
    hf = _estimate(method="qlora", framework="hf", seq=2048, batch=2)
    assert "host_bytes" not in hf.engine
    assert any(a.key == "a_unsloth_offload" for a in e.assumptions)
    # turned off, nothing goes to the host
    off = _estimate(method="qlora", framework="unsloth", seq=2048, batch=2, grad_checkpointing=False)
    assert "host_bytes" not in off.engine


def test_unsloth_fused_lora_layer_bytes():
    """Unsloth's kernels save 27 bytes per hidden unit per token in a Llama-3-8B layer (unsloth/kernels/fast_lora.py
    lists), against peft's 72 (fp32 adapter inputs, SiLU output): the recomputed layer is smaller."""
    from vramscope.api import load_model
    from vramscope.memory.activations import TrainFlags, layer_bytes_per_token
    from vramscope.memory.trainable import lora_modules

    spec = load_model("llama-3-8b").spec
    lora = lora_modules(spec, ("all-linear",))
    peft = layer_bytes_per_token(spec, 2048, 2.0, "sdpa", TrainFlags(base=False, embeddings=False, lora=lora,
                                                                      lora_rank=16))
    fused = layer_bytes_per_token(spec, 2048, 2.0, "sdpa", TrainFlags(base=False, embeddings=False, lora=lora,
                                                                       lora_rank=16, unsloth=True))
    h, q, kv, i = 4096, 4096, 1024, 14336
    assert fused == 2 * (2 * h + 4) + 2 * h + 2 * (2 * q + 2 * kv) + 4 * 32 + 2 * h + 2 * 2 * i
    assert fused / h == pytest.approx(27.03, abs=0.01) and peft / h == pytest.approx(72.14, abs=0.01)


def test_unsloth_recompute_holds_output_grad_and_output_and_old_lora_product():
    """The recomputed layer's backward peak: its kernels' saved tensors, LoRA_MLP.backward's DW, the output gradient
    and recomputed output the checkpoint's backward holds (2·a·h per token, every release), and before Unsloth 2025.3
    matmul_lora's out-of-place LoRA product (another b·s·I beside DW). At a context long enough for that moment to be
    the peak, the releases differ by exactly the product, and both say which applies."""
    from vramscope.api import load_model
    from vramscope.memory.activations import TrainFlags, training_activations
    from vramscope.memory.trainable import lora_modules

    spec = load_model("llama-3-8b").spec
    lora = lora_modules(spec, ("all-linear",))
    tokens, h, i = 32768, 4096, 14336
    flags = TrainFlags(base=False, embeddings=False, lora=lora, lora_rank=16, unsloth=True)
    new = training_activations(spec, 1, tokens, 2.0, "sdpa", True, flags)
    old = training_activations(spec, 1, tokens, 2.0, "sdpa", True, TrainFlags(
        base=False, embeddings=False, lora=lora, lora_rank=16, unsloth=True, unsloth_lora_temp=True))
    saved = tokens * (2 * (2 * h + 4) + 2 * h + 2 * (2 * 4096 + 2 * 1024) + 4 * 32 + 2 * h + 2 * 2 * i)
    assert new.one_layer == old.one_layer == saved + tokens * 2 * 2 * h
    assert (new.layer_backward_extra, old.layer_backward_extra) == (tokens * 2 * i, 2 * tokens * 2 * i)
    kw = dict(method="qlora", framework="unsloth", seq=tokens)
    a, b = _estimate(**kw), _estimate(unsloth_version="2024.12.3", **kw)
    # the product, and (unsloth-zoo 2026.5 on) the second GPU buffer of the double-buffered reload
    assert b.phases["backward"]["temporaries"] - a.phases["backward"]["temporaries"] == tokens * 2 * (i - h)
    assert any(x.key == "a_unsloth_recompute" for x in a.assumptions)
    assert any(x.key == "a_unsloth_recompute_old" for x in b.assumptions)
    assert _estimate(unsloth_version="2026.5.1", **kw).phases == a.phases
    # before unsloth-zoo 2026.5 no second (double-buffering) GPU buffer: one hidden state less in the activations
    c = _estimate(unsloth_version="2025.3.11", **kw)
    assert a.phases["forward"]["activations"] - c.phases["forward"]["activations"] == tokens * 2 * h
    assert a.phases["backward"]["temporaries"] - c.phases["backward"]["temporaries"] == tokens * 2 * h
    assert any(x.key == "a_unsloth_offload_single" for x in c.assumptions)
    # before Unsloth 2025.3 (Unsloth_Offloaded_Gradient_Checkpointer): neither the last input nor a buffer stays
    assert c.phases["forward"]["activations"] - b.phases["forward"]["activations"] == 2 * tokens * 2 * h
    assert any(x.key == "a_unsloth_offload_2024" for x in b.assumptions)


@pytest.mark.parametrize("kw, field", [
    (dict(method="qlora", framework="hf", unsloth_version="2024.12.3"), "unsloth_version"),
    (dict(method="full", framework="unsloth", unsloth_version="2024.12.3"), "unsloth_version"),
    (dict(method="qlora", framework="unsloth", unsloth_version="0.5.13"), "unsloth_version"),
])
def test_unsloth_version_refusals(kw, field):
    from vramscope.errors import VramscopeError

    with pytest.raises(VramscopeError) as e:
        _estimate(**kw)
    assert e.value.params["field"] == field


@pytest.mark.parametrize("framework, expect", [
    ("unsloth", {"lora_rank": 16, "quant": "nf4-dq", "grad_checkpointing": True, "optimizer": "adamw", "seq": 2048,
                 "lora_targets": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")}),
    ("llamafactory", {"lora_rank": 8, "quant": "nf4-dq", "grad_checkpointing": True, "optimizer": "adamw",
                      "seq": 2048, "lora_targets": ("all-linear",)}),
    ("axolotl", {"lora_rank": 16, "quant": "nf4-dq", "grad_checkpointing": False, "optimizer": "adamw-fused",
                 "seq": 512, "lora_targets": ("all-linear",)}),
])
def test_stack_profiles_defaults(framework, expect):
    """Each stack's defaults as read from its source (frameworks.py names the files and commits), applied where
    the user gave none, said as an assumption, and overridden by the options."""
    from vramscope.workload import make_workload

    w = make_workload(task="finetune", method="qlora", framework=framework)
    assert {k: getattr(w, k) for k in expect} == expect
    assert w.liger == ()
    given = make_workload(task="finetune", method="qlora", framework=framework, lora_rank=32, seq=1024,
                          grad_checkpointing=not expect["grad_checkpointing"], optimizer="sgd", quant="nf4",
                          liger="rms-norm,swiglu")
    assert (given.lora_rank, given.seq, given.grad_checkpointing, given.optimizer, given.quant, given.liger) == (
        32, 1024, not expect["grad_checkpointing"], "sgd", "nf4", ("rms-norm", "swiglu"))
    e = _estimate(method="qlora", framework=framework, gpus=("rtx-4090",))
    assert any(a.key == f"a_framework_{framework}" for a in e.assumptions)


def test_llamafactory_checkpoints_full_training_too():
    from vramscope.workload import make_workload

    assert make_workload(task="finetune", method="full", framework="llamafactory").grad_checkpointing
    assert not make_workload(task="finetune", method="full", framework="hf").grad_checkpointing


def test_importers_select_their_profile(tmp_path):
    """The axolotl and LLaMA-Factory config readers pick --framework and read their Liger switches."""
    from vramscope.configs import from_training_config

    ax = tmp_path / "ax.yaml"
    ax.write_text("base_model: meta-llama/Meta-Llama-3-8B\nadapter: qlora\nload_in_4bit: true\n"
                  "liger_rms_norm: true\nliger_glu_activation: true\nliger_fused_linear_cross_entropy: true\n")
    c = from_training_config(str(ax))
    assert c.options["framework"] == "axolotl" and c.options["liger"] == ("rms-norm", "swiglu", "flce")
    lf = tmp_path / "lf.yaml"
    lf.write_text("model_name_or_path: meta-llama/Meta-Llama-3-8B\nstage: sft\nfinetuning_type: lora\n"
                  "enable_liger_kernel: true\n")
    c = from_training_config(str(lf))
    assert c.options["framework"] == "llamafactory" and set(c.options["liger"]) == {"flce", "rms-norm", "swiglu",
                                                                                    "rope"}


def test_liger_option_reading():
    from vramscope.errors import VramscopeError
    from vramscope.workload import make_workload

    assert make_workload(task="finetune", liger="all").liger == ("flce", "rms-norm", "swiglu", "rope")
    assert make_workload(task="finetune", liger="none").liger == ()
    assert make_workload(task="finetune", liger="swiglu, flce").liger == ("flce", "swiglu")
    with pytest.raises(VramscopeError) as err:
        make_workload(task="finetune", liger="fused")
    assert err.value.params["field"] == "liger"
    with pytest.raises(VramscopeError):
        make_workload(liger="all")  # inference: a training option


def test_liger_flce_removes_the_logits_from_the_peak():
    """Llama-3-8B LoRA, 2048 tokens: the HF loss's fp32 log-probabilities and backward's two fp32 gradients
    (0.98 + 1.96 GiB) give way to the hidden states' gradient and a 64-row chunk of logits."""
    hf = _estimate(method="lora", seq=2048)
    liger = _estimate(method="lora", seq=2048, liger="flce")
    def tensors(e):
        return sum(v for k, v in e.phases["backward"].items() if k not in ("allocator_cache", "overhead"))

    # HF peaks as the loss's backward starts (checkpoints, log-probabilities, two fp32 gradients: 3.47 GiB); with
    # Liger the recomputed layer's backward is the peak (checkpoints, the layer, the adapters' gradients)
    assert hf.phases["backward"]["temporaries"] == 2 * 2048 * 128256 * 4
    assert tensors(hf) - tensors(liger) > 2.5 * 2**30
    assert "loss_head" not in liger.phases["backward"]
    assert any(a.key == "a_liger" and a.params["chunk"] == 64 for a in liger.assumptions)
