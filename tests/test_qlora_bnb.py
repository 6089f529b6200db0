"""QLoRA with peft + bitsandbytes, proven on real bitsandbytes 4-bit tensors (its CPU backend, 0.50.2).

A small Llama (real head_dim 128 and the 8B's kv-head ratio, scaled width) is saved in bf16, loaded through
transformers' ``BitsAndBytesConfig`` (nf4, double quant, bf16 compute), prepared as each ``--kbit-prep`` choice
prepares it (peft 0.21.2 ``prepare_model_for_kbit_training``; TRL 0.13's ``peft_module_casting_to_bf16``), given
peft LoRA adapters, and run forward + backward with saved-tensor hooks that record, per decoder layer, the bytes
autograd keeps (storages deduplicated, parameters excluded), and the dtype and bytes of each layer's input (what
non-reentrant checkpointing keeps). The analytic model's terms (``estimators/training.py`` ``kbit_casts``,
``memory/weights.py`` ``quantized_linear_bytes``, ``memory/activations.py``) must agree with them."""

from __future__ import annotations

import tempfile
import warnings

import pytest

torch = pytest.importorskip("torch")
bnb = pytest.importorskip("bitsandbytes")
transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

from vramscope.api import load_model, make_workload  # noqa: E402
from vramscope.estimators.training import kbit_casts  # noqa: E402
from vramscope.memory.activations import TrainFlags, layer_bytes_per_token, training_activations  # noqa: E402
from vramscope.memory.trainable import lora_modules  # noqa: E402
from vramscope.memory.weights import quantized_linear_bytes, spec_weight_bytes  # noqa: E402
from vramscope.model.tensors import groups  # noqa: E402

pytestmark = pytest.mark.trace

H, INTER, LAYERS, HEADS, KV, HEAD_DIM, VOCAB = 512, 1792, 2, 4, 1, 128, 2048
BATCH, SEQ = 2, 256
TOKENS = BATCH * SEQ


def _config():
    return transformers.LlamaConfig(hidden_size=H, intermediate_size=INTER, num_hidden_layers=LAYERS,
                                    num_attention_heads=HEADS, num_key_value_heads=KV, head_dim=HEAD_DIM,
                                    vocab_size=VOCAB, max_position_embeddings=1024)


@pytest.fixture(scope="module")
def saved_dir():
    torch.manual_seed(0)
    d = tempfile.mkdtemp()
    transformers.LlamaForCausalLM(_config()).to(torch.bfloat16).save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    d = tmp_path_factory.mktemp("cfg")
    _config().save_pretrained(d)
    return load_model(str(d)).spec


def _load(d, quant="nf4-dq"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if quant == "none":
            return transformers.AutoModelForCausalLM.from_pretrained(d, dtype=torch.bfloat16, attn_implementation="sdpa")
        q = transformers.BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=quant[:3],
                                            bnb_4bit_use_double_quant=quant.endswith("-dq"),
                                            bnb_4bit_compute_dtype=torch.bfloat16)
        return transformers.AutoModelForCausalLM.from_pretrained(d, quantization_config=q, dtype=torch.bfloat16,
                                                                 device_map="cpu", attn_implementation="sdpa")


def _prepare(m, prep):
    """The --kbit-prep choices as their sources do them (peft 0.21.2, TRL v0.13.0 trl/trainer/utils.py)."""
    if prep in ("peft", "trl0"):
        m = peft.prepare_model_for_kbit_training(m, use_gradient_checkpointing=False)
    m = peft.get_peft_model(m, peft.LoraConfig(r=16, lora_alpha=16, target_modules="all-linear", lora_dropout=0.0))
    if prep == "trl0":  # peft_module_casting_to_bf16
        for name, module in m.named_modules():
            if isinstance(module, torch.nn.LayerNorm) or "norm" in name:
                module.to(torch.float32)
            elif any(x in name for x in ("lm_head", "embed_tokens")):
                if hasattr(module, "weight") and module.weight.dtype == torch.float32:
                    module.to(torch.bfloat16)
    return m


def _run(d, quant, prep, checkpointing, autocast):
    """Per-layer saved bytes (and the head's under "head"), each layer's input, and the parameters by kind."""
    m = _prepare(_load(d, quant), prep)
    if checkpointing:
        m.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return _measure(m, autocast)


