"""Every sentence a person reads, in English and 简体中文.

``t(key, lang, **params)`` formats one message. Keys are stable; tests check that every key has both
languages and the same placeholders. The default language comes from ``--lang``, then ``VRAMSCOPE_LANG``,
then the locale (``LC_ALL``, ``LC_MESSAGES``, ``LANG``): ``zh*`` gives Chinese, anything else English.
"""

from __future__ import annotations

import os
import string

LANGS = ("en", "zh")

MESSAGES: dict[str, dict[str, str]] = {
    # ---- fragments (errors.Text): rendered inside a sentence, in the sentence's language ----
    "kind_fifo": {"en": "a named pipe (FIFO)", "zh": "命名管道（FIFO）"},
    "kind_chardev": {"en": "a character device", "zh": "字符设备"},
    "kind_blockdev": {"en": "a block device", "zh": "块设备"},
    "kind_socket": {"en": "a socket", "zh": "套接字"},
    "kind_folder": {"en": "a folder", "zh": "目录"},
    "kind_other": {"en": "not a regular file", "zh": "非普通文件"},
    "stage_first": {"en": "first stage", "zh": "第一个阶段"},
    "pp_ranks_line": {"en": "Pipeline ranks (traced, each rank's own peak):", "zh": "流水线各 rank（追踪，各自的峰值）："},
    "pp_rank_row": {"en": "  rank {rank}: stages {stages} ({layers} layers), {peak} at {phase}{busiest}",
                    "zh": "  rank {rank}：阶段 {stages}（{layers} 层），{phase}时 {peak}{busiest}"},
    "pp_busiest": {"en": " (busiest: the numbers above)", "zh": "（最忙：即上面的数字）"},
    "stage_middle": {"en": "middle stage", "zh": "中间阶段"},
    "stage_last": {"en": "last stage", "zh": "最后一个阶段"},
    "json_constant": {"en": "{name} is not a number JSON allows", "zh": "{name} 不是 JSON 允许的数字"},
    "json_long_number": {"en": "a number written with {n} characters (at most {limit})",
                         "zh": "一个写了 {n} 个字符的数字（最多 {limit} 个）"},
    "json_float_overflow": {"en": "the number {text} is too large for a float (it would be infinity)",
                            "zh": "数字 {text} 超出浮点数范围（会变成无穷大）"},
    "json_long_int": {"en": "an integer of {digits} digits (at most {limit})",
                      "zh": "一个 {digits} 位的整数（最多 {limit} 位）"},
    "json_utf16": {"en": "the text is UTF-16; save it as UTF-8", "zh": "文本是 UTF-16 编码；请另存为 UTF-8"},
    "json_not_utf8": {"en": "not UTF-8 text (byte {at} is {byte})", "zh": "不是 UTF-8 文本（第 {at} 个字节为 {byte}）"},
    "json_containers": {"en": "more than {limit} objects and arrays", "zh": "对象和数组超过 {limit} 个"},
    "json_items": {"en": "more than {limit} values", "zh": "值超过 {limit} 个"},
    "json_depth": {"en": "nested more than {limit} levels deep", "zh": "嵌套超过 {limit} 层"},
    "json_syntax": {"en": "{msg} at line {line} column {column}", "zh": "第 {line} 行第 {column} 列：{msg}"},
    # ---- errors: one line, naming the field, what was given and what is allowed ----
    "cli_error": {"en": "vramscope: error: {message}", "zh": "vramscope：错误：{message}"},
    "cli_internal_error": {
        "en": "vramscope: internal error: {kind}: {detail} (set VRAMSCOPE_DEBUG=1 for the traceback and please report it)",
        "zh": "vramscope：内部错误：{kind}：{detail}（设置 VRAMSCOPE_DEBUG=1 可查看调用栈，请报告此问题）",
    },
    # ---- reasons of conflicts and refusals (rendered inside the error line) ----
    "interrupted": {
        "en": "interrupted",
        "zh": "已中断",
    },
    "bad_count": {
        "en": "{field}: '{value}' is not a count; use a number such as 7B, 6.7e9, 70b, 1.5T or 350M",
        "zh": "{field}：'{value}' 不是有效的数量；请使用 7B、6.7e9、70b、1.5T 或 350M 这样的数字",
    },
    "count_not_positive": {
        "en": "{field}: '{value}' must be greater than zero",
        "zh": "{field}：'{value}' 必须大于零",
    },
    "count_below_one": {
        "en": "{field}: '{value}' is less than one parameter; counts need a suffix such as B or M ('{value}B' is "
              "{value} billion)",
        "zh": "{field}：'{value}' 不足一个参数；数量需要带 B 或 M 等后缀（'{value}B' 表示 {value}×10⁹ 个参数）",
    },
    "count_too_large": {
        "en": "{field}: '{value}' is too large (at most {maximum})",
        "zh": "{field}：'{value}' 过大（最多 {maximum}）",
    },
    "bad_int": {
        "en": "{field}: '{value}' is not a whole number; use an integer from {minimum} to {maximum}",
        "zh": "{field}：'{value}' 不是整数；请使用 {minimum} 到 {maximum} 之间的整数",
    },
    "int_out_of_range": {
        "en": "{field}: {value} is out of range; use an integer from {minimum} to {maximum}",
        "zh": "{field}：{value} 超出范围；请使用 {minimum} 到 {maximum} 之间的整数",
    },
    "bad_size": {
        "en": "{field}: '{value}' is not a memory size; use e.g. 24GB, 80GiB, 24G or a number of bytes",
        "zh": "{field}：'{value}' 不是有效的显存大小；请使用 24GB、80GiB、24G 或字节数",
    },
    "bad_transformers_version": {
        "en": "{field}: '{value}' is not a transformers version (4.0 or later, e.g. {example})",
        "zh": "{field}：'{value}' 不是 transformers 版本号（4.0 或更高，例如 {example}）",
    },
    "bad_choice": {
        "en": "{field}: '{value}' is not allowed; allowed: {allowed}",
        "zh": "{field}：不允许 '{value}'；允许：{allowed}",
    },
    "conflict": {
        "en": "{field}: {reason}",
        "zh": "{field}：{reason}",
    },
    "ollama_unknown_name": {
        "en": "'{name}' is not an Ollama library model vramscope knows; known families: {known} (or give a catalog name, a GGUF file or --params)",
        "zh": "'{name}' 不是 vramscope 认识的 Ollama 库模型；已知系列：{known}（也可给出目录名、GGUF 文件或 --params）",
    },
    "ollama_bad_tag": {
        "en": "'{name}': the tag is size[-variant][-quant] with a size of {sizes} and a quantization of {quants}",
        "zh": "'{name}'：标签格式为 size[-variant][-quant]，size 为 {sizes}，量化为 {quants}",
    },
    "modelfile_bad_line": {
        "en": "Modelfile line {line}: '{text}' cannot be read; expected {reason}",
        "zh": "Modelfile 第 {line} 行：无法读取 '{text}'；应为 {reason}",
    },
    "modelfile_no_from": {
        "en": "the Modelfile has no FROM line (the model it builds on)",
        "zh": "Modelfile 没有 FROM 行（它所基于的模型）",
    },
    "modelfile_bad_text": {
        "en": "{path}: not a Modelfile ({detail})",
        "zh": "{path}：不是 Modelfile（{detail}）",
    },
    "cmd_empty": {
        "en": "give the command you run after --, e.g. vramscope estimate -- vllm serve Qwen/Qwen2.5-7B -tp 2",
        "zh": "请在 -- 之后给出您运行的命令，例如 vramscope estimate -- vllm serve Qwen/Qwen2.5-7B -tp 2",
    },
    "cmd_too_long": {
        "en": "the command after -- is longer than {limit} words or has a word over 4096 characters",
        "zh": "-- 之后的命令超过 {limit} 个词，或有超过 4096 个字符的词",
    },
    "cmd_unknown_program": {
        "en": "'{program}' is not a command vramscope reads; it reads vllm serve, llama-server/llama-cli, ollama run/create, python -m sglang.launch_server, torchrun/accelerate launch/deepspeed/python with a training script",
        "zh": "vramscope 不读取 '{program}'；可读取 vllm serve、llama-server/llama-cli、ollama run/create、python -m sglang.launch_server、带训练脚本的 torchrun/accelerate launch/deepspeed/python",
    },
    "cmd_needs_value": {
        "en": "{flag} needs a value",
        "zh": "{flag} 需要一个值",
    },
    "cmd_ollama_verb": {
        "en": "read: ollama run MODEL, or ollama create NAME -f Modelfile",
        "zh": "可读取：ollama run MODEL，或 ollama create NAME -f Modelfile",
    },
    "config_unknown_training": {
        "en": "{origin}: not a training config vramscope recognizes (axolotl, LLaMA-Factory, TRL / TrainingArguments, torchtune, DeepSpeed, accelerate)",
        "zh": "{origin}：不是 vramscope 识别的训练配置（axolotl、LLaMA-Factory、TRL / TrainingArguments、torchtune、DeepSpeed、accelerate）",
    },
    "unknown_model": {
        "en": "model '{name}' is not in the catalog, not a local file or folder{hub}; did you mean: {suggestions}?",
        "zh": "模型 '{name}' 不在内置目录中，也不是本地文件或目录{hub}；您是否想找：{suggestions}？",
    },
    "unknown_model_nosuggest": {
        "en": "model '{name}' is not in the catalog, not a local file or folder{hub}; "
              "run 'vramscope models' to list the catalog, or pass --params 7B",
        "zh": "模型 '{name}' 不在内置目录中，也不是本地文件或目录{hub}；运行 'vramscope models' 查看目录，或使用 --params 7B",
    },
    "no_model": {
        "en": "MODEL: give a model name, a local path, or --params (e.g. --params 7B)",
        "zh": "MODEL：请给出模型名称、本地路径，或使用 --params（例如 --params 7B）",
    },
    "config_missing": {
        "en": "{origin}: required key '{key}' is missing",
        "zh": "{origin}：缺少必需的键 '{key}'",
    },
    "config_bad_value": {
        "en": "{origin}: key '{key}' has value '{value}'; expected {allowed}",
        "zh": "{origin}：键 '{key}' 的值为 '{value}'；应为 {allowed}",
    },
    "config_needs_tomli": {
        "en": "{origin}: reading a TOML config needs Python 3.11 (tomllib) or the tomli package (pip install tomli)",
        "zh": "{origin}：读取 TOML 配置需要 Python 3.11（tomllib）或 tomli 包（pip install tomli）",
    },
    "config_bad_toml": {
        "en": "{origin}: not valid TOML ({detail})",
        "zh": "{origin}：不是有效的 TOML（{detail}）",
    },
    "config_not_object": {
        "en": "{origin}: a config must be a JSON object",
        "zh": "{origin}：配置必须是 JSON 对象",
    },
    "config_bad_json": {
        "en": "{origin}: not valid JSON ({detail})",
        "zh": "{origin}：不是有效的 JSON（{detail}）",
    },
    # ---- model shapes (config.json keys and ModelSpec fields; limits in vramscope/model/limits.py) ----
    "shape_not_int": {
        "en": "{where}{field}: '{value}' is not a whole number; use {minimum} to {maximum}",
        "zh": "{where}{field}：'{value}' 不是整数；请使用 {minimum} 到 {maximum}",
    },
    "shape_not_number": {
        "en": "{where}{field}: '{value}' is not a number; use {minimum} to {maximum}",
        "zh": "{where}{field}：'{value}' 不是数字；请使用 {minimum} 到 {maximum}",
    },
    "shape_too_small": {
        "en": "{where}{field}: {value} is too small; use {minimum} to {maximum}",
        "zh": "{where}{field}：{value} 过小；请使用 {minimum} 到 {maximum}",
    },
    "shape_too_large": {
        "en": "{where}{field}: {value} is more than any real model has (the largest: {real}); use {minimum} to {maximum}",
        "zh": "{where}{field}：{value} 超过任何真实模型（最大的约为 {real}）；请使用 {minimum} 到 {maximum}",
    },
    "shape_not_bool": {
        "en": "{where}{field}: '{value}' is not true or false",
        "zh": "{where}{field}：'{value}' 不是 true 或 false",
    },
    "shape_not_str": {
        "en": "{where}{field}: '{value}' is not a string of at most {maximum} characters",
        "zh": "{where}{field}：'{value}' 不是最多 {maximum} 个字符的字符串",
    },
    "shape_not_str_list": {
        "en": "{where}{field}: '{value}' is not a list of strings",
        "zh": "{where}{field}：'{value}' 不是字符串列表",
    },
    "shape_not_object": {
        "en": "{where}{field}: '{value}' is not a JSON object of keys and values",
        "zh": "{where}{field}：'{value}' 不是由键和值组成的 JSON 对象",
    },
    "shape_not_layers": {
        "en": "{where}{field}: '{value}' is not a list of layer numbers from 0 to {maximum}",
        "zh": "{where}{field}：'{value}' 不是 0 到 {maximum} 的层号列表",
    },
    "shape_layer_types": {
        "en": "{where}{field}: '{value}' is not {layers} entries (one per layer) of {allowed}",
        "zh": "{where}{field}：'{value}' 不是 {layers} 个（每层一个）取自 {allowed} 的值",
    },
    "shape_bad_choice": {
        "en": "{where}{field}: '{value}' is not allowed; choose one of: {allowed}",
        "zh": "{where}{field}：不允许 '{value}'；可选值：{allowed}",
    },
    "shape_kv_heads": {
        "en": "{where}{field}: {kv} key/value heads do not divide the {heads} attention heads; use a divisor of {heads}",
        "zh": "{where}{field}：{kv} 个键/值头不能整除 {heads} 个注意力头；请使用 {heads} 的约数",
    },
    "shape_top_k": {
        "en": "{where}{field}: {k} experts per token is more than the {n} experts there are",
        "zh": "{where}{field}：每个 token {k} 个专家，多于现有的 {n} 个专家",
    },
    "shape_head_dim_zero": {
        "en": "{where}{field}: hidden size {hidden} over {heads} attention heads gives a head size of 0; "
              "give head_dim, or fewer heads",
        "zh": "{where}{field}：隐藏维度 {hidden} 除以 {heads} 个注意力头得到的头维度为 0；请给出 head_dim，或减少头数",
    },
    "shape_patch": {
        "en": "{where}{field}: patch size {patch} is larger than the image size {image}",
        "zh": "{where}{field}：图块大小 {patch} 大于图像大小 {image}",
    },
    "params_too_few": {
        "en": "{field}: {value} parameters is fewer than the smallest real language model has (about 100K); "
              "use at least {minimum}",
        "zh": "{field}：{value} 个参数少于最小的真实语言模型（约 10 万）；请至少使用 {minimum}",
    },
    "params_shape_too_big": {
        "en": "{field}: the shape ({shape}) alone holds {shape_params} parameters, more than the {params} given; "
              "give a smaller shape, or the model's config.json",
        "zh": "{field}：该形状（{shape}）本身就有 {shape_params} 个参数，多于给出的 {params}；"
              "请给出更小的形状，或模型的 config.json",
    },
    "unsupported_model_type": {
        "en": "{origin}: model_type '{model_type}' is not supported: it is not one of the {count} model types built "
              "in (docs/accuracy.md, Coverage), and {why}",
        "zh": "{origin}：不支持 model_type '{model_type}'：它不在 {count} 种内置模型类型之中（见 docs/accuracy.md 的"
              " Coverage 一节），并且{why}",
    },
    "meta_no_trace": {
        "en": "it cannot be built with transformers on the meta device: the trace extra (torch, transformers) "
              "is not installed (pip install 'vramscope[trace]')",
        "zh": "无法用 transformers 在 meta 设备上构建：未安装 trace 扩展（torch、transformers）"
              "（pip install 'vramscope[trace]'）",
    },
    "meta_not_shipped": {
        "en": "transformers {version} does not ship it (remote code is never run)",
        "zh": "transformers {version} 没有自带该架构（从不运行远程代码）",
    },
    "meta_build_failed": {
        "en": "transformers {version} could not build it on the meta device ({detail})",
        "zh": "transformers {version} 无法在 meta 设备上构建它（{detail}）",
    },
    "file_not_found": {
        "en": "{path}: no such file or directory",
        "zh": "{path}：文件或目录不存在",
    },
    "file_unreadable": {
        "en": "{path}: cannot be read ({detail})",
        "zh": "{path}：无法读取（{detail}）",
    },
    "path_empty": {
        "en": "an empty path was given; name a file or a folder",
        "zh": "给出的路径为空；请指定文件或目录",
    },
    "path_loop": {
        "en": "{path}: symbolic link loop (the links point at each other and never reach a file)",
        "zh": "{path}：符号链接循环（链接互相指向，始终到不了文件）",
    },
    "path_too_long": {
        "en": "{path}: file name too long ({n} bytes; a name has at most 255 bytes and a path at most 4096)",
        "zh": "{path}：文件名过长（{n} 字节；文件名最多 255 字节，路径最多 4096 字节）",
    },
    "permission_denied": {
        "en": "{path}: permission denied (this user may not read it)",
        "zh": "{path}：权限不足（当前用户无权读取）",
    },
    "not_regular_file": {
        "en": "{path}: is {kind}, not a regular file (vramscope reads only regular files and folders)",
        "zh": "{path}：是{kind}，不是普通文件（vramscope 只读取普通文件和目录）",
    },
    "file_too_large": {
        "en": "{path}: larger than {limit}, more than a file of this kind can be; refusing to read it",
        "zh": "{path}：大于 {limit}，超出此类文件的合理大小；拒绝读取",
    },
    "shards_missing": {
        "en": "{path}: {n} of the {total} shard files of this checkpoint are missing ({names}); "
              "download the whole checkpoint",
        "zh": "{path}：该检查点的 {total} 个分片文件中缺少 {n} 个（{names}）；请下载完整的检查点",
    },
    "config_bad_yaml": {
        "en": "{origin}: not valid YAML ({detail})",
        "zh": "{origin}：不是有效的 YAML（{detail}）",
    },
    "dir_too_many": {
        "en": "{path}: more than {n} entries, so not a model folder; give the folder that holds the checkpoint",
        "zh": "{path}：条目超过 {n} 个，不是模型目录；请给出存放检查点的目录",
    },
    "stored_mismatch": {
        "en": "{path}: the weight files hold {stored} parameters but config.json describes {expected} ({pct}){why}; "
              "the checkpoint is incomplete or the config belongs to another model",
        "zh": "{path}：权重文件含 {stored} 个参数，而 config.json 描述的是 {expected} 个（{pct}）{why}；"
              "检查点不完整，或 config 属于另一个模型",
    },
    "pickle_refused": {
        "en": "{path}: pickle checkpoints (.bin/.pt/.pth/.ckpt) are never loaded, since loading them can run code; "
              "give the config.json, .safetensors or .gguf instead",
        "zh": "{path}：出于安全考虑从不加载 pickle 权重（.bin/.pt/.pth/.ckpt），加载它们可能执行代码；"
              "请改用 config.json、.safetensors 或 .gguf",
    },
    "dir_no_model": {
        "en": "{path}: found no config.json, *.safetensors or *.gguf in this folder",
        "zh": "{path}：该目录中没有 config.json、*.safetensors 或 *.gguf",
    },
    "safetensors_bad": {
        "en": "{path}: not a valid safetensors file ({detail})",
        "zh": "{path}：不是有效的 safetensors 文件（{detail}）",
    },
    "gguf_bad": {
        "en": "{path}: not a valid GGUF file ({detail})",
        "zh": "{path}：不是有效的 GGUF 文件（{detail}）",
    },
    "gguf_not_gguf": {
        "en": "{path}: not a GGUF file (it does not start with the GGUF magic bytes)",
        "zh": "{path}：不是 GGUF 文件（开头没有 GGUF 魔数）",
    },
    "gguf_truncated": {
        "en": "{path}: truncated GGUF file: {what} runs past the end of the file ({size} bytes)",
        "zh": "{path}：GGUF 文件被截断：{what} 超出了文件末尾（文件共 {size} 字节）",
    },
    "gguf_header_past_prefix": {
        "en": "{path}: the GGUF header is longer than the first {limit} of the file that are read ({what} goes "
              "past them); estimate this file with the command line: vramscope estimate FILE.gguf",
        "zh": "{path}：GGUF 文件头超过了读取的前 {limit}（{what} 超出了这一范围）；请用命令行估算这个文件："
              "vramscope estimate FILE.gguf",
    },
    "gguf_upload_split": {
        "en": "{path}: one shard of a model split in {count} files; the other shards are not here — estimate it "
              "with the command line: vramscope estimate NAME-00001-of-{count:05d}.gguf",
        "zh": "{path}：这是拆分为 {count} 个文件的模型中的一个分片，其余分片不在这里——请用命令行估算："
              "vramscope estimate NAME-00001-of-{count:05d}.gguf",
    },
    "gguf_key_missing": {
        "en": "{path}: GGUF metadata key '{key}' is missing",
        "zh": "{path}：缺少 GGUF 元数据键 '{key}'",
    },
    "gguf_key_int": {
        "en": "{path}: GGUF metadata key '{key}' is {value}; expected a whole number from {minimum} to {maximum}",
        "zh": "{path}：GGUF 元数据键 '{key}' 的值为 {value}；应为 {minimum} 到 {maximum} 之间的整数",
    },
    "gguf_key_number": {
        "en": "{path}: GGUF metadata key '{key}' is {value}; expected a finite number from {minimum} to {maximum}",
        "zh": "{path}：GGUF 元数据键 '{key}' 的值为 {value}；应为 {minimum} 到 {maximum} 之间的有限数值",
    },
    "gguf_key_text": {
        "en": "{path}: GGUF metadata key '{key}' is {value}; expected an array of strings",
        "zh": "{path}：GGUF 元数据键 '{key}' 的值为 {value}；应为字符串数组",
    },
    "gguf_key_arch": {
        "en": "{path}: GGUF metadata key '{key}' is {value}; expected an architecture name such as llama, qwen2 or gemma2",
        "zh": "{path}：GGUF 元数据键 '{key}' 的值为 {value}；应为架构名称，例如 llama、qwen2 或 gemma2",
    },
    "gguf_key_bools": {
        "en": "{path}: GGUF metadata key '{key}' is {value}; expected {layers} values of true or false (one per block)",
        "zh": "{path}：GGUF 元数据键 '{key}' 的值为 {value}；应为 {layers} 个 true 或 false（每层一个）",
    },
    "gguf_key_blocks": {
        "en": "{path}: GGUF metadata key '{key}' is {value}, but the file holds tensors (blk.N.*) for blocks {blocks}",
        "zh": "{path}：GGUF 元数据键 '{key}' 的值为 {value}，但文件中的张量（blk.N.*）属于第 {blocks} 层",
    },
    "gguf_key_per_layer": {
        "en": "{path}: GGUF metadata key '{key}' has {count} per-layer values; expected {layers} (one per block)",
        "zh": "{path}：GGUF 元数据键 '{key}' 有 {count} 个逐层取值；应为 {layers} 个（每层一个）",
    },
    "gguf_key_divisor": {
        "en": "{path}: GGUF metadata key '{key}' is {value}; expected a divisor of {other} ({total})",
        "zh": "{path}：GGUF 元数据键 '{key}' 的值为 {value}；应能整除 {other}（{total}）",
    },
    "gguf_key_pow2": {
        "en": "{path}: GGUF metadata key '{key}' is {value}; expected a power of two from 1 to {maximum}",
        "zh": "{path}：GGUF 元数据键 '{key}' 的值为 {value}；应为 1 到 {maximum} 之间的 2 的幂",
    },
    "gguf_key_ratios": {
        "en": "{path}: GGUF metadata key '{key}' is {value}; expected an array of {layers} to {maximum} whole numbers, "
              "one per block, each 0, 4 or 128",
        "zh": "{path}：GGUF 元数据键 '{key}' 的值为 {value}；应为含 {layers} 到 {maximum} 个整数的数组（每层一个），"
              "每个取 0、4 或 128",
    },
    "gguf_tensor_needed": {
        "en": "{path}: GGUF metadata key '{key}' is {value}, which needs tensor '{tensor}'; the file has none",
        "zh": "{path}：GGUF 元数据键 '{key}' 的值为 {value}，需要张量 '{tensor}'，但文件中没有",
    },
    "gguf_tensor_unneeded": {
        "en": "{path}: GGUF metadata key '{key}' is {value}, which has no tensor '{tensor}'; the file holds one",
        "zh": "{path}：GGUF 元数据键 '{key}' 的值为 {value}，不应有张量 '{tensor}'，但文件中有",
    },
    "gguf_key_tensor": {
        "en": "{path}: GGUF metadata key '{key}' is {value}, but tensor '{tensor}' has {actual}",
        "zh": "{path}：GGUF 元数据键 '{key}' 的值为 {value}，但张量 '{tensor}' 的实际情况为 {actual}",
    },
    "hub_missing": {
        "en": "'{name}' is not in the catalog; reading it from the Hugging Face Hub needs the hub extra: "
              "pip install 'vramscope[hub]'",
        "zh": "'{name}' 不在内置目录中；从 Hugging Face Hub 读取需要安装 hub 扩展：pip install 'vramscope[hub]'",
    },
    "hub_offline": {
        "en": "'{name}': the Hugging Face Hub cannot be reached ({detail}); use a catalog name, a local "
              "config.json/.safetensors/.gguf, or --params",
        "zh": "'{name}'：无法连接 Hugging Face Hub（{detail}）；请使用目录中的模型名、本地 config.json/.safetensors/.gguf，或 --params",
    },
    "hub_gated": {
        "en": "'{name}': the Hub refused access (gated or private repo); accept its licence on the Hub and set "
              "HF_TOKEN, or pass a local config.json",
        "zh": "'{name}'：Hub 拒绝访问（受限或私有仓库）；请在 Hub 上接受许可并设置 HF_TOKEN，或传入本地 config.json",
    },
    "hub_not_found": {
        "en": "'{name}': no such model on the Hugging Face Hub",
        "zh": "'{name}'：Hugging Face Hub 上没有这个模型",
    },
    "unknown_gpu": {
        "en": "{field}: '{name}' is not a known GPU; did you mean: {suggestions}? (or give a size such as 24GB)",
        "zh": "{field}：未知的 GPU '{name}'；您是否想找：{suggestions}？（也可以直接给出容量，例如 24GB）",
    },
    "gpu_auto_unavailable": {
        "en": "--gpu auto: no NVIDIA GPU could be detected ({detail}); name a GPU (e.g. --gpu rtx-4090) or a size (--gpu 24GB)",
        "zh": "--gpu auto：未检测到 NVIDIA GPU（{detail}）；请指定 GPU（例如 --gpu rtx-4090）或容量（--gpu 24GB）",
    },
    # ---- option checks (issue #11: hostile input) ----
    "bad_bool": {
        "en": "{field}: '{value}' is not yes or no; use true/false, yes/no, on/off or 1/0",
        "zh": "{field}：'{value}' 不是是/否值；请使用 true/false、yes/no、on/off 或 1/0",
    },
    "bad_type": {
        "en": "{field}: '{value}' ({kind}) is not allowed; give {expected}",
        "zh": "{field}：不允许 '{value}'（{kind}）；请给出{expected}",
    },
    "size_too_small": {
        "en": "{field}: '{value}' is {bytes} bytes, too small for a GPU (at least {minimum}); use e.g. 24GB or 80GiB",
        "zh": "{field}：'{value}' 只有 {bytes} 字节，不可能是 GPU 显存（至少 {minimum}）；请使用 24GB 或 80GiB 这样的容量",
    },
    "unknown_option": {
        "en": "unknown option '{name}'; did you mean '{suggestion}'?",
        "zh": "未知选项 '{name}'；您是否想用 '{suggestion}'？",
    },
    "unknown_option_nosuggest": {
        "en": "unknown option '{name}'; the options are listed in help({function})",
        "zh": "未知选项 '{name}'；可用选项见 help({function})",
    },
    "shape_needs_params": {
        "en": "{field} is a shape override for --params; it cannot change MODEL '{model}' (drop {field}, or give "
              "--params instead of MODEL)",
        "zh": "{field} 是 --params 的形状参数，不能修改模型 '{model}'（请去掉 {field}，或用 --params 代替模型名）",
    },
    "empty_list": {
        "en": "{field}: the list is empty; give comma-separated module names such as {example}",
        "zh": "{field}：列表为空；请给出以逗号分隔的模块名，例如 {example}",
    },
    "lora_targets_unknown": {
        "en": "{field}: {names} matches no linear layer of {model} that LoRA adapts; its layers: {available} "
              "(or all-linear)",
        "zh": "{field}：{names} 不对应 {model} 中任何可加 LoRA 的线性层；可用的层：{available}（或 all-linear）",
    },
    "train_modules_unknown": {
        "en": "{field}: {names} matches no module of {model}; its modules: {available}",
        "zh": "{field}：{names} 不对应 {model} 中的任何模块；可用的模块：{available}",
    },
    "seq_beyond_positions": {
        "en": "{field}: {seq} tokens is more than {model} can take: it has {n} learned position embeddings, a hard "
              "limit; use {field} {n} or less",
        "zh": "{field}：{seq} 个 token 超出 {model} 的能力：它只有 {n} 个学习得到的位置嵌入（硬性上限）；请使用 {field} {n} 或更小",
    },
    "impossible_result": {
        "en": "the input produced an impossible result ({component} = {value}), so it is not shown; this is a bug: "
              "please report the command line",
        "zh": "该输入得出了不可能的结果（{component} = {value}），因此不予显示；这是程序缺陷，请报告所用命令行",
    },
    # ---- assumptions ----
    "a_nominal_shape": {
        "en": "shape is nominal ({layers} layers, hidden {hidden}, {heads} heads, {attn}, head_dim {head_dim}): KV cache "
              "and activations are rough",
        "zh": "模型形状为推定值（{layers} 层，hidden {hidden}，{heads} 个注意力头，{attn}，head_dim {head_dim}）：KV 缓存和"
              "激活值仅为粗略估计",
    },
    "attn_mha": {"en": "MHA", "zh": "MHA"},
    "attn_mqa": {"en": "MQA (1 KV head)", "zh": "MQA（1 个 KV 头）"},
    "attn_gqa": {"en": "GQA with {kv} KV heads", "zh": "GQA，{kv} 个 KV 头"},
    "a_seed_label": {
        "en": "rule of thumb (DataLearner 2023): no KV cache, runtime overhead or phases; use {o_analytic} for real numbers",
        "zh": "经验法则（DataLearner 2023）：不含 KV 缓存、运行时开销和阶段；准确数字请用 {o_analytic}",
    },
    "a_seed_rule": {
        "en": "seed rules: inference = P × bytes/param; training = (P + B·A + P + 2P) × 4 bytes",
        "zh": "经验规则：推理 = P × 每参数字节数；训练 = (P + B·A + P + 2P) × 4 字节",
    },
    "a_seed_inference": {
        "en": "inference weights at {bytes} bytes per parameter ({dtype})",
        "zh": "推理权重按每参数 {bytes} 字节计算（{dtype}）",
    },
    "a_seed_inference_quant": {
        "en": "inference weights at {bytes} bytes per parameter ({quant} quantization)",
        "zh": "推理权重按每参数 {bytes} 字节计算（{quant} 量化）",
    },
    "a_seed_activations": {
        "en": "A = {a} activation floats per sample at seq {seq} (layers × s × h × (17 + 2.5·heads·s/h), from Korthikanti et al. 2022)",
        "zh": "A = 每个样本 {a} 个激活浮点数（seq {seq}；层数 × s × h × (17 + 2.5·heads·s/h)，源自 Korthikanti 等 2022）",
    },
    "a_seed_training": {
        "en": "fp32 weights for all parameters; gradients and two Adam states for {trainable} trainable parameters",
        "zh": "全部参数按 fp32 权重计；{trainable} 个可训练参数计梯度和两份 Adam 状态",
    },
    "a_weights_files": {
        "en": "weights: exact bytes from the checkpoint's headers ({format})",
        "zh": "权重：按权重文件头计算的精确字节数（{format}）",
    },
    "a_weights_dtype_given": {
        "en": "weights: {dtype}, as {o_dtype} asks",
        "zh": "权重：按 {o_dtype} 的要求为 {dtype}",
    },
    "a_weights_dtype_config": {
        "en": "weights: {dtype}, the checkpoint's own dtype (config.json torch_dtype {given})",
        "zh": "权重：{dtype}，即检查点自身的精度（config.json 的 torch_dtype 为 {given}）",
    },
    "a_weights_dtype_default": {
        "en": "weights: {dtype} (the model names no dtype; {o_dtype} sets one)",
        "zh": "权重：{dtype}（模型未指明精度；可用 {o_dtype} 指定）",
    },
    "a_weights_checkpoint": {
        "en": "weights: the checkpoint's own storage, {format} (config.json quantization_config: {method}); the output head, MoE routers and {skipped} module pattern(s) it keeps stay in the compute dtype ({o_dtype} or {o_quant} overrides)",
        "zh": "权重：按检查点自身的存储格式 {format} 计算（config.json 的 quantization_config：{method}）；输出头、MoE 路由器及其保留的 {skipped} 个模块模式保持计算精度（{o_dtype} 或 {o_quant} 可覆盖）",
    },
    "a_weights_modelopt_mixed": {
        "en": "weights: NVIDIA ModelOpt MIXED_PRECISION, each linear in the algorithm its quantized_layers entry names ({layers} entries: {algos}), as vLLM 0.33.0's ModelOptMixedPrecisionConfig loads it (modelopt.py); a linear the mapping does not name (attention it leaves out, small projections, the vision tower) stays in the compute dtype, a named lm_head is quantized; W4A16_NVFP4 is NVFP4's packing without the activation input_scale. the MoE routers and the {skipped} excluded module pattern(s) stay in the compute dtype ({o_dtype} or {o_quant} overrides). transformers 5.24 has no ModelOpt quantizer, so only vLLM-style engines load it in this form",
        "zh": "权重：NVIDIA ModelOpt MIXED_PRECISION，每个线性层按其 quantized_layers 条目指定的算法存储（{layers} 个条目：{algos}），与 vLLM 0.33.0 的 ModelOptMixedPrecisionConfig 加载方式一致（modelopt.py）；映射未列出的线性层（未列出的注意力层、小投影、视觉塔）保持计算精度，列出的 lm_head 会被量化；W4A16_NVFP4 与 NVFP4 打包相同，但没有激活的 input_scale；MoE 路由器与排除的 {skipped} 个模块模式保持计算精度（{o_dtype} 或 {o_quant} 可覆盖）。transformers 5.24 没有 ModelOpt 量化器，只有 vLLM 类引擎按此格式加载",
    },
    "a_weights_modelopt": {
        "en": "weights: NVIDIA ModelOpt {format} as vLLM creates its tensors (vllm-project/vllm c9a59901113c modelopt.py: NVFP4 packs two 4-bit values per byte with one fp8 scale per 16 values and two fp32 scalars per linear; FP8 is one byte per value and two fp32 scalars); the checkpoint's exclude patterns and vision towers stay in the compute dtype. transformers 5.24 has no ModelOpt quantizer (it skips this quantization_config), so only vLLM-style engines load it in this form",
        "zh": "权重：NVIDIA ModelOpt {format}，按 vLLM 创建张量的方式计算（vllm-project/vllm c9a59901113c 的 modelopt.py：NVFP4 每字节存两个 4 位值，每 16 个值一个 fp8 缩放，每个线性层两个 fp32 标量；FP8 每值一字节加两个 fp32 标量）；检查点排除的模块与视觉塔保持计算精度。transformers 5.24 没有 ModelOpt 量化器（会跳过该 quantization_config），只有 vLLM 类引擎按此格式加载",
    },
    "a_weights_checkpoint_training": {
        "en": "weights: the checkpoint's own storage ({format}, {method}) is counted in the training dtype (quantized weights do not train)",
        "zh": "权重：检查点自身的存储格式（{format}，{method}）按训练精度计算（量化权重不参与训练）",
    },
    "a_weights_checkpoint_unread": {
        "en": "weights: the checkpoint is quantized ({method}), a method vramscope does not model; counted in the compute dtype",
        "zh": "权重：该检查点已量化（{method}），vramscope 尚未建模此方法；按计算精度计算",
    },
    "a_weights_override": {
        "en": "weights: as {o_dtype} / {o_quant} ask, not the checkpoint's own storage ({format}, {method})",
        "zh": "权重：按 {o_dtype} / {o_quant} 的要求计算，而非检查点自身的存储格式（{format}，{method}）",
    },
    "a_weights_quant": {
        "en": "weights: linear layers in {quant}; embeddings, norms, biases and the output head stay 16-bit",
        "zh": "权重：线性层为 {quant}；嵌入层、归一化层、偏置和输出头保持 16 位",
    },
    "a_inference_context": {
        "en": "transformers generate(): {batch:~sequence~sequences} of {seq} tokens prefilled at once, KV cache in {kv_dtype}, {attn} attention, logits for the last token only",
        "zh": "transformers generate()：{batch} 条序列，每条 {seq} 个 token 一次性预填充，KV 缓存为 {kv_dtype}，{attn} 注意力，只计算最后一个 token 的 logits",
    },
    "a_kv_transformers": {
        "en": "KV cache as transformers {version} stores it ({cache} cache)",
        "zh": "KV 缓存按 transformers {version} 的存储方式计算（{cache} 缓存）",
    },
    "a_sliding": {
        "en": "sliding-window layers ({window} tokens): the prefill keeps the whole prompt; while decoding each sliding layer holds {window} tokens (its tensor shows the last {shown}, a view of that storage)",
        "zh": "滑动窗口层（{window} 个 token）：预填充时保留整个提示；解码时每个滑动层占用 {window} 个 token 的存储（张量只显示最后 {shown} 个，是该存储的视图）",
    },
    "a_sliding_old": {
        "en": "sliding-window layers ({window} tokens): this transformers keeps every token in them too (DynamicSlidingWindowLayer came in {since})",
        "zh": "滑动窗口层（{window} 个 token）：此版本 transformers 在这些层也保留全部 token（DynamicSlidingWindowLayer 自 {since} 起才有）",
    },
    "a_kv_static_compressed": {
        "en": "static cache: transformers {version} builds none for this model (its compressors' state lives on its own "
              "dynamic cache layers), so the dynamic cache it runs with is counted",
        "zh": "静态缓存：transformers {version} 不为该模型构建静态缓存（其压缩器状态保存在它自己的动态缓存层中），因此按其实际使用的"
              "动态缓存计算",
    },
    "a_sliding_static": {
        "en": "static cache: sliding-window layers preallocate min(context, {window}) tokens, the others the whole context",
        "zh": "静态缓存：滑动窗口层预分配 min(上下文, {window}) 个 token，其他层预分配整个上下文",
    },
    "a_kv_fp8_cache": {
        "en": "fp8 KV cache: QuantizedCache(backend=\"fp8\") (transformers {since} and later) keeps every token in every layer (no sliding window), plus two fp32 scales per layer",
        "zh": "fp8 KV 缓存：QuantizedCache(backend=\"fp8\")（transformers {since} 及以后）在每一层保留全部 token（不按滑动窗口裁剪），每层另有两个 fp32 缩放因子",
    },
    "a_kv_dtype_foreign": {
        "en": "{kv_dtype} KV cache: not a cache transformers builds (its quantized caches are fp8, and quanto / HQQ integers with a full-precision residual); counted as {bytes} B per value in the dynamic cache's layout",
        "zh": "{kv_dtype} KV 缓存：transformers 不会构建这种缓存（其量化缓存为 fp8，以及带全精度残差的 quanto / HQQ 整数缓存）；此处按动态缓存的布局、每个值 {bytes} 字节计算",
    },
    "a_kv_fp8_sliding": {
        "en": "fp8 KV cache: transformers {version}'s QuantizedCache refuses models with sliding-window layers; counted as one byte per value in the dynamic cache's layout, which transformers itself does not build",
        "zh": "fp8 KV 缓存：transformers {version} 的 QuantizedCache 不支持含滑动窗口层的模型；此处按动态缓存的布局、每个值一字节计算，transformers 本身并不会构建这样的缓存",
    },
    "a_kv_fp8_none": {
        "en": "fp8 KV cache: transformers {version} has no fp8 cache (QuantizedCache's fp8 backend came in {since}); counted as one byte per value in the dynamic cache's layout",
        "zh": "fp8 KV 缓存：transformers {version} 没有 fp8 缓存（QuantizedCache 的 fp8 后端自 {since} 起才有）；此处按动态缓存的布局、每个值一字节计算",
    },
    "a_mla_transformers": {
        "en": "MLA: this transformers caches decompressed per-head keys and values (the compressed latent only from {since} on; vLLM, and llama.cpp with a GGUF that has the *_mla keys, cache the latent)",
        "zh": "MLA：此版本 transformers 缓存解压后的逐头 K/V（{since} 起才缓存压缩潜向量；vLLM，以及带 *_mla 键的 GGUF 下的 llama.cpp，缓存潜向量）",
    },
    "a_mla_transformers_latent": {
        "en": "MLA: transformers caches the compressed latent (kv_lora_rank + qk_rope_head_dim per token and layer, since {since}) and expands it to per-head keys and values at every step",
        "zh": "MLA：transformers 缓存压缩潜向量（每个 token 每层 kv_lora_rank + qk_rope_head_dim 个值，自 {since} 起），每步再展开为逐头 K/V",
    },
    "a_kv_legacy_tuples": {
        "en": "transformers {version} passes the cache between decode steps as tuples: each step holds the previous step's cache beside the new one (a DynamicCache is the default from 4.42.0 on)",
        "zh": "transformers {version} 在解码步之间以元组传递缓存：每一步在新缓存之外还保留上一步的缓存（自 4.42.0 起默认使用 DynamicCache）",
    },
    "a_kv_broadcast": {
        "en": "Falcon: transformers broadcasts the {kv} KV heads to all {heads} query heads before caching them (vLLM and llama.cpp cache {kv})",
        "zh": "Falcon：transformers 在缓存前把 {kv} 个 KV 头广播到全部 {heads} 个查询头（vLLM 和 llama.cpp 只缓存 {kv} 个）",
    },
    "a_recipe_pure": {
        "en": "precision: pure {dtype} (parameters, gradients and optimizer states all {dtype}, as torch AdamW keeps them)",
        "zh": "精度：纯 {dtype}（参数、梯度和优化器状态都为 {dtype}，与 torch AdamW 的行为一致）",
    },
    "a_recipe_mixed": {
        "en": "precision: mixed (fp32 parameters, gradients and states; autocast computes in 16-bit and caches 16-bit weight copies)",
        "zh": "精度：混合精度（fp32 参数、梯度和状态；autocast 以 16 位计算并缓存 16 位权重副本）",
    },
    "a_recipe_fsdp_mixed": {
        "en": "precision: FSDP mixed precision (fp32 sharded parameters are the optimizer's masters, with fp32 sharded gradients and states; each unit gathered and computed in {dtype}; no autocast weight cache)",
        "zh": "精度：FSDP 混合精度（fp32 分片参数即优化器的主权重，梯度分片与优化器状态为 fp32；每个单元以 {dtype} 聚合并计算；没有 autocast 权重缓存）",
    },
    "a_recipe_megatron": {
        "en": "precision: Megatron-LM --bf16 ({dtype} parameters, fp32 main gradients, fp32 main parameters and Adam states in the optimizer: 2 + 4 + 12 bytes per parameter)",
        "zh": "精度：Megatron-LM --bf16（{dtype} 参数、fp32 主梯度，优化器中的 fp32 主参数与 Adam 状态：每参数 2 + 4 + 12 字节）",
    },
    "a_fsdp_policy": {
        "en": "{framework}'s FSDP MixedPrecisionPolicy: param_dtype {param}, reduce_dtype {reduce} (unsharded parameters and their gradients in {param}, reduce-scatter inputs in {reduce})",
        "zh": "{framework} 的 FSDP MixedPrecisionPolicy：param_dtype {param}，reduce_dtype {reduce}（未分片参数及其梯度为 {param}，reduce-scatter 输入为 {reduce}）",
    },
    "a_fsdp_autocast": {
        "en": "fp32 FSDP parameters under torch.autocast (no MixedPrecisionPolicy): autocast caches the bf16 cast of every gathered linear weight until forward ends, {cache} per GPU — a whole 16-bit copy of the model that resharding does not free; the linears save those casts for backward, so without checkpointing they stay until each layer's backward; a framework with an FSDP policy ({o_framework} torchtitan, accelerate, hf) avoids it",
        "zh": "torch.autocast 下的 fp32 FSDP 参数（没有 MixedPrecisionPolicy）：autocast 会缓存每个聚合后线性层权重的 bf16 副本直到前向结束，每卡 {cache}——整个模型的 16 位副本，重新分片也不会释放；线性层为反向保存这些副本，因此不做检查点时它们一直留到各层的反向；使用带 FSDP 策略的框架（{o_framework} torchtitan、accelerate、hf）可避免",
    },
    "a_megatron_dist_opt": {
        "en": "Megatron-LM distributed optimizer over {n} ranks: fp32 main parameters and Adam states sharded; the fp32 main-gradient buffer whole on every rank (its reduce buckets are views of it)",
        "zh": "{n} 个进程上的 Megatron-LM 分布式优化器：fp32 主参数与 Adam 状态分片；fp32 主梯度缓冲区每卡完整保存（其归约桶是它的视图）",
    },
    "a_recipe_fp32": {
        "en": "precision: fp32 throughout",
        "zh": "精度：全程 fp32",
    },
    "a_recipe_lora_torchtune": {
        "en": "frozen base in {dtype}; adapters, their gradients and optimizer states in {dtype} too (torchtune builds the model, adapters included, in the training dtype)",
        "zh": "冻结的基座为 {dtype}；适配器及其梯度和优化器状态也为 {dtype}（torchtune 以训练精度构建整个模型，包括适配器）",
    },
    "a_recipe_lora": {
        "en": "frozen base in {dtype}; adapters, their gradients and optimizer states in fp32 (peft default)",
        "zh": "冻结的基座为 {dtype}；适配器及其梯度和优化器状态为 fp32（peft 默认）",
    },
    "a_training_shape": {
        "en": "micro-batch {batch} × {seq} tokens, {attn} attention, {optimizer}, gradient accumulation {accum}; steady-state step (optimizer states exist)",
        "zh": "微批次 {batch} × {seq} 个 token，{attn} 注意力，{optimizer}，梯度累积 {accum}；稳定状态的一步（优化器状态已存在）",
    },
    "a_activations_korthikanti": {
        "en": "activations for this layout use Korthikanti et al. 2022 (coarser than the Llama-layout model)",
        "zh": "该结构的激活值使用 Korthikanti 等 2022 的公式（比 Llama 结构的模型粗略）",
    },
    "a_lora": {
        "en": "LoRA rank {rank} on {targets}: {trainable} trainable parameters",
        "zh": "LoRA 秩 {rank}，目标模块 {targets}：{trainable} 个可训练参数",
    },
    "a_overhead": {
        "en": "runtime overhead: CUDA context ~512 MiB (0.3–1.4 GiB) + torch's cuBLAS workspace for the GPU generation (8 MiB; 32 MiB on Hopper/Blackwell); range adds up to 15% allocator fragmentation of transients",
        "zh": "运行时开销：CUDA 上下文约 512 MiB（0.3–1.4 GiB）+ 按 GPU 架构的 torch cuBLAS 工作区（8 MiB；Hopper/Blackwell 为 32 MiB）；范围上限另加临时张量 15% 的分配器碎片",
    },
    "a_overhead_llamacpp": {
        "en": "runtime overhead: CUDA context ~512 MiB (0.3–1.4 GiB), ggml-cuda's cuBLAS handle included (llama.cpp runs "
              "no torch, so no torch cuBLAS workspace); range adds up to 15% fragmentation of transients",
        "zh": "运行时开销：CUDA 上下文约 512 MiB（0.3–1.4 GiB），已含 ggml-cuda 的 cuBLAS 句柄（llama.cpp 不运行 torch，"
              "因此没有 torch 的 cuBLAS 工作区）；范围上限另加临时张量 15% 的碎片",
    },
    "a_beyond_context": {
        "en": "{seq} tokens is beyond {model}'s trained context of {n} (max_position_embeddings): the model needs RoPE "
              "scaling to read that far (rope_scaling linear, dynamic or YaRN, factor {factor} or more) or a "
              "long-context variant; scaling changes positions, not memory, so this estimate holds either way",
        "zh": "{seq} 个 token 超出 {model} 训练时的上下文长度 {n}（max_position_embeddings）：模型需要 RoPE 缩放才能读这么长"
              "（rope_scaling 的 linear、dynamic 或 YaRN，factor 不小于 {factor}）或改用长上下文版本；缩放改变的是位置编码而不是"
              "显存，因此本估算照样成立",
    },
    "a_seq_default_capped": {
        "en": "{o_seq} not given: {seq} tokens, {model}'s context length (shorter than the default {default})",
        "zh": "未给出 {o_seq}：使用 {model} 的上下文长度 {seq} 个 token（短于默认值 {default}）",
    },
    "a_overhead_ollama": {
        "en": "Ollama's estimate is its own: the CUDA context and the like are its 457 MiB MinimumMemory per GPU; what the runner then allocates can differ",
        "zh": "这是 Ollama 自己的估算：CUDA 上下文等即每张 GPU 457 MiB 的 MinimumMemory；runner 实际分配的可能不同",
    },
    "a_overhead_sglang": {
        "en": "SGLang's fractions are of the memory free after the CUDA context (~0.5 GiB nominal, 0.3–1.4 GiB); the rest (1 − mem_fraction_static) is its reserve for activations and CUDA graphs",
        "zh": "SGLang 的比例是 CUDA 上下文（标称约 0.5 GiB，0.3–1.4 GiB）之后的空闲显存的比例；其余 (1 − mem_fraction_static) 预留给激活值和 CUDA Graph",
    },
    "a_overhead_vllm": {
        "en": "vLLM's non-torch memory (CUDA context, cuBLAS, NCCL) 0.3 GiB nominal, 0.16–1.8 GiB in vLLM's own logs; CUDA graphs 0.3 GiB nominal",
        "zh": "vLLM 的非 PyTorch 显存（CUDA 上下文、cuBLAS、NCCL）标称 0.3 GiB，vLLM 日志中为 0.16–1.8 GiB；CUDA Graph 标称 0.3 GiB",
    },
    "a_ckpt_no_gain": {
        "en": "gradient checkpointing does not lower this peak: the optimizer step peaks, not the backward pass",
        "zh": "梯度检查点不会降低此峰值：峰值出现在优化器更新步骤，而不是反向传播",
    },
    "a_note": {"en": "{text}", "zh": "{text}"},
    "a_meta_built": {
        "en": "not built in: tensors as transformers {version} builds {cls} on the meta device (exact names, "
              "shapes and ties); KV cache and activations from its config's shape with the generic rules",
        "zh": "非内置架构：张量取自 transformers {version} 在 meta 设备上构建的 {cls}（名称、形状与共享权重均精确）；"
              "KV 缓存与激活按其配置的形状用通用规则估计",
    },
    "a_meta_kv_widths": {
        "en": "the layers cache different widths (values per token: {values}): read from transformers {version}'s "
              "k_proj / v_proj and checked against its real cache objects. vLLM 0.33.0: the same widths (mimo_v2.py's "
              "key and value head sizes and kv heads per layer), its pages of different sizes made one as its KV "
              "cache planner does, checked against that planner run on CPU; vLLM before 0.22: its layout of this "
              "model is not read, so its figures assume the standard layout and are not exact; llama.cpp: read at "
              "82bb48500 (its own note)",
        "zh": "各层缓存宽度不同（每词元数值：{values}）：从 transformers {version} 的 k_proj / v_proj 读取，并与其真实"
              "缓存对象核对。vLLM 0.33.0：宽度相同（mimo_v2.py 每层的键、值头维度与 KV 头数），不同大小的页按其 KV 缓存"
              "规划器的方式统一，并与在 CPU 上运行的该规划器核对；0.22 之前的 vLLM：未读取其对该模型的布局，其数字按标准布局"
              "计算，并不精确；llama.cpp：按 82bb48500 阅读（见其自身的说明）",
    },
    "a_meta_kv_compressed": {
        "en": "compressed attention layers ({layers}): the sliding window, the compressors' pending tokens, their "
              "compressed entries and overlap state as transformers {version} keeps them, checked against its real "
              "cache objects. vLLM 0.33.0 runs this model with caches of its own (compressed latent pages, "
              "compressor state and indexer caches, a sliding-window cache allocated apart), modelled as its "
              "planner packs them and checked against that planner run on CPU; vLLM before 0.33: its layout of this "
              "model is not read, so its figures assume the standard layout and are not exact; llama.cpp's caches "
              "of this model are read at 82bb48500 (its own note)",
        "zh": "压缩注意力层（{layers} 层）：滑动窗口、压缩器待压缩的词元、压缩条目与重叠状态按 transformers {version} 的"
              "保存方式建模，并与其真实缓存对象核对。vLLM 0.33.0 以其自有的缓存运行该模型（压缩潜变量页、压缩器状态与索引器"
              "缓存、单独分配的滑动窗口缓存），按其规划器的打包方式建模，并与在 CPU 上运行的该规划器核对；0.33 之前的 vLLM："
              "未读取其对该模型的布局，其数字按标准布局计算，并不精确；llama.cpp 对该模型的缓存按 82bb48500 阅读（见其自身的说明）",
    },
    "a_meta_recurrent": {
        "en": "this model mixes tokens with recurrent / state-space layers ({mixers}) whose caches are not read "
              "here: their conv and state caches are not modelled, and the KV cache is counted as attention on every "
              "layer (an overestimate for those layers)",
        "zh": "该模型用循环/状态空间层混合词元（{mixers}），此处未读取其缓存：其卷积与状态缓存未建模，KV 缓存按每层都是注意力计算"
              "（对这些层偏高）",
    },
    "a_state_cache": {
        "en": "recurrent / state-space layers ({mixer}): {layers} of {n} layers keep a conv state ({conv}) and a "
              "recurrent state ({rec}) of fixed size, {mib} MiB per sequence ({total_mib} MiB for {batch}) "
              "whatever the length, as transformers {version} stores them; keys and values only in the {kv_layers} "
              "attention layers",
        "zh": "循环/状态空间层（{mixer}）：{n} 层中有 {layers} 层保存固定大小的卷积状态（{conv}）和循环状态（{rec}），"
              "每条序列 {mib} MiB（{batch} 条共 {total_mib} MiB），与长度无关，按 transformers {version} 的存储方式；"
              "K/V 只在 {kv_layers} 个注意力层中",
    },
    "a_state_cache_noconv": {
        "en": "recurrent layers ({mixer}): {layers} of {n} layers keep a recurrent state ({rec}) of fixed size and no "
              "conv state, {mib} MiB per sequence ({total_mib} MiB for {batch}) whatever the length, as "
              "transformers {version} stores them; keys and values only in the {kv_layers} attention layers",
        "zh": "循环层（{mixer}）：{n} 层中有 {layers} 层保存固定大小的循环状态（{rec}），没有卷积状态，"
              "每条序列 {mib} MiB（{batch} 条共 {total_mib} MiB），与长度无关，按 transformers {version} 的存储方式；"
              "K/V 只在 {kv_layers} 个注意力层中",
    },
    "a_state_engines": {
        "en": "recurrent / state-space layers ({mixer}, {layers} layers): their conv and recurrent states are "
              "modelled as each engine stores them (transformers, vLLM, llama.cpp, Ollama's estimate, SGLang's mamba "
              "pool for the architectures it has one for)",
        "zh": "循环/状态空间层（{mixer}，{layers} 层）：其卷积与循环状态按各引擎的存储方式建模（transformers、vLLM、"
              "llama.cpp、Ollama 的估算，以及 SGLang 为其支持的架构提供的 mamba 池）",
    },
    "a_state_cache_old": {
        "en": "transformers {version} keeps these states in the model's own cache classes (MambaCache, Mamba2Cache, "
              "HybridMambaAttentionDynamicCache; read at 5.0.0), preallocated in the model's dtype (Qwen3-Next's "
              "kept the float32 state of its scan); from {since} on every recurrent state is float32",
        "zh": "transformers {version} 用模型自带的缓存类（MambaCache、Mamba2Cache、HybridMambaAttentionDynamicCache；"
              "按 5.0.0 阅读）保存这些状态，按模型的数据类型预分配（Qwen3-Next 保留其扫描得到的 float32 状态）；"
              "自 {since} 起所有循环状态均为 float32",
    },
    "a_kv_fp8_state": {
        "en": "fp8 KV cache: transformers {version}'s QuantizedCache refuses models with recurrent layers (only "
              "full_attention layers); counted as one byte per key/value in the dynamic cache's layout, the states "
              "unquantized, which transformers itself does not build",
        "zh": "fp8 KV 缓存：transformers {version} 的 QuantizedCache 不支持含循环层的模型（只接受 full_attention 层）；"
              "此处按动态缓存布局、每个 K/V 值一字节计算，状态不量化，transformers 本身并不会构建这样的缓存",
    },
    "a_layer_kv": {
        "en": "KV cache per layer as the config gives each layer (per_layer_config, kv_sharing_modes): key/value "
              "heads × head size {shapes}; a layer shown as — reads another layer's keys and values and stores "
              "none; a layer whose keys are its values still stores both. vLLM 0.33.0: the same shapes as its "
              "gemma4.py builds them, the shared layers without a cache of their own, its pages of different sizes "
              "made one as its KV cache planner does (checked against that planner run on CPU, with 16-token kernel "
              "blocks; the 64-token and FA4 head-256 pages some GPUs use, and vLLM before 0.22, not modelled); llama.cpp 82bb48500: the same shapes (gemma4.cpp, llama-kv-cache.cpp; its own note)",
        "zh": "KV 缓存按配置给出的每层形状计算（per_layer_config、kv_sharing_modes）：K/V 头数 × 头维度 {shapes}；"
              "标为 — 的层读取其他层的键值，自身不存储；键即值的层仍存两份张量。vLLM 0.33.0：形状同其 gemma4.py 的构建，"
              "共享层没有自己的缓存，不同大小的页按其 KV 缓存规划器的方式统一（与在 CPU 上运行的该规划器核对，内核块为 16 词元；部分 GPU 使用的 64 词元页与 FA4 头维 256 页，以及 0.22 之前的 "
              "vLLM，均未建模）；llama.cpp 82bb48500：形状相同（gemma4.cpp、llama-kv-cache.cpp；见其自身的说明）",
    },
    "a_meta_tied": {
        "en": "tied weights, counted once: {ties}",
        "zh": "共享权重只计一次：{ties}",
    },
    "n_variant": {"en": "{name}: a fine-tuned variant of {base}; same architecture, so its config is used", "zh": "{name}：{base} 的微调版本；架构相同，因此使用其配置"},
    "n_mtp": {"en": "checkpoint also holds multi-token-prediction layers that transformers does not load", "zh": "检查点还包含 transformers 不会加载的多 token 预测（MTP）层"},
    "n_remote_llama": {"en": "remote-code family: read as the Llama layout it is equivalent to ({packed} = q,k,v)", "zh": "远程代码模型家族：按与之等价的 Llama 结构读取（{packed} = q,k,v）"},
    "n_remote_glm": {"en": "remote-code family: read as the GLM layout it is equivalent to", "zh": "远程代码模型家族：按与之等价的 GLM 结构读取"},
    "n_no_config": {"en": "no config.json beside the weights: shape inferred from tensor names, head_dim assumed 128", "zh": "权重旁没有 config.json：形状按张量名称推断，head_dim 假定为 128"},
    "n_processor_config": {"en": "image processor settings read from {files}: {settings} (the tokens an image becomes follow them; {o_mm} still overrides them)", "zh": "图像处理器设置读自 {files}：{settings}（每张图像占用的词元数按此计算；{o_mm} 仍可覆盖）"},
    "n_tied_head": {"en": "{name} is stored although config.json ties it to the embeddings; counted once, as loaded", "zh": "虽然 config.json 把 {name} 与词嵌入绑定，检查点仍单独存储了它；按加载方式只计一次"},
    "n_stored_mismatch": {"en": "warning: the weight files hold {stored} parameters but config.json describes {expected} ({pct}){why}; the estimate uses the stored tensors", "zh": "警告：权重文件含 {stored} 个参数，而 config.json 描述的是 {expected} 个（{pct}）{why}；估算使用实际存储的张量"},
    "n_shape_partly": {"en": "shape partly given by options, the rest nominal", "zh": "形状部分由选项给出，其余为推定值"},
    "n_shape_nominal": {"en": "shape nominal (from {o_params} only)", "zh": "形状为推定值（仅来自 {o_params}）"},
    "a_trace": {
        "en": "traced: the real transformers/peft code run on fake tensors in {dtype} ({seconds} s), allocations rounded to 512 B as the CUDA caching allocator does; steady-state training step (step 2)",
        "zh": "追踪：在假张量上运行真实的 transformers/peft 代码（{dtype}，{seconds} 秒），每次分配按 CUDA 缓存分配器的规则向上取整到 512 字节；训练取稳定状态的第 2 步",
    },
    "a_offload": {
        "en": "CPU offload ({what}): optimizer step, fp32 master weights, Adam states and gradients in host memory ({host} of CPU RAM, pinned); the GPU keeps gradient buckets",
        "zh": "CPU 卸载（{what}）：优化器更新、fp32 主权重、Adam 状态和梯度放在主机内存（占用 {host} 的锁页 CPU 内存）；GPU 只保留梯度桶",
    },
    "a_attn_eager": {
        "en": "{model_type}: transformers refuses SDPA for this family (soft-capping), so attention runs eager",
        "zh": "{model_type}：transformers 不支持该系列使用 SDPA（soft-capping），注意力按 eager 计算",
    },
    "a_vllm": {
        "en": "vLLM: preallocates {util} of GPU memory; max_model_len {max_len}, max_num_seqs {seqs}, profile run of {tokens} tokens, tensor parallel {tp}; the KV cache takes what is left",
        "zh": "vLLM：预分配 {util} 的显存；max_model_len {max_len}，max_num_seqs {seqs}，预分析运行 {tokens} 个 token，张量并行 {tp}；剩余显存全部用作 KV 缓存",
    },
    "a_vllm_too_long": {
        "en": "vLLM will refuse to start: max_model_len {max_len} is longer than the {tokens} tokens the KV cache can hold; lower {o_max_len} or raise {o_util}",
        "zh": "vLLM 将无法启动：max_model_len {max_len} 超过 KV 缓存可容纳的 {tokens} 个 token；请降低 {o_max_len} 或提高 {o_util}",
    },
    "a_llamacpp": {
        "en": "llama.cpp: {ngl}/{n_layer} layers on the GPU (token embedding in host memory), n_ctx {ctx}, cache {ctk}/{ctv}, n_ubatch {ub}, flash attention {fa}",
        "zh": "llama.cpp：{ngl}/{n_layer} 层在 GPU 上（词嵌入在主机内存），n_ctx {ctx}，缓存 {ctk}/{ctv}，n_ubatch {ub}，flash attention {fa}",
    },
    "a_llamacpp_output": {
        "en": "llama.cpp {ngl} offloads the output layer first, then the last {n:~layer~layers} (llama.cpp since December 2025, #18148)",
        "zh": "llama.cpp 的 {ngl} 先卸载输出层，再卸载最后 {n} 层（llama.cpp 自 2025 年 12 月起，#18148）",
    },
    "a_llamacpp_op_offload": {
        "en": "llama.cpp {ngl}: no layer on the GPU, yet with op offload on (its default) a prompt batch of {n} tokens or more still runs there, each host weight copied into a GPU compute buffer in turn with the batch's activations and each layer's K/V cache views (and the logits, where the output head gets {n} rows or more: llama-cli, not llama-server, which reserves one row per slot); vramscope does not size that buffer (counted as 0 here), so leave room for it",
        "zh": "llama.cpp {ngl}：没有层在 GPU 上，但算子卸载开启时（默认），{n} 个 token 及以上的提示批次仍在 GPU 上计算，主机内存中的权重逐个复制到 GPU 计算缓冲区，连同该批次的激活和各层的 K/V 缓存视图（输出层达到 {n} 行及以上时还有 logits：llama-cli 如此，llama-server 每个槽位只预留一行）；vramscope 未估算该缓冲区（此处计为 0），请为其留出余量",
    },
    "a_llamacpp_op_offload_partial": {
        "en": "llama.cpp {ngl}: {n:~layer stays~layers stay} in host memory, yet with op offload on (its default) their prompt batches of {m} tokens or more run on the GPU as well, each of their weights and their K/V cache views copied into the GPU compute buffer in turn; the compute buffer here is the GPU layers' graph only, without those copies (not sized; {o_off} keeps those ops on the CPU)",
        "zh": "llama.cpp {ngl}：有 {n} 层留在主机内存，但算子卸载开启时（默认），这些层 {m} 个 token 及以上的提示批次同样在 GPU 上计算，其权重和 K/V 缓存视图逐个复制到 GPU 计算缓冲区；此处的计算缓冲区只含 GPU 层的计算图，不含这些副本（未估算；{o_off} 让这些算子留在 CPU 上）",
    },
    "a_llamacpp_tied": {
        "en": "tied embeddings: llama.cpp loads the token embedding a second time as the output layer, {size} more on the GPU (the input copy stays in host memory)",
        "zh": "共享词嵌入：llama.cpp 把词嵌入再加载一份作为输出层，GPU 上多占 {size}（输入用的那份留在主机内存）",
    },
    "a_llamacpp_split": {
        "en": "llama.cpp {mode} over {n} device(s), tensor split {ts} (without {o_ts}: each device's free memory, equal GPUs assumed): repeating layers {layers}, the output layer on {out} (llama_model::load_tensors); the verdict is the fullest device's",
        "zh": "llama.cpp {mode}，共 {n} 个设备，张量切分 {ts}（未给 {o_ts} 时按各设备空闲显存，假定 GPU 相同）：重复层 {layers}，输出层在 {out}（llama_model::load_tensors）；判定按占用最多的设备",
    },
    "a_llamacpp_pipeline": {
        "en": "llama.cpp pipeline parallelism (every layer offloaded, {o_layer}, several devices): each device keeps {copies} copies of its graph inputs (KQ mask, incoming hidden state)",
        "zh": "llama.cpp 流水线并行（全部层卸载、{o_layer}、多个设备）：每个设备保留 {copies} 份计算图输入（KQ 掩码、传入的隐藏状态）",
    },
    "a_llamacpp_no_kv_offload": {
        "en": "{o_nkvo}: llama.cpp keeps the whole KV cache in host memory and runs attention there",
        "zh": "{o_nkvo}：llama.cpp 把整个 KV 缓存留在主机内存并在那里计算注意力",
    },
    "a_llamacpp_fit_unchanged": {
        "en": "llama.cpp's fit (common/fit.cpp) on {gpu} ({free} free each after the CUDA context): every device keeps at least {target} MiB free as given, no changes",
        "zh": "llama.cpp 的 fit（common/fit.cpp）在 {gpu} 上（扣除 CUDA 上下文后每张空闲 {free}）：按原参数每个设备都能保留至少 {target} MiB 空闲，不作改动",
    },
    "a_llamacpp_fit_fitted": {
        "en": "llama.cpp's fit (common/fit.cpp) on {gpu} ({free} free each after the CUDA context, {target} MiB kept free): {o_ngl} of {n}, tensor split {ts}, {part:~layer~layers} with FFN tensors in host memory, n_ctx {ctx}",
        "zh": "llama.cpp 的 fit（common/fit.cpp）在 {gpu} 上（扣除 CUDA 上下文后每张空闲 {free}，保留 {target} MiB）：{o_ngl}/{n}，张量切分 {ts}，{part} 层的 FFN 张量在主机内存，n_ctx {ctx}",
    },
    "a_llamacpp_fit_no_gpu": {
        "en": "llama.cpp's fit needs the free memory of a GPU: name one ({o_gpu}); shown are the parameters as given",
        "zh": "llama.cpp 的 fit 需要知道 GPU 的空闲显存：请指定一张（{o_gpu}）；此处显示的是原参数",
    },
    "a_llamacpp_fit_failed": {
        "en": "llama.cpp's fit (common/fit.cpp) on {gpu} could not fit ({reason}): the parameters stay as given",
        "zh": "llama.cpp 的 fit（common/fit.cpp）在 {gpu} 上无法适配（{reason}）：参数保持原样",
    },
    "fit_status_unchanged": {"en": "unchanged (fits as given)", "zh": "未改动（按原参数即可容纳）"},
    "fit_status_fitted": {"en": "fitted", "zh": "已适配"},
    "fit_status_failed": {"en": "gave up (parameters as given)", "zh": "放弃（参数保持原样）"},
    "llamacpp_fit_line": {
        "en": "--fit {status}: -ngl {ngl}, tensor split {ts}, {part} overflowing, n_ctx {ctx}",
        "zh": "--fit {status}：-ngl {ngl}，张量切分 {ts}，{part} 层溢出，n_ctx {ctx}",
    },
    "a_ollama": {
        "en": "Ollama's scheduler estimate (llm/memory.go at v{version}): num_ctx {ctx}, OLLAMA_NUM_PARALLEL {parallel}, num_batch {batch}, flash attention {fa}, KV cache {kv}; each GPU reserves 457 MiB and one layer as a buffer",
        "zh": "Ollama 调度器的估算（v{version} 的 llm/memory.go）：num_ctx {ctx}，OLLAMA_NUM_PARALLEL {parallel}，num_batch {batch}，flash attention {fa}，KV 缓存 {kv}；每张 GPU 预留 457 MiB 和一层作缓冲",
    },
    "a_ollama_layout": {
        "en": "Ollama's own memory layout (llm/server.go, v{version}): num_ctx {ctx}, OLLAMA_NUM_PARALLEL {parallel}, num_batch {batch}, flash attention {fa}, KV cache {kv}; each GPU keeps 457 MiB free and its graph, layers packed onto the fewest GPUs",
        "zh": "Ollama 自己的显存布局（v{version} 的 llm/server.go）：num_ctx {ctx}，OLLAMA_NUM_PARALLEL {parallel}，num_batch {batch}，flash attention {fa}，KV 缓存 {kv}；每张 GPU 留出 457 MiB 和其计算图，各层装入尽量少的 GPU",
    },
    "a_ollama_llama_server": {
        "en": "Ollama v{version} starts llama-server (since v0.30.0, #16031; llm/llama_server.go, server/sched.go): {args}; num_ctx {ctx} × OLLAMA_NUM_PARALLEL {parallel}, flash attention {fa}, KV cache {kv}; {o_np} given, neither {o_kvu} nor {o_swa}: one KV stream per sequence of GGML_PAD(n_ctx / n_seq, 256) cells, sliding layers their window; the reserved graph keeps logits for {outputs} rows ({outputs_why}); llama-server's fit places the layers (1024 MiB kept free per GPU; OLLAMA_GPU_OVERHEAD is not passed); ollama ps sums every buffer it prints",
        "zh": "Ollama v{version} 启动 llama-server（自 v0.30.0 起，#16031；llm/llama_server.go、server/sched.go）：{args}；num_ctx {ctx} × OLLAMA_NUM_PARALLEL {parallel}，flash attention {fa}，KV 缓存 {kv}；给定 {o_np}，不传 {o_kvu} 和 {o_swa}：每条序列一个 GGML_PAD(n_ctx / n_seq, 256) 个单元的 KV 流，滑动窗口层只保留其窗口；预留计算图为 {outputs} 行保留 logits（{outputs_why}）；由 llama-server 的 fit 放置各层（每张 GPU 保留 1024 MiB 空闲；不传 OLLAMA_GPU_OVERHEAD）；ollama ps 汇总其打印的全部缓冲",
    },
    "a_ollama_no_projector": {
        "en": "the vision projector Ollama loads beside the text model (its weights and image graph) is not included",
        "zh": "未计入 Ollama 在文本模型旁加载的视觉投影器（其权重与图像计算图）",
    },
    "a_ollama_default_quant": {
        "en": "no {o_quant}: the Ollama library's default blob, {quant} (give {o_f16} for the unquantized weights)",
        "zh": "未给出 {o_quant}：采用 Ollama 库的默认文件 {quant}（要用未量化权重请给出 {o_f16}）",
    },
    "a_ollama_split": {
        "en": "Ollama on {n} × {gpu}: {layers}/{total} layers on the GPU (split {split}); ollama ps would show {size} {ps}",
        "zh": "Ollama 在 {n} 张 {gpu} 上：{layers}/{total} 层在 GPU（切分 {split}）；ollama ps 将显示 {size} {ps}",
    },
    "a_sglang": {
        "en": "SGLang on {gpu}: mem_fraction_static {mfs} (chunked_prefill_size {cps}, cuda_graph_max_bs {bs}); the token pool holds {tokens} tokens, {c} requests of context_len {ctx}; max_running_requests {reqs}",
        "zh": "SGLang 在 {gpu} 上：mem_fraction_static {mfs}（chunked_prefill_size {cps}，cuda_graph_max_bs {bs}）；token 池可容纳 {tokens} 个 token，即 {c} 个 context_len {ctx} 的请求；max_running_requests {reqs}",
    },
    "a_kv_quantized": {
        "en": "QuantizedCache({backend}, nbits {nbits}, q_group_size {g}, axis_key {ak}, axis_value {av}; read at transformers 5.24.0, optimum-quanto 0.2.7, HQQ 0.2.8): the prompt is quantized whole, then up to {r1} decoded tokens wait in full precision (residual_length {r}) before everything is quantized again; one scale and one zero point per {g} values; each decode step dequantizes one layer's whole cache at a time ({deq} MiB, transient, not counted)",
        "zh": "QuantizedCache（{backend}，nbits {nbits}，q_group_size {g}，axis_key {ak}，axis_value {av}；按 transformers 5.24.0、optimum-quanto 0.2.7、HQQ 0.2.8 阅读）：提示词整体量化，之后最多 {r1} 个解码出的 token 以全精度等待（residual_length {r}），再全部重新量化；每 {g} 个值一个缩放因子和一个零点；每步解码会逐层把整层缓存反量化一次（{deq} MiB，临时，未计入）",
    },
    "a_kv_quantized_refused": {
        "en": "transformers' QuantizedCache takes only models whose layers are all full attention (it refuses sliding-window and recurrent layers; MLA latents and encoder-decoders are not modelled with it): the dynamic cache is counted instead",
        "zh": "transformers 的 QuantizedCache 只接受所有层都是全注意力的模型（拒绝滑动窗口层和循环层；MLA 潜变量与编码器-解码器不按它建模）：此处按动态缓存计算",
    },
    "a_sglang_mamba": {
        "en": "SGLang on {gpu}: the mamba pool keeps {slots} request states of {per_req} MiB (conv bfloat16, SSM {ssm}), {pool} GiB taken from the KV pool's budget by {ratio}; {per} states per running request cap max_running_requests at {reqs} (as read at SGLang 0.5.23)",
        "zh": "SGLang 在 {gpu} 上：mamba 池保存 {slots} 个请求状态，每个 {per_req} MiB（卷积 bfloat16，SSM {ssm}），按 {ratio} 从 KV 池预算中取出 {pool} GiB；每个运行中的请求占 {per} 个状态，max_running_requests 因此不超过 {reqs}（按 SGLang 0.5.23 阅读）",
    },
    "a_sglang_no_mamba": {
        "en": "SGLang has no mamba pool for model type {type} (as read at 0.5.23: no SGLang model of its own); keys and values are counted on every layer and no state",
        "zh": "SGLang 没有为模型类型 {type} 提供 mamba 池（按 0.5.23 阅读：SGLang 没有它自己的模型）；此处按每层都有 K/V、没有状态计算",
    },
    "a_sglang_dp": {
        "en": "{dp}: independent replicas, each GPU holds the same as one replica's",
        "zh": "{dp}：相互独立的副本，每张 GPU 的占用与单个副本相同",
    },
    "a_llamacpp_host_mmap": {
        "en": "host model buffer {size}: memory-mapped from the GGUF file (llama.cpp's default): page cache the OS can reclaim and re-read",
        "zh": "主机模型缓冲 {size}：从 GGUF 文件内存映射（llama.cpp 默认）：操作系统可回收、再读取的页缓存",
    },
    "a_llamacpp_host_allocated": {
        "en": "host model buffer {size}: {o_no_mmap} reads it into allocated RAM",
        "zh": "主机模型缓冲 {size}：{o_no_mmap} 会把它读入分配的内存",
    },
    "a_llamacpp_host_locked": {
        "en": "host model buffer {size}: {o_mlock} pins it in RAM (it cannot be swapped out)",
        "zh": "主机模型缓冲 {size}：{o_mlock} 把它锁定在内存中（不会被换出）",
    },
    "a_cmd_read": {
        "en": "read from the command line: {program} ({engine} engine)",
        "zh": "从命令行读取：{program}（{engine} 引擎）",
    },
    "a_cmd_ignored": {
        "en": "flags that do not change memory, ignored: {flags}",
        "zh": "不影响显存、已忽略的参数：{flags}",
    },
    "a_cmd_unmodelled": {
        "en": "change memory but are not modelled (the estimate leaves them out): {flags}",
        "zh": "会影响显存但未建模（估算未计入）：{flags}",
    },
    "a_cmd_unknown": {
        "en": "flags vramscope does not know (not used): {flags}",
        "zh": "vramscope 不认识的参数（未使用）：{flags}",
    },
    "a_config_read": {
        "en": "read from the training config ({format})",
        "zh": "从训练配置读取（{format}）",
    },
    "a_config_ignored": {
        "en": "config fields that do not change memory, ignored: {fields}",
        "zh": "不影响显存、已忽略的配置字段：{fields}",
    },
    "r_main_gpu_range": {
        "en": "llama.cpp has {n} device(s), 0 to {last}; {main} is not one of them (llama.cpp: invalid value for main_gpu)",
        "zh": "llama.cpp 有 {n} 个设备（0 到 {last}）；{main} 不在其中（llama.cpp：main_gpu 的值无效）",
    },
    "a_llamacpp_recurrent": {
        "en": "recurrent / hybrid model: keys and values only in the {attn} attention layers of {n}; the {layers} "
              "recurrent layers keep llama_memory_recurrent's f32 conv states ({r}) and SSM states ({s}) for "
              "{seqs} sequence(s) ({o_np}), whatever the length, in the KV buffer's total",
        "zh": "循环/混合模型：{n} 层中只有 {attn} 个注意力层保存 K/V；{layers} 个循环层按 llama_memory_recurrent 保存 f32 "
              "卷积状态（{r}）与 SSM 状态（{s}），共 {seqs} 条序列（{o_np}），与长度无关，计入 KV 缓冲区总量",
    },
    "a_ollama_recurrent": {
        "en": "recurrent / hybrid model (Ollama's GraphSize, since v0.11.11): keys and values in the {attn} layers "
              "of {n} that have heads; every other layer one sequence's f32 conv + SSM state ({state}), not "
              "multiplied by OLLAMA_NUM_PARALLEL",
        "zh": "循环/混合模型（Ollama 的 GraphSize，自 v0.11.11 起）：{n} 层中有注意力头的 {attn} 层保存 K/V；其余每层保存"
              "一条序列的 f32 卷积 + SSM 状态（{state}），不乘以 OLLAMA_NUM_PARALLEL",
    },
    "a_llamacpp_no_mla": {
        "en": "this DeepSeek GGUF predates the *_mla keys (converted before April 2025): llama.cpp runs it without MLA and caches per-head keys and values ({k} + {v} per token and layer)",
        "zh": "此 DeepSeek GGUF 早于 *_mla 键（2025 年 4 月前转换）：llama.cpp 不用 MLA 运行它，按头缓存 K 和 V（每个 token 每层 {k} + {v}）",
    },
    "a_zero": {
        "en": "per GPU of {n}-way DeepSpeed ZeRO stage {stage} (DeepSpeed 0.19.8): fp32 master weights and optimizer states sharded (stage 2: gradients too), a {bucket}-element gradient bucket allocated whole in backward, the step upcasting the gradient partition to fp32; activations per rank",
        "zh": "{n} 卡 DeepSpeed ZeRO 第 {stage} 阶段的单卡显存（DeepSpeed 0.19.8）：fp32 主权重与优化器状态切分（第 2 阶段梯度也切分），反向时整块分配 {bucket} 元素的梯度桶，优化器步骤把梯度分片升为 fp32；激活值按每卡计",
    },
    "a_ddp": {
        "en": "per GPU of {n}-way DDP: a full replica each, plus DDP's flat gradient buckets beside .grad",
        "zh": "{n} 卡 DDP 的单卡显存：每卡完整副本，另加 DDP 与 .grad 并存的扁平梯度桶",
    },
    "a_recipe_deepspeed": {
        "en": "precision: DeepSpeed-style mixed ({dtype} parameters and gradients, fp32 master weights and Adam states: 2 + 2 + 12 bytes per parameter)",
        "zh": "精度：DeepSpeed 式混合精度（{dtype} 参数与梯度，fp32 主权重和 Adam 状态：每参数 2 + 2 + 12 字节）",
    },
    "a_tp_train": {
        "en": "per GPU of {n}-way Megatron tensor parallelism: heads, MLP and vocabulary (vocab-parallel loss) split; norms, residual stream and their activations replicated (no sequence parallelism)",
        "zh": "{n} 路 Megatron 张量并行下的单卡显存：注意力头、MLP 和词表（词表并行损失）切分；归一化层、残差流及其激活值在各卡复制（未用序列并行）",
    },
    "a_act_offload": {
        "en": "activation offloading: saved activations ({host}) go to pinned CPU memory in forward and come back one autograd node at a time (torchtune / TRL OffloadActivations); the loss head stays on the GPU",
        "zh": "激活值卸载：前向保存的激活值（{host}）转存到锁页 CPU 内存，反向时按 autograd 节点逐个取回（torchtune / TRL OffloadActivations）；损失头留在 GPU",
    },
    "a_hf_ckpt_adapters": {
        "en": "gradient checkpointing on, as LoRA/QLoRA run with Hugging Face: TRL's SFTConfig sets "
              "gradient_checkpointing=True and peft's prepare_model_for_kbit_training use_gradient_checkpointing=True; "
              "non-reentrant, as transformers 5 sets it (use_reentrant=False); {o_off} turns it off",
        "zh": "梯度检查点开启，与 Hugging Face 上运行 LoRA/QLoRA 时一致：TRL 的 SFTConfig 默认 gradient_checkpointing=True，"
              "peft 的 prepare_model_for_kbit_training 默认 use_gradient_checkpointing=True；按 transformers 5 的设置为非重入式"
              "（use_reentrant=False）；{o_off} 可关闭",
    },
    "a_hf_ckpt_off": {
        "en": "gradient checkpointing off: the Trainer's default (gradient_checkpointing=False); TRL's SFTConfig turns "
              "it on ({o_on})",
        "zh": "梯度检查点关闭：Trainer 的默认值（gradient_checkpointing=False）；TRL 的 SFTConfig 默认开启（{o_on}）",
    },
    "a_hf_optimizer": {
        "en": "optimizer adamw: torch's foreach AdamW; the Trainer's own default optim is adamw_torch_fused "
              "(transformers 5 with torch >= 2.8), not yet applied here: {fused}",
        "zh": "优化器 adamw：torch 的 foreach AdamW；Trainer 自身的默认 optim 为 adamw_torch_fused（transformers 5 配合 "
              "torch >= 2.8），此处尚未采用：可用 {fused}",
    },
    "a_tt_opt_in_bwd_default": {
        "en": "optimizer in backward: the default of torchtune's full single-device recipes (optimizer_in_bwd: True); "
              "{o_off} turns it off",
        "zh": "优化器在反向传播中更新：torchtune 单卡全量微调配方的默认值（optimizer_in_bwd: True）；"
              "{o_off} 可关闭",
    },
    "a_opt_in_bwd": {
        "en": "optimizer step fused into backward: each parameter is updated and its gradient freed as soon as the gradient is complete (torchtune optimizer_in_bwd), so gradients never all exist at once",
        "zh": "优化器步骤融合进反向传播：每个参数的梯度一算完就更新并释放（torchtune optimizer_in_bwd），梯度不会同时全部存在",
    },
    "a_ep": {
        "en": "expert parallel: routed experts split over {n} GPUs ({experts:~expert~experts} per GPU); tokens travel by all-to-all, activations per GPU unchanged",
        "zh": "专家并行：路由专家分布在 {n} 张 GPU 上（每卡 {experts} 个专家）；token 通过 all-to-all 传输，单卡激活值不变",
    },
    "a_sp": {
        "en": "context parallel ({mode}): the sequence is split over {n} GPUs, {seq} tokens each; activations divide, key/value chunks are exchanged in attention",
        "zh": "上下文并行（{mode}）：序列切分到 {n} 张 GPU，每卡 {seq} 个 token；激活值按比例减少，注意力中交换 key/value 分块",
    },
    "a_fsdp_v": {
        "en": "FSDP{v} full shard over {n:~GPU~GPUs}{hybrid}: parameters, gradients and optimizer states divided; unsharded layers in flight (two in forward; in backward also the layer's gradients and, for FSDP2, the reduce-scatter buffer); the output head stays gathered from forward into backward",
        "zh": "FSDP{v} 全分片（{n} 张 GPU{hybrid}）：参数、梯度和优化器状态按卡均分；另有正在传输的未分片层（前向两层；反向还有该层梯度，FSDP2 另加 reduce-scatter 缓冲）；输出头从前向到反向保持聚合",
    },
    "a_zero_auto": {
        "en": "DeepSpeed sizes left \"auto\" filled as the HF Trainer fills them from hidden size {h} (transformers 5.24 trainer_config_finalize): {sizes}",
        "zh": "DeepSpeed 配置中留作 \"auto\" 的大小按 HF Trainer 的做法由 hidden size {h} 填入（transformers 5.24 trainer_config_finalize）：{sizes}",
    },
    "a_fsdp1_offload": {
        "en": "FSDP1 parameter CPU offload (torch 2.13): each unshard stages the host shard on the GPU first ({staged} with two unshards in flight), and every unit's reduce-scattered gradient ({grads} in all) waits on the GPU beside its pinned host copy until backward ends",
        "zh": "FSDP1 参数 CPU 卸载（torch 2.13）：每次反分片先把主机上的分片暂存到 GPU（两次反分片同时进行时共 {staged}），每个单元 reduce-scatter 后的梯度（共 {grads}）在反向结束前与其锁页主机副本一同留在 GPU 上",
    },
    "a_fsdp2_offload": {
        "en": "FSDP2 CPUOffloadPolicy (torch 2.13 foreach_reduce): each reduce-scattered gradient is copied to the host at once and its GPU output freed, so no sharded gradient stays on the GPU; the GPU keeps the unsharded layers' gradients and the reduce-scatter input",
        "zh": "FSDP2 CPUOffloadPolicy（torch 2.13 foreach_reduce）：每个 reduce-scatter 后的梯度立即拷到主机，其 GPU 输出随即释放，因此 GPU 上不保留任何分片梯度；GPU 只保留未分片层的梯度和 reduce-scatter 输入",
    },
    "a_zero3_init_lora": {
        "en": "LoRA under DeepSpeed ZeRO-3 (0.19.8) as the HF Trainer runs it: the model built inside zero.Init is partitioned in {dtype} at construction and the engine casts nothing, so peft's adapters stay fp32 partitions; their gradients and bucket are in {dtype}, and the optimizer keeps an fp32 master partition",
        "zh": "HF Trainer 方式下 DeepSpeed ZeRO-3（0.19.8）的 LoRA：在 zero.Init 中构建的模型在构造时即按 {dtype} 分片，引擎不再转换类型，因此 peft 的适配器保持 fp32 分片；其梯度与梯度桶为 {dtype}，优化器另存 fp32 主权重分片",
    },
    "a_zero_lora": {
        "en": "LoRA under DeepSpeed ZeRO (0.19.8): the engine casts peft's fp32 adapters to {dtype} with the base, their gradients and bucket in {dtype}, and its optimizer keeps the fp32 master partition",
        "zh": "DeepSpeed ZeRO（0.19.8）下的 LoRA：引擎把 peft 的 fp32 适配器随基座一起转为 {dtype}，梯度与梯度桶为 {dtype}，优化器保留 fp32 主权重分片",
    },
    "a_zero3": {
        "en": "DeepSpeed ZeRO-3 (DeepSpeed 0.19.8) over {n:~GPU~GPUs}: states divided; gathered: the largest module (twice while a coalesced gather copies out) plus the prefetch bucket ({prefetch} elements, at most {live} live), small parameters kept whole beside their partitions; the {bucket}-element reduce bucket allocated whole at start-up, and in backward its copy",
        "zh": "DeepSpeed ZeRO-3（DeepSpeed 0.19.8，{n} 张 GPU）：状态均分；聚合部分：最大的子模块（合并 all-gather 拷出时为两份）加预取桶（{prefetch} 个元素，最多 {live} 个常驻），小参数在其分片之外完整保留；{bucket} 元素的归约桶在启动时整块分配，反向时另有其拷贝",
    },
    "a_tp_train_sp": {
        "en": "per GPU of {n}-way Megatron tensor parallelism with sequence parallelism: heads, MLP and vocabulary split; norm and residual activations split along the sequence",
        "zh": "{n} 路 Megatron 张量并行加序列并行下的单卡显存：注意力头、MLP 和词表切分；归一化与残差激活值沿序列切分",
    },
    "a_framework_torchtune": {
        "en": "training loop: torchtune — its own model code (traced: RMSNorm keeps fp32 normalized values, k/v expanded to every head, bf16 adapters reading the shared input) and its recipe defaults (activation checkpointing, chunked cross-entropy in {chunks} chunks, LoRA on q/v/output projections and the MLP, fused AdamW; full fine-tuning on one GPU: paged 8-bit AdamW stepped in backward), each overridable",
        "zh": "训练循环：torchtune——其自己的模型代码（已跟踪：RMSNorm 保存 fp32 归一化值、k/v 扩展到每个注意力头、bf16 适配器直接读共享输入）和配方默认值（激活检查点、{chunks} 块分块交叉熵、LoRA 作用于 q/v/输出投影和 MLP、融合 AdamW；单卡全参数微调：分页 8 位 AdamW 并在反向传播中执行），均可覆盖",
    },
    "a_packing": {
        "en": "packed sequences: every micro-batch holds exactly {seq} tokens (without packing the peak is the batch padded to its longest sample, which {o_seq} stands for)",
        "zh": "序列打包：每个微批次正好 {seq} 个 token（不打包时峰值出现在按最长样本补齐的批次，即 {o_seq}）",
    },
    "a_ckpt_every": {
        "en": "selective layer checkpointing: {ckpt} of {layers} layers checkpointed (every {every:th}), the others keep their activations",
        "zh": "按层选择性检查点：{layers} 层中 {ckpt} 层做检查点（每 {every} 层一次），其余层保留激活值",
    },
    "a_ckpt_selective": {
        "en": "selective recomputation (Megatron-LM): only core attention is recomputed in backward; its inputs stay saved",
        "zh": "选择性重计算（Megatron-LM）：反向时只重算核心注意力，其输入仍保存",
    },
    "a_ckpt_op": {
        "en": "per-op selective checkpointing (torchtitan SelectiveAC): each block keeps its input, the outputs of its odd matmuls (q, v, gate, down) and of attention; the rest is recomputed block by block in backward",
        "zh": "逐算子选择性检查点（torchtitan SelectiveAC）：每个块保存其输入、奇数次矩阵乘（q、v、gate、down）和注意力的输出；其余在反向时逐块重算",
    },
    "a_recompute_uniform": {
        "en": "Megatron-LM full recompute, uniform: each group of {n} layers keeps only its input; backward recomputes a whole group at once",
        "zh": "Megatron-LM 完全重算（uniform）：每 {n} 层一组，只保存组的输入；反向时整组一起重算",
    },
    "a_recompute_block": {
        "en": "Megatron-LM full recompute, block: the first {n} layers of each pipeline rank are checkpointed, the others keep all their activations",
        "zh": "Megatron-LM 完全重算（block）：每个流水线段的前 {n} 层做检查点，其余层保留全部激活值",
    },
    "a_float8": {
        "en": "torchao 0.18 float8 training ({recipe}{gather}): the layers' linears matmul in float8; they save the same high-precision inputs a bf16 linear saves (eager), and each cast (fp32 scaling, 9 bytes per element at its peak) lives only around its matmul; the output head stays high precision",
        "zh": "torchao 0.18 float8 训练（{recipe}{gather}）：各层线性层以 float8 做矩阵乘；保存的仍是与 bf16 线性层相同的高精度输入（eager 模式），每次转换（经 fp32 缩放，峰值每元素 9 字节）只在其矩阵乘前后存在；输出头保持高精度",
    },
    "a_chunked_ce": {
        "en": "chunked cross-entropy: output head and loss in {chunks} chunks (one chunk's fp32 logits at a time)",
        "zh": "分块交叉熵：输出头与损失分 {chunks} 块计算（每次只有一块 fp32 logits）",
    },
    "a_dora": {
        "en": "DoRA: + {magnitude} magnitude parameters; each adapted layer keeps its base and adapter outputs and rebuilds its weight (fp32) every forward",
        "zh": "DoRA：另加 {magnitude} 个幅度参数；每个适配层保存基础输出和适配器输出，且每次前向都以 fp32 重建权重",
    },
    "a_paged": {
        "en": "paged optimizer: its states ({states}) live in CUDA unified memory (cudaMallocManaged), counted here on the GPU; the driver pages them to host memory when the GPU runs short, and torch's memory counters do not include them",
        "zh": "分页优化器：其状态（{states}）位于 CUDA 统一内存（cudaMallocManaged），这里按 GPU 计入；显存不足时由驱动换页到主机内存，torch 的显存计数不包含它们",
    },
    "a_compile": {
        "en": "torch.compile (torch 2.13 inductor), each decoder block compiled on its own as torchtitan does: a block saves what AOTAutograd's min-cut partitioner keeps for backward (matmul outputs, the attention output and log-sum-exp, the normed inputs and one rsqrt per row; norms, RoPE, SiLU and residual sums recomputed; read off the partitioned graph of the real transformers block), about 30% less than eager mode without checkpointing",
        "zh": "torch.compile（torch 2.13 inductor），按 torchtitan 的做法逐个编译解码块：每块保存 AOTAutograd 最小割分区器为反向保留的张量（矩阵乘输出、注意力输出与 log-sum-exp、归一化后的输入及每行一个 rsqrt；归一化、RoPE、SiLU 与残差加法在反向中重算；取自真实 transformers 解码块分区后的图），不开激活检查点时比 eager 模式少约 30%",
    },
    "a_compile_eager_layers": {
        "en": "torch.compile (torch 2.13): what a compiled block saves is modelled for full training of Llama-layout dense and grouped-matmul MoE blocks (not under Megatron's selective recompute), so these decoder layers are estimated as in eager mode, which with activation checkpointing is close and without it an overestimate",
        "zh": "torch.compile（torch 2.13）：编译后解码块保存的张量仅对 Llama 布局的稠密块与分组矩阵乘 MoE 块的全参训练建模（Megatron 的选择性重算除外），因此这些解码层按 eager 模式估算，开启激活检查点时接近，未开启时偏高",
    },
    "a_compile_loss": {
        "en": "compiled loss: the fused cross-entropy keeps the 16-bit logits and a log-sum-exp per row, not fp32 log-probabilities",
        "zh": "编译后的损失：融合的交叉熵只保存 16 位 logits 和每行一个 log-sum-exp，而非 fp32 对数概率",
    },
    "a_compile_loss_eager": {
        "en": "the loss is not compiled ({o_model}): it runs in eager mode, as torchtitan ran it before it compiled its loss (9dec370, Dec 2024: torch.compile(loss_fn) commented out)",
        "zh": "损失未编译（{o_model}）：以 eager 模式运行，与 torchtitan 开始编译损失之前的做法相同（9dec370，2024 年 12 月：torch.compile(loss_fn) 被注释掉）",
    },
    "a_vllm_mm_pp_first": {
        "en": "vLLM pipeline parallel with a vision tower: the tower's weights and the encoder's dummy profile are on the first of the {pp} stages only (Model Runner V2, the default from 0.33)",
        "zh": "vLLM 流水线并行且带视觉编码器：编码器权重与其虚拟输入的显存分析只在 {pp} 个阶段中的第一个（0.33 起默认的 Model Runner V2）",
    },
    "a_vllm_mm_pp_every": {
        "en": "vLLM pipeline parallel with a vision tower: each of the {pp} stages builds the tower and runs the encoder's dummy profile (the V1 model runner, before 0.33)",
        "zh": "vLLM 流水线并行且带视觉编码器：{pp} 个阶段都构建视觉编码器并运行其虚拟输入的显存分析（0.33 之前的 V1 模型运行器）",
    },
    "a_vllm_pp": {
        "en": "vLLM pipeline parallel: {pp} stages of {tp:~GPU~GPUs} holding {layers} layers; every stage gets the KV blocks of the stage with the fewest for its memory; shown: stage {stage}, the fullest GPU",
        "zh": "vLLM 流水线并行：{pp} 个阶段，每阶段 {tp} 张 GPU，各持有 {layers} 层；各阶段都按显存可得块数最少的阶段分配 KV 块；显示的是阶段 {stage}（最满的 GPU）",
    },
    "a_framework_hf": {
        "en": "training loop: Hugging Face Trainer / TRL (only the loss is kept into backward)",
        "zh": "训练循环：Hugging Face Trainer / TRL（反向传播时只保留损失）",
    },
    "a_framework_accelerate": {
        "en": "training loop: accelerate (outputs = model(**batch); accelerator.backward(outputs.loss) keeps the outputs' logits through backward); FSDP with its mixed_precision policy",
        "zh": "训练循环：accelerate（outputs = model(**batch); accelerator.backward(outputs.loss) 在反向传播期间保留输出的 logits）；FSDP 使用其 mixed_precision 策略",
    },
    "a_framework_torchtitan": {
        "en": "training loop: torchtitan (pred = model(inputs); loss = loss_fn(pred, labels); del pred; loss.backward()); FSDP2 units per block, the embedding and [norm, output], with its MixedPrecisionPolicy",
        "zh": "训练循环：torchtitan（pred = model(inputs); loss = loss_fn(pred, labels); del pred; loss.backward()）；FSDP2 按块、嵌入层和 [norm, output] 分单元，使用其 MixedPrecisionPolicy",
    },
    "a_framework_megatron": {
        "en": "training loop: Megatron-LM (its own DDP over a contiguous gradient buffer; --use-distributed-optimizer as ZeRO-1)",
        "zh": "训练循环：Megatron-LM（在连续梯度缓冲区上的自有 DDP；--use-distributed-optimizer 相当于 ZeRO-1）",
    },
    "allowed_lg_int": {"en": "a whole number {lo}-{hi}", "zh": "{lo} 到 {hi} 之间的整数"},
    "allowed_lg_prob": {"en": "a probability 0 <= p < 1", "zh": "概率 0 <= p < 1"},
    "cmd_litgpt_method": {
        "en": "litgpt finetune {method}: vramscope models LitGPT's {methods} recipes",
        "zh": "litgpt finetune {method}：vramscope 只对 LitGPT 的 {methods} 配方建模"},
    "cmd_litgpt_quant_devices": {
        "en": "litgpt finetune lora --quantize runs on one device only (LitGPT raises NotImplementedError for "
              "several): use --devices 1",
        "zh": "litgpt finetune lora --quantize 只能单卡运行（多卡时 LitGPT 抛出 NotImplementedError）：请用 --devices 1"},
    "r_trace_litgpt_scope": {
        "en": "the LitGPT trace runs its single-device recipes: --task finetune, --method full, lora, qlora, adapter or "
              "adapter-v2, one GPU, "
              "no checkpointing, offloading, DoRA, packing or stepping in backward",
        "zh": "LitGPT 追踪只运行其单卡配方：--task finetune、--method full、lora、qlora、adapter 或 adapter-v2、单卡，不含检查点、卸载、DoRA、"
              "打包或在反向中更新"},
    "r_trace_litgpt_model": {
        "en": "LitGPT has no Config for {model}: the trace builds a catalog model LitGPT names, or a Llama-layout "
              "(llama, mistral, qwen2) config",
        "zh": "LitGPT 没有 {model} 的 Config：追踪只能构建 LitGPT 有名称的目录模型，或 Llama 结构（llama、mistral、"
              "qwen2）的配置"},
    "r_trace_litgpt_targets": {
        "en": "LitGPT's LoRA switches (--lora_query/key/value/projection/mlp/head) cannot express the targets "
              "{targets}: the MLP is switched as a whole",
        "zh": "LitGPT 的 LoRA 开关（--lora_query/key/value/projection/mlp/head）无法表达目标 {targets}：MLP 只能整体开关"},
    "a_framework_litgpt": {
        "en": "training loop: LitGPT 0.5.13 — its own model code (traced: litgpt.model.GPT, RMSNorm in fp32, k/v repeated to every head, adapters in the training dtype, an untied lm_head) and its recipes' defaults (LoRA r 8 on query and value, dropout 0.05; LitGPT's precision bf16-true: weights, gradients and AdamW states in the dtype; no activation checkpointing on one device, every Block on several; the head in 128-token chunks, each cast to fp32 by Lightning Fabric's precision plugin (convert_output) before the cross-entropy, the fp32 logits kept through backward and the optimizer step; with LitGPT's quantize: bitsandbytes PagedAdamW), each overridable",
        "zh": "训练循环：LitGPT 0.5.13——其自己的模型代码（已跟踪：litgpt.model.GPT、fp32 的 RMSNorm、k/v 复制到每个注意力头、适配器为训练精度、不共享权重的 lm_head）和配方默认值（LoRA 秩 8 作用于 query 和 value、dropout 0.05；LitGPT 的精度 bf16-true：权重、梯度和 AdamW 状态均为该精度；单卡不做激活检查点，多卡对每个 Block 做；输出头按 128 个 token 分块，每块在交叉熵前由 Lightning Fabric 的精度插件（convert_output）转为 fp32，fp32 logits 保留到反向传播和优化器步骤结束；LitGPT 的 quantize 时用 bitsandbytes PagedAdamW），均可覆盖",
    },
    "a_recipe_lora_litgpt": {
        "en": "frozen base in {dtype}; adapters, their gradients and optimizer states in {dtype} too (LitGPT builds the model, adapters included, under fabric.init_module in the training dtype)",
        "zh": "冻结的基座为 {dtype}；适配器及其梯度和优化器状态也为 {dtype}（LitGPT 在 fabric.init_module 下以训练精度构建整个模型，包括适配器）",
    },
    "a_chunked_ce_lowp": {
        "en": "chunked cross-entropy: output head and loss in {chunks} chunks; the model's 16-bit logits reach the loop as fp32 copies (Lightning 2.6.6 _FabricModule.forward → the precision plugin's convert_output, to torch's default dtype), so the log-probabilities and their gradients are fp32 too",
        "zh": "分块交叉熵：输出头与损失分 {chunks} 块计算；模型的 16 位 logits 以 fp32 副本交给训练循环（Lightning 2.6.6 的 _FabricModule.forward → 精度插件的 convert_output，转为 torch 的默认类型），因此对数概率及其梯度也是 fp32",
    },
    "a_untied_head": {
        "en": "{framework} keeps the tied output head as its own parameter: + {params} parameters",
        "zh": "{framework} 把共享权重的输出头保存为独立参数：另加 {params} 个参数",
    },
    "a_framework_pytorch": {
        "en": "training loop: plain PyTorch (out = model(...); out.loss.backward() keeps out.logits through backward)",
        "zh": "训练循环：普通 PyTorch（out = model(...); out.loss.backward() 在反向传播期间保留 out.logits）",
    },
    "a_pp": {
        "en": "pipeline parallel: {pp} stages, {schedule} schedule, {m:~micro-batch~micro-batches} per step; the busiest rank is the {kind}",
        "zh": "流水线并行：{pp} 个阶段，{schedule} 调度，每步 {m} 个微批次；显存最多的是{kind}",
    },
    "a_pp_fsdp_always": {
        "en": "torchtitan under pipeline parallelism with fsdp_reshard_after_forward = \"always\": its layers split with the embedding and the output head counting as a layer each; FSDP2 reshards every unit after each micro-batch's forward and gathers them again, in reverse order with one prefetched, for its backward, where they stay gathered until the step's last backward (torch 2.13 PipelineStage: set_reshard_after_backward(False) but for the last); gradients accumulate unsharded in the reduction dtype",
        "zh": "torchtitan 流水线并行且 fsdp_reshard_after_forward = \"always\"：层按嵌入层和输出头各算一层切分；FSDP2 在每个微批次前向后对每个单元重新分片，反向时按逆序再次聚合（预取一个），并保持聚合直到本步最后一次反向（torch 2.13 PipelineStage：除最后一次外 set_reshard_after_backward(False)）；梯度以规约精度未分片累积",
    },
    "a_pp_fsdp_gathered": {
        "en": "torchtitan under pipeline parallelism: its layers split with the embedding and the output head counting as a layer each; FSDP2 does not reshard after forward, so each stage stays gathered in the parameter dtype from its first forward to the step's last backward, its gradients accumulating unsharded in the reduction dtype across micro-batches",
        "zh": "torchtitan 流水线并行：层按嵌入层和输出头各算一层切分；FSDP2 前向后不重新分片，每个阶段从第一次前向到本步最后一次反向都以参数精度保持完整聚合，梯度跨微批次以规约精度未分片累积",
    },
    "a_tp": {
        "en": "per GPU of {n}-way tensor parallelism (heads, MLP, experts and vocabulary split; norms replicated; NCCL buffers not counted)",
        "zh": "{n} 路张量并行下的单卡显存（注意力头、MLP、专家和词表切分；归一化层复制；未计 NCCL 缓冲）",
    },
    "trace_missing": {
        "en": "trace needs the trace extra ({module} is not installed): pip install 'vramscope[trace]'",
        "zh": "trace 需要安装 trace 扩展（缺少 {module}）：pip install 'vramscope[trace]'",
    },
    "trace_unsupported": {
        "en": "trace: {reason}",
        "zh": "trace：{reason}",
    },
    "tt_layers": {"en": "the number of layers", "zh": "层数"},
    "tt_n_layers": {"en": "{n} layers", "zh": "{n} 层"},
    "tt_layers_why": {"en": "each layer is traced op by op", "zh": "每一层都要逐个算子跟踪"},
    "tt_params": {"en": "the parameter count", "zh": "参数量"},
    "tt_params_why": {"en": "beyond any public checkpoint", "zh": "超过任何公开的检查点"},
    "tt_n_ranks": {"en": "{n} ranks", "zh": "{n} 个进程"},
    "tt_ranks_why": {"en": "FSDP splits every parameter into one shard per rank", "zh": "FSDP 把每个参数切成每个进程一份"},
    "tt_n_rank_layers": {"en": "{n} rank-layers", "zh": "{n} 个“进程×层”"},
    "tt_rank_layers_why": {"en": "FSDP splits every layer's parameters into one shard per rank",
                           "zh": "FSDP 把每一层的参数切成每个进程一份"},
    "tt_n_chunks": {"en": "{n} chunks", "zh": "{n} 块"},
    "tt_chunks_why": {"en": "each chunk runs the output head and the loss", "zh": "每一块都要运行输出层和损失"},
    "tt_tensor": {"en": "the largest tensor", "zh": "最大的张量"},
    "tt_tensor_why": {"en": "torch computes tensor sizes in 64-bit integers", "zh": "torch 用 64 位整数计算张量大小"},
    "trace_too_big": {
        "en": "trace: {what} is {value}, above the trace limit of {limit} ({why}); the analytic estimate is `{command}`",
        "zh": "trace：{what}为 {value}，超过 trace 的上限 {limit}（{why}）；解析估算请用 `{command}`",
    },
    "trace_timeout": {
        "en": "trace: stopped after {seconds} s (the --timeout); the analytic estimate is `{command}` (or raise --timeout)",
        "zh": "trace：已在 {seconds} 秒后停止（--timeout 的限制）；解析估算请用 `{command}`（或调大 --timeout）",
    },
    "trace_model_failed": {
        "en": "trace: the model code raised {error}; the analytic estimate is `{command}`",
        "zh": "trace：模型代码抛出了 {error}；解析估算请用 `{command}`",
    },
    "trace_not_traced": {
        "en": "{field}: trace does not run this ({reason}); the analytic estimate is `{command}`",
        "zh": "{field}：trace 不运行这种情况（{reason}）；解析估算请用 `{command}`",
    },
    "measure_no_cuda": {
        "en": "measure needs a CUDA GPU and a CUDA build of torch ({detail}); use 'vramscope trace' or 'vramscope estimate' instead",
        "zh": "measure 需要 CUDA GPU 和支持 CUDA 的 torch（{detail}）；请改用 'vramscope trace' 或 'vramscope estimate'",
    },
    "records_bad": {
        "en": "{path}: line {line}: {detail}",
        "zh": "{path}：第 {line} 行：{detail}",
    },
    # ---- table and report ----
    "hdr_component": {"en": "component", "zh": "组成部分"},
    "hdr_memory": {"en": "memory", "zh": "显存"},
    "hdr_share": {"en": "share", "zh": "占比"},
    "total": {"en": "total (peak)", "zh": "合计（峰值）"},
    "total_vllm": {"en": "total (preallocated)", "zh": "合计（预分配）"},
    "total_vllm_needed": {"en": "total (needed)", "zh": "合计（所需）"},
    "range": {"en": "likely range", "zh": "可能范围"},
    "range_line": {"en": "likely range: {low} – {high}", "zh": "可能范围：{low} – {high}"},
    "peak_line": {"en": "peak phase: {phase} ({phases})", "zh": "峰值阶段：{phase}（{phases}）"},
    "assumptions": {"en": "Assumptions", "zh": "假设"},
    "assumptions_line": {"en": "Assumptions:", "zh": "假设："},
    "warning_line": {"en": "warning: {text}", "zh": "警告：{text}"},
    "peak_phase": {"en": "peak phase", "zh": "峰值阶段"},
    "model_line": {
        "en": "{name}: {params} parameters{active}{trainable}",
        "zh": "{name}：{params} 参数{active}{trainable}",
    },
    "active_part": {"en": ", {active} active per token", "zh": "，每个 token 激活 {active}"},
    "trainable_part": {"en": ", {trainable} trainable", "zh": "，可训练 {trainable}"},
    "trainable_part_tp": {"en": ", {trainable} trainable per GPU (its shard of {tp}-way tensor parallelism)",
                          "zh": "，每卡可训练 {trainable}（{tp} 路张量并行中的一份）"},
    "estimate_line": {
        "en": "{task} estimate by the {estimator} estimator",
        "zh": "{task}显存估算（{estimator} 估算器）",
    },
    "vllm_gpu_line": {"en": "vLLM on {gpu} preallocates {budget} ({util} of it): KV cache pool {kv} = {tokens} "
                            "tokens, {c} sequences of {n} tokens at once",
                      "zh": "vLLM 在 {gpu} 上预分配 {budget}（显存的 {util}）：KV 缓存池 {kv} = {tokens} 个 token，"
                            "可同时容纳 {c} 条 {n} token 的序列"},
    "gpu_line_vllm": {
        "en": "{gpu} ({mem}, vLLM's {util}: {budget}): {verdict}, needs {needed}, headroom {headroom} ({pct})",
        "zh": "{gpu}（{mem}，vLLM 占 {util}：{budget}）：{verdict}，需要 {needed}，余量 {headroom}（{pct}）",
    },
    "llamacpp_device_line": {"en": "CUDA{device}: {layers} layers{out}, model buffer {model}, KV buffer {kv}, compute buffer {compute}",
                             "zh": "CUDA{device}：{layers} 层{out}，模型缓冲 {model}，KV 缓冲 {kv}，计算缓冲 {compute}"},
    "llamacpp_output_layer": {"en": " + output layer", "zh": " + 输出层"},
    "ollama_ps_line": {"en": "ollama ps on {gpu}: SIZE {size}, PROCESSOR {processor}, CONTEXT {ctx} ({layers}/{total} layers offloaded, split {split})",
                       "zh": "{gpu} 上的 ollama ps：SIZE {size}，PROCESSOR {processor}，CONTEXT {ctx}（卸载 {layers}/{total} 层，切分 {split}）"},
    "ollama_device_line": {"en": "GPU {device}: {layers} layers, {alloc} of {free} free",
                           "zh": "GPU {device}：{layers} 层，占用 {alloc}，可用 {free}"},
    "sglang_gpu_line": {"en": "{gpu}: mem_fraction_static {mfs}, token pool {kv} = {tokens} tokens, {c} × {n}-token requests",
                        "zh": "{gpu}：mem_fraction_static {mfs}，token 池 {kv} = {tokens} 个 token，{c} 个 {n} token 的请求"},
    "llamacpp_host_line": {"en": "host (CPU) memory: model buffer {model}, KV buffer {kv}",
                           "zh": "主机（CPU）内存：模型缓冲 {model}，KV 缓冲 {kv}"},
    "host_line": {"en": "host (CPU) memory per GPU for offloaded states/activations: {host}",
                  "zh": "每卡卸载的状态/激活值占用的主机（CPU）内存：{host}"},
    "host_node_line": {"en": "host (CPU) memory per node ({n:~GPU~GPUs}): {host}", "zh": "每个节点（{n} 张 GPU）的主机（CPU）内存：{host}"},
    "nvme_line": {"en": "NVMe per GPU for swapped states: {nvme}", "zh": "每卡交换到 NVMe 的状态：{nvme}"},
    "parallel_line": {"en": "per GPU of {world}: data parallel {dp} × tensor {tp} × pipeline {pp} × context {sp} "
                            "(expert {ep}); states sharded over {shard:~GPU~GPUs}",
                      "zh": "{world} 张 GPU 中的单卡：数据并行 {dp} × 张量 {tp} × 流水线 {pp} × 上下文 {sp}（专家 {ep}）；"
                            "状态在 {shard} 张 GPU 上分片"},
    "gpu_fits": {"en": "fits", "zh": "可以运行"},
    "gpu_tight": {"en": "tight", "zh": "勉强"},
    "gpu_no": {"en": "does not fit", "zh": "放不下"},
    "gpu_line": {
        "en": "{gpu} ({mem}): {verdict}, headroom {headroom} ({pct})",
        "zh": "{gpu}（{mem}）：{verdict}，余量 {headroom}（{pct}）",
    },
    "gpu_retry_note": {"en": " — the tensors alone fit: torch's allocator would free its cache and retry, and may still run out (PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True reduces the cache)",
                       "zh": " — 仅张量放得下：torch 分配器会释放缓存后重试，仍可能显存不足（PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True 可减少缓存）"},
    "task_inference": {"en": "Inference", "zh": "推理"},
    "task_finetune": {"en": "Fine-tuning", "zh": "微调"},
    "task_pretrain": {"en": "Pretraining", "zh": "预训练"},
    "seed_label": {
        "en": "rule of thumb from the DataLearner (2023) article; use the analytic estimator for real numbers",
        "zh": "来自 DataLearner（2023）文章的经验法则；准确数字请使用 analytic 估算器",
    },
    # ---- component names ----
    "c_weights": {"en": "weights", "zh": "模型权重"},
    "c_kv_cache": {"en": "KV cache", "zh": "KV 缓存"},
    "c_activations": {"en": "activations", "zh": "激活值"},
    "c_gradients": {"en": "gradients", "zh": "梯度"},
    "c_optimizer_states": {"en": "optimizer states", "zh": "优化器状态"},
    "c_overhead": {"en": "runtime overhead", "zh": "运行时开销"},
    "ac_text": {"en": "must be a text of at most 4096 characters", "zh": "必须是不超过 4096 个字符的文本"},
    "ac_kv": {"en": "expects 'key:value'", "zh": "应写作 'key:value'"},
    "ac_int": {"en": "expects a whole number, not '{value}'", "zh": "应为整数，而不是 '{value}'"},
    "ac_min_mb": {"en": "must be at least {n} MB, not {value}", "zh": "至少为 {n} MB，而不是 {value}"},
    "ac_more_mb": {"en": "must be more than {n} MB, not {value}", "zh": "必须大于 {n} MB，而不是 {value}"},
    "ac_number": {"en": "expects a number, not '{value}'", "zh": "应为数字，而不是 '{value}'"},
    "ac_open_unit": {"en": "must be above 0.0 and below 1.0", "zh": "必须大于 0.0 且小于 1.0"},
    "ac_closed_unit": {"en": "must be from 0.0 to 1.0", "zh": "必须在 0.0 到 1.0 之间"},
    "ac_bool": {"en": "expects True or False, not '{value}'", "zh": "应为 True 或 False，而不是 '{value}'"},
    "ac_backend": {"en": "expects native or cudaMallocAsync, not '{value}'",
                   "zh": "应为 native 或 cudaMallocAsync，而不是 '{value}'"},
    "ac_unknown": {"en": "is not a caching-allocator option", "zh": "不是缓存分配器的选项"},
    "ac_comma": {"en": "must be followed by ',', not '{value}'", "zh": "后面应为 ','，而不是 '{value}'"},
    "ac_div_form": {"en": "expects 'roundup_power2_divisions:N' or 'roundup_power2_divisions:[MB:N,...]'",
                    "zh": "应写作 'roundup_power2_divisions:N' 或 'roundup_power2_divisions:[MB:N,...]'"},
    "ac_pow2": {"en": "divisions must be a power of 2, not {value}", "zh": "划分数必须是 2 的幂，而不是 {value}"},
    "ac_pow2_or0": {"en": "divisions must be a power of 2 or 0, not {value}",
                    "zh": "划分数必须是 2 的幂或 0，而不是 {value}"},
    "ac_entries": {"en": "expects 'MB:N' entries inside [...]", "zh": "[...] 内应为 'MB:N' 形式的条目"},
    "ac_interval": {"en": "intervals must be a power of 2 MB, not {value}", "zh": "区间必须是 2 的幂 MB，而不是 {value}"},
    "ac_bracket": {"en": "misses its closing ']'", "zh": "缺少结尾的 ']'"},
    "a_alloc_conf_analytic": {
        "en": "PYTORCH_CUDA_ALLOC_CONF={conf}: the analytic allocator cache is calibrated for the default settings and the range covers others; `vramscope trace` replays the allocations under these settings",
        "zh": "PYTORCH_CUDA_ALLOC_CONF={conf}：解析估算的分配器缓存按默认设置校准，其他设置由范围覆盖；`vramscope trace` 会按这些设置重放分配序列",
    },
    "a_alloc_conf_replayed": {
        "en": "PYTORCH_CUDA_ALLOC_CONF={conf}: the allocator cache is the analytic prefill's allocation stream replayed through the allocator model under these settings",
        "zh": "PYTORCH_CUDA_ALLOC_CONF={conf}：分配器缓存由解析估算的预填充分配序列按这些设置在分配器模型中重放得到",
    },
    "a_alloc_conf_replayed_train": {
        "en": "PYTORCH_CUDA_ALLOC_CONF={conf}: the allocator cache is the analytic training steps' allocation stream (forward, loss, backward, AdamW) replayed through the allocator model under these settings",
        "zh": "PYTORCH_CUDA_ALLOC_CONF={conf}：分配器缓存由解析估算的训练步分配序列（前向、损失、反向、AdamW）按这些设置在分配器模型中重放得到",
    },
    "bad_alloc_conf": {"en": "{field} (PYTORCH_CUDA_ALLOC_CONF): '{key}' {reason}",
                       "zh": "{field}（PYTORCH_CUDA_ALLOC_CONF）：'{key}' {reason}"},
    "a_trace_allocator": {
        "en": "reserved memory from replaying the trace's allocations through a model of torch's caching allocator: {reserved} GiB, {retries} cache flushes",
        "zh": "已保留显存来自将追踪的分配序列重放于 torch 缓存分配器模型：{reserved} GiB，缓存清空重试 {retries} 次",
    },
    "c_allocator_cache": {"en": "allocator cache", "zh": "分配器缓存"},
    "mem_line": {"en": "per GPU: allocated {allocated} · reserved {reserved} · device (nvidia-smi) {device}",
                 "zh": "每 GPU：已分配 {allocated} · 已保留 {reserved} · 设备（nvidia-smi）{device}"},
    "mem_basis_simulated": {"en": "reserved from the allocator model's replay of the trace",
                            "zh": "已保留显存来自分配器模型对追踪的重放"},
    "mem_range_line": {"en": "likely range (device): {low} – {high}; widened by {why}",
                       "zh": "可能范围（设备）：{low} – {high}；范围来自{why}"},
    "w_context": {"en": "the CUDA context (274 MiB – 1.4 GiB)", "zh": "CUDA 上下文（274 MiB – 1.4 GiB）"},
    "w_allocator": {"en": "allocator settings (no cache to twice the modelled one)",
                    "zh": "分配器设置（从无缓存到两倍模型缓存）"},
    "w_nccl": {"en": "NCCL buffers (0 – 1 GiB)", "zh": "NCCL 缓冲区（0 – 1 GiB）"},
    "w_version": {"en": "framework versions (±{pct}% of persistent tensors, ±{tpct}% of transient ones)",
                  "zh": "框架版本差异（常驻张量 ±{pct}%，临时张量 ±{tpct}%）"},
    "w_unpacked": {"en": "unpacked batches shorter than --seq (down to half the activations)",
                   "zh": "未打包的批次短于 --seq（激活最低减半）"},
    "w_engine": {"en": "the engine's own accounting", "zh": "引擎自身的统计"},
    "a_overhead_torch": {
        "en": "runtime overhead: CUDA context ~512 MiB (274 MiB – 1.4 GiB in published measurements) + torch's cuBLAS workspace for the GPU generation (8 MiB; 32 MiB on Hopper/Blackwell), + NCCL buffers 0.5 GiB on several GPUs; the caching allocator's cache from the workload's tensor sizes (calibrated on the allocator model)",
        "zh": "运行时开销：CUDA 上下文约 512 MiB（公开测量为 274 MiB – 1.4 GiB）+ 按 GPU 架构的 torch cuBLAS 工作区（8 MiB；Hopper/Blackwell 为 32 MiB），多 GPU 时另加 NCCL 缓冲区 0.5 GiB；缓存分配器的缓存按工作负载的张量大小估算（以分配器模型校准）",
    },
    "c_master_weights": {"en": "fp32 master weights", "zh": "fp32 主权重"},
    "c_optimizer_temp": {"en": "optimizer step temporaries", "zh": "优化器步骤临时张量"},
    "c_loss_head": {"en": "logits and loss", "zh": "logits 与损失"},
    "c_temporaries": {"en": "temporaries", "zh": "临时张量"},
    "c_engine_overhead": {"en": "engine reserve (non-torch, CUDA graphs, buffers)",
                          "zh": "引擎预留（非 PyTorch、CUDA Graph、缓冲）"},
    "phase_profile": {"en": "profile run", "zh": "预分析运行"},
    "phase_serving": {"en": "serving", "zh": "服务"},
    "phase_load": {"en": "load", "zh": "加载"},
    "phase_prefill": {"en": "prefill", "zh": "预填充"},
    "phase_decode": {"en": "decode", "zh": "解码"},
    "phase_forward": {"en": "forward", "zh": "前向"},
    "phase_backward": {"en": "backward", "zh": "反向"},
    "phase_optimizer_step": {"en": "optimizer step", "zh": "优化器更新"},
    "phase_steady": {"en": "steady state", "zh": "稳定状态"},
    # ---- planning (fit) ----
    "s_quant": {"en": "quantize weights to {quant}", "zh": "将权重量化为 {quant}"},
    "s_kv_dtype": {"en": "store the KV cache in {kv_dtype}", "zh": "KV 缓存改用 {kv_dtype}"},
    "s_method": {"en": "train with {method} instead", "zh": "改用 {method} 训练"},
    "s_chunked_ce": {"en": "compute the output head and cross-entropy in {chunks} chunks (torchtune CEWithChunkedOutputLoss)",
                     "zh": "把输出头和交叉熵分 {chunks} 块计算（torchtune CEWithChunkedOutputLoss）"},
    "s_act_offload": {"en": "offload saved activations to CPU memory (torchtune / TRL activation offloading)",
                      "zh": "把保存的激活值卸载到 CPU 内存（torchtune / TRL 激活值卸载）"},
    "s_opt_in_bwd": {"en": "step the optimizer inside backward, freeing each gradient at once (torchtune optimizer_in_bwd)",
                     "zh": "在反向传播中逐参数执行优化器步骤并立即释放梯度（torchtune optimizer_in_bwd）"},
    "s_ckpt": {"en": "turn on gradient checkpointing", "zh": "开启梯度检查点"},
    "s_optimizer": {"en": "use the {optimizer} optimizer", "zh": "改用 {optimizer} 优化器"},
    "s_microbatch": {"en": "micro-batch {batch} with gradient accumulation {accum} (same effective batch)",
                     "zh": "微批次改为 {batch}，梯度累积 {accum}（有效批次不变）"},
    "s_attn": {"en": "use {attn} attention instead of eager", "zh": "注意力实现改用 {attn}（替代 eager）"},
    "s_batch": {"en": "batch {batch}", "zh": "批大小改为 {batch}"},
    "s_seq": {"en": "shorten the context to {seq:~token~tokens}", "zh": "上下文缩短到 {seq} 个 token"},
    "s_offload": {"en": "offload the optimizer states to CPU memory (ZeRO-Offload / FSDP CPU offload)",
                  "zh": "将优化器状态卸载到 CPU 内存（ZeRO-Offload / FSDP CPU 卸载）"},
    "s_dtype": {"en": "compute in {dtype} instead of fp32", "zh": "改用 {dtype} 计算（替代 fp32）"},
    "s_flash": {"en": "turn on flash attention ({opt})", "zh": "开启 flash attention（{opt}）"},
    "s_ngl": {"en": "put the output layer and {layers} of {total} layers on the GPU ({opt}); the rest run from CPU memory",
              "zh": "只把输出层和 {total} 层中的 {layers} 层放到 GPU（{opt}），其余在 CPU 内存中运行"},
    "s_ngl_cpu": {"en": "run every layer from CPU memory ({opt})", "zh": "所有层都在 CPU 内存中运行（{opt}）"},
    "s_util": {"en": "let vLLM take {util} of GPU memory ({opt})",
               "zh": "让 vLLM 使用 {util} 的显存（{opt}）"},
    "s_eager": {"en": "skip CUDA graphs ({opt})", "zh": "不使用 CUDA Graph（{opt}）"},
    "s_seqs": {"en": "fewer sequences per step ({opt}) and a smaller profile batch",
               "zh": "减少每步并发序列（{opt}）并缩小预分析批次"},
    "s_max_len": {"en": "lower {opt} to {seq}", "zh": "将 {opt} 降到 {seq}"},
    "fit_max_concurrency": {"en": "concurrent sequences at max_model_len {n} (vLLM KV pool): {c}",
                            "zh": "max_model_len 为 {n} 时可同时服务的序列数（vLLM KV 池）：{c}"},
    "s_combo": {"en": "combine: {changes}", "zh": "组合调整：{changes}"},
    "s_gpus": {"en": "use {n:~GPU~GPUs} ({parallelism})", "zh": "使用 {n} 张 GPU（{parallelism}）"},
    "cost_none": {"en": "no cost", "zh": "无代价"},
    "cost_speed": {"en": "slower", "zh": "更慢"},
    "cost_quality": {"en": "may change quality", "zh": "可能影响质量"},
    "cost_hardware": {"en": "more hardware", "zh": "需要更多硬件"},
    "fit_header": {"en": "{model} on {gpu} ({usable} usable): {verdict}, needs {total}, headroom {headroom}",
                   "zh": "{model} 在 {gpu}（可用 {usable}）上：{verdict}，需要 {total}，余量 {headroom}"},
    "fit_header_budget": {
        "en": "{model} on {gpu} ({usable} usable, vLLM's {util}: {budget}): {verdict}, needs {total}, headroom "
              "{headroom}",
        "zh": "{model} 在 {gpu}（可用 {usable}，vLLM 占 {util}：{budget}）上：{verdict}，需要 {total}，余量 {headroom}",
    },
    "list_sep": {"en": ", ", "zh": "，"},
    "fit_ladder": {"en": "every GGUF quantization at context {seq} (llama.cpp):",
                   "zh": "上下文 {seq} 下的全部 GGUF 量化类型（llama.cpp）："},
    "fit_ladder_full": {"en": "most bits with every layer on the GPU ({quant}):",
                        "zh": "全部层放在 GPU 上时位数最高的类型（{quant}）："},
    "fit_ladder_partial": {"en": "more bits with part of the layers on the GPU ({quant}):",
                           "zh": "部分层放在 GPU 上、位数更高的类型（{quant}）："},
    "lh_type": {"en": "type", "zh": "类型"},
    "lh_bpw": {"en": "bits/weight", "zh": "位/权重"},
    "lh_gpu": {"en": "on the GPU", "zh": "GPU 上"},
    "lh_ctx": {"en": "max ctx", "zh": "最长上下文"},
    "lh_quality": {"en": "quality (llama-quantize)", "zh": "质量（llama-quantize）"},
    "lr_full": {"en": "all, {total}", "zh": "全部层，{total}"},
    "lr_ngl": {"en": "-ngl {n}", "zh": "-ngl {n}"},
    "lr_cpu": {"en": "CPU only (-ngl 0)", "zh": "仅 CPU（-ngl 0）"},
    "lr_no": {"en": "does not fit", "zh": "放不下"},
    "lq_reference": {"en": "reference (32-bit)", "zh": "基准（32 位）"},
    "lq_ternary": {"en": "ternary: for ternary-trained models", "zh": "三值：仅适用于三值训练的模型"},
    "lq_ppl": {"en": "{ppl} ppl @ {model}", "zh": "困惑度 {ppl}（{model}）"},
    "lq_ppl_imatrix": {"en": "{ppl} ppl @ {model}; needs imatrix", "zh": "困惑度 {ppl}（{model}）；需 imatrix"},
    "lq_imatrix": {"en": "no ppl given; needs imatrix", "zh": "未给出困惑度；需 imatrix"},
    "lq_unmeasured": {"en": "no ppl given", "zh": "未给出困惑度"},
    "fit_assumed": {"en": "Assumed: {what}", "zh": "假设：{what}"},
    "fa_task_inference": {"en": "inference", "zh": "推理"},
    "fa_task_finetune": {"en": "fine-tuning ({method})", "zh": "微调（{method}）"},
    "fa_task_pretrain": {"en": "pre-training", "zh": "预训练"},
    "fa_vllm": {"en": "max_model_len {seq}, max_num_seqs {seqs}, gpu_memory_utilization {util}",
                "zh": "max_model_len {seq}，max_num_seqs {seqs}，gpu_memory_utilization {util}"},
    "fa_seq": {"en": "sequence {seq}", "zh": "序列 {seq}"},
    "fa_seq_default": {"en": "sequence {seq} (default; {o_seq})", "zh": "序列 {seq}（默认；{o_seq}）"},
    "fa_batch": {"en": "micro-batch {batch} × accumulation {accum}", "zh": "微批 {batch} × 累积 {accum}"},
    "fa_batch_inf": {"en": "batch {batch}", "zh": "批大小 {batch}"},
    "fa_precision_pure": {"en": "pure {dtype}{quant}", "zh": "纯 {dtype}{quant}"},
    "fa_precision_mixed": {"en": "mixed precision (fp32 master, {dtype} compute{quant})",
                           "zh": "混合精度（fp32 主权重，{dtype} 计算{quant}）"},
    "fa_precision_fp32": {"en": "fp32{quant}", "zh": "全 fp32{quant}"},
    "fa_precision_deepspeed": {"en": "DeepSpeed mixed precision ({dtype}{quant}, fp32 master)",
                               "zh": "DeepSpeed 混合精度（{dtype}{quant}，fp32 主权重）"},
    "fa_precision_lora": {"en": "frozen base {dtype}{quant}", "zh": "冻结基座 {dtype}{quant}"},
    "fa_optimizer": {"en": "optimizer {optimizer}", "zh": "优化器 {optimizer}"},
    "fa_ckpt_on": {"en": "gradient checkpointing on", "zh": "梯度检查点开启"},
    "fa_ckpt_on_default": {"en": "gradient checkpointing on (the framework's default; {o_off})",
                           "zh": "梯度检查点开启（框架默认；{o_off}）"},
    "fa_ckpt_off": {"en": "gradient checkpointing off ({o_on})", "zh": "梯度检查点关闭（{o_on}）"},
    "fa_framework_hf": {"en": "Hugging Face Trainer / TRL ({o_framework})", "zh": "Hugging Face Trainer / TRL（{o_framework}）"},
    "fa_framework_pytorch": {"en": "a plain PyTorch loop ({o_framework})", "zh": "普通 PyTorch 训练循环（{o_framework}）"},
    "fa_framework_torchtune": {"en": "torchtune's recipes ({o_framework})", "zh": "torchtune 配方（{o_framework}）"},
    "fa_framework_litgpt": {"en": "LitGPT's recipes ({o_framework})", "zh": "LitGPT 配方（{o_framework}）"},
    "fa_dtype": {"en": "weights {dtype}, KV cache {kv}", "zh": "权重 {dtype}，KV 缓存 {kv}"},
    "fa_engine": {"en": "engine {engine}", "zh": "引擎 {engine}"},
    "fit_max_batch": {"en": "largest batch that fits: {n}", "zh": "可容纳的最大批大小：{n}"},
    "fit_max_seq": {"en": "longest context that fits: {n:~token~tokens}{limit}", "zh": "可容纳的最长上下文：{n} 个 token{limit}"},
    "fit_max_seq_none": {"en": "longest context that fits: none", "zh": "可容纳的最长上下文：无"},
    "fit_seq_limit": {"en": " (the model's limit)", "zh": "（模型上限）"},
    "fit_none": {"en": "none", "zh": "无"},
    "fit_min_gpus": {"en": "fewest GPUs of this kind: {n} ({parallelism})",
                     "zh": "所需此型号 GPU 的最少数量：{n}（{parallelism}）"},
    "fit_min_gpus_one": {"en": "fewest GPUs of this kind: 1", "zh": "所需此型号 GPU 的最少数量：1"},
    "fit_min_gpus_none": {"en": "no number of these GPUs fits with {parallelism}",
                          "zh": "使用 {parallelism} 时，任意数量的此型号 GPU 都放不下"},
    "fit_min_gpus_na": {"en": "fewest GPUs: llama.cpp's multi-GPU layer split is not modelled yet",
                        "zh": "最少 GPU 数量：尚未建模 llama.cpp 的多卡按层切分"},
    "fit_suggestions": {"en": "What to change (re-estimated):", "zh": "可以这样调整（均已重新估算）："},
    "fit_suggestion_line": {"en": "{desc}: {total} ({saves} less, {cost}){fits}",
                            "zh": "{desc}：{total}（减少 {saves}，{cost}）{fits}"},
    "fit_suggestion_line_fitted": {
        "en": "{desc}: {total} ({saves} less with one cache model for both, {cost}){fits}",
        "zh": "{desc}：{total}（两者按同一缓存模型计算，减少 {saves}，{cost}）{fits}"},
    "fit_fits_mark": {"en": " → fits", "zh": " → 可以运行"},
    "fit_suggestion_command": {"en": "to check: {command}", "zh": "验证命令：{command}"},
    # ---- vramscope serve ----
    "serve_unknown_model": {
        "en": "model '{name}' is not in the catalog (the server takes catalog names, never file paths); "
              "did you mean: {suggestions}?",
        "zh": "模型 '{name}' 不在内置目录中（服务器只接受目录中的模型名称，从不读取文件路径）；您是否想找：{suggestions}？",
    },
    "serve_unknown_model_nosuggest": {
        "en": "model '{name}' is not in the catalog (the server takes catalog names, never file paths); "
              "run 'vramscope models' to list the catalog, or give params=7B",
        "zh": "模型 '{name}' 不在内置目录中（服务器只接受目录中的模型名称，从不读取文件路径）；"
              "运行 'vramscope models' 查看目录，或使用 params=7B",
    },
    "serve_no_model": {
        "en": "model: give a catalog name (model=llama-3-8b) or a parameter count (params=7B), "
              "or POST a config.json",
        "zh": "model：请给出目录中的模型名称（model=llama-3-8b）或参数量（params=7B），或用 POST 上传 config.json",
    },
    "serve_unknown_param": {
        "en": "{field}: not a parameter of {page}; did you mean: {suggestions}?",
        "zh": "{field}：{page} 没有这个参数；您是否想用：{suggestions}？",
    },
    "serve_unknown_param_nosuggest": {
        "en": "{field}: not a parameter of {page}; parameters: {allowed}",
        "zh": "{field}：{page} 没有这个参数；可用参数：{allowed}",
    },
    "serve_repeated_param": {
        "en": "{field}: given more than once; give it once",
        "zh": "{field}：重复给出；请只给一次",
    },
    "serve_query_too_large": {
        "en": "query: larger than {limit}; give fewer or shorter parameters",
        "zh": "查询：超过 {limit}；请减少参数或缩短参数值",
    },
    "serve_body_too_large": {
        "en": "request body: larger than {limit}, the most read of this kind of upload: {kind}",
        "zh": "请求体：超过 {limit}，这类上传最多读取这么多：{kind}",
    },
    "serve_upload_without_body": {
        "en": "{field}: names what the request body is, but this request has none; send the file as the body "
              "of a POST",
        "zh": "{field}：说明的是请求体的类型，但这个请求没有请求体；请用 POST 把文件作为请求体发送",
    },
    "web_the_deepspeed": {"en": "the uploaded DeepSpeed config", "zh": "上传的 DeepSpeed 配置"},
    "web_the_accelerate": {"en": "the uploaded accelerate config", "zh": "上传的 accelerate 配置"},
    "web_kind_config": {"en": "config.json (a model not in the catalog)", "zh": "config.json（目录中没有的模型）"},
    "web_kind_gguf": {"en": "GGUF file (its header is read)", "zh": "GGUF 文件（读取其文件头）"},
    "web_kind_deepspeed": {"en": "DeepSpeed config (JSON)", "zh": "DeepSpeed 配置（JSON）"},
    "web_kind_accelerate": {"en": "accelerate config (YAML: FSDP or DeepSpeed)",
                            "zh": "accelerate 配置（YAML：FSDP 或 DeepSpeed）"},
    "serve_headers_too_large": {
        "en": "request line and headers: larger than {limit}, or more than {count} headers",
        "zh": "请求行与请求头：超过 {limit}，或请求头多于 {count} 个",
    },
    "serve_too_many_params": {
        "en": "query: more than {limit} parameters",
        "zh": "查询：参数超过 {limit} 个",
    },
    "serve_both_model_and_body": {
        "en": "model: give either model= or a model file (config.json, GGUF) as the request body, not both",
        "zh": "model：请给出 model= 或把模型文件（config.json、GGUF）作为请求体上传，不能同时给出",
    },
    "serve_not_found": {
        "en": "no such page: {path}; the pages are /, /api/estimate and /api/fit",
        "zh": "没有这个页面：{path}；可用页面为 /、/api/estimate 和 /api/fit",
    },
    "serve_method": {
        "en": "method {method} is not allowed here; use {allowed}",
        "zh": "此处不允许 {method} 方法；请使用 {allowed}",
    },
    "serve_timeout": {
        "en": "the request took longer than {seconds} s and was stopped",
        "zh": "请求超过 {seconds} 秒，已停止",
    },
    "serve_bad_request": {
        "en": "not a valid HTTP request (request line and headers at most {limit})",
        "zh": "不是有效的 HTTP 请求（请求行与请求头最多 {limit}）",
    },
    "serve_request_timeout": {
        "en": "the request did not arrive within {seconds} s",
        "zh": "请求未在 {seconds} 秒内到达",
    },
    "serve_busy": {
        "en": "the server has too many open connections; try again shortly",
        "zh": "服务器打开的连接过多；请稍后重试",
    },
    "serve_internal": {
        "en": "internal error: {kind} (please report it)",
        "zh": "内部错误：{kind}（请报告此问题）",
    },
    "serve_needs_web": {
        "en": "serve: needs the web extra; install it with: pip install 'vramscope[web]'",
        "zh": "serve：需要 web 扩展；请安装：pip install 'vramscope[web]'",
    },
    "serve_bad_host": {
        "en": "--host: '{host}' is not a host name or address ({detail})",
        "zh": "--host：'{host}' 不是有效的主机名或地址（{detail}）",
    },
    "serve_cannot_listen": {
        "en": "--host/--port: cannot listen on {host}:{port} ({detail})",
        "zh": "--host/--port：无法在 {host}:{port} 上监听（{detail}）",
    },
    "serve_public_warning": {
        "en": "warning: --host {host} makes the server reachable from other machines; it has no authentication "
              "and no TLS, so put it behind a reverse proxy or keep the default 127.0.0.1",
        "zh": "警告：--host {host} 会让其他机器也能访问此服务器；它没有身份验证也没有 TLS，"
              "请放在反向代理之后，或保持默认的 127.0.0.1",
    },
    "serve_listening": {
        "en": "vramscope: serving on http://{host}:{port}/ (Ctrl+C to stop)",
        "zh": "vramscope：正在 http://{host}:{port}/ 上提供服务（按 Ctrl+C 停止）",
    },
    # ---- catalog listing ----
    "models_header": {"en": "{n:~model~models} in the catalog", "zh": "内置目录共 {n} 个模型"},
    "models_none": {"en": "no catalog model matches '{query}'", "zh": "目录中没有匹配 '{query}' 的模型"},
    "vh_record": {"en": "record", "zh": "记录"},
    "vh_value": {"en": "value", "zh": "实测值"},
    "vh_analytic": {"en": "analytic", "zh": "解析估算"},
    "vh_error": {"en": "error", "zh": "误差"},
    "vh_trace": {"en": "trace", "zh": "trace 估算"},
    "vh_skipped": {"en": "skipped ({n})", "zh": "已跳过（{n}）"},
    "vh_metric": {"en": "metric", "zh": "指标"},
    "vh_in_range": {"en": "in range", "zh": "在范围内"},
    "vh_yes": {"en": "yes", "zh": "是"},
    "vh_no": {"en": "no", "zh": "否"},
    "vh_of": {"en": "{k} of {n}", "zh": "{n} 条中 {k} 条"},
    "vh_kind": {"en": "kind", "zh": "类别"},
    "vh_records": {"en": "records", "zh": "记录数"},
    "vh_median": {"en": "median |error|", "zh": "误差绝对值中位数"},
    "vh_worst": {"en": "worst error", "zh": "最大误差"},
    "vh_trace_median": {"en": "trace median", "zh": "trace 中位数"},
    "vh_trace_worst": {"en": "trace worst", "zh": "trace 最大误差"},
    "validate_legend": {"en": "error = (estimate − measured) / measured: + overestimates, − underestimates",
                        "zh": "误差 =（估算 − 实测）/ 实测：+ 为高估，− 为低估"},
    "list_sep_semi": {"en": "; ", "zh": "；"},
    "lh_id": {"en": "id", "zh": "标识"},
    "lh_alias": {"en": "alias", "zh": "别名"},
    "lh_model_type": {"en": "type", "zh": "架构"},
    "lh_params": {"en": "params", "zh": "参数量"},
    "models_active": {"en": " ({active} active)", "zh": "（激活 {active}）"},
    "lh_name": {"en": "name", "zh": "名称"},
    "lh_memory": {"en": "memory", "zh": "显存"},
    "lh_usable": {"en": "usable", "zh": "可用"},
    "gpus_header": {"en": "{n:~GPU~GPUs} in the catalog", "zh": "GPU 目录共 {n} 款"},
    "gpu_size_note": {
        "en": "note: the GPU size {text} is read as {gib} GiB ({bytes} bytes): GPU makers' GB are binary (a "
              "\"24 GB\" card has 24 GiB), so GB, G and GiB mean the same; give plain bytes for any other size",
        "zh": "注：GPU 容量 {text} 按 {gib} GiB（{bytes} 字节）计：显卡厂商的 GB 是二进制单位（标称 24 GB 的显卡有 "
              "24 GiB），所以 GB、G 与 GiB 含义相同；其他容量请直接给出字节数",
    },
}


