"""Plain nn.Module networks (dense_net, conv_net; registry.py lists them) and the LightningModule that trains them.

The names below load on first use (PEP 562), so onnx_model.py imports without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mnist_classifier.registry import NETWORKS

if TYPE_CHECKING:
    from mnist_classifier.models.classifier import MNISTClassifier
    from mnist_classifier.models.conv_net import ConvNet
    from mnist_classifier.models.dense_net import DenseNet

# the networks of registry.py (the classes a checkpoint may name) are exported here by their names
_HOMES = {"MNISTClassifier": "classifier", **NETWORKS}
__all__ = ["ConvNet", "DenseNet", "MNISTClassifier"]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
