"""The trained LightningModule of a checkpoint, read and checked by the safe loader (checkpoint/loader.py):
what eval.py tests and train.py resumes (predict, serve and export need only its network: trained_net.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mnist_classifier.checkpoint.loader import check_weights
from mnist_classifier.models.classifier import MNISTClassifier
from mnist_classifier.models.run_history import checked_history
from mnist_classifier.models.trained_net import REBUILD_ERRORS, cannot_rebuild


def build_model(checkpoint: dict[str, Any], path: str | Path) -> MNISTClassifier:
    """The trained MNISTClassifier of a checked checkpoint, whichever network and recipe trained it."""
    check_weights(checkpoint, path)
    try:
        model = MNISTClassifier(**checkpoint["hyper_parameters"])
        model.load_state_dict(checkpoint["state_dict"])
        model.on_load_checkpoint(checkpoint)
        checked_history(checkpoint.get("history", []))
    except REBUILD_ERRORS as err:
        raise cannot_rebuild(path, err) from err
    return model.eval()
