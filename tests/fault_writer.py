"""Writes each of the project's files under a fault: `python fault_writer.py DIR FAULT` prints, as JSON,
how the writing of each kind of file ended (its exit code as the entries give it; minus the signal for a
killed one). FAULT is `full` (a file-size limit: writes fail with EFBIG, as on a full disk), `killed`
(SIGKILL after the content is written, before it is in place) or `none` (a read-only DIR is the test's
doing). Each kind is written in a child forked after the imports, so the faults stay apart and cheap."""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

import torch

from mnist_classifier.checkpoint.checkpoint_io import SafeCheckpointIO
from mnist_classifier.models.dense_net import DenseNet
from mnist_classifier.models.probability_model import ProbabilityModel
from mnist_classifier.reports.classification_report import classification_report, write_report
from mnist_classifier.reports.predictions import Prediction, write_predictions
from mnist_classifier.runtime import entry
from mnist_classifier.runtime.metrics_file import write_metrics
from mnist_classifier.tasks.export import export_pt2

SIZE_LIMIT = 1024  # bytes a file may have under the `full` fault; every file below is larger
PREDICTIONS = [Prediction(f"{i}.png", 1, 0.5, "ok", [0.1] * 10) for i in range(50)]
WRITERS: dict[str, Callable[[Path], object]] = {
    "checkpoint": lambda out: SafeCheckpointIO().save_checkpoint({"w": torch.ones(1000)}, out / "last.ckpt"),
    "metrics": lambda out: write_metrics(out, {"status": "ok", "history": list(range(1000))}),
    "report": lambda out: write_report(classification_report(torch.arange(100) % 10, torch.arange(100) % 10), out),
    "predictions": lambda out: write_predictions(PREDICTIONS, out),
    "export": lambda out: export_pt2(ProbabilityModel(DenseNet(hidden_sizes=[8])), out / "model.pt2", {}),
}
FILES = {"checkpoint": "last.ckpt", "metrics": "metrics.json", "report": "classification_report.json",
         "predictions": "predictions.csv", "export": "model.pt2"}  # fmt: skip


def _kill_before_rename(fd: object) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def write_in_child(kind: str, out: Path, fault: str) -> int:
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            if fault == "full":
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
                resource.setrlimit(resource.RLIMIT_FSIZE, (SIZE_LIMIT, resource.RLIM_INFINITY))
            if fault == "killed":
                os.fsync = _kill_before_rename
            entry.run(lambda: WRITERS[kind](out))
        except SystemExit as stop:
            code = int(stop.code or 0)
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stderr.flush()
        os._exit(code)
    status = os.waitpid(pid, 0)[1]
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


if __name__ == "__main__":
    out, fault = Path(sys.argv[1]), sys.argv[2]
    print(json.dumps({kind: write_in_child(kind, out, fault) for kind in WRITERS}))
