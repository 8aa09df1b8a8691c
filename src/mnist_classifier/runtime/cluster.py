"""Runs started by torchrun or SLURM (srun, sbatch) rather than by hand: every process of one job must
share one run dir (named after the job, not after the time each process started), only rank 0 writes the
run's files, and a job that SLURM requeued (or torchrun restarted) goes on from its last checkpoint."""

from __future__ import annotations

import os
import re
import sys
from datetime import datetime
from pathlib import Path

SLURM_ARRAY = ("SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID")


def _in_slurm_job() -> bool:
    """As Lightning decides it (SLURMEnvironment.detect): srun/sbatch, not an interactive shell. Lightning is
    imported only inside a SLURM allocation, so predict.py and serve.py start without it."""
    if "SLURM_NTASKS" not in os.environ:
        return False
    from lightning.fabric.plugins.environments import SLURMEnvironment

    return SLURMEnvironment.detect()


def job_id() -> str | None:
    """The launcher's name for this job, the same in each of its processes; None when started by hand."""
    if _in_slurm_job():
        array_job, array_task = (os.environ.get(name) for name in SLURM_ARRAY)
        name = f"{array_job}_{array_task}" if array_job and array_task else os.environ["SLURM_JOB_ID"]
        step = os.environ.get("SLURM_STEP_ID", "")
        return f"slurm-{name}" + (f".{step}" if step.isdigit() and step != "0" else "")
    if "TORCHELASTIC_RUN_ID" in os.environ:
        run_id = os.environ["TORCHELASTIC_RUN_ID"]
        if run_id != "none":  # torchrun --rdzv-id=...
            return f"torchrun-{run_id}"
        day = datetime.now().strftime("%Y-%m-%d")
        if os.environ.get("WORLD_SIZE") == os.environ.get("LOCAL_WORLD_SIZE"):
            # no id, one machine: the torchrun process that started them all (and restarts them); the port
            # alone is torchrun's default 29500 for every job without a rendezvous of its own
            return f"torchrun-{day}_pid{os.getppid()}"
        # no id, several machines: the address and port their processes meet at, the same in each of them
        return f"torchrun-{day}_{os.environ.get('MASTER_ADDR', 'localhost')}-{os.environ.get('MASTER_PORT', '0')}"
    return None


def run_name() -> str:
    """The run dir's last part (configs/hydra/default.yaml): the job's id, or the start time."""
    return job_id() or datetime.now().strftime("%Y-%m-%d_%H-%M-%S_%f")


def global_rank() -> int:
    for name in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 0


def is_rank_zero() -> bool:
    """Whether this process writes the run's files: rank 0 as Lightning's strategy set it once a Trainer ran
    (`rank_zero_only.rank`, read without importing Lightning), else as the launcher's environment says
    (predict.py runs no Trainer)."""
    rank_zero = sys.modules.get("lightning_utilities.core.rank_zero")
    rank = getattr(getattr(rank_zero, "rank_zero_only", None), "rank", None)
    return (global_rank() if rank is None else rank) == 0


def rank_log_name(job_name: str) -> str:
    """train.log for rank 0, train_rank<k>.log for the others: one run dir, one log each. Lightning starts
    the other processes of a DDP run on one machine with hydra.job.name=train_ddp_process_<k>, whatever the
    script (lightning/fabric/strategies/launchers/subprocess_script.py); their logs keep the script's name
    (a run given its own hydra.job.name has that name on rank 0 only: the others cannot know it)."""
    if re.fullmatch(r"train_ddp_process_\d+", job_name):
        job_name = Path(sys.argv[0]).stem
    rank = global_rank()
    return job_name if rank == 0 else f"{job_name}_rank{rank}"


def rank_zero_subdir(subdir: str) -> str | None:
    """Hydra's .hydra/ (config, overrides) written by rank 0 only."""
    return subdir if global_rank() == 0 else None


def restart_count() -> int:
    """How many times SLURM requeued this job, or torchrun restarted it (0: the first attempt)."""
    for name in ("SLURM_RESTART_COUNT", "TORCHELASTIC_RESTART_COUNT"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 0


def checkpoint_to_go_on_from(run_dir: str | Path) -> Path | None:
    """After a requeue or restart: the newest checkpoint the previous attempt left in this job's run dir
    (last.ckpt, saved at a step boundary on SIGTERM, or Lightning's SLURM hpc_ckpt_*.ckpt)."""
    if restart_count() < 1 or job_id() is None:
        return None
    run_dir = Path(run_dir)
    candidates = [*run_dir.glob("checkpoints/last.ckpt"), *run_dir.glob("hpc_ckpt_*.ckpt")]
    return max(candidates, key=lambda path: path.stat().st_mtime, default=None)
