"""Plain nn.Module networks (dense_net, conv_net) and the LightningModule that trains them."""

from mnist_classifier.models.classifier import MNISTClassifier
from mnist_classifier.models.conv_net import ConvNet
from mnist_classifier.models.dense_net import DenseNet

__all__ = ["ConvNet", "DenseNet", "MNISTClassifier"]
