"""--framework litgpt (issue #19): LitGPT 0.5.13's recipe defaults, its CLI and config-hub YAML, and its own model
code traced (litgpt.model.GPT / litgpt.lora.GPT on fake tensors, and on real CPU tensors for a tiny config)
against the analytic estimate.

The tests that run LitGPT need it installed (CI: the README's test command installs ``litgpt==0.5.13`` with
``--no-deps``: its huggingface-hub<1.4 pin conflicts with transformers); without it they skip, saying so."""

from __future__ import annotations

import importlib.util
import json
import math
import os
from pathlib import Path

import pytest

import vramscope
from vramscope.commandline import estimate_kwargs, parse_command
from vramscope.configs import from_training_config
from vramscope.errors import VramscopeError
from vramscope.frameworks import LITGPT_MODELS, PROFILES, litgpt_model, litgpt_name_for
from vramscope.workload import make_workload

HAVE_LITGPT = importlib.util.find_spec("litgpt") is not None and importlib.util.find_spec("torch") is not None
#: .ci/run sets it: there a missing litgpt is a failure, not a skip
REQUIRED = os.environ.get("VRAMSCOPE_REQUIRE_LITGPT") == "1"
needs_litgpt = pytest.mark.skipif(not HAVE_LITGPT and not REQUIRED,
                                  reason="litgpt is not installed: pip install --no-deps litgpt==0.5.13 (the "
                                         "README's test command does)")
ROOT = Path(__file__).resolve().parent.parent
EX = ROOT / "examples"
TEST_COMMAND = "pip install -e '.[test]' && pip install --no-deps litgpt==0.5.13 && python -m pytest"
MIB = 2**20


def _est(model="llama-3-8b", **kw):
    return vramscope.estimate(model, task="finetune", framework="litgpt", **kw).to_dict()


# ---- CI runs these tests -----------------------------------------------------------------------------------

def test_readmes_and_ci_install_litgpt():
    """Both READMEs' test command installs litgpt (--no-deps), and .ci/run runs that command exactly."""
    for name in ("README.md", "README.zh-CN.md"):
        assert TEST_COMMAND in (ROOT / name).read_text(encoding="utf-8").splitlines(), name
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert TEST_COMMAND in ci and "export VRAMSCOPE_REQUIRE_LITGPT=1" in ci


def test_litgpt_present_where_required():
    if REQUIRED:
        assert HAVE_LITGPT, "VRAMSCOPE_REQUIRE_LITGPT=1 (.ci/run) but litgpt is not importable"
        import litgpt.lora  # noqa: F401  (its import-time dependencies come from the test extra)


# ---- the profile's defaults ------------------------------------------------------------------------------

def test_lora_defaults_are_litgpt_setup_defaults():
    w = make_workload(task="finetune", method="lora", framework="litgpt", seq=512)
    # litgpt/finetune/lora.py setup(): lora_r=8, lora_dropout=0.05, lora_query=True, lora_value=True
    assert (w.lora_rank, w.lora_dropout, w.lora_targets) == (8, 0.05, ("q_proj", "v_proj"))
    assert w.ce_chunks == 4 and w.optimizer == "adamw" and not w.grad_checkpointing
    w = make_workload(task="finetune", method="lora", framework="litgpt", seq=513)
    assert w.ce_chunks == 5  # lm_head_chunk_size=128: ceil(513 / 128)
    full = make_workload(task="finetune", framework="litgpt", seq=512)
    assert full.ce_chunks == 1 and full.precision == "auto"  # full.py runs the head whole


def test_defaults_are_overridable_and_said():
    w = make_workload(task="finetune", method="lora", framework="litgpt", lora_rank=32, lora_dropout=0.0,
                      lora_targets=("q_proj", "k_proj", "v_proj"), ce_chunks=1, optimizer="sgd",
                      grad_checkpointing=True)
    assert (w.lora_rank, w.lora_dropout, w.ce_chunks, w.optimizer, w.grad_checkpointing) == (32, 0.0, 1, "sgd", True)
    e = _est(method="lora", seq=512)
    text = " ".join(e["assumptions"])
    assert "LitGPT 0.5.13" in text and "convert_output" in text and "rank 8 on q_proj,v_proj" in text


def test_qlora_and_sharded_defaults():
    q = make_workload(task="finetune", method="qlora", framework="litgpt")
    assert q.quant == "nf4" and q.optimizer == "paged-adamw"  # bnb.nf4; instantiate_bnb_optimizer
    sharded = make_workload(task="finetune", method="lora", framework="litgpt", num_gpus=2, parallelism="fsdp")
    assert sharded.grad_checkpointing  # parallelize_fn(activation_checkpointing=True) / FSDPStrategy policy
    assert not make_workload(task="finetune", framework="litgpt").grad_checkpointing


