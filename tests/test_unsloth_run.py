"""Unsloth 2026.8.13's own autograd code run on CPU tensors under vramscope's tracker (tests/unsloth_run.py), against
vramscope's Unsloth model (memory/activations.py ``_unsloth_layer_bytes``, the recompute moment;
estimators/training.py ``unsloth_offload``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import has_module

HERE = Path(__file__).resolve().parent
needs_torch = pytest.mark.skipif(not (has_module("torch") and has_module("transformers")),
                                 reason="needs torch and transformers")


def _run(*args: str, env: dict | None = None) -> dict:
    out = subprocess.run([sys.executable, str(HERE / "unsloth_run.py"), *args], capture_output=True, text=True,
                         timeout=600, env={**os.environ, "PYTHONPATH": str(HERE.parent / "src"), **(env or {})})
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@needs_torch
def test_unsloth_kernels_save_what_vramscope_counts():
    """LoRA_QKV, LoRA_W, LoRA_MLP and Fast_RMS_Layernorm (unsloth/kernels, 2026.8.13), one Llama layer composed as
    Unsloth's fast forward composes it, bf16: bytes per token saved and the transient peaks, exact where they
    are tensors of the token count."""
    from vramscope.memory.activations import TrainFlags, layer_bytes_per_token, training_activations
    from vramscope.memory.trainable import lora_modules
    from vramscope.sources.hf_config import spec_from_config

    r = _run("kernels")
    sh, a = r["shape"], 2.0
    h, inter, q, kv = sh["h"], sh["inter"], sh["h"], sh["kv_heads"] * sh["h"] // sh["heads"]
    # each piece: what it saves beyond its input, its output
    assert r["rms_norm"]["saved_new"] == 4.0 and r["rms_norm"]["output"] == a * h  # fp32 rstd; X is the input
    assert r["lora_qkv"]["saved_new"] == 0.0 and r["lora_qkv"]["output"] == a * (q + 2 * kv)  # X only
    assert r["lora_o"]["saved_new"] == 0.0  # X only
    assert r["lora_mlp"]["saved_new"] == 2 * a * inter  # e and g (X is the input)
    # LoRA_MLP.backward: DW (b·s·I) and rank-wide products; LoRA_QKV writes dX into X (under one hidden width)
    assert a * inter <= r["lora_mlp"]["backward_transient"] < a * inter + a * h
    assert r["lora_qkv"]["backward_transient"] < a * h
    assert r["lora_mlp"]["forward_transient"] >= a * inter  # h = swiglu(e, g) until the down projection
    # the layer: vramscope's per-token bytes are what it keeps beyond its input and output, plus the input
    # (its first norm saves it)
    cfg = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": h,
           "intermediate_size": inter, "num_hidden_layers": 2, "num_attention_heads": sh["heads"],
           "num_key_value_heads": sh["kv_heads"], "vocab_size": 128, "max_position_embeddings": 4096,
           "torch_dtype": "bfloat16"}
    spec = spec_from_config(cfg, "tiny")
    flags = TrainFlags(base=False, embeddings=False, lora=lora_modules(spec, ("all-linear",)), lora_rank=sh["r"],
                       unsloth=True)
    per_layer = layer_bytes_per_token(spec, sh["seq"], a, "sdpa", flags)
    assert per_layer == r["layer"]["saved_new"] + a * h
    # the recompute moment: the checkpoint's buffer holding the reloaded input (what the first norm saves), the
    # layer's other saved tensors, its output and the output gradient; LoRA_MLP.backward's DW
    acts = training_activations(spec, sh["batch"], sh["seq"], a, "sdpa", True, flags)
    tokens = r["tokens"]
    assert acts.one_layer == tokens * (a * h + r["layer"]["saved_new"] + 2 * a * h)
    assert acts.layer_backward_extra == tokens * a * inter


zoo = os.environ.get("VRAMSCOPE_UNSLOTH_ZOO", "")
needs_zoo = pytest.mark.skipif(not (Path(zoo) / "unsloth_zoo" / "gradient_checkpointing.py").is_file(),
                               reason="unsloth-zoo (LGPL-3.0, not vendored): set VRAMSCOPE_UNSLOTH_ZOO to an extracted "
                                      "unsloth_zoo-2026.8.13 wheel (pip download --no-deps unsloth_zoo==2026.8.13)")


@needs_torch
@needs_zoo
def test_unsloth_offloaded_checkpointing_keeps_last_input_and_buffers():
    """UnslothCheckpointFunction over 4 layers, 3 steps: step 1 offloads every input (one buffer, the second at its
    initial 2 MiB); from step 2 the last input stays and, with more than 512 MiB free, the second buffer is full
    size — vramscope's GPU share: the last input and two buffers."""
    from dataclasses import replace

    from vramscope.estimators import training
    from vramscope.memory.activations import TrainingActivations
    from vramscope.workload import make_workload
    from vramscope.api import load_model

    roomy, tight = _run("checkpoint", str(8 * 2**30)), _run("checkpoint", str(256 * 2**20))
    assert [(s["kept_inputs"], s["gpu_buffers"]) for s in roomy["steps"]] == [(0.0, 1.5), (1.0, 2.0), (1.0, 2.0)]
    assert [(s["kept_inputs"], s["gpu_buffers"]) for s in tight["steps"]] == [(0.0, 1.5), (1.0, 1.0), (1.0, 1.0)]
    spec = load_model("llama-3-8b").spec
    w = make_workload(task="finetune", method="lora", framework="unsloth", seq=2048, batch=2)
    one = 2 * 2048 * spec.hidden_size * 2
    n = spec.num_layers
    acts = TrainingActivations(layers=n * one, loss_resident=0, loss_forward_extra=0, loss_backward_extra=0,
                               one_layer=0)
    out, _host = training.unsloth_offload(spec, w, acts, 2.0, [])
    steady = roomy["steps"][-1]
    assert out.layers == (steady["kept_inputs"] + steady["gpu_buffers"]) * one
    assert out.one_layer == one  # the second buffer, alive beside the recomputed layer
    assert replace(out, layers=0, one_layer=0) == replace(acts, layers=0)
    # before the double buffer (unsloth-zoo 2026.4.1 and older): the tight run's single buffer
    w_old = make_workload(task="finetune", method="lora", framework="unsloth", seq=2048, batch=2,
                          unsloth_version="2026.4.1")
    old, _ = training.unsloth_offload(spec, w_old, acts, 2.0, [])
    single = tight["steps"][-1]
    assert old.layers == (single["kept_inputs"] + single["gpu_buffers"]) * one and old.one_layer == 0


