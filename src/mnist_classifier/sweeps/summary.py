"""summary.csv / summary.md / summary.png in the sweep dir at the end of every multirun (a Hydra callback)."""

from __future__ import annotations

import logging
import shlex
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from hydra.core.utils import JobReturn
from hydra.experimental.callback import Callback
from omegaconf import DictConfig
from rich import box
from rich.console import Console
from rich.table import Table

from mnist_classifier.reports.tensorboard_link import timeseries_link
from mnist_classifier.runtime.metrics_file import read_metrics
from mnist_classifier.utils.atomic import atomic_file, write_text, write_with

if TYPE_CHECKING:  # pandas is imported when a multirun ends, not at every run's start-up
    import pandas as pd

log = logging.getLogger(__name__)
COLUMNS = ("job", "overrides", "val/acc_best", "test/acc", "test/loss", "epochs", "wall_time_s", "status")


def _short(value: Any) -> Any:
    """Sampled floats like 0.021153673722318383 shown as 0.02115 (the CSV's `params` keep them exact)."""
    try:
        return f"{float(value):.4g}" if value is not None and "." in value and len(value) > 8 else value
    except ValueError:
        return value


def collect_jobs(sweep_dir: Path) -> pd.DataFrame:
    """One row per job dir: the overrides that vary between jobs (the swept parameters) and what
    its metrics.json says (status `missing` if the job died before writing one)."""
    import pandas as pd

    job_dirs = sorted(
        (p for p in sweep_dir.iterdir() if (p / ".hydra" / "overrides.yaml").is_file()),
        key=lambda p: int(p.name) if p.name.isdigit() else p.name,
    )
    all_params = [
        dict(o.split("=", 1) for o in yaml.safe_load((d / ".hydra" / "overrides.yaml").read_text()) or [] if "=" in o)
        for d in job_dirs
    ]
    swept = sorted({k for params in all_params for k in params if len({p.get(k) for p in all_params}) > 1})
    rows: list[dict[str, Any]] = []
    for job_dir, params in zip(job_dirs, all_params, strict=True):
        metrics = read_metrics(job_dir, missing={"status": "missing"})
        varying = {k: params.get(k) for k in swept}
        row: dict[str, Any] = {
            "job": job_dir.name,
            "overrides": " ".join(f"{k}={_short(v)}" for k, v in varying.items()),
        }
        row.update({key: metrics.get(key) for key in COLUMNS[2:]})
        row["error"] = metrics.get("error") or (
            f"resume with {metrics['resume_command']}" if metrics.get("resume_command") else None
        )
        row["params"] = varying
        rows.append(row)
    return pd.DataFrame(rows)


def best_job(jobs: pd.DataFrame, metric: str, maximize: bool) -> int | None:
    import pandas as pd

    values = pd.to_numeric(jobs.get(metric), errors="coerce") if metric in jobs else pd.Series(dtype=float)
    if values.dropna().empty:
        return None
    return int(values.idxmax() if maximize else values.idxmin())


def _cells(row: Any) -> list[str]:
    import pandas as pd

    def cell(column: str) -> str:
        value = row[column]
        if pd.isna(value):
            return "-"
        if column == "epochs":
            return str(int(value))
        if column == "wall_time_s":
            return f"{value:.1f}"
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    return [cell(column) for column in COLUMNS]


def tensorboard_command(sweep_dir: Path) -> str | None:
    """The command that shows every job of the sweep side by side (runs named by their swept values,
    HPARAMS columns the swept parameters); None if no job wrote TensorBoard events."""
    if not any(sweep_dir.glob("*/tensorboard")):
        return None
    return f"tensorboard --logdir {shlex.quote(str(sweep_dir))}"


def _markdown(jobs: pd.DataFrame, best: int | None, metric: str, tensorboard: str | None) -> str:
    header = "| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS) + "\n"
    lines = []
    for index, row in jobs.iterrows():
        cells = _cells(row)
        if index == best:
            cells = [f"**{c}**" for c in cells]
            cells[0] += " (best)"
        lines.append("| " + " | ".join(cells) + " |")
    failed = jobs[jobs["status"] != "ok"]
    notes = "".join(f"\n- job {r.job} {r.status}: {r.error or 'no metrics.json'}" for r in failed.itertuples())
    return (
        f"# Sweep summary (best by {metric})\n\n"
        + header
        + "\n".join(lines)
        + "\n"
        + (f"\nFailures:{notes}\n" if notes else "")
        + (
            f"\nCompare the jobs' curves and HPARAMS: `{tensorboard}`, then open {timeseries_link()} "
            f"(the training curves pinned first)\n"
            if tensorboard
            else ""
        )
    )


