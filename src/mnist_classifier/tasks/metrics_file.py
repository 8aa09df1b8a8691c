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


def read_metrics(run_dir: str | Path) -> dict[str, Any]:
    return json.loads((Path(run_dir) / METRICS_FILE).read_text())
