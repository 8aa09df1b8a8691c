"""Dropout with a cheaper mask on CPUs: there torch's `bernoulli_` draws one random number per element, one
after the other, from its generator (1.9 ms for a 512x512 mask on an AMD EPYC and on an Intel Xeon with MKL
alike, against 0.33 ms here), and the two dropout layers of the dense recipe took about a third of its
training step.
Here each keep/drop decision is 16 random bits, four to one 64-bit draw of the same seeded generator: the
same layer (inverted scaling, identity in eval mode, nothing in the state dict), with p rounded to a
multiple of 1/65536 (0.2 drops 0.19999695 of the elements) and the kept ones scaled by 1 / (1 - that p),
so the expected output is the input. README, Speed, has the measurement."""

from __future__ import annotations

import torch
from torch import nn

LEVELS = 1 << 16  # one 16-bit field per element
INT64_MIN = -(1 << 63)  # random_(INT64_MIN, None): every int64 equally likely, 64 random bits a draw


def kept(fields: torch.Tensor, p: float) -> torch.Tensor:
    """int16 fields, uniform over [-32768, 32767] -> True for a share 1 - round(p * 65536) / 65536 of them."""
    return fields >= round(p * LEVELS) - LEVELS // 2


def keep_mask(shape: torch.Size, p: float, device: torch.device) -> torch.Tensor:
    """True where an element is kept; each element's field is 16 bits of a 64-bit draw, in order."""
    count = shape.numel()
    bits = torch.empty((count + 3) // 4, dtype=torch.int64, device=device).random_(INT64_MIN, None)
    return kept(bits.view(torch.int16)[:count].view(shape), p)


class Dropout(nn.Dropout):
    """nn.Dropout (a subclass: same `p`, same repr), whose mask costs a quarter of the random draws on a
    CPU. Everywhere else it is torch's own: on GPUs (one fused kernel), under
    torch.compile, torch.export and fx tracing (which know torch's op), in place, and for a p that
    rounds to 0 or 1."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        dropped = round(self.p * LEVELS) / LEVELS
        if not self.training or self.inplace or not 0 < dropped < 1 or not self._cheaper_here(input):
            return super().forward(input)
        return input * keep_mask(input.shape, self.p, input.device) * (1 / (1 - dropped))

    @staticmethod
    def _cheaper_here(input: torch.Tensor) -> bool:
        traced = isinstance(input, torch.fx.Proxy) or torch.compiler.is_compiling() or torch.compiler.is_exporting()
        return not traced and input.device.type == "cpu"
