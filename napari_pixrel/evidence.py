"""What the benchmark measured about the loss options, said where a user chooses one.

Numbers from docs/relation-loss.md: the paper's EM tiles and split, five 4-tile subsets x 2 seeds,
600 equal training steps, written by ``pixrel bench`` into benchmarks/results/gpu. Update them
together with that file when new evidence lands.
"""

LOSS_ADVICE = (
    "Measured on the paper's EM tiles: cross-entropy 65.5 mIoU; pixel relation at the paper's weight (1) "
    "57.6 within / 56.4 across images; at weight 0.03, the best measured, 65.1 (a tie). "
    "Cross-entropy is the default."
)

# The relation weight the product uses: the best setting measured on val over all five subsets.
DEFAULT_RELATION_WEIGHT = 0.03
