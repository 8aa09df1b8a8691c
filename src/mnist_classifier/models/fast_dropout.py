"""Dropout with a cheaper mask: on CPU, torch's `bernoulli_` draws one random number per element from its
single-threaded generator, and the two dropout layers of the dense recipe took about a third of its
training step. Here each keep/drop decision is 16 random bits, four to one 64-bit draw of the same seeded
generator: the same layer (inverted scaling, identity in eval mode, nothing in the state dict), with
p rounded to a multiple of 1/65536 (0.2 drops 0.19999695 of the elements) and the kept ones scaled by
1 / (1 - that p), so the expected output is the input. README, Speed, has the measurement."""

from __future__ import annotations

import torch
from torch import nn

LEVELS = 1 << 16  # one 16-bit field per element
# every int64 but the largest: 64 random bits a draw. (random_(-2**63, None) draws all of them, but its
# overload is named `from`, a Python keyword, and torch.export's generated code then fails to compile.)
INT64_LOW, INT64_HIGH = -(1 << 63), (1 << 63) - 1


def keep_mask(shape: torch.Size, p: float, device: torch.device) -> torch.Tensor:
    """True where an element is kept, each with probability 1 - round(p * 65536) / 65536."""
    count = shape.numel()
    bits = torch.randint(INT64_LOW, INT64_HIGH, ((count + 3) // 4,), dtype=torch.int64, device=device)
    fields = bits.view(torch.int16)[:count].view(shape)  # uniform over [-32768, 32767]
    return fields >= round(p * LEVELS) - LEVELS // 2


class Dropout(nn.Dropout):
    """nn.Dropout (a subclass: same `p`, same repr) whose mask on CPU costs a quarter of the random draws."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if input.device.type != "cpu" or _traced():  # torch's own: GPUs draw masks in one fused kernel, and
            return super().forward(input)  # torch.compile / torch.export know its op (dynamic batch sizes too)
        dropped = round(self.p * LEVELS) / LEVELS
        if not self.training or dropped == 0:
            return input
        if dropped == 1:
            return input * 0
        return input * keep_mask(input.shape, self.p, input.device) * (1 / (1 - dropped))


def _traced() -> bool:
    return torch.compiler.is_compiling() or torch.compiler.is_exporting() or torch.jit.is_tracing()
