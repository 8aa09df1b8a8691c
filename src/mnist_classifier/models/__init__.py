"""Plain nn.Module networks (dense_net, conv_net) and the LightningModule that trains them."""

from torch import nn

from mnist_classifier.models.classifier import MNISTClassifier
from mnist_classifier.models.conv_net import ConvNet
from mnist_classifier.models.dense_net import DenseNet

# The networks a checkpoint may name in `net._target_` (checkpoints are data: see checkpoint/trust.py).
# Add your own network class here to evaluate, resume, predict or export its checkpoints.
NETWORKS: tuple[type[nn.Module], ...] = (DenseNet, ConvNet)

__all__ = ["NETWORKS", "ConvNet", "DenseNet", "MNISTClassifier"]
