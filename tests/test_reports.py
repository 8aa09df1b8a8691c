"""Figures, reports and TensorBoard contents of training and evaluation runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import assert_ok, run_cli
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2
from torchmetrics.functional.classification import multiclass_accuracy

from mnist_classifier.reports.classification_report import classification_report, report_markdown
from mnist_classifier.runtime.metrics_file import read_metrics

TEST_PLOTS = ("confusion_matrix.png", "misclassified.png", "per_class_accuracy.png")
FAST = ["callbacks.model_summary=null", "callbacks.progress_bar=null", "trainer.enable_progress_bar=false"]


def tensorboard_run(run_dir: Path) -> Path:
    """The run's one TensorBoard events dir, <run dir>/tensorboard/<run label>/."""
    (run,) = (run_dir / "tensorboard").iterdir()
    return run


def events(run_dir: Path) -> EventAccumulator:
    accumulator = EventAccumulator(
        str(tensorboard_run(run_dir)), size_guidance={"images": 0, "scalars": 0, "tensors": 0}
    )
    return accumulator.Reload()


def assert_png(path: Path, min_size: int = 300) -> None:
    assert path.is_file(), path
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG" and min(image.size) >= min_size and max(image.size) <= 3000, image.size


def test_report_matches_torchmetrics_on_the_same_predictions() -> None:
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (500,), generator=generator)
    preds = torch.where(
        torch.rand(500, generator=generator) < 0.8, labels, torch.randint(0, 10, (500,), generator=generator)
    )
    report = classification_report(preds, labels)
    assert report["accuracy"] == pytest.approx(float(multiclass_accuracy(preds, labels, 10, average="micro")))
    assert report["accuracy"] == pytest.approx((preds == labels).float().mean().item())
    for c in range(10):
        true_c, pred_c = labels == c, preds == c
        assert report[str(c)]["support"] == int(true_c.sum())
        assert report[str(c)]["recall"] == pytest.approx(float((pred_c & true_c).sum() / true_c.sum()))
        assert report[str(c)]["precision"] == pytest.approx(float((pred_c & true_c).sum() / pred_c.sum()))
    assert report["weighted avg"]["support"] == 500
    assert "| macro avg |" in report_markdown(report) and "accuracy:" in report_markdown(report)


