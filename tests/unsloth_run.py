"""Unsloth's own autograd code run small on the CPU, under vramscope's dispatch tracker (issue #19).

``tests/unsloth_2026_8_13/kernels/`` holds seven files of Unsloth 2026.8.13 (the PyPI wheel ``unsloth-2026.8.13``,
sha256 d2872a30…e478; unslothai/unsloth, Apache License 2.0, Copyright 2023-present Daniel Han-Chen & the Unsloth
team: ``LICENSE`` beside them), copied verbatim: ``fast_lora.py`` (``LoRA_MLP``, ``LoRA_QKV``, ``LoRA_W`` and the
``apply_lora_*`` callers), ``swiglu.py``, ``geglu.py``, ``rms_layernorm.py`` (``Fast_RMS_Layernorm``) and
``utils.py`` (``matmul_lora``, ``get_lora_parameters``, ``fast_dequantize``), and ``cross_entropy_loss.py``
(``Fast_CrossEntropyLoss``) and ``rope_embedding.py`` (``fast_rope_embedding``), run by :func:`triton_run` under the
real Triton's interpreter (``python tests/unsloth_run.py triton``, with triton importable: see
:func:`load_triton_kernels`). For the others they import as Unsloth's package
``unsloth.kernels`` with three things put in front of them and nothing else changed:

* a ``triton`` whose ``@triton.jit`` kernels, when launched (``kernel[grid](...)``), run a PyTorch reference of the
  kernel's arithmetic on the tensors the Python wrapper allocated, writing the same outputs in place, with the
  tracker muted: a Triton kernel allocates nothing, so only the wrappers' own ``torch.empty`` outputs count;
* ``unsloth.device_type`` as Unsloth's CPU-only CI sees it (``DEVICE_TYPE = "cuda"``, ``DEVICE_COUNT = 0``: the
  module's own "no visible accelerator" branches), ``unsloth.bnb_availability`` (no native kernels) and
  ``unsloth.kernels.fp8`` (unused: no fp8 weights);
* ``unsloth_zoo.utils.Version`` (``packaging``'s).

Unsloth-Zoo's offloaded checkpointing (``unsloth_zoo/gradient_checkpointing.py UnslothCheckpointFunction``) is
LGPL-3.0 and not copied: :func:`checkpoint_run` loads it from an extracted ``unsloth_zoo-2026.8.13`` wheel named by
``VRAMSCOPE_UNSLOTH_ZOO`` (the directory holding ``unsloth_zoo/``), its CUDA streams, events and device-indexed
buffers replaced by CPU stand-ins (a dict keyed by the CPU device's index, None), and ``torch.cuda.mem_get_info``
answering a chosen free memory.

Unsloth before 2025.3 checkpointed through unsloth-zoo's older ``Unsloth_Offloaded_Gradient_Checkpointer``:
:func:`old_checkpoint_run` loads it from an extracted ``unsloth_zoo-2024.12.7`` wheel named by
``VRAMSCOPE_UNSLOTH_ZOO_2024``.

Run as a script (``python tests/unsloth_run.py [kernels|checkpoint|checkpoint2024|triton]``) it prints JSON; the
tests run it in a subprocess, so the fake ``triton`` (and the real one's interpreter mode) never reaches other
tests' imports.
"""

from __future__ import annotations

import gc as pygc
import importlib
import importlib.util
import json
import os
import sys
import types
from contextlib import nullcontext
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENDOR = HERE / "unsloth_2026_8_13"

#: the tracker the kernel stand-ins mute while they compute (set by the runs below)
TRACKER = None


def _mod(name: str, **attrs) -> types.ModuleType:
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    sys.modules[name] = m
    return m


