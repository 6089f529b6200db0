"""Any architecture transformers ships natively: the model built on the meta device, its tensors taken as they are.

For a ``model_type`` vramscope has no built-in reader for (:mod:`vramscope.sources.hf_config`), and only when the
``trace`` extra (torch + transformers) is installed, the config is handed to transformers' own configuration
class (``AutoConfig.for_model``; never ``trust_remote_code``: a model type transformers does not ship is refused)
and the model class its ``architectures`` names (else the Auto class for the config) is built under
``torch.device("meta")``: no memory, no weights, transformers' weight initialisation skipped. Its parameters
(``named_parameters(remove_duplicate=False)``: tied names share one tensor, counted once) become a
:class:`~vramscope.model.tensors.Inventory`, the spec's layout ``meta``:

* the block lists (the ``nn.ModuleList`` s holding the repeated blocks: ``model.layers``, ``encoder.block``, a
  vision tower's ``encoder.layers``) are grouped into kinds of identical blocks, so sums cost the same for 32
  layers as for 1024; blocks of a vision/audio tower are not decoder layers;
* routed experts, as a list of MLPs (``experts.0.w1``) or fused 3-D parameters (``experts.gate_up_proj``
  ``[E, 2I, h]``), become one tensor with ``count = E``;
* roles (embedding, lm_head, attention, mlp, expert, router, norm, vision, projector) and ``linear`` (an
  ``nn.Linear`` / GPT-2 ``Conv1D`` weight, or a fused expert matrix) come from the modules that own them.

The shape numbers the KV cache and activations read (layers, hidden size, heads, key/value heads, head size) come
from the text config transformers built (``get_text_config()``), with its own attribute aliases. Torch is imported
on this path only; built-in families never import it.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections import defaultdict
from functools import lru_cache
from typing import Any, Optional

from ..errors import Text, VramscopeError
from ..model.limits import LIMITS, shown
from ..model.spec import CompressedKVSpec, MLASpec, ModelSpec, MoESpec, StateSpec, check_int
from ..model.tensors import Inventory, LayerSet, MetaStack, Tensor

#: config keys that are not the architecture (or would make transformers load more than a config)
_DROPPED = ("auto_map", "quantization_config", "transformers_version", "_name_or_path", "_commit_hash")

#: name parts of a tower that is not the language model
_TOWER = ("vision", "visual", "image", "audio", "speech")
_PROJECTOR = ("projector", "multi_modal", "mm_", "merger", "connector", "aligner")

#: keys checked against LIMITS before anything is built (a hostile config must not make transformers build
#: 10^6 layers); each is looked up in the config and in its nested text / vision / encoder configs
_BOUNDED = {
    "num_hidden_layers": "num_layers", "num_layers": "num_layers", "n_layer": "num_layers",
    "encoder_layers": "num_layers", "decoder_layers": "num_layers", "num_decoder_layers": "num_layers",
    "hidden_size": "hidden_size", "d_model": "hidden_size", "n_embd": "hidden_size",
    "num_attention_heads": "num_heads", "n_head": "num_heads",
    "intermediate_size": "intermediate_size", "ffn_dim": "intermediate_size", "d_ff": "intermediate_size",
    "vocab_size": "vocab_size",
    "num_local_experts": "num_experts", "num_experts": "num_experts", "n_routed_experts": "num_experts",
    "moe_intermediate_size": "expert_intermediate_size",
}
_NESTED = ("text_config", "vision_config", "audio_config", "encoder", "decoder", "llm_config")

_EXPERTS = ("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts", "num_experts_per_layer")
_TOP_K = ("num_experts_per_tok", "num_experts_per_token", "moe_top_k", "top_k", "moe_k")


def available() -> bool:
    """Whether the ``trace`` extra (torch and transformers) is importable."""
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))


def _refuse(model_type: str, origin: str, built_in: int, why: Text) -> VramscopeError:
    return VramscopeError("unsupported_model_type", model_type=shown(model_type), origin=origin, count=built_in,
                          why=why)


#: the most expert MLPs a model built on the meta device may hold (layers × experts): 5× the largest real ones
#: (Qwen3-Next 48 × 512 = 24,576; Kimi K2 61 × 384 = 23,424). A list of expert modules costs about 0.4 ms each
#: to build, so the bound keeps a hostile config to under a minute
MAX_EXPERT_MLPS = 131072


def _expert_mlps(cfg: dict[str, Any], origin: str, prefix: str = "", depth: int = 0) -> None:
    """Refuse layers × experts above :data:`MAX_EXPERT_MLPS`, in the config and its nested configs."""
    def first(keys: tuple[str, ...], sub: dict[str, Any]) -> int:
        for k in keys:
            v = sub.get(k)
            if isinstance(v, int) and not isinstance(v, bool) and v > 0:
                return v
        return 0

    ffn = cfg.get("ffn_config") if isinstance(cfg.get("ffn_config"), dict) else {}
    layers = first(("num_hidden_layers", "num_layers", "n_layers", "n_layer", "decoder_layers"), cfg)
    experts = first(_EXPERTS, cfg) or first(_EXPERTS, ffn)
    if layers * experts > MAX_EXPERT_MLPS:
        raise VramscopeError("shape_too_large", where=f"{origin} ", field=f"{prefix}layers × experts",
                             value=f"{layers} × {experts}", minimum=1, maximum=MAX_EXPERT_MLPS,
                             real="48 × 512 (Qwen3-Next)")
    if depth < 2:
        for sub in _NESTED:
            if isinstance(cfg.get(sub), dict):
                _expert_mlps(cfg[sub], origin, f"{prefix}{sub}.", depth + 1)


def _check_bounds(cfg: dict[str, Any], origin: str, prefix: str = "", depth: int = 0) -> None:
    if depth == 0:
        _expert_mlps(cfg, origin)
    for key, limit in _BOUNDED.items():
        value = cfg.get(key)
        if value is not None and not isinstance(value, (dict, list)):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            lim = LIMITS[limit]
            check_int(f"{origin} ", prefix + key, value, limit, minimum=min(lim.minimum, 0))
    if depth < 2:
        for sub in _NESTED:
            if isinstance(cfg.get(sub), dict):
                _check_bounds(cfg[sub], origin, f"{prefix}{sub}.", depth + 1)


def spec_from_meta(cfg: dict[str, Any], name: str, origin: str, model_type: str, built_in: int) -> ModelSpec:
    """The spec of a model transformers builds natively (module docstring), or the one refusal line naming
    what was tried: the ``built_in`` readers, then transformers on the meta device. The last few specs are kept
    (a fit or a web page asks for the same config many times; building takes seconds)."""
    if not available():
        raise _refuse(model_type, origin, built_in, Text("meta_no_trace"))
    try:
        key = json.dumps(cfg, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):
        key = None
    if key is None:
        return _spec_from_meta(cfg, name, origin, model_type, built_in)
    return _cached(key, name, origin, model_type, built_in)


@lru_cache(maxsize=8)
def _cached(key: str, name: str, origin: str, model_type: str, built_in: int) -> ModelSpec:
    return _spec_from_meta(json.loads(key), name, origin, model_type, built_in)


def _spec_from_meta(cfg: dict[str, Any], name: str, origin: str, model_type: str, built_in: int) -> ModelSpec:
    from ..trace.build import quiet_libraries

    # transformers' quantizer table imports torchao where it is installed (the trace extra pins it), whose CUDA
    # kernels fail to load on a CPU and log it: nothing a memory estimate needs on stderr
    with quiet_libraries():
        return _spec_from_meta_quiet(cfg, name, origin, model_type, built_in)


def _spec_from_meta_quiet(cfg: dict[str, Any], name: str, origin: str, model_type: str, built_in: int) -> ModelSpec:
    import transformers

    version = transformers.__version__
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    if model_type not in CONFIG_MAPPING:
        raise _refuse(model_type, origin, built_in, Text("meta_not_shipped", version=version))
    _check_bounds(cfg, origin)
    native = {k: v for k, v in cfg.items() if k not in _DROPPED}
    try:
        config = transformers.AutoConfig.for_model(**native)
        model = _build(config, native)
        return _spec(model, config, native, name, origin, model_type, version, cfg.get("quantization_config"))
    except VramscopeError:
        raise
    except Exception as e:  # transformers validates configs its own way: any refusal is the config's
        detail = shown(f"{type(e).__name__}: {e}", 160)
        raise _refuse(model_type, origin, built_in, Text("meta_build_failed", version=version, detail=detail)) \
            from None


def _build(config: Any, native: dict[str, Any]) -> Any:
    import torch
    from transformers.modeling_utils import PreTrainedModel

    from ..trace.build import model_class

    arch = native.get("architectures")
    cls = model_class(config, arch[0] if isinstance(arch, list) and arch and isinstance(arch[0], str) else "")
    if cls.__module__.startswith("transformers.models.auto"):  # architectures names no class: the task's
        cls = _auto_class(config)
    make = cls._from_config if hasattr(cls, "_from_config") else cls.from_config
    original = PreTrainedModel.__dict__.get("initialize_weights")
    PreTrainedModel.initialize_weights = lambda self: None  # values are never read; tying still runs
    try:
        with torch.device("meta"):
            return make(config)
    finally:
        if original is None:
            del PreTrainedModel.initialize_weights
        else:
            PreTrainedModel.initialize_weights = original


#: the Auto classes tried, in order, for a config whose ``architectures`` names no transformers class: the first
#: whose mapping lists the model type (a generating model before its bare base model; an encoder-decoder's
#: sequence-to-sequence class before its decoder alone)
_AUTO = (("MODEL_FOR_CAUSAL_LM_MAPPING_NAMES", "AutoModelForCausalLM"),
         ("MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES", "AutoModelForImageTextToText"),
         ("MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES", "AutoModelForSeq2SeqLM"),
         ("MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES", "AutoModelForSpeechSeq2Seq"),
         ("MODEL_MAPPING_NAMES", "AutoModel"))


def _auto_class(config: Any) -> Any:
    import transformers
    from transformers.models.auto import modeling_auto

    order = _AUTO
    if getattr(config, "is_encoder_decoder", False):  # BART, Whisper: the whole model, not its decoder alone
        order = _AUTO[2:4] + _AUTO[:2] + _AUTO[4:]
    for mapping, auto in order:
        if config.model_type in getattr(modeling_auto, mapping, {}):
            return getattr(transformers, auto)
    return transformers.AutoModel


# ---- the inventory -----------------------------------------------------------------------------------------

def _is_tower(name: str) -> bool:
    low = name.lower()
    return any(t in low for t in _TOWER)


def _role(name: str, module: Any, param: Any, inputs: Any, outputs: Any) -> str:
    import torch

    low = name.lower()
    if any(p in low for p in _PROJECTOR) and not re.search(r"\.(layers|layer|h|block|blocks)\.\d+\.", name):
        return "projector"
    if _is_tower(name):
        return "vision"
    if outputs is not None and param is outputs:
        return "lm_head"
    if isinstance(module, torch.nn.Embedding):
        return "embedding" if inputs is not None and param is inputs else "position_embedding"
    if re.search(r"(^|\.)experts?\.", low) and "shared" not in low:
        return "expert"
    if "shared_expert" in low:
        return "shared_expert"
    if re.search(r"(^|\.)(gate|router|w_gate)(\.|$)", low) and "proj" not in low.rsplit(".", 2)[-2]:
        return "router"
    if "norm" in type(module).__name__.lower() or re.search(r"(norm|ln_?\d?|layernorm)[^.]*\.(weight|bias)$", low):
        return "norm"
    if re.search(r"attn|attention|\.(q|k|v|o)_?proj|query|key|value", low):
        return "attention"
    return "mlp"


def _is_linear(module: Any, leaf: str, role: str, ndim: int) -> bool:
    import torch

    if leaf != "weight" and role != "expert":
        return False
    if isinstance(module, torch.nn.Linear):
        return leaf == "weight"
    if type(module).__name__ == "Conv1D":  # GPT-2's transposed linear (transformers.pytorch_utils.Conv1D)
        return leaf == "weight"
    return role == "expert" and ndim == 3


def _block_lists(model: Any) -> list[tuple[str, int]]:
    """``(prefix, length)`` of each ``nn.ModuleList`` of blocks not inside another one."""
    import torch

    lists: list[tuple[str, int]] = []
    for mname, mod in model.named_modules():
        if not isinstance(mod, torch.nn.ModuleList) or len(mod) == 0:
            continue
        if any(mname.startswith(p) for p, _ in lists):
            continue  # a list inside a block (experts as modules): part of that block
        if not all(any(True for _ in m.parameters()) for m in mod):
            continue
        lists.append((mname + ".", len(mod)))
    return lists


_EXPERT_INDEX = re.compile(r"(^|\.)(experts)\.(\d+)\.")


def inventory(model: Any) -> tuple[Inventory, bool]:
    """The model's :class:`Inventory` and whether the output head is tied to the input embedding."""
    modules = dict(model.named_modules())
    try:
        inputs = model.get_input_embeddings().weight
    except (AttributeError, NotImplementedError):
        inputs = None
    try:
        out = model.get_output_embeddings()
        outputs = out.weight if out is not None else None
    except (AttributeError, NotImplementedError):
        outputs = None
    first_name: dict[int, str] = {}
    tied: list[tuple[str, str]] = []
    kept: list[tuple[str, Any]] = []
    for pname, p in model.named_parameters(remove_duplicate=False):
        if id(p) in first_name:
            tied.append((pname, first_name[id(p)]))
            continue
        first_name[id(p)] = pname
        kept.append((pname, p))
    tie_embeddings = outputs is not None and inputs is not None and outputs is inputs
    lists = _block_lists(model)
    # tensors of each block, relative to it; experts folded into one tensor with a count
    per_block: dict[tuple[int, int], list[Tensor]] = defaultdict(list)
    loose: list[Tensor] = []
    folded: dict[tuple[Optional[tuple[int, int]], str], list] = {}
    for pname, p in kept:
        owner, _, leaf = pname.rpartition(".")
        module = modules.get(owner)
        role = _role(pname, module, p, inputs, outputs if not tie_embeddings else None)
        shape = tuple(int(d) for d in p.shape)
        linear = _is_linear(module, leaf, role, len(shape))
        count = 1
        if role == "expert" and len(shape) == 3 and linear:
            count, shape = shape[0], shape[1:]
        block = None
        rel = pname
        for li, (prefix, _) in enumerate(lists):
            if pname.startswith(prefix):
                idx, _, rest = pname[len(prefix):].partition(".")
                if idx.isdigit():
                    block, rel = (li, int(idx)), rest
                break
        m = _EXPERT_INDEX.search(rel)
        if m and role == "expert":  # experts as a ModuleList: one tensor, counted once per expert
            key = (block, rel[: m.start(3)] + "*" + rel[m.end(3):])
            if key in folded:
                folded[key][0] += 1
                continue
            folded[key] = [1, len(per_block[block]) if block else len(loose)]
            rel = key[1]
        leafmod = owner.rpartition(".")[2] if linear else ""
        t = Tensor(rel, shape, role, leafmod, None, count, linear)
        (per_block[block] if block else loose).append(t)
    for (block, _), (n, pos) in folded.items():
        target = per_block[block] if block else loose
        target[pos] = target[pos]._replace(count=n)
    stacks = []
    for li, (prefix, n) in enumerate(lists):
        kinds: dict[tuple[Tensor, ...], list[int]] = defaultdict(list)
        for i in range(n):
            kinds[tuple(per_block.get((li, i), ()))].append(i)
        numbered = not _is_tower(prefix) and not any(p in prefix.lower() for p in _PROJECTOR)
        stacks.append(MetaStack(prefix, n, tuple((LayerSet.of(ix), tpl) for tpl, ix in kinds.items()), numbered))
    return Inventory(tuple(loose), tuple(stacks), tuple(tied)), tie_embeddings


