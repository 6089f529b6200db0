"""LitGPT's own model code and training loop under the tracker (``--framework litgpt``).

LitGPT 0.5.13 (Lightning-AI/litgpt 26857050) runs ``litgpt.model.GPT`` (``litgpt.lora.GPT`` for LoRA), never
transformers' modules. The trace builds that model from a :class:`litgpt.config.Config` — ``Config.from_name``
of the LitGPT name a catalog model has (:data:`vramscope.frameworks.LITGPT_MODELS`), else one read from the
Hugging Face config of a Llama-layout model — in the training dtype, as ``fabric.init_module()`` under
``--precision bf16-true`` does (torch's default dtype set to bf16 while the modules are built; the RoPE cache
converted with the module by ``HalfPrecision.convert_module``), and runs the step of ``litgpt/finetune/lora.py``
(``fit``) and ``full.py``::

    logits = model(input_ids, lm_head_chunk_size=128)     # full.py: model(input_ids)
    logits[-1] = logits[-1][..., :-1, :]                  # full.py: logits[..., :-1, :] in the loss call
    loss = chunked_cross_entropy(logits, targets[..., 1:])
    fabric.backward(loss / accumulation_iters)
    optimizer.step(); optimizer.zero_grad()

``logits`` and ``loss`` are locals of the loop: they outlive backward and the optimizer step and are replaced
only when the next forward returns, so the second step's forward runs with the first step's logits alive.
``model`` is the ``_FabricModule`` ``fabric.setup`` returns (Lightning 2.6.6 ``fabric/wrappers.py``): its
``forward`` runs the model under the precision plugin's ``forward_context`` and hands the output to the plugin's
``convert_output``, which (``HalfPrecision``, ``BitsandbytesPrecision``, ``MixedPrecision`` alike) casts every
floating tensor to ``torch.get_default_dtype()``, fp32 outside that context: each 16-bit logits chunk becomes an
fp32 copy, and the loss runs on those.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional

from ..errors import Text, VramscopeError
from ..sources.base import ResolvedModel

#: the Hugging Face configs LitGPT's Llama-layout Config can stand for (model_type → attention bias key)
LLAMA_LAYOUT = {"llama": None, "mistral": None, "qwen2": "qkv"}


def require_litgpt() -> None:
    import importlib.util

    if importlib.util.find_spec("litgpt") is None:
        raise VramscopeError("trace_missing", module="litgpt")


def litgpt_name(model: ResolvedModel) -> Optional[str]:
    """The LitGPT ``Config.from_name`` name of a catalog model, if LitGPT has one."""
    from ..frameworks import litgpt_name_for

    return litgpt_name_for(model.origin) or litgpt_name_for(model.spec.name)


def litgpt_config(model: ResolvedModel, seq: int = 0, cls: Any = None, **extra: Any) -> Any:
    """The LitGPT Config (``cls``: ``litgpt.config.Config`` or ``litgpt.lora.Config`` with ``extra`` fields) for
    ``model``: its own ``Config.from_name`` (layers as the spec has them), or one read from a Llama-layout
    Hugging Face config (llama, mistral, qwen2)."""
    from litgpt.config import Config

    Config = cls or Config  # noqa: N806
    spec = model.spec
    name = litgpt_name(model)
    if name is not None:
        return Config.from_name(name, n_layer=spec.num_layers, **extra)
    cfg = model.hf_config or {}
    mt = cfg.get("model_type")
    if mt not in LLAMA_LAYOUT or spec.moe is not None:
        raise VramscopeError("trace_unsupported", reason=Text("r_trace_litgpt_model", model=model.spec.name))
    heads = cfg["num_attention_heads"]
    head_size = cfg.get("head_dim") or cfg["hidden_size"] // heads
    return Config(name=spec.name, block_size=max(seq, cfg.get("max_position_embeddings", 4096)),
                  vocab_size=cfg["vocab_size"], padded_vocab_size=cfg["vocab_size"], n_layer=cfg["num_hidden_layers"],
                  n_head=heads, n_embd=cfg["hidden_size"], head_size=head_size,
                  n_query_groups=cfg.get("num_key_value_heads") or heads, rotary_percentage=1.0,
                  parallel_residual=False, bias=False, attn_bias=LLAMA_LAYOUT[mt] == "qkv",
                  norm_class_name="RMSNorm", norm_eps=cfg.get("rms_norm_eps", 1e-5), mlp_class_name="LLaMAMLP",
                  intermediate_size=cfg["intermediate_size"], rope_base=int(cfg.get("rope_theta", 10000)), **extra)


#: vramscope's LoRA target names (transformers') → LitGPT's Config switches
LORA_FLAGS = {"q_proj": "lora_query", "k_proj": "lora_key", "v_proj": "lora_value", "o_proj": "lora_projection",
              "gate_proj": "lora_mlp", "up_proj": "lora_mlp", "down_proj": "lora_mlp", "lm_head": "lora_head"}


def lora_switches(targets: tuple[str, ...]) -> dict[str, bool]:
    """``--lora_query/key/value/projection/mlp/head`` for vramscope's target names; LitGPT switches the whole MLP
    at once, so a partial MLP is refused."""
    if "all-linear" in targets:
        targets = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    unknown = [t for t in targets if t not in LORA_FLAGS]
    mlp = {"gate_proj", "up_proj", "down_proj"}
    if unknown or (mlp & set(targets) and not mlp <= set(targets)):
        raise VramscopeError("trace_unsupported", reason=Text("r_trace_litgpt_targets",
                                                              targets=",".join(targets)))
    out = {flag: False for flag in LORA_FLAGS.values()}
    for t in targets:
        out[LORA_FLAGS[t]] = True
    return out


@contextmanager
def default_dtype(dtype: Any) -> Iterator[None]:
    """Lightning's ``_DtypeContextManager``: torch's default dtype while ``init_module`` / forward runs."""
    import torch

    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def build_litgpt(model: ResolvedModel, w: Any, dtype: Any) -> Any:
    """``GPT(config)`` under ``fabric.init_module()`` in ``dtype``, LoRA's ``mark_only_lora_as_trainable``, and
    ``model.max_seq_length = seq`` as ``fit`` sets it (the RoPE cache for ``seq`` positions)."""
    if w.method in ("lora", "qlora"):
        import litgpt.lora as lora

        config = litgpt_config(model, w.seq, lora.Config, lora_r=w.lora_rank,
                               lora_alpha=int(w.lora_alpha or 2 * w.lora_rank), lora_dropout=w.lora_dropout,
                               **lora_switches(w.lora_targets))
        if w.method == "qlora":
            with bnb_init_context(w.quant, dtype):
                net = lora.GPT(config)
            quantize_lightning(net)
        else:
            with default_dtype(dtype):
                net = lora.GPT(config)
        lora.mark_only_lora_as_trainable(net)
    elif w.method in ("adapter", "adapter-v2"):
        import litgpt.adapter as adapter
        import litgpt.adapter_v2 as adapter_v2

        mod = adapter if w.method == "adapter" else adapter_v2
        with default_dtype(dtype):
            net = mod.GPT(litgpt_config(model, w.seq, mod.Config))
        if w.method == "adapter":
            adapter.mark_only_adapter_as_trainable(net)
        else:
            adapter_v2.mark_only_adapter_v2_as_trainable(net)
    else:
        from litgpt.model import GPT

        with default_dtype(dtype):
            net = GPT(litgpt_config(model, w.seq))
    cuda_dropout(net)
    net.max_seq_length = w.seq
    net.cos, net.sin = net.cos.to(dtype), net.sin.to(dtype)  # HalfPrecision.convert_module: module.to(dtype)
    return net


#: LitGPT's --quantize values (``finetune/lora.py``: ``BitsandbytesPrecision(quantize[4:], dtype)``) by vramscope's
BNB_MODES = {"nf4": "nf4", "nf4-dq": "nf4-dq", "fp4": "fp4", "fp4-dq": "fp4-dq"}


def bnb_init_context(quant: str, dtype: Any) -> Any:
    """Lightning 2.6.6's ``BitsandbytesPrecision(mode, dtype).module_init_context()``, what ``fabric.init_module()``
    enters under LitGPT's ``--quantize bnb.<mode>``: torch's default dtype set to ``dtype`` and ``torch.nn.Linear``
    replaced by its ``_NF4Linear`` (...) class while the model is built, so every linear, ``lm_head`` included,
    is a ``bnb.nn.Linear4bit`` (no ``ignore_modules``: LitGPT passes none)."""
    from lightning.fabric.plugins import BitsandbytesPrecision

    return BitsandbytesPrecision(BNB_MODES[quant], dtype).module_init_context()


def quantize_lightning(net: Any) -> int:
    """Each ``Linear4bit`` quantized as Lightning's ``_Linear4bit.quantize`` does when the module reaches the GPU
    (``weight.contiguous().to(dtype=torch.half)``, then ``bnb.functional.quantize_4bit`` with the layer's block
    size, nested statistics, type and storage), here on the device the weight is on (bitsandbytes' CPU backend;
    Lightning itself refuses any device but CUDA). Returns the number of linears quantized."""
    import bitsandbytes as bnb
    from lightning.fabric.plugins.precision.bitsandbytes import _replace_param

    n = 0
    for m in net.modules():
        if isinstance(m, bnb.nn.Linear4bit) and m.weight.dtype != torch_uint8():
            p = m.weight
            w_4bit, state = bnb.functional.quantize_4bit(
                p.data.contiguous().half(), blocksize=p.blocksize, compress_statistics=p.compress_statistics,
                quant_type=p.quant_type, quant_storage=p.quant_storage)
            m.weight = _replace_param(p, w_4bit, state)
            m.weight.bnb_quantized = True
            n += 1
    import gc

    gc.collect()  # the 16-bit weights linger in reference cycles of the replaced parameters until collected
    return n


def stable_embedding(w: Any) -> bool:
    """LitGPT from 0.5.0 (ae798aba, "Add bnb.nn.StableEmbedding for quantized training") swaps the embedding for
    bitsandbytes' ``StableEmbedding`` under ``--quantize`` (``finetune/lora.py main``)."""
    from ..options import version_tuple

    return w.method == "qlora" and version_tuple(w.litgpt_version) >= (0, 5, 0)


