"""Every config group option and every experiment composes, and its objects can be built."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import REPO
from hydra import compose, initialize_config_dir
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from mnist_classifier.errors import ConfigValueError
from mnist_classifier.runtime.run_checks import check_train_config
from mnist_classifier.utils.instantiate import instantiate_group

CONFIGS = REPO / "configs"


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIGS / group).glob("*.yaml"))


def compose_train(*overrides: str, config: str = "train") -> DictConfig:
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name=config, overrides=list(overrides), return_hydra_config=True)


def test_every_group_has_options() -> None:
    for group in (
        "data",
        "model",
        "trainer",
        "callbacks",
        "logger",
        "paths",
        "hydra",
        "experiment",
        "debug",
        "reports",
        "hparams_search",
    ):
        assert options(group), group
    assert {"default", "cpu", "gpu", "ddp", "ddp_sim"} <= set(options("trainer"))
    assert {"tensorboard", "csv", "none"} <= set(options("logger"))
    assert {"fdr", "limit"} <= set(options("debug"))
    assert {"cnn", "dense"} <= set(options("model"))


@pytest.mark.parametrize(
    "group",
    ["data", "model", "trainer", "callbacks", "logger", "paths", "debug", "reports", "experiment", "hparams_search"],
)
def test_each_option_composes(group: str, tmp_path: Path) -> None:
    for option in options(group):
        cfg = compose_train(f"{group}={option}", f"paths.output_dir={tmp_path}")
        OmegaConf.to_container(cfg.model, resolve=True)
        OmegaConf.to_container(cfg.trainer, resolve=True)
        assert cfg.data._target_.endswith("MNISTDataModule")


@pytest.mark.parametrize("experiment", options("experiment"))
def test_experiments_build_model_and_data(experiment: str) -> None:
    cfg = compose_train(f"experiment={experiment}")
    model = instantiate(cfg.model)
    datamodule = instantiate(cfg.data)
    assert model.hparams.net["_target_"] == cfg.model.net._target_
    assert datamodule.hparams.batch_size == cfg.data.batch_size


@pytest.mark.parametrize("option", ["default", "cpu", "ddp_sim"])
def test_cpu_trainers_instantiate(option: str, tmp_path: Path) -> None:
    cfg = compose_train(f"trainer={option}", f"paths.output_dir={tmp_path}")
    trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
    assert trainer.max_epochs == cfg.trainer.max_epochs


@pytest.mark.parametrize("option", ["default", "none"])
def test_callback_and_logger_groups_build(option: str, tmp_path: Path) -> None:
    cfg = compose_train(f"callbacks={option}", f"paths.output_dir={tmp_path}")
    callbacks = instantiate_group(cfg.get("callbacks"), "callbacks")
    assert (len(callbacks) > 0) == (option == "default")
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=False)
    assert (trainer.checkpoint_callback is not None) == (option == "default")
    assert (trainer.progress_bar_callback is not None) == (option == "default")
    expected = {"none": 0, "many_loggers": 4}
    for logger in options("logger"):
        cfg = compose_train(f"logger={logger}", f"paths.output_dir={tmp_path}", f"paths.log_dir={tmp_path}")
        assert len(instantiate_group(cfg.get("logger"), "logger")) == expected.get(logger, 1), logger


def test_model_recipes_differ_as_specified() -> None:
    dense = compose_train("model=dense")
    cnn = compose_train("model=cnn")
    assert dense.model.loss._target_ == "torch.nn.NLLLoss"
    assert dense.model.optimizer._target_ == "torch.optim.SGD" and dense.model.optimizer._partial_
    assert cnn.model.loss._target_ == "torch.nn.CrossEntropyLoss"
    assert cnn.model.optimizer._target_ == "torch.optim.Adam" and cnn.model.optimizer._partial_
    assert compose_train().model.net._target_.endswith("ConvNet"), "cnn is the default model"


@pytest.mark.parametrize(("model", "setting", "momentum"), [
    ("dense", "model.optimizer.momentum={}", lambda group: group["momentum"]),
    ("cnn", "model.optimizer.betas=[{},0.999]", lambda group: group["betas"][0]),
    # the cnn recipe switched to SGD, as the README's SGD experiment did: an optimizer without betas
    ("cnn", "+model.optimizer.momentum={} ~model.optimizer.betas model.optimizer._target_=torch.optim.SGD",
     lambda group: group["momentum"]),
])  # fmt: skip
def test_the_momentum_a_user_sets_is_the_one_the_schedule_starts_from(model: str, setting: str, momentum) -> None:
    """OneCycleLR overwrites the optimizer's momentum every step: model.optimizer.momentum (and Adam's first beta)
    did nothing, and dense_optuna searched it. Now it is the schedule's peak (max_momentum)."""
    for overrides, expected in ((() if "~" not in setting else setting.format(0.95).split(), 0.95),
                                (setting.format(0.9).split(), 0.9)):  # fmt: skip
        cfg = compose_train(f"model={model}", *overrides)
        optimizer = instantiate(cfg.model.optimizer)(params=[torch.nn.Parameter(torch.zeros(1))])
        instantiate(cfg.model.scheduler)(optimizer=optimizer, total_steps=100)
        assert momentum(optimizer.param_groups[0]) == pytest.approx(expected)
    upside_down = compose_train(f"model={model}", *setting.format(0.5).split())
    with pytest.raises(InstantiationException, match=r"needs 0 <= base_momentum <= max_momentum < 1"):
        instantiate(upside_down.model)