def _measure(m, autocast):
    m.train()
    params = {p.untyped_storage().data_ptr() for p in m.parameters()}
    cur, seen, saved, inputs = {"i": "head"}, set(), {}, {}
    for i, layer in enumerate(m.base_model.model.model.layers if hasattr(m, "base_model") else m.model.layers):
        def pre(mod, args, kwargs, i=i):
            cur["i"] = i
            inputs[i] = kwargs.get("hidden_states", args[0] if args else None)

        def post(mod, args, out):
            cur["i"] = "head"
        layer.register_forward_pre_hook(pre, with_kwargs=True)
        layer.register_forward_hook(post)

    def pack(t):
        s = t.untyped_storage()
        if s.data_ptr() not in params and s.data_ptr() not in seen:
            seen.add(s.data_ptr())
            saved[cur["i"]] = saved.get(cur["i"], 0) + s.nbytes()
        return t

    ids = torch.randint(0, VOCAB, (BATCH, SEQ), generator=torch.Generator().manual_seed(1))
    ctx = torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), ctx:
        out = m(input_ids=ids, labels=ids)
    out.loss.backward()
    kinds = {}
    for p in m.parameters():
        key = "4bit" if isinstance(p, bnb.nn.Params4bit) else ("adapter" if p.requires_grad else str(p.dtype))
        kinds[key] = kinds.get(key, 0) + p.numel()
    return saved, {i: (t.dtype, t.numel() * t.element_size()) for i, t in inputs.items()}, kinds, m


def _workload(prep="peft", **kw):
    return make_workload(task="finetune", method="qlora", quant="nf4-dq", kbit_prep=prep, batch=BATCH, seq=SEQ,
                         lora_targets="all-linear", **kw)


@pytest.mark.parametrize("quant", ["nf4", "nf4-dq", "fp4"])
def test_params4bit_bytes_match_the_weight_formula(saved_dir, spec, quant):
    """Params4bit's packed storage plus its quant_state (absmax per 64-block; nested: uint8 absmax, fp32 absmax
    per 256 blocks) against quantized_linear_bytes, linear by linear; the only difference allowed is the
    quantization maps every state carries (nf4/fp4: 16 fp32 values; nested: the 256-value dynamic map) and the
    nested offset scalar."""
    m = _load(saved_dir, quant)
    by_name = {g.tensor.name: g.tensor for g in groups(spec) if g.tensor.linear and g.tensor.layer == 0}
    checked = 0
    for name, mod in m.model.layers[0].named_modules():
        if not isinstance(mod, bnb.nn.Linear4bit):
            continue
        qs = mod.weight.quant_state
        real = mod.weight.untyped_storage().nbytes() + qs.absmax.untyped_storage().nbytes()
        maps = qs.code.numel() * qs.code.element_size()
        if qs.nested:
            real += qs.state2.absmax.untyped_storage().nbytes()
            maps += qs.state2.code.numel() * qs.state2.code.element_size() + qs.offset.numel() * 4
        t = by_name[f"model.layers.0.{name}.weight"]
        modelled = quantized_linear_bytes(t, quant) // t.count
        assert modelled == real, (name, modelled, real)
        assert maps <= 16 * 4 + 256 * 4 + 4
        checked += 1
    assert checked == 7


def test_matmul4bit_saves_no_input(saved_dir):
    """bitsandbytes 0.43.2 on (0.50.2 here): MatMul4Bit saves only the packed weight, so a 4-bit base with LoRA
    saves exactly what the 16-bit base with LoRA saves, layer by layer."""
    assert tuple(int(x) for x in bnb.__version__.split(".")[:3]) >= (0, 43, 2)
    q, _, _, _ = _run(saved_dir, "nf4-dq", "none", False, True)
    b, _, _, _ = _run(saved_dir, "none", "none", False, True)
    assert q == b


@pytest.mark.parametrize("prep,dtypes", [("peft", (torch.float32, torch.float32)),
                                         ("trl0", (torch.bfloat16, torch.float32)),
                                         ("none", (torch.bfloat16, torch.bfloat16))])
def test_checkpointed_layer_inputs_follow_the_kbit_casts(saved_dir, spec, prep, dtypes):
    """Checkpointing keeps each layer's input: fp32 under peft's casts (fp32 embeddings), from the second layer on
    under TRL 0.x's (the first fp32 norm), bf16 without; the analytic checkpointed layers (4 bytes per element
    for every layer under the casts) agree to the layer after the first."""
    saved, inputs, _, _ = _run(saved_dir, "nf4-dq", prep, True, True)
    assert tuple(inputs[i][0] for i in range(LAYERS)) == dtypes
    for i in range(LAYERS):
        assert saved.get(i, 0) == inputs[i][1] == TOKENS * H * (4 if dtypes[i] == torch.float32 else 2)
    w = _workload(prep)
    kbit = kbit_casts(spec, w, 2.0)
    per_layer = kbit.layer_bytes if kbit.layer_bytes else 2.0
    assert TOKENS * H * per_layer == inputs[LAYERS - 1][1]


