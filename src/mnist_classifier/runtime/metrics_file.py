"""metrics.json in the run dir: the contract that sweeps, scripts and tests read."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mnist_classifier.utils.atomic import write_text

METRICS_FILE = "metrics.json"


def _plain_number(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/inf
    return value


def write_metrics(output_dir: str | Path, metrics: Mapping[str, Any]) -> Path:
    """Write atomically, so a crash never leaves a half-written file."""
    path = Path(output_dir) / METRICS_FILE
    plain = {key: _plain_number(value) for key, value in metrics.items()}
    return write_text(path, json.dumps(plain, indent=2, default=str) + "\n")


def read_metrics(run_dir: str | Path, missing: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The run's metrics.json; `missing` is what a run that wrote none (a job killed before it could) reads
    as, for the sweeps that collect many jobs. Without it, a missing file is an error."""
    path = Path(run_dir) / METRICS_FILE
    if missing is not None and not path.is_file():
        return dict(missing)
    return json.loads(path.read_text())


def earlier_record(run_dir: str | Path) -> dict[str, Any] | None:
    """The metrics.json an earlier run (or attempt) left in a run dir: None where there is none, {} where it
    cannot be read (damaged, or not a JSON object)."""
    if not (Path(run_dir) / METRICS_FILE).is_file():
        return None
    try:
        record = read_metrics(run_dir)
    except (ValueError, OSError):
        return {}
    return record if isinstance(record, dict) else {}
