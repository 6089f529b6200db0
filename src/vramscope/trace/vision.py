"""Trace a vision tower's forward on fake tensors on the CPU: the transient bytes it allocates over ``patches``.

The tower is transformers 5.24's own module (``Qwen2VisionTransformerPretrainedModel``,
``Qwen2_5_VisionTransformerPretrainedModel``, ``Qwen3VLVisionModel``, ``CLIPVisionModel``, ``SiglipVisionModel``,
``InternVLVisionModel``) built from the model's ``vision_config`` in bf16 with ``attn_implementation="sdpa"``:
on the CPU, SDPA without a mask runs the fused flash kernel (``_scaled_dot_product_flash_attention_for_cpu``:
the output and an fp32 log-sum-exp per head and position, no score matrix), as the FlashAttention varlen kernel
vLLM 0.33 picks for vision towers on sm80+ (``CudaPlatform.get_vit_attn_backend``: FLASH_ATTN first) does. It is
configured as vLLM runs it: CLIP only up to its feature layer and no hidden-state list (vLLM's
``CLIPVisionModel(num_hidden_layers_override=...)``), one call over all the items.

The Qwen towers read their grid (``grid_thw``) and the sequence lengths derived from it as Python numbers
(``tolist``, ``unique_consecutive``), which fake tensors cannot give: :class:`_Shadow` keeps a real copy of every
small tensor computed from real data only (the grid, positions, window indices, ``cu_seqlens``) and answers those
reads from it. The float activations stay fake. The weights are tracked before the forward and subtracted, so the
result is what the forward adds: its transient peak, the output included.

Needs the ``trace`` extra (torch, transformers); imports them lazily.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Optional

#: a shadowed (real) copy is kept only for tensors up to this many elements
SMALL = 1 << 22


@dataclass(frozen=True)
class TowerTrace:
    model_type: str
    patches: int  # positions the tower runs (the sequence before merging), all items
    items: int
    weights_bytes: int
    input_bytes: int  # the pixel values handed to the tower (fp32), tracked as an input, not in peak_bytes
    peak_bytes: int  # the forward's peak of live bytes above the weights and the input (outputs included)
    output_bytes: int  # the tower's output (merged tokens × output width)


def _no_fake() -> Any:
    from torch._subclasses.fake_tensor import unset_fake_temporarily
    from torch.utils._python_dispatch import _disable_current_modes

    @contextmanager
    def both() -> Iterator[None]:
        with unset_fake_temporarily(), _disable_current_modes():
            yield

    return both()


def _make_shadow(fake_mode: Any) -> Any:
    import torch
    from torch._subclasses.fake_tensor import DataDependentOutputException, DynamicOutputShapeException, FakeTensor
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves, tree_map
    from torch.utils.weak import WeakIdKeyDictionary

    lift = (torch.ops.aten.lift_fresh.default, torch.ops.aten.lift_fresh_copy.default)
    scalar = torch.ops.aten._local_scalar_dense.default

    class _Shadow(TorchDispatchMode):
        """Real values beside the fake tensors computed from real data only (module docstring)."""

        def __init__(self) -> None:
            super().__init__()
            self.real = WeakIdKeyDictionary()

        def _args(self, args: Any, kwargs: Any) -> tuple[bool, Any, Any]:
            ok = [True]

            def conv(x: Any) -> Any:
                if isinstance(x, torch.Tensor):
                    r = self.real.get(x)
                    if r is None:
                        ok[0] = False
                    return r
                return x

            ra, rk = tree_map(conv, (args, kwargs))
            return ok[0], ra, rk

        def _keep(self, fake: Any, real: Any) -> None:
            for f, r in zip(tree_leaves(fake), tree_leaves(real)):
                if isinstance(f, torch.Tensor) and isinstance(r, torch.Tensor):
                    self.real[f] = r

        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            kwargs = kwargs or {}
            if func in lift:
                out = func(*args, **kwargs)
                if not isinstance(args[0], FakeTensor) and args[0].numel() <= SMALL:
                    with _no_fake():
                        self.real[out] = args[0].clone()
                return out
            ok, ra, rk = self._args(args, kwargs)
            if func is scalar and ok:
                with _no_fake():
                    return ra[0].item()
            try:
                out = func(*args, **kwargs)
            except (DataDependentOutputException, DynamicOutputShapeException):
                if not ok:
                    raise
                with _no_fake():
                    real = func(*ra, **rk)
                out = tree_map(lambda t: fake_mode.from_tensor(t) if isinstance(t, torch.Tensor) else t, real)
                self._keep(out, real)
                return out
            if ok and all(t.numel() <= SMALL for t in tree_leaves(out) if isinstance(t, torch.Tensor)):
                with _no_fake():
                    real = func(*ra, **rk)
                self._keep(out, real)
            return out

    return _Shadow()


def hf_config(config: Mapping[str, Any]) -> Any:
    import transformers

    native = {k: v for k, v in config.items() if k not in ("transformers_version", "_name_or_path")}
    return transformers.AutoConfig.for_model(**native)


def _tower(conf: Any, layers: Optional[int]) -> tuple[Any, Any]:
    """(module class, vision config) for the model's tower, ``layers`` deep (None: as configured)."""
    mt = conf.model_type
    vc = conf.vision_config
    if mt == "llava" or mt == "llava_next":
        # vLLM's LLaVA builds CLIP up to the feature layer (init_vision_tower_for_llava: num_hidden_layers_override)
        fl = conf.vision_feature_layer
        fl = fl if isinstance(fl, int) else min(fl)
        vc.num_hidden_layers = vc.num_hidden_layers + fl + 1 if fl < 0 else fl
    depth_key = "depth" if mt in ("qwen2_vl", "qwen2_5_vl", "qwen3_vl") else "num_hidden_layers"
    if layers is not None:
        setattr(vc, depth_key, layers)
        if mt == "qwen2_5_vl":
            vc.fullatt_block_indexes = [i for i in vc.fullatt_block_indexes if i < layers] or [layers - 1]
        if mt == "qwen3_vl":
            vc.deepstack_visual_indexes = [i for i in vc.deepstack_visual_indexes if i < layers]
    vc._attn_implementation = "sdpa"
    if mt == "qwen2_vl":
        from transformers.models.qwen2_vl.modeling_qwen2_vl import Qwen2VisionTransformerPretrainedModel as cls
    elif mt == "qwen2_5_vl":
        from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import (
            Qwen2_5_VisionTransformerPretrainedModel as cls)
    elif mt == "qwen3_vl":
        from transformers.models.qwen3_vl.modeling_qwen3_vl import Qwen3VLVisionModel as cls
    elif mt in ("llava", "llava_next"):
        from transformers import CLIPVisionModel as cls
    elif mt == "gemma3":
        from transformers import SiglipVisionModel as cls
    elif mt == "internvl":
        from transformers.models.internvl.modeling_internvl import InternVLVisionModel as cls
    else:
        raise ValueError(f"no vision tower trace for model_type {mt!r}")
    return cls, vc


