"""`hydra.sweeper.params` (and sweep overrides on the command line) as Optuna distributions, in the syntax
users of Hydra's Optuna sweeper know: `interval(a, b)`, `tag(log, interval(a, b))`, `choice(...)`,
`range(a, b, step)`; anything else is a fixed value passed to every trial."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep, Transformer
from optuna.distributions import (
    BaseDistribution,
    CategoricalChoiceType,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from mnist_classifier.errors import ConfigValueError


def _choices(override: Override) -> CategoricalDistribution:
    choices: list[CategoricalChoiceType] = []
    for value in override.sweep_iterator(transformer=Transformer.encode):
        if not isinstance(value, (str, int, float, bool, type(None))):
            raise ConfigValueError(f"{override.get_key_element()}: a choice must be a number, string, bool or null.")
        choices.append(value)
    return CategoricalDistribution(choices)


def distribution(override: Override) -> BaseDistribution | str:
    """The distribution of a sweep override, or the fixed value of a plain one."""
    if not override.is_sweep_override():
        return override.get_value_element_as_str()
    value = override.value()
    if isinstance(value, ChoiceSweep) or (isinstance(value, RangeSweep) and value.shuffle):
        return _choices(override)
    if isinstance(value, RangeSweep):
        # the values a grid sweep of the same range(a, b, step) runs: b itself is left out, as in Python
        count = sum(1 for _ in override.sweep_iterator())
        if not count or value.start is None or value.step is None:
            raise ValueError("the range holds no value")
        step = abs(value.step)  # a descending range runs the same values
        low = min(value.start, value.start + value.step * (count - 1))
        if any(isinstance(v, float) for v in (value.start, value.stop, value.step)):
            # the last value computed, not accumulated: range(0, 1, 0.3) ends at 0.9, not 0.8999999999999999
            return FloatDistribution(float(low), round(low + step * (count - 1), 12), step=step)
        return IntDistribution(int(low), int(low + step * (count - 1)), step=int(step))
    if isinstance(value, IntervalSweep):
        assert value.start is not None and value.end is not None
        log = "log" in value.tags
        if isinstance(value.start, int) and isinstance(value.end, int):
            return IntDistribution(value.start, value.end, log=log)
        return FloatDistribution(float(value.start), float(value.end), log=log)
    raise ConfigValueError(f"{override.input_line}: this kind of sweep is not supported by the Optuna sweeper.")


def search_space(arguments: Iterable[str]) -> tuple[dict[str, BaseDistribution], dict[str, str]]:
    """(distributions, fixed values) of `key=value` overrides."""
    distributions: dict[str, BaseDistribution] = {}
    fixed: dict[str, str] = {}
    for override in OverridesParser.create().parse_overrides(list(arguments)):
        key = override.get_key_element()
        try:
            value = distribution(override)
        except ValueError as err:  # Optuna's: low > high, a log scale reaching 0 or below, a step wider than the range
            raise ConfigValueError(
                f"The search space's {override.input_line} is not a range Optuna can draw from: "
                f"{str(err).rstrip('.')}. Write interval(low, high) with low <= high (both > 0 under "
                f"tag(log, ...)), or choice(a, b, ...)."
            ) from err
        if isinstance(value, BaseDistribution):
            distributions[key] = value
            fixed.pop(key, None)
        else:
            fixed[key] = value
            distributions.pop(key, None)
    return distributions, fixed


def trial_overrides(params: dict[str, Any], fixed: dict[str, str]) -> list[str]:
    return [f"{name}={value}" for name, value in {**params, **fixed}.items()]
