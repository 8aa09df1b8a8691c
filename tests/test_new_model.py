"""README's "Add your own model", followed step by step in a copy of the project: the network module, its
recipe and its registry line are all a new network takes to train, its checkpoint passes the allowlist
(eval.py loads and tests it), and its ONNX export passes the graph check (predict.py runs it)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import torch
from conftest import QUIET, REPO, assert_ok
from drawn_digits import write_drawn_digits

from mnist_classifier.runtime.metrics_file import read_metrics

SECTION = "### Add your own model"


def readme_steps() -> tuple[dict[str, str], str]:
    """The files the section shows (each code block follows the path it goes to) and the model's name."""
    text = (REPO / "README.md").read_text()
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    files = dict(re.findall(r"`((?:src|configs)/[^`]+)`:\n\n```\w*\n(.*?)```", section, re.DOTALL))
    (model,) = set(re.findall(r"python train\.py model=(\w+)", section))
    return files, model


def follow(files: dict[str, str], project: Path) -> None:
    """New files are written; in an existing one (registry.py) the shown line replaces the line it updates."""
    for name, content in files.items():
        path = project / name
        if not path.exists():
            path.write_text(content)
            continue
        (line,) = content.strip().splitlines()
        target = line.split("=", 1)[0]
        lines = path.read_text().splitlines(keepends=True)
        (index,) = [i for i, old in enumerate(lines) if old.startswith(target)]
        lines[index] = line + "\n"
        path.write_text("".join(lines))


def run(project: Path, script: str, *overrides: str) -> subprocess.CompletedProcess:
    """A run of the copy's own script with the copy's sources first on the path."""
    python_path = os.pathsep.join([str(project / "src"), str(REPO / "tests")])
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PROJECT_ROOT": str(project), "PYTHONPATH": python_path}
    command = [sys.executable, str(project / script), *overrides]
    return subprocess.run(command, check=False, cwd=project, env=env, capture_output=True, text=True)


def test_readme_steps_add_a_model_that_trains_and_loads(synthetic_data_dir: Path, tmp_path: Path) -> None:
    files, model = readme_steps()
    assert {f"configs/model/{model}.yaml", "src/mnist_classifier/registry.py"} <= set(files), files
    assert len(files) == 3 and any(name.startswith("src/mnist_classifier/models/") for name in files), files
    project = tmp_path / "project"
    for folder in ("configs", "src"):
        shutil.copytree(REPO / folder, project / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for script in ("train.py", "eval.py", "export.py", "predict.py"):
        shutil.copy(REPO / script, project / script)
    follow(files, project)

    data = [f"data.data_dir={synthetic_data_dir}", "data.val_size=100", "data.batch_size=50", "logger=none"]
    trained = run(project, "train.py", f"model={model}", *data, *QUIET, "trainer.max_epochs=1",
                  "trainer.limit_train_batches=4", "test=false", f"hydra.run.dir={tmp_path / 'train'}")  # fmt: skip
    assert_ok(trained)
    (checkpoint,) = (tmp_path / "train" / "checkpoints").glob("epoch_*.ckpt")
    (network,) = re.findall(r"\n  net:\n    _target_: (\S+)", files[f"configs/model/{model}.yaml"])
    assert torch.load(checkpoint, weights_only=True)["hyper_parameters"]["net"]["_target_"] == network
    tested = run(
        project, "eval.py", f"ckpt_path={checkpoint}", *data, "reports=none", f"hydra.run.dir={tmp_path / 'eval'}"
    )
    assert_ok(tested)
    assert 0 <= read_metrics(tmp_path / "eval")["test/acc"] <= 1
    exported = run(project, "export.py", f"ckpt_path={checkpoint}", "format=onnx",
                   f"data.data_dir={synthetic_data_dir}", f"hydra.run.dir={tmp_path / 'export'}")  # fmt: skip
    assert_ok(exported)
    write_drawn_digits(tmp_path / "drawn")
    predicted = run(project, "predict.py", f"model_path={tmp_path / 'export' / 'model.onnx'}",
                    f"inputs={tmp_path / 'drawn'}", f"hydra.run.dir={tmp_path / 'predict'}")  # fmt: skip
    assert_ok(predicted)
