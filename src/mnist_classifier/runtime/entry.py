"""What the entries that run a task (train.py, eval.py, predict.py, export.py) do around Hydra: before it
composes the config, and with the errors it raises while doing so."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from mnist_classifier.console.noise import quiet_library_warnings
from mnist_classifier.runtime.resolvers import register_resolvers
from mnist_classifier.runtime.runner import EXIT_BAD_INPUT, user_error_message


def prepare(entry_file: str) -> None:
    """`paths.root_dir` is the folder of the entry script (configs read it from PROJECT_ROOT)."""
    os.environ.setdefault("PROJECT_ROOT", str(Path(entry_file).resolve().parent))
    register_resolvers()
    quiet_library_warnings()


def run(hydra_main: Callable[[], object]) -> None:
    """Call the `@hydra.main` function so that bad input found while Hydra composes the config or makes the
    run dir (a typo'd group or key, a bad interpolation, a read-only log folder) is the project's
    one-paragraph message and exit 2, like bad input found later by the task (runtime/runner.py).

    Hydra reports those errors itself and exits 1, unless HYDRA_FULL_ERROR=1 makes it raise them to us.
    """
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        hydra_main()
    except Exception as err:
        message = user_error_message(err)
        if message is None:
            raise
        print(f"Error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT) from None
