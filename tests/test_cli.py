"""train.py / eval.py end to end, as a user runs them: real MNIST where it matters."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from conftest import QUIET, assert_ok, run_cli

from mnist_classifier.runtime.metrics_file import read_metrics


def real_run(real_data_dir: Path, run_dir: Path, *overrides: str) -> dict:
    result = run_cli("train.py", f"data.data_dir={real_data_dir}", f"hydra.run.dir={run_dir}", *QUIET, *overrides)
    assert_ok(result)
    return read_metrics(run_dir)


@pytest.fixture(scope="module")
def trained_cnn(real_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """One short CNN run on real MNIST (80 batches), tested on the full official test set."""
    run_dir = tmp_path_factory.mktemp("cnn_run")
    metrics = real_run(real_data_dir, run_dir, "trainer.max_epochs=1", "trainer.limit_train_batches=80")
    return run_dir, metrics


@pytest.mark.real_data
def test_train_writes_run_dir_and_metrics(trained_cnn: tuple[Path, dict]) -> None:
    run_dir, metrics = trained_cnn
    assert metrics["status"] == "ok"
    assert {"test/loss", "test/acc", "val/acc_best", "ckpt_path", "history"} <= set(metrics)
    assert 0.9 < metrics["test/acc"] <= 1 and 0 < metrics["test/loss"] < 0.5
    assert metrics["history"] == [
        {
            "epoch": 0,
            "train/loss": pytest.approx(metrics["train/loss"]),
            "val/loss": pytest.approx(metrics["val/loss"]),
            "val/acc": pytest.approx(metrics["val/acc"]),
        }
    ]
    assert Path(metrics["ckpt_path"]).parent == run_dir / "checkpoints"
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert (run_dir / ".hydra" / "config.yaml").is_file() and (run_dir / "train.log").is_file()


@pytest.mark.real_data
def test_checkpoint_loads_with_weights_only(trained_cnn: tuple[Path, dict]) -> None:
    checkpoint = torch.load(trained_cnn[1]["ckpt_path"], map_location="cpu", weights_only=True)
    assert checkpoint["hyper_parameters"]["net"]["_target_"].endswith("ConvNet")
    assert checkpoint["history"][0]["epoch"] == 0


@pytest.mark.real_data
def test_eval_reproduces_train_test_accuracy(
    trained_cnn: tuple[Path, dict], real_data_dir: Path, tmp_path: Path
) -> None:
    _, train_metrics = trained_cnn
    result = run_cli(
        "eval.py",
        f"ckpt_path={train_metrics['ckpt_path']}",
        f"data.data_dir={real_data_dir}",
        f"hydra.run.dir={tmp_path}",
        "reports=none",
    )
    assert_ok(result)
    metrics = read_metrics(tmp_path)
    assert metrics["ckpt_path"] == train_metrics["ckpt_path"]
    assert metrics["test/acc"] == pytest.approx(train_metrics["test/acc"], abs=0.001)
    assert re.search(rf"test accuracy\s+{100 * metrics['test/acc']:.2f}%", result.stdout)
    assert "test loss" in result.stdout


@pytest.mark.real_data
def test_eval_rebuilds_a_dense_checkpoint_without_model_override(real_data_dir: Path, tmp_path: Path) -> None:
    train_metrics = real_run(
        real_data_dir,
        tmp_path / "train",
        "model=dense",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=40",
        "model.net.hidden_sizes=[64]",
    )
    result = run_cli(
        "eval.py",
        f"ckpt_path={train_metrics['ckpt_path']}",
        f"data.data_dir={real_data_dir}",
        f"hydra.run.dir={tmp_path / 'eval'}",
        "reports=none",
    )
    assert_ok(result)
    assert read_metrics(tmp_path / "eval")["test/acc"] == pytest.approx(train_metrics["test/acc"], abs=0.001)


@pytest.mark.real_data
def test_resume_with_another_model_is_refused(
    trained_cnn: tuple[Path, dict], real_data_dir: Path, tmp_path: Path
) -> None:
    last = trained_cnn[0] / "checkpoints" / "last.ckpt"
    result = run_cli(
        "train.py",
        "model=dense",
        f"ckpt_path={last}",
        f"data.data_dir={real_data_dir}",
        f"hydra.run.dir={tmp_path}",
        *QUIET,
    )
    assert result.returncode == 2
    assert "Resume with the same model" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.real_data
def test_multirun_trains_both_models(real_data_dir: Path, tmp_path: Path) -> None:
    result = run_cli(
        "train.py",
        "-m",
        "model=dense,cnn",
        "debug=limit",
        f"data.data_dir={real_data_dir}",
        f"hydra.sweep.dir={tmp_path}",
        *QUIET,
    )
    assert_ok(result)
    targets = [read_metrics(tmp_path / str(job)) for job in (0, 1)]
    assert all(m["status"] == "ok" and "test/acc" in m for m in targets)
    nets = [json.dumps((tmp_path / str(job) / ".hydra" / "overrides.yaml").read_text()) for job in (0, 1)]
    assert "model=dense" in nets[0] and "model=cnn" in nets[1]


def test_the_test_after_fit_scores_the_weights_the_best_checkpoint_holds(
    synthetic_data_dir: Path, tmp_path: Path
) -> None:
    """With a weight-averaging callback (EMA), validation and the saved checkpoints hold the averaged weights,
    and Lightning's restore for a test puts the raw training weights back: train.py's test/loss must be
    the checkpoint's, as eval.py (which reads only its weights) scores it."""
    data = [f"data.data_dir={synthetic_data_dir}", "data.val_size=100", "data.batch_size=50", "reports=none"]
    ema = ["+callbacks.ema._target_=lightning.pytorch.callbacks.EMAWeightAveraging", "+callbacks.ema.decay=0.9"]
    trained = run_cli("train.py", "model=dense", "model.net.hidden_sizes=[32]", "trainer.max_epochs=2",
                      f"hydra.run.dir={tmp_path / 'train'}", *ema, *data, *QUIET)  # fmt: skip
    assert_ok(trained)
    train_metrics = read_metrics(tmp_path / "train")
    best = train_metrics["ckpt_path"]
    evaluated = run_cli("eval.py", f"ckpt_path={best}", f"hydra.run.dir={tmp_path / 'eval'}", *data)
    assert_ok(evaluated)
    assert train_metrics["test/loss"] == pytest.approx(read_metrics(tmp_path / "eval")["test/loss"], rel=1e-4)


