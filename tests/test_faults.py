"""Faults a stranger meets: Hydra's own errors, a full disk, a read-only folder, a kill mid-write. Each is
one paragraph and exit 2 (bad input, the disk included), and no file is ever half-written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, run_cli
from fault_writer import FILES

HYDRA_ERRORS = {
    "model=cnnn": "There is no `model=cnnn`: the config group `model` has cnn, dense. Choose one of them",
    "model.foo=1": "Could not override 'model.foo' (Key 'foo' is not in struct). To append to your config use "
    "+model.foo=1.",
    "hydra.run.dir=${nope}": "Interpolation key 'nope' not found (in `hydra.run.dir`).",
}


@pytest.mark.parametrize("override", list(HYDRA_ERRORS))
def test_hydra_composition_error_is_one_paragraph_and_exit_2(override: str, tmp_path: Path) -> None:
    result = run_cli("train.py", f"hydra.run.dir={tmp_path}", override)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "HYDRA_FULL_ERROR" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == result.stderr.strip(), "one paragraph, nothing else"
    assert HYDRA_ERRORS[override] in result.stderr


@pytest.mark.parametrize("script", ["train.py", "eval.py", "predict.py", "export.py"])
def test_a_typo_fails_before_torch_loads(script: str, tmp_path: Path) -> None:
    """The config is composed before the task's libraries load: a typo'd override is told in a fraction of the
    3-7 s that torch and Lightning take to import."""
    command = [sys.executable, "-X", "importtime", str(REPO / script), f"hydra.run.dir={tmp_path}", "nope=1"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 2 and "Could not override 'nope'" in result.stderr, result.stderr[-3000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import ")}
    assert "hydra" in imported and "torch" not in imported and "lightning" not in imported


def test_ctrl_c_while_torch_loads_is_exit_130_without_a_traceback(tmp_path: Path) -> None:
    """Ctrl-C in the seconds before training starts printed a KeyboardInterrupt traceback from an import.
    (serve.py loads its model behind the running server, which stops on Ctrl-C: tests/test_serve.py.)"""
    env = {**os.environ, "PROJECT_ROOT": str(REPO)}
    process = subprocess.Popen([sys.executable, str(REPO / "train.py"), f"hydra.run.dir={tmp_path}"], cwd=REPO,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    maps = Path(f"/proc/{process.pid}/maps")
    while process.poll() is None and "libtorch_cpu" not in maps.read_text():
        time.sleep(0.01)  # torch's library is mapped in the first moment of `import torch`
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr and stderr.strip() == "Interrupted by SIGINT (Ctrl-C).", stderr[-3000:]


# a config file of one's own with a typo (README, Add your own model): was a YAML traceback and exit 1
YAML_TYPOS = {
    "model:\n  foo: [1, 2\n": "at line 3, column 1: while parsing a flow sequence begun at line 2, column 8",
    "model:\n\tfoo: 1\n": "at line 2, column 1: while scanning for the next token: found character '\\t'",
    "a: 1\na: 2\n": "at line 2, column 1: while constructing a mapping begun at line 1, column 1: found duplicate key",
}


@pytest.mark.parametrize("text", list(YAML_TYPOS))
def test_a_config_file_that_is_not_yaml_is_one_paragraph_and_exit_2(text: str, tmp_path: Path) -> None:
    typo = tmp_path / "configs" / "model" / "typo.yaml"
    typo.parent.mkdir(parents=True)
    typo.write_text(text)
    result = run_cli("train.py", "--config-dir", str(tmp_path / "configs"), f"hydra.run.dir={tmp_path}", "model=typo")
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == result.stderr.strip(), "one paragraph, nothing else"
    assert f"The config file {typo} is not valid YAML, {YAML_TYPOS[text]}" in result.stderr


@pytest.mark.parametrize(("script", "key", "reason"), [
    ("train.py", "paths.log_dir", "a part of its path is a file, not a folder"),
    ("eval.py", "paths.log_dir", "a part of its path is a file, not a folder"),
    ("train.py", "hydra.run.dir", "a file stands where its folder must be made"),
])  # fmt: skip
def test_a_file_where_a_folder_goes_is_one_paragraph_and_exit_2(
    script: str, key: str, reason: str, tmp_path: Path
) -> None:
    """Were NotADirectoryError / FileExistsError tracebacks, exit 1 (an attack review)."""
    (tmp_path / "a_file").write_text("not a folder")
    result = run_cli(script, f"{key}={tmp_path / 'a_file'}")
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and reason in result.stderr
    assert result.stderr.strip().splitlines()[-1] == result.stderr.strip(), "one paragraph, nothing else"
    assert (tmp_path / "a_file").read_text() == "not a folder"


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder holding a previous file for each kind that nothing can write into: a read-only tmpfs for
    root (whom permissions do not stop), a folder without write permission for anyone else."""
    folder = tmp_path / "read_only"
    folder.mkdir()
    if os.geteuid() != 0:
        write_previous_files(folder)
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    mount = ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)]
    if subprocess.run(mount, check=False, capture_output=True).returncode != 0:
        pytest.skip("root without the right to mount a tmpfs: no way to make a read-only folder")
    try:
        write_previous_files(folder)
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def write_previous_files(folder: Path) -> None:
    for name in FILES.values():
        (folder / name).write_bytes(PREVIOUS)


def write_under_fault(folder: Path, fault: str) -> tuple[dict[str, int], list[str]]:
    """How writing each kind of file into `folder` ended, and the messages printed (tests/fault_writer.py)."""
    path = os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, str(REPO / "tests" / "fault_writer.py"), str(folder), fault],
                            check=False, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": path},
                            timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return json.loads(result.stdout), [line for line in result.stderr.splitlines() if line.startswith("Error: ")]


PREVIOUS = b"the previous version\n"
EVERY_KIND_EXITS = dict.fromkeys(FILES, 2)


def assert_previous_files_intact(folder: Path) -> None:
    for name in FILES.values():
        assert (folder / name).read_bytes() == PREVIOUS, f"{name}: the previous file is intact"
    assert all(p.name in FILES.values() or p.name.endswith(".tmp") for p in folder.iterdir()), "no half file"


def test_disk_full_is_exit_2_and_keeps_every_previous_file(tmp_path: Path) -> None:
    write_previous_files(tmp_path)
    exits, messages = write_under_fault(tmp_path, "full")
    assert exits == EVERY_KIND_EXITS
    for name in FILES.values():
        wanted = f"Error: Could not write {tmp_path / name}: the file is over the file size limit"
        assert any(m.startswith(wanted) and "is intact" in m for m in messages), (name, messages)
    assert_previous_files_intact(tmp_path)


def test_killed_mid_write_keeps_every_previous_file(tmp_path: Path) -> None:
    write_previous_files(tmp_path)
    exits, _ = write_under_fault(tmp_path, "killed")
    assert exits == dict.fromkeys(FILES, -signal.SIGKILL)
    assert_previous_files_intact(tmp_path)


def test_read_only_folder_is_exit_2_and_keeps_every_previous_file(read_only_dir: Path) -> None:
    exits, messages = write_under_fault(read_only_dir, "none")
    assert exits == EVERY_KIND_EXITS
    for name in FILES.values():
        wanted = f"Error: Could not write {read_only_dir / name}: the folder is"
        assert any(m.startswith(wanted) for m in messages), (name, messages)
    assert_previous_files_intact(read_only_dir)
