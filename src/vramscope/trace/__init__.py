"""Trace and measure: run the real model code to get tensor-level peaks.

* ``trace``: builds the transformers model (and peft adapters) on fake tensors on the CPU, runs the workload
  under a dispatch-level tracker of live tensor bytes (rounded as the CUDA caching allocator rounds), and
  reports the peak per phase and category. No real memory is used for the model.
* ``measure``: runs the same workload for real on a CUDA GPU and reads torch's and NVML's counters.

Needs the ``trace`` extra (torch, transformers, peft); everything here imports them lazily.
"""