def test_default_run_dir_layout(synthetic_data_dir: Path) -> None:
    """No hydra.run.dir override: logs/<task>/runs/<date>_<time>_<microseconds>/ under the project."""
    result = run_cli("train.py", "debug=fdr", f"data.data_dir={synthetic_data_dir}", "data.val_size=100", *QUIET)
    assert_ok(result)
    match = re.search(r"Run dir: (\S+)", result.stdout)
    assert match, result.stdout
    run_dir = Path(match.group(1))
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}_\d{6}", run_dir.name)
    assert run_dir.parent.parts[-3:] == ("logs", "debug", "runs")
    assert read_metrics(run_dir)["status"] == "ok"


def test_ddp_sim_shards_the_training_data(synthetic_data_dir: Path, tmp_path: Path) -> None:
    with_reports = [o for o in QUIET if o != "reports=none"]
    common = [
        f"data.data_dir={synthetic_data_dir}",
        "data.val_size=100",
        "data.batch_size=50",
        "trainer.max_epochs=1",
        "model=dense",
        "model.net.hidden_sizes=[32]",
        *with_reports,
    ]
    single = run_cli("train.py", f"hydra.run.dir={tmp_path / 'single'}", *common)
    ddp = run_cli("train.py", "trainer=ddp_sim", f"hydra.run.dir={tmp_path / 'ddp'}", *common)
    assert_ok(single)
    assert_ok(ddp)
    # 500 training images: 10 batches of 50 on one process, 5 per process on 2 processes
    assert read_metrics(tmp_path / "single")["global_step"] == 10
    assert read_metrics(tmp_path / "ddp")["global_step"] == 5
    assert 0 <= read_metrics(tmp_path / "ddp")["test/acc"] <= 1
    # the test report gathers both ranks' shards: the whole synthetic test set
    report = json.loads((tmp_path / "ddp" / "classification_report.json").read_text())
    assert sum(report[str(c)]["support"] for c in range(10)) == 200
    assert report["accuracy"] == pytest.approx(read_metrics(tmp_path / "ddp")["test/acc"], abs=1e-6)


