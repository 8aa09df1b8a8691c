"""Beyond one machine, tested on this one: two "nodes" through torchrun, the processes srun would start
(SLURM's environment, as Lightning's own tests set it), a SLURM requeue, Hydra's submitit launcher, and
several workers on one Optuna study (journal file, PostgreSQL)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pandas as pd
import pytest
from conftest import QUIET, REPO, assert_ok, needs_tool, run_cli
from optuna.storages.journal import JournalFileBackend

from mnist_classifier.runtime.metrics_file import read_metrics

# 500 synthetic training images, batches of 50: 10 steps an epoch on one process, 5 on each of two
TINY = ["model=dense", "model.net.hidden_sizes=[32]", "data.val_size=100", "data.batch_size=50",
        "trainer.max_epochs=1", *QUIET]  # fmt: skip
EPOCHS = 6  # long enough for one process and two to learn the synthetic digits alike


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(command: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    base = {**os.environ, "PYTHONUNBUFFERED": "1", "PROJECT_ROOT": str(REPO), "PYTHONPATH": str(REPO / "tests")}
    return subprocess.Popen(command, cwd=REPO, env={**base, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip


def finish(processes: list[subprocess.Popen], timeout: float = 300) -> list[str]:
    outputs = [p.communicate(timeout=timeout)[0] for p in processes]
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output[-4000:]
    return outputs


def assert_one_shared_run(log_dir: Path, prefix: str, single: dict) -> Path:
    """One run dir for the whole job, written once: metrics, checkpoints, .hydra from rank 0, a log each."""
    (run_dir,) = (log_dir / "train" / "runs").iterdir()
    assert run_dir.name.startswith(prefix)
    metrics = read_metrics(run_dir)
    assert metrics["status"] == "ok" and metrics["global_step"] == 5 * EPOCHS, "each rank trained on its half"
    assert abs(metrics["test/acc"] - single["test/acc"]) <= 0.1, (metrics["test/acc"], single["test/acc"])
    checkpoints = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert len(checkpoints) == 2 and checkpoints[-1] == "last.ckpt" and checkpoints[0].startswith("epoch_")
    assert (run_dir / "train.log").is_file() and (run_dir / "train_rank1.log").is_file()
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    return run_dir


@pytest.fixture(scope="module")
def single_process(synthetic_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    run_dir = tmp_path_factory.mktemp("single")
    assert_ok(run_cli("train.py", f"data.data_dir={synthetic_data_dir}", *TINY, f"trainer.max_epochs={EPOCHS}",
                      f"hydra.run.dir={run_dir}"))  # fmt: skip
    return read_metrics(run_dir)


def test_two_nodes_through_torchrun(single_process: dict, synthetic_data_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=1",
                "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}", str(REPO / "train.py"),
                "trainer=ddp_sim", "trainer.num_nodes=2", "trainer.devices=1", f"data.data_dir={synthetic_data_dir}",
                *TINY, f"trainer.max_epochs={EPOCHS}", f"paths.log_dir={tmp_path}"]  # fmt: skip
    finish([start(torchrun), start(torchrun)])
    run_dir = assert_one_shared_run(tmp_path, "torchrun-", single_process)
    checkpoint = read_metrics(run_dir)["ckpt_path"]
    assert_ok(run_cli("eval.py", f"ckpt_path={checkpoint}", f"data.data_dir={synthetic_data_dir}",
                      f"hydra.run.dir={tmp_path / 'eval'}", "reports=none"))  # fmt: skip
    assert read_metrics(tmp_path / "eval")["test/acc"] == pytest.approx(read_metrics(run_dir)["test/acc"], abs=1e-6)


def slurm_env(job: str, task: int, tasks: int, port: int, **extra: str) -> dict[str, str]:
    """What `srun` sets for each task of a job on `tasks` nodes (one task per node)."""
    return {
        "SLURM_JOB_ID": job, "SLURM_JOB_NAME": "train.py", "SLURM_NTASKS": str(tasks), "SLURM_NNODES": str(tasks),
        "SLURM_NTASKS_PER_NODE": "1", "SLURM_PROCID": str(task), "SLURM_LOCALID": "0", "SLURM_NODEID": str(task),
        "SLURM_NODELIST": "localhost", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), **extra,
    }  # fmt: skip


def test_two_nodes_through_slurm(single_process: dict, synthetic_data_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, str(REPO / "train.py"), "trainer=ddp_sim", "trainer.num_nodes=2", "trainer.devices=1",
               f"data.data_dir={synthetic_data_dir}", *TINY, f"trainer.max_epochs={EPOCHS}",
               f"paths.log_dir={tmp_path}"]  # fmt: skip
    finish([start(command, slurm_env("4242", task, 2, port)) for task in (0, 1)])
    assert_one_shared_run(tmp_path, "slurm-4242", single_process)


def test_requeued_slurm_job_goes_on_from_its_last_checkpoint(synthetic_data_dir: Path, tmp_path: Path) -> None:
    """Preempted (SIGTERM, as SLURM sends it), then requeued: the same command, SLURM_RESTART_COUNT=1."""
    command = [sys.executable, str(REPO / "train.py"), f"data.data_dir={synthetic_data_dir}", *TINY,
               "trainer.max_epochs=3", f"paths.log_dir={tmp_path}"]  # fmt: skip
    signal = ["+callbacks.signal._target_=helper_callbacks.SignalAtStep", "+callbacks.signal.step=14"]
    first = start([*command, *signal], slurm_env("777", 0, 1, free_port()))
    output = first.communicate(timeout=300)[0]
    assert first.returncode == 143, output[-3000:]
    run_dir = tmp_path / "train" / "runs" / "slurm-777"
    assert read_metrics(run_dir)["status"] == "interrupted"
    (output,) = finish([start(command, slurm_env("777", 0, 1, free_port(), SLURM_RESTART_COUNT="1"))])
    assert "Restart 1 of this job: going on from" in output and str(run_dir / "checkpoints" / "last.ckpt") in output
    metrics = read_metrics(run_dir)
    assert metrics["status"] == "ok" and metrics["global_step"] == 30 and metrics["epochs"] == 3


@pytest.mark.parametrize(
    ("environment", "earlier", "outcome"),
    [
        ({"TORCHELASTIC_RUN_ID": "job1"}, "interrupted", "refused"),  # torchrun again, with the same --rdzv-id
        ({"TORCHELASTIC_RUN_ID": "job1", "TORCHELASTIC_RESTART_COUNT": "1"}, "interrupted", "goes on"),
        # torchrun restarts after our own refusal too: a finished run in its dir is another job's
        ({"TORCHELASTIC_RUN_ID": "job1", "TORCHELASTIC_RESTART_COUNT": "1"}, "ok", "refused"),
        ({**slurm_env("777", 0, 1, 29500), "SLURM_RESTART_COUNT": "1"}, None, "goes on"),  # requeued, killed before
        ({**slurm_env("777", 0, 1, 29500), "SLURM_RESTART_COUNT": "1"}, "ok", "done"),  # requeued after it finished
        ({"SLURM_RESTART_COUNT": "1"}, "interrupted", "refused"),  # by hand, in a shell of a job: not its restart
        ({"RANK": "1", "LOCAL_RANK": "1"}, "interrupted", "refused"),  # every process of a job alike
    ],
    ids=["torchrun again", "torchrun restart", "torchrun restart after our refusal", "slurm requeue",
         "slurm requeue of a finished run", "restart count alone", "rank 1"],
)  # fmt: skip
def test_a_dir_with_an_earlier_runs_results_is_refused_unless_the_job_goes_on_there(
    environment: dict[str, str], earlier: str | None, outcome: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from omegaconf import OmegaConf

    from mnist_classifier.errors import ConfigValueError
    from mnist_classifier.runtime.metrics_file import write_metrics
    from mnist_classifier.runtime.run_dir_guard import FinishedBeforeRestart, check_run_dir

    for name in [*os.environ]:
        if name.startswith(("SLURM_", "TORCHELASTIC_")) or name in ("RANK", "LOCAL_RANK"):
            monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    run_dir = tmp_path / "torchrun-job1"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"an earlier attempt's")
    if earlier is not None:
        write_metrics(run_dir, {"status": earlier})
    hydra = {"run": {"dir": str(run_dir)}, "overrides": {"hydra": [], "task": []}}
    config = OmegaConf.create({"train": True, "hydra": hydra})
    if outcome == "goes on":
        check_run_dir(config)
    elif outcome == "done":
        with pytest.raises(FinishedBeforeRestart):
            check_run_dir(config)
    else:
        with pytest.raises(ConfigValueError, match="already holds an earlier run's results") as error:
            check_run_dir(config)
        assert "start it with a --rdzv-id of its own" in str(error.value)
        assert ("To go on with its interrupted training there instead" in str(error.value)) == (earlier != "ok")


@pytest.mark.parametrize("text", ["null", "[]", '"ok"', "{not json"])
def test_a_metrics_file_that_is_not_a_record_does_not_open_the_dir(text: str, tmp_path: Path) -> None:
    """Valid JSON that is not an object made the check raise AttributeError, which Hydra turns into a warning:
    the run went on and wrote over the dir."""
    from omegaconf import OmegaConf

    from mnist_classifier.errors import ConfigValueError
    from mnist_classifier.runtime.run_dir_guard import check_run_dir

    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"an earlier run's")
    (tmp_path / "metrics.json").write_text(text)
    hydra = {"run": {"dir": str(tmp_path / "elsewhere")}, "overrides": {"hydra": [], "task": []}}
    # paths.output_dir set by hand: where the run's files go, whatever Hydra's run dir is
    config = OmegaConf.create({"train": True, "paths": {"output_dir": str(tmp_path)}, "hydra": hydra})
    with pytest.raises(ConfigValueError, match=f"paths.output_dir={tmp_path} already holds an earlier run's results"):
        check_run_dir(config)


@pytest.mark.parametrize(
    ("environment", "goes_on"),
    [({"TORCHELASTIC_RUN_ID": "job1", "TORCHELASTIC_RESTART_COUNT": "1"}, False),
     ({**slurm_env("777", 0, 1, 29500), "SLURM_RESTART_COUNT": "1"}, True)],
    ids=["torchrun restart: maybe another job's sweep", "slurm requeue: this job's"],
)  # fmt: skip
def test_a_restarted_sweep_goes_on_in_its_dir_only_under_slurm(
    environment: dict[str, str], goes_on: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from omegaconf import OmegaConf

    from mnist_classifier.errors import ConfigValueError
    from mnist_classifier.runtime.metrics_file import write_metrics
    from mnist_classifier.runtime.run_dir_guard import check_run_dir

    for name in [*os.environ]:
        if name.startswith(("SLURM_", "TORCHELASTIC_")):
            monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    write_metrics(tmp_path / "0", {"status": "ok"})
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}, "overrides": {"hydra": [], "task": []}}})
    if goes_on:
        check_run_dir(config, sweep=True)
    else:
        with pytest.raises(ConfigValueError, match="already holds an earlier run's results"):
            check_run_dir(config, sweep=True)


def test_a_refusal_does_not_offer_a_command_it_would_refuse(tmp_path: Path) -> None:
    """A run stopped before it saved a checkpoint printed 'run it again', into the same dir: refused again."""
    from omegaconf import OmegaConf

    from mnist_classifier.errors import ConfigValueError
    from mnist_classifier.runtime.metrics_file import write_metrics
    from mnist_classifier.runtime.run_dir_guard import check_run_dir

    again = f"python train.py paths.output_dir={tmp_path}"
    write_metrics(tmp_path, {"status": "interrupted", "ckpt_path": None, "resume_command": again})
    hydra = {"run": {"dir": str(tmp_path / "x")}, "overrides": {"hydra": [], "task": []}}
    config = OmegaConf.create({"train": True, "paths": {"output_dir": str(tmp_path)}, "hydra": hydra})
    with pytest.raises(ConfigValueError) as error:
        check_run_dir(config)
    assert "run the command it printed" not in str(error.value)


def test_requeued_sweep_keeps_its_finished_jobs(synthetic_data_dir: Path, tmp_path: Path) -> None:
    """SLURM requeued a sweep that had finished: each job went on from its finished last.ckpt, failed with
    'nothing left to train', and its ok metrics.json became failed."""
    command = [sys.executable, str(REPO / "train.py"), "-m", "seed=1,2", f"data.data_dir={synthetic_data_dir}", *TINY,
               f"hydra.sweep.dir={tmp_path}"]  # fmt: skip
    finish([start(command, slurm_env("778", 0, 1, free_port()))])
    before = {job: read_metrics(tmp_path / job) for job in ("0", "1")}
    (output,) = finish([start(command, slurm_env("778", 0, 1, free_port(), SLURM_RESTART_COUNT="1"))])
    assert output.count("this run had finished; its results stand") == 2, output[-3000:]
    assert {job: read_metrics(tmp_path / job) for job in ("0", "1")} == before


def test_torchrun_on_one_machine_without_an_id_names_the_dir_after_its_own_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`torchrun --nproc-per-node=2 train.py` twice: the same default port (29500), so the same dir, was one
    job's run over another's; now each torchrun's own process names it (a restart keeps it)."""
    from mnist_classifier.runtime.cluster import job_id

    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "none")
    monkeypatch.setenv("MASTER_PORT", "29500")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert job_id().endswith(f"_pid{os.getppid()}")  # type: ignore[union-attr]
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")  # two machines: where their processes meet
    assert job_id().endswith("-29500")  # type: ignore[union-attr]


