"""Per-process CPU thread limits, so parallel sweep jobs do not oversubscribe the cores."""

from __future__ import annotations

import logging
import os

import torch
from hydra.core.hydra_config import HydraConfig

log = logging.getLogger(__name__)


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity (taskset, SLURM's --cpus-per-task, a container's
    cpuset) where the OS reports it, else every core of the machine."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def parallel_jobs() -> int:
    """How many jobs Hydra's launcher runs at once (1 unless it is the joblib launcher)."""
    if not HydraConfig.initialized():
        return 1
    launcher = HydraConfig.get().launcher
    n_jobs = launcher.get("n_jobs", 1) if "joblib" in str(launcher.get("_target_", "")) else 1
    cores = usable_cores()
    return cores if n_jobs in (None, -1) else max(1, min(int(n_jobs), cores))


def limit_threads(num_threads: int | None) -> int:
    """Use `num_threads` if given, else the cores divided among the launcher's parallel jobs."""
    if num_threads is None:
        num_threads = max(1, usable_cores() // parallel_jobs())
    if num_threads != torch.get_num_threads():
        torch.set_num_threads(num_threads)
        log.info("torch uses %d CPU thread(s)", num_threads)
    return num_threads
