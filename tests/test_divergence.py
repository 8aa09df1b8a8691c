"""Divergence is any loss that stops being a sensible number, and chance accuracy after real training;
short and debug runs are not judged by accuracy (models/divergence.py has the rule)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import QUIET, run_cli

from mnist_classifier.errors import TrainingDivergedError
from mnist_classifier.models.divergence import MIN_STEPS_FOR_ACCURACY, check_epoch_loss, check_final_accuracy
from mnist_classifier.runtime.metrics_file import read_metrics


@pytest.mark.parametrize("loss", [float("nan"), float("inf"), 4.5e16, 231.0])
def test_exploded_or_not_finite_loss_is_divergence(loss: float) -> None:
    with pytest.raises(TrainingDivergedError, match=r"Training diverged: .* Lower model\.optimizer\.lr \(now 1e9\)"):
        check_epoch_loss(0, loss, first_loss=2.3, num_classes=10, lr="1e9")


@pytest.mark.parametrize(("loss", "first"), [(2.5, 2.3), (0.01, 2.3), (50.0, 0.01), (200.0, None), (250.0, 3.0)])
def test_sensible_losses_pass(loss: float, first: float | None) -> None:
    check_epoch_loss(0, loss, first_loss=first, num_classes=10, lr=0.1)


def test_chance_accuracy_after_real_training_is_a_failure() -> None:
    with pytest.raises(TrainingDivergedError, match=r"validation accuracy is 8\.75%, chance level \(10%\)"):
        check_final_accuracy(MIN_STEPS_FOR_ACCURACY, 0.0875, "validation", 10, 1e9)


@pytest.mark.parametrize(("steps", "accuracy"), [(MIN_STEPS_FOR_ACCURACY - 1, 0.09), (10_000, 0.2), (2, None)])
def test_short_runs_and_learning_runs_pass(steps: int, accuracy: float | None) -> None:
    check_final_accuracy(steps, accuracy, "validation", 10, 0.1)


def test_huge_lr_run_ends_failed_with_advice(synthetic_data_dir: Path, tmp_path: Path) -> None:
    result = run_cli("train.py", "model=cnn", "model.optimizer.lr=1e9", f"data.data_dir={synthetic_data_dir}",
                     "data.val_size=100", "data.batch_size=50", "trainer.max_epochs=1", "test=false",
                     f"hydra.run.dir={tmp_path}", *QUIET)  # fmt: skip
    assert result.returncode == 2, result.stderr[-3000:]
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("Error: Training diverged: the mean training loss of epoch 0 is"), message
    assert "Lower model.optimizer.lr (now 1000000000.0)" in message and "Traceback" not in result.stderr
    metrics = read_metrics(tmp_path)
    assert metrics["status"] == "failed" and metrics["error"] == message.removeprefix("Error: ")
