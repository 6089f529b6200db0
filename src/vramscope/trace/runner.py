"""The workloads, run the way the real software runs them, with a callback at each phase boundary.

Shared by ``trace`` (fake tensors on the CPU, under the live-bytes tracker) and ``measure`` (a real GPU).

* inference = what ``generate()`` does: one prefill over the whole prompt with ``use_cache=True`` and
  ``logits_to_keep=1``, the last logits copied to fp32, then decode steps of one token each;
* training = a Hugging Face Trainer step: forward, the model's own causal-LM loss (``ForCausalLMLoss``: logits
  upcast to fp32), backward, ``optimizer.step()``, ``zero_grad(set_to_none=True)``; twice, so the second step
  runs with optimizer states already allocated (the steady state). ``keep_outputs`` is the plain PyTorch loop
  (``out = model(...); out.loss.backward()``), whose ``out`` keeps the logits alive through backward. With
  gradient accumulation (``accumulate``) the first step's gradients are kept, so the second micro-batch runs
  with gradients and optimizer states allocated, as every micro-batch after an accumulation window's first.
* encoder-decoder models (T5) run as ``Seq2SeqTrainer`` and ``generate()`` run them: training passes ``labels``
  of ``seq`` tokens (the decoder input is the labels shifted right) and takes the loss the model computes;
  inference encodes the prompt once, runs the decoder over ``seq`` tokens with the cache (the cache of a
  ``seq``-token answer, as the analytic estimator counts it), then decode steps of one token.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any, Callable, Optional

Phase = Callable[[str], None]


def cache_keyword(module: Any) -> str:
    """The name ``forward`` takes the KV cache by: ``cache`` (transformers 5.x) or ``past_key_values``."""
    import inspect

    try:
        params = inspect.signature(module.forward).parameters
    except (TypeError, ValueError):
        return "past_key_values"
    return "cache" if "cache" in params else "past_key_values"


def is_encoder_decoder(model: Any) -> bool:
    return bool(getattr(model.config, "is_encoder_decoder", False))


def run_inference(model: Any, batch: int, seq: int, phase: Phase, decode_steps: int = 1,
                  on_cache: Optional[Callable[[Any], None]] = None) -> None:
    import torch
    from transformers import DynamicCache

    vocab = model.config.get_text_config().vocab_size
    device = next(model.parameters()).device
    model.eval()
    kw = cache_keyword(model)
    if is_encoder_decoder(model):
        with torch.no_grad():
            _seq2seq_inference(model, batch, seq, phase, decode_steps, on_cache, vocab, device, kw)
        return
    with torch.no_grad():
        ids = torch.randint(0, vocab, (batch, seq), device=device)
        cache = DynamicCache(config=model.config)
        phase("prefill")
        out = model(input_ids=ids, use_cache=True, logits_to_keep=1, **{kw: cache})
        logits = out.logits[:, -1, :].to(copy=True, dtype=torch.float32)
        del out
        token = logits.argmax(-1, keepdim=True)
        del logits, ids
        if on_cache is not None:
            on_cache(cache)
        phase("decode")
        token = _decode(model, token, decode_steps, lambda t: dict(input_ids=t, logits_to_keep=1, **{kw: cache}))
        if on_cache is not None:
            on_cache(cache)
        del cache, token


def _decode(model: Any, token: Any, steps: int, inputs: Callable[[Any], dict]) -> Any:
    """Greedy decoding, one token a step, keeping only the last token's fp32 logits (as ``generate()``)."""
    import torch

    for _ in range(steps):
        out = model(use_cache=True, **inputs(token))
        logits = out.logits[:, -1, :].to(copy=True, dtype=torch.float32)
        del out
        token = logits.argmax(-1, keepdim=True)
        del logits
    return token