def test_bf16_true_means_16_bit_gradients_and_states():
    e = _est(seq=512)
    n = e["model"]["trainable_params"]
    step = e["phases"]["optimizer_step"]
    assert step["gradients"] == pytest.approx(2 * n, rel=1e-3)
    assert step["optimizer_states"] == pytest.approx(4 * n, rel=1e-3)  # AdamW's two bf16 states


def test_untied_head():
    tied = vramscope.estimate("llama-3.2-1b", task="finetune", seq=512).to_dict()
    lit = _est("llama-3.2-1b", seq=512)
    head = 128256 * 2048 * 2
    assert lit["phases"]["load"]["weights"] - tied["phases"]["load"]["weights"] == pytest.approx(head, rel=1e-3)
    assert any("own parameter" in a for a in lit["assumptions"])


def test_litgpt_names_map_to_catalog():
    assert litgpt_model("Llama-3-8B") == "meta-llama/Meta-Llama-3-8B"
    assert litgpt_model("checkpoints/meta-llama/Meta-Llama-3-8B") == "meta-llama/Meta-Llama-3-8B"
    assert litgpt_model("phi-2") == "microsoft/phi-2" and litgpt_name_for("mistralai/Mistral-7B-v0.1") == \
        "Mistral-7B-v0.1"
    for name, hub in LITGPT_MODELS.items():
        assert vramscope.estimate(hub).model.params > 0, name


@needs_litgpt
def test_name_table_matches_installed_litgpt():
    import importlib.metadata

    from litgpt.config import Config

    assert importlib.metadata.version("litgpt") == "0.5.13"  # what the profile was read from

    for name, hub in LITGPT_MODELS.items():
        hf = Config.from_name(name).hf_config
        assert f"{hf['org']}/{hf['name']}" == hub


# ---- LitGPT's command line and YAML ------------------------------------------------------------------------

def test_cli_flags():
    p = parse_command(["litgpt", "finetune", "lora", "checkpoints/meta-llama/Meta-Llama-3-8B", "--precision",
                       "bf16-true", "--quantize", "bnb.nf4-dq", "--lora_r=32", "--lora_mlp", "true",
                       "--train.micro_batch_size", "2", "--train.global_batch_size", "16",
                       "--train.max_seq_length", "1024", "--out_dir", "out/x", "--bogus", "1"])
    o = estimate_kwargs(p)
    assert p.model == "meta-llama/Meta-Llama-3-8B"
    assert o["framework"] == "litgpt" and o["method"] == "qlora" and o["quant"] == "nf4-dq"
    assert (o["lora_rank"], o["batch"], o["grad_accum"], o["seq"], o["dtype"]) == (32, 2, 8, 1024, "bf16")
    assert o["lora_targets"] == ("q_proj", "v_proj", "gate_proj", "up_proj", "down_proj")
    assert o["optimizer"] == "paged-adamw"
    assert p.ignored == ["--out_dir"] and p.unknown == ["--bogus 1"]


def test_cli_full_on_several_devices():
    o = estimate_kwargs(parse_command(["litgpt", "finetune", "full", "microsoft/phi-2", "--devices", "4",
                                       "--train.micro_batch_size", "4", "--train.global_batch_size", "64",
                                       "--precision", "bf16-mixed"]))
    # full.py: FSDPStrategy (FSDP1); global 64 / 4 devices / micro 4 = 4 iterations
    assert (o["num_gpus"], o["parallelism"], o["fsdp_version"], o["grad_accum"]) == (4, "fsdp", 1, 4)
    assert o["precision"] == "mixed" and o["method"] == "full"


@pytest.mark.parametrize("argv,key", [
    (["litgpt", "finetune", "dpo", "x/y"], "cmd_litgpt_method"),
    (["litgpt", "finetune", "lora", "x/y", "--quantize", "bnb.nf4", "--devices", "2"], "cmd_litgpt_quant_devices"),
    (["litgpt", "finetune", "lora", "x/y", "--lora_r", "zero"], "bad_choice"),
    (["litgpt", "finetune", "lora", "x/y", "--precision", "bf17"], "bad_choice"),
    (["litgpt", "finetune", "lora", "x/y", "--lora_query", "false", "--lora_value", "false"], "bad_choice"),
    (["litgpt", "chat", "x/y"], "cmd_unknown_program"),
    (["litgpt", "finetune", "lora", "x/y", "--train.micro_batch_size"], "cmd_needs_value"),
])
def test_cli_refusals(argv, key):
    with pytest.raises(VramscopeError) as e:
        parse_command(argv)
    assert e.value.key == key


