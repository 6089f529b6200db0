"""Build a catalog config with transformers on the meta device (no memory) and count its parameters.

Remote-code families (their code is never run) are built as the native architecture they are equivalent to;
``equivalent_config`` documents each mapping.
"""

from __future__ import annotations

from typing import Any

from vramscope.trace.build import equivalent_config


def _build_native(cfg: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """(meta-device model, native config) for a catalog config, remote-code families built as their native
    equivalent."""
    import torch
    import transformers

    native, arch = equivalent_config(cfg)
    native = {k: v for k, v in native.items() if k not in ("auto_map", "quantization_config", "transformers_version")}
    config = transformers.AutoConfig.for_model(**native)
    cls = getattr(transformers, arch, None) if arch else None
    if cls is None:
        cls = transformers.AutoModelForSeq2SeqLM if config.is_encoder_decoder else transformers.AutoModelForCausalLM
    make = cls._from_config if hasattr(cls, "_from_config") else cls.from_config  # an Auto class: from_config
    with torch.device("meta"):
        model = make(config)
    return model, native


def _count(model: Any, native: dict[str, Any]) -> int:
    import transformers

    count = sum(p.numel() for p in model.parameters())
    # transformers 5 always ties T5's lm_head to the shared embedding; T5 v1.1 / Flan-T5 checkpoints ship an
    # untied lm_head (tie_word_embeddings=false), which is what occupies memory when they are loaded.
    if native.get("model_type") == "t5" and native.get("tie_word_embeddings") is False \
            and int(transformers.__version__.split(".")[0]) >= 5 and model.config.tie_word_embeddings:
        count += native["vocab_size"] * native["d_model"]
    return count


def meta_param_count(cfg: dict[str, Any]) -> int:
    return _count(*_build_native(cfg))


def meta_count_and_tied(cfg: dict[str, Any]) -> tuple[int, bool]:
    """(parameter count, whether the output head is the input embedding) of one meta-device build. T5 v1.1 /
    Flan-T5 checkpoints with ``tie_word_embeddings: false`` are reported untied (see ``_count``)."""
    model, native = _build_native(cfg)
    tied = meta_tied_embeddings(model)
    if native.get("model_type") == "t5" and native.get("tie_word_embeddings") is False:
        tied = False
    return _count(model, native), tied


def meta_model(cfg: dict[str, Any]) -> Any:
    """The transformers model of ``cfg`` on the meta device (the class its ``architectures`` names, else the
    task's Auto class), built the way ``meta_param_count`` builds it."""
    import torch
    import transformers

    native = {k: v for k, v in cfg.items() if k not in ("auto_map", "quantization_config", "transformers_version")}
    config = transformers.AutoConfig.for_model(**native)
    arch = (native.get("architectures") or [""])[0]
    cls = getattr(transformers, arch, None) if arch else None
    if cls is None:
        cls = transformers.AutoModelForSeq2SeqLM if config.is_encoder_decoder else transformers.AutoModelForCausalLM
    make = cls._from_config if hasattr(cls, "_from_config") else cls.from_config
    with torch.device("meta"):
        return make(config)


def meta_tied_embeddings(model: Any) -> bool:
    out = model.get_output_embeddings()
    return out is not None and out.weight is model.get_input_embeddings().weight
