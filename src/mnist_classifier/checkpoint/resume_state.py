"""What a resume restores besides the weights: the training progress, and the optimizer's and the LR
schedule's states. Lightning hands the last two to torch unchecked, so a damaged or crafted checkpoint
failed mid-run with a traceback from inside torch (a moment estimate of another shape, an lr that is a
string, a schedule stepped past its end). Each is checked here against what this run builds, before
Lightning restores anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from mnist_classifier.checkpoint.loader import meta_net, odd_tensor
from mnist_classifier.errors import CheckpointError, shown
from mnist_classifier.utils.numbers import is_number


def check_training_progress(checkpoint: dict[str, Any], path: str | Path) -> None:
    """Whole epochs trained and planned, and whether the run finished (models/run_history.py writes them)."""
    progress = checkpoint.get("training_progress", {})  # none in a checkpoint saved outside train.py
    as_written = isinstance(progress, dict) and (
        not progress
        or (
            all(isinstance(progress.get(key), int) for key in ("epochs_completed", "max_epochs"))
            and isinstance(progress.get("finished"), bool)
        )
    )
    if not as_written:
        raise _damaged(
            path,
            f"its training_progress ({shown(progress)}) is not what train.py writes (whole epochs trained and planned)",
        )


def check_optimizer_and_schedule(checkpoint: dict[str, Any], path: str | Path, model_config: DictConfig) -> None:
    """The stored optimizer and schedule states against this run's, built once over the stored network's
    parameters on the meta device."""
    if "optimizer_states" not in checkpoint:
        raise CheckpointError(
            f"ckpt_path={path} holds weights but no optimizer state (exported weights, or a weights-only "
            f"checkpoint), so training cannot go on from it. Test it with `python eval.py ckpt_path={path}`, or "
            f"resume from a checkpoint train.py wrote (its checkpoints/last.ckpt)."
        )
    params = list(meta_net(checkpoint["hyper_parameters"]["net"], path).parameters())
    optimizer = instantiate(model_config.optimizer)(params=params)
    _check_optimizer_state(checkpoint, path, optimizer, params)  # before the schedule adds to its groups
    _check_schedule_state(checkpoint, path, model_config, optimizer)


def _check_optimizer_state(checkpoint: dict[str, Any], path: str | Path, optimizer: Any, params: list[Any]) -> None:
    """The same parameter groups holding values of the same kinds (the schedule adds numbers of its own),
    and per-parameter tensors that are a step count or of the parameter's shape."""
    fresh_groups = optimizer.state_dict()["param_groups"]
    stored = checkpoint.get("optimizer_states")
    one = stored[0] if isinstance(stored, list) and len(stored) == 1 and isinstance(stored[0], dict) else {}
    groups, state = one.get("param_groups"), one.get("state")
    if not (isinstance(groups, list) and len(groups) == len(fresh_groups) and isinstance(state, dict)):
        raise _damaged(path, f"its optimizer state is not one {type(optimizer).__name__}'s", another_recipe=True)
    for group, fresh in zip(groups, fresh_groups, strict=True):
        odd = _odd_group_key(group, fresh)
        if odd is not None:
            value = group.get(odd, "missing") if isinstance(group, dict) else group
            raise _damaged(
                path,
                f"its optimizer's `{odd}` ({shown(value)}) is not what this run's {type(optimizer).__name__} "
                f"keeps there",
                another_recipe=True,
            )
    for index, values in state.items():
        fits = isinstance(index, int) and 0 <= index < len(params) and isinstance(values, dict)
        if not (fits and all(_fits(key, value, params[index].shape) for key, value in values.items())):
            raise _damaged(path, f"its optimizer state for parameter {shown(index)} does not fit that parameter")


