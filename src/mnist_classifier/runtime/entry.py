"""What the entries that run a task (train.py, eval.py, predict.py, export.py) do around Hydra: before it
composes the config, and with the errors it raises while doing so."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from mnist_classifier.console.noise import quiet_library_warnings
from mnist_classifier.runtime.error_messages import report_bad_input, user_error_message
from mnist_classifier.runtime.resolvers import register_resolvers

EXIT_SIGINT = 128 + signal.SIGINT


def prepare(entry_file: str) -> None:
    """`paths.root_dir` is the folder of the entry script (configs read it from PROJECT_ROOT)."""
    os.environ.setdefault("PROJECT_ROOT", str(Path(entry_file).resolve().parent))
    # logger=mlflow: MLflow's own handler prints its database set-up at INFO ("Creating initial MLflow
    # database tables...") on the console; its level is read when it is imported (set yours to see them)
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    register_resolvers()
    quiet_library_warnings()


def run(hydra_main: Callable[[], object]) -> None:
    """Call the `@hydra.main` function so that bad input found while Hydra composes the config or makes the
    run dir (a typo'd group or key, a bad interpolation, a read-only log folder) is the project's
    one-paragraph message and exit 2, like bad input found later by the task (runtime/runner.py).

    Hydra reports those errors itself and exits 1, unless HYDRA_FULL_ERROR=1 makes it raise them to us.
    An error that is not bad input (a bug) propagates with its traceback; every other end is `exit_now`.
    The entries import their task (torch, Lightning: seconds) inside it, after the config is composed: a
    typo'd override fails before they load, and a Ctrl-C while they load is exit 130 without a traceback,
    as it is once the task runs (runtime/interrupts.py).
    """
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        hydra_main()
    except SystemExit as stop:
        exit_now(stop.code)
    except KeyboardInterrupt:
        print("Interrupted by SIGINT (Ctrl-C).", file=sys.stderr)
        exit_now(EXIT_SIGINT)
    except Exception as err:
        message = user_error_message(err)
        if message is None:
            raise
        exit_now(report_bad_input(message))
    exit_now(0)


def exit_now(code: int | str | None) -> NoReturn:
    """End the process as `sys.exit(code)` would, less the interpreter's teardown: freeing the modules of
    torch, Lightning and their libraries takes 2-3 s on a 2-core CPU, after every file is written.
    First, as in a normal exit: thread pools and executors are told to stop (joblib's, concurrent.futures'),
    the other threads finish, and the atexit handlers run (logging's flush among them).
    Under a profiler, coverage or a debugger, which write their results in that teardown, it is a normal exit.
    """
    if sys.getprofile() is not None or sys.gettrace() is not None:
        raise SystemExit(code)
    if isinstance(code, str):
        print(code, file=sys.stderr)
    threading._shutdown()  # type: ignore[attr-defined]  # what Python's exit does first: executors stop, threads end
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (`| head`) has nothing left to take
            stream.flush()
    os._exit(code if isinstance(code, int) else 0 if code is None else 1)
