"""Ensembles, `ckpt_path=[a,b,c]`: the mean of the members' probabilities in eval, export, predict and serve;
one member is the single model; a member that cannot be used is named (exit 2)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from conftest import SYNTHETIC_TEST, assert_ok, quick_checkpoint, quiet_trainer, run_cli, synthetic_digits
from drawn_digits import write_drawn_digits
from hydra.utils import instantiate
from omegaconf import ListConfig, OmegaConf
from test_configs import compose_train
from test_trust import craft

from mnist_classifier.checkpoint.loader import load_checkpoint
from mnist_classifier.data.in_memory import normalize_pixels
from mnist_classifier.data.user_images import UserImages, find_inputs
from mnist_classifier.errors import CheckpointError, ConfigValueError
from mnist_classifier.models.ensemble import AveragedNet, ensemble_paths
from mnist_classifier.models.ensemble_classifier import load_ensemble
from mnist_classifier.models.from_checkpoint import build_model
from mnist_classifier.models.onnx_model import OnnxModel
from mnist_classifier.predictor import CheckpointPredictor, load_predictor
from mnist_classifier.runtime.metrics_file import read_metrics
from mnist_classifier.tasks.evaluate import evaluate
from mnist_classifier.tasks.export import export


@pytest.fixture(scope="module")
def members(synthetic_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two different networks, as an ensemble may mix them: a CNN (logits) and a dense net (log-probabilities)."""
    folder = tmp_path_factory.mktemp("members")
    return [
        quick_checkpoint(folder / "cnn.ckpt", synthetic_data_dir, "model=cnn", "model.net.channels=[4,4]"),
        quick_checkpoint(folder / "dense.ckpt", synthetic_data_dir, "model=dense"),
    ]


def as_list(paths: list[Path]) -> str:
    """`[a,b]` as a Hydra override value."""
    return "[" + ",".join(map(str, paths)) + "]"


def synthetic_test_set() -> tuple[np.ndarray, np.ndarray]:
    """The synthetic test set (conftest.py, seed 1) as predictors take it, and its labels."""
    images, labels = synthetic_digits(SYNTHETIC_TEST, 1)
    return (images.astype(np.float32) / 255.0)[:, None], labels


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def mean_probabilities(paths: list[Path], pixels: np.ndarray) -> np.ndarray:
    """The reference: each member on its own, as one checkpoint is run, then the plain mean."""
    return np.mean([CheckpointPredictor(path).probabilities(pixels) for path in paths], axis=0)


def test_an_ensemble_of_one_is_the_single_model(members: list[Path], synthetic_data_dir: Path, tmp_path: Path) -> None:
    pixels, _ = synthetic_test_set()
    single = build_model(load_checkpoint(members[0]), members[0])
    ensemble = load_ensemble([str(members[0])])
    assert ensemble.channels_last == single.channels_last  # the member keeps its fast path
    one = load_predictor(ListConfig([str(members[0])]), None, "predict.py").probabilities(pixels)
    np.testing.assert_allclose(one, CheckpointPredictor(members[0]).probabilities(pixels), atol=1e-6)
    results = []
    for model in (single, ensemble):
        cfg = compose_train(f"data.data_dir={synthetic_data_dir}", "data.val_size=100")
        (result,) = quiet_trainer(tmp_path).test(model, datamodule=instantiate(cfg.data), verbose=False)
        results.append(result)
    assert results[0]["test/acc"] == results[1]["test/acc"]
    assert results[0]["test/loss"] == pytest.approx(results[1]["test/loss"], abs=1e-5)


