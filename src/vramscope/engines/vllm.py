"""vLLM: the engine preallocates ``gpu_memory_utilization`` × GPU memory and gives what is left to the KV cache.

vLLM's V1 engine (``vllm/v1/worker/gpu_worker.py: determine_available_memory``, ``vllm/v1/core/kv_cache_utils.py``;
read at the tags v0.11.0, v0.15.0 and v0.33.0, chosen by ``--vllm-version``, default :data:`VLLM_MODELLED`) loads
the weights, runs one profile forward pass with ``max_num_batched_tokens`` tokens spread over up to
``max_num_seqs`` sequences, measures the PyTorch activation peak and the memory used outside PyTorch (CUDA
context, cuBLAS, NCCL), and sizes the KV cache as

    kv_pool = gpu_memory_utilization × total_memory − weights − activation_peak − non_torch [− cuda_graphs]

(``cuda_graphs`` is subtracted since v0.21.0, when ``VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS`` became the
default; before, the graphs were captured after the pool was allocated, in the ``1 − gpu_memory_utilization``
margin). Its log prints each term, the KV cache size in tokens and the maximum concurrency at ``max_model_len``;
it refuses to start when one sequence of ``max_model_len`` tokens does not fit. vramscope computes each term:

* defaults by version, GPU and entry point (``EngineArgs.get_batch_defaults`` / ``_set_default_args``):
  ``vllm serve`` takes ``max_num_batched_tokens`` 2048 and ``max_num_seqs`` 256 on GPUs under 70 GiB and on
  A100s, 8192 / 1024 on larger GPUs (H100, H200), and since a release after v0.21.0 (read at v0.33.0) 16384 / 1024
  on GPUs of 160 GiB or more (B200); the ``LLM`` class 8192 / 256, 16384 / 1024 and 16384 / 1024;
* weights: per tensor, per tensor-parallel rank (heads, MLP and vocabulary split), in the checkpoint's format;
  ``--enable-expert-parallel`` puts E / (TP × DP) whole experts on each GPU instead of sharding every expert
  over TP; ``--data-parallel-size`` runs full replicas (each TP group holds the same as with DP 1);
* activation peak: the prefill transient of ``max_num_batched_tokens`` tokens (no s² term: FlashAttention),
  plus fp32 logits for ``max_num_seqs`` rows and two sampler copies of them, not divided by tensor parallelism;
* non-torch memory: CUDA context and workspaces, 0.3 GiB nominal, plus NCCL buffers under tensor parallelism;
* CUDA graphs: 0.3 GiB nominal unless ``--enforce-eager`` (0.27 GiB in a published log); the capture sizes are
  ``[1, 2, 4] + range(8, 256, 8) + range(256, max + 1, 16)`` with ``max = min(2 × max_num_seqs, 512)``;
* LoRA (``--enable-lora``): every linear layer vLLM wraps holds ``max_loras`` adapters of ``max_lora_rank``
  preallocated (``vllm/lora/layers/base_linear.py: create_lora_weights``: ``lora_a_stacked`` and
  ``lora_b_stacked`` per slice, column-parallel layers split B's output, row-parallel layers A's input);
* the KV cache in blocks of ``--block-size`` (16) tokens, grouped by the hybrid KV cache manager
  (:func:`kv_groups`): full-attention layers keep every token, sliding-window layers
  ``sliding_window − 1 + max_num_batched_tokens`` tokens plus a block per request (twice the batch at v0.33.0,
  where asynchronous scheduling keeps two batches in flight), MLA layers the latent; ``--kv-cache-dtype fp8``
  stores one byte per value. Prefix caching (on by default in V1) reuses blocks inside the pool: it does not
  change the pool's size;
* a recurrent / hybrid model's mamba layers (:func:`state_groups`, read at v0.11.0 and checked against its code
  run on CPU): one ``MambaSpec`` page per request, the attention block size raised so that a page holds it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, Optional

from .. import i18n
from ..errors import Opt, Text
from ..gpus import Gpu
from ..memory.activations import inference_transient
from ..memory import kv_cache
from ..memory.kv_cache import KV_DTYPE_BYTES, parse_version
from ..model.spec import SLIDING, ModelSpec
from ..memory.overhead import NCCL
from ..result import Assumption, Estimate, GpuVerdict
from ..sources.base import ResolvedModel
from ..units import parse_float, parse_int
from ..options import MAX_SEQ, Option
from . import vllm_dsv4, vllm_mm
from .base import (Candidate, Engine, EngineReport, Phases, Record, rank_spec, rank_weights,
                   record_serving)

if TYPE_CHECKING:
    from ..workload import Workload


GiB = 2**30
NON_TORCH = int(0.3 * GiB)
NON_TORCH_HIGH = int(1.8 * GiB)
CUDA_GRAPHS = int(0.3 * GiB)
BLOCK = 16

#: the newest vLLM read; what is modelled unless --vllm-version names another
VLLM_MODELLED = "0.33.0"
#: CUDA graph memory profiled and taken from the pool before it is sized (gpu_worker.py at v0.33.0: "CUDA graph
#: memory profiling is enabled (default since v0.21.0)")
GRAPHS_PROFILED_SINCE = (0, 21, 0)
#: the V1 engine is the default (v0.8.0); before, V0's defaults (vllm/config.py, arg_utils.py at v0.6.5):
#: max_num_seqs 256, max_num_batched_tokens = max(max_model_len, 2048), or 2048 where chunked prefill is turned on
#: for max_model_len > 32768 (no sliding window, no LoRA), and no hybrid KV cache manager
V1_SINCE = (0, 8, 0)
#: "GPU KV cache size" printed as int(max_concurrency × max_model_len) (v0.21.0; v0.20.0 and before:
#: num_blocks // groups × block_size)
CAPACITY_PRINT_SINCE = (0, 21, 0)
#: the memory check counts the groups' blocks (padding included), not each layer's own spec (seen at v0.15.0,
#: not at v0.11.0)
GROUP_CHECK_SINCE = (0, 15, 0)
#: a hybrid model's group size is the larger kind's count when under 1.5 × the smaller (seen at v0.20.0, not at
#: v0.15.0)
GROUP_MAX_SINCE = (0, 20, 0)
#: the >= 160 GiB default tier and sliding windows sized for ``max_in_flight_tokens`` (two batches with
#: asynchronous scheduling): at v0.33.0, not at v0.21.0; the first release between them is not known, so 0.22.0
LATE_SINCE = (0, 22, 0)
#: vllm/model_executor/models/registry.py at v0.33.0: "MllamaForConditionalGeneration": "0.10.2" among the
#: removed architectures (encoder-decoder models went with the V0 engine)
MLLAMA_REMOVED = (0, 10, 2)
#: Model Runner V2 (the default at v0.33.0) builds and profiles vision towers on the first pipeline stage only
MM_FIRST_STAGE_SINCE = (0, 33, 0)


i18n.register({
    "a_vllm_version": {
        "en": "vLLM {version} ('vllm {entry}' defaults); CUDA graph memory is taken from the budget before the KV "
              "cache is sized (since v0.21.0)",
        "zh": "vLLM {version}（'vllm {entry}' 的默认值）；确定 KV 缓存大小前先从预算中扣除 CUDA Graph 显存（自 v0.21.0 起）",
    },
    "a_vllm_version_old": {
        "en": "vLLM {version} ('vllm {entry}' defaults); CUDA graphs are captured after the KV cache is allocated, in "
              "the 1 − gpu_memory_utilization margin (before v0.21.0)",
        "zh": "vLLM {version}（'vllm {entry}' 的默认值）；CUDA Graph 在分配 KV 缓存之后、于 1 − gpu_memory_utilization "
              "的余量中捕获（v0.21.0 之前）",
    },
    "a_vllm_kv_checkpoint": {
        "en": "KV cache: fp8 (1 byte per value), because the checkpoint's ModelOpt kv_cache_quant_algo is FP8 and vLLM's kv_cache_dtype 'auto' follows it (vllm/utils/torch_utils.py at 0024350b5da3); {o_kv} overrides",
        "zh": "KV 缓存：fp8（每值 1 字节），因为检查点的 ModelOpt kv_cache_quant_algo 为 FP8，vLLM 的 kv_cache_dtype 'auto' 会跟随它（vllm/utils/torch_utils.py，0024350b5da3）；{o_kv} 可覆盖",
    },
    "a_vllm_dtype_auto": {
        "en": "weights: {dtype}: vLLM's dtype 'auto' runs a float32 checkpoint in the GPU's first supported dtype",
        "zh": "权重：{dtype}：vLLM 的 dtype 'auto' 会把 float32 检查点按 GPU 支持的首选精度运行",
    },
    "a_vllm_prefix_caching": {
        "en": "prefix caching (on by default in vLLM V1) reuses blocks inside the KV cache pool: it does not change "
              "the pool's size",
        "zh": "前缀缓存（vLLM V1 默认开启）复用 KV 缓存池中的块：不改变缓存池的大小",
    },
    "a_vllm_hybrid": {
        "en": "hybrid KV cache manager: layers in {groups} groups of {size}, sliding-window layers keep "
              "{window} − 1 tokens plus the scheduled batch and a block per request; concurrency counts each "
              "group's blocks",
        "zh": "混合 KV 缓存管理器：各层分为 {groups} 组，每组 {size} 层；滑动窗口层每个请求只保留 {window} − 1 个 token"
              "加上调度批次与一个块；并发数按每组的块数计算",
    },
    "a_vllm_state": {
        "en": "recurrent / hybrid model: {mamba} mamba layers keep {pages} state page(s) per request ({state} of conv "
              "({conv}) and SSM ({ssm}) states, padded to {page}), {attn} attention layers their keys and values in "
              "blocks of {block} tokens (raised so that an attention page holds a mamba page); layers in {groups} "
              "groups of {size} (vLLM's MambaSpec and its block-size alignment, read at v0.11.0 and v0.33.0)",
        "zh": "循环/混合模型：{mamba} 个 mamba 层每个请求保留 {pages} 页状态（卷积状态（{conv}）与 SSM 状态（{ssm}）共 {state}，"
              "填充到 {page}），{attn} 个注意力层以每块 {block} 个 token 保存 K/V（块大小被调高，使一个注意力页能容纳一个 "
              "mamba 页）；各层分为 {groups} 组，每组 {size} 层（vLLM 的 MambaSpec 及其块大小对齐，按 v0.11.0 与 v0.33.0 阅读）",
    },
    "a_vllm_state_free": {
        "en": "attention-free recurrent model: {mamba} mamba layers keep {pages} state page(s) of {state} per request "
              "(conv {conv}, SSM {ssm}), whatever the length; concurrency is the pages the pool holds over that "
              "(vLLM's MambaSpec, read at v0.11.0 and v0.33.0)",
        "zh": "无注意力的循环模型：{mamba} 个 mamba 层每个请求保留 {pages} 页 {state} 的状态（卷积 {conv}，SSM {ssm}），"
              "与长度无关；并发数即缓存池能容纳的页数除以该数（vLLM 的 MambaSpec，按 v0.11.0 与 v0.33.0 阅读）",
    },
    "a_vllm_state_align": {
        "en": "vLLM {version}: prefix caching of mamba states ('align' mode; on by default for hybrid models, "
              "{o_off} turns it off, {o_on} turns it on for attention-free ones) keeps {pages} state blocks per "
              "request in each mamba group: the running state, the last one cached at a block boundary{ckpt}",
        "zh": "vLLM {version}：mamba 状态的前缀缓存（'align' 模式；混合模型默认开启，{o_off} 关闭，{o_on} 为无注意力模型开启）"
              "在每个 mamba 组中每个请求保留 {pages} 个状态块：当前状态、最近一次在块边界缓存的状态{ckpt}",
    },
    "a_vllm_state_ckpt": {
        "en": ", and MambaMixer2's prefill checkpoint",
        "zh": "，以及 MambaMixer2 的预填充检查点",
    },
    "a_vllm_state_gdn": {
        "en": "gated delta net: counted with the Triton GDN prefill kernel (no checkpoint block, as vLLM 0.33.0 "
              "plans it before Hopper); on Blackwell with key heads of 128 and a CUDA 13 runtime vLLM's FlashInfer "
              "kernel adds a checkpoint block per request and aligns the block size to 64 tokens: not modelled (the "
              "CUDA runtime is not known here), a lower bound there",
        "zh": "门控 delta 网络：按 Triton GDN 预填充内核计算（无检查点块，即 vLLM 0.33.0 在 Hopper 之前的 GPU 上的规划）；"
              "在键头维度为 128 且 CUDA 13 运行时的 Blackwell 上，vLLM 的 FlashInfer 内核每个请求多一个检查点块，"
              "并把块大小对齐到 64 个 token：此处未建模（此处不知道 CUDA 运行时版本），在那里为下限",
    },
    "a_vllm_state_gdn_hopper": {
        "en": "gated delta net on Hopper (compute capability 9.0): vLLM 0.33.0 runs FlashInfer's GDN prefill kernel, "
              "which adds a prefill checkpoint block per request in each mamba group and aligns the block size to "
              "64 tokens (counted)",
        "zh": "Hopper（计算能力 9.0）上的门控 delta 网络：vLLM 0.33.0 使用 FlashInfer 的 GDN 预填充内核，每个 mamba 组"
              "中每个请求多一个预填充检查点块，并把块大小对齐到 64 个 token（已计入）",
    },
    "a_vllm_state_other_mixer": {
        "en": "the '{model_type}' state layers are not vLLM's MambaMixer / MambaMixer2 / gated delta net: counted "
              "with two state blocks per request and no checkpoint block, not checked against vLLM's code",
        "zh": "'{model_type}' 的状态层不是 vLLM 的 MambaMixer / MambaMixer2 / 门控 delta 网络：按每个请求两个状态块、"
              "无检查点块计算，未与 vLLM 的代码核对",
    },
    "a_vllm_state_late": {
        "en": "vLLM {version}: prefix caching of mamba states turned on (its 'all' mode for the Mamba families before "
              "0.22, a state per block of the context) is not modelled: one state page per request is counted, a "
              "lower bound",
        "zh": "vLLM {version}：开启的 mamba 状态前缀缓存（0.22 之前 Mamba 系列使用 'all' 模式，上下文每个块保存一个状态）"
              "此处未建模：按每个请求一页状态计算，为下限",
    },
    "a_vllm_dsv4": {
        "en": "DeepSeek-V4 under vLLM {version} (read at v0.33.0, FlashMLA on compute capability 9 / 10): every "
              "layer's sliding-window cache, the compressed latent of the CSA / HCA layers, their compressors' "
              "float32 states and the CSA indexer's FP8 keys, in the fp8_ds_mla layout (584 bytes per token, "
              "pages rounded to 576 bytes; {o_kv} does not change it), blocks of 256 tokens, packed in "
              "{groups} groups ({sliding} of them sliding-window ones, which hold the window plus two scheduled "
              "batches per request); a block over the pool is {block}, a max_model_len request takes {blocks} "
              "blocks; tensor parallelism does not split this cache; compute capability 12 (FlashInfer) is not "
              "modelled",
        "zh": "vLLM {version} 下的 DeepSeek-V4（按 v0.33.0 阅读，计算能力 9 / 10 上的 FlashMLA）：每层的滑动窗口缓存、"
              "CSA / HCA 层的压缩潜变量、其压缩器的 float32 状态以及 CSA 索引器的 FP8 键，采用 fp8_ds_mla 布局（每 token "
              "584 字节，页向上取整到 576 字节；{o_kv} 不改变它），每块 256 个 token，打包为 {groups} 组（其中 "
              "{sliding} 组为滑动窗口组，每个请求保存窗口加两个调度批次）；缓存池中一个块为 {block}，一个 max_model_len "
              "请求占用 {blocks} 个块；张量并行不切分此缓存；计算能力 12（FlashInfer）未建模",
    },
    "a_vllm_hybrid_off": {
        "en": "{o}: sliding-window layers keep every token",
        "zh": "{o}：滑动窗口层保留全部 token",
    },
    "a_vllm_lora": {
        "en": "LoRA: {loras} adapter slot(s) of rank {rank} preallocated in every attention and dense MLP projection "
              "(expert and vocabulary LoRA not counted)",
        "zh": "LoRA：在每个注意力与稠密 MLP 投影中预分配 {loras} 个秩为 {rank} 的适配器槽位（未计专家与词表 LoRA）",
    },
    "a_vllm_dp": {
        "en": "data parallel {dp} × tensor parallel {tp} = {gpus} GPUs, each replica holding the whole model; each "
              "GPU as shown",
        "zh": "数据并行 {dp} × 张量并行 {tp} = {gpus} 张 GPU，每个副本持有完整模型；每张 GPU 如上所示",
    },
    "a_vllm_mm": {
        "en": "multimodal: the largest item is {per} tokens; encoder budget {budget} tokens; the profile run encodes "
              "{items} dummy {modality} item(s) of that size and keeps their outputs ({out}) and pixel inputs "
              "({inputs}) while the language model's dummy batch runs, the tower's forward peaking at {tower}: "
              "the larger is taken from the KV cache (vLLM 0.33 MultiModalBudget / profile_run; the tower's "
              "forward is an estimate, ±30 %)",
        "zh": "多模态：最大的单项为 {per} 个 token；编码器预算 {budget} 个 token；显存探测运行编码 {items} 个该尺寸的 {modality} "
              "虚拟输入，并在语言模型虚拟批次运行时保留其输出（{out}）与像素输入（{inputs}），视觉塔前向峰值为 {tower}："
              "取较大者从 KV 缓存中扣除（vLLM 0.33 的 MultiModalBudget / profile_run；视觉塔前向为估计值，±30%）",
    },
    "a_vllm_mm_skip": {
        "en": "multimodal: the largest item is {per} tokens, encoder budget {budget} tokens; {o}: the encoder and its "
              "cache are not profiled, their memory comes out of the KV cache margin at run time",
        "zh": "多模态：最大的单项为 {per} 个 token，编码器预算 {budget} 个 token；{o}：编码器及其缓存不参与显存探测，"
              "运行时从 KV 缓存余量中占用显存",
    },
    "a_vllm_mm_off": {
        "en": "multimodal: {o} is 0 for every modality: vLLM does not build the vision tower (its weights are not "
              "loaded) and profiles the language model alone",
        "zh": "多模态：所有模态的 {o} 均为 0：vLLM 不构建视觉塔（不加载其权重），只对语言模型做显存探测",
    },
    "a_vllm_mm_unmodelled": {
        "en": "multimodal: vLLM's encoder budget and dummy-image profile for '{model_type}' are not modelled; the "
              "activation peak is the language model's alone (a lower bound)",
        "zh": "多模态：未对 '{model_type}' 建模 vLLM 的编码器预算与虚拟图像显存探测；激活峰值只计语言模型（为下限）",
    },
    "r_vllm_no_arch": {
        "en": "vLLM {version} does not run '{model_type}' ({mixer} layers): its model registry "
              "(vllm/model_executor/models/registry.py, read at v0.33.0) has no such architecture; use --engine "
              "transformers",
        "zh": "vLLM {version} 不支持 '{model_type}'（{mixer} 层）：其模型注册表（vllm/model_executor/models/registry.py，"
              "按 v0.33.0 阅读）中没有该架构；请使用 --engine transformers",
    },
    "r_vllm_mllama": {
        "en": "vLLM {version} does not run Llama-3.2-Vision (MllamaForConditionalGeneration was removed in 0.10.2 "
              "with the V0 engine); use --engine transformers, or an earlier --vllm-version",
        "zh": "vLLM {version} 不支持 Llama-3.2-Vision（MllamaForConditionalGeneration 已随 V0 引擎在 0.10.2 中移除）；"
              "请使用 --engine transformers，或更早的 --vllm-version",
    },
    "a_vllm_dp_ep": {
        "en": "data parallel {dp} × tensor parallel {tp} = {gpus} GPUs with expert parallelism: the routed experts "
              "spread over all {gpus}; each GPU as shown",
        "zh": "数据并行 {dp} × 张量并行 {tp} = {gpus} 张 GPU，启用专家并行：路由专家分布在全部 {gpus} 张 GPU 上；"
              "每张 GPU 如上所示",
    },
})


def vllm_version(w: Workload) -> tuple[int, int, int]:
    return parse_version(getattr(w, "vllm_version", None) or VLLM_MODELLED) or (0, 33, 0)


def _read_version(value: Any, field: str) -> Optional[str]:
    if value is None:
        return None
    from ..errors import VramscopeError
    from ..units import shown

    v = parse_version(value) if isinstance(value, str) and len(value) <= 40 else None
    if v is None or v < (0, 6, 0):
        raise VramscopeError("bad_choice", field=field, value=shown(value), allowed="a vLLM version such as 0.11.0")
    return value.strip()


def batch_defaults(version: tuple[int, int, int], gpu: Optional[Gpu], entrypoint: str) -> tuple[int, int]:
    """(max_num_batched_tokens, max_num_seqs) when not given: ``EngineArgs.get_batch_defaults`` (v0.33.0) /
    ``_set_default_args`` (v0.11.0) for the GPU's total memory and name and the entry point (``serve``:
    UsageContext.OPENAI_API_SERVER, ``llm``: UsageContext.LLM_CLASS)."""
    mem = gpu.memory_bytes if gpu is not None else 0
    name = gpu.name.lower() if gpu is not None else ""
    serve = entrypoint != "llm"
    if mem >= 160 * GiB and version >= LATE_SINCE:
        return 16384, 1024
    if mem >= 70 * GiB and "a100" not in name:
        return (8192 if serve else 16384), 1024
    return (2048 if serve else 8192), 256


def capture_sizes(max_num_seqs: int, max_num_tokens: int) -> list[int]:
    """The default ``cudagraph_capture_sizes`` (vllm/config/vllm.py, v0.11.0 and v0.33.0 alike): up to
    ``min(2 × max_num_seqs, 512)`` and never above ``max_num_batched_tokens``."""
    top = min(max_num_seqs * 2, 512, max_num_tokens)
    sizes = [1, 2, 4] + list(range(8, 256, 8)) + list(range(256, top + 1, 16))
    return [x for x in sizes if x <= top]


@dataclass(frozen=True)
class KvGroups:
    """vLLM's KV cache groups for one GPU's layers (``get_kv_cache_groups``)."""

    page_bytes: int  # one block of one layer (all layers of a hybrid model share it)
    block: int  # tokens per block
    group_size: int  # layers per group: the pool is group_size tensors of num_blocks pages
    groups: tuple[tuple[str, int], ...]  # (kind, blocks one max_model_len request takes) per group
    layers_blocks: int  # blocks over every layer one request needs (v0.11.0's check_enough_kv_cache_memory)
    hybrid: bool
    version: tuple[int, int, int] = (0, 33, 0)
    #: one block over the pool's tensors where its layers' pages differ (vLLM 0.33.0's ``UniformTypeKVCacheSpecs``:
    #: one group, each layer its own page); None: ``page_bytes × group_size``
    layered_block: Optional[int] = None

    @property
    def pool_block(self) -> int:
        return self.layered_block if self.layered_block is not None else self.page_bytes * self.group_size

    def num_blocks(self, pool: int) -> int:
        return max(0, pool // self.pool_block) if self.pool_block else 0

    def per_request_blocks(self) -> int:
        return sum(b for _, b in self.groups)

    def needed_bytes(self) -> int:
        """The KV memory vLLM requires before it starts (one max_model_len request): v0.11.0 sums every layer's
        own spec (``max_memory_usage_bytes`` over the layers, before the hybrid specs are unified); from v0.15.0
        the groups' blocks over the pool's tensors (``_max_memory_usage_bytes_from_groups``: padding counted),
        and v0.33.0 keeps the null block out of the memory it checks."""
        if self.version < GROUP_CHECK_SINCE:
            return self.layers_blocks * self.page_bytes
        pool_block = self.pool_block
        return pool_block * self.per_request_blocks() + (pool_block if self.version >= LATE_SINCE else 0)


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _lcm(a: int, b: int) -> int:
    from math import lcm

    return lcm(a, b)


#: FlashInfer's GDN prefill checkpoint alignment (v1/attention/backends/gdn_attn.py at v0.33.0)
GDN_CHECKPOINT_ALIGNMENT = 64


def _layer_groups(model: ResolvedModel, w: Workload, n: int, version: tuple[int, int, int]
                  ) -> tuple[list[tuple[str, list[int]]], bool]:
    """The layers of the whole model in vLLM's KV cache groups, as (kind, layer indices) per group, and whether
    the hybrid manager groups them (``_get_kv_cache_groups_uniform_page_size``, v0.11.0 and v0.33.0 alike): the
    layers of each kind in order, ``cdiv(count, group_size)`` groups of a kind, the ``i``-th taking
    ``layers[i::groups]`` (strided, so that each pipeline stage holds about as many layers of every group)."""
    spec = rank_spec(model, w)
    window = spec.sliding_window if spec.mla is None else None
    kinds = [spec.layer_type(i) for i in range(min(n, spec.num_layers))] if window else []
    stored = set(stored_layers(spec, n))  # a layer reading another's keys and values has no spec (Gemma 4)
    slid = [i for i, k in enumerate(kinds) if k == SLIDING and i in stored]
    full = [i for i, k in enumerate(kinds) if k != SLIDING and i in stored] \
        + [i for i in range(len(kinds), n) if i in stored]
    if not slid or getattr(w, "disable_hybrid_kv_cache_manager", False) or version < V1_SINCE:
        return [("full", sorted(stored))], False
    if not full:  # every layer a sliding window (Mistral-7B-v0.1): one group
        return [("sliding", slid)], False
    size = min(len(full), len(slid))
    if version >= GROUP_MAX_SINCE and max(len(full), len(slid)) < 1.5 * size:
        size = max(len(full), len(slid))
    out: list[tuple[str, list[int]]] = []
    for kind, layers in (("full", full), ("sliding", slid)):
        count = _cdiv(len(layers), size)
        out += [(kind, layers[i::count]) for i in range(count)]
    return out, True


def stored_layers(spec: ModelSpec, n: int) -> list[int]:
    """The layers with a KV cache spec: all but those whose per-layer shape stores nothing (Gemma 4's shared
    layers: vLLM 0.33.0's gemma4.py gives them ``kv_sharing_target_layer_name``, and its model runner leaves such
    layers out of the KV cache spec)."""
    return [i for i in range(n) if not (spec.layer_kv and i < len(spec.layer_kv) and not spec.layer_kv[i][0])]


def kind_pages(spec: ModelSpec, b: float, block: int, groups: list[tuple[str, list[int]]]
               ) -> Optional[tuple[int, dict[str, int]]]:
    """Layers of different page sizes (MiMo-V2-Flash's K/V widths, Gemma 4's per-layer shapes), as vLLM 0.33.0's
    ``unify_kv_cache_spec_page_size`` (kv_cache_planning.py) makes them one page: the largest page of one block
    (``AttentionSpec.page_size_bytes``: block × (head size + value head size) × kv heads × bytes) stays; a layer
    whose page divides it gets its block size raised by the ratio, another is padded to it (its block size
    kept). Returns (the common page, tokens per block of each kind), or None where every layer's page is the same
    (nothing to unify) or the layers of one kind differ among themselves (not modelled)."""
    per_kind: dict[str, set[int]] = {}
    for kind, layers in groups:
        per_kind.setdefault(kind, set()).update(int(kv_cache.values_per_token(spec, i, True) * b) for i in layers)
    if any(len(v) != 1 for v in per_kind.values()):
        return None
    token_bytes = {k: next(iter(v)) for k, v in per_kind.items()}
    pages = {k: t * block for k, t in token_bytes.items()}
    top = max(pages.values())
    if len(set(pages.values())) <= 1:
        return None
    return top, {k: block * top // p if top % p == 0 else block for k, p in pages.items()}


def kv_groups(model: ResolvedModel, w: Workload, dtype_bytes: float, max_len: int, layers: Optional[int] = None,
              version: tuple[int, int, int] = (0, 33, 0), stage: Optional[tuple[int, int]] = None,
              cc: str = "") -> KvGroups:
    """The KV cache groups vLLM builds for the layers one GPU holds (read at v0.11.0, v0.15.0 and v0.33.0:
    ``kv_cache_utils.get_kv_cache_groups``, ``_get_kv_cache_groups_uniform_page_size``; ``kv_cache_interface``'s
    specs). Every layer's page is ``2 × kv_heads × head_dim × bytes × block_size`` (MLA: the latent). Full-attention
    layers (``FullAttentionSpec``) need ``cdiv(max_model_len, block)`` blocks per request; sliding-window layers
    (``SlidingWindowSpec``) ``cdiv(min(sliding_window − 1 + in_flight, max_model_len), block) + 1``, ``in_flight``
    being ``max_num_batched_tokens`` (× 2 at v0.33.0: ``max_in_flight_tokens`` with asynchronous scheduling).
    With both kinds the layers are split into groups of ``group_size`` = the smaller kind's count (padding the
    last group of a kind; from v0.20.0 the larger count when it is under 1.5 × the smaller), each group its own
    block table, the pool ``group_size`` tensors shared by one layer of every group. ``--disable-hybrid-kv-cache-
    manager`` (or a model with one kind) makes one group (``unify_hybrid_kv_cache_specs``: sliding layers
    become full ones for the allocator).

    ``stage``: a pipeline stage's layers ``[lo, hi)``. The groups are the whole model's, projected on the stage
    (``get_kv_cache_configs``: ``_project_kv_cache_groups_to_worker`` at v0.33.0): a request still takes blocks in
    every group, and the stage's pool is as many tensors as its fullest group has layers."""
    spec = rank_spec(model, w)
    b = KV_DTYPE_BYTES[w.kv_dtype] if w.kv_dtype else dtype_bytes
    block = getattr(w, "block_size", None) or BLOCK
    if spec.compressed is not None and version >= vllm_dsv4.DSV4_SINCE:  # DeepSeek-V4's own cache layers
        p = vllm_dsv4.plan(spec, max_len, w.max_num_batched_tokens, stage)
        per = sum(n for _, n in p.groups)
        return KvGroups(p.pool_block, vllm_dsv4.BLOCK, max(p.group_layers), p.groups, per, True, version,
                        p.pool_block)
    if spec.state is not None:
        return state_groups(spec, w, b, dtype_bytes, block, max_len, version, stage, cc)
    n = spec.num_layers if layers is None else layers
    page = int(kv_cache.values_per_token(spec, 0, True) * b * block)
    lo, hi = stage if stage is not None else (0, n)
    groups, hybrid = _layer_groups(model, w, n, version)
    unified = kind_pages(spec, b, block, groups) if version >= LATE_SINCE else None
    blocks_of = {"full": block, "sliding": block}
    if unified is not None:  # layers of different pages: one common page, each kind its own block size
        page, blocks_of = unified[0], {**blocks_of, **unified[1]}
    full_blocks = _cdiv(max_len, blocks_of["full"])
    in_flight = w.max_num_batched_tokens * (2 if version >= LATE_SINCE else 1)
    window = spec.sliding_window or 0
    sw_blocks = _cdiv(min(window - 1 + in_flight, max_len), blocks_of["sliding"]) + 1
    blocks = {"full": full_blocks, "sliding": sw_blocks}
    here = [[i for i in g if lo <= i < hi] for _, g in groups]
    size = max(len(g) for g in here)
    # each layer's own spec, before the hybrid specs are unified (v0.11.0 checks these)
    sliding = sum(1 for i in range(lo, hi) if spec.mla is None and window and spec.layer_type(i) == SLIDING)
    raw = (hi - lo - sliding) * full_blocks + sliding * sw_blocks
    layered = None
    if version >= LATE_SINCE and len(groups) == 1:
        # one group of layers whose pages differ (the hybrid manager off, or one kind only):
        # UniformTypeKVCacheSpecs.from_specs keeps each layer's own page, a block being their sum
        pages = [int(kv_cache.values_per_token(spec, i, True) * b) * block for i in here[0]]
        if len(set(pages)) > 1:
            layered = sum(pages)
    return KvGroups(page, block, size, tuple((kind, blocks[kind]) for kind, _ in groups), raw, hybrid, version,
                    layered)