def trace_tower(config: Mapping[str, Any], grid: tuple[int, int, int] = (1, 0, 0), items: int = 1,
                layers: Optional[int] = None, on_tracker: Any = None) -> TowerTrace:
    """Trace the tower of the model whose ``config.json`` is ``config`` over ``items`` items. Qwen towers: each
    item a ``grid = (t, h, w)`` of patches; the others: their native image (``image_size``²) per item."""
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode

    from .tracker import make_tracker

    conf = hf_config(config)
    mt = conf.model_type
    cls, vc = _tower(conf, layers)
    mode = FakeTensorMode(allow_non_fake_inputs=True)
    shadow = _make_shadow(mode)
    qwen = mt in ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")
    from transformers.modeling_utils import PreTrainedModel

    original = PreTrainedModel.__dict__.get("initialize_weights")
    PreTrainedModel.initialize_weights = lambda self: None  # values never read (build.build_model)
    try:
        with mode:
            net = cls._from_config(vc, dtype=torch.bfloat16).eval()
    finally:
        PreTrainedModel.initialize_weights = original
    with mode, shadow:
        if qwen:
            t, h, w = grid
            thw = torch.tensor([[t, h, w]] * items)
            patches = t * h * w * items
            pixel = torch.empty(patches, vc.in_channels * vc.temporal_patch_size * vc.patch_size ** 2)
            call = {"hidden_states": pixel, "grid_thw": thw}
        else:
            size = vc.image_size if isinstance(vc.image_size, int) else vc.image_size[0]
            patch = vc.patch_size if isinstance(vc.patch_size, int) else vc.patch_size[0]
            pixel = torch.empty(items, vc.num_channels, size, size, dtype=torch.bfloat16)
            side = size // patch
            patches = items * (side * side + (0 if mt == "gemma3" else 1))
            call = {"pixel_values": pixel}
    tracker = make_tracker(None, mode)
    held = list(net.parameters()) + list(net.buffers())
    tracker.track_all(held)
    weights = tracker.live
    tracker.track_all([pixel])
    base = tracker.live
    if on_tracker is not None:
        on_tracker(tracker)
    with mode, shadow, tracker, torch.no_grad():
        out = net(**call)
    first = out[0] if isinstance(out, tuple) else getattr(out, "pooler_output", None) if qwen else \
        out.last_hidden_state
    if qwen and first is None:
        first = out.last_hidden_state
    output = first.numel() * first.element_size() if isinstance(first, torch.Tensor) else 0
    return TowerTrace(mt, patches, items, weights, base - weights, tracker.log.peak_bytes - base, output)
