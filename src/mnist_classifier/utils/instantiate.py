"""Build lists of callbacks/loggers from config groups; an entry that cannot be built is an error."""

from __future__ import annotations

from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig

from mnist_classifier.errors import ConfigValueError


def instantiate_group(group: DictConfig | None, group_name: str) -> list[Any]:
    """Every entry of `group` must be a `_target_` config (or null to switch it off)."""
    objects: list[Any] = []
    for name, entry in (group or {}).items():
        key = str(name)
        if entry is None:
            continue
        if not isinstance(entry, DictConfig) or "_target_" not in entry:
            raise ConfigValueError(
                f"{group_name}.{key} is not a `_target_` config ({entry!r}); give it a `_target_` "
                f"or set `{group_name}.{key}=null` to switch it off."
            )
        objects.append(instantiate(entry))
    return objects
