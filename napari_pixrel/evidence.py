"""What the benchmark measured about the loss options, said where a user chooses one.

Numbers from docs/relation-loss.md (the paper's EM tiles and split, five 4-tile subsets, 600 equal
training steps, written by ``pixrel bench`` into benchmarks/results/gpu and benchmarks/results/cpu).
Update them together with that file when new evidence lands.
"""

LOSS_ADVICE = (
    "Measured on the paper's EM tiles: with full masks cross-entropy wins (65.5 mIoU against 57.6 for pixel "
    "relation); with ~2% scribbles pixel relation wins in 6 of 7 paired runs (49.2 against 45.5; "
    "second seed still being measured). Cross-entropy is the default."
)
