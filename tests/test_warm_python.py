"""The warm Python (tests/warm_python.py) that most CLI tests run through gives what a new interpreter gives."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import FRESH_PYTHON, run_cli

PROBE = """\
import os, sys
print(__name__, sys.argv, os.getcwd(), sys.path[0], os.environ["PYTEST_CURRENT_TEST"].split(" ")[0])
print("to stderr", file=sys.stderr)
if sys.argv[1] == "raise":
    raise ValueError("a bug")
if sys.argv[1] == "interrupt":
    raise KeyboardInterrupt
sys.exit(int(sys.argv[1]))
"""


@pytest.mark.parametrize("how", ["0", "3", "raise", "interrupt"])
def test_a_warm_run_is_what_a_fresh_process_gives(tmp_path: Path, how: str) -> None:
    """Exit code (an uncaught Ctrl-C's SIGINT too), stdout and stderr (a traceback included), argv, cwd,
    sys.path[0] and the test's environment."""
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    warm, fresh = (run_cli(str(script), how, "x=1", fresh=fresh) for fresh in (False, True))
    assert (warm.returncode, warm.stdout, warm.stderr) == (fresh.returncode, fresh.stdout, fresh.stderr)
    assert warm.returncode == {"0": 0, "3": 3, "raise": 1, "interrupt": -2}[how]
    assert warm.stdout.startswith(f"__main__ {[str(script), how, 'x=1']} ") and str(tmp_path) in warm.stdout
    assert warm.stderr.startswith("to stderr\n")
    assert ("ValueError: a bug" in warm.stderr) == (how == "raise")


def test_a_warm_run_past_its_timeout_is_killed_and_the_next_one_runs(tmp_path: Path) -> None:
    script = tmp_path / "sleeper.py"
    script.write_text(
        "import sys, time\nprint('started', flush=True)\nif sys.argv[1] == 'sleep':\n    time.sleep(60)\n"
    )
    with pytest.raises(subprocess.TimeoutExpired) as expired:
        run_cli(str(script), "sleep", timeout=2)
    assert expired.value.output == b"started\n"  # bytes, as subprocess.run gives it
    assert run_cli(str(script), "go", timeout=60).returncode == 0


@pytest.mark.skipif(FRESH_PYTHON, reason="FRESH_PYTHON=1 asks for no warm Python")
def test_runs_stay_warm_unless_they_change_what_a_library_reads_at_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-process tests leave variables behind (seed_everything's PL_GLOBAL_SEED): the runs after them are
    still forks of the warm Python; a changed OMP_NUM_THREADS needs a new interpreter, which has not imported
    torch yet."""
    script = tmp_path / "preloaded.py"
    script.write_text("import sys\nprint('torch' in sys.modules)\n")
    monkeypatch.setenv("PL_GLOBAL_SEED", "3")  # what L.seed_everything(3) leaves behind
    assert run_cli(str(script)).stdout == "True\n"
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert run_cli(str(script)).stdout == "False\n"


def test_each_warm_run_draws_its_own_random_numbers(tmp_path: Path) -> None:
    """As two new interpreters would: a run that forgets to seed does not repeat the one before it."""
    script = tmp_path / "draw.py"
    script.write_text("import numpy, torch\nprint(numpy.random.rand(), torch.rand(1).item())\n")
    first, second = (run_cli(str(script)).stdout for _ in range(2))
    numpy_draws, torch_draws = zip(first.split(), second.split(), strict=True)
    assert numpy_draws[0] != numpy_draws[1] and torch_draws[0] != torch_draws[1]
