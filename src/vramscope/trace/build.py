"""Build the real Hugging Face model for a resolved model: from its config, never from repository code."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Optional

from ..errors import VramscopeError
from ..model.families import by_model_type
from ..sources.base import ResolvedModel


@contextmanager
def quiet_libraries() -> Iterator[None]:
    """No warnings or log lines from torch and transformers while the model code runs: deprecation notices,
    config fix-ups and fake tensors' logged failures (the failure itself is reported in one line)."""
    import logging
    import warnings

    loggers = [logging.getLogger(n) for n in ("torch._subclasses.fake_tensor", "torch.distributed", "transformers",
                                             "peft", "torch", "torch.utils._pytree", "torchao")]
    levels = [lg.level for lg in loggers]
    try:
        from transformers.utils import logging as hf_logging

        hf_level: Optional[int] = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
    except ImportError:
        hf_level = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for lg in loggers:
            lg.setLevel(logging.CRITICAL)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)
            if hf_level is not None:
                hf_logging.set_verbosity(hf_level)



@contextmanager
def unpacked_positions() -> Iterator[None]:
    """transformers' packed-sequence detection answered as it answers for one sequence of positions ``0..s-1``
    per row (transformers 5.24 ``masking_utils.find_packed_sequence_indices``: None, no packing), which is what a
    training batch without a KV cache passes (its tensors are allocated as a real batch allocates them, and the
    answer a real batch reads from them given). Fake tensors cannot be read, so the function returns its packing
    mask instead, and ``create_causal_mask`` then builds a causal mask where a real batch gets none: SDPA runs
    with that mask instead of ``is_causal``, GQA models repeat keys and values to every head
    (``use_gqa_in_sdpa`` is false with a mask) and CPU SDPA converts the mask to the compute dtype, and a layer
    that is not checkpointed saves both (``2·a·(q − kv) + a·s`` bytes per token; Llama-3-8B: 4·h at s 2048).
    Without a cache is whenever transformers' checkpointing is on (it turns the cache off), so this was every
    2nd layer checkpointed's forward gap (docs/accuracy.md)."""
    import torch
    from transformers import masking_utils

    packed = masking_utils.find_packed_sequence_indices

    def unpacked(position_ids: Any) -> None:
        # the function's own tensors, as a real batch allocates them (its own lines), then the answer it reads
        first_dummy_value = position_ids[:, :1] - 1
        position_diff = torch.diff(position_ids, prepend=first_dummy_value, dim=-1)
        packed_sequence_mask = (position_diff != 1).cumsum(-1)
        (packed_sequence_mask[:, -1] == 0).all()
        return None

    masking_utils.find_packed_sequence_indices = unpacked
    try:
        yield
    finally:
        masking_utils.find_packed_sequence_indices = packed


def require_torch(extra: tuple[str, ...] = ()) -> None:
    import importlib.util

    for mod in ("torch", "transformers", *extra):
        if importlib.util.find_spec(mod) is None:
            raise VramscopeError("trace_missing", module=mod)