class _Anything(types.ModuleType):
    """``triton.language``: annotations (``tl.constexpr``) and module-level attributes resolve to placeholders."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Anything(f"{self.__name__}.{name}")

    def __call__(self, *a, **k):
        return self


def _references():
    """PyTorch references of the launched kernels: the arithmetic each kernel's body does, its stores in place."""
    import torch

    def fg(e, g, h, n, **_):  # swiglu.py _fg_kernel: f = (e·sigmoid(e)) in g's dtype; h = f·g
        ef = e.float()
        h.view(-1).copy_(((ef * torch.sigmoid(ef)).to(g.dtype) * g).view(-1))

    def dwf(DW, e, g, n, **_):  # noqa: N803  swiglu.py _DWf_DW_dfg_kernel: stores h, df, de into DW, e, g
        ef = e.float()
        se = torch.sigmoid(ef)
        f = (se * ef).to(DW.dtype)
        h, df, dg = f * g, DW * f, DW * g
        de = (dg.float() * se * (1.0 + ef * (1.0 - se))).to(DW.dtype)
        DW.copy_(h)
        e.copy_(df)
        g.copy_(de)

    def rms_fwd(Y, ys, X, xs, W, ws, r, rs, n_cols, eps, **_):  # noqa: N803  rms_layernorm.py _rms_layernorm_forward
        xf = X.float()
        inv = torch.rsqrt((xf * xf).sum(-1) / n_cols + eps)
        r.copy_(inv)
        Y.copy_((xf * inv[:, None]).to(W.dtype) * W)

    def rms_bwd(dY, dys, dX, dxs, X, xs, W, ws, r, rs, n_cols, eps, GEMMA=False, **_):  # noqa: N803
        dy, xf, wf = dY.float(), X.float(), W.float()
        normed = xf * r[:, None]
        dyw = dy * (wf + 1.0) if GEMMA else dy * wf
        out = r[:, None] / n_cols * (n_cols * dyw - normed * (dyw * normed).sum(-1, keepdim=True))
        dX.copy_(out)

    return {"_fg_kernel": fg, "_DWf_DW_dfg_kernel": dwf, "_rms_layernorm_forward": rms_fwd,
            "_rms_layernorm_backward": rms_bwd}


class _Kernel:
    def __init__(self, fn):
        self.fn = fn
        self.__name__ = getattr(fn, "__name__", "kernel")

    def __getitem__(self, grid):
        name = self.__name__

        def launch(*args, **kwargs):
            ref = _references().get(name)
            if ref is None:
                raise NotImplementedError(f"no reference for Triton kernel {name}")
            if TRACKER is not None:
                TRACKER.muted += 1
            try:
                import torch

                with torch.no_grad():
                    ref(*args, **kwargs)
            finally:
                if TRACKER is not None:
                    TRACKER.muted -= 1

        return launch


