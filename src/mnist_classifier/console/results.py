"""The one results table at the end of a run: the numbers that matter, the time, and where the files are."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.table import Table

from mnist_classifier.console.story import show

# (key in metrics.json, label, format); rows appear for the keys a task produced
RESULT_ROWS = (
    ("inputs", "inputs", "integer"),
    ("predicted", "predicted", "integer"),
    ("failed", "failed", "integer"),
    ("exported_test_acc", "exported model, test accuracy", "percent"),
    ("checkpoint_test_acc", "checkpoint, test accuracy", "percent"),
    ("max_abs_prob_diff", "largest probability difference", "scientific"),
    ("model_path", "model", "text"),
    ("test/acc", "test accuracy", "percent"),
    ("test/loss", "test loss", "number"),
    ("val/acc_best", "best val accuracy", "percent"),
    ("epochs", "epochs", "integer"),
    ("wall_time_s", "time", "seconds"),
)


def _format(value: Any, kind: str) -> str:
    if kind == "percent":
        return f"{100 * float(value):.2f}%"
    if kind == "number":
        return f"{float(value):.4f}"
    if kind == "seconds":
        return f"{float(value):.1f} s"
    if kind == "scientific":
        return f"{float(value):.1e}"
    return str(value)


def results_table(metrics: Mapping[str, Any], run_dir: str | Path) -> Table:
    table = Table(title="Results", title_justify="left", show_header=False, box=None)
    table.add_column(justify="right", style="bold")
    table.add_column(overflow="fold")
    for key, label, kind in RESULT_ROWS:
        if metrics.get(key) is not None:
            table.add_row(label, _format(metrics[key], kind))
    if isinstance(metrics.get("ckpt_path"), list):  # an ensemble's members
        table.add_row("ensemble of", "\n".join(map(str, metrics["ckpt_path"])))
    elif metrics.get("ckpt_path"):
        table.add_row("checkpoint", str(metrics["ckpt_path"]))
    table.add_row("run dir", str(run_dir))
    files = sorted(p.name + ("/" if p.is_dir() else "") for p in Path(run_dir).iterdir() if not p.name.startswith("."))
    table.add_row("files", ", ".join(files))
    return table


def print_results(metrics: Mapping[str, Any], run_dir: str | Path) -> None:
    show(results_table(metrics, run_dir), soft_wrap=True)