def _fold_flat_experts(inv: Inventory, experts: int) -> Inventory:
    """Experts stored as one 2-D parameter per projection, ``[E·I, h]`` (DBRX ``DbrxExpertGLU.w1``): one
    ``[I, h]`` matrix with ``count = E``, as for the other layouts."""

    def fold(t: Tensor) -> Tensor:
        if t.role == "expert" and t.count == 1 and "*" not in t.name and len(t.shape) == 2 \
                and t.shape[0] % experts == 0 and t.shape[0] > experts:
            return t._replace(shape=(t.shape[0] // experts, t.shape[1]), count=experts, linear=True)
        return t

    stacks = tuple(st._replace(kinds=tuple((ls, tuple(fold(t) for t in tpl)) for ls, tpl in st.kinds))
                   for st in inv.stacks)
    return inv._replace(stacks=stacks)


# ---- the shape numbers -------------------------------------------------------------------------------------

def _attr(cfg: Any, *names: str) -> Any:
    if cfg is None:
        return None
    for n in names:
        try:
            v = getattr(cfg, n, None)
        except Exception:  # noqa: BLE001 - transformers refuses some global reads (per-layer attributes, Gemma 4)
            continue
        if isinstance(v, bool):
            continue
        if isinstance(v, int) and v > 0:
            return v
        if isinstance(v, list) and v and all(isinstance(x, int) for x in v):
            return max(v)
    return None


def _spec(model: Any, config: Any, native: dict[str, Any], name: str, origin: str, model_type: str,
          version: str, quantization: Any = None) -> ModelSpec:
    inv, tied_embed = inventory(model)
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    dec = getattr(config, "decoder", None) if getattr(config, "is_encoder_decoder", False) else None
    text = dec if dec is not None and hasattr(dec, "num_hidden_layers") else text
    hidden = _attr(text, "hidden_size", "d_model", "n_embd", "dim", "embed_dim") or 1
    heads = _attr(text, "num_attention_heads", "decoder_attention_heads", "n_head", "num_heads") or 1
    kv = _attr(text, "num_key_value_heads", "num_kv_heads", "decoder_attention_heads") or heads
    if heads % kv:
        kv = heads
    head_dim = _attr(text, "head_dim", "d_kv", "attention_head_dim") or max(1, hidden // heads)
    numbered = [st for st in inv.stacks if st.numbered]
    layers = _attr(text, "num_hidden_layers", "decoder_layers", "num_decoder_layers", "n_layer", "num_layers")
    if not layers:
        layers = max((st.n for st in numbered), default=1)
    enc_dec = bool(getattr(config, "is_encoder_decoder", False))
    kind = "encoder-decoder" if enc_dec else ("decoder" if _is_decoder(model, config) else "encoder")
    enc_layers = _attr(config, "encoder_layers", "num_layers") if enc_dec else None
    vocab = _attr(text, "vocab_size") or next((t.shape[0] for t in inv.loose if t.role == "embedding"), 1)
    inter = _attr(text, "intermediate_size", "ffn_dim", "decoder_ffn_dim", "d_ff", "n_inner") or 4 * hidden
    moe = None
    experts = _attr(text, *_EXPERTS) or _attr(getattr(text, "ffn_config", None), *_EXPERTS)  # DBRX nests them
    top_k = _attr(text, *_TOP_K) or _attr(getattr(text, "ffn_config", None), *_TOP_K)
    has_experts = any(t.role == "expert" for st in inv.stacks for _, tpl in st.kinds for t in tpl)
    if experts and top_k and has_experts and top_k <= experts:
        moe = MoESpec(num_experts=experts, experts_per_token=top_k,
                      expert_intermediate_size=_attr(text, "moe_intermediate_size", "expert_intermediate_size",
                                                     "intermediate_size")
                      or _attr(getattr(text, "ffn_config", None), "ffn_hidden_size") or inter)
    if moe is not None:
        inv = _fold_flat_experts(inv, moe.num_experts)
    window = getattr(text, "sliding_window", None)
    window = window if isinstance(window, int) and not isinstance(window, bool) and 0 < window < 10**9 else None
    notes: list[Any] = [Text("a_meta_built", version=version, cls=type(model).__name__)]
    if inv.tied:
        shown_ties = ", ".join(f"{a} = {b}" for a, b in inv.tied[:4])
        if len(inv.tied) > 4:
            shown_ties += f", … (+{len(inv.tied) - 4})"
        notes.append(Text("a_meta_tied", ties=shown_ties))
    n_dec = layers
    state = _state_spec(model, text, inv, n_dec)
    mla = _mla_spec(model, text)
    mixers = _recurrent_mixers(model)
    if mixers and state is None:
        notes.append(Text("a_meta_recurrent", mixers=", ".join(mixers[:3])))
    elif state is not None:
        notes.append(Text("a_state_engines", mixer=state.mixer,
                          layers=sum(k in ("state", "hybrid", "hybrid_sliding") for k in state.kinds)))
    _, layer_kv = ((), ()) if state is not None or mla is not None or enc_dec \
        else layer_kv_dims(text, layers, heads, kv, head_dim)
    layer_types, kv_values = _attention_layers(model, text, inv, n_dec, window, 2 * kv * head_dim) \
        if state is None and mla is None and not enc_dec else ((), ())
    if layer_kv:  # per-layer shapes from the config (Gemma 4's global layers, shared layers storing nothing)
        kv_values = ()  # the shapes say more than the projections' widths: a shared layer stores nothing
        notes.append(Text("a_layer_kv", shapes=_shapes_text(layer_kv)))
    compressed = _compressed_spec(model, inv, n_dec) if mla is None else None
    if compressed is not None:
        notes.append(Text("a_meta_kv_compressed", version=version,
                          layers=sum(bool(c) for c in compressed.compressors)))
    elif kv_values:
        notes.append(Text("a_meta_kv_widths", version=version,
                          values=", ".join(str(v) for v in sorted(set(kv_values)))))
    dtype = native.get("torch_dtype") or native.get("dtype") or ""
    # the checkpoint's quantization_config was kept from transformers (its quantizers would load libraries);
    # its method is the spec's, as for the built-in readers
    quant = quantization if isinstance(quantization, dict) else {}
    arch = native.get("architectures")
    spec = ModelSpec(
        name=name, model_type=model_type, architecture=arch[0] if isinstance(arch, list) and arch else "",
        num_layers=enc_layers or layers if enc_dec else layers, hidden_size=hidden, num_heads=heads,
        num_kv_heads=kv, head_dim=head_dim, intermediate_size=inter, vocab_size=vocab, kind=kind, layout="meta",
        tie_embeddings=tied_embed, num_decoder_layers=layers if enc_dec else 0,
        max_position_embeddings=min(_attr(text, "max_position_embeddings") or 0, LIMITS["max_position_embeddings"].maximum),
        sliding_window=window, compressed=compressed,
        layer_types=layer_types, kv_values_per_layer=kv_values, layer_kv=layer_kv, moe=moe, state=state, mla=mla, inventory=inv, dtype=dtype if isinstance(dtype, str) else "",
        quant_method=str((quant or {}).get("quant_method", ""))[:200], **_checkpoint_storage(quant, origin),
        source=origin, notes=tuple(notes),
        activation=str(getattr(text, "hidden_act", "") or getattr(text, "activation_function", "") or "")[:200],
    )
    return spec


def _attention_layers(model: Any, text: Any, inv: Inventory, n_layers: int, window: Optional[int],
                      uniform: int) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """The config's ``layer_types`` (full / sliding / chunked attention, what ``DynamicCache(config=...)`` makes a
    ``DynamicLayer`` or a ``DynamicSlidingWindowLayer`` of) where the model has a sliding window, and the values
    each layer caches per token where they are not ``uniform`` in every layer: its attention's ``k_proj`` plus
    ``v_proj`` output widths, the keys and values ``cache.update`` receives (MiMo-V2-Flash). ``((), ())`` where
    neither applies or a layer's projections are not found (the uniform layout then stands)."""
    import torch

    types: tuple[str, ...] = ()
    try:
        raw = getattr(text, "layer_types", None)
    except Exception:  # noqa: BLE001 - a config property that refuses
        raw = None
    if window and isinstance(raw, (list, tuple)) and len(raw) == n_layers \
            and all(x in ("full_attention", "sliding_attention", "chunked_attention") for x in raw):
        types = tuple("sliding_attention" if x == "chunked_attention" else x for x in raw)
    decoder = next((st for st in inv.stacks if st.numbered and st.n == n_layers), None)
    if decoder is None:
        return types, ()
    at = re.compile(re.escape(decoder.prefix) + r"(\d+)\.(?:self_attn|attention|attn)\.(k_proj|v_proj)$")
    widths: dict[int, dict[str, int]] = {}
    for mname, mod in model.named_modules():
        m = at.match(mname)
        if m and isinstance(mod, torch.nn.Linear):
            widths.setdefault(int(m.group(1)), {})[m.group(2)] = int(mod.out_features)
    if len(widths) != n_layers or any(len(w) != 2 for w in widths.values()):
        return types, ()
    values = tuple(widths[i]["k_proj"] + widths[i]["v_proj"] for i in range(n_layers))
    return types, (values if any(v != uniform for v in values) else ())


def _compressed_spec(model: Any, inv: Inventory, n_layers: int) -> Optional[CompressedKVSpec]:
    """DeepSeek-V4's compressors (``DeepseekV4CSACompressor`` / ``HCACompressor`` and the CSA layer's
    ``DeepseekV4Indexer``: modules with ``compress_rate``, ``head_dim``, ``kv_proj``, ``gate_proj`` and
    ``position_bias``) per decoder layer, in module order; None for a model that has none."""
    import torch

    decoder = next((st for st in inv.stacks if st.numbered and st.n == n_layers), None)
    if decoder is None:
        return None
    at = re.compile(re.escape(decoder.prefix) + r"(\d+)\.")
    per_layer: dict[int, list[tuple[int, int, int]]] = {}
    for mname, mod in model.named_modules():
        m = at.match(mname + ".")
        rate, dim, proj = (getattr(mod, n, None) for n in ("compress_rate", "head_dim", "kv_proj"))
        if not m or not isinstance(proj, torch.nn.Linear) or not hasattr(mod, "gate_proj") \
                or not hasattr(mod, "position_bias") or not all(isinstance(v, int) and not isinstance(v, bool)
                                                                and v > 0 for v in (rate, dim)):
            continue
        per_layer.setdefault(int(m.group(1)), []).append((rate, dim, int(proj.out_features)))
    if not per_layer:
        return None
    return CompressedKVSpec(compressors=tuple(tuple(per_layer.get(i, ())) for i in range(n_layers)))


def _shapes_text(layer_kv: tuple[tuple[int, int], ...]) -> str:
    """``16×256 (50 layers), 4×512 (10)``, ``none (20)``: the distinct per-layer cache shapes and their counts."""
    counts: dict[tuple[int, int], int] = {}
    for x in layer_kv:
        counts[x] = counts.get(x, 0) + 1
    return ", ".join(("—" if h == 0 else f"{h}×{d}") + f" ({n})" for (h, d), n in counts.items())


def layer_kv_dims(text: Any, n_layers: int, heads: int, kv: int, head_dim: int
                  ) -> tuple[tuple[str, ...], tuple[tuple[int, int], ...]]:
    """The attention layer types of the decoder and, where its layers' caches differ in shape, (key/value heads,
    head size) per layer as transformers' ``DynamicCache`` stores them (``ModelSpec.layer_kv``), read from the
    config transformers built, never from the model's name:

    * the layer types: ``layer_types`` when every entry is ``full_attention`` / ``sliding_attention``;
    * the shapes: ``per_layer_config[i].num_key_value_heads`` × ``.head_dim`` (transformers 5.24's heterogeneous
      configs; Gemma 4 gives its full-attention layers ``num_global_key_value_heads`` × ``global_head_dim``, the
      heads only when ``attention_k_eq_v``: configuration_gemma4.py ``__post_init__``);
    * a layer whose cache is a ``DummyLayer`` stores nothing: ``cache_utils.get_layer_types_and_kwargs`` names
      ``dummy`` the layers ``kv_sharing_modes`` marks ``reuse`` (Gemma 4's ``num_kv_shared_layers``, which read the
      keys and values of the last unshared layer of their type, modeling_gemma4.py ``Gemma4TextAttention``).

    A layer with ``attention_k_eq_v`` (Gemma 4's full-attention layers: no ``v_proj``) still stores two tensors:
    ``value_states`` is ``v_norm`` of the key projection, a tensor of its own, and ``cache.update`` keeps both.
    Shapes () when every layer stores ``kv`` × ``head_dim`` (the scalar fields hold)."""
    try:
        types = getattr(text, "layer_types", None)
    except Exception:  # noqa: BLE001 - a config property that refuses
        types = None
    kinds: tuple[str, ...] = ()
    if isinstance(types, (list, tuple)) and len(types) == n_layers \
            and all(t in ("full_attention", "sliding_attention") for t in types):
        kinds = tuple(types)
    try:
        from transformers.cache_utils import get_layer_types_and_kwargs

        cache_types, _ = get_layer_types_and_kwargs(text)
        per_layer = text.per_layer_config
        dims = []
        for i in range(n_layers):
            if cache_types[i] == "dummy":
                dims.append((0, 0))
                continue
            lc = per_layer[i]
            h, d = getattr(lc, "num_key_value_heads", None), getattr(lc, "head_dim", None)
            if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (h, d)) \
                    or heads % h:  # type: ignore[operator]
                return kinds, ()
            dims.append((int(h), int(d)))  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - older transformers (no per_layer_config), a config without per-layer fields
        return kinds, ()
    if len(dims) != n_layers or all(x == (kv, head_dim) for x in dims):
        return kinds, ()
    return kinds, tuple(dims)


#: transformers' cache layer types (cache_utils.py ``DYNAMIC_LAYER_TYPE_MAPPING``, 5.12+) as StateSpec kinds:
#: ``linear_attention`` / ``conv`` are ``LinearAttentionLayer`` (conv + recurrent state), ``hybrid`` /
#: ``hybrid_sliding`` add a dynamic (sliding) attention layer, ``moe`` / ``mlp`` / ``dummy`` are ``DummyLayer``
_STATE_KIND = {"linear_attention": "state", "conv": "state", "hybrid": "hybrid", "hybrid_sliding": "hybrid_sliding",
               "full_attention": "full", "sliding_attention": "sliding", "chunked_attention": "sliding",
               "moe": "none", "mlp": "none", "dummy": "none"}


def _mixer_state(mod: Any) -> Optional[tuple[int, int, int]]:
    """(conv values, recurrent values, conv kernel) one sequence's cache holds for a token mixer, from the attributes its
    class sets in transformers (5.24 ``modeling_*.py``), else None for a module that is not a recurrent mixer:

    * conv: the depthwise causal ``nn.Conv1d`` (``conv1d``; LFM2 ``conv``): ``LinearAttentionLayer`` keeps
      ``(batch, channels, conv_kernel_size)``;
    * recurrent: the gated delta net's ``(value heads, key head size, value head size)`` (Qwen3-Next); Mamba2's
      ``(heads, head_dim, ssm_state_size)`` (Mamba2, Bamba, Falcon-H1, Zamba2, GraniteMoeHybrid, Nemotron-H);
      Mamba's ``(intermediate_size, ssm_state_size)`` (Mamba, Falcon-Mamba, Jamba; Zamba's per-head split of the
      same ``intermediate_size``); none for a short convolution (LFM2)."""
    import torch

    # MiniMax's lightning attention keeps no conv state, only K^T V: (num_attention_heads, head_dim, head_dim)
    if hasattr(mod, "slope_rate") and hasattr(mod, "qkv_proj") and hasattr(mod, "block_size"):
        heads, dim = getattr(mod, "num_attention_heads", None), getattr(mod, "head_dim", None)
        if all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (heads, dim)):
            return 0, heads * dim * dim, 0
    kernel = getattr(mod, "conv_kernel_size", None)
    conv = getattr(mod, "conv1d", None)
    if conv is None:
        conv = getattr(mod, "conv", None)
    if not isinstance(kernel, int) or isinstance(kernel, bool) or not isinstance(conv, torch.nn.Conv1d):
        return None
    if conv.groups != conv.in_channels:  # not a depthwise causal conv
        return None
    channels = int(conv.weight.shape[0])

    def ints(*names: str) -> Optional[list[int]]:
        vals = [getattr(mod, n, None) for n in names]
        return vals if all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in vals) else None

    delta = ints("num_v_heads", "head_k_dim", "head_v_dim")
    # Kimi Delta Attention (KimiLinearDeltaAttention): per-channel decay, a (num_heads, head_dim, head_dim) state
    kda = ints("num_heads", "head_dim") if hasattr(mod, "forget_gate") and getattr(mod, "qkv_dim", None) else None
    mamba2 = ints("num_heads", "head_dim", "ssm_state_size")
    mamba = ints("intermediate_size", "ssm_state_size")
    if delta:
        recurrent = delta[0] * delta[1] * delta[2]
    elif kda:
        recurrent = kda[0] * kda[1] * kda[1]
    elif mamba2:
        recurrent = mamba2[0] * mamba2[1] * mamba2[2]
    elif mamba:
        recurrent = mamba[0] * mamba[1]
    else:
        recurrent = -1  # none read: only a ``conv`` layer (a short convolution, LFM2) may have none
    return channels * kernel, recurrent, kernel


