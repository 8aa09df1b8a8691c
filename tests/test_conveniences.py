"""The lightning-hydra-template conveniences: config tree, tags, debug presets and the loggers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import assert_ok, run_cli
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from test_reports import tensorboard_run

from mnist_classifier.runtime.metrics_file import read_metrics

SHORT = ["data.val_size=100", "trainer.max_epochs=1", "trainer.limit_train_batches=4"]


def test_every_logger_at_once_with_tags_and_the_config_tree(synthetic_data_dir: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = run_cli(
        "train.py", f"data.data_dir={synthetic_data_dir}", *SHORT, "logger=many_loggers", "tags=[baseline,mnist]",
        "extras.print_config=true", f"paths.log_dir={tmp_path / 'logs'}", f"hydra.run.dir={run_dir}",
    )  # fmt: skip
    assert_ok(result)
    assert "mlflow.store.db.utils" not in result.stderr, "MLflow's database set-up notes stay off the console"
    assert "Experiment with name train not found" not in result.stderr, "a new MLflow experiment is made as meant"
    metrics = read_metrics(run_dir)
    assert metrics["tags"] == ["baseline", "mnist"]

    tree = (run_dir / "config_tree.log").read_text()
    assert "CONFIG" in result.stdout and "model" in tree and "_target_: mnist_classifier.models.ConvNet" in tree

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'logs' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("train")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.params["tags"] == "baseline, mnist"
    assert (
        run.info.run_name
        == tensorboard_run(run_dir).name
        == (f"train cnn val_size=100 max_epochs=1 limit_train_batches=4 {run_dir.name}")
    )
    assert run.data.params["net/_target_"] == "mnist_classifier.models.ConvNet"
    assert run.data.metrics["test/acc"] == pytest.approx(metrics["test/acc"], abs=1e-6)
    assert "val/acc" in run.data.metrics

    wandb_runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(wandb_runs) == 1 and list(wandb_runs[0].glob("run-*.wandb")), "W&B offline run files"
    assert (run_dir / "csv" / "metrics.csv").read_text().startswith(("epoch", "step", "test", "train", "val"))
    scalars = EventAccumulator(str(tensorboard_run(run_dir))).Reload().Tags()["scalars"]
    assert "val/acc" in scalars


def test_debug_overfit_drives_the_training_loss_down(synthetic_data_dir: Path, tmp_path: Path) -> None:
    result = run_cli("train.py", "debug=overfit", f"data.data_dir={synthetic_data_dir}", "data.val_size=100",
                     f"hydra.run.dir={tmp_path}")  # fmt: skip
    assert_ok(result)
    history = read_metrics(tmp_path)["history"]
    assert len(history) == 40
    assert history[-1]["train/loss"] < 0.6 * history[0]["train/loss"] and history[-1]["train/loss"] < 0.6
    assert result.stdout.count("\nepoch ") == 40, "a line per epoch"
    assert read_metrics(tmp_path)["train/loss"] == pytest.approx(history[-1]["train/loss"])


@pytest.mark.parametrize("preset", ["default", "profiler"])
def test_debug_presets_run(preset: str, synthetic_data_dir: Path, tmp_path: Path) -> None:
    # the profiler run also trains without validation: the epoch lines still come, from the training loss
    no_validation = ["trainer.limit_val_batches=0", "callbacks.model_checkpoint=null", "callbacks.early_stopping=null",
                     "trainer.max_epochs=2"]  # fmt: skip
    result = run_cli("train.py", f"debug={preset}", f"data.data_dir={synthetic_data_dir}", "data.val_size=100",
                     "trainer.limit_train_batches=3", f"hydra.run.dir={tmp_path}",
                     *(no_validation if preset == "profiler" else []))  # fmt: skip
    assert_ok(result)
    assert read_metrics(tmp_path)["status"] == "ok"
    if preset == "profiler":
        assert len(re.findall(r"^epoch \d  train/loss [\d.]+  val/loss -  val/acc -", result.stdout, re.M)) == 2
        report = (tmp_path / "fit-profiler.txt").read_text()
        assert "Profiler Report" in report and "run_training_epoch" in report
    else:
        assert (tmp_path / "config_tree.log").is_file()
        # DEBUG is for this project's messages: matplotlib's font scoring (2,000 lines) and filelock's lock
        # notes stay out of the console and train.log
        assert "Report: " in result.stderr, "the project's DEBUG messages show"
        assert "\r" not in result.stdout and "it/s" not in result.stdout, "no progress bar off a terminal"
        assert "\nepoch 0  train/loss" in result.stdout, "the epoch line tells the progress"
        assert read_metrics(tmp_path)["ckpt_path"] in result.stdout, "the path whole, to copy (was folded at 80)"
        for text in (result.stderr, (tmp_path / "train.log").read_text()):
            assert "findfont" not in text and "Lock acquired" not in text and "matplotlib" not in text