def _check_schedule_state(
    checkpoint: dict[str, Any], path: str | Path, model_config: DictConfig, optimizer: Any
) -> None:
    """One schedule state where this run has a schedule, of the same keys and kinds as the schedule this
    run builds (over the stored length, for one planned over the run), not stepped past its end."""
    stored = checkpoint.get("lr_schedulers", [])
    planned = 1 if model_config.get("scheduler") else 0
    if not (isinstance(stored, list) and len(stored) == planned and all(isinstance(s, dict) for s in stored)):
        count = len(stored) if isinstance(stored, list) else shown(stored)
        raise _damaged(path, f"it holds {count} LR schedule state(s) where this run has {planned}", another_recipe=True)
    if not stored:
        return
    (schedule,) = stored
    counts = {key: schedule[key] for key in ("last_epoch", "_step_count", "total_steps") if key in schedule}
    plain = all(isinstance(value, int) and not isinstance(value, bool) and value >= 0 for value in counts.values())
    if not plain or counts.get("last_epoch", 0) > counts.get("total_steps", float("inf")):
        raise _damaged(path, f"its LR schedule's step counts ({shown(counts)}) are not what torch writes")
    make = instantiate(model_config.scheduler)
    length = {"total_steps": schedule["total_steps"]} if "total_steps" in schedule else {}
    fresh = make(optimizer=optimizer, **length).state_dict()
    # a key the state lacks keeps this run's value when loaded; one it adds would shadow the schedule's own
    # attribute (a stored `step` replaces its step method), so it is refused
    keys = sorted(schedule.keys() - fresh.keys()) + [key for key in fresh if key in schedule]
    odd = next((key for key in keys if not _same_kind(schedule[key], fresh.get(key, ...))), None)
    if odd is not None:
        raise _damaged(
            path,
            f"its LR schedule's `{odd}` ({shown(schedule.get(odd, 'missing'))}) is not what this run's "
            f"{type(make.func).__name__} keeps there",
            another_recipe=True,
        )


def _flag_or_number(value: Any) -> bool:
    return value is None or isinstance(value, bool) or is_number(value)


def _same_kind(stored: Any, fresh: Any) -> bool:
    """Numbers (a learning rate, a step) may differ from this run's; anything else must be this run's: a
    flag (capturable=True on a CPU run fails in torch's step), a name (a schedule phase's `start_lr` names
    the parameter-group key it reads), a mapping's keys, a list's length."""
    if is_number(fresh):
        return is_number(stored)
    if isinstance(fresh, list | tuple):
        return isinstance(stored, list | tuple) and len(stored) == len(fresh) and all(map(_same_kind, stored, fresh))
    if isinstance(fresh, dict):
        return (
            isinstance(stored, dict)
            and stored.keys() == fresh.keys()
            and all(_same_kind(stored[key], value) for key, value in fresh.items())
        )
    return type(stored) is type(fresh) and not isinstance(fresh, torch.Tensor) and stored == fresh


def _odd_group_key(group: Any, fresh: dict[str, Any]) -> str | None:
    """The first key of a stored parameter group that this run's optimizer would not hold."""
    if not isinstance(group, dict):
        return "param_groups"
    if group.get("params") != fresh["params"]:
        return "params"
    # a flag the group lacks takes torch's default when loaded (an older torch wrote fewer); a number may not
    missing = [key for key, value in fresh.items() if key not in group and is_number(value)]
    other = [key for key, value in fresh.items() if key in group and not _same_kind(group[key], value)]
    # what the schedule adds (initial_lr, max_lr, ...) is numbers; an older torch's flags are bools or None
    extra = [key for key, value in group.items() if key not in fresh and not _flag_or_number(value)]
    return next(iter(missing + other + extra), None)


def _fits(key: Any, value: Any, shape: torch.Size) -> bool:
    """A per-parameter optimizer value: a one-number step count under `step`, else a dense CPU floating-point
    tensor of the parameter's shape, in its memory format (or None: SGD's momentum buffer before its first
    step)."""
    if value is None:
        return key != "step"
    if odd_tensor(str(key), value) is not None or not value.is_floating_point():
        return False
    if key == "step":
        return value.dim() == 0
    dense = value.is_contiguous() or (value.dim() == 4 and value.is_contiguous(memory_format=torch.channels_last))
    return value.shape == shape and dense  # not an expanded view (its steps write to one place many times)


def _damaged(path: str | Path, what: str, another_recipe: bool = False) -> CheckpointError:
    if another_recipe:
        return CheckpointError(
            f"ckpt_path={path}: {what}. It comes from another optimizer or schedule, or the file is damaged or "
            f"was altered. Resume with the original run's model/experiment overrides (see its "
            f".hydra/overrides.yaml), or pass another checkpoint written by train.py."
        )
    return CheckpointError(
        f"ckpt_path={path}: {what}. The file is damaged or was altered; pass a checkpoint written by train.py."
    )