#: ``--mamba-cache-dtype`` / ``--mamba-ssm-cache-dtype`` (vllm/config/cache.py ``MambaDType``): bytes per value
MAMBA_DTYPE_BYTES = {"float32": 4.0, "float16": 2.0, "bfloat16": 2.0}
#: model types whose SSM state vLLM keeps in float32 unless told otherwise (``NemotronHForCausalLMConfig``:
#: ``DEFAULT_MAMBA_SSM_CACHE_DTYPE = "float32"`` unless the config names its own ``mamba_ssm_cache_dtype``, which is
#: not read here; at v0.33.0, not at
#: v0.11.0; applied from :data:`LATE_SINCE`, the first release being unknown)
SSM_FP32_TYPES = ("nemotron_h",)


def mamba_state_bytes(spec: ModelSpec, w: Workload, model_bytes: float,
                      version: tuple[int, int, int] = (0, 33, 0)) -> tuple[int, float, float]:
    """One mamba layer's state page on one GPU (``MambaSpec.page_size_bytes`` before padding) and the bytes per conv
    and per SSM value. vLLM's ``MambaStateShapeCalculator`` (read at v0.11.0 and v0.33.0) keeps the conv state as
    ``(conv_kernel − 1, conv_dim / TP)`` and the SSM state as Mamba's ``(intermediate / TP, d_state)``, Mamba2's
    ``(heads / TP, head_dim, d_state)`` or the gated delta net's ``(v_heads / TP, v_dim, k_dim)``;
    ``MambaStateDtypeCalculator``: the conv state in ``--mamba-cache-dtype`` ('auto': the model's dtype, not the
    KV cache's), the SSM state in ``--mamba-ssm-cache-dtype`` ('auto': the conv state's). Every mamba layer has
    the same spec; the largest is taken."""
    st = spec.state
    tp = w.num_gpus if w.strategy.is_tensor_parallel else 1
    conv_b = MAMBA_DTYPE_BYTES.get(getattr(w, "mamba_cache_dtype", None) or "", model_bytes)
    ssm_name = getattr(w, "mamba_ssm_cache_dtype", None)
    if ssm_name == "auto":  # the option's default: vLLM's own choice below
        ssm_name = None
    if not ssm_name and spec.model_type in SSM_FP32_TYPES and version >= LATE_SINCE:
        ssm_name = "float32"
    if not ssm_name and "KimiLinearDelta" in st.mixer:  # v0.33.0 kda_state_dtype: 'auto' is float32 (no KDA in v0.11)
        ssm_name = "float32"
    ssm_b = MAMBA_DTYPE_BYTES.get(ssm_name or "", conv_b)
    page = max((int(_cdiv(st.engine_conv_values(i), tp) * conv_b + _cdiv(st.recurrent_values[i], tp) * ssm_b)
                for i, k in enumerate(st.kinds) if k in _STATE_LAYERS), default=0)
    return page, conv_b, ssm_b