def _state_spec(model: Any, text: Any, inv: Inventory, n_layers: int) -> Optional[StateSpec]:
    """The conv and recurrent state of each decoder layer of a recurrent / hybrid model, or None for a model
    whose config names no recurrent layer type (``layer_types`` in transformers' cache vocabulary, 5.12+) or whose
    mixers are not read here (the ``a_meta_recurrent`` note then says so)."""
    if type(model).__name__ in ("RwkvForCausalLM", "RwkvModel"):
        return _rwkv_state(text, n_layers)
    if type(model).__name__ in ("RecurrentGemmaForCausalLM", "RecurrentGemmaModel"):
        return _recurrent_gemma_state(text, n_layers)
    if type(model).__name__ in ("xLSTMForCausalLM", "xLSTMModel"):
        return _xlstm_state(text, n_layers)
    try:
        types = getattr(text, "layer_types", None)
    except Exception:  # noqa: BLE001 - a config property that refuses
        types = None
    if not isinstance(types, (list, tuple)) or len(types) != n_layers \
            or not any(t in ("linear_attention", "conv", "hybrid", "hybrid_sliding") for t in types) \
            or any(t not in _STATE_KIND for t in types):
        return None
    decoder = next((st for st in inv.stacks if st.numbered and st.n == n_layers), None)
    if decoder is None:
        return None
    at = re.compile(re.escape(decoder.prefix) + r"(\d+)\.")
    per_layer: dict[int, tuple[int, int, int]] = {}
    mixer = ""
    for mname, mod in model.named_modules():
        m = at.match(mname + ".")
        if not m:
            continue
        found = _mixer_state(mod)
        if found is not None:
            i = int(m.group(1))
            per_layer.setdefault(i, found)
            mixer = mixer or type(mod).__name__
    kinds = tuple(_STATE_KIND[t] for t in types)
    conv, rec, kernels = [], [], []
    for i, k in enumerate(kinds):
        if k in ("state", "hybrid", "hybrid_sliding"):
            c, r, kern = per_layer.get(i, (0, -1, 0))
            if i not in per_layer or (r < 0 and types[i] != "conv") or (r > 0 and types[i] == "conv") \
                    or (c == 0 and r <= 0):
                return None  # a recurrent layer whose mixer is not read: not modelled (stated)
            conv.append(c)
            rec.append(max(r, 0))
            kernels.append(kern)
        else:
            conv.append(0)
            rec.append(0)
            kernels.append(0)
    return StateSpec(kinds=kinds, conv_values=tuple(conv), recurrent_values=tuple(rec), mixer=mixer,
                     conv_kernels=tuple(kernels))


