"""What a run is, in a few words: the name every experiment logger shows for it (TensorBoard's run,
MLflow's and W&B's run name) and, for a sweep job, the values it was swept over (the HPARAMS columns).

`train cnn seed=3 lr=0.01 2026-12-01_08-27-44`: the task, the recipe (experiment or model), the
command-line overrides that change what is trained (not where data or logs live), then the run dir's
name (its timestamp, or the cluster job's id). A sweep job names only the overrides that vary across
the sweep: those with a sweep value (`lr=0.01,0.05`) on the sweep's command line, and the sweeper's
`params` (Optuna's search space).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from omegaconf import DictConfig, ListConfig, OmegaConf

# overrides that say where things are or how they are shown, not what is trained
NOT_WHAT_THE_RUN_IS = (
    "ckpt_path", "paths", "data.data_dir", "logger", "extras", "tags", "num_threads", "hydra", "reports",
    "callbacks.progress_bar", "callbacks.model_summary", "trainer.enable_progress_bar", "trainer.enable_model_summary",
)  # fmt: skip
RECIPE_GROUPS = ("experiment", "model")
TIMESTAMP_MICROSECONDS = re.compile(r"^(\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d)_\d{6}$")
UNSAFE = re.compile(r"[^A-Za-z0-9._,=+-]+")
MAX_LABEL = 150  # a path component (TensorBoard's run dir) may have 255 bytes


def _hydra(root: DictConfig | None) -> DictConfig | None:
    """The hydra node: in the composed config (Hydra's compose API), else the running job's."""
    if root is not None and "hydra" in root:
        return root.hydra
    return HydraConfig.instance().cfg.hydra if HydraConfig.initialized() else None  # type: ignore[union-attr]


def _describes_the_run(key: str) -> bool:
    return not any(key == skip or key.startswith(f"{skip}.") for skip in NOT_WHAT_THE_RUN_IS)


def _swept_keys(hydra: DictConfig) -> set[str] | None:
    """The keys a sweep varies; None for a single run, or a multirun that varies nothing. The sweep's
    command line is in the multirun.yaml Hydra writes into the sweep dir before it starts a job."""
    if hydra.get("mode") != RunMode.MULTIRUN:
        return None
    keys = {str(key) for key in (hydra.sweeper.get("params") or {})}
    multirun = Path(hydra.sweep.dir) / "multirun.yaml"
    if multirun.is_file():
        command_line = OmegaConf.load(multirun).hydra.overrides.task
        keys |= {o.key_or_group for o in OverridesParser.create().parse_overrides(list(command_line))
                 if o.is_sweep_override()}  # fmt: skip
    return keys or None


def _overrides(hydra: DictConfig) -> dict[str, str]:
    """The job's overrides that describe it (a sweep job: its swept ones), key -> value as typed."""
    parsed = OverridesParser.create().parse_overrides(list(hydra.overrides.task))
    swept = _swept_keys(hydra)
    return {
        o.key_or_group: o.get_value_element_as_str()
        for o in parsed
        if _describes_the_run(o.key_or_group) and (swept is None or o.key_or_group in swept)
    }


def swept_values(_root_: DictConfig) -> dict[str, Any] | None:
    """A sweep job's swept parameters with their values (numbers stay numbers: HPARAMS plots them on
    numeric axes); None for a single run. A config group (`model=dense`) gives its choice."""
    hydra = _hydra(_root_)
    if hydra is None or _swept_keys(hydra) is None:
        return None
    choices = hydra.runtime.choices
    values: dict[str, Any] = {}
    for key, typed in _overrides(hydra).items():
        value = choices[key] if key in choices else OmegaConf.select(_root_, key, default=typed)
        plain = OmegaConf.to_container(value, resolve=True) if isinstance(value, (DictConfig, ListConfig)) else value
        values[key] = plain if isinstance(plain, (bool, int, float, str)) else str(plain)
    return values


def _short_number(value: str) -> str:
    """Sampled floats like 0.021153673722318383 shown as 0.02115."""
    try:
        return f"{float(value):.4g}" if "." in value and len(value) > 8 else value
    except ValueError:
        return value


def _short_keys(keys: list[str]) -> dict[str, str]:
    """`model.optimizer.lr` -> `lr`, unless two keys would share the short name."""
    last = [key.rsplit(".", 1)[-1] for key in keys]
    return {key: short if last.count(short) == 1 else key for key, short in zip(keys, last, strict=True)}


def _checkpoint_name(path: str) -> str:
    """`<run>/checkpoints/epoch_001.ckpt` as `<run's time>_epoch_001` (a sweep job's: `<sweep's time>_<job>_...`):
    which run's checkpoint, not only which of its files (every run has a last.ckpt)."""
    checkpoint = Path(path)
    run = checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent
    names = [run.parent.name, run.name] if run.name.isdigit() else [run.name]  # a sweep's job: its number in it
    when = "_".join(TIMESTAMP_MICROSECONDS.sub(r"\1", name) for name in names)
    return f"{when}_{checkpoint.stem}" if when else checkpoint.stem


def _checkpoints(ckpt_path: Any) -> str:
    """One checkpoint's name, or an ensemble's members' (`ckpt_path=[a,b,c]`) joined by '+'."""
    paths = list(ckpt_path) if isinstance(ckpt_path, ListConfig) else [ckpt_path]
    return "+".join(_checkpoint_name(str(path)) for path in paths)


def run_label(_root_: DictConfig) -> str:
    """The run's name for the experiment loggers (configs/logger/), safe as a directory name."""
    task = str(_root_.get("task_name", "run"))
    hydra = _hydra(_root_)
    if hydra is None:
        return task
    choices = hydra.runtime.choices
    recipe = next((str(choices[group]) for group in RECIPE_GROUPS if choices.get(group)), None)
    overrides = {k: v for k, v in _overrides(hydra).items() if k not in RECIPE_GROUPS}
    shown = _short_keys(list(overrides))
    words = [f"{shown[key]}={_short_number(value)}" for key, value in overrides.items()]
    if "ckpt_path" in (o.split("=", 1)[0] for o in hydra.overrides.task) and _root_.get("ckpt_path"):
        words.append(f"ckpt={_checkpoints(_root_.ckpt_path)}")
    run_dir = Path(hydra.sweep.dir if hydra.get("mode") == RunMode.MULTIRUN else hydra.run.dir).name
    when = TIMESTAMP_MICROSECONDS.sub(r"\1", run_dir)
    safe = [UNSAFE.sub("_", word.replace("[", "").replace("]", "")).strip("_") for word in words]
    label = " ".join(filter(None, [task, recipe, *safe]))[:MAX_LABEL].strip()
    return f"{label} {UNSAFE.sub('_', when)}"
