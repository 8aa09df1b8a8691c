"""Bad input turned into the one paragraph a user reads (exit 2): our own errors, and those Hydra and
OmegaConf raise while composing or instantiating the config. No torch here: serve.py, which must start
without it for an ONNX model, reports its config errors with this too."""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from hydra.errors import (
    ConfigCompositionException,
    InstantiationException,
    MissingConfigException,
    OverrideParseException,
)
from omegaconf.errors import InterpolationResolutionError, OmegaConfBaseException

from mnist_classifier.errors import ArgumentError, UserFacingError
from mnist_classifier.utils.atomic import disk_fault, disk_fault_message

EXIT_BAD_INPUT = 2


def report_bad_input(message: str) -> int:
    """The paragraph on stderr; returns the exit code to end with."""
    print(f"Error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


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
    message = _config_message(err) or _trainer_setting_message(err)
    if message is not None:
        return message
    fault = disk_fault(err)
    return None if fault is None else disk_fault_message(fault.filename or "a file of this run", fault)


def _config_message(err: BaseException) -> str | None:
    """Errors found while composing the config (Hydra raises them before the task starts) or reading it."""
    for kind, message in CONFIG_MESSAGES:
        if isinstance(err, kind):
            return message(err)
    return None


def _trainer_setting_message(err: BaseException) -> str | None:
    """A Trainer setting Lightning refuses only once it meets the data (`trainer.limit_test_batches=0.05` of
    10 test batches is less than one batch): its reason, with its arguments written as the config's keys.
    Lightning's other misconfigurations (a model without a training_step: code, not a setting) keep their
    traceback. Looked up among the loaded modules: serve.py reports errors without Lightning."""
    exceptions = sys.modules.get("lightning.fabric.utilities.exceptions")
    kind = getattr(exceptions, "MisconfigurationException", None)
    trainer = getattr(sys.modules.get("lightning.pytorch.trainer.trainer"), "Trainer", None)
    if kind is None or trainer is None or not isinstance(err, kind):
        return None
    arguments = set(inspect.signature(trainer.__init__).parameters)
    text = " ".join(str(err).split())
    reason = re.sub(r"`(\w+)(?==[^`]*`|`)", lambda m: f"`trainer.{m[1]}" if m[1] in arguments else m[0], text)
    return None if reason == text else f"Lightning cannot run with these trainer settings: {reason.rstrip('.')}."


def _override_message(err: OverrideParseException) -> str:
    return (
        f"Cannot read the command line override: {' '.join(str(err).split())}. Write overrides as "
        f"key=value; quote values with brackets, spaces or $ for the shell, e.g. 'data.data_dir=\"my dir\"'."
    )


def _interpolation_message(err: InterpolationResolutionError) -> str:
    where = f" (in `{err.full_key}`)" if err.full_key else ""
    return (
        f"{str(err).splitlines()[0].rstrip('.')}{where}. Check the ${{...}} references in "
        f"that value: each must name a config key or a resolver such as ${{now:...}} or ${{oc.env:...}}."
    )


def _yaml_message(err: yaml.YAMLError) -> str:
    """A config file that is not YAML (an unclosed bracket, a tab, a stray line): the file, line and reason."""
    if not isinstance(err, yaml.MarkedYAMLError) or err.problem_mark is None:
        return f"A config file is not valid YAML: {' '.join(str(err).split())}. Fix the file and run again."
    mark, begun = err.problem_mark, err.context_mark
    context = f"{err.context}: " if err.context else ""
    if begun is not None and begun.line != mark.line:
        context = f"{err.context} begun at line {begun.line + 1}, column {begun.column + 1}: "
    return (
        f"The config file {mark.name} is not valid YAML, at line {mark.line + 1}, column {mark.column + 1}: "
        f"{context}{err.problem}. Fix that part of the file (`key: value` lines indented with spaces, never "
        f"tabs; brackets and quotes closed) and run again."
    )


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


# the first kind an error is decides its message (InterpolationResolutionError is an OmegaConfBaseException)
CONFIG_MESSAGES: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], Callable[[Any], str]], ...] = (
    (MissingConfigException, _missing_config_message),
    (ConfigCompositionException, _composition_message),
    (OverrideParseException, _override_message),
    (yaml.YAMLError, _yaml_message),
    (InterpolationResolutionError, _interpolation_message),
    ((UserFacingError, OmegaConfBaseException), lambda err: " ".join(str(err).split())),
)
