"""The training sampler: DistributedSampler's shuffling (one permutation per epoch from seed + epoch, this
process's share of it), plus a start position, so a run resumed mid-epoch gets exactly the batches the
interrupted run had left. Used with one process too; Lightning leaves a DistributedSampler in place."""

from __future__ import annotations

from collections.abc import Iterator

from torch.utils.data import Dataset, DistributedSampler


class ResumableSampler(DistributedSampler):
    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, seed: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=False)
        self.start = 0

    def start_at(self, epoch: int, start: int) -> None:
        """The next iteration is `epoch`'s permutation from position `start` (then the next epoch from 0)."""
        self.set_epoch(epoch)
        self.start = start

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        start, self.start = self.start, 0
        return iter(indices[start:])
