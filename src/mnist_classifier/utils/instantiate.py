"""Build lists of callbacks/loggers from config groups, and the objects an object's arguments describe."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from mnist_classifier.errors import ArgumentError, ConfigValueError


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


def instantiate_argument(argument: str, config: Mapping[str, Any]) -> Any:
    """The object the `_target_` config of an object's `argument` describes (the classifier's `net`, the
    datamodule's `augment`): a bad argument of it is one of `argument` (`net.channels ...`)."""
    try:
        return instantiate(config)
    except InstantiationException as err:
        if isinstance(err.__cause__, ArgumentError):
            raise err.__cause__.under(argument) from err
        raise