@pytest.fixture(scope="module")
def real_run(real_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("report_run")
    result = run_cli(
        "train.py",
        f"data.data_dir={real_data_dir}",
        f"hydra.run.dir={run_dir}",
        *FAST,
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=40",
    )
    assert_ok(result)
    assert result.stdout.count("Results") == 1, "the per-class table is in the files, not on the console"
    return run_dir


@pytest.mark.real_data
def test_training_run_writes_plots_and_reports(real_run: Path) -> None:
    for name in (*TEST_PLOTS, "curves.png"):
        assert_png(real_run / "plots" / name)
    report = json.loads((real_run / "classification_report.json").read_text())
    metrics = read_metrics(real_run)
    assert report["accuracy"] == pytest.approx(metrics["test/acc"], abs=1e-6)
    assert sum(report[str(c)]["support"] for c in range(10)) == 10_000
    assert "| 9 |" in (real_run / "classification_report.md").read_text()


@pytest.mark.real_data
def test_tensorboard_has_scalars_images_and_hparams(real_run: Path) -> None:
    acc = events(real_run)
    scalars = set(acc.Tags()["scalars"])
    assert {
        "train/loss_step",
        "train/loss",
        "train/acc",
        "train/lr",
        "val/loss",
        "val/acc",
        "val/acc_best",
        "test/loss",
        "test/acc",
    } == scalars, "no `epoch` card, no single-point `hparams/` copies of the test metrics"
    assert {"test/confusion_matrix", "test/misclassified", "test/per_class_accuracy", "val/predictions"} <= set(
        acc.Tags()["images"]
    )
    assert len(acc.Images("val/predictions")) == 2, "one validation figure per epoch"
    assert len(acc.Scalars("train/loss_step")) == 80 // 50, "step values every log_every_n_steps (80 steps)"
    assert len(acc.Scalars("train/loss")) == 2, "one epoch value per epoch"
    assert {"_hparams_/experiment", "_hparams_/session_start_info"} <= set(acc.PluginTagToContent("hparams"))
    experiment = plugin_data_pb2.HParamsPluginData.FromString(acc.PluginTagToContent("hparams")["_hparams_/experiment"])
    assert {m.name.tag for m in experiment.experiment.metric_infos} == {"test/acc", "test/loss", "val/acc_best"}
    assert "model/optimizer/lr" in {h.name for h in experiment.experiment.hparam_infos}, "a single run: every setting"
    assert acc.Scalars("test/acc")[-1].value == pytest.approx(read_metrics(real_run)["test/acc"], abs=1e-6)


@pytest.mark.real_data
def test_eval_writes_the_test_side_reports(real_run: Path, real_data_dir: Path, tmp_path: Path) -> None:
    ckpt = read_metrics(real_run)["ckpt_path"]
    result = run_cli("eval.py", f"ckpt_path={ckpt}", f"data.data_dir={real_data_dir}", f"hydra.run.dir={tmp_path}")
    assert_ok(result)
    for name in TEST_PLOTS:
        assert_png(tmp_path / "plots" / name)
    assert not (tmp_path / "plots" / "curves.png").exists()
    assert json.loads((tmp_path / "classification_report.json").read_text())["accuracy"] == pytest.approx(
        read_metrics(tmp_path)["test/acc"], abs=1e-6
    )
    assert "test/confusion_matrix" in events(tmp_path).Tags()["images"]


def test_each_output_can_be_switched_off(synthetic_data_dir: Path, tmp_path: Path) -> None:
    common = [f"data.data_dir={synthetic_data_dir}", "data.val_size=100", "debug=limit", *FAST]
    result = run_cli(
        "train.py",
        f"hydra.run.dir={tmp_path / 'some'}",
        "reports.test.misclassified=false",
        "reports.curves=null",
        *common,
    )
    assert_ok(result)
    plots = {p.name for p in (tmp_path / "some" / "plots").iterdir()}
    assert plots == {"confusion_matrix.png", "per_class_accuracy.png"}
    assert (tmp_path / "some" / "classification_report.md").is_file()

    result = run_cli("train.py", f"hydra.run.dir={tmp_path / 'none'}", "reports=none", *common)
    assert_ok(result)
    assert (
        not (tmp_path / "none" / "plots").exists() and not (tmp_path / "none" / "classification_report.json").exists()
    )


def test_a_failing_figure_never_costs_the_run_its_results(
    synthetic_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The figure is logged and skipped; metrics.json, the checkpoints and the other reports are written."""
    from test_configs import compose_train

    from mnist_classifier.reports import figures
    from mnist_classifier.runtime.runner import run_task
    from mnist_classifier.tasks.train import train

    def broken(*args: object) -> None:
        raise RuntimeError("no font for the axis labels")

    monkeypatch.setattr(figures, "per_class_accuracy", broken)
    cfg = compose_train(
        f"data.data_dir={synthetic_data_dir}", "data.val_size=100", "debug=limit", "model=dense", "logger=none",
        "data.batch_size=64", f"paths.output_dir={tmp_path}", *FAST,
    )  # fmt: skip
    metrics = run_task(train, cfg)
    assert metrics["status"] == "ok" and "test/acc" in metrics
    assert metrics["report_errors"] == ["per_class_accuracy: RuntimeError: no font for the axis labels"]
    assert read_metrics(tmp_path)["report_errors"] == metrics["report_errors"]
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert_png(tmp_path / "plots" / "confusion_matrix.png")
    assert not (tmp_path / "plots" / "per_class_accuracy.png").exists()
    assert (tmp_path / "classification_report.json").is_file()
