"""What the benchmark measured about the loss options, said where a user chooses one.

Numbers from docs/relation-loss.md (the paper's EM tiles and split, five 4-tile subsets × 2 seeds, 600
equal training steps, and 5-minute CPU runs, with the last weights and with the weights kept as best on val,
with and without the elastic warp, the weights' moving average and the smoothness loss, written by
``pixrel bench`` into benchmarks/results/{gpu,gpu2,gpu3,cpu}). Update them together with that file when new
evidence lands.
"""

LOSS_ADVICE = (
    "Measured on the paper's EM tiles: with full masks cross-entropy wins at every setting tried (600 steps: "
    "65.5 mIoU against 57.6 for pixel relation; 5 CPU minutes with the warp and the weights' average: 73.8 "
    "against 60.7). With ~2% of pixels painted as scribbles and flips/rot90 only, pixel "
    "relation led: +3.7 mIoU with the learning rate decayed over the run (8 of 10 pairs), +2.2 at 5 CPU "
    "minutes keeping the weights best on validation (7 of 10). Warping the training patches (the default) "
    "lifts CE more, and with scribbles the two then tie (relation - CE -0.6 on validation, -0.8 on test, "
    "10 pairs; 56.8 against 57.6). A smoothness loss that spreads the strokes to alike neighbours lifts CE "
    "with scribbles to 63.2 (+5.6, 10 of 10 pairs); it lifts pixel relation less (59.2, 3.8 under CE with it, "
    "5 pairs). 'auto' therefore trains cross-entropy, with that "
    "smoothness loss wherever pixels are left unpainted (under 95% painted: with strokes it helped from 2 to "
    "50% painted, at 75 to 90% by about a point, within the noise; not with full masks), unless the painted "
    "areas draw most of the class boundaries (with half "
    "of each image painted as complete 64-pixel squares it cost 2.3; as 32-pixel squares nothing), "
    "except for scribbles with the warp turned off, where "
    "it trains pixel relation with that decay."
)