def test_ddp_on_three_processes_tests_every_image_once(synthetic_data_dir: Path, tmp_path: Path) -> None:
    """200 test images do not split evenly in 3: Lightning's DistributedSampler tested 201 (an image twice)."""
    data = [f"data.data_dir={synthetic_data_dir}", "data.val_size=100"]
    ddp = run_cli("train.py", "trainer=ddp_sim", "trainer.devices=3", f"hydra.run.dir={tmp_path / 'ddp'}", *data,
                  "data.batch_size=50", "trainer.max_epochs=1", "model=dense", "model.net.hidden_sizes=[32]",
                  *(o for o in QUIET if o != "reports=none"))  # fmt: skip
    assert_ok(ddp)
    metrics = read_metrics(tmp_path / "ddp")
    report = json.loads((tmp_path / "ddp" / "classification_report.json").read_text())
    assert sum(report[str(c)]["support"] for c in range(10)) == 200
    logs = sorted(path.name for path in (tmp_path / "ddp").glob("*.log"))
    assert logs == ["train.log", "train_rank1.log", "train_rank2.log"], "was train_ddp_process_1_rank1.log"
    alone = run_cli("eval.py", f"ckpt_path={metrics['ckpt_path']}", f"hydra.run.dir={tmp_path / 'eval'}", *data,
                    "logger=none", "reports=none")  # fmt: skip
    assert_ok(alone)
    assert metrics["test/acc"] == pytest.approx(read_metrics(tmp_path / "eval")["test/acc"], abs=1e-6)
    assert report["accuracy"] == pytest.approx(metrics["test/acc"], abs=1e-6)
    assert "site-packages" not in ddp.stderr, "no library warning (sync_dist, DistributedSampler, all_gather)"


def test_a_damaged_archive_is_named(tmp_path: Path) -> None:
    """Was: 'MNIST is not available ... Put the four files in that folder' (or a failed download's text)."""
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b truncated")
    result = run_cli("train.py", f"data.data_dir={tmp_path / 'data'}", f"hydra.run.dir={tmp_path / 'run'}", *QUIET)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{raw / 'train-images-idx3-ubyte.gz'} is there but damaged: its md5 is not MNIST's" in result.stderr


def test_missing_data_is_one_clear_error(tmp_path: Path) -> None:
    result = run_cli(
        "train.py",
        f"data.data_dir={tmp_path / 'empty'}",
        "data.download=false",
        f"hydra.run.dir={tmp_path / 'run'}",
        *QUIET,
    )
    assert result.returncode == 2
    assert "MNIST is not available in" in result.stderr and "train-images-idx3-ubyte.gz" in result.stderr
    assert "Traceback" not in result.stderr
    assert read_metrics(tmp_path / "run")["status"] == "failed"


@pytest.mark.parametrize("content", [None, b"not a checkpoint", b"PK\x03\x04garbage"])
def test_bad_ckpt_path_is_one_clear_error(content: bytes | None, tmp_path: Path) -> None:
    path = tmp_path / "model.ckpt"
    if content is not None:
        path.write_bytes(content)
    result = run_cli("eval.py", f"ckpt_path={path}", f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == 2
    expected = "no such file" if content is None else "cannot be read as a PyTorch checkpoint"
    assert expected in result.stderr and "Traceback" not in result.stderr


def test_eval_without_ckpt_path_says_what_to_pass(tmp_path: Path) -> None:
    result = run_cli("eval.py", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 2 and "eval.py needs a checkpoint: python eval.py ckpt_path=" in result.stderr


def test_foreign_checkpoint_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "weights.ckpt"
    torch.save({"state_dict": {}}, path)
    result = run_cli("eval.py", f"ckpt_path={path}", f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == 2 and "not a checkpoint of this project" in result.stderr


def test_bad_config_value_is_one_clear_error(tmp_path: Path) -> None:
    result = run_cli("train.py", "model.optimizer.lr=-1", f"hydra.run.dir={tmp_path}", *QUIET)
    assert result.returncode == 2
    assert "model.optimizer.lr must be a number > 0" in result.stderr and "Traceback" not in result.stderr
