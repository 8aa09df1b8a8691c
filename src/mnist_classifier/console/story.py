"""The story of a run (its run dir, the fast path, the network, a line per epoch, the results) is printed to
the console and written, the same lines, to the run's log file (train.log, eval.log, ...). The
`mnist_classifier.story` logger carries them to Hydra's file handler only (configs/hydra/default.yaml), so
the console shows each line once; without Hydra's logging (a script, a notebook) it writes nowhere."""

from __future__ import annotations

import io
import logging
from typing import Any

from rich.console import Console

STORY = logging.getLogger("mnist_classifier.story")


def tell(line: str) -> None:
    """A line of the story, as it is, on stdout."""
    print(line, flush=True)
    STORY.info(line)


# off a terminal (a file, a CI log) rich would draw 80 columns and fold the run's paths mid-name
PLAIN_WIDTH = 200


def console_for(*, stderr: bool = False) -> Console:
    """rich's console for stdout (or stderr): the terminal's width, or PLAIN_WIDTH off a terminal, so that
    paths stay whole to copy."""
    console = Console(stderr=stderr)
    return console if console.is_terminal else Console(stderr=stderr, width=PLAIN_WIDTH)


def show(renderable: Any, *, stderr: bool = False, soft_wrap: bool = False) -> None:
    """A rich table of the story: drawn for the console (console_for), and as plain text 120 columns wide in
    the log."""
    console_for(stderr=stderr).print(renderable, soft_wrap=soft_wrap)
    if STORY.isEnabledFor(logging.INFO):
        plain = Console(file=io.StringIO(), width=120, color_system=None)
        plain.print(renderable)
        text = plain.file.getvalue()  # type: ignore[attr-defined]  # the StringIO above
        STORY.info("\n%s", "\n".join(line.rstrip() for line in text.rstrip().splitlines()))