def _plot(jobs: pd.DataFrame, metric: str, path: Path) -> None:
    """The metric against each swept parameter: numbers on a scatter, anything else as categories."""
    import pandas as pd
    import seaborn as sns
    from matplotlib.figure import Figure

    params = sorted({key for p in jobs["params"] for key in p})
    ok = jobs[pd.to_numeric(jobs[metric], errors="coerce").notna()] if metric in jobs else jobs.iloc[0:0]
    fig = Figure(figsize=(4.5 * max(1, len(params)), 4), layout="constrained")
    axes = fig.subplots(1, max(1, len(params)), squeeze=False)[0]
    for ax, param in zip(axes, params or ["job"], strict=True):
        values = ok["params"].apply(dict.get, args=(param,)) if params else ok["job"]
        x = pd.to_numeric(values, errors="coerce")
        y = pd.to_numeric(ok[metric], errors="coerce") * 100
        if len(ok) and x.notna().all():
            sns.scatterplot(x=x, y=y, ax=ax, s=60)
            if x.min() > 0 and x.max() / x.min() >= 100:
                ax.set_xscale("log")
        elif len(ok):
            sns.stripplot(x=values.astype(str), y=y, ax=ax, size=8)
        ax.set(xlabel=param, ylabel=f"{metric} (%)")
        ax.grid(alpha=0.3)
    fig.suptitle(f"{metric} per job ({len(ok)} of {len(jobs)} finished)")
    write_with(path, lambda file: fig.savefig(file, format="png"))


class SweepSummary(Callback):
    """Summarises every multirun; a grid sweep with failed jobs then exits non-zero (after writing).

    A job interrupted by Ctrl-C or SIGTERM ends the sweep: the summary is written at once (it lists the
    interrupted job) and the process exits 130 / 143 instead of starting the next job.
    """

    def __init__(self, metric: str | None = None, maximize: bool = True, fail_on_job_error: bool = True) -> None:
        self.metric = metric
        self.maximize = maximize
        self.fail_on_job_error = fail_on_job_error

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if job_return.hydra_cfg is None:
            return
        outcome = read_metrics(job_return.hydra_cfg.hydra.runtime.output_dir, missing={})
        if outcome.get("status") == "interrupted":
            self.write(config)
            signum = signal.Signals[outcome.get("signal", "SIGINT")]
            log.warning("The sweep was interrupted by %s: no further jobs are started.", signum.name)
            raise SystemExit(128 + signum)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        jobs = self.write(config)
        failed = 0 if jobs is None else int((jobs["status"] != "ok").sum())
        if jobs is not None and failed and self.fail_on_job_error:
            raise SystemExit(
                f"{failed} of {len(jobs)} sweep jobs failed (see {Path(config.hydra.sweep.dir) / 'summary.md'}); "
                f"the other jobs' results are kept."
            )

    def write(self, config: DictConfig) -> pd.DataFrame | None:
        """summary.csv / .md / .png (each written atomically) and the printed table."""
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return None
        jobs = collect_jobs(sweep_dir)
        if jobs.empty:
            log.warning("Sweep summary: no job dirs in %s", sweep_dir)
            return None
        metric = self.metric or config.get("optimized_metric") or "val/acc_best"
        best = best_job(jobs, metric, self.maximize)
        with atomic_file(sweep_dir / "summary.csv", "w") as file:
            jobs[[*COLUMNS, "params"]].to_csv(file, index=False)
        tensorboard = tensorboard_command(sweep_dir)
        write_text(sweep_dir / "summary.md", _markdown(jobs, best, metric, tensorboard))
        _plot(jobs, metric, sweep_dir / "summary.png")
        self._print(jobs, best, metric, sweep_dir)
        if tensorboard:
            print(f"Compare the jobs in TensorBoard: {tensorboard}")
            print(f"  then open {timeseries_link()} (the training curves pinned first)")
        return jobs

    @staticmethod
    def _print(jobs: pd.DataFrame, best: int | None, metric: str, sweep_dir: Path) -> None:
        table = Table(
            title=f"Sweep summary (best by {metric}): {sweep_dir}",
            title_justify="left",
            box=box.SIMPLE_HEAD,
            show_edge=False,
        )
        for column in COLUMNS:
            table.add_column(column, justify="left" if column == "overrides" else "right", no_wrap=True)
        for index, row in jobs.iterrows():
            table.add_row(
                *_cells(row), style="bold green" if index == best else ("red" if row["status"] != "ok" else None)
            )
        # Never cut the overrides to "…" (a log file is 80 columns to rich): print the table whole.
        console = Console()
        natural = console.measure(table, options=console.options.update_width(10_000)).maximum
        Console(width=max(console.width, natural)).print(table)
        print(f"Sweep summary: {sweep_dir / 'summary.md'} (+ summary.csv, summary.png)")
