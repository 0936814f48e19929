"""What the benchmark measured about the loss options, said where a user chooses one.

Numbers from docs/relation-loss.md (the paper's EM tiles and split, five 4-tile subsets × 2 seeds, 600
equal training steps, and 5-minute CPU runs, with the last weights and with the weights kept as best on val,
with and without the elastic warp,
written by ``pixrel bench`` into
benchmarks/results/{gpu,gpu2,cpu}). Update them together with that file when new evidence lands.
"""

LOSS_ADVICE = (
    "Measured on the paper's EM tiles (600 steps): with full masks cross-entropy wins (65.5 mIoU against 57.6 "
    "for pixel relation; no relation setting beat it). With ~2% of pixels painted as scribbles pixel relation "
    "wins: +3.7 mIoU with the learning rate decayed over the run (8 of 10 runs; +3.5 at a constant rate), "
    "though CE is ahead below about 300 steps. Painting more helps both; relation stayed ahead of CE with the "
    "same decay up to 25% of the pixels painted (+4.9 to +5.8 at 5-25%), tied at 50% and lost with masks. "
    "At 5 minutes on a 2-core CPU with scribbles, decayed over the 5 minutes, relation led CE by +4.8 "
    "(8 of 8 runs); keeping the weights that scored best on validation (the default) lifts both, relation "
    "to 54.7 and CE to 52.4 (+2.2, 7 of 10 runs). Warping the training patches (the default) lifts CE most: "
    "73.1 with full masks against 57.8 for relation, and with scribbles they tie (57.6 relation, 57.3 CE; "
    "5 CPU minutes, 5 runs each). 'auto' uses pixel relation with that decay below 25% painted and "
    "cross-entropy above."
)
