"""MNIST data: torchvision's parser, an in-memory tensor dataset and the LightningDataModule."""

from torch import nn

from mnist_classifier.data.augment import RandomAffineBatch
from mnist_classifier.data.mnist_datamodule import MNISTDataModule

# The batch augmentations a checkpoint may name in `augment._target_` (see checkpoint/trust.py).
AUGMENTATIONS: tuple[type[nn.Module], ...] = (RandomAffineBatch,)

__all__ = ["AUGMENTATIONS", "MNISTDataModule", "RandomAffineBatch"]