SWEEP = [*TINY, "debug=limit", "reports=none"]


def test_submitit_local_grid_and_search(synthetic_data_dir: Path, tmp_path: Path) -> None:
    """Hydra's submitit launcher, run on this machine: each job is its own process, as on a cluster."""
    common = ["-m", "hydra/launcher=submitit_local", f"data.data_dir={synthetic_data_dir}", *SWEEP]
    grid = run_cli("train.py", *common, "model.optimizer.lr=0.01,1e9", "trainer.gradient_clip_val=null",
                   "data.batch_size=10", f"hydra.sweep.dir={tmp_path / 'grid'}")  # fmt: skip
    assert grid.returncode != 0 and "1 of 2 sweep jobs failed" in grid.stderr, "a failing job is recorded"
    summary = pd.read_csv(tmp_path / "grid" / "summary.csv")
    assert list(summary["status"]) == ["ok", "failed"]
    search = run_cli(
        "train.py",
        *common,
        "hparams_search=dense_optuna",
        "hydra.sweeper.n_trials=2",
        f"hydra.sweeper.storage=sqlite:///{tmp_path / 'study.db'}",
        f"hydra.sweep.dir={tmp_path / 'opt'}",
    )
    assert_ok(search)
    assert len(pd.read_csv(tmp_path / "opt" / "summary.csv")) == 2
    assert (tmp_path / "opt" / "optimization_results.yaml").is_file()


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (Debian's `postgresql`, installed by .ci/run)."""
    bins = sorted(str(path) for path in Path("/usr/lib/postgresql").glob("*/bin"))
    needs_tool(f"{bins[-1]}/initdb" if bins else "/usr/lib/postgresql/initdb", "PostgreSQL (initdb)")
    # outside pytest's private tmp dir: as root, the server runs as the `postgres` user, who must reach it
    folder = Path(tempfile.mkdtemp(prefix="mnist_pg_"))
    data, port = folder / "data", free_port()
    as_postgres: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(folder, "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_postgres, f"{bins[-1]}/initdb", "-D", str(data), "-U", "optuna", "--auth=trust"],
                   check=True, capture_output=True)  # fmt: skip
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run([*as_postgres, f"{bins[-1]}/pg_ctl", "-D", str(data), "-o", options, "-w", "-l",
                    str(folder / "server.log"), "start"], check=True, capture_output=True)  # fmt: skip
    try:
        yield f"postgresql+psycopg://optuna@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_postgres, f"{bins[-1]}/pg_ctl", "-D", str(data), "-m", "immediate", "stop"],
                       check=False, capture_output=True)  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)


