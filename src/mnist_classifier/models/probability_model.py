"""What an exported model is: float pixels in [0, 1], shape (N, 1, 28, 28), white digit on black, in; the
class probabilities (and the logits) out. MNIST's normalisation is inside, so users need no constants."""

from __future__ import annotations

import torch
from torch import nn

from mnist_classifier.data.in_memory import normalize_pixels


class ProbabilityModel(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # the dense net's log-probabilities are logits too: their softmax is the same distribution
        logits = self.net(normalize_pixels(pixels)).float()
        return logits.softmax(dim=1), logits