def test_peft_casts_weights_and_the_saved_head_cast(saved_dir, spec):
    """prepare_model_for_kbit_training: every parameter that is not Params4bit ends fp32 (the analytic
    fp32_params); under autocast the fp32 head's bf16 cast is saved for backward (head_cast · 2 bytes more in the
    head than without the casts)."""
    saved, _, kinds, _ = _run(saved_dir, "nf4-dq", "peft", True, True)
    plain, _, _, _ = _run(saved_dir, "nf4-dq", "none", True, True)
    kbit = kbit_casts(spec, _workload("peft"), 2.0)
    assert kinds.get("torch.bfloat16", 0) == 0
    assert kinds["torch.float32"] == kbit.fp32_params == spec_weight_bytes(spec, 2.0, "nf4-dq").kept_params
    assert saved["head"] - plain["head"] == kbit.head_cast * 2
    trl0 = kbit_casts(spec, _workload("trl0"), 2.0)
    _, _, kinds0, _ = _run(saved_dir, "nf4-dq", "trl0", True, True)
    assert kinds0["torch.float32"] == trl0.fp32_params  # the norms only


def test_fp32_layers_saved_bytes_against_the_model(saved_dir, spec):
    """A whole layer's saved tensors under peft's casts without autocast (all fp32): the analytic layer at 4
    bytes per element is within 10% (it counts each adapter's input copy as the bf16 path does; in fp32 peft's
    cast is a no-op and more inputs are shared), and twice the checkpointed input is far below it."""
    saved, _, _, _ = _run(saved_dir, "nf4-dq", "peft", False, False)
    flags = TrainFlags(base=False, embeddings=False, lora=lora_modules(spec, ("all-linear",)), lora_rank=16)
    modelled = layer_bytes_per_token(spec, SEQ, 4.0, "sdpa", flags) * TOKENS
    for i in range(LAYERS):
        assert 0.9 <= saved[i] / modelled <= 1.1, (i, saved[i], modelled)
    acts = training_activations(spec, BATCH, SEQ, 4.0, "sdpa", True, flags)
    assert acts.layers - acts.head_inputs == LAYERS * TOKENS * H * 4


