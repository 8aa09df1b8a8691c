"""Convolutional network: [Conv -> (BatchNorm) -> ReLU -> MaxPool] x k -> (hidden Linear) -> Linear.

`pool_first` pools straight after the convolution ([Conv -> MaxPool -> (BatchNorm) -> ReLU]): max-pooling
commutes with ReLU, so only the normalisation sees other numbers, and BatchNorm and ReLU then work on a
quarter of the values (with 2x2 pools), which is much of a CPU training step."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mnist_classifier.errors import ArgumentError
from mnist_classifier.models.fast_dropout import Dropout
from mnist_classifier.models.validation import dropout_probability, positive_ints


class ConvNet(nn.Module):
    """Returns logits, to be trained with cross-entropy. `padding="valid"` convolutions shrink the
    image by kernel-1 (about half the FLOPs of "same", which keeps the size and needs odd kernels)."""

    def __init__(
        self,
        channels: Sequence[int] = (24, 32),
        kernel_sizes: Sequence[int] = (5, 3),
        pool_sizes: Sequence[int] = (2, 2),
        padding: str = "valid",
        batch_norm: bool = True,
        hidden_size: int = 256,
        dropout: float = 0.0,
        pool_first: bool = False,
        image_size: int = 28,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        channels = positive_ints("channels", channels, allow_empty=False)
        kernel_sizes = positive_ints("kernel_sizes", kernel_sizes)
        pool_sizes = positive_ints("pool_sizes", pool_sizes)
        dropout = dropout_probability("dropout", dropout)
        if not len(channels) == len(kernel_sizes) == len(pool_sizes):
            raise ArgumentError(
                "channels",
                lambda key: (
                    f"{key('channels')}, kernel_sizes and pool_sizes need one entry per conv block; got "
                    f"{len(channels)}, {len(kernel_sizes)} and {len(pool_sizes)} entries."
                ),
            )
        if not isinstance(pool_first, bool):
            raise ArgumentError(
                "pool_first", lambda key: f"{key('pool_first')} must be true or false, got {pool_first!r}."
            )
        if padding not in ("valid", "same"):
            raise ArgumentError("padding", lambda key: f"{key('padding')} must be 'valid' or 'same', got {padding!r}.")
        if padding == "same" and any(k % 2 == 0 for k in kernel_sizes):
            raise ArgumentError(
                "kernel_sizes",
                lambda key: f"{key('kernel_sizes')} must be odd with padding='same', got {kernel_sizes}.",
            )
        if not isinstance(hidden_size, int) or hidden_size < 0:
            raise ArgumentError(
                "hidden_size",
                lambda key: f"{key('hidden_size')} must be an integer >= 0 (0: no hidden layer), got {hidden_size!r}.",
            )
        blocks: list[nn.Module] = []
        size, in_channels = image_size, 1
        for out_channels, kernel, pool in zip(channels, kernel_sizes, pool_sizes, strict=True):
            pad = kernel // 2 if padding == "same" else 0
            pooling = [nn.MaxPool2d(pool)] if pool > 1 else []
            blocks.append(nn.Conv2d(in_channels, out_channels, kernel, padding=pad, bias=not batch_norm))
            blocks += pooling if pool_first else []
            blocks += [nn.BatchNorm2d(out_channels)] if batch_norm else []
            blocks.append(nn.ReLU(inplace=True))
            blocks += [] if pool_first else pooling
            size = (size + 2 * pad - kernel + 1) // pool
            in_channels = out_channels
        if size < 1:
            raise ArgumentError(
                "pool_sizes",
                lambda key: f"{key('pool_sizes')} {pool_sizes} shrink the {image_size}x{image_size} image to nothing.",
            )
        head: list[nn.Module] = [nn.Flatten(), Dropout(dropout)]
        width = in_channels * size * size
        if hidden_size:
            head += [nn.Linear(width, hidden_size), nn.ReLU(inplace=True), Dropout(dropout)]
            width = hidden_size
        head.append(nn.Linear(width, num_classes))
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(*head)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))
