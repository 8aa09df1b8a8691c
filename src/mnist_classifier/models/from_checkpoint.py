"""The trained model of a checkpoint, read and checked by the safe loader (checkpoint/loader.py): what eval,
predict, export and serve run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mnist_classifier.checkpoint.loader import check_weights, first_line, load_checkpoint
from mnist_classifier.errors import CheckpointError, UserFacingError
from mnist_classifier.models.classifier import MNISTClassifier
from mnist_classifier.models.run_history import checked_history


def build_model(checkpoint: dict[str, Any], path: str | Path) -> MNISTClassifier:
    """The trained MNISTClassifier of a checked checkpoint, whichever network and recipe trained it."""
    check_weights(checkpoint, path)
    try:
        model = MNISTClassifier(**checkpoint["hyper_parameters"])
        model.load_state_dict(checkpoint["state_dict"])
        model.on_load_checkpoint(checkpoint)
        checked_history(checkpoint.get("history", []))
    except (UserFacingError, TypeError, ValueError, RuntimeError, KeyError) as err:
        raise CheckpointError(
            f"ckpt_path={path}: the model it describes cannot be rebuilt ({first_line(err)}). "
            f"Pass a checkpoint written by train.py."
        ) from err
    return model.eval()


def load_model(path: str | Path) -> MNISTClassifier:
    """load_checkpoint + build_model."""
    return build_model(load_checkpoint(path), path)
