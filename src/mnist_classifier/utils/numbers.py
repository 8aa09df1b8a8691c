"""What counts as a number in a setting: an int or a float, never a bool (True is an int to Python, and never
what a user meant by a number). No torch here: serve.py's limits use it too."""

from __future__ import annotations

import math


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_finite_number(value: object) -> bool:
    """NaN compares false to every bound, so a range check alone lets it through."""
    return is_number(value) and math.isfinite(value)  # type: ignore[arg-type]  # a number, checked just before