def two_workers(storage: str, study: str, data_dir: Path, tmp_path: Path, n_trials: int = 6) -> list[str]:
    """The same command on two workers at once, as on two machines; each with its own sweep dir. Each
    worker's first trial waits for the other's, so that both take part however fast the machine is."""
    meeting = ["+callbacks.peers._target_=helper_callbacks.WaitForPeers",
               f"+callbacks.peers.folder={tmp_path / 'peers'}"]  # fmt: skip
    command = [sys.executable, str(REPO / "train.py"), "-m", "hparams_search=dense_optuna", f"data.data_dir={data_dir}",
               *SWEEP, *meeting, f"hydra.sweeper.storage={storage}", f"hydra.sweeper.study_name={study}",
               f"hydra.sweeper.n_trials={n_trials}", f"paths.log_dir={tmp_path}"]  # fmt: skip
    workers = [start(command, env={"PEER_NAME": "first"})]
    time.sleep(1)
    workers.append(start(command, env={"PEER_NAME": "second"}))
    return finish(workers)


def assert_budget_kept(storage: str | optuna.storages.BaseStorage, study_name: str, n_trials: int) -> None:
    trials = optuna.load_study(study_name=study_name, storage=storage).trials
    counted = [t for t in trials if t.user_attrs.get("status") in ("ok", "failed")]
    given_back = [t for t in trials if t.user_attrs.get("status") == "over_budget"]
    assert len(counted) == n_trials and len(trials) == n_trials + len(given_back) and len(given_back) <= 1
    job_dirs = [t.user_attrs["job_dir"] for t in counted]
    assert len(set(job_dirs)) == n_trials, "no trial ran twice, and each worker's job dirs stay apart"
    assert len({Path(d).parent for d in job_dirs}) == 2, "both workers ran trials"


