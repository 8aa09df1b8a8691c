"""What eval.py tests for `ckpt_path=[a,b,c]`: the members' LightningModules averaged (models/ensemble.py),
with each member's own test accuracy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from mnist_classifier.checkpoint.loader import load_checkpoint
from mnist_classifier.digits import NUM_CLASSES
from mnist_classifier.models.classifier import MNISTClassifier
from mnist_classifier.models.ensemble import AveragedNet, average_log_probabilities, load_members, network_name
from mnist_classifier.models.from_checkpoint import build_model


class EnsembleClassifier(L.LightningModule):
    """What eval.py tests for `ckpt_path=[...]`: test/acc and test/loss (the NLL of the averaged probabilities)
    of the ensemble, as MNISTClassifier reports them for one model, and each member's own test accuracy."""

    def __init__(self, members: Sequence[MNISTClassifier], paths: Sequence[str]) -> None:
        super().__init__()
        self.save_hyperparameters({"members": list(paths)})  # the HPARAMS tab's columns
        self.paths = list(paths)
        self.net = AveragedNet(members)  # each member's forward keeps its own layout (channels_last)
        self.members_run: list[dict[str, Any]] = [  # what metrics.json and the console say of each member
            {"ckpt_path": path, "network": network_name(member.net), "channels_last": member.channels_last}
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
    return EnsembleClassifier(load_members(paths, lambda path: build_model(load_checkpoint(path), path)), paths).eval()
