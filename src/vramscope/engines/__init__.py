"""Inference engine profiles: what each engine really allocates, read from its source; one protocol
(``base.py``: :class:`~vramscope.engines.base.Engine`, the ``ENGINES`` registry), one file per engine.

* ``transformers``: ``generate()`` with a dynamic cache (``transformers.py``);
* ``vllm``: preallocation of ``gpu_memory_utilization`` × GPU memory, the KV-cache pool left over;
* ``llama.cpp``: model, KV and compute buffers per device, partial offload with ``-ngl``.
"""
