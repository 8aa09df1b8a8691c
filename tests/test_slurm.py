"""Against a real scheduler: a one-machine SLURM cluster (.ci/slurm_up.sh starts munge, slurmctld and
slurmd). The README's sbatch script scaled down to 2 tasks on one node, a running job requeued by
`scontrol requeue` and by SIGUSR1 near its time limit, and Hydra's submitit_slurm launcher."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, assert_ok, needs_tool, run_cli
from test_cluster import TINY

from mnist_classifier.runtime.metrics_file import read_metrics

pytestmark = pytest.mark.xdist_group("slurm")  # 2 cores: one job on the cluster at a time
DONE = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE"}


@pytest.fixture(scope="module")
def cluster() -> None:
    needs_tool("/usr/bin/sbatch", "SLURM (slurm-wlm, started by .ci/slurm_up.sh)")
    states = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, check=False)
    if not re.search(r"^(idle|mix|alloc)", states.stdout, re.MULTILINE):
        seen = states.stdout.strip() or states.stderr.strip()
        message = f"no SLURM node takes jobs (sinfo: {seen}): start the cluster with bash .ci/slurm_up.sh"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)


def job_env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "PROJECT_ROOT": str(REPO), "PYTHONPATH": str(REPO / "tests")}


def submit(tmp_path: Path, sbatch: list[str], command: str, *flags: str) -> str:
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/bash\n" + "".join(f"#SBATCH {line}\n" for line in sbatch) + f"srun {command}\n")
    sbatch_command = ["sbatch", "--parsable", f"--output={tmp_path}/slurm-%j.out", "--open-mode=append", *flags]
    submitted = subprocess.run(
        [*sbatch_command, str(script)], capture_output=True, text=True, env=job_env(), check=True
    )
    return submitted.stdout.strip().split(";")[0]


def job_field(job: str, field: str) -> str:
    shown = subprocess.run(["scontrol", "show", "job", "-o", job], capture_output=True, text=True, check=False)
    match = re.search(rf"\b{field}=(\S+)", shown.stdout)
    return match.group(1) if match else ""


def wait_until(job: str, done: bool = True, timeout: float = 300) -> str:
    """The job's state once it is finished (or, with done=False, running)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = job_field(job, "JobState")
        if (state in DONE) if done else state == "RUNNING":
            return state
        if state == "PENDING" and job_field(job, "Reason") == "BeginTime":  # requeued: start now, not in 2 min
            # not within the second of the kill: slurmd refused such a relaunch ("Job credential revoked",
            # in slurmctld.log) and the job ended FAILED (CI, 2 AVX2-only cores)
            time.sleep(1.1)
            subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=False)
        time.sleep(0.5)
    raise AssertionError(f"SLURM job {job} still {job_field(job, 'JobState')} after {timeout} s")


def train(data_dir: Path, log_dir: Path, *overrides: str) -> str:
    return " ".join([sys.executable, str(REPO / "train.py"), f"data.data_dir={data_dir}", *TINY, *overrides,
                     f"paths.log_dir={log_dir}"])  # fmt: skip


def test_sbatch_two_tasks_one_ddp_run(cluster: None, synthetic_data_dir: Path, tmp_path: Path) -> None:
    """The README's script on one node: 2 tasks, gloo DDP; one run dir, one metrics.json."""
    sbatch = ["--job-name=mnist", "--nodes=1", "--ntasks-per-node=2", "--time=00:10:00", "--requeue"]
    command = train(synthetic_data_dir, tmp_path, "trainer=ddp_sim", "trainer.num_nodes=1", "trainer.devices=2",
                    "trainer.max_epochs=2")  # fmt: skip
    job = submit(tmp_path, sbatch, command, "--wait")
    output = (tmp_path / f"slurm-{job}.out").read_text()
    (run_dir,) = (tmp_path / "train" / "runs").iterdir()
    assert run_dir.name == f"slurm-{job}", output[-3000:]
    assert len(list(tmp_path.rglob("metrics.json"))) == 1
    metrics = read_metrics(run_dir)
    assert metrics["status"] == "ok" and metrics["global_step"] == 10, "two ranks, 5 steps an epoch each"
    assert (run_dir / "train.log").is_file() and (run_dir / "train_rank1.log").is_file()


