"""Recipes survive the overrides users type first: the cheap part of the check (the full runs are the
benchmark's). For every recipe, batch size and precision, the shortest run's warm-up is followed up to
the peak learning rate, which is then held for a while: the loss must stay finite and go down."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from test_configs import compose_train, options

from mnist_classifier.data import MNISTDataModule

RECIPES = [[f"model={name}"] for name in options("model")] + [[f"experiment={name}"] for name in options("experiment")]
BATCH_SIZES = [64, 256, 1024]  # the ends of the range users type, and the middle
STEPS_AT_PEAK = 20


def precisions() -> list[str]:
    automatic = compose_train().trainer.precision
    return sorted({automatic, "32-true"})


def peak_lr_losses(cfg: DictConfig, datamodule: MNISTDataModule) -> list[float]:
    """Train from scratch through the 1-epoch run's warm-up, then hold the peak LR; the loss per step."""
    module = instantiate(cfg.model).train()
    optimizer = instantiate(cfg.model.optimizer)(params=module.parameters())
    steps_per_epoch = math.ceil(len(datamodule.train_set) / cfg.data.batch_size)
    warmup = int(cfg.model.scheduler.pct_start * steps_per_epoch) if cfg.model.scheduler else 0
    peak = float(cfg.model.optimizer.lr)
    clip = cfg.trainer.get("gradient_clip_val")
    bf16 = cfg.trainer.precision == "bf16-mixed"
    losses = []
    for step, (images, labels) in enumerate(datamodule.train_dataloader()):
        if step == warmup + STEPS_AT_PEAK:
            break
        for group in optimizer.param_groups:  # OneCycle's cosine warm-up from peak/25 (its div_factor)
            progress = min(1.0, step / max(1, warmup))
            group["lr"] = peak / 25 + (peak - peak / 25) * (1 - math.cos(math.pi * progress)) / 2
        batch = datamodule.on_after_batch_transfer((images, labels), 0)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = module.criterion(module(batch[0]), batch[1])
        optimizer.zero_grad()
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(module.parameters(), clip)
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


@pytest.mark.real_data
@pytest.mark.parametrize("precision", precisions())
@pytest.mark.parametrize("batch_size", BATCH_SIZES)
@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: r[0])
def test_recipe_is_stable_at_its_peak_learning_rate(
    recipe: list[str], batch_size: int, precision: str, real_data_dir: Path
) -> None:
    torch.manual_seed(0)
    cfg = compose_train(
        *recipe, f"data.data_dir={real_data_dir}", f"data.batch_size={batch_size}", f"trainer.precision={precision}"
    )

    class Training:  # what the datamodule's hooks read from a trainer
        training, current_epoch, num_training_batches, world_size, global_rank = True, 0, 10**9, 1, 0

    datamodule = instantiate(cfg.data)
    datamodule.trainer = Training()
    datamodule.setup("fit")
    losses = peak_lr_losses(cfg, datamodule)
    assert all(math.isfinite(value) for value in losses), f"diverged: {losses}"
    assert sum(losses[-5:]) / 5 < 0.5 * losses[0], f"did not learn at the peak LR: {losses[0]} -> {losses[-5:]}"
