"""A figure or report that fails is logged and skipped: it never costs the run its metrics.json or its
checkpoints. The failures are listed in metrics.json (`report_errors`)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

log = logging.getLogger(__name__)


@contextlib.contextmanager
def report_step(name: str, errors: list[str]) -> Iterator[None]:
    try:
        yield
    except Exception as err:
        message = f"{name}: {type(err).__name__}: {err}"
        errors.append(message)
        log.error("Report %s failed, the run goes on (%s)", name, message, exc_info=True)


def report_errors(callbacks: list[object]) -> list[str]:
    """Every failure the report callbacks of a trainer recorded."""
    return [error for callback in callbacks for error in getattr(callback, "report_errors", [])]
