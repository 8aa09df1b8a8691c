"""models/fast_dropout.py: the same layer as nn.Dropout (rate, scaling, gradient, eval, seeding), its
mask drawn 16 bits per element."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mnist_classifier.models.fast_dropout import LEVELS, Dropout, keep_mask

COUNT = 1 << 20


def within_sigmas(observed: float, expected: float, variance: float, count: int, sigmas: float = 6.0) -> bool:
    return abs(observed - expected) <= sigmas * math.sqrt(variance / count)


@pytest.mark.parametrize("p", [0.1, 0.2, 0.5, 0.9])
def test_drops_the_rate_asked_for_and_keeps_the_mean(p: float) -> None:
    torch.manual_seed(0)
    out = Dropout(p).train()(torch.ones(COUNT))
    dropped = round(p * LEVELS) / LEVELS
    assert abs(dropped - p) <= 0.5 / LEVELS
    kept = out != 0
    assert within_sigmas(kept.float().mean().item(), 1 - p, p * (1 - p), COUNT)
    assert torch.all(out[kept] == 1 / (1 - dropped))  # inverted dropout: the kept ones scaled up
    assert within_sigmas(out.double().mean().item(), 1.0, p / (1 - p), COUNT)  # E[out] = input


def test_each_element_is_its_own_draw() -> None:
    """Four fields come from one 64-bit draw: neighbours (in the same draw and across draws) are independent."""
    torch.manual_seed(1)
    keep = keep_mask(torch.Size([COUNT]), 0.5, torch.device("cpu")).view(-1, 4).float()
    for a, b in [(0, 1), (1, 2), (2, 3), (0, 3)]:
        assert within_sigmas((keep[:, a] * keep[:, b]).mean().item(), 0.25, 0.25 * 0.75, COUNT // 4)
    across = (keep[:-1, 3] * keep[1:, 0]).mean().item()
    assert within_sigmas(across, 0.25, 0.25 * 0.75, COUNT // 4)


def test_gradient_is_the_mask_times_the_scale() -> None:
    torch.manual_seed(2)
    x = torch.randn(64, 33, requires_grad=True)  # 2112 elements: not a multiple of 4 draws per row
    out = Dropout(0.3).train()(x)
    out.sum().backward()
    assert x.grad is not None
    scale = 1 / (1 - round(0.3 * LEVELS) / LEVELS)
    torch.testing.assert_close(x.grad, (out != 0).float() * scale)
    torch.testing.assert_close(out, x.detach() * x.grad)


def test_eval_mode_and_zero_rate_are_the_identity_and_one_drops_everything() -> None:
    x = torch.randn(8, 5)
    assert Dropout(0.5).eval()(x) is x
    assert Dropout(0.0).train()(x) is x
    assert torch.all(Dropout(1.0).train()(x) == 0)


def test_seeded_runs_repeat_and_draws_differ() -> None:
    layer, x = Dropout(0.2).train(), torch.ones(3, 7, 11)
    torch.manual_seed(3)
    first, second = layer(x), layer(x)
    torch.manual_seed(3)
    assert torch.equal(layer(x), first)
    assert not torch.equal(first, second)


def test_keeps_the_input_dtype_and_shape() -> None:
    x = torch.ones(5, 3, 2, dtype=torch.bfloat16)
    out = Dropout(0.2).train()(x)
    assert out.dtype == torch.bfloat16
    assert out.shape == x.shape


def test_is_an_nn_dropout_with_its_repr() -> None:
    layer = Dropout(0.25)
    assert isinstance(layer, nn.Dropout)
    assert repr(layer) == repr(nn.Dropout(0.25))
    assert layer.state_dict() == {}


def test_traces_with_torch_export_in_training_mode() -> None:
    """export.py exports in eval mode; a module exported while training keeps a dropout (torch's, which
    torch.export knows, with a dynamic batch size)."""
    batch = torch.export.Dim.DYNAMIC
    program = torch.export.export(
        nn.Sequential(Dropout(0.5)).train(), (torch.ones(64, 8),), dynamic_shapes=({0: batch},)
    )
    out = program.module()(torch.ones(37, 8))
    assert out.shape == (37, 8)
    assert set(out.unique().tolist()) == {0.0, 2.0}
