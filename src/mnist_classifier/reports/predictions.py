"""What predict.py leaves: predictions.csv and .json (a row per input, failures included, with the status
that says why), preprocessed.png (what the model saw), and a short table on the console."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from rich.text import Text

from mnist_classifier.data.in_memory import normalize_pixels
from mnist_classifier.digits import NUM_CLASSES
from mnist_classifier.reports import figures
from mnist_classifier.utils.atomic import atomic_file, write_text

CONSOLE_ROWS = 20  # the rest is in predictions.csv
GRID_IMAGES = 100


@dataclass
class Prediction:
    file: str
    prediction: int | None
    confidence: float | None
    status: str
    probabilities: list[float] = field(default_factory=list)

    @property
    def top3(self) -> list[tuple[int, float]]:
        order = np.argsort(self.probabilities)[::-1][:3]
        return [(int(c), float(self.probabilities[c])) for c in order]


def make_predictions(files: Sequence[str], statuses: Sequence[str], probabilities: torch.Tensor) -> list[Prediction]:
    rows = []
    for file, status, probs in zip(files, statuses, probabilities.tolist(), strict=True):
        if status != "ok":
            rows.append(Prediction(file, None, None, status))
        else:
            best = int(np.argmax(probs))
            rows.append(Prediction(file, best, float(probs[best]), status, [round(p, 6) for p in probs]))
    return rows


def write_predictions(rows: Sequence[Prediction], output_dir: Path) -> list[Path]:
    csv_path, json_path = output_dir / "predictions.csv", output_dir / "predictions.json"
    with atomic_file(csv_path, "w") as file:
        writer = csv.writer(file)
        writer.writerow(["file", "prediction", "confidence", "status", *(f"p{c}" for c in range(NUM_CLASSES))])
        for row in rows:
            confidence = "" if row.confidence is None else f"{row.confidence:.6f}"
            prediction = "" if row.prediction is None else row.prediction
            probabilities: list[float | str] = [*row.probabilities] or [""] * NUM_CLASSES  # every column, always
            writer.writerow([spreadsheet_text(row.file), prediction, confidence, row.status, *probabilities])
    # a row per line: as readable as indent=1, in half the time (json's C encoder; 10,000 rows: 0.12 s)
    write_text(json_path, "[\n" + ",\n".join(json.dumps(vars(row)) for row in rows) + "\n]\n")
    return [csv_path, json_path]


def spreadsheet_text(text: str) -> str:
    """A file name as a CSV cell that spreadsheets show as text: a cell starting with = + - @ (or a tab or
    carriage return) is a formula to Excel and LibreOffice, so a picture named `=HYPERLINK(...).png` would
    run as one when predictions.csv is opened. Such a name gets a leading ' (OWASP's advice);
    predictions.json keeps every name as it is."""
    return "'" + text if text.startswith(("=", "+", "-", "@", "\t", "\r")) else text


def write_preprocessed_grid(pixels: Sequence[np.ndarray], rows: Sequence[Prediction], path: Path) -> Path:
    """The first images as the model saw them (28x28, white on black), captioned with the prediction."""
    shown = list(zip(pixels, rows[: len(pixels)], strict=True))[:GRID_IMAGES]
    images = normalize_pixels(torch.from_numpy(np.stack([p for p, _ in shown]))[:, None])
    captions = [  # a `$` would start matplotlib's mathtext
        f"{shown_name(r.file)[:10]}: {r.prediction if r.status == 'ok' else '-'}".replace("$", r"\$") for _, r in shown
    ]
    wrong = [r.status != "ok" for _, r in shown]
    figures.save_png(figures.digit_grid(images, captions, wrong, columns=10), path)
    return path


def shown_name(path: str) -> str:
    """A file's name as printed: control characters (terminal escape sequences, newlines) made visible
    as Python escapes, so a name cannot colour the terminal or split a row."""
    name = Path(path).name
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in name)


def print_predictions(rows: Sequence[Prediction]) -> None:
    table = Table(title="Predictions (full paths and probabilities in predictions.csv)", title_justify="left")
    for column in ("file", "digit", "confidence", "top-3", "status"):
        table.add_column(column, justify="right" if column in ("digit", "confidence") else "left", overflow="fold")
    for row in rows[:CONSOLE_ROWS]:
        ok = row.status == "ok"
        top3 = ", ".join(f"{c} {100 * p:.0f}%" for c, p in row.top3) if ok else ""
        confidence = f"{100 * row.confidence:.1f}%" if row.confidence is not None else ""
        table.add_row(
            Text(shown_name(row.file)),  # Text: never read as Rich markup (`[bold]x.png`)
            str(row.prediction) if ok else "-",
            confidence,
            top3,
            row.status,
            style=None if ok else "red",
        )
    if len(rows) > CONSOLE_ROWS:
        table.caption = f"... and {len(rows) - CONSOLE_ROWS} more in predictions.csv"
    Console().print(table, soft_wrap=True)