def test_cli_precision_default_is_litgpts():
    full = parse_command(["litgpt", "finetune", "full", "x/y"])
    assert full.options["precision"] == "mixed" and full.options["dtype"] == "bf16"  # bf16-mixed
    lora = parse_command(["litgpt", "finetune", "lora", "x/y"])
    assert "precision" not in lora.options and any("bf16-mixed" in u for u in lora.unmodelled)


def test_cli_every_linear_and_the_head():
    p = parse_command(["litgpt", "finetune", "lora", "microsoft/phi-2", "--lora_key", "true", "--lora_projection",
                       "true", "--lora_mlp", "true", "--lora_head", "true"])
    assert p.options["lora_targets"] == ("all-linear",) and "--lora_head true" in p.unmodelled


def test_cli_refusal_is_one_line(capsys):
    from vramscope.cli import main

    rc = main(["estimate", "--", "litgpt", "finetune", "lora", "x/y", "--lora_r", "zero"])
    err = capsys.readouterr().err
    assert rc == 2 and "lora_r" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_config_hub_yaml():
    c = from_training_config(str(EX / "litgpt_llama-3-8b_lora.yaml"))
    assert c.format == "litgpt" and c.model == "meta-llama/Meta-Llama-3-8B"
    o = c.options
    assert (o["method"], o["lora_rank"], o["batch"], o["grad_accum"], o["seq"]) == ("lora", 32, 1, 8, 512)
    assert o["lora_targets"] == ("q_proj", "v_proj") and o["optimizer"] == "adamw"


def test_cli_end_to_end(capsys):
    from vramscope.cli import main

    rc = main(["estimate", "--json", "--config", str(EX / "litgpt_llama-3-8b_lora.yaml")])
    out = capsys.readouterr()
    assert rc == 0, out.err
    e = json.loads(out.out)
    assert e["workload"]["framework"] == "litgpt" and e["workload"]["lora_rank"] == 32


# ---- LitGPT's own model code, traced -----------------------------------------------------------------------

def _config_file(tmp_path, layers, **over):
    from vramscope.sources import catalog

    cfg = dict(catalog.find("llama-3.2-1b")["config"], num_hidden_layers=layers, **over)
    path = tmp_path / f"cfg{layers}.json"
    path.write_text(json.dumps(cfg))
    return str(path)


def _totals(e):
    return {ph: sum(v for k, v in parts.items() if k not in ("overhead", "allocator_cache"))
            for ph, parts in e.phases.items()}


#: the analytic --framework litgpt estimate against the trace of LitGPT's code, per phase (tolerance: 3%;
#: measured at Llama-3.2-1B shapes, 16 layers, seq 512: within 1.4%, docs/accuracy.md)
TRACE_RUNS = {
    "lora-default": dict(method="lora"),
    "lora-all-linear-b2": dict(method="lora", batch=2, lora_targets=("all-linear",), lora_rank=16),
    "full": dict(method="full"),
}


@needs_litgpt
@pytest.mark.parametrize("run", sorted(TRACE_RUNS))
def test_trace_of_litgpt_code_agrees_with_analytic(tmp_path, run):
    from vramscope.sources import resolve
    from vramscope.trace.estimator import trace_estimate

    path = _config_file(tmp_path, 4)
    w = make_workload(task="finetune", framework="litgpt", seq=256, **TRACE_RUNS[run])
    traced = _totals(trace_estimate(resolve(path), w))
    analytic = _totals(vramscope.estimate(path, task="finetune", framework="litgpt", seq=256, **TRACE_RUNS[run]))
    for phase in ("load", "forward", "backward", "optimizer_step"):
        assert analytic[phase] == pytest.approx(traced[phase], rel=0.03), (phase, analytic, traced)


