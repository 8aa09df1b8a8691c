"""The LightningModule shared by both networks: loss, optimizer and scheduler come from YAML.

Hyperparameters are stored as plain dicts (`_target_` configs), never modules, so a checkpoint
loads with torch's `weights_only=True` and rebuilds its own network, whichever model trained it.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from torchmetrics import MaxMetric, MeanMetric, Metric
from torchmetrics.classification import MulticlassAccuracy

from mnist_classifier.checkpoint.run_state import capture_metrics, restore_metrics
from mnist_classifier.digits import NUM_CLASSES
from mnist_classifier.errors import CheckpointError, ConfigValueError, shown
from mnist_classifier.models.divergence import check_epoch_loss, check_final_accuracy
from mnist_classifier.utils.fast_path import uses_channels_last
from mnist_classifier.utils.instantiate import instantiate_argument
from mnist_classifier.utils.numbers import is_number
from mnist_classifier.utils.plain import to_plain

SCHEDULER_INTERVALS = ("step", "epoch")
# OneCycleLR divides by zero when pct_start * total_steps <= 1 (a handful of debug steps): whole-run
# schedules are planned over at least this many steps; a short run then just ends early in it.
MIN_SCHEDULE_STEPS = 100


def _check_optimizer(optimizer: Mapping[str, Any]) -> None:
    """Build the optimizer once on a dummy parameter so a bad lr/momentum fails before training."""
    if not optimizer.get("_partial_"):
        raise ConfigValueError("model.optimizer needs `_partial_: true`: the module passes its own parameters to it.")
    lr = optimizer.get("lr")
    if lr is not None and not (isinstance(lr, (int, float)) and lr > 0):
        raise ConfigValueError(f"model.optimizer.lr must be a number > 0, got {lr!r}.")
    try:
        instantiate(optimizer)(params=[torch.nn.Parameter(torch.zeros(1))])
    except (InstantiationException, ValueError, TypeError) as err:
        cause = err.__cause__ or err
        raise ConfigValueError(f"model.optimizer cannot be built from {optimizer}: {cause}") from err


def _check_momentum_cycle(scheduler: Mapping[str, Any] | None) -> None:
    """OneCycleLR sets the optimizer's momentum (SGD's, Adam's first beta) every step, from max_momentum (the
    recipes take it from the optimizer's) down to base_momentum at the peak LR and back: the optimizer's own
    value is otherwise never used, and a max below the base would run the cycle upside down."""
    if not scheduler or not str(scheduler.get("_target_", "")).endswith("OneCycleLR"):
        return
    if not scheduler.get("cycle_momentum", True):
        return
    defaults = inspect.signature(torch.optim.lr_scheduler.OneCycleLR).parameters
    base = scheduler.get("base_momentum", defaults["base_momentum"].default)
    peak = scheduler.get("max_momentum", defaults["max_momentum"].default)
    if not (is_number(base) and is_number(peak) and 0 <= base <= peak < 1):
        raise ConfigValueError(
            f"The one-cycle schedule moves the momentum between model.scheduler.base_momentum ({base!r}) and "
            f"max_momentum ({peak!r}; the recipes take it from model.optimizer.momentum, or Adam's first beta), "
            f"so it needs 0 <= base_momentum <= max_momentum < 1. Lower model.scheduler.base_momentum with the "
            f"momentum, or set model.scheduler.cycle_momentum=false to keep the optimizer's momentum fixed."
        )


def _check_loss(criterion: Any, loss: Mapping[str, Any]) -> None:
    """The loss gets a batch of scores, (N, 10), and the digits as class indices, (N,), and must give one number:
    a regression loss (MSELoss) or `reduction: none` failed at the first training step, with torch's message."""
    scores = torch.zeros(2, NUM_CLASSES, requires_grad=True)
    try:
        with warnings.catch_warnings():  # torch's own note on the shapes, before the error this reports
            warnings.simplefilter("ignore")
            value = criterion(scores, torch.zeros(2, dtype=torch.long))
        one_number = isinstance(value, torch.Tensor) and value.ndim == 0
        reason = None if one_number else f"it gave {shown(value)}, not one number"
    except (RuntimeError, ValueError, TypeError) as err:
        reason = " ".join(str(err).split()).rstrip(".")
    if reason is not None:
        raise ConfigValueError(
            f"model.loss ({loss.get('_target_')}) cannot score class labels: {reason}. The module gives it a batch's "
            f"scores, shape (N, {NUM_CLASSES}), and the digits as class indices, shape (N,), and trains on the one "
            f"number it returns: check the loss's settings (model.loss.*), and that it is a classification loss, "
            f"e.g. torch.nn.CrossEntropyLoss (NLLLoss for log-probabilities, as the dense net gives)."
        )


