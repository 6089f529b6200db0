"""Plausible limits of a model's shape: the one table every source and :class:`ModelSpec` check against.

A shape outside these limits cannot be a real model, so vramscope refuses it with one line naming the field
instead of answering with a number nobody could use. The limits also keep the cost of an estimate bounded
(the spec, the tensor inventory and every sum over layers stay small): before them a config.json with 10^6
layers took 148 s and 2.6 GB, and one with 10^9 layers never finished.

Each upper limit sits well above (4× to 50×) the largest published model, so no real checkpoint is refused;
the real maxima below are from the published ``config.json`` files (2025):

=============================  ==========  =====================================================================
field                          limit       largest real value
=============================  ==========  =====================================================================
num_layers                     1024        126 (Llama-3.1-405B); 118 (PaLM 540B), 105 (MT-NLG 530B), 96 (GPT-3)
hidden_size                    131072      20480 (MT-NLG 530B); 18432 (PaLM), 16384 (Llama-3.1-405B)
num_heads / num_kv_heads       16384       128 (Llama-3.1-405B, DeepSeek-V3, MT-NLG)
head_dim                       8192        256 (Gemma 2/3, PaLM); 576 (a latent-absorbed DeepSeek GGUF key)
intermediate_size              1000000     73728 (PaLM 540B); 53248 (Llama-3.1-405B)
vocab_size                     10^7        262208 (Gemma 3); 256000 (Gemma 1/2, PaLM); 250112 (mT5)
max_position_embeddings        2^27        10485760 (Llama 4 Scout, 10M tokens)
sliding_window                 < 10^9      131072; larger values are read as "no window" (configs use 2^32-1)
num_experts                    8192        2048 (Switch-C); 512 (Qwen3-Next), 384 (Kimi K2), 256 (DeepSeek-V3)
experts_per_token              ≤ experts   10 (Qwen3-Next), 8 (DeepSeek-V3, Kimi K2)
MLA ranks (q / kv LoRA rank)   131072      1536 / 512 (DeepSeek-V3)
MLA head dims (nope/rope/v)    8192        128 / 64 / 128 (DeepSeek-V2/V3)
vision image_size              65536       896 (Gemma 3 SigLIP); patch_size 14–16, 3 channels
vision counts                  4096        tiles 4, aspect ratios 8, global layers 8 (Llama-3.2-Vision); merge 2
token_types                    1024        2 (BERT), 1 (RoBERTa)
relative_attention_buckets     65536       32 (T5, Flan-T5)
=============================  ==========  =====================================================================

``MIN_PARAMS``: the smallest real language models hold about 10^5 parameters (sshleifer/tiny-gpt2: 102,714,
almost all of them its 50,257-token embedding); a bare ``--params`` below that is a typo (``--params 0.5``).
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from ..units import printable


class Limit(NamedTuple):
    minimum: int
    maximum: int
    real: str  # the largest real value, shown when a value is too large


#: field (a ModelSpec field, or the part of a nested spec named after it) → the allowed range
LIMITS: dict[str, Limit] = {
    "num_layers": Limit(1, 1024, "126 (Llama-3.1-405B)"),
    "num_decoder_layers": Limit(0, 1024, "126 (Llama-3.1-405B)"),
    "hidden_size": Limit(1, 131072, "20480 (MT-NLG 530B)"),
    "num_heads": Limit(1, 16384, "128 (Llama-3.1-405B)"),
    "num_kv_heads": Limit(1, 16384, "128 (Llama-3.1-405B)"),
    "head_dim": Limit(1, 8192, "256 (Gemma 2)"),
    "intermediate_size": Limit(1, 1_000_000, "73728 (PaLM 540B)"),
    "vocab_size": Limit(1, 10_000_000, "262208 (Gemma 3)"),
    "max_position_embeddings": Limit(0, 2**27, "10485760 (Llama 4 Scout)"),
    "learned_positions": Limit(0, 2**27, "10485760 (Llama 4 Scout)"),
    "sliding_window": Limit(1, 10**9 - 1, "131072"),
    "token_types": Limit(0, 1024, "2 (BERT)"),
    "relative_attention_buckets": Limit(0, 65536, "32 (T5)"),
    "num_experts": Limit(1, 8192, "2048 (Switch-C)"),
    "experts_per_token": Limit(1, 8192, "10 (Qwen3-Next)"),
    "expert_intermediate_size": Limit(1, 1_000_000, "73728 (PaLM 540B)"),
    "shared_intermediate_size": Limit(0, 1_000_000, "73728 (PaLM 540B)"),
    "q_lora_rank": Limit(1, 131072, "1536 (DeepSeek-V3)"),
    "kv_lora_rank": Limit(1, 131072, "512 (DeepSeek-V3)"),
    "qk_nope_head_dim": Limit(1, 8192, "128 (DeepSeek-V3)"),
    "qk_rope_head_dim": Limit(1, 8192, "64 (DeepSeek-V3)"),
    "v_head_dim": Limit(1, 8192, "128 (DeepSeek-V3)"),
    "image_size": Limit(1, 65536, "896 (Gemma 3)"),
    "patch_size": Limit(1, 65536, "16 (SigLIP)"),
    "num_channels": Limit(1, 64, "3 (RGB)"),
    # a vision config's small counts: temporal patch, merge size, deepstack mergers, feature layers, tiles
    "vision_count": Limit(0, 4096, "8 (Llama-3.2-Vision global layers, aspect ratios)"),
    "norms_per_layer": Limit(1, 4, "4 (Gemma 2)"),
    # one layer's conv or recurrent state values for one sequence (model/spec.py StateSpec)
    "state_values": Limit(0, 2**31, "2097152 (Bamba: 128 heads × 64 × 256)"),
}

#: the smallest parameter count of a real language model (module docstring)
MIN_PARAMS = 100_000

#: the longest text from a config that a message quotes
SHOWN_CHARS = 40


def shown(value: Any, limit: int = SHOWN_CHARS) -> str:
    """``value`` for a one-line message: JSON spelling, printable, at most ``limit`` characters.

    Safe for anything a parsed config can hold (a 10^6-item list, a string of a megabyte, a 5,000-digit int)."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int):
        if value.bit_length() > 128:
            return f"{'-' if value < 0 else ''}<an integer of about {int(value.bit_length() * 0.30103)} digits>"
        text = str(value)
    elif isinstance(value, float):
        text = repr(value)
    elif isinstance(value, str):
        text = value[: limit + 1]
    elif isinstance(value, (list, tuple)) and len(value) > 8:
        text = f"<a list of {len(value)} items>"
    elif isinstance(value, dict) and len(value) > 8:
        text = f"<an object with {len(value)} keys>"
    else:
        try:
            text = json.dumps(value, default=lambda o: f"<{type(o).__name__}>")[: limit + 1]
        except (ValueError, RecursionError):
            text = f"<{type(value).__name__}>"
    return printable(text, limit)
