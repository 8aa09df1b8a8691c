"""The wrapper around every task: exit codes, one-paragraph errors, interrupts, and metrics.json always.

Exit codes (documented in the README): 0 done; 1 a bug (with its traceback), a grid sweep in which a
job failed, or a prediction in which some inputs could not be read; 2 bad input (config value, path,
file, checkpoint, a full disk or unwritable folder, a diverged run), the message alone; 130 / 143
interrupted by SIGINT / SIGTERM, after saving what can be resumed.
"""

from __future__ import annotations

import logging
import re
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.errors import (
    ConfigCompositionException,
    InstantiationException,
    MissingConfigException,
    OverrideParseException,
)
from hydra.types import RunMode
from omegaconf import DictConfig
from omegaconf.errors import InterpolationResolutionError, OmegaConfBaseException

from mnist_classifier.console.config_tree import print_config_tree
from mnist_classifier.console.results import print_results
from mnist_classifier.console.story import tell
from mnist_classifier.errors import ArgumentError, UserFacingError
from mnist_classifier.runtime.cluster import is_rank_zero
from mnist_classifier.runtime.interrupts import InterruptGuard, RunInterrupted, interrupt_guard
from mnist_classifier.runtime.metrics_file import write_metrics
from mnist_classifier.runtime.run_checks import check_common
from mnist_classifier.utils.atomic import disk_fault, disk_fault_message
from mnist_classifier.utils.threads import limit_threads

log = logging.getLogger(__name__)
EXIT_PARTIAL, EXIT_BAD_INPUT = 1, 2


def user_error_message(err: BaseException) -> str | None:
    """The message for errors caused by bad input (config, paths, files); None for real bugs.

    Our own errors raised while Hydra instantiates a config arrive wrapped in (possibly nested)
    InstantiationExceptions: the innermost one of ours is the message to show. A bad argument of the
    object Hydra was building names the key of the config it came from (`data` + `batch_size`).
    """
    cause: BaseException | None = err
    wrapper: InstantiationException | None = None
    while isinstance(cause, InstantiationException):
        wrapper, cause = cause, cause.__cause__
    if isinstance(cause, UserFacingError):
        return str(cause)
    if isinstance(cause, ArgumentError) and wrapper is not None and (key := _full_key(wrapper)):
        return str(cause.under(key))
    if isinstance(err, InstantiationException):
        return _instantiation_message(err, cause)
    message = _config_message(err)
    if message is not None:
        return message
    fault = disk_fault(err)
    return None if fault is None else disk_fault_message(fault.filename or "a file of this run", fault)


def _config_message(err: BaseException) -> str | None:
    """Errors found while composing the config (Hydra raises them before the task starts) or reading it."""
    if isinstance(err, MissingConfigException):
        return _missing_config_message(err)
    if isinstance(err, ConfigCompositionException):
        return _composition_message(err)
    if isinstance(err, OverrideParseException):
        return (
            f"Cannot read the command line override: {' '.join(str(err).split())}. Write overrides as "
            f"key=value; quote values with brackets, spaces or $ for the shell, e.g. 'data.data_dir=\"my dir\"'."
        )
    if isinstance(err, InterpolationResolutionError):
        where = f" (in `{err.full_key}`)" if err.full_key else ""
        return (
            f"{str(err).splitlines()[0].rstrip('.')}{where}. Check the ${{...}} references in "
            f"that value: each must name a config key or a resolver such as ${{now:...}} or ${{oc.env:...}}."
        )
    if isinstance(err, (UserFacingError, OmegaConfBaseException)):
        return " ".join(str(err).split())
    return None


def _missing_config_message(err: MissingConfigException) -> str:
    """`model=cnnn`: the group, what was asked and the options there are."""
    missing = err.missing_cfg_file or ""
    group, _, name = missing.rpartition("/")
    if err.options and group:
        options = ", ".join(err.options)
        return (
            f"There is no `{group}={name}`: the config group `{group}` has {options}. "
            f"Choose one of them, e.g. `{group}={err.options[0]}` (configs/{group}/ holds them)."
        )
    return f"{str(err).split(chr(10))[0]}. Check the config name and the config groups under configs/."


def _composition_message(err: ConfigCompositionException) -> str:
    """`model.foo=1`: Hydra's reason, the library's detail, and how to list the keys there are."""
    reason, _, hint = str(err).partition("\n")
    detail = f" ({str(err.__cause__).splitlines()[0].rstrip('.')})" if err.__cause__ else ""
    hint = f" {' '.join(hint.split()).rstrip('.')}." if hint else ""
    return (
        f"{reason.rstrip('.')}{detail}.{hint} Check the spelling against the keys the config has: "
        f"`python {Path(sys.argv[0]).name} --cfg job` prints them."
    )


