"""The workloads, run the way the real software runs them, with a callback at each phase boundary.

Shared by ``trace`` (fake tensors on the CPU, under the live-bytes tracker) and ``measure`` (a real GPU).

* inference = what ``generate()`` does: one prefill over the whole prompt with ``use_cache=True`` and
  ``logits_to_keep=1``, the last logits copied to fp32, then decode steps of one token each;
* training = a Hugging Face Trainer step: forward, the model's own causal-LM loss (``ForCausalLMLoss``: logits
  upcast to fp32), backward, ``optimizer.step()``, ``zero_grad(set_to_none=True)``; twice, so the second step
  runs with optimizer states already allocated (the steady state). ``keep_outputs`` is the plain PyTorch loop
  (``out = model(...); out.loss.backward()``), whose ``out`` keeps the logits alive through backward.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any, Callable, Optional

Phase = Callable[[str], None]


def run_inference(model: Any, batch: int, seq: int, phase: Phase, decode_steps: int = 1,
                  on_cache: Optional[Callable[[Any], None]] = None) -> None:
    import torch
    from transformers import DynamicCache

    vocab = model.config.get_text_config().vocab_size
    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        ids = torch.randint(0, vocab, (batch, seq), device=device)
        cache = DynamicCache(config=model.config)
        phase("prefill")
        out = model(input_ids=ids, past_key_values=cache, use_cache=True, logits_to_keep=1)
        logits = out.logits[:, -1, :].to(copy=True, dtype=torch.float32)
        del out
        token = logits.argmax(-1, keepdim=True)
        del logits, ids
        if on_cache is not None:
            on_cache(cache)
        phase("decode")
        for _ in range(decode_steps):
            out = model(input_ids=token, past_key_values=cache, use_cache=True, logits_to_keep=1)
            logits = out.logits[:, -1, :].to(copy=True, dtype=torch.float32)
            del out
            token = logits.argmax(-1, keepdim=True)
            del logits
        if on_cache is not None:
            on_cache(cache)
        del cache, token


def run_training(model: Any, optimizer: Any, batch: int, seq: int, phase: Phase, steps: int = 2,
                 amp_dtype: Any = None, saved_hook: Optional[Callable[[Any], None]] = None,
                 on_grads: Optional[Callable[[], None]] = None, on_logits: Optional[Callable[[Any], None]] = None,
                 device_type: str = "cpu", keep_outputs: bool = False) -> None:
    import torch

    config = model.config.get_text_config()
    vocab = config.vocab_size
    device = next(model.parameters()).device
    model.train()
    for step in range(1, steps + 1):
        ids = torch.randint(0, vocab, (batch, seq), device=device)
        phase(f"forward#{step}")
        amp = torch.autocast(device_type, dtype=amp_dtype) if amp_dtype is not None else nullcontext()
        hooks = (torch.autograd.graph.saved_tensors_hooks(_pack(saved_hook), lambda t: t)
                 if saved_hook is not None else nullcontext())
        with hooks:
            with amp:
                out = model(input_ids=ids)
                logits = out.logits
                del out
                if on_logits is not None:
                    on_logits(logits)
                phase(f"loss#{step}")
                loss = model.loss_function(logits=logits, labels=ids, vocab_size=vocab)
        if not keep_outputs:  # the HF Trainer returns only the loss; a plain loop still holds out.logits
            del logits
        del ids
        phase(f"backward#{step}")
        loss.backward()
        del loss
        logits = None
        if on_grads is not None:
            on_grads()
        phase(f"optimizer_step#{step}")
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        phase(f"idle#{step}")


def _pack(hook: Callable[[Any], None]) -> Callable[[Any], Any]:
    def pack(t: Any) -> Any:
        hook(t)
        return t

    return pack


def make_optimizer(params: list, name: str) -> Any:
    """torch optimizers as CUDA runs them by default (``foreach`` AdamW); 8-bit variants are not traceable."""
    import torch

    if name in ("adamw", "adam"):
        cls = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
        return cls(params, lr=1e-5, foreach=True)
    if name == "adamw-fused":
        return torch.optim.AdamW(params, lr=1e-5, fused=True)
    if name == "sgd":
        return torch.optim.SGD(params, lr=1e-5, foreach=True)
    if name == "sgd-momentum":
        return torch.optim.SGD(params, lr=1e-5, momentum=0.9, foreach=True)
    if name == "adafactor":
        return torch.optim.Adafactor(params, lr=1e-5, foreach=True)
    from ..errors import VramscopeError

    raise VramscopeError("trace_unsupported", reason=f"optimizer '{name}' needs bitsandbytes/CUDA kernels")
