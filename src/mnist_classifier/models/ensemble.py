"""Several checkpoints as one model (`ckpt_path=[a.ckpt,b.ckpt,c.ckpt]` in eval, predict, export and serve):
the ensemble's class probabilities are the mean of its members' softmax probabilities.

Each member is read by the safe loader and rebuilt on its own (models/from_checkpoint.py), so members may be
different networks (a CNN and a dense net both take the same normalised (N, 1, 28, 28) batch), and each runs
with its own fast path (channels_last) as it would alone. As scores, the ensemble gives the log of the averaged
probabilities: their softmax is that average again, so every consumer of one model's scores (the test report,
the exported `logits`) reads an ensemble's the same way.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import ListConfig
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from mnist_classifier.checkpoint.loader import EXAMPLE_PATH
from mnist_classifier.digits import NUM_CLASSES
from mnist_classifier.errors import CheckpointError, ConfigValueError, UserFacingError
from mnist_classifier.models.classifier import MNISTClassifier
from mnist_classifier.models.from_checkpoint import load_model

Member = TypeVar("Member")
Probabilities = Callable[[np.ndarray], np.ndarray]  # a predictor's `probabilities` (predictor.py)


def ensemble_paths(ckpt_path: Any) -> list[str]:
    """The members of `ckpt_path=[a,b,c]` (a Hydra list), checked; a single path (a string) is not an
    ensemble, and every task treats it exactly as before."""
    paths = list(ckpt_path) if isinstance(ckpt_path, (ListConfig, list, tuple)) else []
    if not paths or not all(isinstance(path, str) and path for path in paths):
        raise ConfigValueError(
            f"ckpt_path={ckpt_path!r} must be a checkpoint's path, ckpt_path={EXAMPLE_PATH}, or a list of "
            f"them to average, ckpt_path=[a.ckpt,b.ckpt,c.ckpt]."
        )
    return paths


def load_members(paths: Sequence[str], load: Callable[[str], Member]) -> list[Member]:
    """`load` (the safe loader and rebuild of one checkpoint) applied to each member; a member that fails
    is named by its place and path, with the single checkpoint's message."""
    members = []
    for number, path in enumerate(paths, start=1):
        try:
            members.append(load(path))
        except UserFacingError as err:
            which = f"Ensemble member {number} of {len(paths)}" + ("" if path in str(err) else f" ({path})")
            raise CheckpointError(f"{which}: {err}") from err
    return members


def average_log_probabilities(member_log_probabilities: Sequence[torch.Tensor]) -> torch.Tensor:
    """log(mean_i p_i) from the members' log-probabilities, without leaving log space."""
    stacked = torch.stack(list(member_log_probabilities))
    return torch.logsumexp(stacked, dim=0) - math.log(len(member_log_probabilities))


class AveragedNet(nn.Module):
    """Networks that map the same normalised batch to scores (logits or log-probabilities) -> the log of the
    mean of their probabilities. What export.py wraps in ProbabilityModel: one graph for the ensemble."""

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def member_log_probabilities(self, images: torch.Tensor) -> list[torch.Tensor]:
        # softmax of logits or of log-probabilities is the member's distribution; float32 under bf16 autocast
        return [member(images).float().log_softmax(dim=1) for member in self.members]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return average_log_probabilities(self.member_log_probabilities(images))


def network_name(model: MNISTClassifier) -> str:
    return str(model.hparams["net"]["_target_"])


class EnsembleClassifier(L.LightningModule):
    """What eval.py tests for `ckpt_path=[...]`: test/acc and test/loss (the NLL of the averaged probabilities)
    of the ensemble, as MNISTClassifier reports them for one model, and each member's own test accuracy."""

    def __init__(self, members: Sequence[MNISTClassifier], paths: Sequence[str]) -> None:
        super().__init__()
        self.save_hyperparameters({"members": list(paths)})  # the HPARAMS tab's columns
        self.paths = list(paths)
        self.net = AveragedNet(members)  # each member's forward keeps its own layout (channels_last)
        self.members_run: list[dict[str, Any]] = [  # what metrics.json and the console say of each member
            {"ckpt_path": path, "network": network_name(member), "channels_last": member.channels_last}
            for path, member in zip(paths, members, strict=True)
        ]
        # for the run header: the fast path one member at least takes
        self.channels_last = any(member.channels_last for member in members)
        self.compiled = any(member.compiled for member in members)
        self.test_loss = MeanMetric(nan_strategy="disable")
        self.test_acc = MulticlassAccuracy(NUM_CLASSES, average="micro")
        self.member_acc = nn.ModuleList(MulticlassAccuracy(NUM_CLASSES, average="micro") for _ in members)
        self.member_test_acc: list[float] = []

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        images, labels = batch
        members = self.net.member_log_probabilities(images)
        scores = average_log_probabilities(members)
        self.test_loss.update(F.nll_loss(scores, labels), weight=labels.numel())
        self.test_acc.update(scores, labels)
        for accuracy, member in zip(self._member_accuracies(), members, strict=True):
            accuracy.update(member, labels)
        return {"scores": scores, "labels": labels}  # read by the report callbacks

    def on_test_epoch_end(self) -> None:
        self.log_dict({"test/loss": self.test_loss.compute(), "test/acc": self.test_acc.compute()})
        self.member_test_acc = [float(accuracy.compute()) for accuracy in self._member_accuracies()]
        for metric in (self.test_loss, self.test_acc, *self._member_accuracies()):
            metric.reset()

    def _member_accuracies(self) -> list[MulticlassAccuracy]:
        return cast("list[MulticlassAccuracy]", list(self.member_acc))  # a ModuleList, so they move with the model

    def description(self) -> str:
        """For the console: which members are averaged, and how each runs."""
        lines = [f"Ensemble of {len(self.paths)} checkpoints, the mean of their probabilities:"]
        for number, member in enumerate(self.members_run, start=1):
            layout = ", channels_last" if member["channels_last"] else ""
            lines.append(f"  {number}. {member['ckpt_path']} ({member['network'].rsplit('.', 1)[-1]}{layout})")
        return "\n".join(lines)

    def member_rows(self) -> list[dict[str, Any]]:
        """After testing, per member for metrics.json: its checkpoint, network, layout and own test accuracy."""
        tested = zip(self.members_run, self.member_test_acc, strict=True)
        return [{**member, "test/acc": accuracy} for member, accuracy in tested]


def load_ensemble(paths: Sequence[str]) -> EnsembleClassifier:
    """Each member through the safe loader and rebuilt, then averaged."""
    return EnsembleClassifier(load_members(paths, load_model), paths).eval()


class AveragedPredictor:
    """predict.py and serve.py for `ckpt_path=[...]`: the members' predictors run on the same decoded
    pictures, their probabilities averaged (predictor.py's `probabilities(pixels)` interface)."""

    def __init__(self, members: Sequence[Probabilities]) -> None:
        self.members = list(members)

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        return np.stack([probabilities(pixels) for probabilities in self.members]).mean(axis=0)
