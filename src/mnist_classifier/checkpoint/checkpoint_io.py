"""Lightning's checkpoint reading and writing for this project (the trainer's `plugins`): reads go through
the safe loader, writes are atomic and a full disk is a clear error that keeps the previous file."""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from mnist_classifier.checkpoint.loader import load_checkpoint
from mnist_classifier.errors import CheckpointError
from mnist_classifier.utils.atomic import write_with


class SafeCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        try:
            write_with(path, lambda file: torch.save(checkpoint, file))
        except OSError as err:
            reason = "the disk is full" if err.errno in (errno.ENOSPC, errno.EDQUOT) else err.strerror or str(err)
            kept = f" The previous {Path(path).name} is intact." if Path(path).exists() else ""
            raise CheckpointError(
                f"Could not save the checkpoint {path}: {reason}.{kept} Free some space (or point "
                f"paths.log_dir at a disk with room) and resume from the last checkpoint that was saved."
            ) from err

    def load_checkpoint(
        self, path: Any, map_location: Callable | None = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        """Always weights_only=True and checked (checkpoint/loader.py), whatever the caller asks."""
        return load_checkpoint(path)