def swap_stable_embedding(net: Any) -> None:
    """``finetune/lora.py main`` (LitGPT 0.5.13) after ``instantiate_bnb_optimizer(optimizer, model.parameters())``:
    a new ``StableEmbedding`` (its weight and LayerNorm created requiring gradients, after
    ``mark_only_lora_as_trainable`` and after the optimizer took its parameters) with the old weight copied in."""
    import torch
    from bitsandbytes.nn import StableEmbedding

    old = net.transformer.wte
    net.transformer.wte = StableEmbedding(old.num_embeddings, old.embedding_dim)
    with torch.no_grad():
        net.transformer.wte.weight.copy_(old.weight)
    net.transformer.wte = net.transformer.wte.to(device=old.weight.device, dtype=old.weight.dtype)


def torch_uint8() -> Any:
    import torch

    return torch.uint8


def cuda_dropout(net: Any) -> None:
    """Every ``nn.Dropout`` as CUDA runs it: ``at::dropout`` takes the fused kernel on CUDA
    (``is_fused_kernel_acceptable``: ``native_dropout``, whose backward keeps a bool mask), while on the CPU it
    multiplies by a mask in the input's dtype (kept for backward: 2 bytes per element in bf16, not 1)."""
    import torch

    def forward(self: Any, x: Any) -> Any:
        return torch.native_dropout(x, self.p, self.training)[0]

    for m in net.modules():
        if isinstance(m, torch.nn.Dropout):
            m.forward = forward.__get__(m)


