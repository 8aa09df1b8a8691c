"""Figures and reports made with torchmetrics + seaborn/matplotlib, written to the run dir and TensorBoard.
Configs name the callbacks by their modules (`reports.test_report.TestReport`), and this package imports
none of them: predict.py draws its preview grid without Lightning."""
