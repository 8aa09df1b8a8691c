"""Shared fixtures: real MNIST (MNIST_DATA_DIR), tiny synthetic IDX files, and a CLI runner."""

from __future__ import annotations

import functools
import gzip
import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("PROJECT_ROOT", str(REPO))

from warm_python import WarmPython, can_fork  # noqa: E402

from mnist_classifier.console.noise import LIBRARY_WARNINGS  # noqa: E402
from mnist_classifier.data.mnist_files import MNIST_FILES  # noqa: E402
from mnist_classifier.runtime import entry  # noqa: E402

entry.prepare(str(REPO / "train.py"))  # what train.py does: resolvers, library warning filters


def _share_the_cores_among_test_workers() -> None:
    """Under pytest-xdist (`make test`), each worker and the runs it starts keep to their own share of the
    cores: two single-core trainings side by side finished in 17 s where two that fought over both cores
    took 24 s one after the other (2-core machine). The project sizes its torch threads from this affinity."""
    worker, workers = os.environ.get("PYTEST_XDIST_WORKER"), os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if not (worker and workers and hasattr(os, "sched_setaffinity")):
        return
    cores = sorted(os.sched_getaffinity(0))
    index, count = int(worker.removeprefix("gw")), int(workers)
    os.sched_setaffinity(0, set(cores[index % len(cores) :: count]) or {cores[index % len(cores)]})
    torch.set_num_threads(len(os.sched_getaffinity(0)))


_share_the_cores_among_test_workers()

SYNTHETIC_TRAIN, SYNTHETIC_TEST = 600, 200


