"""How every entry ends (`entry.run`): without the interpreter's teardown, yet with the same exit code,
threads, executors (an idle pool worker, as joblib's launcher leaves), atexit handlers and buffered output
as a normal exit; under a profiler, a normal exit, so it writes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

ENTRY = """
import atexit, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
from mnist_classifier.runtime import entry

atexit.register(lambda: print("atexit ran"))
late = threading.Thread(target=lambda: (time.sleep(0.3), print("thread finished")))
late.start()
pool = ThreadPoolExecutor(1)  # never shut down: its idle worker waits for Python's exit to stop it
pool.submit(print, "pool task")
time.sleep(0.1)
print("buffered", end=" ")
entry.run(lambda: sys.exit({code}))
"""


def run_entry(tmp_path: Path, code: str, *python_args: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "entry_script.py"
    script.write_text(ENTRY.format(code=code))
    env = {"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, *python_args, str(script)], check=False, capture_output=True, text=True, env=env
    )


@pytest.mark.parametrize(("code", "expected"), [("None", 0), ("0", 0), ("3", 3), ("'Error: message'", 1)])
def test_exit_code_threads_atexit_and_output_survive(tmp_path: Path, code: str, expected: int) -> None:
    result = run_entry(tmp_path, code)
    assert result.returncode == expected, result.stderr
    assert result.stdout.split() == ["pool", "task", "buffered", "thread", "finished", "atexit", "ran"]
    assert ("Error: message" in result.stderr) == (expected == 1)


def test_a_profiled_run_writes_its_profile(tmp_path: Path) -> None:
    stats = tmp_path / "run.prof"
    result = run_entry(tmp_path, "3", "-m", "cProfile", "-o", str(stats))  # cProfile itself exits 0
    assert stats.is_file() and stats.stat().st_size > 0, result.stderr
    assert result.stdout.split()[-2:] == ["atexit", "ran"]