def test_the_ensemble_is_the_mean_of_its_members_probabilities(members: list[Path]) -> None:
    pixels, _ = synthetic_test_set()
    expected = mean_probabilities(members, pixels)
    cnn, dense = (CheckpointPredictor(path).probabilities(pixels) for path in members)
    assert not np.allclose(cnn, dense, atol=1e-3)  # so the mean is not either member's
    cfg = OmegaConf.merge(OmegaConf.load(Path(__file__).parents[1] / "configs" / "serve.yaml"),
                          {"ckpt_path": [str(path) for path in members]})  # fmt: skip
    served = load_predictor(cfg.ckpt_path, cfg.model_path, "serve.py")  # what serve.py loads
    assert isinstance(served, CheckpointPredictor) and isinstance(served.model.net, AveragedNet)  # one network
    np.testing.assert_allclose(served.probabilities(pixels), expected, atol=1e-6)
    ensemble = load_ensemble([str(path) for path in members])
    with torch.no_grad():
        log_mean = ensemble(normalize_pixels(torch.from_numpy(pixels)))
    np.testing.assert_allclose(log_mean.exp().numpy(), expected, atol=1e-6)


def test_eval_reports_the_ensemble_and_its_members(
    members: list[Path], synthetic_data_dir: Path, tmp_path: Path
) -> None:
    # fp32 like the reference (predictors run fp32): on a bf16 CPU eval.py's automatic precision is
    # bf16-mixed, and these barely trained members have near ties that bf16 tips the other way
    result = run_cli("eval.py", f"ckpt_path={as_list(members)}", f"data.data_dir={synthetic_data_dir}",
                     f"hydra.run.dir={tmp_path}", "trainer.precision=32-true")  # fmt: skip
    assert_ok(result)
    metrics = read_metrics(tmp_path)
    pixels, labels = synthetic_test_set()
    expected = mean_probabilities(members, pixels)
    assert metrics["test/acc"] == pytest.approx(float((expected.argmax(1) == labels).mean()), abs=1e-6)
    nll = -np.log(expected[np.arange(len(labels)), labels]).mean()
    assert metrics["test/loss"] == pytest.approx(nll, abs=1e-4)
    assert metrics["ckpt_path"] == [str(path) for path in members]
    assert [row["network"].rsplit(".", 1)[-1] for row in metrics["ensemble"]] == ["ConvNet", "DenseNet"]
    for row, path in zip(metrics["ensemble"], members, strict=True):
        alone = CheckpointPredictor(path).probabilities(pixels)
        assert row["test/acc"] == pytest.approx(float((alone.argmax(1) == labels).mean()), abs=1e-6)
    assert "Ensemble of 2 checkpoints, the mean of their probabilities" in result.stdout
    assert f"  2. {members[1]} (DenseNet)" in result.stdout and "ensemble of" in result.stdout  # results table
    assert "report_errors" not in metrics and (tmp_path / "plots" / "confusion_matrix.png").is_file()


def test_export_writes_one_graph_that_matches_the_torch_ensemble(
    members: list[Path], synthetic_data_dir: Path, tmp_path: Path
) -> None:
    assert_ok(run_cli("export.py", f"ckpt_path={as_list(members)}", f"data.data_dir={synthetic_data_dir}",
                      f"hydra.run.dir={tmp_path}"))  # fmt: skip
    check = json.loads((tmp_path / "export_check.json").read_text())
    assert check["passed"] and check["max_abs_prob_diff"] <= 1e-4 and check["test_images"] == SYNTHETIC_TEST
    hashes = [sha256(path) for path in members]
    assert [m["checkpoint"] for m in check["members"]] == [str(path) for path in members]
    assert [m["checkpoint_sha256"] for m in check["members"]] == hashes
    model = onnx.load(str(tmp_path / "model.onnx"))
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    assert [m["checkpoint_sha256"] for m in json.loads(metadata["members"])] == hashes
    pixels, _ = synthetic_test_set()
    onnx_model = OnnxModel(tmp_path / "model.onnx")
    np.testing.assert_allclose(onnx_model.probabilities(pixels), mean_probabilities(members, pixels), atol=1e-4)
    probabilities, logits = onnx_model.session.run(None, {"pixels": pixels})
    np.testing.assert_allclose(np.exp(logits), probabilities, atol=1e-5)  # logits: log of the averaged probabilities


