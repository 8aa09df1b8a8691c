"""Networks, the LightningModule's losses/optimizers, config validation, and a fast_dev_run of each."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from conftest import quiet_trainer
from hydra.utils import instantiate
from test_configs import compose_train, options

from mnist_classifier.models import ConvNet, DenseNet, MNISTClassifier
from mnist_classifier.models.run_history import RunHistory
from mnist_classifier.runtime.runner import user_error_message


def build(model: str, *overrides: str) -> MNISTClassifier:
    return instantiate(compose_train(f"model={model}", *overrides).model)


@pytest.mark.parametrize(
    "net", [DenseNet(), ConvNet(), ConvNet(pool_first=True), ConvNet(padding="same", batch_norm=False, hidden_size=0)]
)
def test_networks_map_a_batch_to_ten_scores(net: torch.nn.Module) -> None:
    assert net(torch.randn(4, 1, 28, 28)).shape == (4, 10)


def test_pool_first_pools_before_normalising() -> None:
    """Same weights, same layer names for conv and linear layers; pooling moves ahead of BatchNorm/ReLU."""
    kinds = [type(layer).__name__ for layer in ConvNet(pool_first=True).features[:4]]
    assert kinds == ["Conv2d", "MaxPool2d", "BatchNorm2d", "ReLU"]
    assert [type(layer).__name__ for layer in ConvNet().features[:4]] == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"]


def test_dense_outputs_log_probabilities() -> None:
    out = DenseNet(hidden_sizes=[32]).eval()(torch.randn(3, 1, 28, 28))
    torch.testing.assert_close(out.exp().sum(1), torch.ones(3))


@pytest.mark.parametrize(
    ("model", "loss", "optimizer"),
    [("dense", torch.nn.NLLLoss, torch.optim.SGD), ("cnn", torch.nn.CrossEntropyLoss, torch.optim.Adam)],
)
def test_loss_and_optimizer_come_from_the_recipe(model: str, loss: type, optimizer: type) -> None:
    module = build(model, "model.scheduler=null")
    assert isinstance(module.criterion, loss)
    assert isinstance(module.configure_optimizers(), optimizer)
    images, labels = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    value, scores, _ = module._step((images, labels))
    assert scores.shape == (8, 10) and value.ndim == 0 and value.item() > 0


def test_hyperparameters_are_plain_values() -> None:
    module = build("cnn")
    for key in ("net", "loss", "optimizer", "scheduler"):
        assert type(module.hparams[key]) is dict, key
    rebuilt = MNISTClassifier(**module.hparams)
    assert type(rebuilt.net) is ConvNet


def test_compiled_model_keeps_the_plain_state_dict() -> None:
    """A checkpoint of a `model.compile=true` run loads into an uncompiled model and back."""
    plain, compiled = build("dense"), build("dense", "model.compile=true")
    assert compiled._forward_net is not compiled.net
    assert list(compiled.state_dict()) == list(plain.state_dict())
    assert all(key.startswith(("net.", "val_acc_best.")) for key in plain.state_dict())


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model=cnn", "model.optimizer.lr=0"], "model.optimizer"),
        (["model=dense", "model.optimizer.lr=-0.1"], "model.optimizer"),
        (["model=dense", "model.optimizer.momentum=-1"], "model.optimizer"),
        (["model=dense", "model.net.dropout=1.0"], r"model\.net\.dropout"),
        (["model=dense", "model.net.hidden_sizes=[512,0]"], r"model\.net\.hidden_sizes"),
        (["model=cnn", "model.net.channels=[]"], r"model\.net\.channels"),
        (["model=cnn", "model.net.kernel_sizes=[5]"], "one entry per conv block"),
        (["model=cnn", "model.net.padding=same", "model.net.kernel_sizes=[4,3]"], "odd"),
        (["model=cnn", "model.net.pool_sizes=[8,8]"], "to nothing"),
        (["model=cnn", "model.scheduler_interval=batch"], "scheduler_interval"),
        (["model=cnn", "~model.optimizer._partial_"], "_partial_"),
    ],
)
def test_invalid_values_fail_before_training(overrides: list[str], message: str) -> None:
    cfg = compose_train(*overrides)
    with pytest.raises(Exception) as err:
        instantiate(cfg.model)
    shown = user_error_message(err.value)  # what train.py prints
    assert shown is not None and re.search(message, shown), shown
    assert "Error in call to target" not in shown, "our message, not Hydra's wrapper"


FAST_DEV_RUNS: list[tuple[str, list[str]]] = [(name, []) for name in options("model")]
FAST_DEV_RUNS.append(("cnn", ["data.on_device=true"]))


@pytest.mark.parametrize(("model", "extra"), FAST_DEV_RUNS)
def test_fast_dev_run(model: str, extra: list[str], synthetic_data_dir: Path, tmp_path: Path) -> None:
    # batches of 64: the dense recipe's 512 is more than the 500 synthetic training images (refused up front)
    cfg = compose_train(f"model={model}", f"data.data_dir={synthetic_data_dir}", "data.val_size=100",
                        "data.batch_size=64", *extra)  # fmt: skip
    module = instantiate(cfg.model)
    history = RunHistory()
    trainer = quiet_trainer(tmp_path, fast_dev_run=True, callbacks=[history])
    trainer.fit(module, datamodule=instantiate(cfg.data))
    assert {"train/loss", "train/acc", "val/loss", "val/acc", "val/acc_best"} <= set(trainer.callback_metrics)
    trainer.test(module, datamodule=instantiate(cfg.data))
    assert {"test/loss", "test/acc"} <= set(trainer.callback_metrics)
    assert len(history.epochs) == 1 and history.epochs[0].val_acc is not None


def test_one_cycle_schedule_survives_a_handful_of_steps(synthetic_data_dir: Path, tmp_path: Path) -> None:
    """OneCycleLR breaks on ~4 total steps (pct_start * steps == 1); debug-sized runs must still work."""
    cfg = compose_train(
        "model=dense",
        f"data.data_dir={synthetic_data_dir}",
        "data.val_size=100",
        "data.batch_size=256",
        "model.net.hidden_sizes=[16]",
    )
    module = instantiate(cfg.model)
    trainer = quiet_trainer(
        tmp_path, max_epochs=2, limit_train_batches=2, limit_val_batches=1, enable_checkpointing=False
    )
    trainer.fit(module, datamodule=instantiate(cfg.data))
    assert trainer.global_step == 4