def equivalent_config(cfg: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """(config, architecture) that transformers builds natively with the same tensors.

    Remote-code families are never run: Baichuan (W_pack = fused q,k,v; ALiBi has no parameters) and
    InternLM2/3 (wqkv, w1/w3/w2) are built as Llama, ChatGLM (query_key_value, dense_h_to_4h = gate_up) as GLM,
    Kimi K2 (DeepSeek-V3's own remote code) as DeepSeek-V3 (``Family.trace_as`` names the conversion); an
    architecture transformers spells differently is renamed (:data:`ARCHITECTURE_SPELLING`).
    """
    mt = cfg.get("model_type")
    how = by_model_type(mt).trace_as if isinstance(mt, str) else ""
    if how == "baichuan":
        return {"model_type": "llama", "hidden_size": cfg["hidden_size"], "intermediate_size": cfg["intermediate_size"],
                "num_hidden_layers": cfg["num_hidden_layers"], "num_attention_heads": cfg["num_attention_heads"],
                "vocab_size": cfg["vocab_size"], "tie_word_embeddings": cfg.get("tie_word_embeddings", False),
                "max_position_embeddings": cfg.get("model_max_length", 4096)}, "LlamaForCausalLM"
    if how == "internlm":
        bias = cfg.get("bias", False) if mt == "internlm2" else cfg.get("qkv_bias", False)
        keys = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                "vocab_size", "tie_word_embeddings", "head_dim", "max_position_embeddings")
        out = {k: cfg[k] for k in keys if cfg.get(k) is not None}
        return {"model_type": "llama", "attention_bias": bias, **out}, "LlamaForCausalLM"
    if how == "chatglm":
        mq = cfg.get("multi_query_attention", False)
        return {"model_type": "glm", "hidden_size": cfg["hidden_size"], "intermediate_size": cfg["ffn_hidden_size"],
                "num_hidden_layers": cfg["num_layers"], "num_attention_heads": cfg["num_attention_heads"],
                "num_key_value_heads": cfg["multi_query_group_num"] if mq else cfg["num_attention_heads"],
                "head_dim": cfg.get("kv_channels", cfg["hidden_size"] // cfg["num_attention_heads"]),
                "vocab_size": cfg["padded_vocab_size"], "attention_bias": cfg.get("add_qkv_bias", False),
                "tie_word_embeddings": False}, "GlmForCausalLM"
    if how == "deepseek_v3":  # Kimi K2: DeepSeek-V3's remote code under a model_type of its own
        return {**cfg, "model_type": "deepseek_v3"}, "DeepseekV3ForCausalLM"
    arch = (cfg.get("architectures") or [""])[0]
    return cfg, ARCHITECTURE_SPELLING.get(arch, arch)


#: remote-code architecture names whose model transformers ships under another spelling, same tensors:
#: Kimi K2.5's config.json names its remote ``KimiK25ForConditionalGeneration`` (model_type ``kimi_k25``), which
#: transformers 5.24 implements as ``Kimi_K25ForConditionalGeneration`` (``models/kimi_k25/modeling_kimi_k25.py``)
ARCHITECTURE_SPELLING = {"KimiK25ForConditionalGeneration": "Kimi_K25ForConditionalGeneration"}


def config_for(model: ResolvedModel) -> dict[str, Any]:
    """A native config for the model: its own HF config, or a Llama config for a bare ``--params`` shape."""
    if model.hf_config is not None:
        return model.hf_config
    s = model.spec
    if model.kind == "params":
        return {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": s.hidden_size,
                "intermediate_size": s.intermediate_size, "num_hidden_layers": s.num_layers,
                "num_attention_heads": s.num_heads, "num_key_value_heads": s.num_kv_heads, "head_dim": s.head_dim,
                "vocab_size": s.vocab_size, "tie_word_embeddings": False}
    raise VramscopeError("trace_unsupported", reason=f"a {model.kind} source has no Hugging Face config; "
                                                     "pass the model's config.json or a catalog name")


def hf_config(model: ResolvedModel, attn: str) -> tuple[Any, str]:
    import transformers

    native, arch = equivalent_config(config_for(model))
    native = {k: v for k, v in native.items()
              if k not in ("auto_map", "quantization_config", "transformers_version", "_name_or_path")}
    try:
        config = transformers.AutoConfig.for_model(**native)
    except Exception as e:  # transformers validates configs strictly
        raise VramscopeError("trace_unsupported", reason=f"transformers cannot build this config ({e})") from None
    config._attn_implementation = {"flash": "sdpa"}.get(attn, attn)
    for sub in ("text_config", "vision_config"):
        if getattr(config, sub, None) is not None:
            getattr(config, sub)._attn_implementation = config._attn_implementation
    return config, arch


def model_class(config: Any, arch: str) -> Any:
    """The transformers class a config's ``architectures`` names, when it is one (a config is user input: any
    other name, or a name of something else in the package, falls back to the Auto class for the config)."""
    import transformers
    from transformers.modeling_utils import PreTrainedModel

    ok = isinstance(arch, str) and arch.isidentifier() and not arch.startswith("_")
    cls = getattr(transformers, arch, None) if ok else None
    if isinstance(cls, type) and issubclass(cls, PreTrainedModel):
        return cls
    if getattr(config, "is_encoder_decoder", False):
        return transformers.AutoModelForSeq2SeqLM
    return transformers.AutoModelForCausalLM


def build_model(model: ResolvedModel, dtype: Any, attn: str, init_weights: bool = True) -> Any:
    """The transformers model in ``dtype`` on the current default device / fake mode.

    ``init_weights=False`` skips transformers' weight initialisation (``initialize_weights``; tying still runs):
    a trace never reads the values, and some initialisers read them (SigLIP's ``trunc_normal_``), which fake
    tensors cannot do."""
    from transformers.modeling_utils import PreTrainedModel

    config, arch = hf_config(model, attn)
    cls = model_class(config, arch)
    make = cls._from_config if hasattr(cls, "_from_config") else cls.from_config  # an Auto class: from_config
    original = PreTrainedModel.__dict__.get("initialize_weights")
    if init_weights or original is None:
        return make(config, dtype=dtype)
    PreTrainedModel.initialize_weights = lambda self: None
    try:
        return make(config, dtype=dtype)
    finally:
        PreTrainedModel.initialize_weights = original


def apply_lora(model: Any, rank: int, targets: tuple[str, ...], dropout: float = 0.0, dora: bool = False) -> Any:
    """peft LoRA adapters as ``get_peft_model`` adds them, with peft's fp32 adapter weights.

    peft moves each new adapter to its base layer's device and dtype with ``Module.to()``, which fake tensors
    refuse ("Couldn't swap Linear.weight", ``shared/design/TRACE.md``). The adapters are created on the same
    (fake CPU) device in torch's default dtype, fp32, which is where peft's default
    ``autocast_adapter_dtype=True`` leaves them anyway, so the move is skipped while the model is wrapped.
    """
    import peft
    import torch
    from peft.tuners import tuners_utils

    target: Any = "all-linear" if "all-linear" in targets else list(targets)
    cfg = peft.LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=target, lora_dropout=dropout, use_dora=dora)
    layer_cls = tuners_utils.BaseTunerLayer
    original_move = layer_cls._move_adapter_to_device_of_base_layer
    original_to = torch.nn.Module.to

    def same_device_to(self: Any, *args: Any, **kwargs: Any) -> Any:
        device, _, _, _ = torch._C._nn._parse_to(*args, **kwargs)
        if device is None or device.type == "cpu":
            # everything already lives on the (fake) CPU; dtype moves would only cast fresh fp32 adapters
            # to the base dtype, which peft's default autocast_adapter_dtype=True undoes anyway
            return self
        return original_to(self, *args, **kwargs)

    layer_cls._move_adapter_to_device_of_base_layer = lambda self, *a, **k: None
    torch.nn.Module.to = same_device_to
    try:
        return peft.get_peft_model(model, cfg)
    finally:
        layer_cls._move_adapter_to_device_of_base_layer = original_move
        torch.nn.Module.to = original_to


