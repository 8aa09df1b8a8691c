"""Accuracy floors on real MNIST (official test set). Slow: whole epochs; run in CI."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import assert_ok, run_cli
from test_cli import QUIET

from mnist_classifier.tasks.metrics_file import read_metrics

pytestmark = [pytest.mark.slow, pytest.mark.real_data]


def train(real_data_dir: Path, run_dir: Path, *overrides: str) -> dict:
    assert_ok(run_cli("train.py", f"data.data_dir={real_data_dir}", f"hydra.run.dir={run_dir}", *QUIET, *overrides))
    return read_metrics(run_dir)


def test_default_cnn_recipe_reaches_99_percent(real_data_dir: Path, tmp_path: Path) -> None:
    """`python train.py` as shipped (issue 3 target: >= 99.0%)."""
    metrics = train(real_data_dir, tmp_path)
    assert metrics["test/acc"] >= 0.990, metrics


def test_cnn_one_epoch_floor_and_eval_agrees(real_data_dir: Path, tmp_path: Path) -> None:
    metrics = train(real_data_dir, tmp_path / "train", "model=cnn", "trainer.max_epochs=1")
    assert metrics["test/acc"] >= 0.980, metrics
    result = run_cli(
        "eval.py",
        f"ckpt_path={metrics['ckpt_path']}",
        f"data.data_dir={real_data_dir}",
        f"hydra.run.dir={tmp_path / 'eval'}",
        "reports=none",
    )
    assert_ok(result)
    assert read_metrics(tmp_path / "eval")["test/acc"] == pytest.approx(metrics["test/acc"], abs=0.001)


def test_dense_recipe_floor(real_data_dir: Path, tmp_path: Path) -> None:
    """`python train.py model=dense` as shipped (~20 s). Its target, 98.5%, is reported by the
    benchmark; the floor here leaves room for another CPU's numerics (fp32 where bf16 is missing)."""
    metrics = train(real_data_dir, tmp_path, "model=dense", "reports=none")
    assert metrics["test/acc"] >= 0.983, metrics
