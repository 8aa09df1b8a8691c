"""models/fast_dropout.py: the same layer as nn.Dropout (rate, scaling, gradient, eval, seeding), its
mask drawn 16 bits per element on a CPU; torch's own everywhere else."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mnist_classifier.models.fast_dropout import INT64_MIN, LEVELS, Dropout, keep_mask, kept

COUNT = 1 << 20
CPU = torch.device("cpu")


def within_sigmas(observed: float, expected: float, variance: float, count: int, sigmas: float = 6.0) -> bool:
    return abs(observed - expected) <= sigmas * math.sqrt(variance / count)


@pytest.mark.parametrize("p", [0.1, 0.2, 0.5, 0.9])
def test_drops_the_rate_asked_for_and_keeps_the_mean(p: float) -> None:
    torch.manual_seed(0)
    out = Dropout(p).train()(torch.ones(COUNT))
    dropped = round(p * LEVELS) / LEVELS
    kept_out = out != 0
    assert within_sigmas(kept_out.float().mean().item(), 1 - p, p * (1 - p), COUNT)
    assert torch.all(out[kept_out] == 1 / (1 - dropped))  # inverted dropout, by 1 / (1 - the rounded p)
    assert within_sigmas(out.double().mean().item(), 1.0, p / (1 - p), COUNT)  # E[out] = input


@pytest.mark.parametrize("p", [1 / LEVELS, 0.1, 0.2, 0.5, 1 - 1 / LEVELS])
def test_the_threshold_keeps_exactly_the_share_of_the_16_bit_values(p: float) -> None:
    every_value = torch.arange(-(LEVELS // 2), LEVELS // 2).to(torch.int16)
    assert int(kept(every_value, p).sum()) == LEVELS - round(p * LEVELS)


def test_each_element_is_16_bits_of_one_64_bit_draw_in_order() -> None:
    torch.manual_seed(4)
    mask = keep_mask(torch.Size([3, 5]), 0.3, CPU)  # 15 elements: four draws, the last one's top field unused
    torch.manual_seed(4)
    draws = torch.empty(4, dtype=torch.int64).random_(INT64_MIN, None)
    assert torch.equal(mask, kept(draws.view(torch.int16)[:15].view(3, 5), 0.3))


def test_the_four_fields_of_a_draw_are_independent_and_all_their_bits_count() -> None:
    """At p=0.3 the threshold is not a power of two: every bit of a field decides (p=0.5 reads the sign only)."""
    torch.manual_seed(1)
    p, draws = 0.3, COUNT // 4
    mask = keep_mask(torch.Size([COUNT]), p, CPU).view(-1, 4).float()
    for field in range(4):
        assert within_sigmas(mask[:, field].mean().item(), 1 - p, p * (1 - p), draws)
    both = (1 - p) ** 2
    for a, b in [(0, 1), (1, 2), (2, 3), (0, 3)]:
        assert within_sigmas((mask[:, a] * mask[:, b]).mean().item(), both, both * (1 - both), draws)
    assert within_sigmas((mask[:-1, 3] * mask[1:, 0]).mean().item(), both, both * (1 - both), draws)


def test_gradient_is_the_mask_times_the_scale() -> None:
    torch.manual_seed(2)
    x = torch.randn(65, 33, requires_grad=True)  # 2145 elements: the last draw's fields are not all used
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


def test_a_rate_that_rounds_to_0_or_1_is_torchs_dropout() -> None:
    """p = 1e-6 still drops some elements and p = 0.999999 still keeps some, as torch's does."""
    x = torch.ones(COUNT)
    torch.manual_seed(5)
    assert 0 < int((Dropout(1e-5).train()(x) == 0).sum()) < 100
    assert 0 < int((Dropout(1 - 1e-5).train()(x) != 0).sum()) < 100


def test_seeded_runs_repeat_and_draws_differ() -> None:
    layer, x = Dropout(0.2).train(), torch.ones(3, 7, 11)
    torch.manual_seed(3)
    first, second = layer(x), layer(x)
    torch.manual_seed(3)
    assert torch.equal(layer(x), first)
    assert not torch.equal(first, second)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float64])
def test_keeps_the_input_dtype_and_shape(dtype: torch.dtype) -> None:
    x = torch.ones(5, 3, 2, dtype=dtype)
    out = Dropout(0.2).train()(x)
    assert out.dtype == dtype
    assert out.shape == x.shape


def test_under_bf16_autocast_it_drops_the_linear_layers_bf16_output() -> None:
    net = nn.Sequential(nn.Linear(16, 64), Dropout(0.2)).train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(torch.ones(32, 16))
    assert out.dtype == torch.bfloat16
    assert 0.1 < float((out == 0).float().mean()) < 0.3


def test_is_an_nn_dropout_with_its_repr() -> None:
    layer = Dropout(0.25)
    assert isinstance(layer, nn.Dropout)
    assert repr(layer) == repr(nn.Dropout(0.25))
    assert layer.state_dict() == {}


def test_in_place_it_is_torchs_dropout() -> None:
    """Same seed, same output as nn.Dropout: torch's mask, not ours."""
    x = torch.ones(64, 32)
    torch.manual_seed(6)
    reference = nn.Dropout(0.3).train()(x)
    torch.manual_seed(6)
    assert torch.equal(Dropout(0.3, inplace=True).train()(x.clone()), reference)
    torch.manual_seed(6)
    assert not torch.equal(Dropout(0.3).train()(x), reference)  # on a CPU, not in place: our mask


def test_traces_with_torch_export_and_fx_in_training_mode() -> None:
    """export.py exports in eval mode; a module traced while training keeps a dropout: torch's, whose op the
    tracers know (torch.export with a dynamic batch size too)."""
    module = nn.Sequential(Dropout(0.5)).train()
    program = torch.export.export(module, (torch.ones(64, 8),), dynamic_shapes=({0: torch.export.Dim.DYNAMIC},))
    for graph, batch in ((program.module(), 37), (torch.fx.symbolic_trace(module), 64)):
        out = graph(torch.ones(batch, 8))
        assert out.shape == (batch, 8)
        assert set(out.unique().tolist()) == {0.0, 2.0}
