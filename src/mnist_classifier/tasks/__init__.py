"""The five commands, one module each: train, evaluate, predict, export (run by train.py, eval.py, predict.py,
export.py through runtime/runner.py) and serve (serve.py; the server itself is serving/). Each task is a function
`task(cfg) -> metrics`; the machinery they share (runner, trainer builder, interrupts, checks) is runtime/."""