class MNISTClassifier(L.LightningModule):
    """Trains any network that maps a normalised (N, 1, 28, 28) batch to one score row per image."""

    def __init__(
        self,
        net: Mapping[str, Any],
        loss: Mapping[str, Any],
        optimizer: Mapping[str, Any],
        scheduler: Mapping[str, Any] | None = None,
        scheduler_interval: str = "step",
        channels_last: bool | str = "auto",
        compile: bool = False,
    ) -> None:
        super().__init__()
        net, loss, optimizer, scheduler = (to_plain(v) for v in (net, loss, optimizer, scheduler))
        if scheduler_interval not in SCHEDULER_INTERVALS:
            raise ConfigValueError(
                f"model.scheduler_interval must be one of {SCHEDULER_INTERVALS}, got {scheduler_interval!r}."
            )
        _check_optimizer(optimizer)
        _check_momentum_cycle(scheduler)
        if not isinstance(loss, Mapping) or "_target_" not in loss:
            raise ConfigValueError(
                f"model.loss must name a loss, e.g. model.loss._target_=torch.nn.CrossEntropyLoss; got {loss!r}."
            )
        if not (isinstance(channels_last, bool) or channels_last == "auto"):
            raise ConfigValueError(
                f"model.channels_last must be true, false or auto (the fast layout for this network), got "
                f"{channels_last!r}."
            )
        if not isinstance(compile, bool):
            raise ConfigValueError(f"model.compile must be true or false, got {compile!r}.")
        self.save_hyperparameters(
            {
                "net": net,
                "loss": loss,
                "optimizer": optimizer,
                "scheduler": scheduler,
                "scheduler_interval": scheduler_interval,
                "channels_last": channels_last,
                "compile": compile,
            }
        )
        self.optimizer_config, self.scheduler_config = optimizer, scheduler
        self.scheduler_interval = scheduler_interval
        self.net = instantiate_argument("net", net)
        self.channels_last = uses_channels_last(self.net, channels_last)
        self.compiled = compile
        if self.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.criterion = instantiate(loss)
        _check_loss(self.criterion, loss)
        # The compiled wrapper shares `net`'s weights: stored outside nn.Module's registry so the
        # state_dict holds them once, under `net.`, whether or not the run compiled.
        self.__dict__["_forward_net"] = torch.compile(self.net) if compile else self.net

        self.train_loss, self.val_loss, self.test_loss = (MeanMetric(nan_strategy="disable") for _ in range(3))
        self.train_acc, self.val_acc, self.test_acc = (
            MulticlassAccuracy(NUM_CLASSES, average="micro") for _ in range(3)
        )
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # survives resume from last.ckpt
        self._schedule_steps: int | None = None  # the run length a whole-run schedule was built for
        self._first_loss: float | None = None  # this run's first training step's loss (models/divergence.py)
        self._epoch_val_acc: float | None = None  # the current epoch's validation accuracy, once it ran
        # the last epoch's accuracy (validation's, or training's if it had no validation): models/divergence.py
        self._final_accuracy: tuple[float | None, str] = (None, "training")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return self._forward_net(images)  # type: ignore[operator]  # nn.Module or its compiled wrapper

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training: the recipe's criterion (label smoothing included)."""
        images, labels = batch
        scores = self(images)
        return self.criterion(scores, labels), scores, labels

    def _eval_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """val/test: plain cross-entropy of the predicted probabilities, comparable across recipes (for
        log-probabilities, as the dense net outputs, it is exactly the NLL loss)."""
        images, labels = batch
        scores = self(images)
        return F.cross_entropy(scores.float(), labels), scores, labels

    # --- training ---------------------------------------------------------------------------
    def on_train_start(self) -> None:
        self._check_resumed_schedule()

    def _check_resumed_schedule(self) -> None:
        """A resumed OneCycle-style schedule keeps its planned length: refuse a run of another length."""
        for config in self.trainer.lr_scheduler_configs:
            planned = getattr(config.scheduler, "total_steps", None)
            if planned is not None and self._schedule_steps is not None and planned != self._schedule_steps:
                raise CheckpointError(
                    f"The checkpoint's LR schedule ({type(config.scheduler).__name__}) was planned for "
                    f"{planned} {config.interval}s, but this run lasts {self._schedule_steps}. Resume "
                    f"with the original run's trainer.max_epochs, data.batch_size and batch limits "
                    f"(see its .hydra/overrides.yaml), or start a new run."
                )

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, scores, labels = self._step(batch)
        detached = loss.detach()
        if self._first_loss is None:  # the reference a diverged loss is measured against
            self._first_loss = float(detached)
        self.train_loss.update(detached, weight=labels.numel())
        self.train_acc.update(scores.detach(), labels)
        if self._is_logging_step():
            lr = self.trainer.optimizers[0].param_groups[0]["lr"]
            self.log_dict({"train/loss_step": detached, "train/lr": lr}, prog_bar=True)
        return loss

    def _is_logging_step(self) -> bool:
        """Step values reach the loggers every `log_every_n_steps` (on the step where Lightning writes
        them, (global_step + 1) % n == 0); `self.log` on the other steps is pure overhead."""
        trainer: Any = self.trainer  # log_every_n_steps and fast_dev_run are set outside Trainer's annotations
        every = trainer.log_every_n_steps
        return every > 0 and ((self.global_step + 1) % every == 0 or bool(trainer.fast_dev_run))

    def on_train_epoch_end(self) -> None:
        train_loss, train_acc = self.train_loss.compute(), self.train_acc.compute()
        self.log_dict({"train/loss": train_loss, "train/acc": train_acc})
        self.train_loss.reset()
        self.train_acc.reset()
        val_acc, self._epoch_val_acc = self._epoch_val_acc, None
        self._final_accuracy = (val_acc, "validation") if val_acc is not None else (float(train_acc), "training")
        lr = self.optimizer_config.get("lr")
        check_epoch_loss(self.current_epoch, float(train_loss), self._first_loss, NUM_CLASSES, lr)

    def on_train_end(self) -> None:
        accuracy, which = self._final_accuracy
        lr = self.optimizer_config.get("lr")
        check_final_accuracy(self.trainer.global_step, accuracy, which, NUM_CLASSES, lr)

    # --- validation -------------------------------------------------------------------------
    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        loss, scores, labels = self._eval_step(batch)
        self.val_loss.update(loss, weight=labels.numel())
        self.val_acc.update(scores, labels)

    def on_validation_epoch_end(self) -> None:
        val_loss, val_acc = self.val_loss.compute(), self.val_acc.compute()
        self.val_loss.reset()
        self.val_acc.reset()
        if self.trainer.sanity_checking:
            return
        self.val_acc_best.update(val_acc)
        self.log_dict(
            {"val/loss": val_loss, "val/acc": val_acc, "val/acc_best": self.val_acc_best.compute()},
            prog_bar=True,
        )
        self._epoch_val_acc = float(val_acc)

    # --- test -------------------------------------------------------------------------------
    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        loss, scores, labels = self._eval_step(batch)
        self.test_loss.update(loss, weight=labels.numel())
        self.test_acc.update(scores, labels)
        return {"scores": scores, "labels": labels}  # read by the report callbacks

    def on_test_epoch_end(self) -> None:
        self.log_dict({"test/loss": self.test_loss.compute(), "test/acc": self.test_acc.compute()})
        self.test_loss.reset()
        self.test_acc.reset()

    # --- optimisation -----------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        optimizer = instantiate(self.optimizer_config)(params=self.parameters())
        if not self.scheduler_config:
            return optimizer
        make_scheduler = instantiate(self.scheduler_config)
        kwargs = {}
        accepts = inspect.signature(make_scheduler.func).parameters
        if "total_steps" in accepts and not {"total_steps", "epochs"} & set(make_scheduler.keywords):
            # Schedules over the whole run (OneCycleLR) follow trainer.max_epochs automatically.
            per_step = self.scheduler_interval == "step"
            run_length = int(self.trainer.estimated_stepping_batches) if per_step else self.trainer.max_epochs
            kwargs["total_steps"] = self._schedule_steps = max(run_length or 0, MIN_SCHEDULE_STEPS)
        try:
            scheduler = make_scheduler(optimizer=optimizer, **kwargs)
        except (ValueError, TypeError) as err:  # torch's own checks: pct_start outside (0, 1), a missing max_lr
            raise ConfigValueError(
                f"model.scheduler cannot be built from {self.scheduler_config}: {err}. Check the model.scheduler.* "
                f"values (model.scheduler=null for a constant LR)."
            ) from err
        return {
            "optimizer": optimizer,
            "lr_scheduler": {
                "scheduler": scheduler,
                "interval": self.scheduler_interval,
                "monitor": "val/loss",
            },
        }

    # --- checkpoint -------------------------------------------------------------------------
    def _epoch_accumulators(self) -> dict[str, Metric]:
        return {"train_loss": self.train_loss, "train_acc": self.train_acc}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Besides weights, optimizer and schedule (Lightning's): the current epoch's accumulators, so a
        run resumed mid-epoch reports that epoch as the uninterrupted one (the rest: models/run_history.py)."""
        checkpoint["epoch_accumulators"] = capture_metrics(self._epoch_accumulators())

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "epoch_accumulators" in checkpoint:
            restore_metrics(self._epoch_accumulators(), checkpoint["epoch_accumulators"])