def _has_mnist(data_dir: Path) -> bool:
    raw = data_dir / "MNIST" / "raw"
    return all((raw / name).exists() or (raw / f"{name}.gz").exists() for name in MNIST_FILES)


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The real MNIST files: $MNIST_DATA_DIR (default ./data, staged by `make data`).

    Under CI=true a missing dataset fails the test instead of skipping it.
    """
    data_dir = Path(os.environ.get("MNIST_DATA_DIR", REPO / "data")).resolve()
    if not _has_mnist(data_dir):
        message = (
            f"real MNIST not found in {data_dir}/MNIST/raw: run `make data` or set MNIST_DATA_DIR "
            f"to a folder holding MNIST/raw/"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return data_dir


def write_idx_images(path: Path, images: np.ndarray, compress: bool = False) -> None:
    header = struct.pack(">IIII", 0x00000803, *images.shape)
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(header + images.astype(np.uint8).tobytes())


def write_idx_labels(path: Path, labels: np.ndarray, compress: bool = False) -> None:
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(struct.pack(">II", 0x00000801, len(labels)) + labels.astype(np.uint8).tobytes())


def synthetic_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Learnable fake digits: class k lights up a bright bar at row 2k+4, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    images = rng.integers(0, 60, (n, 28, 28))
    for i, label in enumerate(labels):
        images[i, 2 * label + 4 : 2 * label + 6, 4:24] = 255
    return images.astype(np.uint8), labels


@pytest.fixture(scope="session")
def synthetic_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data_dir with small unpacked IDX files in MNIST/raw/, read by torchvision's real parser."""
    data_dir = tmp_path_factory.mktemp("synthetic_mnist")
    raw = data_dir / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n, seed in (("train", SYNTHETIC_TRAIN, 0), ("t10k", SYNTHETIC_TEST, 1)):
        images, labels = synthetic_digits(n, seed)
        write_idx_images(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx_labels(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return data_dir


def _cli_env() -> dict[str, str]:
    python_path = os.pathsep.join(filter(None, [str(REPO / "tests"), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONUNBUFFERED": "1", "PROJECT_ROOT": str(REPO), "PYTHONPATH": python_path}


# FRESH_PYTHON=1 make test: every run in a new interpreter, as before the warm Python
FRESH_PYTHON = os.environ.get("FRESH_PYTHON") == "1"
_WARM_ENV = _cli_env()  # the environment the warm Python imports under (tests/warm_python.py)


@functools.cache
def _warm_python() -> WarmPython:
    """This test process's warm Python, started on first use."""
    return WarmPython(_WARM_ENV, REPO)


def run_cli(
    script: str, *overrides: str, timeout: float | None = None, fresh: bool = False
) -> subprocess.CompletedProcess:
    """Run train.py/eval.py as a user would; output is kept for assertions and failure reports.

    The process is a fork of this worker's warm Python (tests/warm_python.py), which has imported torch,
    Lightning and Hydra already; `fresh=True` (for what happens while importing), or a variable changed
    since the session started that a library reads when imported (OMP_NUM_THREADS, ...), starts a new
    interpreter instead.
    No time limit by default: a run ends when its epochs are done, and how long that takes depends on the
    CPU (an AVX2-only CPU trains the CNN 2-4x slower than one with native bf16). A fixed limit would be
    one machine's figure; CI's own limit is the guard against a hang."""
    env, argv = _cli_env(), [str(REPO / script), *overrides]
    if not (fresh or FRESH_PYTHON) and sys.platform == "linux" and can_fork(_WARM_ENV, env):
        if _warm_python().process.poll() is not None:  # ended by an interrupted exchange: start a new one
            _warm_python.cache_clear()
        return _warm_python().run(argv, REPO, env, timeout)
    return subprocess.run(
        [sys.executable, *argv], check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


def assert_ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"


def quiet_trainer(root: Path, **settings: Any) -> L.Trainer:
    """A CPU Trainer for in-process tests: no logger, progress bar or model summary; `settings` say how long."""
    settings = {"accelerator": "cpu", "logger": False, "enable_progress_bar": False, "enable_model_summary": False,
                **settings}  # fmt: skip
    return L.Trainer(default_root_dir=root, **settings)


def quick_checkpoint(path: Path, data_dir: Path, *overrides: str) -> Path:
    """A checkpoint as train.py writes it (Lightning's format, this project's module), after two steps on
    `data_dir` (batches of 50, 100 validation images)."""
    from hydra.utils import instantiate
    from test_configs import compose_train

    cfg = compose_train(f"data.data_dir={data_dir}", "data.val_size=100", "data.batch_size=50", *overrides)
    trainer = quiet_trainer(
        path.parent, max_steps=2, limit_val_batches=1, num_sanity_val_steps=0, enable_checkpointing=False
    )
    trainer.fit(instantiate(cfg.model), datamodule=instantiate(cfg.data))
    trainer.save_checkpoint(path, weights_only=False)
    return path


def needs_tool(path: str, what: str) -> None:
    """A system tool a test needs (installed by .ci/run): skipped where missing, failed under CI=true."""
    if not Path(path).exists():
        message = f"{what} not found at {path}: `apt-get install` it (see .ci/run)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)


QUIET = ["logger=none", "reports=none", "callbacks.model_summary=null", "callbacks.progress_bar=null"]
SEEDS = (0, 1, 2, 3, 4)


def train_seeds(data_dir: Path, sweep_dir: Path, *overrides: str) -> list[dict]:
    """`python train.py -m seed=0,1,2,3,4 ...` (one process, one job per seed): each job's metrics.json."""
    from mnist_classifier.runtime.metrics_file import read_metrics

    seeds = ",".join(map(str, SEEDS))
    assert_ok(run_cli("train.py", "-m", f"seed={seeds}", f"data.data_dir={data_dir}", *QUIET, *overrides,
                      f"hydra.sweep.dir={sweep_dir}"))  # fmt: skip
    return [read_metrics(sweep_dir / str(job)) for job in range(len(SEEDS))]


@pytest.fixture(scope="session")
def default_cnn_seeds(real_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """`python train.py` as shipped, on seeds 0-4, once for every test that needs the default CNN."""
    return train_seeds(real_data_dir, tmp_path_factory.mktemp("default_cnn"))


@pytest.fixture(scope="session")
def default_cnn_checkpoint(default_cnn_seeds: list[dict]) -> Path:
    """The default recipe's best checkpoint (seed 0)."""
    return Path(default_cnn_seeds[0]["ckpt_path"])


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "longest: a whole experiment, minutes long; collected first (see below)")
    for message, module in LIBRARY_WARNINGS:  # what the entries filter for users, for in-process tests too
        assert ":" not in message + module, f"pytest splits its filters at ':': {message!r}"
        config.addinivalue_line("filterwarnings", f"ignore:{message}::{module}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The `longest` tests first, so that pytest-xdist (`--no-loadscope-reorder`, the Makefile) hands one to
    each worker at the start. In file order, after the groups, it queued `dense_best` behind `cnn_best` on
    one worker while the other ran out of work (CI on 2 AVX2-only cores: 22.3 minutes, the last 7 with one
    worker idle)."""
    items.sort(key=lambda item: item.get_closest_marker("longest") is None)  # stable: the rest keep their order


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Under `--dist loadgroup`, a test of an `xdist_group` that pytest-xdist did not group fails with why
    (pytest-xdist#1386): the tests of one group share a trained fixture or the one SLURM cluster."""
    grouped = item.config.getoption("loadgroup", default=False) and item.get_closest_marker("xdist_group")
    if grouped and "@" not in item.nodeid:
        pytest.fail(
            f"pytest-xdist's --dist loadgroup did not group this test, so its group would run on several "
            f"workers: pytest {pytest.__version__} may be one it does not support yet (pytest-xdist#1386). "
            f"Install the versions in requirements.lock (`make install`)."
        )
