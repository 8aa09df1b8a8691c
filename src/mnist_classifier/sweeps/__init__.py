"""Sweep support: a resumable Optuna sweeper and the summary written at the end of every multirun."""

from mnist_classifier.sweeps.summary import SweepSummary

__all__ = ["SweepSummary"]
