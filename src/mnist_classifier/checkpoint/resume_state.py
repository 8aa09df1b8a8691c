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

from mnist_classifier.checkpoint.loader import PLAIN_DTYPES, meta_net
from mnist_classifier.errors import CheckpointError, shown


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


def check_optimizer_state(checkpoint: dict[str, Any], path: str | Path, model_config: DictConfig) -> None:
    """The stored state against this run's optimizer, built over the stored network's parameters on the
    meta device: the same parameter groups holding values of the same kinds (the schedule adds numbers
    of its own), and per-parameter tensors that are a step count or of the parameter's shape."""
    if "optimizer_states" not in checkpoint:
        raise CheckpointError(
            f"ckpt_path={path} holds weights but no optimizer state (exported weights, or a weights-only "
            f"checkpoint), so training cannot go on from it. Test it with `python eval.py ckpt_path={path}`, or "
            f"resume from a checkpoint train.py wrote (its checkpoints/last.ckpt)."
        )
    params = list(meta_net(checkpoint["hyper_parameters"]["net"], path).parameters())
    optimizer = instantiate(model_config.optimizer)(params=params)
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
        if not (fits and all(_fits(value, params[index].shape) for value in values.values())):
            raise _damaged(path, f"its optimizer state for parameter {shown(index)} does not fit that parameter")


def check_schedule_state(checkpoint: dict[str, Any], path: str | Path, model_config: DictConfig) -> None:
    """One schedule state where this run has a schedule, torch's step counters in it plain counts, and a
    schedule planned over a number of steps not stepped past its end."""
    stored = checkpoint.get("lr_schedulers", [])
    planned = 1 if model_config.get("scheduler") else 0
    if not (isinstance(stored, list) and len(stored) == planned and all(isinstance(s, dict) for s in stored)):
        count = len(stored) if isinstance(stored, list) else shown(stored)
        raise _damaged(path, f"it holds {count} LR schedule state(s) where this run has {planned}", another_recipe=True)
    for schedule in stored:
        counts = {key: schedule[key] for key in ("last_epoch", "_step_count", "total_steps") if key in schedule}
        plain = all(isinstance(value, int) and not isinstance(value, bool) and value >= 0 for value in counts.values())
        if not plain or counts.get("last_epoch", 0) > counts.get("total_steps", float("inf")):
            raise _damaged(path, f"its LR schedule's step counts ({shown(counts)}) are not what torch writes")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same_kind(stored: Any, fresh: Any) -> bool:
    """bools and flags left unset (None) are interchangeable; numbers with numbers; sequences item by item."""
    if isinstance(fresh, bool) or fresh is None:
        return stored is None or isinstance(stored, bool)
    if _is_number(fresh):
        return _is_number(stored)
    if isinstance(fresh, list | tuple):
        return isinstance(stored, list | tuple) and len(stored) == len(fresh) and all(map(_same_kind, stored, fresh))
    return type(stored) is type(fresh)


def _odd_group_key(group: Any, fresh: dict[str, Any]) -> str | None:
    """The first key of a stored parameter group that this run's optimizer would not hold."""
    if not isinstance(group, dict):
        return "param_groups"
    if group.get("params") != fresh["params"]:
        return "params"
    missing_or_other = [key for key, value in fresh.items() if key not in group or not _same_kind(group[key], value)]
    scheduled = [key for key, value in group.items() if key not in fresh and not _is_number(value)]
    return next(iter(missing_or_other + scheduled), None)


def _fits(value: Any, shape: torch.Size) -> bool:
    """A per-parameter optimizer tensor: a dense CPU tensor of a real type, a count or the parameter's shape."""
    if value is None:  # SGD keeps None for a momentum buffer it has not made yet
        return True
    return (
        isinstance(value, torch.Tensor)
        and value.dtype in PLAIN_DTYPES
        and value.layout == torch.strided
        and value.device.type == "cpu"
        and (value.dim() == 0 or value.shape == shape)
    )


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
