"""Every catalog model under every kind of workload gives a positive estimate, and fit answers (no crash)."""

import pytest

import vramscope
from vramscope.engines import llamacpp_kv
from vramscope.errors import VramscopeError
from vramscope.sources import catalog, resolve

WORKLOADS = [
    dict(), dict(task="finetune"), dict(task="finetune", method="lora"),
    dict(task="finetune", method="qlora", grad_checkpointing=True), dict(task="pretrain", num_gpus=8),
    dict(engine="vllm", gpus=["h100"]), dict(engine="llama.cpp", quant="Q4_K_M"), dict(quant="nf4"),
    dict(estimator="seed"), dict(task="finetune", precision="deepspeed", num_gpus=4, parallelism="zero2"),
    dict(task="finetune", offload="optimizer"),
]


@pytest.mark.parametrize("entry", catalog.entries(), ids=[e["id"] for e in catalog.entries()])
def test_every_model_every_workload(entry):
    for kw in WORKLOADS:
        if kw.get("engine") == "vllm" and entry["config"].get("model_type") == "mllama":
            # vLLM removed Mllama in 0.10.2 (refused at 0.33.0: tests/test_vllm_mm.py); the last release with it
            kw = {**kw, "vllm_version": "0.10.1"}
        if kw.get("engine") == "llama.cpp" and llamacpp_kv.unsupported(resolve(entry["id"], hub=False)):
            # an architecture llama.cpp has no code for (engines/llamacpp_kv.py): one refusal naming it
            with pytest.raises(VramscopeError, match="llama.cpp .* has no architecture"):
                vramscope.estimate(entry["id"], **kw)
            continue
        e = vramscope.estimate(entry["id"], **kw)
        assert e.total_bytes > 0 and e.total_bytes == sum(e.components.values()), kw
    a = vramscope.fit(entry["id"], gpu="rtx-4090", task="finetune")
    assert a.fits or a.suggestions or a.min_gpus is None


#: families built in without a catalog entry: their configuration class's defaults (as transformers 5.24 has
#: them) under every workload; GPT-NeoX, BLOOM, OPT, GPT-J, GPTBigCode, MPT and DBRX have layouts of their own
NEW_FAMILIES = {
    "gpt_neox": {}, "bloom": {"n_layer": 24, "hidden_size": 1024, "n_head": 16}, "opt": {}, "gptj": {},
    "gpt_bigcode": {}, "mpt": {}, "dbrx": {"attn_config": {"kv_n_heads": 8}},
    "starcoder2": {}, "cohere": {"use_qk_norm": True}, "cohere2": {}, "stablelm": {"qk_layernorm": True},
    "olmo": {}, "olmo2": {}, "olmoe": {}, "granite": {}, "granitemoe": {}, "phimoe": {}, "llama4_text": {},
    "llama4": {},
}


@pytest.mark.parametrize("model_type", sorted(NEW_FAMILIES))
def test_every_built_in_family_every_workload(model_type, tmp_path):
    import json

    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": model_type, **NEW_FAMILIES[model_type]}))
    for kw in WORKLOADS:
        e = vramscope.estimate(str(path), **kw)
        assert e.total_bytes > 0 and e.total_bytes == sum(e.components.values()), kw
    a = vramscope.fit(str(path), gpu="rtx-4090", task="finetune")
    assert a.fits or a.suggestions or a.min_gpus is None