def _mla_spec(model: Any, text: Any) -> Optional[MLASpec]:
    """Multi-head latent attention in a model transformers builds (Kimi-Linear's ``KimiLinearAttention``, any
    attention with DeepSeek's ``kv_a_proj_with_mqa``): its config's ranks, so that the cache holds the latent
    (``kv_lora_rank + qk_rope_head_dim`` per token and layer, as ``cache.update(kv_nope, k_rot)`` stores it)."""
    if not any(hasattr(mod, "kv_a_proj_with_mqa") for mod in model.modules()):
        return None
    vals = {n: getattr(text, n, None) for n in ("kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim")}
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in vals.values()):
        return None
    q = getattr(text, "q_lora_rank", None)
    return MLASpec(q_lora_rank=q if isinstance(q, int) and not isinstance(q, bool) and q > 0 else None, **vals)


def _rwkv_state(text: Any, n_layers: int) -> Optional[StateSpec]:
    """RWKV (v4, ``modeling_rwkv.py``): ``RwkvModel.forward`` allocates five ``(batch, hidden_size, layers)`` states
    when ``use_cache``: the attention's and the feed-forward's shifted token in the model's dtype (``i <= 1``) and
    the WKV numerator, denominator and maximum in float32, every version. Kept as 2 × hidden "conv" (token
    shift, model dtype) and 3 × hidden "recurrent" (float32) values per layer."""
    hidden = getattr(text, "hidden_size", None)
    if not isinstance(hidden, int) or isinstance(hidden, bool) or hidden <= 0:
        return None
    return StateSpec(kinds=("state",) * n_layers, conv_values=(2 * hidden,) * n_layers,
                     recurrent_values=(3 * hidden,) * n_layers, mixer="RwkvSelfAttention",
                     conv_kernels=(0,) * n_layers)