_STATE_LAYERS = ("state", "hybrid", "hybrid_sliding")


#: prefix caching on by default for hybrid (attention + mamba) models, and mamba states cached in 'align' mode
#: whenever it is on (v0.33.0: ``ModelConfig.is_prefix_caching_supported``: "Generative hybrid models support prefix
#: caching", ``MambaModelConfig.verify_and_update_config``: 'align', ``--mamba-cache-mode`` deprecated with "no
#: effect"; v0.15.0 and v0.21.0: off by default, "Hybrid models do not support prefix caching since the feature is
#: still experimental", and when turned on 'all' mode for the Mamba families). The first release between is not
#: known, so :data:`LATE_SINCE`
MAMBA_ALIGN_SINCE = LATE_SINCE
#: model types whose mamba layers are vLLM's ``MambaMixer2`` (v0.33.0: mamba2.py, falcon_h1.py, nemotron_h.py,
#: granitemoehybrid.py, zamba2.py), whose ``get_kv_cache_spec`` sets ``num_prefill_checkpoint_blocks=1``: in 'align'
#: mode a request holds three state blocks (``MambaSpec.max_memory_usage_bytes``: 2 + speculative + checkpoint
#: blocks); ``MambaMixer`` (Jamba, Mamba) two
MAMBA2_MIXER_TYPES = ("mamba2", "falcon_h1", "nemotron_h", "granitemoehybrid", "zamba2")
#: gated delta nets (qwen3_next.py: ``QwenGatedDeltaNetAttention``, v0.33.0): no checkpoint block with the Triton
#: GDN prefill kernel (checked against its code run on CPU); with FlashInfer's (``_resolve_gdn_prefill_backend``:
#: Hopper, or Blackwell with key heads of 128 and CUDA 13) a checkpoint block and a 64-token block alignment, not
#: modelled (said in the output)
GDN_TYPES = ("qwen3_next",)
#: model types checked against vLLM 0.33.0's code run on CPU (``MambaMixer``, ``MambaMixer2``, the gated delta
#: net); others (short convolutions, KDA, lightning attention) are counted with two blocks and no checkpoint block
MAMBA_MIXER_TYPES = MAMBA2_MIXER_TYPES + ("jamba", "mamba", "falcon_mamba") + GDN_TYPES


