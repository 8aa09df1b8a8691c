"""Figures and reports made with torchmetrics + matplotlib (seaborn for a sweep's summary), written to the
run dir and TensorBoard. Configs name the callbacks by their modules (`reports.test_report.TestReport`),
and this package imports none of them: predict.py draws its preview grid without Lightning."""
