"""Multirun grids, the resumable Optuna search, failing trials, the joblib launcher and the summary."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import optuna
import pandas as pd
import pytest
from conftest import assert_ok, run_cli
from optuna.distributions import FloatDistribution, IntDistribution
from test_reports import FAST, assert_png

from mnist_classifier.errors import ConfigValueError
from mnist_classifier.runtime.metrics_file import read_metrics
from mnist_classifier.sweeps.optuna_search import OptunaSearch, open_storage
from mnist_classifier.sweeps.search_space import search_space
from mnist_classifier.utils.threads import usable_cores


@pytest.fixture
def sweep_args(synthetic_data_dir: Path) -> list[str]:
    """Quick jobs: synthetic data, a few batches, a small dense net, no figures."""
    return [
        f"data.data_dir={synthetic_data_dir}",
        "data.val_size=100",
        "debug=limit",
        "model=dense",
        "model.net.hidden_sizes=[32]",
        "reports=none",
        *FAST,
    ]


def summary(sweep_dir: Path) -> pd.DataFrame:
    return pd.read_csv(sweep_dir / "summary.csv")


def test_grid_sweep_writes_every_job_and_a_summary(sweep_args: list[str], tmp_path: Path) -> None:
    result = run_cli(
        "train.py",
        "-m",
        "model.optimizer.lr=0.01,0.05",
        "data.batch_size=32,64",
        f"hydra.sweep.dir={tmp_path}",
        *sweep_args,
    )
    assert_ok(result)
    for job in range(4):
        assert read_metrics(tmp_path / str(job))["status"] == "ok"
    table = summary(tmp_path)
    assert len(table) == 4 and set(table["status"]) == {"ok"}
    assert {"val/acc_best", "test/acc", "test/loss", "epochs", "wall_time_s"} <= set(table.columns)
    assert table["overrides"].str.contains("model.optimizer.lr=").all()
    assert "(best)" in (tmp_path / "summary.md").read_text()
    assert_png(tmp_path / "summary.png", min_size=200)
    assert "Sweep summary" in result.stdout
    for overrides in table["overrides"]:  # captured output is 80 columns to rich: nothing cut to "…"
        assert overrides in result.stdout


def test_optuna_search_resumes_and_counts_finished_trials(sweep_args: list[str], tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    common = [
        "-m",
        "hparams_search=dense_optuna",
        f"hydra.sweeper.storage={storage}",
        "hydra.sweeper.study_name=resume_test",
        *sweep_args,
    ]
    first = run_cli("train.py", *common, "hydra.sweeper.n_trials=3", f"hydra.sweep.dir={tmp_path / 'first'}")
    assert_ok(first)
    assert len(optuna.load_study(study_name="resume_test", storage=storage).trials) == 3
    second = run_cli("train.py", *common, "hydra.sweeper.n_trials=4", f"hydra.sweep.dir={tmp_path / 'second'}")
    assert_ok(second)
    trials = optuna.load_study(study_name="resume_test", storage=storage).trials
    assert len(trials) == 4, "the 3 finished trials count toward n_trials=4"
    assert len(summary(tmp_path / "second")) == 1
    assert (tmp_path / "second" / "optimization_results.yaml").is_file()
    for search in (first, second):  # Optuna's notes on heartbeats outside Study.optimize: the sweeper's own affair
        assert "Warning" not in search.stderr and "Heartbeat" not in search.stderr, search.stderr[-2000:]


def test_a_study_resumed_for_another_metric_or_direction_is_refused(sweep_args: list[str], tmp_path: Path) -> None:
    """Was: trials of val/loss added to a study of val/acc_best, a loss of 2.06 reported as its best trial."""
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    common = ["-m", "hparams_search=dense_optuna", f"hydra.sweeper.storage={storage}", "hydra.sweeper.study_name=goal",
              "hydra.sweeper.n_trials=2", *sweep_args]  # fmt: skip
    assert_ok(run_cli("train.py", *common, "hydra.sweeper.n_trials=1", f"hydra.sweep.dir={tmp_path / 'first'}"))
    for change, wanted in (("optimized_metric=val/loss", "maximize val/loss"),
                           ("hydra.sweeper.direction=minimize", "minimize val/acc_best")):  # fmt: skip
        result = run_cli("train.py", *common, change, f"hydra.sweep.dir={tmp_path / 'again'}")
        assert result.returncode == 2, result.stderr[-2000:]
        assert f"was started to maximize val/acc_best; this search asks to {wanted}" in result.stderr
        assert "Traceback" not in result.stderr
    assert len(optuna.load_study(study_name="goal", storage=storage).trials) == 1, "no trial added"


def test_failed_trial_is_recorded_and_the_search_goes_on(sweep_args: list[str], tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    result = run_cli(
        "train.py",
        "-m",
        "hparams_search=dense_optuna",
        f"hydra.sweeper.storage={storage}",
        "hydra.sweeper.study_name=fail_test",
        "hydra.sweeper.n_trials=4",
        "model.optimizer.lr=choice(0.01,1e9)",
        "trainer.gradient_clip_val=null",  # unclipped, lr=1e9 reaches a NaN loss
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        *sweep_args,
    )
    assert_ok(result)
    states = [t.state for t in optuna.load_study(study_name="fail_test", storage=storage).trials]
    assert len(states) == 4
    assert optuna.trial.TrialState.FAIL in states and optuna.trial.TrialState.COMPLETE in states
    table = summary(tmp_path / "sweep")
    failed = table[table["status"] == "failed"]
    assert len(failed) == states.count(optuna.trial.TrialState.FAIL)
    assert "Training diverged" in (tmp_path / "sweep" / "summary.md").read_text()


def test_grid_sweep_with_a_failing_job_keeps_the_others(sweep_args: list[str], tmp_path: Path) -> None:
    # batch 64 and no gradient clipping: several steps an epoch, so lr=1e9 reaches a NaN loss
    result = run_cli(
        "train.py",
        "-m",
        "model.optimizer.lr=0.01,1e9",
        "trainer.gradient_clip_val=null",
        "data.batch_size=64",
        f"hydra.sweep.dir={tmp_path}",
        *sweep_args,
    )
    assert result.returncode != 0, "a grid with a failed job does not exit 0"
    assert "1 of 2 sweep jobs failed" in result.stderr
    assert read_metrics(tmp_path / "0")["status"] == "ok"
    assert read_metrics(tmp_path / "1")["status"] == "failed"
    assert list(summary(tmp_path)["status"]) == ["ok", "failed"]


def test_joblib_launcher_runs_jobs_with_split_threads(sweep_args: list[str], tmp_path: Path) -> None:
    result = run_cli(
        "train.py",
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "model.optimizer.lr=0.01,0.02",
        "data.batch_size=64",  # the dense recipe's 512 is more than the 500 synthetic training images
        f"hydra.sweep.dir={tmp_path}",
        *sweep_args,
    )
    assert_ok(result)
    expected_threads = max(1, usable_cores() // 2)
    for job in (0, 1):
        metrics = read_metrics(tmp_path / str(job))
        assert metrics["status"] == "ok" and metrics["num_threads"] == expected_threads
    assert len(summary(tmp_path)) == 2
    assert "site-packages" not in result.stderr, "the library warnings noise.py filters stay out in the workers too"


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is a Linux feature")
def test_threads_follow_the_cpu_affinity() -> None:
    """A job given one core (taskset, SLURM's --cpus-per-task=1) runs one torch thread, not one per core."""
    code = (
        "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
        "from mnist_classifier.utils.threads import limit_threads; print(limit_threads(None))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "1"


def test_a_range_searches_what_a_grid_of_it_runs() -> None:
    """range(0, 2) is seeds 0 and 1 in a grid (-m seed=range(0,2)); Optuna's search drew 0, 1 and 2."""
    spaces = ["seed=range(0,2)", "model.net.dropout=range(0.0,0.5,0.25)", "lr=range(0,1,0.3)", "batch=range(5,0,-1)"]
    distributions, _ = search_space(spaces)
    assert distributions["seed"] == IntDistribution(0, 1)
    assert distributions["model.net.dropout"] == FloatDistribution(0.0, 0.25, step=0.25)
    assert distributions["lr"] == FloatDistribution(0.0, 0.9, step=0.3), "0.9, not the grid's 0.8999999999999999"
    assert distributions["batch"] == IntDistribution(1, 5), "a descending range runs the same values"


@pytest.mark.parametrize(("setting", "message"), [
    ({"n_trials": "abc"}, "hydra.sweeper.n_trials must be a whole number >= 1; got 'abc'"),
    ({"n_trials": 0}, "hydra.sweeper.n_trials must be a whole number >= 1"),  # ran nothing, exit 0
    ({"n_jobs": 0}, "hydra.sweeper.n_jobs must be a whole number >= 1"),
    ({"direction": "sideways"}, "hydra.sweeper.direction must be maximize or minimize"),
    ({"direction": "NOT_SET"}, "hydra.sweeper.direction must be maximize or minimize"),
    ({"storage": "sqlite:x.db"}, "hydra.sweeper.storage must be journal:PATH or a database URL"),
    ({"storage": None}, "hydra.sweeper.storage must be journal:PATH or a database URL"),
    ({"heartbeat_interval": 0}, "hydra.sweeper.heartbeat_interval must be a whole number of seconds >= 1"),
    ({"max_failure_rate": -1}, "hydra.sweeper.max_failure_rate must be a number from 0 to 1"),
])  # fmt: skip
def test_bad_sweeper_settings_are_refused_before_a_trial(setting: dict, message: str) -> None:
    """Were tracebacks from Optuna or SQLAlchemy (some after a trial had run), or no trial and exit 0."""
    settings = {"study_name": "s", "storage": "sqlite:///s.db", **setting}
    with pytest.raises(ConfigValueError, match=re.escape(message)):
        OptunaSearch(**settings)


@pytest.mark.parametrize("url", ["bogus://x", "mariadb+nosuchdriver://user@host/db"])
def test_a_database_url_sqlalchemy_cannot_open_is_refused(url: str) -> None:
    with pytest.raises(ConfigValueError, match=re.escape(f"hydra.sweeper.storage={url} is not a database SQLAlchemy")):
        open_storage(url, 60)


@pytest.mark.parametrize("space", ["lr=interval(1,0)", "lr=tag(log, interval(-1, 1))", "seed=range(3,3)"])
def test_a_search_space_optuna_cannot_draw_from_is_refused(space: str) -> None:
    with pytest.raises(ConfigValueError, match=re.escape(f"The search space's {space} is not a range Optuna can")):
        search_space([space])
