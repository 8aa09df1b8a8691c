"""MNIST data: torchvision's parser, an in-memory tensor dataset and the LightningDataModule.

The names below load on first use (PEP 562), so the torch-free modules here (pictures.py, mnist_style.py)
import without torch: serving an ONNX model needs neither torch nor Lightning.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mnist_classifier.data.augment import RandomAffineBatch
    from mnist_classifier.data.mnist_datamodule import MNISTDataModule

_HOMES = {"RandomAffineBatch": "augment", "MNISTDataModule": "mnist_datamodule"}
__all__ = ["AUGMENTATIONS", "MNISTDataModule", "RandomAffineBatch"]


def __getattr__(name: str) -> Any:
    if name == "AUGMENTATIONS":  # the batch augmentations a checkpoint may name in `augment._target_` (trust.py)
        return (__getattr__("RandomAffineBatch"),)
    if name in _HOMES:
        return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
