"""What a run prints: where its files are, a compact model summary, one progress bar, a line per epoch
and one results table. Library noise a user cannot act on is filtered at its source (noise.py).
Configs name the classes by their modules (`console.epoch_progress.EpochProgressBar`), and this package
imports none of them: predict.py prints through it without Lightning, which the progress bar is made of."""
