"""The seed estimator: the DataLearner (2023) article's rules, exactly, labelled as a rule of thumb.

* inference: ``P × bytes per parameter`` (fp32 4, fp16/bf16 2, int8 1, int4 0.5): 7B in fp16 → 14 GB,
  7B in int4 → 3.5 GB;
* pretraining: ``(P + B·A + P + 2P) × 4`` bytes: fp32 weights, activations of B samples of A floats,
  fp32 gradients and two fp32 Adam states;
* fine-tuning: the same rule with gradients and Adam states for the trainable parameters only (weights are
  always held): ``(P + B·A + P_t + 2·P_t) × 4``.

A (activation floats per sample) defaults to a value derived from the model shape, from Korthikanti et al.
2022 (arXiv 2205.05198, eq. 2, whose 34·s·h + 5·heads·s² bytes per layer are at 2 bytes a value):
``A = layers × s × h × (17 + 2.5 × heads × s / h)``. ``--activations-per-sample`` overrides it.
"""

from __future__ import annotations

from ..memory.weights import SEED_QUANT_BYTES
from ..result import Assumption
from ..sources.base import ResolvedModel
from ..workload import Workload
from .common import shape_note, trainable_for

SEED_DTYPE_BYTES = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0}


def activations_per_sample(model: ResolvedModel, seq: int) -> int:
    s = model.spec
    layers = s.num_layers + s.num_decoder_layers
    return int(layers * seq * s.hidden_size * (17 + 2.5 * s.num_heads * seq / s.hidden_size))


def estimate_seed(model: ResolvedModel, w: Workload) -> tuple[dict[str, dict[str, int]], tuple[Assumption, ...], int]:
    """Phases (a single ``steady`` phase), assumptions and the trainable parameter count."""
    p = model.params
    notes = [Assumption("a_seed_rule")]
    if w.task == "inference":
        if w.quant != "none":
            key = "int8" if w.quant == "int8" else "int4"
            per = SEED_QUANT_BYTES.get(key, 0.5)
            notes.append(Assumption("a_seed_inference_quant", {"quant": key, "bytes": per}))
        else:
            dtype = w.dtype or "fp16"
            per = SEED_DTYPE_BYTES[dtype]
            notes.append(Assumption("a_seed_inference", {"dtype": dtype, "bytes": per}))
        return {"steady": {"weights": int(p * per)}}, tuple(notes) + shape_note(model), 0
    t = trainable_for(model, w)
    a = w.activations_per_sample or activations_per_sample(model, w.seq)
    if w.activations_per_sample is None:
        notes.append(Assumption("a_seed_activations", {"a": f"{a:,}", "seq": w.seq}))
    phases = {"steady": {
        "weights": 4 * p,
        "activations": 4 * w.batch * a,
        "gradients": 4 * t.params,
        "optimizer_states": 8 * t.params,
    }}
    notes.append(Assumption("a_seed_training", {"trainable": f"{t.params:,}"}))
    return phases, tuple(notes) + shape_note(model), t.params