def fabric_precision(w: Any, dtype: Any) -> Any:
    """The Lightning 2.6.6 precision plugin ``L.Fabric`` gets from LitGPT's ``setup`` (``finetune/lora.py``,
    ``full.py``): ``BitsandbytesPrecision(quantize[4:], dtype)`` under ``--quantize``, else ``HalfPrecision`` for
    the 16-bit ``-true`` precisions, else the base ``Precision`` (32-true)."""
    import torch
    from lightning.fabric.plugins.precision import HalfPrecision, Precision

    if w.method == "qlora":
        from lightning.fabric.plugins import BitsandbytesPrecision

        return BitsandbytesPrecision(BNB_MODES[w.quant], dtype)
    if dtype in (torch.bfloat16, torch.float16):
        return HalfPrecision("bf16-true" if dtype == torch.bfloat16 else "16-true")
    return Precision()


def run_litgpt_training(net: Any, optimizer: Any, batch: int, seq: int, phase: Callable[[str], None],
                        dtype: Any, chunked_head: bool, steps: int = 2,
                        saved_hook: Optional[Callable[[Any], None]] = None,
                        on_grads: Optional[Callable[[], None]] = None,
                        on_logits: Optional[Callable[[Any], None]] = None, accumulate: bool = False,
                        precision: Any = None) -> None:
    """Two iterations of LitGPT's ``fit`` (module docstring), under ``bf16-true``'s forward context; ``precision``:
    the Fabric plugin whose ``convert_output`` the model's output goes through (``_FabricModule.forward``)."""
    import torch
    from litgpt.utils import chunked_cross_entropy

    from .runner import _pack

    vocab = net.config.padded_vocab_size
    device = next(net.parameters()).device
    net.train()
    logits = loss = None  # the loop's locals, alive until reassigned
    hooks = (lambda: torch.autograd.graph.saved_tensors_hooks(_pack(saved_hook), lambda t: t)) \
        if saved_hook is not None else None
    def fabric_forward(input_ids: Any) -> Any:
        # _FabricModule.forward: the model under the plugin's forward_context, then its convert_output (outside
        # that context: torch's default dtype, fp32) while the 16-bit output is still referenced
        with default_dtype(dtype):
            output = net(input_ids, lm_head_chunk_size=128) if chunked_head else net(input_ids)
        return precision.convert_output(output) if precision is not None else output

    for step in range(1, steps + 1):
        input_ids = torch.randint(0, vocab, (batch, seq), device=device)
        targets = torch.randint(0, vocab, (batch, seq), device=device)
        phase(f"forward#{step}")
        with (hooks() if hooks else _null()):
            logits = fabric_forward(input_ids)  # the previous step's logits are released only now
            if on_logits is not None:
                for t in (logits if isinstance(logits, list) else [logits]):
                    on_logits(t)
            phase(f"loss#{step}")
            if chunked_head:
                logits[-1] = logits[-1][..., :-1, :]
                loss = chunked_cross_entropy(logits, targets[..., 1:])
            else:
                loss = chunked_cross_entropy(logits[..., :-1, :], targets[..., 1:])
        del input_ids, targets
        phase(f"backward#{step}")
        (loss / (2 if accumulate else 1)).backward()
        if on_grads is not None:
            on_grads()
        # with accumulation the first micro-batch's gradients stay for the second (stepped too, so that it runs
        # with the optimizer states allocated: every micro-batch after a window's first)
        phase(f"optimizer_step#{step}")
        optimizer.step()
        if not accumulate or step == steps:
            optimizer.zero_grad()
        phase(f"idle#{step}")
    del logits, loss