zoo_2024 = os.environ.get("VRAMSCOPE_UNSLOTH_ZOO_2024", "")
needs_zoo_2024 = pytest.mark.skipif(
    not (Path(zoo_2024) / "unsloth_zoo" / "gradient_checkpointing.py").is_file(),
    reason="unsloth-zoo (LGPL-3.0, not vendored): set VRAMSCOPE_UNSLOTH_ZOO_2024 to an extracted "
           "unsloth_zoo-2024.12.7 wheel (pip download --no-deps unsloth_zoo==2024.12.7)")


@needs_torch
@needs_zoo_2024
def test_unsloth_2024_checkpointer_keeps_nothing_on_the_device():
    """Unsloth_Offloaded_Gradient_Checkpointer (unsloth_zoo 2024.12.7, what unsloth 2024.12.4's Llama forward applies)
    over 4 layers, 2 steps: every input, the last one's too, is a host copy at the end of forward, none stays on the
    device, and backward reloads one at a time — vramscope's GPU share for Unsloth before 2025.3: no input and no
    buffer (the reloaded input is the recomputed layer's first norm's saved input, in one_layer), host: every input."""
    from vramscope.api import load_model
    from vramscope.estimators import training
    from vramscope.memory.activations import TrainingActivations
    from vramscope.workload import make_workload

    r = _run("checkpoint2024", env={"VRAMSCOPE_UNSLOTH_ZOO_2024": zoo_2024})
    n = r["layers"]
    assert [(s["kept_inputs"], s["host_copies"], s["reloads_at_once"], s["host_after_backward"])
            for s in r["steps"]] == [(0.0, n, 1, 0)] * 2
    spec = load_model("llama-3-8b").spec
    one = 2 * 2048 * spec.hidden_size * 2
    acts = TrainingActivations(layers=spec.num_layers * one, loss_resident=0, loss_forward_extra=0,
                               loss_backward_extra=0, one_layer=0)
    w = make_workload(task="finetune", method="lora", framework="unsloth", seq=2048, batch=2,
                      unsloth_version="2024.12.4")
    out, host = training.unsloth_offload(spec, w, acts, 2.0, [])
    steady = r["steps"][-1]
    assert out.layers == steady["kept_inputs"] * one and out.one_layer == 0
    assert host == steady["host_copies"] / n * spec.num_layers * one  # no pre-allocated host buffers
    # 2025.3 onwards (UnslothCheckpointFunction): the last input and a buffer stay on the device
    w_new = make_workload(task="finetune", method="lora", framework="unsloth", seq=2048, batch=2,
                          unsloth_version="2025.3.1")
    new, _ = training.unsloth_offload(spec, w_new, acts, 2.0, [])
    assert new.layers == 2 * one