def load_kernels() -> types.ModuleType:
    """Unsloth 2026.8.13's ``unsloth.kernels`` modules (fast_lora, rms_layernorm) from the vendored copy."""
    import torch._dynamo  # noqa: F401  (imported before the stand-in: torch's inductor probes triton's backends)

    if importlib.util.find_spec("torchao") is not None:  # utils.py imports its Float8Tensor, torchao probes triton
        importlib.import_module("torchao.quantization")
    # rms_layernorm.py subclasses transformers' LlamaRMSNorm (and Mllama's): imported with the real (absent) triton
    importlib.import_module("transformers.models.llama.modeling_llama")
    if importlib.util.find_spec("transformers.models.mllama") is not None:
        importlib.import_module("transformers.models.mllama.modeling_mllama")
    from packaging.version import Version

    jit = lambda fn=None, **_: _Kernel(fn) if fn is not None else _Kernel  # noqa: E731
    tri = _mod("triton", jit=jit, heuristics=lambda d: (lambda k: k), cdiv=lambda a, b: -(-a // b),
               next_power_of_2=lambda n: 1 << max(0, (n - 1).bit_length()), __version__="3.4.0", Config=object,
               autotune=lambda *a, **k: (lambda f: f))
    lang = _Anything("triton.language")
    sys.modules["triton.language"] = lang
    sys.modules["triton.language.extra"] = _Anything("triton.language.extra")
    tri.language = lang
    _mod("unsloth_zoo", __path__=[])
    _mod("unsloth_zoo.utils", Version=Version)
    _mod("unsloth", __path__=[])
    _mod("unsloth.device_type", is_hip=lambda: False, get_device_type=lambda: "cuda", DEVICE_TYPE="cuda",
         DEVICE_TYPE_TORCH="cuda", DEVICE_COUNT=0, ALLOW_PREQUANTIZED_MODELS=True)
    _mod("unsloth.bnb_availability", native_kernels_ready=lambda *a, **k: False)
    _mod("unsloth.kernels", __path__=[str(VENDOR / "kernels")])

    def no_fp8(*a, **k):
        raise NotImplementedError("fp8 weights are not part of this run")

    _mod("unsloth.kernels.fp8", weight_dequant=no_fp8, fp8_linear=no_fp8)
    importlib.import_module("unsloth.kernels.utils")
    importlib.import_module("unsloth.kernels.rms_layernorm")
    return importlib.import_module("unsloth.kernels.fast_lora")


class _Proj:
    """What ``get_lora_parameters`` reads of a peft LoRA linear: ``base_layer.weight``, ``lora_A/B[adapter].weight``
    (fp32, as unsloth_zoo's prepare_model_for_training leaves them), ``scaling``, the active adapter."""

    def __init__(self, torch, out_f: int, in_f: int, r: int, dtype):
        def lin(o, i, dt):
            return types.SimpleNamespace(weight=torch.nn.Parameter(torch.randn(o, i, dtype=dt) * 0.02))

        self.base_layer = lin(out_f, in_f, dtype)
        self.base_layer.weight.requires_grad_(False)
        self.lora_A = {"default": lin(r, in_f, torch.float32)}
        self.lora_B = {"default": lin(out_f, r, torch.float32)}
        self.scaling = {"default": 2.0}
        self.active_adapters = ["default"]
        self.disable_adapters = False
        self.merged = False

    def params(self):
        return [self.base_layer.weight, self.lora_A["default"].weight, self.lora_B["default"].weight]


def _tracked(fn):
    """Run ``fn(tracker)`` under vramscope's tracker; returns (its result, the tracker)."""
    global TRACKER
    from vramscope.trace.tracker import make_tracker

    TRACKER = make_tracker()
    with TRACKER:
        out = fn(TRACKER)
    tr, TRACKER = TRACKER, None
    return out, tr


def kernels_run(batch: int = 2, seq: int = 256, h: int = 256, inter: int = 704, heads: int = 8, kv_heads: int = 2,
                r: int = 16) -> dict:
    """One Llama decoder layer as Unsloth 2026.8.13's ``LlamaDecoderLayer_fast_forward`` and
    ``LlamaAttention_fast_forward`` compose it (``unsloth/models/llama.py``: fast RMSNorm, ``apply_qkv``, attention,
    ``apply_o``, the residual, fast RMSNorm, ``apply_mlp``, the residual), bf16 on real CPU tensors: the bytes per token
    each piece and the layer keep for backward, and the transient peaks of the pieces' forward and backward.
    Attention is SDPA (the backend vramscope models: flash/xformers/SDPA keep q, k, v, the output and an fp32
    log-sum-exp), RoPE left out (Unsloth's rotates q and k in place)."""
    import torch

    fl = load_kernels()
    rms = sys.modules["unsloth.kernels.rms_layernorm"]
    torch.manual_seed(0)
    bf = torch.bfloat16
    hd = h // heads
    q_dim, kv_dim = heads * hd, kv_heads * hd
    attn = types.SimpleNamespace(q_proj=_Proj(torch, q_dim, h, r, bf), k_proj=_Proj(torch, kv_dim, h, r, bf),
                                 v_proj=_Proj(torch, kv_dim, h, r, bf), o_proj=_Proj(torch, h, q_dim, r, bf))
    mlp = types.SimpleNamespace(gate_proj=_Proj(torch, inter, h, r, bf), up_proj=_Proj(torch, inter, h, r, bf),
                                down_proj=_Proj(torch, h, inter, r, bf))
    norm_w = [torch.nn.Parameter(torch.ones(h, dtype=bf)) for _ in range(2)]
    for p in norm_w:
        p.requires_grad_(False)
    params = [p for m in (*vars(attn).values(), *vars(mlp).values()) for p in m.params()] + norm_w
    tokens = batch * seq
    out: dict = {"tokens": tokens, "shape": dict(batch=batch, seq=seq, h=h, inter=inter, heads=heads,
                                                   kv_heads=kv_heads, r=r)}

    def layer(x):
        residual = x
        y = rms.fast_rms_layernorm(types.SimpleNamespace(weight=norm_w[0], variance_epsilon=1e-5), x)
        q, k, v = fl.apply_lora_qkv(attn, y)
        q = q.view(batch, seq, heads, hd).transpose(1, 2)
        k = k.view(batch, seq, kv_heads, hd).transpose(1, 2)
        v = v.view(batch, seq, kv_heads, hd).transpose(1, 2)
        a = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        a = a.transpose(1, 2).contiguous().reshape(batch, seq, q_dim)
        x = residual + fl.apply_lora_o(attn, a)
        residual = x
        y = rms.fast_rms_layernorm(types.SimpleNamespace(weight=norm_w[1], variance_epsilon=1e-5), x)
        return residual + fl.apply_lora_mlp_swiglu(mlp, y)

    def pieces(tracker):
        res = {}
        x = torch.randn(batch, seq, h, dtype=bf, requires_grad=True)
        tracker.track_all(params)

        def measure(name, fn, *inputs):
            base = tracker.live
            tracker.set_phase(name + ".fwd")
            peak0 = tracker.log.phases[name + ".fwd"]
            o = fn(*inputs)
            outs = o if isinstance(o, tuple) else (o,)
            kept = tracker.live - base  # outputs + what it saved that is new
            new_out = sum(t.untyped_storage().nbytes() for t in outs)
            fwd_peak = peak0.bytes - base
            grads = [torch.randn_like(t) for t in outs]
            tracker.set_phase(name + ".bwd")
            start = tracker.live
            torch.autograd.backward(outs, grads)
            bwd_peak = tracker.log.phases[name + ".bwd"].bytes - start
            res[name] = {"saved_new": (kept - new_out) / tokens, "output": new_out / tokens,
                         "forward_transient": (fwd_peak - kept) / tokens, "backward_transient": bwd_peak / tokens}
            return o

        xn = torch.randn(batch, seq, h, dtype=bf, requires_grad=True)
        measure("rms_norm", lambda t: rms.fast_rms_layernorm(
            types.SimpleNamespace(weight=norm_w[0], variance_epsilon=1e-5), t), xn)
        measure("lora_qkv", lambda t: fl.apply_lora_qkv(attn, t), torch.randn(batch, seq, h, dtype=bf,
                                                                                  requires_grad=True))
        measure("lora_o", lambda t: fl.apply_lora_o(attn, t), torch.randn(batch, seq, q_dim, dtype=bf,
                                                                              requires_grad=True))
        measure("lora_mlp", lambda t: fl.apply_lora_mlp_swiglu(mlp, t), torch.randn(batch, seq, h, dtype=bf,
                                                                                       requires_grad=True))
        # the whole layer: what stays for backward beyond its input and its output
        tracker.set_phase("layer.fwd")
        base = tracker.live
        y = layer(x)
        res["layer"] = {"saved_new": (tracker.live - base - y.untyped_storage().nbytes()) / tokens}
        tracker.set_phase("layer.bwd")
        start = tracker.live
        y.backward(torch.randn_like(y))
        res["layer"]["backward_transient"] = (tracker.log.phases["layer.bwd"].bytes - start) / tokens
        return res

    res, _ = _tracked(pieces)
    out.update(res)
    return out


def load_checkpointing(free_bytes: int):
    """unsloth_zoo 2026.8.13's ``gradient_checkpointing`` module from ``VRAMSCOPE_UNSLOTH_ZOO``, its globals set as
    ``initialize_unsloth_gradient_checkpointing(torch.bfloat16)`` sets them on one GPU, with CPU stand-ins."""
    import torch

    root = os.environ.get("VRAMSCOPE_UNSLOTH_ZOO")
    if not root or not (Path(root) / "unsloth_zoo" / "gradient_checkpointing.py").is_file():
        raise FileNotFoundError("VRAMSCOPE_UNSLOTH_ZOO names no extracted unsloth_zoo-2026.8.13 wheel")
    from packaging.version import Version

    sys.modules.pop("unsloth_zoo", None)
    _mod("unsloth_zoo", __path__=[str(Path(root) / "unsloth_zoo")])
    _mod("unsloth_zoo.utils", Version=Version, _get_dtype=lambda d: d)
    _mod("unsloth_zoo.device_type", is_hip=lambda: False, get_device_type=lambda: "cuda", DEVICE_TYPE="cuda",
         DEVICE_TYPE_TORCH="cuda", DEVICE_COUNT=1, ALLOW_PREQUANTIZED_MODELS=True)
    gc = importlib.import_module("unsloth_zoo.gradient_checkpointing")

    class Stream:
        def wait_stream(self, other):
            pass

        def wait_event(self, event):
            pass

    class Event:
        def record(self, stream=None):
            pass

    class ByDevice(list):
        """A per-GPU tuple indexed by ``tensor.device.index``: the CPU device's is None, taken as GPU 0."""

        def __getitem__(self, i):
            return super().__getitem__(0 if i is None else i)

        def __setitem__(self, i, v):
            super().__setitem__(0 if i is None else i, v)

    dtype = torch.bfloat16
    gc.torch_gpu_stream = lambda s: nullcontext()
    # initialize_unsloth_gradient_checkpointing's state (its pinned CPU buffers as plain CPU tensors)
    gc.CPU_BUFFERS = [torch.empty(gc.INITIAL_CPU_BUFFER_SIZE, dtype=dtype) for _ in range(gc.INITIAL_CPU_BUFFER_COUNT)]
    gc.CPU_INDEX = 0
    gc.NEXT_BUFFER_SLOT = ByDevice([0])
    gc.GPU_BUFFERS = ByDevice([torch.empty(gc.INITIAL_GPU_BUFFER_SIZE, dtype=dtype)])
    gc.GPU_BUFFERS_B = ByDevice([torch.empty(gc.INITIAL_GPU_BUFFER_SIZE, dtype=dtype)])
    gc.USE_DOUBLE_BUFFER = False
    gc.BUFFER_EVENTS_A, gc.BUFFER_EVENTS_B = ByDevice([Event()]), ByDevice([Event()])
    gc.BACKWARD_PASS = True
    gc.EXTRA_STREAMS, gc.MAIN_STREAMS = ByDevice([Stream()]), ByDevice([Stream()])
    gc.MINIMUM_SIZE = 2 * 1024 * 1024 // 2
    gc.USE_UNSLOTH_GC = False
    gc.LAST_GC_INDEX, gc.FIRST_PASS, gc.CURRENT_GC_INDEX = 0, True, 0
    torch.cuda.mem_get_info = lambda index=None: (free_bytes, 2 * free_bytes)
    return gc


def checkpoint_run(free_bytes: int = 8 * 2**30, layers: int = 4, steps: int = 3, batch: int = 2, seq: int = 1024,
                   h: int = 1024) -> dict:
    """``layers`` checkpointed layers through ``unsloth_checkpoint`` (UnslothCheckpointFunction), ``steps`` steps:
    per step, the device bytes (the tracker's live bytes less the CPU buffers') at the end of forward, of the
    checkpointed inputs' kind (each layer's input is b·s·h, above the 2 MiB minimum), in units of one input."""
    import torch

    gc = load_checkpointing(free_bytes)
    torch.manual_seed(0)
    ws = [torch.nn.Parameter(torch.randn(h, dtype=torch.bfloat16)) for _ in range(layers)]  # cheap elementwise layers

    def block(i):
        return lambda x: x + torch.tanh(x * ws[i])

    def run(tracker):
        tracker.track_all(ws)
        one = batch * seq * h * 2
        steps_out = []
        for step in range(steps):
            tracker.set_phase(f"step{step}")
            x0 = torch.randn(batch, seq, h, dtype=torch.bfloat16, requires_grad=True)
            x = x0
            for i in range(layers):
                x = gc.unsloth_checkpoint(block(i), x)
            # the live storages at the end of forward: the CPU buffers are host memory, x0 and x the step's own
            # input and output, the GPU buffers counted apart; what is left of an input's size is a kept input
            mine = {id(t.untyped_storage()) for t in (x0, x)}
            buffers = [b for b in (*gc.GPU_BUFFERS, *(gc.GPU_BUFFERS_B or ())) if b.numel()]
            skip = mine | {id(b.untyped_storage()) for b in (*buffers, *gc.CPU_BUFFERS)}
            kept = [st for st, c in list(tracker.cells.items()) if c.key is not None and id(st) not in skip
                    and tracker.log.sizes[c.key] >= one]
            steps_out.append({"step": step + 1, "kept_inputs": sum(st.nbytes() for st in kept) / one,
                              "gpu_buffers": sum(b.untyped_storage().nbytes() for b in buffers) / one,
                              "double_buffer": bool(gc.USE_DOUBLE_BUFFER)})
            del kept  # (its storages would otherwise outlive the step)
            x.float().sum().backward()
            del x, x0
        return steps_out

    res, _ = _tracked(run)
    return {"layers": layers, "free_bytes": free_bytes, "steps": res}


def load_old_checkpointing():
    """unsloth_zoo 2024.12.7's ``gradient_checkpointing`` module (``Unsloth_Offloaded_Gradient_Checkpointer``, what
    unsloth 2024.12.4's ``LlamaModel_fast_forward`` applies per layer) from ``VRAMSCOPE_UNSLOTH_ZOO_2024``."""
    root = os.environ.get("VRAMSCOPE_UNSLOTH_ZOO_2024")
    if not root or not (Path(root) / "unsloth_zoo" / "gradient_checkpointing.py").is_file():
        raise FileNotFoundError("VRAMSCOPE_UNSLOTH_ZOO_2024 names no extracted unsloth_zoo-2024.12.7 wheel")
    sys.modules.pop("unsloth_zoo", None)
    sys.modules.pop("unsloth_zoo.gradient_checkpointing", None)
    _mod("unsloth_zoo", __path__=[str(Path(root) / "unsloth_zoo")])
    return importlib.import_module("unsloth_zoo.gradient_checkpointing")


def old_checkpoint_run(layers: int = 4, steps: int = 2, batch: int = 2, seq: int = 256, h: int = 512) -> dict:
    """``layers`` layers through ``Unsloth_Offloaded_Gradient_Checkpointer.apply`` as unsloth 2024.12.4's
    ``LlamaModel_fast_forward`` calls it (``hidden_states = ....apply(decoder_layer, hidden_states, ...)[0]``), with
    its two device moves redirected on CPU tensors to what they do on a GPU: ``.to("cpu", non_blocking = True)``
    a new host tensor (on a CPU tensor it would return the tensor itself), ``.to("cuda:0", ...)`` a new device
    tensor. Per step, in units of one input (b·s·h bf16): the device inputs still live at the end of forward, the
    host copies alive then, and the most reloaded inputs alive at once in backward."""
    import weakref

    import torch

    gc = load_old_checkpointing()
    torch.manual_seed(0)
    ws = [torch.nn.Parameter(torch.randn(h, dtype=torch.bfloat16)) for _ in range(layers)]
    host, reloads, most = weakref.WeakValueDictionary(), weakref.WeakValueDictionary(), [0]
    orig_to = torch.Tensor.to

    def to(self, *args, **kwargs):
        dev = args[0] if args else kwargs.get("device")
        if isinstance(dev, (str, torch.device)) and str(dev) in ("cpu", "cuda:0"):
            copy = self.detach().clone()  # what either move allocates on a GPU machine: a new tensor
            (host if str(dev) == "cpu" else reloads)[id(copy)] = copy
            if str(dev) == "cuda:0":
                most[0] = max(most[0], len(reloads))
            return copy
        return orig_to(self, *args, **kwargs)

    class Layer(torch.nn.Module):  # a decoder layer: returns a tuple, as LlamaDecoderLayer_fast_forward does
        def __init__(self, i):
            super().__init__()
            self.i = i

        def forward(self, x, *args):
            return (x + torch.tanh(x * ws[self.i]),)

    mods = [Layer(i) for i in range(layers)]

    def run(tracker):
        tracker.track_all(ws)
        one = batch * seq * h * 2
        out = []
        torch.Tensor.to = to
        try:
            for step in range(steps):
                tracker.set_phase(f"step{step}")
                most[0] = 0
                x0 = torch.randn(batch, seq, h, dtype=torch.bfloat16, requires_grad=True)
                x = x0
                for m in mods:  # (mask, attention_mask, position_ids, past_key_values, output_attentions, ...)
                    x = gc.Unsloth_Offloaded_Gradient_Checkpointer.apply(m, x, None, None, None, None, False, False,
                                                                         None, None)[0]
                mine = {id(t.untyped_storage()) for t in (x0, x)}
                hosts = {id(t.untyped_storage()) for t in host.values()}
                kept = [st for st, c in list(tracker.cells.items()) if c.key is not None
                        and id(st) not in mine | hosts and tracker.log.sizes[c.key] >= one]
                out.append({"step": step + 1, "kept_inputs": sum(st.nbytes() for st in kept) / one,
                            "host_copies": sum(t.untyped_storage().nbytes() for t in host.values()) / one})
                del kept
                x.float().sum().backward()
                out[-1]["reloads_at_once"] = most[0]
                out[-1]["host_after_backward"] = len(host)
                del x, x0
        finally:
            torch.Tensor.to = orig_to
        return out

    res, _ = _tracked(run)
    return {"layers": layers, "steps": res}


def load_triton_kernels():
    """Unsloth 2026.8.13's ``cross_entropy_loss`` and ``rope_embedding`` (vendored beside the others) under the real
    Triton in interpreter mode (``TRITON_INTERPRET=1``, set before triton is imported: each ``kernel[grid](...)``
    runs the kernel's own body on numpy copies of the CPU tensors and writes them back). One thing is rebound:
    ``utils.py`` takes ``triton_cast = tl.cast`` at import, and the interpreter swaps ``tl``'s builtins only for the
    length of a launch (setattr on the module), so the early alias stays the raw builtin and raises "Did you forget
    to add @triton.jit ?"; ``cross_entropy_loss.triton_cast`` is made a late-bound call of ``tl.cast``, the builtin
    the compiler resolves it to on a GPU. The interpreter's own host copies are muted in the tracker."""
    os.environ["TRITON_INTERPRET"] = "1"
    import torch._dynamo  # noqa: F401

    importlib.import_module("transformers.models.llama.modeling_llama")
    import triton
    import triton.language as tl
    from triton.runtime import interpreter
    from packaging.version import Version

    for name in [m for m in sys.modules if m == "unsloth" or m.startswith(("unsloth.", "unsloth_zoo"))]:
        sys.modules.pop(name)
    _mod("unsloth_zoo", __path__=[])
    _mod("unsloth_zoo.utils", Version=Version)
    _mod("unsloth_zoo.loss_utils", patch_loss_functions=lambda *a, **k: None,
         post_patch_loss_function=lambda *a, **k: None)
    _mod("unsloth", __path__=[])
    _mod("unsloth.device_type", is_hip=lambda: False, get_device_type=lambda: "cuda", DEVICE_TYPE="cuda",
         DEVICE_TYPE_TORCH="cuda", DEVICE_COUNT=0, ALLOW_PREQUANTIZED_MODELS=True)
    _mod("unsloth.bnb_availability", native_kernels_ready=lambda *a, **k: False)
    _mod("unsloth.kernels", __path__=[str(VENDOR / "kernels")])
    _mod("unsloth.kernels.fp8", weight_dequant=None, fp8_linear=None)
    ce = importlib.import_module("unsloth.kernels.cross_entropy_loss")
    rope = importlib.import_module("unsloth.kernels.rope_embedding")
    ce.triton_cast = lambda x, dtype: tl.cast(x, dtype)
    call = interpreter.GridExecutor.__call__

    def muted(self, *a, **k):
        if TRACKER is not None:
            TRACKER.muted += 1
        try:
            return call(self, *a, **k)
        finally:
            if TRACKER is not None:
                TRACKER.muted -= 1

    interpreter.GridExecutor.__call__ = muted
    return ce, rope, triton.__version__


def _new_bytes(tracker, before: set) -> int:
    """Bytes of the tracked storages alive now that were not alive in ``before`` (after a collection: the
    interpreter leaves a launch's arguments in a reference cycle, which a compiled launch does not)."""
    pygc.collect()
    return sum(tracker.log.sizes[c.key] for st, c in list(tracker.cells.items())
               if c.key is not None and id(st) not in before)


def _alive(tracker) -> set:
    pygc.collect()
    return {id(st) for st, c in list(tracker.cells.items()) if c.key is not None}


def triton_run(rows: int = 128, vocab: int = 4096, big_vocab: int = 69632, batch: int = 2, seq: int = 64,
               heads: int = 8, kv_heads: int = 2, hd: int = 64) -> dict:
    """Fast_CrossEntropyLoss (both paths: one block for a vocabulary up to 65536, the chunked kernel above) on bf16
    logits out of a head matmul, and fast_rope_embedding (``Fast_RoPE_Embedding`` without position ids,
    ``Fast_RoPE_Embedding_QK`` with them) on q and k laid out as ``LlamaAttention_fast_forward`` makes them
    (``view(b, s, n, d).transpose(1, 2)``), SDPA after it: per row or token, the bytes each allocates in forward,
    keeps for backward beyond its input, and allocates in backward; whether the outputs and gradients are written
    in place (the input's storage); the loss and gradient against torch's, the rotation against its formula
    (fp32: the interpreter's bfloat16 arithmetic gives NaNs in the rotation, fp32 is exact)."""
    import torch

    ce, rope, version = load_triton_kernels()
    torch.manual_seed(0)
    bf = torch.bfloat16

    def loss_case(tracker, v, n):
        h = 64
        x = torch.randn(n, h, dtype=bf)
        w = torch.nn.Parameter(torch.randn(v, h, dtype=bf) * 0.05)
        labels = torch.randint(0, v, (n,))
        labels[::7] = -100
        logits = x @ w.t()

        before = _alive(tracker)
        loss_rows = ce.Fast_CrossEntropyLoss.apply(logits, labels)
        fwd_new = _new_bytes(tracker, before)
        saved = loss_rows.grad_fn.saved_tensors
        saved_ptrs = [t.data_ptr() for t in saved]
        out = {"vocab": v, "rows": n, "chunks": -(-v // 65536),
               "forward_new_per_row": fwd_new / n,  # losses + logsumexp (fp32), what stays of forward
               "saved": [[str(t.dtype).replace("torch.", ""), list(t.shape)] for t in saved],
               "saves_logits_itself": saved_ptrs[0] == logits.data_ptr(),
               "loss": float(loss_rows.sum() / (labels != -100).sum()),
               "reference": float(torch.nn.functional.cross_entropy(logits.float(), labels))}
        del saved
        lf = logits.detach().float().requires_grad_()
        torch.nn.functional.cross_entropy(lf, labels, reduction="sum").backward()
        ref_grad = lf.grad
        del lf
        start = tracker.live
        tracker.set_phase(f"ce_backward_{v}")
        (grad,) = torch.autograd.grad(loss_rows.sum(), [logits])  # what flows into the head's backward
        out["backward_peak_over_start_per_row"] = max(tracker.log.phases[f"ce_backward_{v}"].bytes - start, 0) / n
        out["grad_written_into_logits"] = grad.data_ptr() == logits.data_ptr()
        out["grad_max_error"] = float((grad.float() - ref_grad).abs().max())
        out["logits_bytes_per_row"] = v * 2
        return out

    def rope_case(tracker, with_positions, bf=bf):
        q_dim, kv_dim = heads * hd, kv_heads * hd
        xq = torch.randn(batch, seq, q_dim, dtype=bf, requires_grad=True)
        xk = torch.randn(batch, seq, kv_dim, dtype=bf, requires_grad=True)
        xv = torch.randn(batch, seq, kv_dim, dtype=bf, requires_grad=True)
        Q0, K0 = xq * 1, xk * 1  # the projections' outputs (LoRA_QKV returns Q, K, V apart)
        Q = Q0.view(batch, seq, heads, hd).transpose(1, 2)
        K = K0.view(batch, seq, kv_heads, hd).transpose(1, 2)
        V = xv.view(batch, seq, kv_heads, hd).transpose(1, 2)
        inv = 1.0 / (10000 ** (torch.arange(0, hd, 2).float() / hd))
        f = torch.outer(torch.arange(seq).float(), inv)
        emb = torch.cat((f, f), -1)
        cos, sin = emb.cos().to(bf), emb.sin().to(bf)
        pos = torch.arange(seq).repeat(batch, 1) if with_positions else None
        tokens = batch * seq
        q_before = Q0.detach().float().clone()
        before = _alive(tracker)
        start = tracker.live
        phase = f"rope_forward_{with_positions}"
        tracker.set_phase(phase)
        Qr, Kr = rope.fast_rope_embedding(Q, K, cos, sin, pos)
        out = {"positions": with_positions, "function": type(Qr.grad_fn).__name__,
               "q_in_place": Qr.data_ptr() == Q0.data_ptr(), "k_in_place": Kr.data_ptr() == K0.data_ptr(),
               "forward_new_per_token": _new_bytes(tracker, before) / tokens,
               "forward_peak_over_start_per_token": max(tracker.log.phases[phase].bytes - start, 0) / tokens,
               "q_plus_kv_bytes_per_token": 2 * (q_dim + kv_dim)}
        q = q_before.view(batch, seq, heads, hd).transpose(1, 2)
        ref = q * cos.float() + torch.cat((-q[..., hd // 2:], q[..., :hd // 2]), -1) * sin.float()
        out["max_error"] = float((Qr.float() - ref).abs().max())  # (bf16 arithmetic: not the interpreter's)
        del q, ref, q_before, Q, K
        o = torch.nn.functional.scaled_dot_product_attention(Qr, Kr, V, is_causal=True, enable_gqa=True)
        phase = f"rope_backward_{with_positions}"
        # the RoPE backward alone: the attention's gradients first, then through the rotation
        dq, dk = torch.autograd.grad(o.float().sum(), [Qr, Kr], retain_graph=True)
        start = tracker.live
        tracker.set_phase(phase + "_rope")
        gq, gk = torch.autograd.grad([Qr, Kr], [Q0, K0], [dq, dk])  # to the projections' outputs
        out["dq_written_into_incoming_grad"] = gq.data_ptr() == dq.data_ptr()
        peak = tracker.log.phases[phase + "_rope"].bytes
        out["backward_rope_peak_over_start_per_token"] = max(peak - start, 0) / tokens
        out["dq_layout_bshd_contiguous"] = dq.transpose(1, 2).is_contiguous()
        out["dk_layout_bshd_contiguous"] = dk.transpose(1, 2).is_contiguous()
        return out

    def run(tracker):
        return {"triton": version,
                "loss": [loss_case(tracker, vocab, rows), loss_case(tracker, big_vocab, rows)],
                "rope": [rope_case(tracker, False), rope_case(tracker, True)],
                # the rotation's values, where the interpreter computes them (fp32: numpy has no bfloat16)
                "rope_fp32_max_error": [rope_case(tracker, p, torch.float32)["max_error"] for p in (False, True)]}

    res, _ = _tracked(run)
    return res


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent / "src"))
    what = sys.argv[1] if len(sys.argv) > 1 else "kernels"
    if what == "kernels":
        print(json.dumps(kernels_run()))
    elif what == "triton":
        print(json.dumps(triton_run()))
    elif what == "checkpoint2024":
        print(json.dumps(old_checkpoint_run()))
    else:
        free = int(sys.argv[2]) if len(sys.argv) > 2 else 8 * 2**30
        print(json.dumps(checkpoint_run(free)))
