"""MNIST data: torchvision's parser, an in-memory tensor dataset and the LightningDataModule.

The names below load on first use (PEP 562), so the torch-free modules here (pictures.py, mnist_style.py)
import without torch: serving an ONNX model needs neither torch nor Lightning.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mnist_classifier.registry import AUGMENTATIONS

if TYPE_CHECKING:
    from mnist_classifier.data.augment import RandomAffineBatch
    from mnist_classifier.data.mnist_datamodule import MNISTDataModule

# the augmentations of registry.py (the classes a checkpoint may name) are exported here by their names
_HOMES = {**AUGMENTATIONS, "MNISTDataModule": "mnist_datamodule"}
__all__ = ["MNISTDataModule", "RandomAffineBatch"]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