def validate_first(net: Any, dtype: Any) -> None:
    """``fit``'s validation before the first step (``finetune/adapter.py``: ``validate(..., max_iters=2)``, under
    ``@torch.no_grad()``): for the LLaMA-Adapter models it fills each adapted layer's ``adapter_kv_cache`` from the
    prefix without a graph, and every training step reuses that cache (nothing resets it), so ``adapter_wte`` gets
    no gradient. One token is enough to fill the cache; the validation's own (no-grad) peak is not traced."""
    import torch

    device = next(net.parameters()).device
    net.eval()
    with torch.no_grad(), default_dtype(dtype):
        net(torch.zeros((1, 1), dtype=torch.long, device=device))
    net.train()


def check_litgpt_workload(w: Any) -> None:
    """What the LitGPT trace runs: ``finetune full | lora | adapter | adapter_v2`` on one device, as its
    single-device recipes do (no activation checkpointing, offloading or stepping in backward)."""
    ok = (w.training and w.method in ("full", "lora", "qlora", "adapter", "adapter-v2") and w.num_gpus == 1 and not w.grad_checkpointing
          and not w.activation_offload and not w.optimizer_in_backward and not w.dora and not w.packing)
    if not ok:
        raise VramscopeError("trace_unsupported", reason=Text("r_trace_litgpt_scope"))


def run_litgpt(model: ResolvedModel, w: Any, tracker: Any, mark: Callable, category: dict, dtype: Any) -> int:
    """The trace estimator's run (``estimator._run``) with LitGPT's model and loop; returns the trainable
    parameters."""
    import torch

    from .runner import make_optimizer

    require_litgpt()
    check_litgpt_workload(w)
    net = build_litgpt(model, w, dtype)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = make_optimizer(params, w.optimizer)  # LitGPT passes model.parameters(): frozen ones get no state
    if stable_embedding(w):
        swap_stable_embedding(net)
    if w.method in ("adapter", "adapter-v2"):
        validate_first(net, dtype)
    mark(net.parameters(), "weights")
    mark(net.buffers(), "weights")

    def on_saved(t: Any) -> None:
        if isinstance(t, torch.Tensor):
            k = tracker.key_of(t)
            if k is not None:
                category.setdefault(k, "activations")

    def on_grads() -> None:
        mark([p.grad for p in net.parameters() if p.grad is not None], "gradients")

    tracker.set_phase("ready")
    run_litgpt_training(net, opt, w.batch, w.seq, tracker.set_phase, dtype, chunked_head=w.method != "full",
                        saved_hook=on_saved, on_grads=on_grads, on_logits=lambda t: mark([t], "loss_head"),
                        accumulate=w.grad_accum > 1, precision=fabric_precision(w, dtype))
    for state in opt.state.values():
        mark([v for v in state.values() if isinstance(v, torch.Tensor)], "optimizer_states")
    mark(net.parameters(), "weights")
    mark(net.buffers(), "weights")
    tracker.set_phase("end")
    return sum(p.numel() for p in params)


@contextmanager
def _null() -> Iterator[None]:
    yield


