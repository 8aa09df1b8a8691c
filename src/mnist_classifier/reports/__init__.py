"""Figures and reports made with torchmetrics + seaborn/matplotlib, written to the run dir and TensorBoard."""

from mnist_classifier.reports.test_report import TestReport
from mnist_classifier.reports.training_curves import TrainingCurves
from mnist_classifier.reports.validation_samples import ValidationSamples

__all__ = ["TestReport", "TrainingCurves", "ValidationSamples"]