def quantize_bnb_4bit(model: Any, quant: str, compute: Any) -> int:
    """Swap every ``nn.Linear`` of the decoder layers for bitsandbytes' ``Linear4bit`` holding the weight quantized
    on its own device, as transformers' bitsandbytes quantizer does (``integrations/bitsandbytes.py``
    ``replace_with_bnb_linear``: ``lm_head`` kept, ``Params4bit`` quantized when moved to its device): ``nf4``/``fp4``,
    ``-dq`` double quantization (``compress_statistics``), ``compute`` the ``bnb_4bit_compute_dtype``. Real tensors
    only: ``Params4bit`` cannot wrap a fake tensor (``_make_subclass``: "the raw Tensor object is already associated
    to a python object of type FakeTensor"), which is why the trace refuses QLoRA. Returns the linears swapped."""
    import bitsandbytes as bnb
    import torch

    quant_type = "fp4" if quant.startswith("fp4") else "nf4"
    nested = quant.endswith("-dq")
    swapped = 0
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if not isinstance(child, torch.nn.Linear) or ".layers." not in f".{name}.{child_name}":
                continue
            device = child.weight.device
            new = bnb.nn.Linear4bit(child.in_features, child.out_features, bias=child.bias is not None,
                                    compute_dtype=compute, compress_statistics=nested, quant_type=quant_type,
                                    device="meta")
            new.weight = bnb.nn.Params4bit(child.weight.data, requires_grad=False, compress_statistics=nested,
                                           quant_type=quant_type).to(device)
            if child.bias is not None:
                new.bias = torch.nn.Parameter(child.bias.data, requires_grad=False)
            setattr(module, child_name, new)
            del child
            swapped += 1
    model.is_loaded_in_4bit = True  # what peft's prepare_model_for_kbit_training and TRL read
    return swapped


