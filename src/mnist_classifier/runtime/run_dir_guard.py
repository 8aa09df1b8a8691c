"""A run never writes over an earlier run's results. Each run gets a dir of its own (a timestamp to the
microsecond, or the cluster job's id), but `hydra.run.dir=` / `hydra.sweep.dir=` given twice, or torchrun's
`--rdzv-id` reused, would put a new run into an old one's dir: its checkpoints and metrics.json were replaced
as the new run went on. Checked before Hydra writes anything there (its .hydra/ config, the log file).

Let through: a job SLURM requeued or torchrun restarted (it goes on from the checkpoint its previous
attempt left: runtime/cluster.py), the other ranks of a DDP run (rank 0 made the dir), and a training
resumed in place (`ckpt_path=` a checkpoint in the same dir)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from mnist_classifier.errors import ConfigValueError
from mnist_classifier.runtime.cluster import global_rank, is_torchrun, job_id, restart_count
from mnist_classifier.runtime.error_messages import report_bad_input
from mnist_classifier.runtime.metrics_file import METRICS_FILE, read_metrics
from mnist_classifier.runtime.runner import override_value

# what an earlier run leaves that a new one would write again
RESULTS = (METRICS_FILE, "checkpoints/*.ckpt", "hpc_ckpt_*.ckpt")


def earlier_results(directory: Path, jobs: bool = False) -> list[Path]:
    """The files of an earlier run in a run dir (`jobs`: in the job dirs of a sweep dir) that a new run
    would replace."""
    return [path for pattern in RESULTS for path in sorted(directory.glob(f"*/{pattern}" if jobs else pattern))]


def _resumes_in_place(config: DictConfig, run_dir: Path) -> bool:
    """`python train.py hydra.run.dir=D ckpt_path=D/checkpoints/last.ckpt`: the same training, going on."""
    ckpt_path = config.get("ckpt_path")
    if config.get("task_name") != "train" or not config.get("train", True) or not isinstance(ckpt_path, str):
        return False
    return Path(ckpt_path).resolve().is_relative_to(run_dir.resolve())


def _unfinished(run_dir: Path) -> bool:
    """Interrupted, or killed before it could write metrics.json."""
    with contextlib.suppress(ValueError, OSError):
        return read_metrics(run_dir, missing={}).get("status") in (None, "interrupted")
    return False


def _goes_on_in_this_dir() -> bool:
    """A process that belongs in a dir which already holds results: a requeued or restarted cluster job,
    or a rank other than 0 (Lightning starts them in rank 0's run dir)."""
    return global_rank() != 0 or (restart_count() > 0 and job_id() is not None)


def check_run_dir(config: DictConfig, sweep: bool = False) -> None:
    """Exit 2 (a ConfigValueError) when the run's (or sweep's) dir holds an earlier run's results."""
    key = "hydra.sweep.dir" if sweep else "hydra.run.dir"
    try:
        directory = Path(str(config.hydra.sweep.dir if sweep else config.hydra.run.dir))
    except OmegaConfBaseException:
        return  # a bad ${...} in it: Hydra's next step reports it (runtime/error_messages.py)
    found = earlier_results(directory, jobs=sweep)
    if not found or _goes_on_in_this_dir() or (not sweep and _resumes_in_place(config, directory)):
        return
    names = ", ".join(str(path.relative_to(directory)) for path in found[:3]) + (", ..." if len(found) > 3 else "")
    last = directory / "checkpoints" / "last.ckpt"
    resume = (
        f" To go on with its training there, resume it: add ckpt_path={override_value(last)}."
        if not sweep and config.get("task_name") == "train" and last.is_file() and _unfinished(directory)
        else ""
    )
    torchrun = " torchrun names the run dir after --rdzv-id: start a new job with a new id." if is_torchrun() else ""
    raise ConfigValueError(
        f"{key}={directory} already holds an earlier run's results ({names}), and this run would write over "
        f"them. Leave {key} out (every run gets a new dir under logs/), name a new one, or move the earlier run "
        f"away first.{resume}{torchrun}"
    )


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
