"""Per-class precision/recall/F1/support with torchmetrics, as JSON and as a readable table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_f1_score,
    multiclass_precision,
    multiclass_recall,
)

from mnist_classifier.utils.atomic import write_text


def classification_report(preds: torch.Tensor, labels: torch.Tensor, num_classes: int = 10) -> dict[str, Any]:
    """Same layout as scikit-learn's report: one row per class, macro/weighted averages, accuracy."""
    args = (preds, labels, num_classes)
    per_class = {
        "precision": multiclass_precision(*args, average=None),
        "recall": multiclass_recall(*args, average=None),
        "f1": multiclass_f1_score(*args, average=None),
    }
    support = torch.bincount(labels, minlength=num_classes)
    report: dict[str, Any] = {
        str(c): {**{k: float(v[c]) for k, v in per_class.items()}, "support": int(support[c])}
        for c in range(num_classes)
    }
    for average in ("macro", "weighted"):
        report[f"{average} avg"] = {
            "precision": float(multiclass_precision(*args, average=average)),
            "recall": float(multiclass_recall(*args, average=average)),
            "f1": float(multiclass_f1_score(*args, average=average)),
            "support": int(support.sum()),
        }
    report["accuracy"] = float(multiclass_accuracy(*args, average="micro"))
    return report


REPORT_COLUMNS = ("class", "precision", "recall", "f1", "support")


def report_rows(report: dict[str, Any]) -> list[tuple[str, ...]]:
    """The report's rows as formatted cells (one per REPORT_COLUMNS), for the markdown file."""
    return [
        (name, f"{row['precision']:.4f}", f"{row['recall']:.4f}", f"{row['f1']:.4f}", str(row["support"]))
        for name, row in report.items()
        if name != "accuracy"
    ]


def report_markdown(report: dict[str, Any]) -> str:
    lines = ["| " + " | ".join(REPORT_COLUMNS) + " |", "|---|---:|---:|---:|---:|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in report_rows(report)]
    lines.append(f"\n**accuracy: {100 * report['accuracy']:.2f}%**")
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], output_dir: Path) -> tuple[Path, Path]:
    json_path = output_dir / "classification_report.json"
    md_path = output_dir / "classification_report.md"
    write_text(json_path, json.dumps(report, indent=2) + "\n")
    write_text(md_path, "# Classification report (official MNIST test set)\n\n" + report_markdown(report))
    return json_path, md_path