def kbit_prepare(model: Any, prep: str) -> Any:
    """``--kbit-prep`` before the adapters: peft's ``prepare_model_for_kbit_training`` itself (``peft``, ``trl0``),
    checkpointing left to :func:`checkpoint_layers`."""
    import peft

    if prep in ("peft", "trl0"):
        model = peft.prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    return model


def kbit_after_adapters(model: Any, prep: str) -> None:
    """``--kbit-prep`` after ``get_peft_model``: TRL 0.x's ``peft_module_casting_to_bf16`` (huggingface/trl
    v0.13.0 ``trl/trainer/utils.py``), TRL 1.x's trainable parameters to bf16 (f2cd577 ``sft_trainer.py``)."""
    import torch

    if prep == "trl0":
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.LayerNorm) or "norm" in name:
                module.to(torch.float32)
            elif any(x in name for x in ("lm_head", "embed_tokens", "wte", "wpe")):
                if hasattr(module, "weight") and module.weight.dtype == torch.float32:
                    module.to(torch.bfloat16)
    elif prep == "trl":
        for p in model.parameters():
            if p.requires_grad:
                p.data = p.data.to(torch.bfloat16)


def checkpoint_layers(model: Any, every: int = 1) -> None:
    """Non-reentrant checkpointing of the decoder layers, as ``gradient_checkpointing_enable`` sets it up; with
    ``every > 1`` only every ``every``-th layer (torchtune's ``ac_mode: selective``, ``ac_option: every``: its
    wrapper counts layers from 1 and checkpoints those whose count divides by ``every``)."""
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if every == 1:
        return
    from transformers.modeling_layers import GradientCheckpointingLayer

    layers = [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]
    for count, layer in enumerate(layers, 1):
        layer.gradient_checkpointing = count % every == 0


def sac_policy() -> Any:
    """torchtitan's per-op ``SelectiveAC`` policy (pytorch/torchtitan b5bcd76, ``torchtitan/distributed/
    activation_checkpoint.py``; the same at v0.3.0): save the outputs of the compute-intensive ops
    (``get_default_op_list().compute_intensive_ops`` and SDPA's variants) except every second ``aten.mm`` of the
    block, recompute the rest. A fresh policy per call: the count restarts at each block's forward (and
    recompute), as its ``context_fn`` builds one per call. On the CPU, SDPA runs
    ``_scaled_dot_product_flash_attention_for_cpu``, saved here as the CUDA flash op it stands for."""
    import torch
    from torch._functorch.partitioners import get_default_op_list
    from torch.utils.checkpoint import CheckpointPolicy

    save_ops = {op.default for op in get_default_op_list().compute_intensive_ops}
    for name in ("_scaled_dot_product_cudnn_attention", "_scaled_dot_product_attention_math",
                 "_scaled_dot_product_fused_attention_overrideable", "max", "linear", "topk",
                 "_scaled_dot_product_flash_attention_for_cpu"):
        op = getattr(torch.ops.aten, name, None)
        if op is not None:
            save_ops.add(op.default)
    mm_ops = (torch.ops.aten.mm.default, torch.ops.aten.linear.default)
    meta = {"forward": 0, "recompute": 0}

    def wrapped(ctx: Any, func: Any, *args: Any, **kwargs: Any) -> Any:
        mode = "recompute" if ctx.is_recompute else "forward"
        if func in mm_ops:
            meta[mode] += 1
        if func in save_ops:
            if func in mm_ops and meta[mode] % 2 == 0:
                return CheckpointPolicy.PREFER_RECOMPUTE
            return CheckpointPolicy.MUST_SAVE
        return CheckpointPolicy.PREFER_RECOMPUTE

    return wrapped


