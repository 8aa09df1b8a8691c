"""Networks, the LightningModule's losses/optimizers, config validation, and a fast_dev_run of each."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import quiet_trainer
from hydra.utils import instantiate
from test_configs import compose_train, options

from mnist_classifier.errors import ArgumentError, UserFacingError
from mnist_classifier.models import ConvNet, DenseNet, MNISTClassifier
from mnist_classifier.models.run_history import RunHistory
from mnist_classifier.runtime.error_messages import user_error_message


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


def plain_argument_error(build: Callable[[], Any], argument: str) -> ArgumentError:
    """The error a plain object (network, augmentation, datamodule) raises for a bad argument: a ValueError
    whose message starts with the argument's name and holds no config path; not a user-facing one."""
    with pytest.raises(ArgumentError) as caught:
        build()
    err = caught.value
    assert isinstance(err, ValueError) and not isinstance(err, UserFacingError)
    assert str(err).startswith(argument), str(err)
    assert "model." not in str(err) and "data." not in str(err), str(err)
    return err


@pytest.mark.parametrize(
    ("net", "kwargs", "argument"),
    [
        (DenseNet, {"dropout": 1.0}, "dropout"),
        (DenseNet, {"hidden_sizes": [512, 0]}, "hidden_sizes"),
        (ConvNet, {"channels": []}, "channels"),
        (ConvNet, {"channels": [0, 8]}, "channels"),
        (ConvNet, {"kernel_sizes": [5]}, "channels"),
        (ConvNet, {"pool_first": "yes"}, "pool_first"),
        (ConvNet, {"padding": "full"}, "padding"),
        (ConvNet, {"padding": "same", "kernel_sizes": [4, 3]}, "kernel_sizes"),
        (ConvNet, {"hidden_size": -1}, "hidden_size"),
        (ConvNet, {"pool_sizes": [8, 8]}, "pool_sizes"),
    ],
)
def test_networks_name_their_argument_not_a_config_key(net: type, kwargs: dict[str, Any], argument: str) -> None:
    assert plain_argument_error(lambda: net(**kwargs), argument).argument == argument


def test_the_classifier_names_its_nets_arguments() -> None:
    """The classifier builds its net from the `net` config: a bad value there is one of `net.`."""
    cfg = compose_train("model=cnn", "model.net.channels=[0,8]").model
    with pytest.raises(ArgumentError, match=r"^net\.channels must be positive integers, got \[0, 8\]\.$"):
        MNISTClassifier(net=cfg.net, loss=cfg.loss, optimizer=cfg.optimizer)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model=cnn", "model.optimizer.lr=0"], "model.optimizer"),
        (["model=dense", "model.optimizer.lr=-0.1"], "model.optimizer"),
        (["model=dense", "model.optimizer.momentum=-1"], "model.optimizer"),
        (["model=dense", "model.net.dropout=1.0"], r"^model\.net\.dropout must be in \[0, 1\), got 1\.0\.$"),
        (["model=dense", "model.net.hidden_sizes=[512,0]"], r"^model\.net\.hidden_sizes must be positive integers"),
        (["model=cnn", "model.net.channels=[]"], r"^model\.net\.channels must list at least one value"),
        (["model=cnn", "model.net.kernel_sizes=[5]"], r"^model\.net\.channels, kernel_sizes and pool_sizes need one"),
        (["model=cnn", "model.net.padding=same", "model.net.kernel_sizes=[4,3]"], r"^model\.net\.kernel_sizes .* odd"),
        (["model=cnn", "model.net.pool_sizes=[8,8]"], r"^model\.net\.pool_sizes \[8, 8\] shrink .* to nothing"),
        (["model=cnn", "model.net.hidden_size=-1"], r"^model\.net\.hidden_size must be an integer >= 0"),
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
