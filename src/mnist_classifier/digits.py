"""The ten classes every part agrees on: the networks' scores, the metrics, the reports' columns, an
exported model's labels. Plain Python at the bottom of the package: everything may import it."""

NUM_CLASSES = 10
CLASS_LABELS = tuple(str(digit) for digit in range(NUM_CLASSES))