def _recurrent_gemma_state(text: Any, n_layers: int) -> Optional[StateSpec]:
    """RecurrentGemma (Griffin, ``modeling_recurrent_gemma.py``, read at 5.24.0): its recurrent blocks keep their
    states in the modules, not in the cache (``RecurrentGemmaRecurrentBlock._setup_cache``): the RG-LRU's
    ``(batch, lru_width)`` state in float32 ("always computed in full precision") and the conv's ``(batch,
    lru_width, conv1d_width − 1)`` in the model's dtype; its attention blocks are sliding-window layers of the
    ``DynamicCache`` (``attention_window_size``). A decode step keeps ``torch.cat((conv1d_state, x), -1)[:, :, 1:]``:
    a view of ``conv1d_width`` columns, whose storage stays allocated (the prefill's ``pad`` leaves ``conv1d_width −
    1``): kept as ``lru_width × conv1d_width`` conv values, the decode state, and ``lru_width`` recurrent values."""
    types = getattr(text, "layer_types", None)
    width, conv = getattr(text, "lru_width", None), getattr(text, "conv1d_width", None)
    if not isinstance(types, (list, tuple)) or len(types) != n_layers \
            or any(t not in ("linear_attention", "sliding_attention") for t in types) \
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (width, conv)):
        return None
    rec = [t == "linear_attention" for t in types]
    return StateSpec(kinds=tuple("state" if r else "sliding" for r in rec),
                     conv_values=tuple(width * conv if r else 0 for r in rec),
                     recurrent_values=tuple(width if r else 0 for r in rec), mixer="RecurrentGemmaRglru",
                     conv_kernels=tuple(conv if r else 0 for r in rec))