def test_predict_averages_the_members_on_pictures_decoded_once(members: list[Path], tmp_path: Path) -> None:
    write_drawn_digits(tmp_path / "drawn")
    assert_ok(run_cli("predict.py", f"ckpt_path={as_list(members)}", f"inputs={tmp_path / 'drawn'}",
                      f"hydra.run.dir={tmp_path / 'run'}"))  # fmt: skip
    rows = json.loads((tmp_path / "run" / "predictions.json").read_text())
    dataset = UserImages(find_inputs(str(tmp_path / "drawn")))
    pixels = np.stack([dataset[i][0].numpy() for i in range(len(dataset))])
    expected = mean_probabilities(members, pixels)
    got = np.array([row["probabilities"] for row in rows])
    assert [row["file"] for row in rows] == [str(item.path) for item in dataset.files]
    np.testing.assert_allclose(got, expected, atol=2e-6)  # predictions.json holds 6 decimals
    assert read_metrics(tmp_path / "run")["model"] == [str(path) for path in members]


def test_a_member_that_cannot_be_used_is_named_with_exit_2(members: list[Path], tmp_path: Path) -> None:
    missing = tmp_path / "missing.ckpt"
    result = run_cli("eval.py", f"ckpt_path={as_list([members[0], missing])}", f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"Ensemble member 2 of 2: ckpt_path={missing}: no such file" in result.stderr
    assert "Traceback" not in result.stderr


def test_untrusted_and_unbuildable_members_are_refused(members: list[Path], tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    crafted = craft(members[0], "net target", tmp_path / "crafted.ckpt", marker)
    unbuildable = tmp_path / "unbuildable.ckpt"
    checkpoint = torch.load(members[1], weights_only=True)
    checkpoint["hyper_parameters"]["scheduler_interval"] = "century"  # passes the loader, fails the rebuild
    torch.save(checkpoint, unbuildable)
    for bad, reason in ((crafted, "is refused"), (unbuildable, "cannot be rebuilt")):
        paths, named = [str(members[0]), str(bad)], re.escape(f"Ensemble member 2 of 2: ckpt_path={bad}")
        with pytest.raises(CheckpointError, match=f"{named}.*{reason}"):
            load_ensemble(paths)
        if bad is crafted:
            with pytest.raises(CheckpointError, match=f"{named}.*{reason}"):
                load_predictor(ListConfig(paths), None, "serve.py")
        else:  # predict and serve run the networks alone: a training setting they never read is no obstacle
            load_predictor(ListConfig(paths), None, "serve.py")
    assert not marker.exists()


@pytest.mark.parametrize("config", ["eval", "export"])
def test_an_empty_or_malformed_list_is_refused(config: str) -> None:
    task = {"eval": evaluate, "export": export}[config]
    with pytest.raises((CheckpointError, ConfigValueError), match=f"{config}.py needs a checkpoint"):
        task(compose_train("ckpt_path=[]", config=config))
    with pytest.raises(ConfigValueError, match=r"must be a checkpoint's path, .* or a list of them"):
        task(compose_train("ckpt_path=[1,2]", config=config))


def test_predict_and_serve_refuse_an_empty_list() -> None:
    for script in ("predict.py", "serve.py"):
        with pytest.raises(ConfigValueError, match=f"{script} needs exactly one model"):
            load_predictor(ListConfig([]), None, script)
    with pytest.raises(ConfigValueError, match="list of them"):
        ensemble_paths([])


def test_an_ensemble_is_not_exported_as_one_network_s_weights(members: list[Path]) -> None:
    cfg = compose_train(f"ckpt_path={as_list(members)}", "format=safetensors", config="export")
    with pytest.raises(ConfigValueError, match="format=safetensors writes one network's weights"):
        export(cfg)