def _instantiation_message(err: InstantiationException, cause: BaseException | None) -> str:
    """Hydra's 'Error in call to target ...' turned into which config key failed and the library's reason."""
    text = str(err)
    name = _full_key(err)
    target = re.search(r"target '([^']+)'", text)
    if name is None or cause is None:
        return " ".join(text.split())
    built = f" ({target.group(1)})" if target else ""
    reason = " ".join(str(cause).split()).rstrip(".")
    return (
        f"`{name}`{built} cannot be built from the config: {reason}. "
        f"Check the `{name}.*` values on the command line or in its config file."
    )


def _full_key(err: InstantiationException) -> str | None:
    """The config key Hydra was building, from its message's `full_key: ...` (the first, for a nested error)."""
    key = re.search(r"full_key: (\S+)", str(err))
    return key.group(1) if key else None


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def command_line(script: str, overrides: list[str]) -> str:
    """`python <script> <overrides>` as a user can paste it into a shell."""
    return shlex.join(["python", script, *overrides])


def _resume_command(guard: InterruptGuard) -> str:
    """How to go on: resume from the checkpoint with the run's overrides; test a finished training with
    eval.py; rerun a run that saved nothing."""
    script = sys.argv[0]
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    kept = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") != "ckpt_path"]
    if guard.training_finished and (guard.best_checkpoint or guard.checkpoint):
        best = guard.best_checkpoint or guard.checkpoint
        return command_line(str(Path(script).with_name("eval.py")), [f"ckpt_path={best}"])
    if guard.checkpoint is not None:
        return command_line(script, [*kept, f"ckpt_path={guard.checkpoint}"])
    return command_line(script, overrides)


def _interrupted_record(stop: RunInterrupted, guard: InterruptGuard) -> dict[str, Any]:
    command = _resume_command(guard)
    if guard.training_finished:
        where = " after training had finished"
    elif guard.last_completed_epoch is not None:
        where = f" after epoch {guard.last_completed_epoch} (and part of the next)"
    else:
        where = " before a training epoch was complete" if guard.training_started else ""
    saved = f" Saved {guard.checkpoint}." if guard.checkpoint else (" No checkpoint was saved." if where else "")
    verb = "Test it" if guard.training_finished else ("Resume" if guard.checkpoint else "Run it again")
    log.warning("Interrupted by %s%s.%s %s with:\n  %s", stop.signal_name, where, saved, verb, command)
    return {
        "status": "interrupted",
        "signal": stop.signal_name,
        "last_completed_epoch": guard.last_completed_epoch,
        "ckpt_path": str(guard.checkpoint) if guard.checkpoint else None,
        "resume_command": command,
        "history": [epoch.as_row() for epoch in guard.epochs],
    }


def run_task(task: Callable[[DictConfig], dict[str, Any]], cfg: DictConfig) -> dict[str, Any]:
    """Check the common values and limit the threads, then run `task`; what happened is recorded in
    metrics.json (status ok / failed / interrupted).

    Single run: bad input ends the process with exit code 2 and the message alone, an interrupt with
    130/143, a bug raises. Multirun: the job is recorded and the sweep goes on (Optuna marks the trial
    failed; the sweep summary lists it), except after an interrupt, which ends the sweep (sweeps/summary.py).
    """
    start = time.perf_counter()
    if is_rank_zero():
        tell(f"Run dir: {cfg.paths.output_dir}")
        if cfg.get("extras", {}).get("print_config"):
            print_config_tree(cfg, cfg.paths.output_dir)

    def record(metrics: dict[str, Any]) -> dict[str, Any]:
        metrics = {**metrics, "tags": list(cfg.get("tags") or []), "wall_time_s": round(time.perf_counter() - start, 2)}
        if is_rank_zero():
            write_metrics(cfg.paths.output_dir, metrics)
        return metrics

    with interrupt_guard() as guard:
        try:
            check_common(cfg)  # the values every task reads; each task checks its own
            limit_threads(cfg.get("num_threads"))
            metrics = task(cfg)
        except RunInterrupted as stop:
            interrupted = record(_interrupted_record(stop, guard))
            if in_multirun():
                return interrupted
            raise SystemExit(stop.exit_code) from None
        except Exception as err:
            message = user_error_message(err)
            failure = record({"status": "failed", "error": message or f"{type(err).__name__}: {err}"})
            if in_multirun():
                (log.error if message else log.exception)("Job failed: %s", failure["error"])
                return failure
            if message is not None:
                log.error(message)
                raise SystemExit(EXIT_BAD_INPUT) from err
            raise
    done = record({"status": "ok", **metrics})
    if is_rank_zero():
        print_results(done, cfg.paths.output_dir)
    if done["status"] == "partial" and not in_multirun():  # some inputs failed, the others are done
        raise SystemExit(EXIT_PARTIAL)
    return done


def metric_value(metrics: dict[str, Any], name: str | None) -> float | None:
    """The value a sweeper optimises (`optimized_metric`); None for a job that did not finish."""
    if not name or metrics.get("status") != "ok" or name not in metrics:
        return None
    return float(metrics[name])
