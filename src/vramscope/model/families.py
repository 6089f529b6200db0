"""Model families: every per-family quirk the memory model uses, in one table.

A row is keyed the same way for both sources: by the Hugging Face ``config.json`` ``model_type`` values it
covers and by the llama.cpp ``general.architecture`` names its GGUF files carry. :func:`family_of` (and
``ModelSpec.family``) maps ``gemma2`` and ``gguf:gemma2`` to the same row, so a quirk written here holds for a
GGUF file as for the checkpoint it was converted from. llama.cpp writes some families under another family's
architecture (Mixtral, Mistral and Yi as ``llama``); ``gguf_moe`` tells the dense row from the MoE row there.

Models of no row (GPT-2, Phi, Falcon, BERT, T5, ``--params`` shapes, an architecture not listed) get
:data:`DEFAULT`: no quirk. Adding a family's quirk is one row (or one field of a row) here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional


@dataclass(frozen=True)
class Family:
    name: str
    model_types: tuple[str, ...] = ()  # Hugging Face config.json model_type values
    gguf_archs: tuple[str, ...] = ()  # llama.cpp general.architecture values
    gguf_moe: Optional[bool] = None  # for an architecture shared by a dense and a MoE row: which this one is
    source: str = ""  # where the quirks come from
    # --- norms ---
    norms_per_layer: int = 2  # RMSNorms per decoder layer (a GGUF spec takes it from here)
    norm_names: tuple[str, ...] = ()  # their module names, where they are not the standard ones
    offset_norm: bool = False  # (1 + weight) RMSNorm: keeps its fp32 normalized value for backward
    # --- attention ---
    sdpa: bool = True  # False: transformers refuses SDPA and runs eager
    swa_pattern: int = 0  # every n-th layer is full attention, the others slide (0: no default pattern)
    sliding_gate: str = ""  # config flag without which sliding_window is ignored
    sliding_from: str = ""  # config key: layers from this index on slide
    norm_free: bool = False  # OLMo: LayerNorms without parameters (elementwise_affine=False)
    qk_norm_shape: str = "head"  # q/k norms: head (head_dim) | full (q/kv width) | per_head | per_head_list
    attn_sinks: bool = False  # gpt-oss: one learned attention-sink logit per head and layer (self_attn.sinks)
    expert_bias: bool = False  # gpt-oss: the routed experts' projections carry biases
    moe_dense_dispatch: bool = False  # Llama 4: every token runs through every routed expert (scores mask them)
    # --- MLP / MoE module names (Llama layout) ---
    mlp_names: tuple[str, ...] = ()  # (gate, up, down) where they are not gate_proj/up_proj/down_proj
    mlp_prefix: str = "mlp."  # module holding a dense layer's MLP
    moe_prefix: str = "mlp."  # module holding the router and the experts
    router_name: str = "gate"
    shared_name: str = ""  # the shared experts' module, where not shared_expert(s)
    text_prefix: str = ""  # a multimodal model's language model is "<text_prefix>model." + "<text_prefix>lm_head"
    # --- training ---
    all_linear_moe: Mapping[str, bool] = field(default_factory=dict)  # MoE parts peft's all-linear adapts
    # --- tensors, positions, llama.cpp, trace ---
    tensor_root: str = ""  # module prefix of an encoder's tensors (BERT layout), else the layout's own
    padded_positions: bool = False  # learned positions start after pad_token_id (RoBERTa)
    llamacpp_70b_layers: int = 0  # block count llama.cpp types LLM_TYPE_70B (its quantization mix differs)
    trace_as: str = ""  # remote-code family the trace builds as this native one (trace/build.py)


DEFAULT = Family("default")

#: MoE parts peft 0.21's ``all-linear`` adapts under transformers 5 (checked against peft on the meta device,
#: ``tests/test_analytic.py``): the router, the fused routed experts, the shared experts and (DeepSeek) the MLPs
#: of the dense layers. A part not named is adapted.
_MOE_ALL = {"gate": True, "expert": True, "shared_expert": True}

FAMILIES: tuple[Family, ...] = (
    # llama.cpp convert_hf_to_gguf.py writes Llama, Mistral and Yi as "llama"; llama-model.cpp
    # (LLM_ARCH_LLAMA, case 80) types an 80-layer model LLM_TYPE_70B, which llama-quant.cpp quantizes apart
    Family("llama", ("llama", "mistral", "ministral", "yi"), ("llama",), gguf_moe=False,
           source="llama.cpp src/llama-model.cpp, src/llama-quant.cpp", llamacpp_70b_layers=80),
    # transformers modeling_mixtral.py; llama.cpp convert_hf_to_gguf.py writes Mixtral as "llama" + experts
    Family("mixtral", ("mixtral",), ("llama",), gguf_moe=True, source="transformers modeling_mixtral.py; peft",
           all_linear_moe=_MOE_ALL),
    # transformers modeling_qwen2.py / modeling_qwen3.py: sliding_window only with use_sliding_window, on the
    # layers from max_window_layers on
    Family("qwen", ("qwen2", "qwen3"), ("qwen2", "qwen3"), source="transformers modeling_qwen2.py, modeling_qwen3.py",
           sliding_gate="use_sliding_window", sliding_from="max_window_layers"),
    Family("qwen2_moe", ("qwen2_moe",), ("qwen2moe",), source="transformers modeling_qwen2_moe.py; peft",
           sliding_gate="use_sliding_window", sliding_from="max_window_layers",
           all_linear_moe={"gate": False, "expert": False, "shared_expert": True}),
    Family("qwen3_moe", ("qwen3_moe",), ("qwen3moe",), source="transformers modeling_qwen3_moe.py; peft",
           sliding_gate="use_sliding_window", sliding_from="max_window_layers", all_linear_moe=_MOE_ALL),
    # transformers modeling_gemma.py GemmaRMSNorm: x * (1 + weight), normalized in fp32
    Family("gemma", ("gemma",), ("gemma",), source="transformers modeling_gemma.py", offset_norm=True),
    # transformers modeling_gemma2.py: 4 norms a layer, soft-capping (no SDPA), layer i slides when (i+1) % 2;
    # llama.cpp llama-model.cpp set_swa_pattern(2)
    Family("gemma2", ("gemma2",), ("gemma2",), source="transformers modeling_gemma2.py; llama.cpp src/llama-model.cpp",
           norms_per_layer=4, offset_norm=True, sdpa=False, swa_pattern=2),
    # transformers modeling_gemma3.py (sliding_window_pattern 6 by default); llama.cpp set_swa_pattern(6)
    Family("gemma3", ("gemma3_text", "gemma3"), ("gemma3",),
           source="transformers modeling_gemma3.py; llama.cpp src/llama-model.cpp",
           norms_per_layer=4, offset_norm=True, swa_pattern=6),
    # transformers modeling_cohere.py / modeling_cohere2.py: one LayerNorm a layer (attention and MLP in
    # parallel), q/k norms with one weight row per head; Cohere2: every 4th layer full (Cohere2Config
    # sliding_window_pattern 4; llama.cpp LLM_ARCH_COHERE2 set_swa_pattern(4))
    Family("cohere", ("cohere",), ("command-r",), source="transformers modeling_cohere.py", norms_per_layer=1,
           qk_norm_shape="per_head"),
    Family("cohere2", ("cohere2",), ("cohere2",), source="transformers modeling_cohere2.py; llama.cpp src/llama-model.cpp",
           norms_per_layer=1, qk_norm_shape="per_head", swa_pattern=4),
    # transformers modeling_stablelm.py: q/k LayerNorms as a list of one LayerNorm per head (qk_layernorm)
    Family("stablelm", ("stablelm",), ("stablelm",), source="transformers modeling_stablelm.py",
           qk_norm_shape="per_head_list"),
    # transformers modeling_starcoder2.py: the plain MLP is c_fc / c_proj
    Family("starcoder2", ("starcoder2",), ("starcoder2",), source="transformers modeling_starcoder2.py",
           mlp_names=("", "c_fc", "c_proj")),
    # transformers modeling_olmo.py OlmoLayerNorm: no parameters; modeling_olmo2.py: post-norms only and q/k
    # RMSNorms over all heads at once (q_norm [heads·head_dim]); modeling_olmoe.py: the same q/k norms
    Family("olmo", ("olmo",), ("olmo",), source="transformers modeling_olmo.py", norm_free=True),
    Family("olmo2", ("olmo2",), ("olmo2",), source="transformers modeling_olmo2.py", qk_norm_shape="full",
           norm_names=("post_attention_layernorm", "post_feedforward_layernorm")),
    Family("olmoe", ("olmoe",), ("olmoe",), source="transformers modeling_olmoe.py; peft", qk_norm_shape="full",
           all_linear_moe=_MOE_ALL),
    # transformers modeling_gpt_oss.py: attention sinks, biased experts under mlp.router / mlp.experts
    Family("gpt_oss", ("gpt_oss",), ("gpt-oss",), source="transformers modeling_gpt_oss.py", attn_sinks=True,
           expert_bias=True, router_name="router", sdpa=False),  # sinks: eager attention only
    # transformers modeling_llama4.py: feed_forward holds the dense MLP or the MoE (router, fused experts and
    # one shared_expert); the multimodal checkpoint nests the language model under language_model.
    Family("llama4", ("llama4", "llama4_text"), ("llama4",), source="transformers modeling_llama4.py",
           mlp_prefix="feed_forward.", moe_prefix="feed_forward.", router_name="router",
           shared_name="shared_expert.", text_prefix="language_model.", moe_dense_dispatch=True),
    # transformers modeling_phimoe.py: LayerNorms with bias, the router under mlp.router
    Family("phimoe", ("phimoe",), ("phimoe",), source="transformers modeling_phimoe.py; peft", router_name="router",
           all_linear_moe=_MOE_ALL),
    # transformers modeling_bloom.py / modeling_mpt.py: no SDPA (ALiBi through eager attention only:
    # "does not support an attention implementation through torch.nn.functional.scaled_dot_product_attention")
    Family("bloom", ("bloom",), ("bloom",), source="transformers modeling_bloom.py", sdpa=False),
    Family("mpt", ("mpt",), ("mpt",), source="transformers modeling_mpt.py", sdpa=False),
    # transformers modeling_granitemoe.py: router and experts under block_sparse_moe
    Family("granitemoe", ("granitemoe",), ("granitemoe",), source="transformers modeling_granitemoe.py; peft",
           moe_prefix="block_sparse_moe.", router_name="router", all_linear_moe=_MOE_ALL),
    # transformers modeling_deepseek_v2.py / _v3.py; llama.cpp writes both as "deepseek2"
    Family("deepseek", ("deepseek_v2", "deepseek_v3"), ("deepseek2",),
           source="transformers modeling_deepseek_v2.py, modeling_deepseek_v3.py; peft",
           all_linear_moe={"gate": True, "expert": True, "shared_expert": False, "mlp": False}),
    # transformers modeling_glm4.py: four norms with names of their own
    Family("glm4", ("glm4",), ("glm4",), source="transformers modeling_glm4.py", norms_per_layer=4,
           norm_names=("input_layernorm", "post_attention_layernorm", "post_self_attn_layernorm",
                       "post_mlp_layernorm")),
    # transformers modeling_roberta.py: tensors under "roberta.", positions offset by padding_idx + 1
    # (create_position_ids_from_input_ids; so are xlm-roberta, camembert, longformer, mpnet, esm, not read here)
    Family("roberta", ("roberta",), source="transformers modeling_roberta.py", tensor_root="roberta.",
           padded_positions=True),
    # remote-code families the trace builds natively: Baichuan (W_pack = fused q,k,v; ALiBi has no parameters)
    # and InternLM2/3 (wqkv, w1/w3/w2) as Llama, ChatGLM (query_key_value, dense_h_to_4h) as GLM
    Family("baichuan", ("baichuan",), ("baichuan",), source="Baichuan modeling_baichuan.py (remote code)",
           trace_as="baichuan"),
    Family("internlm", ("internlm2", "internlm3"), ("internlm2",),
           source="InternLM modeling_internlm2.py / modeling_internlm3.py (remote code)", trace_as="internlm"),
    Family("chatglm", ("chatglm",), ("chatglm",), source="THUDM modeling_chatglm.py (remote code)",
           trace_as="chatglm"),
    # Kimi K2 (model_type kimi_k2): its remote code is DeepSeek-V3's own (auto_map: configuration_deepseek
    # .DeepseekV3Config, modeling_deepseek.DeepseekV3ForCausalLM; architectures DeepseekV3ForCausalLM), so the
    # trace builds transformers' DeepseekV3ForCausalLM; the remote code keeps no module in fp32 (weights.py)
    # (no GGUF row of its own: llama.cpp writes it as deepseek2, which stays DeepSeek's row)
    Family("kimi_k2", ("kimi_k2",), (), source="Moonshot modeling_deepseek.py (remote code: DeepSeek-V3's)",
           trace_as="deepseek_v3",
           all_linear_moe={"gate": True, "expert": True, "shared_expert": False, "mlp": False}),
)

_BY_MODEL_TYPE = {mt: f for f in FAMILIES for mt in f.model_types}
_BY_ARCH: dict[tuple[str, Optional[bool]], Family] = {}
for _f in FAMILIES:
    for _a in _f.gguf_archs:
        _BY_ARCH[(_a, _f.gguf_moe)] = _f


def by_model_type(model_type: str) -> Family:
    """The row of a Hugging Face ``model_type`` (or ``gguf:<arch>``, as GGUF specs name theirs)."""
    if model_type.startswith("gguf:"):
        return by_gguf_arch(model_type[5:])
    return _BY_MODEL_TYPE.get(model_type, DEFAULT)


def by_gguf_arch(arch: str, moe: Optional[bool] = None) -> Family:
    """The row of a llama.cpp architecture; ``moe`` picks between rows sharing it (``llama``: Mixtral)."""
    return _BY_ARCH.get((arch, bool(moe)), None) or _BY_ARCH.get((arch, None), DEFAULT)


def family_of(model_type: str, moe: bool) -> Family:
    if model_type.startswith("gguf:"):
        return by_gguf_arch(model_type[5:], moe)
    return _BY_MODEL_TYPE.get(model_type, DEFAULT)


def sliding_layers(pattern: int, n_layers: int) -> list[bool]:
    """Which layers slide under an every-``pattern``-th-layer-is-full rule (llama.cpp
    ``llama_hparams::set_swa_pattern``, transformers ``(i + 1) % pattern``): 0 means every layer slides."""
    return [pattern == 0 or i % pattern < pattern - 1 for i in range(n_layers)]


def slides(pattern: int, layer: int) -> bool:
    """Whether ``layer`` slides under the rule of :func:`sliding_layers`."""
    return pattern == 0 or layer % pattern < pattern - 1
