"""When a training run has diverged, beyond NaN: the rule the classifier applies (README "Safety and
recovery"). A diverged run ends `failed` (exit 2), so a sweep records the trial as failed.

- an epoch's mean training loss is NaN/inf, or more than EXPLOSION_FACTOR times the larger of the run's
  first training step's loss and chance-level cross-entropy ln(10) (so at least ~230: no real run gets
  there, however short);
- after at least MIN_STEPS_FOR_ACCURACY optimizer steps, the last accuracy (validation, else training) is
  below CHANCE_FACTOR / 10: the model learned nothing. Shorter runs (debug runs, one-epoch smoke tests
  on a few batches) are not judged by accuracy.
"""

from __future__ import annotations

import math

from mnist_classifier.errors import TrainingDivergedError

EXPLOSION_FACTOR = 100
MIN_STEPS_FOR_ACCURACY = 200
CHANCE_FACTOR = 1.5


def check_epoch_loss(epoch: int, mean_loss: float, first_loss: float | None, num_classes: int, lr: object) -> None:
    """Raise if the epoch's mean training loss is not a sensible number."""
    limit = EXPLOSION_FACTOR * max(first_loss or 0.0, math.log(num_classes))
    if math.isfinite(mean_loss) and mean_loss <= limit:
        return
    first = f" (the first step's was {first_loss:.3g})" if first_loss is not None else ""
    size = "" if not math.isfinite(mean_loss) else f", over {EXPLOSION_FACTOR}x a sensible loss{first}"
    raise TrainingDivergedError(
        f"Training diverged: the mean training loss of epoch {epoch} is {mean_loss:.3g}{size}. Lower "
        f"model.optimizer.lr (now {lr}), e.g. 10x, or add gradient clipping (trainer.gradient_clip_val=1.0)."
    )


def check_final_accuracy(steps: int, accuracy: float | None, which: str, num_classes: int, lr: object) -> None:
    """Raise if a run long enough to have learned something ends at chance accuracy."""
    chance = 1 / num_classes
    if accuracy is None or steps < MIN_STEPS_FOR_ACCURACY or accuracy >= CHANCE_FACTOR * chance:
        return
    raise TrainingDivergedError(
        f"Training failed: after {steps} steps the {which} accuracy is {accuracy:.2%}, chance level "
        f"({chance:.0%}) for {num_classes} classes: the model learned nothing. Lower model.optimizer.lr "
        f"(now {lr}), e.g. 10x, if the loss rose; if it stayed flat, check the data (data.data_dir)."
    )