def op_selective_checkpointing(model: Any) -> None:
    """torchtitan's per-op ``SelectiveAC`` (``sac_policy``) on every decoder layer: a non-reentrant checkpoint
    whose policy saves the compute-intensive ops' outputs except every second ``aten.mm``."""
    from torch.utils.checkpoint import create_selective_checkpoint_contexts

    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={
        "use_reentrant": False, "context_fn": lambda: create_selective_checkpoint_contexts(sac_policy())})


SELECTIVE = "vramscope_selective"


def selective_attention_checkpointing(model: Any) -> None:
    """Megatron-LM's selective recomputation (Korthikanti et al. 2022 §4.2): only the core attention (scores,
    softmax, attention·V) is checkpointed. The model's attention function is registered under a new name that
    runs it inside ``torch.utils.checkpoint`` (non-reentrant); masks are built as for the wrapped one."""
    import sys

    from torch.utils.checkpoint import checkpoint
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    config = model.config.get_text_config()
    impl = config._attn_implementation
    attn_module = next((m for n, m in model.named_modules() if n.endswith("self_attn")), None)
    inner = (getattr(sys.modules[type(attn_module).__module__], "eager_attention_forward", None)
             if impl == "eager" and attn_module is not None else ALL_ATTENTION_FUNCTIONS.get(impl))
    if attn_module is None or inner is None:
        raise VramscopeError("trace_unsupported", reason="selective checkpointing wraps the attention function of "
                                                         "self_attn modules, which this model does not have; use "
                                                         "--grad-checkpointing full")

    def wrapped(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, **kwargs: Any) -> Any:
        def core(q: Any, k: Any, v: Any, m: Any) -> Any:
            out, _ = inner(module, q, k, v, m, **kwargs)
            return out

        return checkpoint(core, query, key, value, attention_mask, use_reentrant=False), None

    ALL_ATTENTION_FUNCTIONS.register(SELECTIVE, wrapped)
    ALL_MASK_ATTENTION_FUNCTIONS.register(SELECTIVE, ALL_MASK_ATTENTION_FUNCTIONS[impl])
    for cfg in (model.config, config):
        cfg._attn_implementation_internal = SELECTIVE


def convert_float8(model: Any, recipe: str, all_gather: bool = False) -> int:
    """torchao 0.18.0's ``convert_to_float8_training`` on the decoder's linears, as torchtitan's
    ``Float8LinearConverter`` applies it (torchtitan 0.3.0 ``components/quantization/float8.py``): ``tensorwise``
    is ``Float8LinearConfig(enable_fsdp_float8_all_gather=all_gather)``, ``rowwise`` and ``rowwise_with_gw_hp`` are
    ``Float8LinearConfig.from_recipe_name``; the output head is filtered out (torchtitan's ``filter_fqns``
    ``["output"]``, ``lm_head`` in transformers). torchao's real ``torch._scaled_mm`` path runs, never its
    ``emulate`` one: on fake tensors its meta kernel gives the shapes, and torch 2.13's CPU build has a float8
    ``_scaled_mm`` (tensorwise and rowwise scales) for runs on real CPU tensors. Returns the linears converted."""
    from torchao.float8 import Float8LinearConfig, convert_to_float8_training
    from torchao.float8.float8_linear import Float8Linear

    if recipe == "tensorwise":
        config = Float8LinearConfig(enable_fsdp_float8_all_gather=all_gather)
    else:
        config = Float8LinearConfig.from_recipe_name(recipe)
    base_model = model.get_base_model() if hasattr(model, "get_base_model") else model
    head = base_model.get_output_embeddings()
    convert_to_float8_training(base_model, config=config, module_filter_fn=lambda mod, fqn: mod is not head)
    return sum(isinstance(m, Float8Linear) for m in base_model.modules())
