"""Plain Python values for hyperparameters, so checkpoints load with torch's weights_only=True."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf


def to_plain(value: Any) -> Any:
    """Config nodes (DictConfig/ListConfig) become dicts/lists; anything else is returned as is."""
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value
