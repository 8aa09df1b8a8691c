"""What a run prints: where its files are, a compact model summary, one progress bar, a line per epoch
and one results table. Library noise a user cannot act on is filtered at its source (noise.py)."""

from mnist_classifier.console.epoch_progress import EpochProgressBar
from mnist_classifier.console.formatter import ConsoleFormatter
from mnist_classifier.console.network_summary import NetworkSummary

__all__ = ["ConsoleFormatter", "EpochProgressBar", "NetworkSummary"]
