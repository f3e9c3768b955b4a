"""What lm-eval asks of a model under data parallelism (`accelerate launch`, torchrun): accelerate-style
collectives over torch.distributed, and the merge of every rank's sink ledger.

Each rank scores a share of the requests; lm-eval gathers the scores itself, and the sink metrics
of the share follow by `merge_ledgers`, so that every rank's results hold every request's metrics.
On one process every call here is a no-op.
"""

from __future__ import annotations

import torch

from sinkbench.harness.ledger import SinkLedger


class DataParallel:
    """A mixin for an lm-eval LM (before TemplateLM in the bases, whose versions it replaces) that knows its
    `rank` and `world_size`."""

    rank: int
    world_size: int

    def all_gather(self, tensor):
        """Every rank's tensor, concatenated (a number becomes one entry per rank), as accelerate gathers."""
        if self.world_size <= 1:
            return tensor
        tensor = tensor.reshape(1) if tensor.ndim == 0 else tensor
        parts = [torch.zeros_like(tensor) for _ in range(self.world_size)]
        torch.distributed.all_gather(parts, tensor)
        return torch.cat(parts)

    def gather_object(self, obj, dst=0):
        if self.world_size <= 1:
            return [obj]
        gathered = [None] * self.world_size if self.rank == dst else None
        torch.distributed.gather_object(obj=obj, object_gather_list=gathered, dst=dst)
        return gathered

    def barrier(self) -> None:
        if self.world_size > 1:
            torch.distributed.barrier()

    def merge_ledgers(self, ledger: SinkLedger) -> None:
        """Every rank scored a share: merge all ranks' ledger entries and first-token counts into each rank's."""
        if self.world_size <= 1:
            return
        gathered: list = [None] * self.world_size
        torch.distributed.all_gather_object(gathered, (ledger.entries, dict(ledger.first_tokens)))
        ledger.merge([entries for entries, _ in gathered])
        ledger.first_tokens.clear()
        for _, counts in gathered:
            ledger.first_tokens.update(counts)