def _xlstm_state(text: Any, n_layers: int) -> Optional[StateSpec]:
    """xLSTM (mLSTM blocks, ``modeling_xlstm.py``, read at 5.24.0): ``xLSTMCache`` allocates per layer the matrix
    memory ``(batch, num_heads, qk_head_dim, v_head_dim)``, the normaliser ``(batch, num_heads, qk_head_dim)`` and
    the stabiliser ``(batch, num_heads, 1)``, in the dtype ``xLSTMModel.forward`` gives it (the input embeddings':
    the model's), the steps copying into them; no conv state. The head dims are the config's (``qk_dim`` /
    ``v_dim`` rounded up to a multiple of 64, over the heads), as the cache sizes them."""
    try:
        heads, qk, v = text.num_heads, text.qk_head_dim, text.v_head_dim
    except Exception:  # noqa: BLE001 - a config missing what its properties read
        return None
    if not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in (heads, qk, v)):
        return None
    per_layer = heads * (qk * v + qk + 1)
    return StateSpec(kinds=("state",) * n_layers, conv_values=(0,) * n_layers,
                     recurrent_values=(per_layer,) * n_layers, mixer="xLSTMLayer", conv_kernels=(0,) * n_layers)


def _checkpoint_storage(quant: dict[str, Any], origin: str = "config.json") -> dict[str, Any]:
    """``quant_format`` / ``quant_skip`` of a pre-quantized checkpoint, as the built-in readers set them."""
    from .quant_config import checkpoint_quant

    cq = checkpoint_quant(quant, origin)
    return {} if cq is None else {"quant_format": cq.format, "quant_skip": cq.skip, "kv_quant": cq.kv,
                                "quant_layers": cq.layers}


#: module class names of recurrent / state-space token mixers (Mamba, Mamba2, Jamba, Falcon-H1, Zamba, Bamba,
#: Qwen3-Next's gated delta net, LFM2's short convolution, RWKV, RecurrentGemma's RG-LRU, xLSTM): their caches are conv and state tensors of a
#: fixed size, not keys and values per token
_RECURRENT = ("mamba", "mixer", "ssm", "deltanet", "delta_net", "linearattention", "shortconv", "rwkv", "lightning",
              "rglru", "recurrentblock", "lstm", "deltaattention")


def _recurrent_mixers(model: Any) -> list[str]:
    seen: list[str] = []
    for mod in model.modules():
        name = type(mod).__name__
        low = name.lower()
        if any(r in low for r in _RECURRENT) and "norm" not in low and "feedforward" not in low and name not in seen \
                and not low.endswith(("model", "forcausallm", "forconditionalgeneration", "layer", "block")):
            seen.append(name)
    return seen


def _is_decoder(model: Any, config: Any) -> bool:
    from transformers import GenerationMixin

    return isinstance(model, GenerationMixin) or bool(getattr(config, "is_decoder", False))