def mamba_cache_mode(spec: ModelSpec, w: Workload, version: tuple[int, int, int]) -> str:
    """vLLM's ``mamba_cache_mode`` for a recurrent / hybrid model: 'none' without prefix caching, 'align' with it
    (from :data:`MAMBA_ALIGN_SINCE`), 'unmodelled' for prefix caching turned on in a release before (its 'all'
    mode, which keeps a state per block of the context, is not modelled). ``--enable-prefix-caching`` /
    ``--no-enable-prefix-caching`` decide; unset, vLLM's default (on for hybrid models from
    :data:`MAMBA_ALIGN_SINCE`, off for attention-free ones)."""
    st = spec.state
    hybrid = any(st.has_kv(i) for i in range(len(st.kinds)))
    on = getattr(w, "enable_prefix_caching", None)
    if on is None:
        on = hybrid and version >= MAMBA_ALIGN_SINCE
    if not on:
        return "none"
    return "align" if version >= MAMBA_ALIGN_SINCE else "unmodelled"


def mamba_blocks_per_request(spec: ModelSpec, mode: str) -> int:
    """The state blocks one request holds in a mamba group (``MambaSpec.max_memory_usage_bytes`` over its page,
    v0.33.0, no speculative decoding): one without prefix caching; in 'align' mode the running state and the last
    cached one, plus ``MambaMixer2``'s prefill checkpoint block."""
    if mode != "align":
        return 1
    return 3 if spec.model_type in MAMBA2_MIXER_TYPES else 2


def _strided(kinds: list[tuple[str, list[int]]], version: tuple[int, int, int]) -> list[tuple[str, list[int]]]:
    """``_get_kv_cache_groups_uniform_page_size`` (v0.11.0 and v0.33.0 alike) on layers of uniform page: groups of
    the smaller kind's count (from :data:`GROUP_MAX_SINCE` the larger's when under 1.5 × the smaller),
    ``cdiv(count, size)`` groups of a kind, the ``i``-th taking ``layers[i::groups]``."""
    counts = [len(layers) for _, layers in kinds if layers]
    size = min(counts)
    if version >= GROUP_MAX_SINCE and max(counts) < 1.5 * size:
        size = max(counts)
    out: list[tuple[str, list[int]]] = []
    for kind, layers in kinds:
        count = _cdiv(len(layers), size)
        out += [(kind, layers[i::count]) for i in range(count)]
    return out


def gdn_checkpoint(spec: ModelSpec, mode: str, cc: str) -> bool:
    """Whether a gated delta net exports prefill checkpoints (vLLM 0.33.0 ``qwen_gdn_linear_attn.py``:
    ``_resolve_gdn_prefill_backend`` picks FlashInfer's GDN prefill kernel on compute capability 9.0 with no
    further condition, and its layer then sets ``_checkpoint_alignment`` 64 in 'align' mode and its
    ``get_kv_cache_spec`` ``num_prefill_checkpoint_blocks=1``). Blackwell (10.x, 12.x) also needs key heads of
    128 and a CUDA 13 runtime, which vramscope does not know: counted as Triton's there (said in the output)."""
    return spec.model_type in GDN_TYPES and mode == "align" and cc.strip() == "9.0"


def state_groups(spec: ModelSpec, w: Workload, b: float, model_bytes: float, block: int, max_len: int,
                 version: tuple[int, int, int], stage: Optional[tuple[int, int]] = None,
                 cc: str = "") -> KvGroups:
    """vLLM's groups for a recurrent / hybrid model (read at v0.11.0: ``HybridAttentionMambaModelConfig.
    verify_and_update_config``; at v0.33.0: ``Platform._align_hybrid_block_size``, ``MambaMixer(2).
    get_kv_cache_spec``, ``MambaSpec``; both checked against that code run on CPU, ``bench/vllm_state_reference.py``).
    Every attention layer is a ``FullAttentionSpec``, every mamba layer a ``MambaSpec`` (a hybrid layer is both).
    With attention layers the block size is raised to ``16 × cdiv(mamba_page, 16 × attention_page_of_one_token)``
    when that is larger, and the mamba page padded to the attention page (``block × attention page of one
    token``), so all pages are equal. A mamba layer takes :func:`mamba_blocks_per_request` blocks per request
    (without prefix caching its spec's block size is ``max_model_len``; in 'align' mode the attention block
    size). The layers are grouped as for sliding windows (:func:`_strided`), each group's block table apart.

    ``stage``: a pipeline stage's layers ``[lo, hi)`` (``get_pp_indices`` over the decoder layers): the groups are
    the whole model's, the stage's pool as many tensors as its fullest group has layers on it
    (``_project_kv_cache_groups_to_worker``)."""
    st = spec.state
    n = len(st.kinds)
    attn = [i for i in range(n) if st.has_kv(i)]
    mamba = [i for i, k in enumerate(st.kinds) if k in _STATE_LAYERS]
    mamba_page = mamba_state_bytes(spec, w, model_bytes, version)[0]
    mode = mamba_cache_mode(spec, w, version)
    ckpt = gdn_checkpoint(spec, mode, cc)
    per_state = mamba_blocks_per_request(spec, mode) + (1 if ckpt else 0)
    lo, hi = stage if stage is not None else (0, n)
    if not attn:  # attention-free (Mamba, Mamba2): the state page as it is, one group
        here = sum(1 for i in mamba if lo <= i < hi)
        return KvGroups(mamba_page, max_len, here, (("state", per_state),), here * per_state, False, version)
    one_token = int(kv_cache.values_per_token(spec, 0, True) * b)
    # Platform._align_hybrid_block_size: the kernel block alignment, in 'align' mode its lcm with the layers'
    # checkpoint alignment (FlashInfer's 64 tokens)
    align = _lcm(max(16, block), GDN_CHECKPOINT_ALIGNMENT) if ckpt else 16
    block = max(block, align * _cdiv(mamba_page, align * one_token))
    page = block * one_token
    full_blocks = _cdiv(max_len, block)
    groups = _strided([("full", attn), ("state", mamba)], version)
    size = max(sum(1 for i in g if lo <= i < hi) for _, g in groups)
    raw = (sum(1 for i in attn if lo <= i < hi) * full_blocks + sum(1 for i in mamba if lo <= i < hi) * per_state)
    blocks = {"full": full_blocks, "state": per_state}
    return KvGroups(page, block, size, tuple((k, blocks[k]) for k, _ in groups), raw, True, version)


def kv_capacity(g: KvGroups, pool: int, max_len: int, version: tuple[int, int, int]) -> tuple[int, int, float]:
    """(num_blocks, the "GPU KV cache size" tokens vLLM prints, its "Maximum concurrency")."""
    blocks = g.num_blocks(pool)
    per_req = g.per_request_blocks()
    conc = blocks / per_req if per_req else 0.0
    if version >= CAPACITY_PRINT_SINCE:
        tokens = int(conc * max_len)
    else:
        tokens = blocks // len(g.groups) * g.block
    return blocks, tokens, conc


def lora_buffer_bytes(model: ResolvedModel, w: Workload, a: float) -> int:
    """``--enable-lora``: the adapter slots vLLM preallocates on one GPU (``create_lora_weights`` of every wrapped
    linear layer: ``lora_a_stacked`` (max_loras, 1, rank, input) and ``lora_b_stacked`` (max_loras, 1, output,
    rank) per slice, in the model's dtype; q/k/v and gate/up are slices of one merged layer). Column-parallel
    layers (qkv, gate_up) hold the full input and their output shard, row-parallel ones (o, down) their input
    shard and the full output. Attention and dense MLP projections are counted; expert and vocabulary LoRA are
    not."""
    if not getattr(w, "enable_lora", False):
        return 0
    spec = rank_spec(model, w)
    h = spec.hidden_size
    q, kv = spec.num_heads * spec.head_dim, spec.num_kv_heads * spec.head_dim
    per_layer_attn = 3 * h + (q + 2 * kv) + q + h  # qkv: A 3 slices of h, B q+k+v; o: A q, B h
    inter = spec.intermediate_size or 0
    dense_layers = sum(1 for i in range(spec.num_layers) if not spec.is_moe_layer(i))
    mlp = 2 * h + 2 * inter + inter + h  # gate_up: A 2 × h, B 2 × inter; down: A inter, B h
    values = spec.num_layers * per_layer_attn + dense_layers * mlp
    return int(values * w.max_loras * w.max_lora_rank * a)