def _seq2seq_inference(model: Any, batch: int, seq: int, phase: Phase, decode_steps: int,
                       on_cache: Optional[Callable[[Any], None]], vocab: int, device: Any, kw: str) -> None:
    """``generate()`` on an encoder-decoder model: the encoder once, the decoder with an
    ``EncoderDecoderCache`` (self-attention keys/values growing, cross-attention ones of the prompt)."""
    import torch
    from transformers import DynamicCache, EncoderDecoderCache

    ids = torch.randint(0, vocab, (batch, seq), device=device)
    cache = EncoderDecoderCache(DynamicCache(config=model.config), DynamicCache(config=model.config))
    phase("prefill")
    encoder_outputs = model.get_encoder()(input_ids=ids)
    del ids
    decoder_ids = torch.randint(0, vocab, (batch, seq), device=device)
    decoder = model.get_decoder()
    hidden = decoder(input_ids=decoder_ids, encoder_hidden_states=encoder_outputs[0], use_cache=True,
                     **{cache_keyword(decoder): cache})[0][:, -1:, :]
    del decoder_ids
    if getattr(model.config, "scale_decoder_outputs", False):  # T5 with tied embeddings
        hidden = hidden * (model.config.d_model ** -0.5)
    logits = model.get_output_embeddings()(hidden)[:, -1, :].to(copy=True, dtype=torch.float32)  # last token only
    del hidden
    token = logits.argmax(-1, keepdim=True)
    del logits
    if on_cache is not None:
        on_cache(cache)
    phase("decode")
    token = _decode(model, token, decode_steps,
                    lambda t: dict(encoder_outputs=encoder_outputs, decoder_input_ids=t, **{kw: cache}))
    if on_cache is not None:
        on_cache(cache)
    del cache, token, encoder_outputs


def run_training(model: Any, optimizer: Any, batch: int, seq: int, phase: Phase, steps: int = 2,
                 amp_dtype: Any = None, saved_hook: Optional[Callable[[Any], None]] = None,
                 on_grads: Optional[Callable[[], None]] = None, on_logits: Optional[Callable[[Any], None]] = None,
                 device_type: str = "cpu", keep_outputs: bool = False, ce_chunks: int = 1,
                 offload: bool = False, step_in_backward: bool = False, accumulate: bool = False,
                 loss_parallel: bool = False, after_step: Optional[Callable[[], None]] = None,
                 shard_inputs: Optional[Callable[[Any], tuple]] = None) -> None:
    """One training step per ``steps``; ``ce_chunks > 1`` computes the output head and the loss chunk by chunk
    (torchtune's ``CEWithChunkedOutputLoss``), ``offload`` moves saved activations out as torchtune's
    ``OffloadActivations`` does, ``step_in_backward`` steps each parameter from its gradient hook (torchtune's
    ``optimizer_in_bwd``; ``optimizer`` is then a dict parameter → optimizer). ``loss_parallel``: tensor-parallel
    logits sharded on the vocabulary, the loss and its backward inside torch's ``loss_parallel()`` (torchtitan's
    train context); the positions are passed, as a sequence-parallel embedding's local output no longer has
    the whole sequence (torchtitan's model takes them from its RoPE cache). ``after_step`` runs after each
    optimizer step, in its phase (torchtitan's post-optimizer hooks: float8 scale precomputation).
    ``shard_inputs``: context parallelism, ``ids → (local ids, local positions)`` (torchtitan's
    ``prepare_context_parallel_input``); the forward and the loss then run on this rank's share of the
    sequence, the labels being the local ids."""
    import torch

    if loss_parallel:
        from torch.distributed.tensor.parallel import loss_parallel as loss_parallel_ctx

    config = model.config.get_text_config()
    vocab = config.vocab_size
    device = next(model.parameters()).device
    seq2seq = is_encoder_decoder(model)
    model.train()
    offloader = Offloader(model, saved_hook) if offload else None
    if step_in_backward:
        for p, opt in optimizer.items():
            p.register_post_accumulate_grad_hook(_step_hook(opt))
    for step in range(1, steps + 1):
        ids = torch.randint(0, vocab, (batch, seq), device=device)
        positions = None
        if shard_inputs is not None:
            ids, positions = shard_inputs(ids)
        phase(f"forward#{step}")
        amp = torch.autocast(device_type, dtype=amp_dtype) if amp_dtype is not None else nullcontext()
        if offloader is not None:
            hooks = torch.autograd.graph.saved_tensors_hooks(offloader.pack, offloader.unpack)
        elif saved_hook is not None:
            hooks = torch.autograd.graph.saved_tensors_hooks(_pack(saved_hook), lambda t: t)
        else:
            hooks = nullcontext()
        with amp:
            with hooks:
                if ce_chunks > 1:
                    logits = _chunked_logits(model, ids, ce_chunks)
                elif seq2seq:  # Seq2SeqTrainer: labels in, the model's own loss out
                    labels = torch.randint(0, vocab, (batch, seq), device=device)
                    out = model(input_ids=ids, labels=labels)
                    logits, loss = out.logits, out.loss
                    del out, labels
                elif positions is not None:
                    out = model(input_ids=ids, position_ids=positions)
                    logits = out.logits
                    del out
                elif loss_parallel:
                    out = model(input_ids=ids, position_ids=torch.arange(seq, device=device)[None])
                    logits = out.logits
                    del out
                else:
                    out = model(input_ids=ids)
                    logits = out.logits
                    del out
            if on_logits is not None:
                _each(on_logits, logits)
            phase(f"loss#{step}")
            with (torch.autograd.graph.saved_tensors_hooks(_pack(saved_hook), lambda t: t)
                  if saved_hook is not None else nullcontext()), \
                    (loss_parallel_ctx() if loss_parallel else nullcontext()):
                if ce_chunks > 1:
                    loss = _chunked_ce(logits, ids, vocab)
                elif not seq2seq:
                    loss = model.loss_function(logits=logits, labels=ids, vocab_size=vocab)
        if not keep_outputs:  # the HF Trainer returns only the loss; a plain loop still holds out.logits
            del logits
        del ids, positions
        phase(f"backward#{step}")
        with loss_parallel_ctx() if loss_parallel else nullcontext():
            loss.backward()
        del loss
        logits = None
        if on_grads is not None:
            on_grads()
        if not step_in_backward:
            phase(f"optimizer_step#{step}")
            optimizer.step()
            if after_step is not None:
                after_step()
            if not accumulate or step == steps:
                optimizer.zero_grad(set_to_none=True)
        phase(f"idle#{step}")


