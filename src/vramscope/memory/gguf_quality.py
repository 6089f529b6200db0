"""What llama.cpp says of each GGUF file type's quality: its ``llama-quantize`` table (``QUANT_OPTIONS`` in
ggml-org/llama.cpp ``tools/quantize/quantize.cpp``, read at commit 03161a4): the perplexity increase it measured
against the 16-bit model (Llama-3-8B for the k-quants and legacy types, Mistral-7B for F16/BF16), and the types it
refuses to make without an importance matrix (``Please do not use IQ1_S, IQ1_M, IQ2_S, IQ2_XXS, IQ2_XS or Q2_K_S
quantization without an importance matrix``). The i-quants' rows give only their bits per weight: no perplexity is
stated, and none is made up here.
"""

from __future__ import annotations

from typing import Any

#: perplexity increase over the 16-bit model, and the model it was measured on
PPL_DELTA = {
    "Q4_0": (0.4685, "Llama-3-8B"), "Q4_1": (0.4511, "Llama-3-8B"), "Q5_0": (0.1316, "Llama-3-8B"),
    "Q5_1": (0.1062, "Llama-3-8B"), "Q2_K": (3.5199, "Llama-3-8B"), "Q2_K_S": (3.1836, "Llama-3-8B"),
    "Q3_K_S": (1.6321, "Llama-3-8B"), "Q3_K_M": (0.6569, "Llama-3-8B"), "Q3_K_L": (0.5562, "Llama-3-8B"),
    "Q4_K_S": (0.2689, "Llama-3-8B"), "Q4_K_M": (0.1754, "Llama-3-8B"), "Q5_K_S": (0.1049, "Llama-3-8B"),
    "Q5_K_M": (0.0569, "Llama-3-8B"), "Q6_K": (0.0217, "Llama-3-8B"), "Q8_0": (0.0026, "Llama-3-8B"),
    "F16": (0.0020, "Mistral-7B"), "BF16": (-0.0050, "Mistral-7B"),
}
#: llama-quantize refuses these without --imatrix
NEEDS_IMATRIX = ("IQ1_S", "IQ1_M", "IQ2_S", "IQ2_XXS", "IQ2_XS", "Q2_K_S")
#: ternary types, for models trained with ternary weights (BitNet b1.58)
TERNARY = ("TQ1_0", "TQ2_0")


def quality_note(ftype: str) -> tuple[str, dict[str, Any]]:
    """The i18n key and parameters of a file type's quality note."""
    if ftype == "F32":
        return "lq_reference", {}
    if ftype in TERNARY:
        return "lq_ternary", {}
    imatrix = ftype in NEEDS_IMATRIX
    if ftype in PPL_DELTA:
        delta, model = PPL_DELTA[ftype]
        return ("lq_ppl_imatrix" if imatrix else "lq_ppl"), {"ppl": f"{delta:+.4f}", "model": model}
    return ("lq_imatrix" if imatrix else "lq_unmeasured"), {}
