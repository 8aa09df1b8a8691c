"""The project's own classes that a checkpoint may name in its stored configs, and the module each lives
in: checkpoint/trust.py allows exactly these (and torch's losses, optimizers and schedulers), and the
packages export them (`mnist_classifier.models.ConvNet`). Plain names at the bottom of the package, so the
check imports nothing to know them.

Your own network: its module in models/, its config in configs/model/, and one line here (README, "Add your
own model")."""

MODELS_PACKAGE, DATA_PACKAGE = "mnist_classifier.models", "mnist_classifier.data"
# class name -> its module in mnist_classifier.models: the networks `model.net._target_` may name
NETWORKS = {"DenseNet": "dense_net", "ConvNet": "conv_net"}
# class name -> its module in mnist_classifier.data: the batch augmentations `data.augment._target_` may name
AUGMENTATIONS = {"RandomAffineBatch": "augment"}


def dotted_names(package: str, classes: dict[str, str]) -> frozenset[str]:
    """Both ways a config may write each class: from its package and from its module."""
    return frozenset(
        name for cls, module in classes.items() for name in (f"{package}.{cls}", f"{package}.{module}.{cls}")
    )
