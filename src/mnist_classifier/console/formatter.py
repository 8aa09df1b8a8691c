"""The console's log format (configs/hydra/default.yaml): messages as they are, warnings and errors
prefixed with their level. train.log keeps the full format with time and logger name."""

from __future__ import annotations

import logging


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        return message if record.levelno < logging.WARNING else f"{record.levelname.capitalize()}: {message}"