def test_two_workers_share_a_journal_file_study(synthetic_data_dir: Path, tmp_path: Path) -> None:
    storage = f"journal:{tmp_path / 'shared' / 'study.log'}"
    two_workers(storage, "journal_study", synthetic_data_dir, tmp_path)
    journal = optuna.storages.JournalStorage(JournalFileBackend(str(tmp_path / "shared" / "study.log")))
    assert_budget_kept(journal, "journal_study", 6)


def test_two_workers_share_a_postgresql_study(postgres: str, synthetic_data_dir: Path, tmp_path: Path) -> None:
    two_workers(postgres, "pg_study", synthetic_data_dir, tmp_path)
    assert_budget_kept(postgres, "pg_study", 6)


def test_interrupted_trial_gives_its_slot_back_and_the_summary_covers_the_study(
    synthetic_data_dir: Path, tmp_path: Path
) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    common = [
        "-m",
        "hparams_search=dense_optuna",
        f"data.data_dir={synthetic_data_dir}",
        *SWEEP,
        f"hydra.sweeper.storage={storage}",
        "hydra.sweeper.study_name=resumed",
        "hydra.sweeper.n_trials=3",
    ]
    signal = ["+callbacks.signal._target_=helper_callbacks.SignalAtStep", "+callbacks.signal.step=3"]
    stopped = run_cli("train.py", *common, *signal, f"hydra.sweep.dir={tmp_path / 'first'}")
    assert stopped.returncode == 143, stopped.stderr[-3000:]
    (trial,) = optuna.load_study(study_name="resumed", storage=storage).trials
    assert trial.state == optuna.trial.TrialState.FAIL and trial.user_attrs["status"] == "interrupted"
    resumed = run_cli("train.py", *common, "hydra.sweeper.study_summary=true", f"hydra.sweep.dir={tmp_path / 'then'}")
    assert_ok(resumed)
    trials = optuna.load_study(study_name="resumed", storage=storage).trials
    assert [t.user_attrs["status"] for t in trials] == ["interrupted", "ok", "ok", "ok"]
    table = pd.read_csv(tmp_path / "then" / "study_summary.csv")
    assert list(table["trial"]) == [0, 1, 2, 3] and list(table["status"]) == ["interrupted", "ok", "ok", "ok"]
    for plot in ("optimization_history.png", "param_importances.png"):
        assert (tmp_path / "then" / plot).stat().st_size > 5_000
