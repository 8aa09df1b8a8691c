"""Interrupts leave a record and a way back, resume reproduces the uninterrupted run, bad run values are
one paragraph and exit 2, and nothing is ever half-written."""

from __future__ import annotations

import errno
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import QUIET, REPO, assert_ok, run_cli
from hydra.core.override_parser.overrides_parser import OverridesParser
from hypothesis import example, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from mnist_classifier.checkpoint.checkpoint_io import SafeCheckpointIO
from mnist_classifier.errors import DiskWriteError
from mnist_classifier.runtime.command_line import override_value
from mnist_classifier.runtime.metrics_file import read_metrics, write_metrics

# 500 synthetic training images in batches of 50: 10 steps an epoch. Dropout and the dense recipe's batch
# augmentation draw random numbers every step, so an exact resume needs the generators restored.
EXACT = [
    "model=dense",
    "model.net.hidden_sizes=[32]",
    "data.val_size=100",
    "data.batch_size=50",
    "trainer.max_epochs=3",
    "trainer.deterministic=true",
    "trainer.precision=32-true",
    "test=false",
    *QUIET,
]


def signal_at(step: int, name: str) -> list[str]:
    return ["+callbacks.signal._target_=helper_callbacks.SignalAtStep", f"+callbacks.signal.step={step}",
            f"+callbacks.signal.signal_name={name}"]  # fmt: skip


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


def assert_same_run(expected_dir: Path, resumed_dir: Path) -> None:
    expected, resumed = read_metrics(expected_dir), read_metrics(resumed_dir)
    assert resumed["status"] == "ok" and resumed["global_step"] == expected["global_step"]
    assert resumed["history"] == expected["history"]  # every epoch's losses and accuracy, to the last bit
    want, got = weights(expected_dir), weights(resumed_dir)
    assert want.keys() == got.keys()
    assert all(torch.equal(want[key], got[key]) for key in want), "final weights differ"


def run_resume_command(metrics: dict, run_dir: Path) -> subprocess.CompletedProcess:
    """The printed command, as a user would paste it (plus a run dir the test can find)."""
    python, script, *overrides = shlex.split(metrics["resume_command"])
    assert python == "python" and Path(script).name == "train.py"
    return run_cli("train.py", *overrides, f"hydra.run.dir={run_dir}")


