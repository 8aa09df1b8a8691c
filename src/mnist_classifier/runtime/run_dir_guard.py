"""A run never writes over an earlier run's results. Each run gets a dir of its own (a timestamp to the
microsecond, or the cluster job's id), but `hydra.run.dir=` / `hydra.sweep.dir=` given twice, torchrun's
`--rdzv-id` reused, or two runs in one SLURM job step would put a new run into an old one's dir: its
checkpoints and metrics.json were replaced as the new run went on. Checked before Hydra writes anything
there (its .hydra/ config, the log file), in every process of a job alike (they all see the same dir).

Let through: an unfinished job that SLURM requeued or torchrun restarted (it goes on from the checkpoint its
previous attempt left: runtime/cluster.py), and an interrupted training resumed in place (`ckpt_path=` its
last.ckpt). A requeued SLURM job whose run had finished ends at once, exit 0: there is nothing left to do.
(torchrun restarts a job after any failure, this refusal's too: there, a finished run is another job's.)"""

from __future__ import annotations

import contextlib
import shlex
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from mnist_classifier.errors import ConfigValueError
from mnist_classifier.runtime.cluster import job_id, restart_count
from mnist_classifier.runtime.command_line import override_key, override_value
from mnist_classifier.runtime.error_messages import report_bad_input
from mnist_classifier.runtime.metrics_file import METRICS_FILE, earlier_record

# what an earlier run leaves that a new one would write again
RESULTS = (METRICS_FILE, "checkpoints/*.ckpt", "hpc_ckpt_*.ckpt")
# the checkpoints an interrupted training goes on from (Lightning's SLURM one too)
RESUMABLE = ("checkpoints/last.ckpt", "hpc_ckpt_*.ckpt")


class FinishedBeforeRestart(Exception):
    """A requeued (or restarted) job whose run dir holds its finished run."""


def earlier_results(directory: Path, jobs: bool = False) -> list[Path]:
    """The files of an earlier run in a run dir (`jobs`: in the job dirs of a sweep dir, however deep its
    hydra.sweep.subdir puts them) that a new run would replace."""
    return [path for pattern in RESULTS for path in sorted(directory.glob(f"**/{pattern}" if jobs else pattern))]


def _resumable(config: DictConfig, record: dict[str, Any] | None) -> bool:
    """This is train.py (only its config has `train`), and the earlier run (its metrics.json `record`) stopped in
    its training: killed (no metrics.json), or interrupted before the training's end (stopped in the test after
    it, eval.py tests its best checkpoint)."""
    if config.get("train") is not True:
        return False
    return record is None or (record.get("status") == "interrupted" and not record.get("training_finished"))


def _resumes_in_place(config: DictConfig, run_dir: Path, record: dict[str, Any] | None) -> bool:
    """`python train.py hydra.run.dir=D ckpt_path=D/checkpoints/last.ckpt`: the interrupted training, going on."""
    ckpt_path = config.get("ckpt_path")
    if not isinstance(ckpt_path, str) or not _resumable(config, record):
        return False
    checkpoint = Path(ckpt_path).resolve()
    return any(checkpoint == path.resolve() for pattern in RESUMABLE for path in run_dir.glob(pattern))


def _given(config: DictConfig, key: str) -> bool:
    """Whether the command line set `key` (else Hydra's config, or a cluster job's id, named the dir). Hydra
    keeps the overrides of its own keys apart from the task's."""
    overrides = config.hydra.overrides
    return any(override_key(o) == key for o in [*overrides.hydra, *overrides.task])


def _refusal(
    config: DictConfig, key: str, directory: Path, found: list[Path], record: dict[str, Any] | None, sweep: bool
) -> str:
    names = ", ".join(str(path.relative_to(directory)) for path in found[:3]) + (", ..." if len(found) > 3 else "")
    if _given(config, key):
        how = f"Name a new {key} (or leave it out: every run gets a new dir under logs/), or move the earlier run away"
    elif directory.name.startswith("torchrun-"):
        how = "torchrun's job names this dir: start it with a --rdzv-id of its own (or --standalone on one machine)"
    elif directory.name.startswith("slurm-"):
        how = f"Every run in one SLURM job step shares the job's dir: give each its own {key}"
    else:
        how = "Move the earlier run away"
    last, printed = directory / "checkpoints" / "last.ckpt", record or {}
    resume = ""
    goes_on = printed.get("ckpt_path") or printed.get("training_finished")  # not "run it again", into this dir
    if not sweep and printed.get("status") == "interrupted" and printed.get("resume_command") and goes_on:
        resume = f" To go on with it, run the command it printed: {printed['resume_command']}"
    elif not sweep and last.is_file() and _resumable(config, record):
        argument = shlex.quote(f"ckpt_path={override_value(last)}")
        resume = f" To go on with its interrupted training there instead, add {argument}."
    return (
        f"{key}={directory} already holds an earlier run's results ({names}), and this run would write over "
        f"them. {how}.{resume}"
    )


def check_run_dir(config: DictConfig, sweep: bool = False) -> None:
    """A ConfigValueError when the run's (or sweep's) dir holds an earlier run's results, FinishedBeforeRestart
    when it holds this requeued job's finished run."""
    key = "hydra.sweep.dir" if sweep else "hydra.run.dir"
    try:
        directory = Path(str(config.hydra.sweep.dir if sweep else config.hydra.run.dir))
    except OmegaConfBaseException:
        return  # a bad ${...} in it: Hydra's next step reports it (runtime/error_messages.py)
    with contextlib.suppress(OmegaConfBaseException):  # Hydra's own run dir: not known yet, it is hydra.run.dir
        if not sweep and "paths" in config and config.paths.get("output_dir"):  # the files go where it says
            key, directory = "paths.output_dir", Path(str(config.paths.output_dir))
    found = earlier_results(directory, jobs=sweep)
    if not found:
        return
    record = None if sweep else earlier_record(directory)
    job = job_id()
    if restart_count() > 0 and job is not None:
        # SLURM's job ids are unique: what its dir holds is this job's. torchrun restarts a job that failed, its
        # refusal here included: a finished run there is another job's, and so may a sweep's be
        slurm = job.startswith("slurm-")
        if sweep and slurm:
            return  # the sweep goes on; its finished jobs keep their results (runner.py)
        if not sweep and (record or {}).get("status") != "ok":
            return  # the job goes on from the checkpoint its previous attempt left
        if not sweep and slurm:
            raise FinishedBeforeRestart(directory)
    if not sweep and _resumes_in_place(config, directory, record):
        return
    raise ConfigValueError(_refusal(config, key, directory, found, record, sweep))


class KeepEarlierRuns(Callback):
    """Refuses, before anything is written, a run or sweep whose dir holds an earlier one's results. Hydra
    turns a callback's exceptions into warnings and goes on, so the refusal is the exit itself."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._refuse_unless(config, sweep=False)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._refuse_unless(config, sweep=True)

    @staticmethod
    def _refuse_unless(config: DictConfig, sweep: bool) -> None:
        try:
            check_run_dir(config, sweep)
        except ConfigValueError as err:
            raise SystemExit(report_bad_input(str(err))) from None
        except FinishedBeforeRestart as done:
            print(f"Restart {restart_count()} of {job_id()}: its run in {done} had finished; nothing left to do.")
            raise SystemExit(0) from None