def expert_parallel_weights(model: ResolvedModel, w: Workload, held: int) -> int:
    """``--enable-expert-parallel`` with ``--data-parallel-size``: the routed experts of a TP shard are spread over
    the DP ranks too (E / (TP × DP) experts per GPU), the rest stays TP-sharded."""
    from ..memory.parallel import expert_fraction

    dp = getattr(w, "data_parallel_size", None) or 1
    if not getattr(w, "enable_expert_parallel", False) or model.spec.moe is None or dp <= 1:
        return held
    share = expert_fraction(rank_spec(model, w))
    return int(held * (1 - share) + held * share / dp)


@dataclass(frozen=True, kw_only=True)
class VllmGpu(Record):
    """The KV pool vLLM would allocate on one GPU."""

    gpu: str
    budget_bytes: int
    kv_pool_bytes: int
    kv_tokens: int
    max_concurrency: float
    fits_max_model_len: bool
    num_gpu_blocks: Optional[int] = None
    busiest_stage: Optional[int] = None  # pipeline parallel: the stage whose layers fill the pool first


@dataclass(frozen=True, kw_only=True)
class VllmReport(EngineReport):
    """The terms of vLLM's memory profiling, as its log prints them (``engine`` in the JSON)."""

    name: str = "vllm"
    gpu_memory_utilization: float
    max_model_len: int
    max_num_seqs: int
    max_num_batched_tokens: int
    tensor_parallel_size: int
    pipeline_parallel_size: Optional[int] = None
    kv_bytes_per_token: int
    weights_bytes: int
    activation_peak_bytes: int
    non_torch_bytes: int
    cuda_graph_bytes: int
    min_bytes: int  # weights, activation peak, overhead and one max_model_len sequence: what it needs
    per_gpu: list[VllmGpu]
    stages: Optional[list[dict[str, int]]] = None
    version: Optional[str] = None
    block_size: Optional[int] = None
    kv_cache_groups: Optional[list[str]] = None  # each group's kind (full / sliding), as vLLM groups the layers
    kv_group_size: Optional[int] = None  # layers per group
    kv_blocks_per_request: Optional[int] = None  # blocks one max_model_len request takes over all groups
    cudagraph_capture_sizes: Optional[int] = None  # how many batch sizes are captured
    cuda_graphs_in_pool: Optional[bool] = None  # whether the graphs are taken before the pool is sized (>= 0.21)
    lora_bytes: Optional[int] = None
    data_parallel_size: Optional[int] = None
    # multimodal (engines/vllm_mm.py): the encoder budget and the dummy profile, and the host processor cache
    mm_max_tokens_per_item: Optional[dict[str, int]] = None
    mm_profile_modality: Optional[str] = None
    mm_encoder_budget: Optional[int] = None
    mm_encoder_cache_size: Optional[int] = None
    mm_items_per_prompt: Optional[int] = None
    mm_profile_items: Optional[int] = None
    mm_encoder_output_bytes: Optional[int] = None
    mm_encoder_input_bytes: Optional[int] = None
    mm_tower_peak_bytes: Optional[int] = None
    mm_profiled: Optional[bool] = None
    mm_processor_cache_host_bytes: Optional[int] = None


def kv_bytes_per_token(model: ResolvedModel, w: Workload, dtype_bytes: float, layers: Optional[int] = None) -> int:
    """KV bytes per token on one GPU (its tensor-parallel slice; ``layers``: a pipeline stage's layers)."""
    spec = rank_spec(model, w)
    b = KV_DTYPE_BYTES[w.kv_dtype] if w.kv_dtype else dtype_bytes
    if spec.state is not None and layers is None:  # keys and values only in the attention layers
        layers = sum(1 for i in range(len(spec.state.kinds)) if spec.state.has_kv(i))
    return kv_cache.kv_bytes_per_token(spec, b, layers, latent_mla=True)  # vLLM caches MLA's latent


def activation_peak(model: ResolvedModel, w: Workload, a: float) -> int:
    """The profile run's peak. It is taken unsharded: vLLM's own logs print the same peak for Llama-3-8B at
    tensor-parallel 1 and 2 (1.26 GiB, vllm-project/vllm#10511), so what peaks is not split across ranks."""
    spec = model.spec
    tokens = w.max_num_batched_tokens
    seqs = max(1, min(w.max_num_seqs, tokens))
    body = inference_transient(spec, 1, tokens, a, "flash")
    logits = seqs * spec.vocab_size * 4 * 3  # fp32 logits + sampler's probs and logprobs
    return int(body + logits)