def test_scontrol_requeue_goes_on_from_the_checkpoint(cluster: None, synthetic_data_dir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "step13"
    slow = ["+callbacks.marker._target_=helper_callbacks.MarkerAtStep", "+callbacks.marker.step=13",
            f"+callbacks.marker.path={marker}", "+callbacks.marker.delay=0.3"]  # fmt: skip
    assert_ok(run_cli("train.py", f"data.data_dir={synthetic_data_dir}", *TINY, "trainer.max_epochs=3",
                      f"hydra.run.dir={tmp_path / 'uninterrupted'}"))  # fmt: skip
    command = train(synthetic_data_dir, tmp_path, "trainer.max_epochs=3", *slow)
    job = submit(tmp_path, ["--ntasks=1", "--requeue"], command)
    deadline = time.monotonic() + 300
    while not marker.exists():
        assert time.monotonic() < deadline and job_field(job, "JobState") not in DONE, "the job never reached step 13"
        time.sleep(0.2)
    subprocess.run(["scontrol", "requeue", job], check=True)
    assert wait_until(job) == "COMPLETED" and job_field(job, "Restarts") == "1"
    output = (tmp_path / f"slurm-{job}.out").read_text()
    run_dir = tmp_path / "train" / "runs" / f"slurm-{job}"
    assert "Restart 1 of this job: going on from" in output, output[-3000:]
    metrics, uninterrupted = read_metrics(run_dir), read_metrics(tmp_path / "uninterrupted")
    assert metrics["status"] == "ok" and metrics["global_step"] == uninterrupted["global_step"] == 30
    assert metrics["test/acc"] == pytest.approx(uninterrupted["test/acc"], abs=1e-6)


def test_sigusr1_near_the_time_limit_requeues_through_lightning(
    cluster: None, synthetic_data_dir: Path, tmp_path: Path
) -> None:
    """--time=3 --signal=USR1@90: SLURM signals 90 s before the limit, or up to a minute earlier, so 30-90 s
    into each attempt, after start-up (a signal before the Trainer has installed Lightning's handler ends the
    process: with --time=2 it came 0-30 s in, and the test failed whenever start-up was slow). Lightning
    saves hpc_ckpt_1.ckpt and requeues the job itself. The first attempt's steps are slow (30 steps of 5 s),
    so that it is still training when signalled; the requeued attempt finishes in about 20 s."""
    delay = '$([ "${SLURM_RESTART_COUNT:-0}" = 0 ] && echo 5.0 || echo 0.0)'
    slow = ["+callbacks.marker._target_=helper_callbacks.MarkerAtStep", "+callbacks.marker.step=1",
            f"+callbacks.marker.path={tmp_path / 'started'}", f"+callbacks.marker.delay={delay}"]  # fmt: skip
    job = submit(tmp_path, ["--ntasks=1", "--requeue", "--time=00:03:00", "--signal=USR1@90"],
                 train(synthetic_data_dir, tmp_path, "trainer.max_epochs=3", *slow))  # fmt: skip
    # Each attempt has the same limit; should the requeued one still be testing when its signal comes, after
    # fit, when Lightning's handler is gone, it exits 138 (SIGUSR1) and the job ends FAILED with its training
    # done. Known gap (see the README), so the state itself is not asserted.
    wait_until(job, timeout=400)
    output = (tmp_path / f"slurm-{job}.out").read_text()
    run_dir = tmp_path / "train" / "runs" / f"slurm-{job}"
    assert int(job_field(job, "Restarts")) >= 1, output[-3000:]
    assert "Requeued SLURM job" in output and list(run_dir.glob("hpc_ckpt_*.ckpt")), output[-3000:]
    assert read_metrics(run_dir)["status"] == "ok" and read_metrics(run_dir)["global_step"] == 30


def test_submitit_slurm_grid_through_the_scheduler(cluster: None, synthetic_data_dir: Path, tmp_path: Path) -> None:
    result = run_cli("train.py", "-m", "hydra/launcher=submitit_slurm", "hydra.launcher.timeout_min=10",
                     "hydra.launcher.cpus_per_task=1", f"hydra.launcher.submitit_folder={tmp_path}/submitit",
                     f"data.data_dir={synthetic_data_dir}", *TINY, "debug=limit", "reports=none",
                     "model.net.hidden_sizes=[16],[32]", f"hydra.sweep.dir={tmp_path / 'sweep'}")  # fmt: skip
    assert_ok(result)
    for job in ("0", "1"):
        assert read_metrics(tmp_path / "sweep" / job)["status"] == "ok"
    submitted = list((tmp_path / "submitit").glob("*_submission.sh"))
    assert submitted and "#SBATCH" in submitted[0].read_text()
