"""Lightning's checkpoint reading and writing for this project (the trainer's `plugins`): reads go through
the safe loader, writes are atomic and a full disk is a clear error that keeps the previous file."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from mnist_classifier.checkpoint.loader import load_checkpoint
from mnist_classifier.errors import DiskWriteError
from mnist_classifier.utils.atomic import disk_fault, disk_fault_message, write_with

log = logging.getLogger(__name__)


class SafeCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        try:
            write_with(path, lambda file: torch.save(checkpoint, file))
        except DiskWriteError as err:
            fault = disk_fault(err)
            assert fault is not None
            then = "resume from the last checkpoint that was saved (ckpt_path=...)"
            raise DiskWriteError(disk_fault_message(path, fault, then)) from err.__cause__

    def load_checkpoint(
        self, path: Any, map_location: Callable | None = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        """Always weights_only=True and checked (checkpoint/loader.py), whatever the caller asks."""
        return load_checkpoint(path)

    def remove_checkpoint(self, path: Any) -> None:
        """Only a local checkpoint file (or a link to one): Lightning's own removes whatever fsspec finds at the
        path, a whole folder or a URL included, and a crafted checkpoint's stored paths reach it on resume."""
        text = os.fspath(path)
        file = Path(text)
        if file.is_symlink() or file.is_file():
            file.unlink()
        elif "://" in text or file.exists():
            log.warning("Not removing %s: a replaced checkpoint is a local file, and this is not one.", path)
