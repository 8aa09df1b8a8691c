"""The trained network of a checkpoint on its own, without the LightningModule that trained it: predict.py,
serve.py and export.py run only the network, so they rebuild it from its stored config and `net.*` weights
and need no Lightning (whose import is seconds of a prediction's start-up)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from torch import nn

from mnist_classifier.checkpoint.loader import check_weights, first_line, load_checkpoint
from mnist_classifier.errors import CheckpointError, UserFacingError
from mnist_classifier.utils.fast_path import uses_channels_last

REBUILD_ERRORS = (UserFacingError, TypeError, ValueError, RuntimeError, KeyError)


def cannot_rebuild(path: str | Path, err: BaseException) -> CheckpointError:
    return CheckpointError(
        f"ckpt_path={path}: the model it describes cannot be rebuilt ({first_line(err)}). "
        f"Pass a checkpoint written by train.py."
    )


def build_net(checkpoint: dict[str, Any], path: str | Path) -> nn.Module:
    """The trained network of a checked checkpoint in inference mode, in the memory layout it trained in."""
    check_weights(checkpoint, path)
    hyper_parameters = checkpoint["hyper_parameters"]
    weights = {name.removeprefix("net."): w for name, w in checkpoint["state_dict"].items() if name.startswith("net.")}
    try:
        net: nn.Module = instantiate(hyper_parameters["net"])
        net.load_state_dict(weights)
    except REBUILD_ERRORS as err:
        raise cannot_rebuild(path, err) from err
    if uses_channels_last(net, hyper_parameters.get("channels_last", "auto")):
        net = net.to(memory_format=torch.channels_last)
    return net.eval()


def load_net(path: str | Path) -> nn.Module:
    """load_checkpoint + build_net."""
    return build_net(load_checkpoint(path), path)
