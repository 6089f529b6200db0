"""Build a catalog config with transformers on the meta device (no memory) and count its parameters.

Remote-code families (their code is never run) are built as the native architecture they are equivalent to;
``equivalent_config`` documents each mapping.
"""

from __future__ import annotations

from typing import Any


def equivalent_config(cfg: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """(config, architecture) that transformers can build natively with the same tensors."""
    mt = cfg.get("model_type")
    if mt == "baichuan":  # W_pack = q,k,v fused; NormHead = lm_head; ALiBi has no parameters
        return {"model_type": "llama", "hidden_size": cfg["hidden_size"], "intermediate_size": cfg["intermediate_size"],
                "num_hidden_layers": cfg["num_hidden_layers"], "num_attention_heads": cfg["num_attention_heads"],
                "vocab_size": cfg["vocab_size"], "tie_word_embeddings": cfg.get("tie_word_embeddings", False)}, "LlamaForCausalLM"
    if mt in ("internlm2", "internlm3"):  # wqkv fused GQA; w1/w3/w2 = gate/up/down
        bias = cfg.get("bias", False) if mt == "internlm2" else cfg.get("qkv_bias", False)
        keys = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                "vocab_size", "tie_word_embeddings", "head_dim")
        out = {k: cfg[k] for k in keys if cfg.get(k) is not None}
        return {"model_type": "llama", "attention_bias": bias, **out}, "LlamaForCausalLM"
    if mt == "chatglm":  # query_key_value fused; dense_h_to_4h = gate_up; output_layer = lm_head
        mq = cfg.get("multi_query_attention", False)
        return {"model_type": "glm", "hidden_size": cfg["hidden_size"], "intermediate_size": cfg["ffn_hidden_size"],
                "num_hidden_layers": cfg["num_layers"], "num_attention_heads": cfg["num_attention_heads"],
                "num_key_value_heads": cfg["multi_query_group_num"] if mq else cfg["num_attention_heads"],
                "head_dim": cfg.get("kv_channels", cfg["hidden_size"] // cfg["num_attention_heads"]),
                "vocab_size": cfg["padded_vocab_size"], "attention_bias": cfg.get("add_qkv_bias", False),
                "tie_word_embeddings": False}, "GlmForCausalLM"
    return cfg, (cfg.get("architectures") or [""])[0]


def meta_param_count(cfg: dict[str, Any]) -> int:
    import torch
    import transformers

    native, arch = equivalent_config(cfg)
    native = {k: v for k, v in native.items() if k not in ("auto_map", "quantization_config", "transformers_version")}
    config = transformers.AutoConfig.for_model(**native)
    cls = getattr(transformers, arch, None)
    if cls is None:
        cls = transformers.AutoModelForCausalLM
    with torch.device("meta"):
        model = cls._from_config(config)
    count = sum(p.numel() for p in model.parameters())
    # transformers 5 always ties T5's lm_head to the shared embedding; T5 v1.1 / Flan-T5 checkpoints ship an
    # untied lm_head (tie_word_embeddings=false), which is what occupies memory when they are loaded.
    if native.get("model_type") == "t5" and native.get("tie_word_embeddings") is False \
            and int(transformers.__version__.split(".")[0]) >= 5 and model.config.tie_word_embeddings:
        count += native["vocab_size"] * native["d_model"]
    return count
