"""Data-parallel strategies as one small enum, so the estimator asks what a strategy shards, not its name.

=========  ==========  =========  ===============  =====
strategy   parameters  gradients  optimizer states  stage
=========  ==========  =========  ===============  =====
none       –           –          –                0
tp         –           –          –                0     (inference: every GPU a tensor-parallel rank)
ddp        –           –          –                0     (DDP: replicas, plus its reducer buckets)
zero1      –           –          sharded          1     (DeepSpeed ZeRO, Rajbhandari et al. 2020 §5)
zero2      –           sharded    sharded          2
zero3      sharded     sharded    sharded          3
fsdp       sharded     sharded    sharded          3     (PyTorch FSDP full shard, v1 or v2)
=========  ==========  =========  ===============  =====

The workload keeps the strategy's name (its JSON output shows it); :attr:`Workload.strategy` reads it as this.
"""

from __future__ import annotations

from enum import Enum


class Strategy(str, Enum):
    NONE = "none"
    TP = "tp"
    FSDP = "fsdp"
    DDP = "ddp"
    ZERO1 = "zero1"
    ZERO2 = "zero2"
    ZERO3 = "zero3"

    @property
    def is_zero(self) -> bool:
        """DeepSpeed ZeRO (stages 1-3)."""
        return self in (Strategy.ZERO1, Strategy.ZERO2, Strategy.ZERO3)

    @property
    def is_fsdp(self) -> bool:
        return self is Strategy.FSDP

    @property
    def is_ddp(self) -> bool:
        return self is Strategy.DDP

    @property
    def is_tensor_parallel(self) -> bool:
        return self is Strategy.TP

    @property
    def stage(self) -> int:
        """The ZeRO stage the strategy amounts to (FSDP full shard: 3; replicas: 0)."""
        return {Strategy.ZERO1: 1, Strategy.ZERO2: 2, Strategy.ZERO3: 3, Strategy.FSDP: 3}.get(self, 0)

    @property
    def shards_optimizer(self) -> bool:
        return self.stage >= 1

    @property
    def shards_grads(self) -> bool:
        return self.stage >= 2

    @property
    def shards_params(self) -> bool:
        return self.stage >= 3


#: the strategies that train over several data-parallel ranks
TRAINING_STRATEGIES = tuple(s.value for s in (Strategy.FSDP, Strategy.DDP, Strategy.ZERO1, Strategy.ZERO2,
                                              Strategy.ZERO3))