def test_command_line_overrides_win_over_recipes() -> None:
    assert compose_train("model=dense", "trainer.max_epochs=3").trainer.max_epochs == 3
    assert compose_train("experiment=cnn_best").trainer.max_epochs > compose_train().trainer.max_epochs


@pytest.mark.parametrize("search", options("hparams_search"))
def test_optuna_searches_are_resumable_and_tolerate_failures(search: str) -> None:
    sweeper = compose_train(f"hparams_search={search}").hydra.sweeper
    assert sweeper._target_ == "hydra_plugins.mnist_classifier_sweeper.OptunaSweeper"
    assert sweeper.storage.startswith("sqlite:///") and sweeper.direction == "maximize"
    assert sweeper.max_failure_rate == 1.0 and sweeper.params


def test_entry_without_target_is_an_error() -> None:
    group = OmegaConf.create({"broken": {"monitor": "val/acc"}})
    with pytest.raises(ConfigValueError, match=r"callbacks\.broken"):
        instantiate_group(group, "callbacks")
    assert instantiate_group(OmegaConf.create({"off": None}), "callbacks") == []


def test_eval_config_composes_without_model() -> None:
    cfg = compose_train("ckpt_path=x.ckpt", config="eval")
    assert "model" not in cfg and cfg.task_name == "eval"


def test_run_dirs_follow_template_layout() -> None:
    hydra = OmegaConf.to_container(compose_train().hydra)
    assert isinstance(hydra, dict)
    assert hydra["run"]["dir"] == "${paths.log_dir}/${task_name}/runs/${run_name:}"
    assert hydra["sweep"]["dir"].endswith("multiruns/${run_name:}")


@pytest.mark.parametrize("monitor", ["step", "epoch", "train/loss_step", "train/lr", "val/loss"])
def test_a_callback_may_monitor_what_training_logs(monitor: str) -> None:
    """The monitor check (a typo failed after the first epoch) refused `step`, the usual 'keep the latest N'."""
    check_train_config(compose_train(f"callbacks.model_checkpoint.monitor={monitor}"))
    with pytest.raises(ConfigValueError, match="is not a value training logs"):
        check_train_config(compose_train(f"callbacks.model_checkpoint.monitor={monitor}x"))