def _triton_root() -> str | None:
    """Where triton is: VRAMSCOPE_TRITON (a ``pip install --target`` folder, as .ci/run makes one, kept off the
    venv so torch's own compile tests never see it), else an installed triton."""
    import importlib.util

    target = os.environ.get("VRAMSCOPE_TRITON", "")
    if target and (Path(target) / "triton" / "__init__.py").is_file():
        return target
    spec = importlib.util.find_spec("triton")
    return None if spec is None or not spec.origin else str(Path(spec.origin).parent.parent)


needs_triton = pytest.mark.skipif(_triton_root() is None,
                                  reason="needs triton for its interpreter (TRITON_INTERPRET=1; torch's CPU wheel "
                                         "does not bring it): pip install triton==3.9.0")


@needs_torch
@needs_triton
def test_unsloth_loss_and_rope_kernels_under_the_triton_interpreter():
    """Unsloth 2026.8.13's Fast_CrossEntropyLoss and fast RoPE (their real Triton kernels, interpreted on CPU):
    the loss keeps the logits themselves, fp32 losses and log-sum-exp per row, and writes its gradient into the
    logits (nothing per row in backward); RoPE rotates q and k in place without position ids, and with them
    (Fast_RoPE_Embedding_QK on the transposed views) clones q and k in forward and the gradients in backward —
    a transient of a·(q+kv) per token, under what vramscope already takes for the recomputed layer's backward
    (LoRA_MLP's DW, a·I), and no tensor kept beyond what attention saves but 4 bytes per token of int32 indices."""
    from vramscope.memory.activations import TrainFlags, training_activations
    from vramscope.memory.trainable import lora_modules
    from vramscope.sources.hf_config import spec_from_config

    r = _run("triton", env={"PYTHONPATH": os.pathsep.join([str(HERE.parent / "src"), _triton_root()])})
    for case in r["loss"]:
        assert case["saves_logits_itself"] and case["grad_written_into_logits"]
        assert [d for d, _ in case["saved"]] == ["bfloat16", "float32", "int64"]  # logits, logsumexp, labels
        assert case["forward_new_per_row"] == 8.0  # fp32 losses and logsumexp (the chunked one reduced and freed)
        assert case["backward_peak_over_start_per_row"] * case["rows"] <= 1024  # two scalars, at any vocabulary
        assert abs(case["loss"] - case["reference"]) < 1e-4 and case["grad_max_error"] < 1e-2
    assert r["loss"][1]["chunks"] == 2  # the chunked kernel above 65536
    plain, positions = r["rope"]
    a, heads, kv_heads, hd = 2, 8, 2, 64
    qkv = a * (heads + kv_heads) * hd
    assert plain["q_in_place"] and plain["k_in_place"] and plain["dq_written_into_incoming_grad"]
    assert plain["forward_new_per_token"] == 0 and plain["backward_rope_peak_over_start_per_token"] == 0
    assert not positions["q_in_place"] and positions["forward_new_per_token"] == qkv + 4
    assert positions["backward_rope_peak_over_start_per_token"] == qkv
    assert r["rope_fp32_max_error"] == [0.0, 0.0]
    # against vramscope at the run's widths: the RoPE backward clones are below the DW the model takes
    cfg = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": heads * hd,
           "intermediate_size": 1408, "num_hidden_layers": 2, "num_attention_heads": heads,
           "num_key_value_heads": kv_heads, "vocab_size": 128, "max_position_embeddings": 4096,
           "torch_dtype": "bfloat16"}
    spec = spec_from_config(cfg, "tiny")
    flags = TrainFlags(base=False, embeddings=False, lora=lora_modules(spec, ("all-linear",)), lora_rank=16,
                       unsloth=True)
    acts = training_activations(spec, 1, 128, a, "sdpa", True, flags)
    assert positions["backward_rope_peak_over_start_per_token"] * 128 < acts.layer_backward_extra
    assert 4 * 128 < 0.001 * acts.one_layer