@needs_litgpt
@pytest.mark.parametrize("method", ["lora", "full"])
def test_loop_gets_fp32_logits_from_fabric(tmp_path, method):
    """LitGPT's fit() calls the model through Fabric's _FabricModule, whose forward passes the output to the
    precision plugin's convert_output (Lightning's own HalfPrecision here): the logits the loop holds are fp32, and
    the analytic estimate keeps as many bytes of them through the optimizer step as the trace does."""
    import torch

    from vramscope.sources import resolve
    from vramscope.trace.litgpt import fabric_precision

    from lightning.fabric.plugins.precision import HalfPrecision

    plugin = fabric_precision(make_workload(task="finetune", framework="litgpt", method=method), torch.bfloat16)
    assert isinstance(plugin, HalfPrecision)
    out = plugin.convert_output([torch.zeros(2, 3, dtype=torch.bfloat16)])
    assert out[0].dtype == torch.float32
    path = _config_file(tmp_path, 2)
    kw = dict(task="finetune", framework="litgpt", method=method, seq=256, batch=2)
    vocab = resolve(path).spec.vocab_size
    e = vramscope.estimate(path, **kw)
    kept = e.phases["optimizer_step"]["loss_head"]
    assert kept == 2 * 256 * vocab * 4  # the fp32 logits (full.py: [..., :-1, :] is a view of them)
    assert kept == pytest.approx(
        trace_estimate_phase(resolve(path), kw, "optimizer_step", "loss_head"), rel=0.01)


def trace_estimate_phase(model, kw, phase, part):
    from vramscope.trace.estimator import trace_estimate

    return trace_estimate(model, make_workload(**kw)).phases[phase][part]


@needs_litgpt
def test_trace_builds_litgpt_model_with_its_parameters(tmp_path):
    """The trace builds LitGPT's own GPT: its parameter count is LitGPT's (the untied head included), and the
    Llama-layout Config read from a Hugging Face config equals LitGPT's own Config.from_name."""
    import torch
    from litgpt.config import Config
    from litgpt.model import GPT

    from vramscope.sources import resolve
    from vramscope.trace.litgpt import litgpt_config

    mine = litgpt_config(resolve(_config_file(tmp_path, 16)))
    theirs = Config.from_name("Llama-3.2-1B")
    with torch.device("meta"):
        a, b = GPT(mine), GPT(theirs)
    assert sum(p.numel() for p in a.parameters()) == sum(p.numel() for p in b.parameters())
    e = vramscope.estimate("llama-3.2-1b", task="finetune", framework="litgpt", seq=128).to_dict()
    assert e["phases"]["load"]["weights"] == pytest.approx(2 * sum(p.numel() for p in b.parameters()), rel=1e-3)


@needs_litgpt
@pytest.mark.parametrize("method", ["lora", "full"])
def test_trace_on_real_cpu_tensors_counts_what_fake_ones_do(tmp_path, method):
    """A real forward + backward + step of LitGPT's code on small CPU tensors: the tracker counts the same bytes
    as on fake tensors (phase by phase)."""
    from vramscope.sources import resolve
    from vramscope.trace.estimator import run_trace

    model = resolve(_config_file(tmp_path, 2, hidden_size=128, intermediate_size=512, num_attention_heads=4,
                                 num_key_value_heads=2, head_dim=32, vocab_size=1024, tie_word_embeddings=False))
    w = make_workload(task="finetune", framework="litgpt", method=method, seq=64, batch=2)
    fake_log, _, fake_trainable = run_trace(model, w, fake=True)
    real_log, _, real_trainable = run_trace(model, w, fake=False)
    assert fake_trainable == real_trainable > 0
    assert fake_log.phases.keys() == real_log.phases.keys()
    slack = 4 * 512
    for name, peak in fake_log.phases.items():
        assert abs(peak.bytes - real_log.phases[name].bytes) <= slack, name


@needs_litgpt
def test_trace_refuses_what_it_does_not_run(tmp_path):
    from vramscope.sources import resolve
    from vramscope.trace.estimator import trace_estimate

    model = resolve(_config_file(tmp_path, 2))
    w = make_workload(task="finetune", framework="litgpt", method="lora", grad_checkpointing=True)
    with pytest.raises(VramscopeError) as e:
        trace_estimate(model, w)
    assert "single-device recipes" in str(e.value)


def test_chunk_count_follows_seq():
    for seq in (1, 127, 128, 129, 4096):
        w = make_workload(task="finetune", method="lora", framework="litgpt", seq=seq)
        assert w.ce_chunks == math.ceil(seq / 128)


def test_profile_is_data():
    p = PROFILES["litgpt"]
    assert p.own_modules and not p.ce_upcast and p.ce_chunk_tokens == 128 and p.unties_embeddings


