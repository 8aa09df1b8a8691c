"""MNIST data: torchvision's parser, an in-memory tensor dataset and the LightningDataModule."""

from mnist_classifier.data.mnist_datamodule import MNISTDataModule

__all__ = ["MNISTDataModule"]
