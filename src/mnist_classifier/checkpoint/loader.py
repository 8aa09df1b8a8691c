"""Checking a `ckpt_path` before Lightning touches it, so a bad path gets a clear message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mnist_classifier.errors import CheckpointError

_EXAMPLE = "logs/train/runs/<run>/checkpoints/last.ckpt"


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load with weights_only=True (the safe default) and check it is one of this project's."""
    file = Path(str(path)).expanduser()
    if not file.is_file():
        raise CheckpointError(
            f"ckpt_path={path}: no such file. Pass the path of a checkpoint written by train.py, "
            f"e.g. ckpt_path={_EXAMPLE}."
        )
    try:
        checkpoint = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt or foreign files
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"ckpt_path={path} cannot be read as a PyTorch checkpoint with weights_only=True "
            f"({reason}). It may be truncated, not a checkpoint, or from an untrusted source; "
            f"pass a checkpoint written by train.py, e.g. ckpt_path={_EXAMPLE}."
        ) from err
    hparams = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    if not isinstance(hparams, dict) or "net" not in hparams or "state_dict" not in checkpoint:
        raise CheckpointError(
            f"ckpt_path={path} is a PyTorch file but not a checkpoint of this project's "
            f"MNISTClassifier (no `hyper_parameters.net` / `state_dict`); pass a checkpoint written "
            f"by train.py."
        )
    return checkpoint
