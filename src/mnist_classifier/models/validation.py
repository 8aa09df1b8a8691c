"""Shared argument checks for the networks; the messages name the argument (errors.py: ArgumentError)."""

from __future__ import annotations

from collections.abc import Sequence

from mnist_classifier.errors import ArgumentError


def positive_ints(argument: str, values: Sequence[int], allow_empty: bool = True) -> list[int]:
    values = list(values)
    if not allow_empty and not values:
        raise ArgumentError(argument, lambda key: f"{key(argument)} must list at least one value, got an empty list.")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
        raise ArgumentError(argument, lambda key: f"{key(argument)} must be positive integers, got {values}.")
    return values


def dropout_probability(argument: str, value: float) -> float:
    if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ArgumentError(argument, lambda key: f"{key(argument)} must be in [0, 1), got {value!r}.")
    return float(value)