@pytest.fixture(scope="module")
def uninterrupted(synthetic_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("uninterrupted")
    assert_ok(run_cli("train.py", f"data.data_dir={synthetic_data_dir}", *EXACT, f"hydra.run.dir={run_dir}"))
    return run_dir


@pytest.mark.parametrize(
    ("signal_name", "exit_code", "step"),
    [("SIGTERM", 143, 14), ("SIGINT", 130, 20)],
    ids=["SIGTERM mid-epoch", "SIGINT at an epoch's last step"],
)
def test_signal_then_printed_command_reproduces_the_run(
    signal_name: str, exit_code: int, step: int, uninterrupted: Path, synthetic_data_dir: Path, tmp_path: Path
) -> None:
    data = f"data.data_dir={synthetic_data_dir}"
    stopped = run_cli("train.py", data, *EXACT, *signal_at(step, signal_name), f"hydra.run.dir={tmp_path / 'a'}")
    assert stopped.returncode == exit_code, stopped.stderr[-3000:]
    record = read_metrics(tmp_path / "a")
    epochs_done = step // 10  # 10 steps an epoch; at an epoch's last step the stop waits for its end
    assert record["status"] == "interrupted" and record["signal"] == signal_name
    assert record["last_completed_epoch"] == epochs_done - 1
    assert [row["epoch"] for row in record["history"]] == list(range(epochs_done))
    assert record["ckpt_path"] == str(tmp_path / "a" / "checkpoints" / "last.ckpt")
    assert record["resume_command"] in stopped.stderr and "Traceback" not in stopped.stderr
    assert f"ckpt_path={record['ckpt_path']}" in record["resume_command"]
    assert torch.load(record["ckpt_path"], weights_only=True)["global_step"] == step
    assert_ok(run_resume_command(record, tmp_path / "b"))
    assert_same_run(uninterrupted, tmp_path / "b")


def test_resume_that_would_change_the_schedule_is_refused(synthetic_data_dir: Path, tmp_path: Path) -> None:
    """A one-cycle schedule was planned for the original length: a resume with more epochs is refused."""
    common = [f"data.data_dir={synthetic_data_dir}", *EXACT, "data.batch_size=10"]  # 50 steps an epoch
    stopped = run_cli("train.py", *common, *signal_at(14, "SIGTERM"), f"hydra.run.dir={tmp_path / 'a'}")
    assert stopped.returncode == 143
    last = tmp_path / "a" / "checkpoints" / "last.ckpt"
    longer = run_cli(
        "train.py", *common, "trainer.max_epochs=5", f"ckpt_path={last}", f"hydra.run.dir={tmp_path / 'b'}"
    )
    assert longer.returncode == 2 and "was planned for 150 steps, but this run lasts 250" in longer.stderr
    # another batch size with as many steps (a batch limit): the schedule matches, the run would not
    smaller = run_cli("train.py", *common, "data.batch_size=5", "trainer.limit_train_batches=50", f"ckpt_path={last}",
                      f"hydra.run.dir={tmp_path / 'c'}")  # fmt: skip
    assert smaller.returncode == 2, smaller.stderr[-2000:]
    assert "trained with data.batch_size=10; this run asks 5" in smaller.stderr
    # testing the checkpoint at another batch size changes nothing: no refusal
    tested = run_cli("train.py", *common, "train=false", "test=true", "optimized_metric=null", "data.batch_size=5",
                     f"ckpt_path={last}", f"hydra.run.dir={tmp_path / 'd'}")  # fmt: skip
    assert_ok(tested)


def test_killed_run_resumed_from_its_last_checkpoint_reproduces_the_run(
    uninterrupted: Path, synthetic_data_dir: Path, tmp_path: Path
) -> None:
    """SIGKILL saves nothing: the run goes on from the last.ckpt of the last finished epoch."""
    data = f"data.data_dir={synthetic_data_dir}"
    killed = run_cli("train.py", data, *EXACT, *signal_at(25, "SIGKILL"), f"hydra.run.dir={tmp_path / 'a'}")
    assert killed.returncode == -signal.SIGKILL
    last = tmp_path / "a" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 20
    assert_ok(run_cli("train.py", data, *EXACT, f"ckpt_path={last}", f"hydra.run.dir={tmp_path / 'b'}"))
    assert_same_run(uninterrupted, tmp_path / "b")


def files_in(directory: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in directory.rglob("*") if path.is_file()}


def test_a_run_into_an_earlier_runs_dir_is_refused_and_a_resume_there_goes_on(
    uninterrupted: Path, synthetic_data_dir: Path, tmp_path: Path
) -> None:
    """`hydra.run.dir=` given twice: the second run wrote over the first's last.ckpt and metrics.json (and
    Hydra over its .hydra/ config) as it went. Now it is refused before anything is written, train and eval
    alike, and the one run that belongs there, the interrupted training resumed in place, goes on."""
    data, run_dir = f"data.data_dir={synthetic_data_dir}", tmp_path / "a"
    stopped = run_cli("train.py", data, *EXACT, *signal_at(14, "SIGTERM"), f"hydra.run.dir={run_dir}")
    assert stopped.returncode == 143, stopped.stderr[-3000:]
    before, last = files_in(run_dir), run_dir / "checkpoints" / "last.ckpt"
    for script, overrides in (("train.py", [data, *EXACT]), ("eval.py", [data, f"ckpt_path={last}"])):
        again = run_cli(script, *overrides, f"hydra.run.dir={run_dir}")
        assert again.returncode == 2, again.stderr[-3000:]
        assert f"Error: hydra.run.dir={run_dir} already holds an earlier run's results (metrics.json, " in again.stderr
        assert ("Name a new hydra.run.dir (or leave it out: every run gets a new dir under logs/)") in again.stderr
        assert "To go on with it, run the command it printed: python " in again.stderr
        assert "Traceback" not in again.stderr and "Warning" not in again.stderr
        assert files_in(run_dir) == before, f"{script} changed the earlier run's files"
    # a resume there that fails before it trains (another network) leaves the interrupted run's record as it was
    record = (run_dir / "metrics.json").read_bytes()
    other = run_cli("train.py", data, *EXACT, "model.net.hidden_sizes=[16]", f"ckpt_path={last}",
                    f"hydra.run.dir={run_dir}")  # fmt: skip
    assert other.returncode == 2 and "was trained with net" in other.stderr, other.stderr[-3000:]
    assert (run_dir / "metrics.json").read_bytes() == record
    before = files_in(run_dir)  # its .hydra/ and train.log tell of the failed attempt
    # going on from another of its checkpoints would rewind the run over its own later files
    (best,) = (run_dir / "checkpoints").glob("epoch_*.ckpt")
    rewind = run_cli("train.py", data, *EXACT, f"ckpt_path={best}", f"hydra.run.dir={run_dir}")
    assert rewind.returncode == 2 and "already holds an earlier run's results" in rewind.stderr
    assert files_in(run_dir) == before
    assert_ok(run_cli("train.py", data, *EXACT, f"ckpt_path={last}", f"hydra.run.dir={run_dir}"))
    assert_same_run(uninterrupted, run_dir)
    # and once it has finished, it is an earlier run like any other
    after = files_in(run_dir)
    again = run_cli("train.py", data, *EXACT, f"ckpt_path={last}", f"hydra.run.dir={run_dir}")
    assert again.returncode == 2 and "To go on with" not in again.stderr and files_in(run_dir) == after


def test_a_run_stopped_in_its_test_points_to_eval_and_is_not_resumed_in_place(
    synthetic_data_dir: Path, tmp_path: Path
) -> None:
    """Stopped during the test after fit, the record said 'No checkpoint was saved' beside the eval.py command
    for its best checkpoint, and a rerun into its dir was told to resume a finished training."""
    data, run_dir = f"data.data_dir={synthetic_data_dir}", tmp_path / "a"
    stopped = run_cli("train.py", data, *EXACT, "test=true", "+callbacks.signal._target_=helper_callbacks.SignalInTest",
                      f"hydra.run.dir={run_dir}")  # fmt: skip
    assert stopped.returncode == 143, stopped.stderr[-3000:]
    record = read_metrics(run_dir)
    assert record["resume_command"].startswith("python ") and "eval.py ckpt_path=" in record["resume_command"]
    assert "after training had finished. Its best checkpoint: " in stopped.stderr
    assert "No checkpoint was saved" not in stopped.stderr
    again = run_cli("train.py", data, *EXACT, f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}",
                    f"hydra.run.dir={run_dir}")  # fmt: skip
    assert again.returncode == 2, again.stderr[-3000:]
    assert f"To go on with it, run the command it printed: {record['resume_command']}" in again.stderr
    assert read_metrics(run_dir) == record


