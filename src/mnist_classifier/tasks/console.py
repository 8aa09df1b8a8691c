"""The short table printed at the end of a run: loss per epoch, test loss, test accuracy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table


def _fmt(value: Any, percent: bool = False) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.2f}%" if percent else f"{value:.4f}"


def print_run_summary(history: Sequence[Mapping[str, Any]], metrics: Mapping[str, Any], run_dir: str) -> None:
    table = Table(title="Loss per epoch", title_justify="left")
    for column in ("epoch", "train/loss", "val/loss", "val/acc"):
        table.add_column(column, justify="right")
    for row in history:
        table.add_row(
            str(row["epoch"]), _fmt(row.get("train/loss")), _fmt(row.get("val/loss")), _fmt(row.get("val/acc"), True)
        )
    console = Console()
    console.print(f"Run dir: {run_dir}", soft_wrap=True)
    if history:
        console.print(table)
    for key, percent in (("val/acc_best", True), ("test/loss", False), ("test/acc", True)):
        if metrics.get(key) is not None:
            console.print(f"{key:>13}: [bold]{_fmt(float(metrics[key]), percent)}[/bold]")