def _phi_saved_bytes(layers, dropout, targets):
    """Bytes LitGPT's own ``lora.GPT`` (phi-2's Config, ``layers`` blocks, bf16) saves for backward in one forward
    on real CPU tensors (saved-tensor hooks, each storage once; dropout as CUDA runs it)."""
    import torch
    import litgpt.lora as lora

    from vramscope.trace.litgpt import cuda_dropout, lora_switches

    # phi-2's blocks; a small vocabulary (embedding and head are not the blocks' business, and build slowly)
    cfg = lora.Config.from_name("phi-2", n_layer=layers, vocab_size=512, padded_vocab_size=512, lora_r=8,
                                lora_alpha=16, lora_dropout=dropout, **lora_switches(targets))
    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)
    try:
        net = lora.GPT(cfg)
    finally:
        torch.set_default_dtype(torch.float32)
    lora.mark_only_lora_as_trainable(net)
    cuda_dropout(net)
    net.max_seq_length = 128
    net.cos, net.sin = net.cos.bfloat16(), net.sin.bfloat16()
    params = {p.untyped_storage().data_ptr() for p in net.parameters()} | {
        b.untyped_storage().data_ptr() for b in net.buffers()}
    seen: dict[int, int] = {}

    def pack(t):
        seen.setdefault(t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
        return t

    x = torch.randint(0, cfg.padded_vocab_size, (2, 128))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        net(x, lm_head_chunk_size=128)
    return sum(n for k, n in seen.items() if k not in params)


@needs_litgpt
@pytest.mark.parametrize("dropout,targets", [(0.05, ("all-linear",)), (0.0, ("q_proj", "v_proj"))])
def test_phi_layout_layer_is_what_litgpt_saves(dropout, targets):
    """phi-2's layout under LitGPT's LoRA (parallel residual, one shared LayerNorm, GELU MLP, partial rotary): a block
    saves what the analytic layer model counts (a block whose input requires a gradient: the second one), q and v
    alone included (LoRAQKVLinear's zero_pad keeps the adapters' output)."""
    from vramscope.estimators.training import train_flags
    from vramscope.memory.activations import layer_bytes_per_token

    per_layer = (_phi_saved_bytes(2, dropout, targets) - _phi_saved_bytes(1, dropout, targets)) / (2 * 128)
    spec = vramscope.load_model("microsoft/phi-2").spec
    w = make_workload(task="finetune", framework="litgpt", method="lora", seq=128, batch=2, lora_rank=8,
                      lora_dropout=dropout, lora_targets=targets)
    assert layer_bytes_per_token(spec, 128, 2.0, "sdpa", train_flags(spec, w)) == pytest.approx(per_layer, rel=0.01)


@needs_litgpt
def test_phi3_fused_gate_up_is_two_lora_linears_in_litgpt():
    """Phi-3's Hugging Face layout fuses gate_up_proj; LitGPT's Phi-3 config builds LLaMAMLP, whose fc_1 and fc_2 are
    two LoRALinear, each dropping out its input: per token per layer two (a + 1)·h copies and two rank-wide lora_A
    outputs, where one fused module would have one (the litgpt-confighub-phi-3 rows: -7.3% -> -4.2%)."""
    import torch
    from litgpt import lora

    from vramscope.api import load_model
    from vramscope.memory.activations import TrainFlags, layer_bytes_per_token
    from vramscope.memory.trainable import lora_modules

    cfg = lora.Config.from_name("Phi-3-mini-4k-instruct", n_layer=1, lora_r=8, lora_alpha=16, lora_dropout=0.05,
                                lora_query=True, lora_key=True, lora_value=True, lora_projection=True, lora_mlp=True)
    with torch.device("meta"):
        mlp = lora.GPT(cfg).transformer.h[0].mlp
    assert isinstance(mlp.fc_1, lora.LoRALinear) and isinstance(mlp.fc_2, lora.LoRALinear)
    spec = load_model("microsoft/Phi-3-mini-4k-instruct").spec
    assert spec.fused_gate_up
    lora_set = lora_modules(spec, ("all-linear",))
    flags = dict(base=False, embeddings=False, lora=lora_set, lora_rank=8, litgpt=True, torchtune=True)
    with_drop = layer_bytes_per_token(spec, 512, 2.0, "sdpa", TrainFlags(lora_dropout=0.05, **flags))
    without = layer_bytes_per_token(spec, 512, 2.0, "sdpa", TrainFlags(lora_dropout=0.0, **flags))
    # exactly what separate gate and up projections (LitGPT's own layout) give
    from dataclasses import replace

    split = replace(spec, fused_gate_up=False)
    split_flags = dict(flags, lora=lora_modules(split, ("all-linear",)))
    assert with_drop == layer_bytes_per_token(split, 512, 2.0, "sdpa", TrainFlags(lora_dropout=0.05, **split_flags))
    assert with_drop > without
