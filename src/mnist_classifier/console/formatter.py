"""The console's log format (configs/hydra/default.yaml): messages as they are, warnings and errors
prefixed with their level. train.log keeps the full format with time and logger name."""

from __future__ import annotations

import logging
import sys

# Lightning's loggers (the package's, and those of its two halves, which add theirs only when logging has no
# handler yet at import time)
LIGHTNING_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric")


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        return message if record.levelno < logging.WARNING else f"{record.levelname.capitalize()}: {message}"


def lightning_logs_through_the_run() -> None:
    """Lightning prints its log messages through console handlers it adds when it is imported, and which
    ones depends on whether Hydra had set up logging by then (the entries load it after the config is
    composed; a SLURM job's run-dir name loads it before). Either way, a warning showed twice or skipped
    train.log. Its messages go through the run's handlers instead: once, in this format, and into the log."""
    if "lightning" not in sys.modules:
        return
    for name in LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True