def register(messages: dict[str, dict[str, str]]) -> None:
    """Add a module's own messages (kept beside the code that emits them) to the table; a key means one sentence
    everywhere, so a key registered twice with other words is a bug."""
    for key, entry in messages.items():
        if key in MESSAGES and MESSAGES[key] != entry:
            raise AssertionError(f"message {key!r} registered twice with different words")
        MESSAGES[key] = entry


def detect_lang(explicit: str | None = None) -> str:
    """Language from ``--lang``, ``VRAMSCOPE_LANG``, then the locale; ``en`` when nothing says ``zh``."""
    for value in (explicit, os.environ.get("VRAMSCOPE_LANG"), os.environ.get("LC_ALL"),
                  os.environ.get("LC_MESSAGES"), os.environ.get("LANG")):
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


def _number(value: object) -> float:
    try:
        return float(str(value).replace(",", ""))
    except ValueError:
        return float("nan")


def ordinal(n: object) -> str:
    """``2`` -> ``2nd``, ``11`` -> ``11th``, ``21`` -> ``21st`` (English ordinals)."""
    v = int(_number(n)) if _number(n) == _number(n) else 0
    suffix = "th" if v % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(v % 10, "th")
    return f"{n}{suffix}"


class _Formatter(string.Formatter):
    """Two format specs for English words: ``{n:~sequence~sequences}`` gives "1 sequence" / "2 sequences" (the
    number, then the noun it takes), ``{n:th}`` gives "2nd". Chinese needs neither: "{n} 条序列", "每 {n} 层"."""

    def format_field(self, value: object, format_spec: str) -> str:
        if format_spec.startswith("~"):
            one, _, many = format_spec[1:].partition("~")
            return f"{value} {one if _number(value) == 1 else many}"
        if format_spec == "th":
            return ordinal(value)
        return super().format_field(value, format_spec)


_FORMATTER = _Formatter()


def t(key: str, lang: str = "en", /, **params: object) -> str:
    """The message ``key`` in ``lang`` (falling back to English), formatted with ``params``."""
    entry = MESSAGES.get(key)
    if entry is None:
        return key
    text = entry.get(lang) or entry["en"]
    if not params:
        return text
    if ":~" in text or ":th}" in text:
        return _FORMATTER.vformat(text, (), params)
    return text.format(**params)
