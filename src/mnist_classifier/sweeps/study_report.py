"""A whole study on request (`hydra.sweeper.study_summary=true`): every trial of every worker, as
study_summary.csv / .md, and Optuna's own plots of the search (optimisation history, parameter
importances) as PNGs beside them."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import optuna

if TYPE_CHECKING:
    from matplotlib.axes import Axes

from mnist_classifier.utils.atomic import atomic_file, write_text, write_with

log = logging.getLogger(__name__)


def study_table(study: optuna.Study) -> list[dict[str, object]]:
    return [
        {
            "trial": trial.number,
            "state": trial.state.name,
            "status": trial.user_attrs.get("status", "stale" if trial.state.name == "FAIL" else ""),
            "value": trial.value,
            **{f"params.{name}": value for name, value in trial.params.items()},
            "job_dir": trial.user_attrs.get("job_dir", ""),
            "error": trial.user_attrs.get("error", ""),
        }
        for trial in study.get_trials(deepcopy=False)
    ]


def _markdown(rows: list[dict[str, object]], best: int | None) -> str:
    columns = list(dict.fromkeys(key for row in rows for key in row if key not in ("job_dir", "error")))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = ["" if row.get(c) is None else f"{row[c]:.4g}" if isinstance(row.get(c), float) else str(row.get(c, ""))
                 for c in columns]  # fmt: skip
        if row["trial"] == best:
            cells = [f"**{cell}**" for cell in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _save_figure(axes: Axes, path: Path) -> Path:
    from matplotlib.figure import Figure

    figure = axes.get_figure(root=True)
    assert isinstance(figure, Figure)
    figure.set_size_inches(8, 5)
    figure.tight_layout()
    return write_with(path, lambda file: figure.savefig(file, format="png"))


def write_study_report(study: optuna.Study, folder: Path) -> list[Path]:
    import pandas as pd
    from optuna.visualization.matplotlib import plot_optimization_history, plot_param_importances

    rows = study_table(study)
    completed = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    best = study.best_trial.number if completed else None
    written = [folder / "study_summary.csv", folder / "study_summary.md"]
    with atomic_file(written[0], "w") as file:
        pd.DataFrame(rows).to_csv(file, index=False)
    write_text(written[1], f"# Study {study.study_name} ({len(rows)} trials, all workers)\n\n" + _markdown(rows, best))
    plots: dict[str, Callable[[optuna.Study], Axes]] = {"optimization_history.png": plot_optimization_history}
    if len(completed) >= 2 and completed[0].params:
        plots["param_importances.png"] = plot_param_importances
    with warnings.catch_warnings():  # both plots are marked experimental by Optuna; the result is what we want
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        for name, plot in plots.items():
            written.append(_save_figure(plot(study), folder / name))
    log.info("Study summary: %s", ", ".join(str(path) for path in written))
    return written
