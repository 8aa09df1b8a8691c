"""Fully connected network: Flatten -> [Linear -> ReLU -> Dropout] x k -> Linear -> log_softmax."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mnist_classifier.models.fast_dropout import Dropout
from mnist_classifier.models.validation import dropout_probability, positive_ints


class DenseNet(nn.Module):
    """Returns log-probabilities, to be trained with NLL loss."""

    def __init__(
        self,
        hidden_sizes: Sequence[int] = (512, 512),
        dropout: float = 0.2,
        input_size: int = 28 * 28,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        hidden_sizes = positive_ints("hidden_sizes", hidden_sizes)
        dropout = dropout_probability("dropout", dropout)
        layers: list[nn.Module] = [nn.Flatten()]
        width = input_size
        for size in hidden_sizes:
            layers += [nn.Linear(width, size), nn.ReLU(inplace=True), Dropout(dropout)]
            width = size
        layers += [nn.Linear(width, num_classes), nn.LogSoftmax(dim=1)]
        self.layers = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.layers(images)
