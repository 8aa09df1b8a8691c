"""The console tells the story of a run and nothing else."""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path

from conftest import assert_ok, run_cli

from mnist_classifier.console.formatter import LIGHTNING_LOGGERS, ConsoleFormatter, lightning_logs_through_the_run
from mnist_classifier.console.noise import LibraryNotes, quiet_library_warnings

NOISE = (
    "GPU available",
    "TPU available",
    "💡 Tip",
    "litlogger",
    "LeafSpec",
    "is not supported by the model summary",
    "Total FLOPs",
    "Modules in train mode",
    "matplotlib.category",
    "Using categorical units",
    "Test metric",  # Lightning's own test table
    "DataLoader 0",  # sanity, validation and test bars
    "Sanity Checking",
    "Loading `train_dataloader`",
    "Restoring states",
    "`Trainer.fit` stopped",
    "Per-class results",
    "does not have many workers",
)


def test_default_runs_print_their_story_and_no_library_noise(synthetic_data_dir: Path, tmp_path: Path) -> None:
    """Default callbacks, logger and reports, as `python train.py` has them (two short epochs), then eval.py.
    New interpreters (`fresh`): what the libraries print while they are imported counts too."""
    result = run_cli(
        "train.py", f"data.data_dir={synthetic_data_dir}", "data.val_size=100", "trainer.max_epochs=2",
        "trainer.limit_train_batches=5", f"hydra.run.dir={tmp_path}", fresh=True,
    )  # fmt: skip
    assert_ok(result)
    console = result.stdout + result.stderr
    for noise in NOISE:
        assert noise not in console, f"library noise on the console: {noise!r}"
    assert result.stdout.startswith(f"Run dir: {tmp_path}\n")
    assert "ConvNet: " in console and "parameters" in console and "features.0" in console  # the summary
    assert len(re.findall(r"^epoch \d+  train/loss [\d.]+  val/loss [\d.]+  val/acc [\d.]+%", result.stdout, re.M)) == 2
    assert result.stdout.count("Results") == 1, "exactly one results table"
    assert "test accuracy" in result.stdout and "test loss" in result.stdout and "time" in result.stdout
    assert "Warning" not in console and "Traceback" not in console
    log = (tmp_path / "train.log").read_text()  # the same story, once each, in the run's log file
    for line in (f"Run dir: {tmp_path}", "Fast path: ", "ConvNet: ", "features.0", "test accuracy", " checkpoint  "):
        assert log.count(line) == 1, f"train.log should hold {line!r} once:\n{log}"
    assert len(re.findall(r"\] - epoch \d+  train/loss [\d.]+  val/loss", log)) == 2

    checkpoint = next((tmp_path / "checkpoints").glob("epoch_*.ckpt"))
    evaluation = run_cli("eval.py", f"ckpt_path={checkpoint}", f"data.data_dir={synthetic_data_dir}",
                         f"hydra.run.dir={tmp_path / 'eval'}", fresh=True)  # fmt: skip
    assert_ok(evaluation)
    console = evaluation.stdout + evaluation.stderr
    for noise in NOISE:
        assert noise not in console, f"library noise on eval.py's console: {noise!r}"
    assert evaluation.stdout.count("Results") == 1 and "test accuracy" in evaluation.stdout
    assert "Warning" not in console and "Traceback" not in console


def test_only_named_library_warnings_are_filtered() -> None:
    """A warning that matters (our own, or one nobody has looked at) still shows."""
    quiet_library_warnings()
    with warnings.catch_warnings(record=True) as caught:
        warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated", FutureWarning, stacklevel=1)
        warnings.warn("something new in a library", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == [
        "`isinstance(treespec, LeafSpec)` is deprecated",  # raised from this module, not lightning: shown
        "something new in a library",
    ]


def test_console_format_prefixes_only_warnings_and_errors() -> None:
    formatter = ConsoleFormatter("%(message)s")

    def record(level: int) -> logging.LogRecord:
        return logging.LogRecord("x", level, __file__, 1, "the message", None, None)

    assert formatter.format(record(logging.INFO)) == "the message"
    assert formatter.format(record(logging.WARNING)) == "Warning: the message"
    assert formatter.format(record(logging.ERROR)) == "Error: the message"


def test_lightning_log_messages_reach_the_runs_handlers_once() -> None:
    """Lightning adds console handlers of its own when imported, which ones depending on whether logging was set
    up by then: a warning showed twice (`WARNING: ...` and `Warning: ...`) or skipped train.log."""
    import lightning.pytorch  # noqa: F401  # its handlers, as it adds them

    kept: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            kept.append(record.getMessage())

    root, keep = logging.getLogger(), Keep()
    root.addHandler(keep)
    try:
        lightning_logs_through_the_run()
        logging.getLogger("lightning.pytorch.callbacks.some_callback").warning("a note")
        logging.getLogger("lightning.fabric.some_part").warning("another")
    finally:
        root.removeHandler(keep)
    assert kept == ["a note", "another"], "each once, through the run's handlers"
    for name in LIGHTNING_LOGGERS:
        assert logging.getLogger(name).handlers == [] and logging.getLogger(name).propagate


def test_library_notes_are_dropped_by_logger_and_text() -> None:
    notes = LibraryNotes()

    def record(name: str, message: str) -> logging.LogRecord:
        return logging.LogRecord(name, logging.WARNING, __file__, 1, message, None, None)

    assert not notes.filter(
        record("lightning.pytorch.loggers.mlflow", "Experiment with name train not found. Creating it.")
    )
    assert notes.filter(record("lightning.pytorch.loggers.mlflow", "Discarding metric with string value a=b."))
    assert notes.filter(record("elsewhere", "Experiment with name train not found. Creating it."))
