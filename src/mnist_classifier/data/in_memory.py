"""MNIST held as one uint8 tensor: a whole batch is one indexing op, normalised with tensor ops."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N, 28, 28] -> float [N, 1, 28, 28] with MNIST's mean/std, the networks' input contract."""
    return images.unsqueeze(1).float().div_(255.0).sub_(MNIST_MEAN).div_(MNIST_STD)


def normalize_pixels(pixels: torch.Tensor) -> torch.Tensor:
    """Float pixels in [0, 1] (N, 1, 28, 28) -> the networks' input (MNIST's mean/std)."""
    return (pixels - MNIST_MEAN) / MNIST_STD


def denormalize(batch: torch.Tensor) -> torch.Tensor:
    """Inverse of `normalize`, to [0, 1] pixels for figures."""
    return (batch * MNIST_STD + MNIST_MEAN).clamp(0.0, 1.0)


class InMemoryMNIST(Dataset):
    """Images and labels as two tensors (optionally on the GPU).

    DataLoader calls `__getitems__` with the sampler's whole batch of indices, so there is no
    per-image Python work and no PIL; samplers (including Lightning's DistributedSampler) still
    decide which indices each batch gets.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        if images.dtype != torch.uint8 or images.ndim != 3 or len(images) != len(labels):
            raise ValueError("InMemoryMNIST expects uint8 images [N, H, W] and N labels")
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return normalize(self.images[index : index + 1])[0], self.labels[index]

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.as_tensor(indices, device=self.images.device)
        return normalize(self.images[index]), self.labels[index]

    def to(self, device: torch.device | str) -> InMemoryMNIST:
        return InMemoryMNIST(self.images.to(device), self.labels.to(device))


def keep_batch(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """collate_fn for `__getitems__`: the batch is already stacked."""
    return batch