def pp_partition(n_layers: int, pp: int) -> list[int]:
    """Each pipeline stage's decoder layers (``vllm/distributed/utils.py: get_pp_indices``, v0.11.0 and v0.33.0
    alike, no ``VLLM_PP_LAYER_PARTITION``): ``n // pp`` each, the remainder one each to the stages before the
    last, from the second-to-last backwards."""
    sizes = [n_layers // pp] * pp
    for i in range(2, n_layers % pp + 2):
        sizes[-i] += 1
    return sizes


#: pipeline workers' KV tensors shrunk to the smallest block count, and the capacity logged once after it (seen at
#: v0.15.0 and v0.33.0; v0.11.0 keeps each worker's tensors at its own count and logs each before the minimum)
PP_SHRINK_SINCE = GROUP_CHECK_SINCE


@dataclass(frozen=True)
class PpPlan:
    """vLLM's KV cache over pipeline workers (``get_kv_cache_configs``)."""

    own_blocks: tuple[int, ...]  # each worker's blocks from its own free memory
    num_blocks: int  # the smallest, given to every worker
    limiting: int  # the stage that has it
    tokens: int  # the "GPU KV cache size" logged (v0.11.0: the limiting worker's line)
    concurrency: float
    pool_bytes: tuple[int, ...]  # the KV cache each worker allocates
    needed_bytes: tuple[int, ...]  # what each worker checks for one max_model_len request


def pp_kv_plan(plans: list[KvGroups], free: list[int], max_len: int, version: tuple[int, int, int]) -> PpPlan:
    """Each worker's own block count (its free memory over its pool block), the minimum for all, the capacity and
    concurrency of the whole model's groups at that count, and the pools: shrunk to the minimum from v0.15.0,
    each worker's own before."""
    own = tuple(g.num_blocks(max(0, f)) for g, f in zip(plans, free))
    blocks = min(own)
    first = plans[0]
    per_req = first.per_request_blocks()
    conc = blocks / per_req if per_req else 0.0
    tokens = int(conc * max_len) if version >= CAPACITY_PRINT_SINCE else blocks // len(first.groups) * first.block
    pools = tuple((blocks if version >= PP_SHRINK_SINCE else b) * g.pool_block
                  for g, b in zip(plans, own))
    return PpPlan(own, blocks, own.index(blocks), tokens, conc, pools, tuple(g.needed_bytes() for g in plans))


def vllm_pipeline(model: ResolvedModel, w: Workload, weights: int, a: float, gpus: tuple[Gpu, ...],
                  notes: list[Assumption]) -> tuple[Phases, VllmReport]:
    """``--pipeline-parallel-size``: stage ``s`` holds vLLM's own share of the layers (:func:`pp_partition`), their
    weights (the first stage the embedding, the last the final norm and output head; ``memory/pipeline.py``) and
    their KV cache. vLLM groups the whole model's layers (:func:`kv_groups`), projects the groups on each stage,
    sizes each worker's blocks from its own free memory (its pool block is its fullest group's layers × the page),
    and gives every worker the smallest count (``vllm/v1/core/kv_cache_utils.py`` / ``kv_cache_planning.py``:
    ``get_kv_cache_configs``). So the stage with the fewest blocks for its memory decides the capacity (the rank
    named as ``busiest_stage``); from v0.15.0 the other stages shrink their tensors to that count, at v0.11.0
    they keep the pool they sized. Each stage checks one ``max_model_len`` request against its own free memory.
    Only the last stage computes logits; CUDA graphs are taken from the pool from v0.21.0 as without pipeline
    parallelism."""
    from ..memory.pipeline import stage_param_fractions

    version = vllm_version(w)
    spec = rank_spec(model, w)
    max_len = w.max_model_len or model.spec.max_position_embeddings or w.seq
    sizes = pp_partition(spec.num_layers, w.pp)
    # a vision-language model (engines/vllm_mm.py): the tower's weights and the encoder's dummy profile on the
    # first stage only from v0.33.0 (Model Runner V2, the default there: SupportsMultiModal._mark_tower_model
    # skips the tower on later stages, model_runner.py profile_run encodes on is_first_pp_rank only); the V1
    # runner builds and profiles it on every stage (gpu_model_runner.py profile_run, no rank check)
    mm = multimodal(model, w, a, max_len, version, notes) if model.spec.vision is not None else None
    tower = 0
    if model.spec.vision is not None:
        held = int(vllm_mm.vision_params(model) * a)
        tower = held - vllm_mm.weights_adjustment(model, w, a)
        weights -= held
        fracs = stage_param_fractions(replace(spec, vision=None), w.pp, sizes=sizes)
    else:
        fracs = stage_param_fractions(spec, w.pp, sizes=sizes)
    first_only = version >= MM_FIRST_STAGE_SINCE
    profile = mm.profile if mm is not None else None
    if profile is not None or tower:
        notes.append(Assumption("a_vllm_mm_pp_first" if first_only else "a_vllm_mm_pp_every", {"pp": w.pp}))
    body = inference_transient(model.spec, 1, w.max_num_batched_tokens, a, "flash")
    seqs = max(1, min(w.max_num_seqs, w.max_num_batched_tokens))
    logits = seqs * model.spec.vocab_size * 4 * 3
    non_torch = NON_TORCH + NCCL
    graphs = 0 if w.enforce_eager or version < GRAPHS_PROFILED_SINCE else CUDA_GRAPHS
    stages, plans, lo = [], [], 0
    for s_, (n_layers, frac) in enumerate(zip(sizes, fracs)):
        g = kv_groups(model, w, a, max_len, version=version, stage=(lo, lo + n_layers),
                      cc=gpus[0].compute_capability if gpus else "")
        lo += n_layers
        plans.append(g)
        encoder = s_ == 0 or not first_only
        lang = body + (logits if s_ == w.pp - 1 else 0)
        stages.append({"stage": s_, "layers": n_layers,
                       "weights_bytes": int(weights * frac) + (tower if encoder else 0),
                       "activation_peak_bytes": profile.peak(lang) if profile is not None and encoder else lang,
                       "kv_bytes_per_token": kv_bytes_per_token(model, w, a, n_layers),
                       "kv_group_size": g.group_size, "kv_needed_bytes": g.needed_bytes()})
    first = plans[0]
    per_gpu = []
    for gi, gpu in enumerate(gpus):
        budget = int(w.gpu_memory_utilization * gpu.usable_bytes)
        free = [budget - st["weights_bytes"] - st["activation_peak_bytes"] - non_torch - graphs for st in stages]
        plan = pp_kv_plan(plans, free, max_len, version)
        if gi == 0:
            for st, b, pool in zip(stages, plan.own_blocks, plan.pool_bytes):
                st.update(num_gpu_blocks=b, kv_pool_bytes=pool)
        fits = all(f >= n for f, n in zip(free, plan.needed_bytes))
        per_gpu.append(VllmGpu(gpu=gpu.name, budget_bytes=budget, kv_pool_bytes=plan.pool_bytes[plan.limiting],
                               kv_tokens=plan.tokens, max_concurrency=round(plan.concurrency, 2),
                               fits_max_model_len=fits, num_gpu_blocks=plan.num_blocks,
                               busiest_stage=plan.limiting))
    primary = per_gpu[0] if per_gpu else None
    need = [st["weights_bytes"] + st["activation_peak_bytes"] + st["kv_needed_bytes"] for st in stages]
    top = need.index(max(need))
    st = stages[primary.busiest_stage or 0] if primary else stages[top]
    kv = max(primary.kv_pool_bytes, st["kv_needed_bytes"]) if primary else stages[top]["kv_needed_bytes"]
    phases = {
        "load": {"weights": st["weights_bytes"]},
        "profile": {"weights": st["weights_bytes"], "activations": st["activation_peak_bytes"]},
        "serving": {"weights": st["weights_bytes"], "kv_cache": kv, "activations": st["activation_peak_bytes"],
                    "engine_overhead": non_torch + graphs},
    }
    notes.append(Assumption("a_vllm_pp", {"pp": w.pp, "tp": w.num_gpus, "stage": st["stage"],
                                          "layers": ", ".join(map(str, sizes))}))
    if model.spec.state is not None:
        state_notes(model, w, a, plans[0], version, notes, size=max(g.group_size for g in plans),
                    cc=gpus[0].compute_capability if gpus else "")
    notes.append(Assumption("a_vllm_version" if version >= GRAPHS_PROFILED_SINCE else "a_vllm_version_old",
                            {"version": ".".join(map(str, version)),
                             "entry": getattr(w, "vllm_entrypoint", None) or "serve"}))
    if model.spec.compressed is not None and version >= vllm_dsv4.DSV4_SINCE:
        dsv4_note(model, first, version, notes)
    elif first.hybrid:
        notes.append(Assumption("a_vllm_hybrid", {"groups": len(first.groups),
                                                  "size": max(g.group_size for g in plans),
                                                  "window": model.spec.sliding_window}))
    report = VllmReport(gpu_memory_utilization=w.gpu_memory_utilization, max_model_len=max_len,
                        max_num_seqs=w.max_num_seqs, max_num_batched_tokens=w.max_num_batched_tokens,
                        tensor_parallel_size=w.num_gpus, pipeline_parallel_size=w.pp,
                        kv_bytes_per_token=st["kv_bytes_per_token"], weights_bytes=st["weights_bytes"],
                        activation_peak_bytes=st["activation_peak_bytes"], non_torch_bytes=non_torch,
                        cuda_graph_bytes=graphs, min_bytes=max(need) + non_torch + graphs, per_gpu=per_gpu,
                        stages=stages, version=".".join(map(str, version)), block_size=first.block,
                        kv_cache_groups=[k for k, _ in first.groups], kv_group_size=plans[st["stage"]].group_size,
                        kv_blocks_per_request=first.per_request_blocks(),
                        cudagraph_capture_sizes=0 if w.enforce_eager else
                        len(capture_sizes(w.max_num_seqs, w.max_num_batched_tokens)),
                        cuda_graphs_in_pool=bool(graphs), **(mm.fields if mm is not None else {}))
    return phases, report


def state_notes(model: ResolvedModel, w: Workload, a: float, groups: KvGroups, version: tuple[int, int, int],
                notes: list[Assumption], size: Optional[int] = None, cc: str = "") -> None:
    """What a recurrent / hybrid model's state groups are (:func:`state_groups`), said once for both the single-GPU
    and the pipeline paths (``size``: the fullest stage's group size)."""
    spec = model.spec
    page, conv_b, ssm_b = mamba_state_bytes(rank_spec(model, w), w, a, version)
    mode = mamba_cache_mode(spec, w, version)
    ckpt = gdn_checkpoint(spec, mode, cc)
    pages = mamba_blocks_per_request(spec, mode) + (1 if ckpt else 0)
    dt = {4.0: "float32", 2.0: "16-bit", 1.0: "8-bit"}
    kinds = [k for k, _ in groups.groups]
    args = {"mamba": sum(1 for k in spec.state.kinds if k in _STATE_LAYERS), "state": _mib(page), "pages": pages,
            "conv": dt.get(conv_b, f"{conv_b:g}-byte"), "ssm": dt.get(ssm_b, f"{ssm_b:g}-byte")}
    if "full" in kinds:
        notes.append(Assumption("a_vllm_state", {**args, "page": _mib(groups.page_bytes),
                                                 "attn": sum(1 for i in range(len(spec.state.kinds))
                                                             if spec.state.has_kv(i)),
                                                 "block": groups.block, "groups": len(groups.groups),
                                                 "size": size or groups.group_size}))
    else:
        notes.append(Assumption("a_vllm_state_free", args))
    shown_version = ".".join(map(str, version))
    if mode == "align":
        notes.append(Assumption("a_vllm_state_align", {
            "version": shown_version, "pages": pages, "o_off": Opt("enable_prefix_caching", False),
            "o_on": Opt("enable_prefix_caching"),
            "ckpt": Text("a_vllm_state_ckpt") if spec.model_type in MAMBA2_MIXER_TYPES else ""}))
        if spec.model_type in GDN_TYPES:
            notes.append(Assumption("a_vllm_state_gdn_hopper" if ckpt else "a_vllm_state_gdn", {}))
        elif spec.model_type not in MAMBA_MIXER_TYPES:
            notes.append(Assumption("a_vllm_state_other_mixer", {"model_type": spec.model_type}))
    elif mode == "unmodelled":
        notes.append(Assumption("a_vllm_state_late", {"version": shown_version}))


def dsv4_note(model: ResolvedModel, groups: KvGroups, version: tuple[int, int, int],
              notes: list[Assumption]) -> None:
    """What DeepSeek-V4's vLLM cache groups are (:mod:`vramscope.engines.vllm_dsv4`)."""
    kinds = [k for k, _ in groups.groups]
    notes.append(Assumption("a_vllm_dsv4", {
        "version": ".".join(map(str, version)), "groups": len(kinds), "sliding": kinds.count("sliding"),
        "block": _mib(groups.pool_block), "blocks": groups.per_request_blocks(), "o_kv": Opt("kv_dtype")}))


#: recurrent mixers transformers builds that vLLM's registry (read at v0.33.0) has no architecture for
NOT_IN_VLLM = ("xLSTMLayer", "RwkvSelfAttention", "RecurrentGemmaRglru")


def vllm_inference(model: ResolvedModel, w: Workload, weights: int, a: float, gpus: tuple[Gpu, ...],
                   notes: list[Assumption]) -> tuple[Phases, VllmReport]:
    st = model.spec.state
    if st is not None and st.mixer in NOT_IN_VLLM:
        from ..errors import VramscopeError

        raise VramscopeError("conflict", field="engine", reason=Text(
            "r_vllm_no_arch", version=".".join(map(str, vllm_version(w))), model_type=model.spec.model_type,
            mixer=st.mixer))
    if w.pp > 1:
        return vllm_pipeline(model, w, weights, a, gpus, notes)
    version = vllm_version(w)
    max_len = w.max_model_len or model.spec.max_position_embeddings or w.seq
    per_token = kv_bytes_per_token(model, w, a)
    cc = gpus[0].compute_capability if gpus else ""
    groups = kv_groups(model, w, a, max_len, version=version, cc=cc)
    one_seq = groups.needed_bytes()
    acts = activation_peak(model, w, a)
    mm = multimodal(model, w, a, max_len, version, notes) if model.spec.vision is not None else None
    if mm is not None:
        weights -= vllm_mm.weights_adjustment(model, w, a)
        if mm.profile is not None:
            acts = mm.profile.peak(acts)
    lora = lora_buffer_bytes(model, w, a)
    non_torch = NON_TORCH + (NCCL if w.num_gpus > 1 else 0)
    graphs = 0 if w.enforce_eager else CUDA_GRAPHS
    graphs_in_pool = graphs if version >= GRAPHS_PROFILED_SINCE else 0  # before v0.21: captured after the pool
    needed = weights + lora + acts + non_torch + graphs_in_pool + one_seq
    per_gpu = []
    for g in gpus:
        budget = int(w.gpu_memory_utilization * g.usable_bytes)
        pool = budget - weights - lora - acts - non_torch - graphs_in_pool
        blocks, tokens, conc = kv_capacity(groups, max(0, pool), max_len, version)
        per_gpu.append(VllmGpu(gpu=g.name, budget_bytes=budget, kv_pool_bytes=max(0, pool), kv_tokens=tokens,
                               max_concurrency=round(conc, 2), fits_max_model_len=max(0, pool) >= one_seq,
                               num_gpu_blocks=blocks))
    primary = per_gpu[0] if per_gpu else None
    # the pool vLLM takes; when it cannot hold one max_model_len sequence vLLM refuses to start, and what is shown
    # is what it would need (one sequence's KV cache), the number its verdict compares
    kv = max(primary.kv_pool_bytes, one_seq) if primary else one_seq
    serving = {"weights": weights, "kv_cache": kv, "activations": acts, "engine_overhead": non_torch + graphs}
    if lora:
        serving["lora_adapters"] = lora
    phases = {
        "load": {"weights": weights},
        "profile": {"weights": weights, "activations": acts},
        "serving": serving,
    }
    dp = getattr(w, "data_parallel_size", None) or 1
    notes.append(Assumption("a_vllm", {"util": w.gpu_memory_utilization, "max_len": max_len,
                                       "seqs": w.max_num_seqs, "tokens": w.max_num_batched_tokens,
                                       "tp": w.num_gpus}))
    notes.append(Assumption("a_vllm_version" if version >= GRAPHS_PROFILED_SINCE else "a_vllm_version_old",
                            {"version": ".".join(map(str, version)),
                             "entry": getattr(w, "vllm_entrypoint", None) or "serve"}))
    notes.append(Assumption("a_vllm_prefix_caching", {}))
    if model.spec.state is not None:
        state_notes(model, w, a, groups, version, notes, cc=cc)
    elif model.spec.compressed is not None and version >= vllm_dsv4.DSV4_SINCE:
        dsv4_note(model, groups, version, notes)
    elif groups.hybrid:
        notes.append(Assumption("a_vllm_hybrid", {"groups": len(groups.groups), "size": groups.group_size,
                                                  "window": model.spec.sliding_window}))
    elif model.spec.sliding_window and model.spec.mla is None and getattr(w, "disable_hybrid_kv_cache_manager",
                                                                           False):
        notes.append(Assumption("a_vllm_hybrid_off", {"o": Opt("disable_hybrid_kv_cache_manager")}))
    if lora:
        notes.append(Assumption("a_vllm_lora", {"loras": w.max_loras, "rank": w.max_lora_rank}))
    if dp > 1:
        ep = getattr(w, "enable_expert_parallel", False) and model.spec.moe is not None
        notes.append(Assumption("a_vllm_dp_ep" if ep else "a_vllm_dp",
                                {"dp": dp, "tp": w.num_gpus, "gpus": dp * w.num_gpus}))
    if primary is not None and not primary.fits_max_model_len:
        notes.append(Assumption("a_vllm_too_long", {"max_len": max_len, "tokens": primary.kv_tokens,
                                                 "o_max_len": Opt("max_model_len"),
                                                 "o_util": Opt("gpu_memory_utilization")}))
    report = VllmReport(gpu_memory_utilization=w.gpu_memory_utilization, max_model_len=max_len,
                        max_num_seqs=w.max_num_seqs, max_num_batched_tokens=w.max_num_batched_tokens,
                        tensor_parallel_size=w.num_gpus, kv_bytes_per_token=per_token, weights_bytes=weights,
                        activation_peak_bytes=acts, non_torch_bytes=non_torch, cuda_graph_bytes=graphs,
                        min_bytes=needed, per_gpu=per_gpu, version=".".join(map(str, version)),
                        block_size=groups.block, kv_cache_groups=[k for k, _ in groups.groups],
                        kv_group_size=groups.group_size, kv_blocks_per_request=groups.per_request_blocks(),
                        cudagraph_capture_sizes=0 if w.enforce_eager else
                        len(capture_sizes(w.max_num_seqs, w.max_num_batched_tokens)),
                        cuda_graphs_in_pool=bool(graphs_in_pool), lora_bytes=lora or None,
                        data_parallel_size=dp if dp > 1 else None,
                        **(mm.fields if mm is not None else {}))
    return phases, report


@dataclass(frozen=True)
class _Mm:
    profile: Optional[vllm_mm.MmProfile]
    fields: dict[str, Any]


def multimodal(model: ResolvedModel, w: Workload, a: float, max_len: int, version: tuple[int, int, int],
               notes: list[Assumption]) -> _Mm:
    """A vision-language model under vLLM (engines/vllm_mm.py): the encoder budget, the dummy profile's share of
    the activation peak, the tower's weights as vLLM holds them, and the notes saying so."""
    from ..errors import Text, VramscopeError

    spec = model.spec
    if spec.model_type == "mllama" and version >= MLLAMA_REMOVED:
        raise VramscopeError("conflict", field="engine", reason=Text("r_vllm_mllama",
                                                                    version=".".join(map(str, version))))
    fields: dict[str, Any] = {"mm_processor_cache_host_bytes": vllm_mm.processor_cache_bytes(w)}
    if not vllm_mm.tower_loaded(model, w):
        notes.append(Assumption("a_vllm_mm_off", {"o": Opt("limit_mm_per_prompt")}))
        return _Mm(None, fields)
    p = vllm_mm.profile(model, w, a, max_len)
    if p is None:
        notes.append(Assumption("a_vllm_mm_unmodelled", {"model_type": spec.model_type}))
        return _Mm(None, fields)
    fields.update(vllm_mm.summary(p))
    per = ", ".join(f"{m} {t:,}" for m, t in sorted(p.max_tokens_per_item.items()))
    if p.profiled:
        notes.append(Assumption("a_vllm_mm", {"per": per, "budget": f"{p.budget:,}", "items": p.items_per_batch,
                                              "modality": p.modality, "out": _mib(p.output_bytes),
                                              "tower": _mib(p.tower_peak_bytes), "inputs": _mib(p.input_bytes)}))
    else:
        notes.append(Assumption("a_vllm_mm_skip", {"per": per, "budget": f"{p.budget:,}",
                                                   "o": Opt("skip_mm_profiling")}))
    return _Mm(p, fields)


def _mib(n: int) -> str:
    return f"{n / 2**20:,.2f} MiB"


#: model types vLLM refuses to run in float16 (vllm/config/model.py ``_FLOAT16_NOT_SUPPORTED_MODELS``, v0.33.0)
NO_FP16 = ("gemma2", "gemma3", "gemma3_text", "glm4")


def auto_dtype(model: ResolvedModel, w: Workload, dtype: str, gpu: Optional[Gpu]) -> str:
    """``--dtype auto`` (vllm/config/model.py ``_resolve_auto_dtype``, v0.33.0): a float32 checkpoint runs in the
    platform's first supported dtype, bfloat16 from compute capability 8.0 (float16 on older GPUs, float32 for
    the model types that refuse float16)."""
    if w.dtype is not None or w.quant != "none" or dtype != "fp32" or model.stored is not None:
        return dtype
    cc = parse_version(gpu.compute_capability) if gpu is not None and gpu.compute_capability else None
    if cc is None or cc >= (8, 0, 0):
        return "bf16"
    return "fp32" if model.spec.model_type in NO_FP16 else "fp16"


def resolved(w: Workload, gpu: Optional[Gpu], model: Optional[ResolvedModel] = None) -> Workload:
    """The workload with vLLM's own defaults filled in: ``max_num_batched_tokens`` and ``max_num_seqs`` by version,
    GPU and entry point (:func:`batch_defaults`), then, as ``_set_default_max_num_seqs_and_batched_tokens_args``
    does when the batch is not given, at most ``max_num_seqs × max_model_len`` tokens. Before v0.8.0 (V0):
    256 sequences and ``max(max_model_len, 2048)`` tokens, 2048 with chunked prefill (max_model_len > 32768)."""
    version = vllm_version(w)
    if version < V1_SINCE:
        spec = model.spec if model is not None else None
        max_len = w.max_model_len or (spec.max_position_embeddings if spec else None) or w.seq
        chunked = max_len > 32768 and not (spec and spec.sliding_window) and not getattr(w, "enable_lora", False)
        return replace(w, max_num_seqs=w.max_num_seqs or 256,
                       max_num_batched_tokens=w.max_num_batched_tokens or (2048 if chunked else max(max_len, 2048)))
    tokens, seqs = batch_defaults(version, gpu, getattr(w, "vllm_entrypoint", None) or "serve")
    seqs = w.max_num_seqs or seqs
    if w.max_num_batched_tokens is None and w.max_model_len:
        tokens = min(tokens, seqs * w.max_model_len)
    return replace(w, max_num_seqs=seqs, max_num_batched_tokens=w.max_num_batched_tokens or tokens)


class Vllm(Engine):
    name = "vllm"
    sizes_by_gpu = True
    pipeline_inference = True
    options = (
        Option("gpu_memory_utilization", ("--gpu-memory-utilization",), "float", 0.9, group="vllm", owner="vllm",
               lo=0.05, hi=1.0, expected="a fraction from 0.05 to 1.0",
               help_en="fraction of GPU memory vLLM preallocates (default 0.9)",
               help_zh="vLLM 预先占用的显存比例（默认 0.9）"),
        Option("max_model_len", ("--max-model-len",), "int", None, group="vllm", owner="vllm", lo=1, hi=MAX_SEQ,
               help_en="longest sequence (default: the model's max_position_embeddings)",
               help_zh="最长序列（默认：模型的 max_position_embeddings）"),
        Option("max_num_seqs", ("--max-num-seqs",), "int", None, group="vllm", owner="vllm", lo=1, hi=1_000_000,
               help_en="concurrent sequences in one batch (default: vLLM's for the GPU and entry point, 256 or 1024)",
               help_zh="一个批次中的并发序列数（默认：vLLM 按 GPU 与入口选择，256 或 1024）"),
        Option("max_num_batched_tokens", ("--max-num-batched-tokens",), "int", None, group="vllm", owner="vllm",
               lo=1, hi=MAX_SEQ,
               help_en="tokens in one scheduler step (chunked prefill) and in the profile run (default: vLLM's for "
                       "the GPU and entry point, 2048 to 16384)",
               help_zh="一次调度步（分块预填充）和显存探测运行中的 token 数（默认：vLLM 按 GPU 与入口选择，2048 到 16384）"),
        Option("enforce_eager", ("--enforce-eager",), "flag", False, group="vllm", owner="vllm",
               help_en="no CUDA graphs", help_zh="不使用 CUDA graph"),
        Option("vllm_version", ("--vllm-version",), "custom", None, group="vllm", owner="vllm", parse=_read_version,
               metavar="X.Y.Z",
               help_en=f"the vLLM release whose defaults and KV cache manager are modelled (default {VLLM_MODELLED})",
               help_zh=f"按哪个 vLLM 版本的默认值与 KV 缓存管理器建模（默认 {VLLM_MODELLED}）"),
        Option("vllm_entrypoint", ("--vllm-entrypoint",), "choice", "serve", group="vllm", owner="vllm",
               choices=("serve", "llm"),
               help_en="how vLLM is started: 'vllm serve' or the Python LLM class (their batch defaults differ)",
               help_zh="vLLM 的启动方式：'vllm serve' 或 Python 的 LLM 类（两者的批次默认值不同）"),
        Option("block_size", ("--block-size",), "int", None, group="vllm", owner="vllm", lo=1, hi=4096,
               help_en="tokens per KV cache block (default 16)", help_zh="每个 KV 缓存块的 token 数（默认 16）"),
        Option("disable_hybrid_kv_cache_manager", ("--disable-hybrid-kv-cache-manager",), "flag", False,
               group="vllm", owner="vllm",
               help_en="sliding-window layers keep every token, as full-attention layers do",
               help_zh="滑动窗口层像全注意力层一样保留全部 token"),
        Option("enable_prefix_caching", ("--enable-prefix-caching",), "flag", None, contextual=True, group="vllm",
               owner="vllm", negation="--no-enable-prefix-caching",
               help_en="prefix caching (vLLM's default: on, for hybrid attention / mamba models from 0.22, off for "
                       "attention-free recurrent ones): blocks are reused inside the pool, and mamba states are kept "
                       "in 'align' mode, two or three state blocks per request",
               help_zh="前缀缓存（vLLM 默认开启，注意力/mamba 混合模型自 0.22 起开启，无注意力的循环模型关闭）：在缓存池内复用块，"
                       "并以 'align' 模式保存 mamba 状态，每个请求两到三个状态块"),
        Option("mamba_cache_dtype", ("--mamba-cache-dtype",), "choice", "auto", group="vllm", owner="vllm",
               choices=("auto", "float32", "float16", "bfloat16"),
               help_en="dtype of a recurrent / hybrid model's conv states ('auto': the model's dtype)",
               help_zh="循环/混合模型卷积状态的数据类型（'auto'：模型的数据类型）"),
        Option("mamba_ssm_cache_dtype", ("--mamba-ssm-cache-dtype",), "choice", "auto", group="vllm",
               owner="vllm", choices=("auto", "float32", "float16", "bfloat16"),
               help_en="dtype of a recurrent / hybrid model's SSM states ('auto': as the conv states; Nemotron-H "
                       "float32 as read at v0.33.0, modelled from 0.22)",
               help_zh="循环/混合模型 SSM 状态的数据类型（'auto'：与卷积状态相同；Nemotron-H 按 v0.33.0 为 float32，"
                       "自 0.22 起按此建模）"),
        Option("enable_lora", ("--enable-lora",), "flag", False, group="vllm", owner="vllm",
               help_en="serve LoRA adapters: vLLM preallocates their slots in every linear layer",
               help_zh="服务 LoRA 适配器：vLLM 在每个线性层中预分配其槽位"),
        Option("max_loras", ("--max-loras",), "int", 1, group="vllm", owner="vllm", lo=1, hi=4096,
               help_en="LoRA adapters held on the GPU at once (default 1)",
               help_zh="GPU 上同时保存的 LoRA 适配器数（默认 1）"),
        Option("max_lora_rank", ("--max-lora-rank",), "int", 16, group="vllm", owner="vllm", lo=1, hi=4096,
               help_en="largest LoRA rank served (default 16)", help_zh="可服务的最大 LoRA 秩（默认 16）"),
        Option("data_parallel_size", ("--data-parallel-size", "-dp"), "int", None, group="vllm", owner="vllm",
               lo=1, hi=4096,
               help_en="data-parallel replicas, each on its own tensor-parallel group of GPUs (default 1)",
               help_zh="数据并行副本数，每个副本占用自己的一组张量并行 GPU（默认 1）"),
        Option("limit_mm_per_prompt", ("--limit-mm-per-prompt",), "custom", None, group="vllm", owner="vllm",
               parse=vllm_mm.read_limits, metavar="JSON",
               help_en='items per prompt of each modality, a JSON object of modality: count, e.g. "image": 2, "video": 0 '
                       '(default 999 each; 0 for every modality: the vision tower is not loaded)',
               help_zh='每个提示中各模态的条目数，JSON 对象（模态: 数量），例如 "image": 2, "video": 0（默认各 999；所有模态为 0 '
                       '时不加载视觉塔）'),
        Option("mm_processor_kwargs", ("--mm-processor-kwargs",), "custom", None, group="vllm", owner="vllm",
               parse=vllm_mm.read_processor_kwargs, metavar="JSON",
               help_en="overrides of the multimodal processor (read: min_pixels, max_pixels, size), which size the "
                       "largest image",
               help_zh="多模态处理器的覆盖参数（读取 min_pixels、max_pixels、size），决定最大图像的尺寸"),
        Option("mm_encoder_tp_mode", ("--mm-encoder-tp-mode",), "choice", "weights", group="vllm", owner="vllm",
               choices=("weights", "data"),
               help_en="tensor parallelism of the vision encoder: split its weights (default) or its batch (the "
                       "whole tower on every GPU; Qwen-VL models)",
               help_zh="视觉编码器的张量并行方式：切分权重（默认）或切分批次（每张 GPU 保存完整视觉塔；Qwen-VL 系列）"),
        Option("mm_processor_cache_gb", ("--mm-processor-cache-gb",), "float", 4.0, group="vllm", owner="vllm",
               lo=0.0, hi=1024.0, expected="GiB from 0 to 1024",
               help_en="host memory of the multimodal processor cache per API and engine process (default 4)",
               help_zh="每个 API 与引擎进程中多模态处理器缓存占用的主机内存（默认 4 GiB）"),
        Option("skip_mm_profiling", ("--skip-mm-profiling",), "flag", False, group="vllm", owner="vllm",
               help_en="profile the language model only (the encoder and its cache are not taken from the KV cache)",
               help_zh="只对语言模型做显存探测（编码器及其缓存不从 KV 缓存中扣除）"),
        Option("enable_expert_parallel", ("--enable-expert-parallel",), "flag", False, group="vllm", owner="vllm",
               help_en="MoE experts split whole across the TP × DP GPUs instead of sharded over TP",
               help_zh="MoE 专家整体分布在 TP × DP 张 GPU 上，而不是在 TP 内切分"),
    )
    overhead_note = "a_overhead_vllm"

    def inference(self, model: ResolvedModel, w: Workload, dtype: str, notes: list[Assumption],
                  gpus: tuple[Gpu, ...]) -> tuple[Phases, Optional[EngineReport]]:
        w = resolved(w, gpus[0] if gpus else None, model)
        if not w.kv_dtype and model.spec.kv_quant == "fp8":
            # kv_cache_dtype "auto" follows the checkpoint's ModelOpt kv_cache_quant_algo
            # (resolve_kv_cache_dtype_string / get_kv_cache_quant_algo_string, vllm/utils/torch_utils.py at
            # 0024350b5da3): FP8 → fp8_e4m3, one byte per value
            w = replace(w, kv_dtype="fp8")
            notes.append(Assumption("a_vllm_kv_checkpoint", {"o_kv": Opt("kv_dtype")}))
        auto = auto_dtype(model, w, dtype, gpus[0] if gpus else None)
        a, _, held = rank_weights(model, w, auto, notes, fp32_modules=False)
        if auto != dtype:  # the downcast replaces the "checkpoint's own dtype" note
            notes[:] = [n for n in notes if n.key != "a_weights_dtype_config"]
            notes.append(Assumption("a_vllm_dtype_auto", {"dtype": auto}))
        held = expert_parallel_weights(model, w, held)
        return vllm_inference(model, w, held, a, gpus, notes)

    def runtime_overhead(self, transient: int, gpu: Optional[Gpu]) -> Any:
        """The CUDA context is inside vLLM's own non-torch accounting: only its spread remains."""
        from ..memory.overhead import Overhead

        return Overhead(0, 0, NON_TORCH_HIGH - NON_TORCH)

    def verdicts(self, gpus: tuple[Gpu, ...], total: int, high: int,
                 report: dict[str, Any]) -> tuple[GpuVerdict, ...]:
        return tuple(verdict(g, v, report) for g, v in zip(gpus, report["per_gpu"]))

    def total_key(self, e: Estimate) -> str:
        """The total is the share vLLM preallocates, or, when that cannot hold one max_model_len sequence, what
        it would need."""
        per = e.engine["per_gpu"]
        return "total_vllm" if not per or per[0]["fits_max_model_len"] else "total_vllm_needed"

    def gpu_line(self, e: Estimate, g: GpuVerdict, lang: str, units: str) -> str:
        """The verdict compares what vLLM needs (weights, activation peak, overhead, one max_model_len sequence)
        with the share it takes; headroom is that share minus what it needs, which its KV cache pool fills."""
        from ..i18n import t
        from ..units import format_bytes

        per = next((p for p in e.engine["per_gpu"] if p["gpu"] == g.name), None)
        if per is None:
            return super().gpu_line(e, g, lang, units)
        budget = per["budget_bytes"]
        verdict_text = t({"fits": "gpu_fits", "tight": "gpu_tight", "no": "gpu_no"}[g.verdict], lang)
        return t("gpu_line_vllm", lang, gpu=g.name, mem=format_bytes(g.usable_bytes, units),
                 util=e.engine["gpu_memory_utilization"], budget=format_bytes(budget, units), verdict=verdict_text,
                 needed=format_bytes(e.engine["min_bytes"], units), headroom=format_bytes(g.headroom_bytes, units),
                 pct=f"{100 * g.headroom_bytes / budget if budget else 0.0:+.1f}%")

    def needed_bytes(self, e: Estimate) -> int:
        """vLLM takes a fixed share of any GPU, so what it needs is its minimum: weights, activation peak,
        non-torch memory, CUDA graphs and the KV cache of one longest sequence."""
        return e.engine["min_bytes"]

    def budget(self, w: Workload, gpu: Gpu) -> int:
        return int(gpu.usable_bytes * w.gpu_memory_utilization)

    def fit_search(self, model: ResolvedModel, w: Workload, e: Estimate, fits: Callable[[Workload], bool],
                   seq_limit: int) -> tuple[int, int, Optional[int]]:
        """vLLM batches as many sequences as its KV pool holds: that, and the longest max_model_len."""
        from ..plan import largest_fitting

        max_concurrency = int(e.engine["per_gpu"][0]["max_concurrency"])
        max_seq = largest_fitting(lambda s: fits(replace(w, max_model_len=s)), 1, max(seq_limit, 1))
        return max_concurrency, max_seq, max_concurrency

    def suggestions(self, model: ResolvedModel, w: Workload, usable: int,
                    needs: Callable[[Workload], int]) -> list[Candidate]:
        cands: list[Candidate] = []
        if w.quant == "none":
            cands.append(("s_quant", {"quant": "fp8"}, {"quant": "fp8"}, "quality"))
        if w.kv_dtype not in ("fp8",):
            cands.append(("s_kv_dtype", {"kv_dtype": "fp8"}, {"kv_dtype": "fp8"}, "quality"))
        if w.gpu_memory_utilization < 0.95:
            cands.append(("s_util", {"util": 0.95, "opt": Opt("gpu_memory_utilization")}, {"gpu_memory_utilization": 0.95}, "none"))
        if not w.enforce_eager:
            cands.append(("s_eager", {"opt": Opt("enforce_eager")}, {"enforce_eager": True}, "speed"))
        if (w.max_num_seqs or 256) > 64:
            cands.append(("s_seqs", {"n": 64, "opt": Opt("max_num_seqs", 64)}, {"max_num_seqs": 64, "max_num_batched_tokens": 2048}, "speed"))
        return cands

    def context_suggestions(self, model: ResolvedModel, w: Workload, max_seq: int) -> list[Candidate]:
        current_len = w.max_model_len or model.spec.max_position_embeddings or w.seq
        return [("s_max_len", {"seq": max_seq, "opt": Opt("max_model_len")}, {"max_model_len": max_seq}, "quality")] \
            if 0 < max_seq < current_len else []

    def table_lines(self, e: Estimate, lang: str, units: str) -> list[str]:
        from ..i18n import t
        from ..units import format_bytes

        return [t("vllm_gpu_line", lang, gpu=g["gpu"], budget=format_bytes(g["budget_bytes"], units),
                  util=e.engine["gpu_memory_utilization"], kv=format_bytes(g["kv_pool_bytes"], units),
                  tokens=f"{g['kv_tokens']:,}", c=g["max_concurrency"], n=f"{e.engine['max_model_len']:,}")
                for g in e.engine["per_gpu"]]

    def record_options(self, src: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """vLLM's engine arguments; the rest of the record (dtype, ...) is translated as for transformers."""
        out: dict[str, Any] = {}
        for key in ("gpu_memory_utilization", "max_model_len", "max_num_seqs", "enforce_eager", "vllm_version",
                    "max_num_batched_tokens"):
            if src.get(key) is not None:
                out[key] = src[key]
        record_serving(src, out, "vLLM", ("tensor_parallel_size",))
        out["engine"] = self.name
        return out, False

    def printed_components(self, e: Estimate) -> dict[str, int]:
        """The terms of vLLM's memory profiling lines."""
        r = e.engine
        per = r["per_gpu"][0] if r["per_gpu"] else {}
        return {"weights": r["weights_bytes"], "activation_peak": r["activation_peak_bytes"],
                "non_torch": r["non_torch_bytes"], "kv_cache": per.get("kv_pool_bytes", 0),
                "instance_budget": per.get("budget_bytes", 0), "cuda_graphs": r["cuda_graph_bytes"]}


def verdict(gpu: Gpu, per_gpu: dict[str, Any], engine: dict[str, Any]) -> GpuVerdict:
    """vLLM fits when the KV pool left after weights, activations and overhead holds one ``max_model_len``
    sequence, that is when what it needs (``min_bytes``) is within the share it takes; *tight* when the pool holds
    fewer than two. Headroom is that share minus what it needs (the pool beyond the one sequence)."""
    tokens, max_len = per_gpu["kv_tokens"], engine["max_model_len"]
    v = "no" if tokens < max_len else ("tight" if tokens < 2 * max_len else "fits")
    return GpuVerdict(name=gpu.name, memory_bytes=gpu.memory_bytes, usable_bytes=gpu.usable_bytes, verdict=v,
                      headroom_bytes=per_gpu["budget_bytes"] - engine["min_bytes"])


ENGINE = Vllm()