def _each(fn: Callable[[Any], None], logits: Any) -> None:
    for t in (logits if isinstance(logits, list) else [logits]):
        fn(t)


def _step_hook(opt: Any) -> Callable[[Any], None]:
    """Step one parameter's optimizer and free its gradient (a gradient living only until then is a temporary)."""
    def hook(_: Any) -> None:
        opt.step()
        opt.zero_grad(set_to_none=True)

    return hook


def _chunked_logits(model: Any, ids: Any, chunks: int) -> list:
    """torchtune's chunked output (``TransformerDecoder.chunked_output``): the final hidden states split along
    the sequence, the output projection applied to each chunk."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    hidden = base.model(input_ids=ids).last_hidden_state
    return [base.lm_head(h) for h in hidden.chunk(chunks, dim=1)]


def _chunked_ce(logits: list, ids: Any, vocab: int) -> Any:
    """``CEWithChunkedOutputLoss.forward``: each chunk upcast to fp32 and summed, then divided by the tokens
    (labels shifted by one as ``ForCausalLMLoss`` does; the last position ignored)."""
    import torch
    import torch.nn.functional as F

    labels = torch.nn.functional.pad(ids[:, 1:], (0, 1), value=-100)
    total = 0.0
    for chunk, lab in zip(logits, labels.chunk(len(logits), dim=1)):
        total = total + F.cross_entropy(chunk.float().reshape(-1, vocab), lab.reshape(-1), ignore_index=-100,
                                        reduction="sum")
    return total / ids.numel()


class Offloader:
    """torchtune's ``OffloadActivations`` (``torchtune/training/_activation_offloading.py``, streams on) as far as
    device memory goes: saved tensors of at least ``min_offload_size`` (1,024 bytes) that are not parameters
    or buffers leave the device, except the last ``max_fwd_stash_size`` (5), which stay stashed until the
    copy has finished (the next offload); backward brings each one back as a new device tensor that dies with
    its autograd node. The output head runs outside (``get_act_offloading_ctx_manager``'s no-op hook)."""

    MIN_BYTES = 1024
    STASH = 5

    def __init__(self, model: Any, saved_hook: Optional[Callable[[Any], None]]) -> None:
        self.saved_hook = saved_hook
        self.stash: dict[int, Any] = {}
        self.next_id = 0
        self.off = False
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        head = base.get_output_embeddings()
        head.register_forward_pre_hook(lambda *a: setattr(self, "off", True))
        head.register_forward_hook(lambda *a: setattr(self, "off", False), always_call=True)

    def pack(self, t: Any) -> Any:
        import torch

        if self.saved_hook is not None:
            self.saved_hook(t)
        if self.off or isinstance(t, (torch.nn.Parameter, torch.nn.Buffer)) or \
                t.numel() * t.element_size() < self.MIN_BYTES:
            return ("kept", t)
        tid = self.next_id
        self.next_id += 1
        for old in [k for k in self.stash if k <= tid - self.STASH]:
            del self.stash[old]
        self.stash[tid] = t
        return ("host", tid, t.size(), t.stride(), t.dtype, t.device)

    def unpack(self, packed: Any) -> Any:
        import torch

        if packed[0] == "kept":
            return packed[1]
        _, tid, size, stride, dtype, device = packed
        if tid in self.stash:  # still on the device: torchtune uses the stashed tensor itself
            return self.stash.pop(tid)
        self.stash.clear()  # backward has started: the forward stash is released
        return torch.empty_strided(size, stride, dtype=dtype, device=device)


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
