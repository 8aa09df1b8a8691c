"""What a checkpoint's stored hyper-parameters may hold, checked before anything is imported or built.

A checkpoint is data. `weights_only=True` makes unpickling safe, but the stored `_target_` configs are
instantiated afterwards, so they are checked first: plain data only (numbers, strings, bools, None, lists,
dicts, of bounded size), and a `_target_` only at the keys where the project puts one, naming one of an
explicit allowlist of classes (compared as strings: nothing is imported to check it).
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

import torch

from mnist_classifier import registry
from mnist_classifier.errors import CheckpointError, shown

# Hydra's special keys (`_target_`, `_partial_`, `_args_`, `_recursive_`, `_convert_`, ...)
_HYDRA_KEY = re.compile(r"^_.+_$")
MAX_NODES = 10_000
MAX_DEPTH = 12
MAX_STRING = 1_000
MAX_ITEMS = 1_000
EXTEND_HINT = (
    "If it is your own class and you trust the checkpoint, add the class to NETWORKS (or AUGMENTATIONS) in "
    "src/mnist_classifier/registry.py."
)


def public_names(cls: type) -> set[str]:
    """Every dotted path a config may use for `cls`: its defining module, and each parent package that
    re-exports it (`torch.nn.CrossEntropyLoss` as well as `torch.nn.modules.loss.CrossEntropyLoss`)."""
    names = {f"{cls.__module__}.{cls.__qualname__}"}
    parts = cls.__module__.split(".")
    for end in range(1, len(parts)):
        package = sys.modules.get(".".join(parts[:end]))
        if package is not None and getattr(package, cls.__name__, None) is cls:
            names.add(f"{package.__name__}.{cls.__name__}")
    return names


def _classes_in(module: Any, base: type, exclude: Iterable[type] = ()) -> list[type]:
    excluded = set(exclude)
    return [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, base) and obj not in excluded and not obj.__name__.startswith("_")
    ]


@cache
def allowed_targets() -> dict[str, frozenset[str]]:
    """The classes each hyper-parameter may name: the project's networks and augmentations, torch.nn
    losses, torch.optim optimizers and torch.optim.lr_scheduler schedulers (classes, not modules)."""
    lr_scheduler = torch.optim.lr_scheduler
    schedulers = _classes_in(lr_scheduler, lr_scheduler.LRScheduler, exclude=[lr_scheduler.LRScheduler])
    groups: dict[str, list[type]] = {
        "loss": _classes_in(torch.nn, torch.nn.modules.loss._Loss),
        "optimizer": _classes_in(torch.optim, torch.optim.Optimizer, exclude=[torch.optim.Optimizer]),
        "scheduler": [*schedulers, lr_scheduler.ReduceLROnPlateau],
    }
    allowed = {key: frozenset(name for cls in classes for name in public_names(cls)) for key, classes in groups.items()}
    return {
        "net": registry.dotted_names(registry.MODELS_PACKAGE, registry.NETWORKS),
        **allowed,
        "augment": registry.dotted_names(registry.DATA_PACKAGE, registry.AUGMENTATIONS),
    }


# Where a `_target_` may stand in each stored tree, and which of them are built with `_partial_: true`.
MODEL_TARGET_KEYS = ("net", "loss", "optimizer", "scheduler")
DATA_TARGET_KEYS = ("augment",)
PARTIAL_KEYS = ("optimizer", "scheduler")


class _Walk:
    """Counts nodes over the whole tree so that no stored value can be arbitrarily large."""

    def __init__(self, path: str, part: str) -> None:
        self.path, self.part, self.nodes = path, part, 0

    def refuse(self, key: str, problem: str) -> CheckpointError:
        return CheckpointError(
            f"ckpt_path={self.path} is refused: its stored {self.part} `{key}` {problem}. Nothing from the "
            f"checkpoint was run. A checkpoint is data, and this one is not a checkpoint train.py writes: it may "
            f"have been altered. Use a checkpoint from a source you trust."
        )

    def plain(self, value: Any, key: str, depth: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES or depth > MAX_DEPTH:
            raise self.refuse(key, f"is too large (more than {MAX_NODES} values or {MAX_DEPTH} levels deep)")
        if value is None or isinstance(value, (bool, int, float)):
            return
        if isinstance(value, str):
            self._string(value, key)
        elif isinstance(value, (list, tuple, dict)):
            if len(value) > MAX_ITEMS:
                raise self.refuse(key, f"holds {len(value)} items (at most {MAX_ITEMS})")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for name, item in items:
                self.plain(item, self._child_key(key, name, isinstance(value, dict)), depth + 1)
        else:
            raise self.refuse(key, f"is a {type(value).__name__}, not plain data (numbers, strings, lists, dicts)")

    def _string(self, value: str, key: str) -> None:
        if len(value) > MAX_STRING:
            raise self.refuse(key, f"holds a string of {len(value)} characters (at most {MAX_STRING})")
        if "${" in value:
            raise self.refuse(key, f"holds a config interpolation ({value[:60]!r}), which would be evaluated")

    def _child_key(self, key: str, name: Any, in_mapping: bool) -> str:
        if not in_mapping:
            return f"{key}[{name}]"
        if not isinstance(name, str):
            raise self.refuse(key, f"has a non-string key {shown(name)}")
        if _HYDRA_KEY.match(name):
            raise self.refuse(f"{key}.{name}", "is a Hydra key, which a stored hyper-parameter may not hold")
        return f"{key}.{name}"

    def target_config(self, config: dict[str, Any], key: str, allowed: frozenset[str]) -> None:
        """A `_target_` config at a key where one belongs: an allowed class, plain arguments."""
        target = config["_target_"]
        if not isinstance(target, str) or target not in allowed:
            raise self.refuse(
                f"{key}._target_",
                f"names {shown(target)}, which is not on the allowlist of classes a checkpoint may build for `{key}`. "
                + EXTEND_HINT,
            )
        for name, value in config.items():
            if name == "_target_":
                continue
            if name == "_partial_" and key in PARTIAL_KEYS:
                if value is not True:
                    raise self.refuse(f"{key}._partial_", f"is {shown(value)} (only `true` is stored)")
                continue
            if _HYDRA_KEY.match(name):
                raise self.refuse(f"{key}.{name}", "is a Hydra key, which a stored hyper-parameter may not hold")
            self.plain(value, f"{key}.{name}", depth=2)


def check_hyperparameters(
    hyperparameters: Any, path: str, part: str, target_keys: tuple[str, ...], required: tuple[str, ...] = ()
) -> None:
    """Raise CheckpointError (naming the key) unless `hyperparameters` is plain data whose only `_target_`s
    stand at `target_keys` and name allowed classes. `part` names the tree in messages."""
    walk = _Walk(path, part)
    if not isinstance(hyperparameters, dict):
        raise walk.refuse("hyper-parameters", f"are a {type(hyperparameters).__name__}, not a mapping")
    allowed = allowed_targets()
    for key in required:
        if not isinstance(hyperparameters.get(key), dict) or "_target_" not in hyperparameters[key]:
            raise CheckpointError(
                f"ckpt_path={path} is not a checkpoint of this project's MNISTClassifier: its {part}s have no "
                f"`{key}` config. Pass a checkpoint written by train.py."
            )
    for key, value in hyperparameters.items():
        if not isinstance(key, str):
            raise walk.refuse(shown(key), "is not a string key")
        if _HYDRA_KEY.match(key):
            raise walk.refuse(key, "is a Hydra key, which a stored hyper-parameter may not hold")
        if key in target_keys and isinstance(value, dict) and "_target_" in value:
            walk.target_config(value, key, allowed[key])
        else:
            walk.plain(value, key, depth=1)


def check_stored_configs(checkpoint: Mapping[str, Any], path: str) -> None:
    """Both trees a checkpoint stores configs in: the module's and the datamodule's."""
    check_hyperparameters(
        checkpoint.get("hyper_parameters"), path, "model hyper-parameter", MODEL_TARGET_KEYS, required=("net",)
    )
    if "datamodule_hyper_parameters" in checkpoint:
        check_hyperparameters(checkpoint["datamodule_hyper_parameters"], path, "data hyper-parameter", DATA_TARGET_KEYS)
