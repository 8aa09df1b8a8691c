"""Plain nn.Module networks (dense_net, conv_net) and the LightningModule that trains them.

The names below load on first use (PEP 562), so onnx_model.py imports without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mnist_classifier.models.classifier import MNISTClassifier
    from mnist_classifier.models.conv_net import ConvNet
    from mnist_classifier.models.dense_net import DenseNet

_HOMES = {"MNISTClassifier": "classifier", "ConvNet": "conv_net", "DenseNet": "dense_net"}
__all__ = ["NETWORKS", "ConvNet", "DenseNet", "MNISTClassifier"]


def __getattr__(name: str) -> Any:
    # The networks a checkpoint may name in `net._target_` (checkpoints are data: see checkpoint/trust.py).
    # Add your own network class here to evaluate, resume, predict or export its checkpoints.
    if name == "NETWORKS":
        return (__getattr__("DenseNet"), __getattr__("ConvNet"))
    if name in _HOMES:
        return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
