"""export.py: ONNX and TorchScript files that reproduce the checkpoint, checked by export.py itself;
predict.py through onnxruntime; ONNX files are untrusted input."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from conftest import assert_ok, quick_checkpoint, run_cli
from drawn_digits import write_drawn_digits
from test_predict import read_rows

from mnist_classifier.tasks.metrics_file import read_metrics


@pytest.fixture(scope="module")
def checkpoint(synthetic_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return quick_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.ckpt", synthetic_data_dir, "model=cnn")


@pytest.fixture(scope="module")
def onnx_run(checkpoint: Path, synthetic_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("export")
    assert_ok(run_cli("export.py", f"ckpt_path={checkpoint}", f"data.data_dir={synthetic_data_dir}",
                      f"hydra.run.dir={run_dir}"))  # fmt: skip
    return run_dir


def test_onnx_export_is_checked_and_carries_its_metadata(onnx_run: Path, checkpoint: Path) -> None:
    check = json.loads((onnx_run / "export_check.json").read_text())
    assert check["passed"] and check["format"] == "onnx" and check["test_images"] == 200  # the synthetic test set
    assert abs(check["exported_test_acc"] - check["checkpoint_test_acc"]) <= 0.0001
    assert check["max_abs_prob_diff"] <= 1e-4
    model = onnx.load(str(onnx_run / "model.onnx"))
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    assert metadata["checkpoint_sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert json.loads(metadata["class_labels"]) == [str(d) for d in range(10)]
    assert float(metadata["test_accuracy"]) == pytest.approx(check["checkpoint_test_acc"])
    assert "[0, 1]" in metadata["input"] and "white digit on black" in metadata["input"]
    session = ort.InferenceSession(str(onnx_run / "model.onnx"))
    for batch in (1, 17):  # a dynamic batch axis
        probabilities, logits = session.run(None, {"pixels": np.random.rand(batch, 1, 28, 28).astype(np.float32)})
        assert probabilities.shape == logits.shape == (batch, 10)
        np.testing.assert_allclose(probabilities.sum(1), 1, atol=1e-5)


def test_torchscript_export_to_a_chosen_path(checkpoint: Path, synthetic_data_dir: Path, tmp_path: Path) -> None:
    output = tmp_path / "ship" / "digits.pt"
    result = run_cli("export.py", f"ckpt_path={checkpoint}", "format=torchscript", f"output={output}",
                     f"data.data_dir={synthetic_data_dir}", f"hydra.run.dir={tmp_path / 'run'}")  # fmt: skip
    assert_ok(result)
    assert json.loads((tmp_path / "run" / "export_check.json").read_text())["passed"]
    extra = {"metadata.json": ""}
    scripted = torch.jit.load(str(output), _extra_files=extra)
    assert json.loads(extra["metadata.json"])["class_labels"]
    probabilities, _ = scripted(torch.rand(3, 1, 28, 28))
    assert probabilities.shape == (3, 10)
    assert "TorchScript is deprecated" in result.stderr and "FutureWarning" not in result.stderr


def test_predict_through_onnxruntime_matches_the_checkpoint(onnx_run: Path, checkpoint: Path, tmp_path: Path) -> None:
    pictures = [path for path, _ in write_drawn_digits(tmp_path / "drawn")]
    runs = {}
    for name, model in (("ckpt", f"ckpt_path={checkpoint}"), ("onnx", f"model_path={onnx_run / 'model.onnx'}")):
        assert_ok(run_cli("predict.py", model, f"inputs={tmp_path / 'drawn'}", f"hydra.run.dir={tmp_path / name}"))
        runs[name] = read_rows(tmp_path / name)
    assert len(runs["ckpt"]) == len(runs["onnx"]) == len(pictures)
    for with_ckpt, with_onnx in zip(runs["ckpt"], runs["onnx"], strict=True):
        assert with_ckpt["prediction"] == with_onnx["prediction"]
        assert max(abs(float(with_ckpt[f"p{c}"]) - float(with_onnx[f"p{c}"])) for c in range(10)) <= 1e-4
    assert read_metrics(tmp_path / "onnx")["model"].endswith("model.onnx")


def foreign_onnx(path: Path) -> Path:
    """A valid ONNX model that is not ours: a single Identity operator."""
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["x"], ["y"])],
        "identity",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [None, 3])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [None, 3])],
    )
    onnx.save(onnx.helper.make_model(graph), str(path))
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda d, run: (d / "junk.onnx").write_bytes(b"\x00garbage" * 50) and d / "junk.onnx",
            "cannot be loaded by onnxruntime",
        ),
        (
            lambda d, run: (d / "cut.onnx").write_bytes((run / "model.onnx").read_bytes()[:500]) and d / "cut.onnx",
            "cannot be loaded by onnxruntime",
        ),
        (lambda d, run: foreign_onnx(d / "foreign.onnx"), "is an ONNX model, but not one export.py writes"),
        (lambda d, run: (d / "model.pt").write_bytes(b"PK") and d / "model.pt", "is a TorchScript file"),
        (lambda d, run: d / "absent.onnx", "no such file"),
    ],
    ids=["garbage", "truncated", "foreign graph", "torchscript", "missing"],
)
def test_untrusted_model_files_are_refused(
    make: Callable[[Path, Path], Path], message: str, onnx_run: Path, tmp_path: Path
) -> None:
    write_drawn_digits(tmp_path / "drawn")
    model_path = make(tmp_path, onnx_run)
    result = run_cli("predict.py", f"model_path={model_path}", f"inputs={tmp_path / 'drawn'}",
                     f"hydra.run.dir={tmp_path / 'run'}")  # fmt: skip
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in result.stderr and "Traceback" not in result.stderr


def test_export_refuses_what_it_cannot_export(checkpoint: Path, tmp_path: Path) -> None:
    missing = run_cli("export.py", f"hydra.run.dir={tmp_path / 'a'}")
    assert missing.returncode == 2 and "export.py needs a checkpoint" in missing.stderr
    bad_format = run_cli("export.py", f"ckpt_path={checkpoint}", "format=tflite", f"hydra.run.dir={tmp_path / 'b'}")
    assert bad_format.returncode == 2 and "format must be one of onnx, torchscript" in bad_format.stderr
