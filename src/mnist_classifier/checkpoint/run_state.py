"""What decides the rest of a run besides weights, optimizer and schedule (which Lightning saves): the
random number generators (dropout, augmentation) and the current epoch's metric accumulators. Saved in
every checkpoint and restored on resume, so a resumed run continues exactly as the uninterrupted one."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason
from torchmetrics import Metric

from mnist_classifier.errors import CheckpointError


def capture_rng() -> dict[str, Any]:
    """Every generator as tensors and plain data (loadable with weights_only=True)."""
    _, keys, position, has_gauss, cached = np.random.get_state(legacy=True)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else [],
        "numpy": {
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": random.getstate(),
    }


def restore_rng(state: Mapping[str, Any]) -> None:
    try:
        torch.set_rng_state(state["torch"])
        if state["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
        numpy_state = state["numpy"]
        np.random.set_state(
            (
                "MT19937",
                numpy_state["keys"].numpy().astype(np.uint32),
                int(numpy_state["position"]),
                int(numpy_state["has_gauss"]),
                float(numpy_state["cached_gaussian"]),
            )
        )
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as err:
        raise CheckpointError(
            f"The checkpoint's random number generator states cannot be restored ({err}); it was damaged or altered."
        ) from err


def _copy(state: torch.Tensor | list[torch.Tensor]) -> torch.Tensor | list[torch.Tensor]:
    return state.clone() if isinstance(state, torch.Tensor) else [t.clone() for t in state]


def capture_metrics(metrics: Mapping[str, Metric]) -> dict[str, Any]:
    return {
        name: {"state": {k: _copy(v) for k, v in metric.metric_state.items()}, "updates": metric.update_count}
        for name, metric in metrics.items()
    }


def restore_metrics(metrics: Mapping[str, Metric], saved: Mapping[str, Any]) -> None:
    try:
        for name, metric in metrics.items():
            metric.reset()
            metric.merge_state(dict(saved[name]["state"]))
            metric._update_count = int(saved[name]["updates"])  # no public setter; compute() checks it
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise CheckpointError(
            f"The checkpoint's metric accumulators cannot be restored ({err}); it was damaged or altered."
        ) from err


def training_progress(trainer: L.Trainer) -> dict[str, Any]:
    """How far a run got: whole epochs trained, and whether it had finished (all `max_epochs`, or
    stopped by early stopping). A resume of a finished run is refused with what to do instead."""
    loop: Any = trainer.fit_loop  # its progress trackers are typed as their base class, without `processed`
    epochs, batches_done = loop.epoch_progress.current, loop.epoch_loop.batch_progress.current.processed
    # an epoch whose batches are all done counts before Lightning marks it processed (at its very end)
    epochs_completed = epochs.processed + int(
        epochs.started > epochs.processed and batches_done >= trainer.num_training_batches
    )
    stopped_early = any(
        cb.stopping_reason != EarlyStoppingReason.NOT_STOPPED for cb in trainer.early_stopping_callbacks
    )
    return {
        "epochs_completed": epochs_completed,
        "max_epochs": trainer.max_epochs,
        "finished": bool(epochs_completed >= (trainer.max_epochs or 0) or stopped_early),
    }