@pytest.mark.parametrize("prep", ["trl0", "trl"])
def test_measure_builds_qlora_as_transformers_loads_it(saved_dir, prep):
    """``vramscope measure`` (GPU) quantizes a config-built model with quantize_bnb_4bit and prepares it with the
    trace's prepare_training: on CPU the same weights give the parameters and saved bytes of the model transformers
    loads with BitsAndBytesConfig and peft/TRL prepare."""
    from vramscope.trace.build import quantize_bnb_4bit
    from vramscope.trace.estimator import prepare_training

    net = _load(saved_dir, "none")
    assert quantize_bnb_4bit(net, "nf4-dq", torch.bfloat16) == 7 * LAYERS
    w = make_workload(task="finetune", method="qlora", quant="nf4-dq", kbit_prep=prep, batch=BATCH, seq=SEQ,
                      lora_targets="all-linear", lora_rank=16, grad_checkpointing=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net, params, _, _ = prepare_training(net, w)
    mine = _measure(net, prep != "trl")
    ref = _prepare(_load(saved_dir, "nf4-dq"), prep)
    if prep == "trl":
        for p in ref.parameters():
            if p.requires_grad:
                p.data = p.data.to(torch.bfloat16)
    ref.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    theirs = _measure(ref, prep != "trl")
    assert mine[2] == theirs[2]  # parameters by kind and dtype
    assert {i: v for i, v in mine[1].items()} == theirs[1]  # checkpointed layer inputs
    assert mine[0] == theirs[0]


def test_measure_step_peak_against_the_estimate(spec, tmp_path):
    """The whole ``vramscope measure`` step (model built, quantized, prepared, one training step) on CPU, its
    live bytes counted by the trace's tracker (tests/test_measure_validate.py's FakeBackend): the analytic
    allocated peak of LoRA, QLoRA without casts and QLoRA under peft's casts lies within -5% / +12% of it (at this
    width the loss head dominates; measured: +3.5%, +10.5%, +6.3%), and the casts' extra bytes agree."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_measure_validate import FakeBackend

    from vramscope.sources import resolve
    from vramscope.trace.measure import measure_record

    _config().save_pretrained(tmp_path)
    model = resolve(str(tmp_path))
    got = {}
    for key, kw in (("lora", {"method": "lora"}), ("none", {"method": "qlora", "kbit_prep": "none"}),
                    ("peft", {"method": "qlora", "kbit_prep": "peft"})):
        backend = FakeBackend()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                rec = measure_record(model, make_workload(task="finetune", seq=SEQ, batch=BATCH, lora_rank=16, **kw),
                                     backend)
        finally:
            backend.tracker.__exit__(None, None, None)
        got[key] = (rec["value_bytes"], rec["estimates"]["analytic"]["allocated_bytes"])
    for key, (measured, analytic) in got.items():
        assert -0.05 <= analytic / measured - 1 <= 0.12, (key, measured, analytic)
    measured_casts = got["peft"][0] - got["none"][0]
    analytic_casts = got["peft"][1] - got["none"][1]
    assert 0.8 <= analytic_casts / measured_casts <= 1.2, (measured_casts, analytic_casts)


#: Unsloth's README (unslothai/unsloth e3162dc5bf88bf4c2b598c74cbcaba0706c4067b, "Context length benchmarks"): the
#: longest context Hugging Face + FA2 QLoRA trains (4-bit, all linear layers, rank 32, batch 1, padded) per GPU
#: size; None: OOM. GPU ids: vramscope's catalog cards of those sizes.
UNSLOTH_HF_FA2 = [("meta-llama/Llama-3.1-8B", "rtx-4060", None), ("meta-llama/Llama-3.1-8B", "rtx-3060-12gb", 932),
                  ("meta-llama/Llama-3.1-8B", "rtx-4060-ti-16gb", 2551), ("meta-llama/Llama-3.1-8B", "rtx-4090", 5789),
                  ("meta-llama/Llama-3.1-8B", "a100-40gb", 12264), ("meta-llama/Llama-3.1-8B", "rtx-a6000", 15502),
                  ("meta-llama/Llama-3.1-8B", "h100-sxm", 28454), ("meta-llama/Llama-3.3-70B-Instruct", "rtx-a6000", None),
                  ("meta-llama/Llama-3.3-70B-Instruct", "a100-80gb", 6916)]


@pytest.mark.parametrize("model,gpu,published", UNSLOTH_HF_FA2)
def test_longest_context_against_unsloths_hf_baseline(model, gpu, published):
    """fit's longest context for QLoRA with the hf defaults (peft's k-bit casts) within 10% of the published
    Hugging Face + FA2 lengths, and OOM where they OOM; without the casts (--kbit-prep none) it is 27-190% longer,
    which is how QLoRA used to be under-estimated."""
    import vramscope

    kw = dict(task="finetune", method="qlora", lora_rank=32, attn="flash", dtype="bf16", gpu=gpu)
    got = vramscope.fit(model, **kw).max_seq
    if published is None:
        assert not got
        return
    assert abs(got / published - 1) <= 0.10, (got, published)
    assert vramscope.fit(model, kbit_prep="none", **kw).max_seq > 1.25 * published


@pytest.mark.parametrize("prep,per_token", [("peft", 2 * (5 * 4096 + 14336)), ("none", 2 * (2 * 4096 + 14336))])
def test_bnb_before_0_43_2_saves_each_linears_input(prep, per_token):
    """--bnb-version 0.43.1: MatMul4Bit's ctx.tensors = (A, B) (bitsandbytes 0.43.1, removed by 9e75374): without
    checkpointing every layer keeps a compute-dtype copy of each 4-bit linear's input: q, k, v, gate, up, down under
    the fp32 casts (one cast each), the shared q/k/v and gate/up inputs and down's without them."""
    import vramscope

    kw = dict(task="finetune", method="qlora", kbit_prep=prep, batch=1, seq=512, grad_checkpointing=False)
    old = vramscope.estimate("mistralai/Mistral-7B-v0.1", bnb_version="0.43.1", **kw)
    new = vramscope.estimate("mistralai/Mistral-7B-v0.1", bnb_version="0.43.2", **kw)
    saved = old.phases["forward"]["activations"] - new.phases["forward"]["activations"]
    assert saved == 32 * 512 * per_token
    assert new.total_bytes == vramscope.estimate("mistralai/Mistral-7B-v0.1", **kw).total_bytes