def test_a_resumed_run_in_a_new_folder_tests_its_best_checkpoint(synthetic_data_dir: Path, tmp_path: Path) -> None:
    """The resumed run's checkpoints keep a path into the first run's folder (Lightning reloads a
    ModelCheckpoint's best_model_path when its folder changes): they load, for the test after fit too."""
    common = [f"data.data_dir={synthetic_data_dir}", *EXACT]
    stopped = run_cli("train.py", *common, *signal_at(25, "SIGTERM"), f"hydra.run.dir={tmp_path / 'a'}")
    assert stopped.returncode == 143, stopped.stderr[-3000:]
    last = tmp_path / "a" / "checkpoints" / "last.ckpt"
    assert_ok(run_cli("train.py", *common, "test=true", f"ckpt_path={last}", f"hydra.run.dir={tmp_path / 'b'}"))
    metrics = read_metrics(tmp_path / "b")
    assert metrics["status"] == "ok" and "test/acc" in metrics, metrics
    folders = {
        str(Path(state["best_model_path"]).parent.parent)
        for best in (tmp_path / "b" / "checkpoints").glob("epoch_*.ckpt")
        for state in torch.load(best, weights_only=True)["callbacks"].values()
        if state.get("best_model_path")
    }
    assert str(tmp_path / "a") in folders, f"the case this guards: a path into the first run's folder, {folders}"


