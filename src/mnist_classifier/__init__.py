"""MNIST classifiers with PyTorch Lightning and Hydra."""