@pytest.mark.real_data
def test_default_precision_cnn_resume_keeps_the_history(real_data_dir: Path, tmp_path: Path) -> None:
    """The issue's case: a CNN on real MNIST in the default (automatic) precision, stopped in epoch 1."""
    common = [f"data.data_dir={real_data_dir}", "trainer.max_epochs=3", "trainer.limit_train_batches=30",
              "test=false", *QUIET]  # fmt: skip
    assert_ok(run_cli("train.py", *common, f"hydra.run.dir={tmp_path / 'full'}"))
    stopped = run_cli("train.py", *common, *signal_at(40, "SIGTERM"), f"hydra.run.dir={tmp_path / 'a'}")
    assert stopped.returncode == 143, stopped.stderr[-3000:]
    assert_ok(run_resume_command(read_metrics(tmp_path / "a"), tmp_path / "b"))
    assert_same_run(tmp_path / "full", tmp_path / "b")


def start_training(synthetic_data_dir: Path, run_dir: Path, marker: Path, delay: float = 0.2) -> subprocess.Popen:
    """A real training process that writes `marker` in the middle of epoch 1, then takes `delay` seconds
    longer for each step."""
    overrides = [f"data.data_dir={synthetic_data_dir}", *EXACT, f"hydra.run.dir={run_dir}",
                 "+callbacks.marker._target_=helper_callbacks.MarkerAtStep", "+callbacks.marker.step=13",
                 f"+callbacks.marker.path={marker}", f"+callbacks.marker.delay={delay}"]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PROJECT_ROOT": str(REPO), "PYTHONPATH": str(REPO / "tests")}
    return subprocess.Popen(
        [sys.executable, str(REPO / "train.py"), *overrides],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the training never reached the marker step"
        time.sleep(0.05)


@pytest.mark.parametrize(("signum", "exit_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_from_outside_leaves_a_record_and_a_working_resume_command(
    signum: int, exit_code: int, synthetic_data_dir: Path, tmp_path: Path
) -> None:
    process = start_training(synthetic_data_dir, tmp_path / "a", tmp_path / "marker")
    wait_for(tmp_path / "marker", process)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == exit_code, stderr[-3000:]
    record = read_metrics(tmp_path / "a")
    assert record["status"] == "interrupted" and record["signal"] == signal.Signals(signum).name
    assert record["last_completed_epoch"] == 0
    checkpoint = torch.load(record["ckpt_path"], weights_only=True)
    assert 13 <= checkpoint["global_step"] < 20, "stopped at a step boundary inside epoch 1"
    assert "Resume with:" in stderr and record["resume_command"] in stderr
    resumed = run_resume_command(record, tmp_path / "b")
    assert_ok(resumed)
    assert read_metrics(tmp_path / "b")["global_step"] == 30


def test_second_ctrl_c_exits_at_once(synthetic_data_dir: Path, tmp_path: Path) -> None:
    process = start_training(synthetic_data_dir, tmp_path / "a", tmp_path / "marker", delay=2.0)
    wait_for(tmp_path / "marker", process)
    process.send_signal(signal.SIGINT)
    time.sleep(0.2)  # two signals sent at once can arrive as one; this one comes before the step ends
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "Second SIGINT: exiting now, without saving." in stderr


def test_interrupted_sweep_job_ends_the_sweep_with_a_summary(synthetic_data_dir: Path, tmp_path: Path) -> None:
    result = run_cli(
        "train.py", "-m", f"data.data_dir={synthetic_data_dir}", *EXACT, "model.optimizer.lr=0.1,0.2",
        *signal_at(14, "SIGTERM"), f"hydra.sweep.dir={tmp_path}",
    )  # fmt: skip
    assert result.returncode == 143, result.stderr[-3000:]
    assert read_metrics(tmp_path / "0")["status"] == "interrupted"
    assert not (tmp_path / "1").exists(), "no job starts after an interrupt"
    summary = (tmp_path / "summary.md").read_text()
    assert "| interrupted |" in summary and "resume with python" in summary
    # the same sweep dir again would write over job 0
    before = files_in(tmp_path)
    again = run_cli("train.py", "-m", f"data.data_dir={synthetic_data_dir}", *EXACT, "model.optimizer.lr=0.1,0.2",
                    f"hydra.sweep.dir={tmp_path}")  # fmt: skip
    assert again.returncode == 2 and "already holds an earlier run's results (0/metrics.json, " in again.stderr
    assert files_in(tmp_path) == before


def test_resuming_a_finished_run_says_what_to_do_instead(uninterrupted: Path, synthetic_data_dir: Path) -> None:
    last = uninterrupted / "checkpoints" / "last.ckpt"
    result = run_cli("train.py", f"data.data_dir={synthetic_data_dir}", *EXACT, f"ckpt_path={last}")
    assert result.returncode == 2
    assert "nothing left to train" in result.stderr and f"python eval.py ckpt_path={last}" in result.stderr
    assert "Traceback" not in result.stderr


BAD_VALUES = {
    "seed=abc": "seed must be a whole number",
    "seed=-1": "seed must be a whole number from 0 to 4294967295",
    "trainer.max_epochs=0": "trainer.max_epochs must be a whole number >= 1",
    "trainer.min_epochs=5": "trainer.min_epochs must be a whole number from 0 to 2",
    "optimized_metric=val/nope": "optimized_metric='val/nope' is not computed by this run",
    "num_threads=0": "num_threads must be a whole number >= 1",
    "data.batch_size=0": "data.batch_size must be a positive integer",
    "data.shuffle_seed=x": "data.shuffle_seed must be an integer or null",
    "data.batch_size=550": "data.batch_size=550 is larger than the training set: the training file in",  # in fit
    "trainer.limit_val_batches=0": "Validation is off (trainer.limit_val_batches=0), but callbacks.model_checkpoint",
    "trainer.check_val_every_n_epoch=null": "Validation is off (trainer.check_val_every_n_epoch=null), but callbacks.",
    "trainer.precision=banana": "`trainer` (lightning.pytorch.trainer.trainer.Trainer) cannot be built from the "
    "config: Precision 'banana' is invalid",
    # an attack review's: a run that trained or tested nothing said ok; the rest were tracebacks, some after an epoch
    "trainer.limit_train_batches=0": "trainer.limit_train_batches=0 leaves the training without a batch",
    "trainer.limit_test_batches=0": "trainer.limit_test_batches=0 leaves the test without a batch",
    "trainer.accumulate_grad_batches=0": "trainer.accumulate_grad_batches must be a whole number >= 1",
    "trainer.check_val_every_n_epoch=0": "trainer.check_val_every_n_epoch must be a whole number >= 1",
    "trainer.gradient_clip_val=nan": "trainer.gradient_clip_val must be a number >= 0, or null for none; got nan",
    "callbacks.early_stopping.monitor=val/los": "callbacks.early_stopping.monitor='val/los' is not a value training",
    "model.scheduler.pct_start=0": "model.scheduler cannot be built from",
    "model.scheduler._target_=torch.optim.lr_scheduler.StepLR": "unexpected keyword argument 'max_lr'",
    "model.loss=null": "model.loss must name a loss, e.g. model.loss._target_=torch.nn.CrossEntropyLoss; got None",
    "data.split_seed=abc": "data.split_seed must be a whole number >= 0, got 'abc'",
    "data.data_dir=null": "data.data_dir must be a folder's path",
    "ckpt_path=''": "ckpt_path is empty: leave it out (or ckpt_path=null) to start a new run",
    # a loss that cannot score class labels failed at the first step, with torch's traceback
    "+model.loss.reduction=none": "model.loss (torch.nn.CrossEntropyLoss) cannot score class labels: it gave tensor(",
    # a word where true or false goes was read as true
    "data.on_device=maybe": "data.on_device must be true or false, got 'maybe'.",
    "test=no": "test must be true or false, got 'no'.",
    # a share of the batches that is less than one: Lightning's MisconfigurationException, a traceback
    "trainer.limit_test_batches=0.05": "Lightning cannot run with these trainer settings: You requested to check "
    "0.05 of the `test_dataloader` but 0.05 * 1 < 1. Please increase the `trainer.limit_test_batches` argument.",
}


@pytest.mark.parametrize("override", list(BAD_VALUES))
def test_bad_run_value_is_one_paragraph_and_exit_2(override: str, synthetic_data_dir: Path, tmp_path: Path) -> None:
    result = run_cli("train.py", "model=cnn", f"data.data_dir={synthetic_data_dir}", "data.val_size=100",
                     override, f"hydra.run.dir={tmp_path}", *QUIET)  # fmt: skip
    assert result.returncode == 2, result.stderr[-3000:]
    assert BAD_VALUES[override] in result.stderr
    assert "Traceback" not in result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert BAD_VALUES[override] in message, "the message is one paragraph: the last line says it all"
    assert read_metrics(tmp_path)["status"] == "failed"


def test_a_regression_loss_is_refused_before_training(synthetic_data_dir: Path, tmp_path: Path) -> None:
    """MSELoss on class labels failed at the first training step, with torch's traceback."""
    result = run_cli("train.py", "model=dense", "model.loss._target_=torch.nn.MSELoss",
                     f"data.data_dir={synthetic_data_dir}", f"hydra.run.dir={tmp_path}", *QUIET)  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert (
        "model.loss (torch.nn.MSELoss) cannot score class labels: The size of tensor a (10) must match the size of "
        "tensor b (2) at non-singleton dimension 1. The module gives it a batch's scores, shape (N, 10)"
    ) in result.stderr
    assert "epoch 0" not in result.stdout


def test_disk_full_while_saving_keeps_the_previous_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "last.ckpt"
    SafeCheckpointIO().save_checkpoint({"step": 1}, path)
    before = path.read_bytes()

    def full_disk(obj: object, file: object) -> None:
        file.write(b"partial")  # type: ignore[attr-defined]  # a file object, as torch.save gets it
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(DiskWriteError, match=r"disk is full \(No space left on device\)\. The previous last\.ckpt is"):
        SafeCheckpointIO().save_checkpoint({"step": 2}, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"], "no temp file left behind"


def test_metrics_file_is_replaced_whole_or_not_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_metrics(tmp_path, {"status": "ok", "test/acc": 0.99})

    def crash(*args: object) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="I/O error"):
        write_metrics(tmp_path, {"status": "failed"})
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"status": "ok", "test/acc": 0.99}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_files_are_written_with_the_mode_open_gives(tmp_path: Path) -> None:
    """Checkpoints, metrics.json and exports were 0600 (mkstemp's), where every other file of a run is 0644:
    on a shared machine, no one else could read the results."""
    write_metrics(tmp_path, {"status": "ok"})
    (tmp_path / "plain.txt").write_text("open()'s")
    assert (tmp_path / "metrics.json").stat().st_mode & 0o777 == (tmp_path / "plain.txt").stat().st_mode & 0o777


PRINTABLE = st.characters(blacklist_categories=("Cs", "Cc"))


@settings(max_examples=300, deadline=None)
@example("/¹")  # \w in Python, not in Hydra's unquoted values
@given(st.text(PRINTABLE, min_size=1, max_size=30).filter(lambda text: "\\$" not in text))
def test_a_path_in_a_printed_command_reads_back_as_itself(path: str) -> None:
    """The resume command quotes ckpt_path for Hydra: a run dir named 'odd run,x=y' made it a parse error. Read
    back as the run sees it: parsed by Hydra, then composed by OmegaConf (which resolves `${...}`). Paths with
    a backslash before a `$` are left out: OmegaConf reads that as an escape either way."""
    override = OverridesParser.create().parse_overrides([f"ckpt_path={override_value(path)}"])[0]
    assert OmegaConf.create({"ckpt_path": override.value()}).ckpt_path == path
