"""A pairwise loss that carries sparse scribbles to the pixels around them: neighbours that look alike
should get the same class.

With about 2% of the pixels painted, cross-entropy (and the relation term) see only the strokes; what the
network predicts between them is free. The relaxed Potts loss of weakly supervised segmentation (Tang et
al. 2018, "On regularized losses for weakly-supervised CNN segmentation"), on a local window as in the
gated CRF loss (Obukhov et al. 2019), asks every pair of nearby pixels i, j to agree in proportion to how
alike they look: the mean over pairs of w_ij (1 - sum_k p_ik p_jk), where p are the class probabilities
and w_ij = exp(-|I_i - I_j|^2 / (2 SIGMA^2)) on the normalised intensities. Pairs are each pixel's
neighbours at 1, 2 and 4 pixels in four directions (the other four are the same pairs seen from the
other pixel): element-wise products of the logits' size, 4 to 11% of a CPU training step
(docs/relation-loss.md, "Spreading scribbles").
"""

from __future__ import annotations

import torch

SIGMA = 0.1  # intensities are normalised to about [0, 1] (data.Normalizer); set once, not tuned
DIRECTIONS = ((0, 1), (1, 0), (1, 1), (1, -1))
DILATIONS = (1, 2, 4)


def _pairs(t: torch.Tensor, dy: int, dx: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``t`` (..., H, W) at every pixel i and at its neighbour i + (dy, dx) (dy >= 0), where both exist."""
    h, w = t.shape[-2:]
    a = t[..., : h - dy, max(0, -dx): w - max(0, dx)]
    b = t[..., dy:, max(0, dx): w - max(0, -dx)]
    return a, b


def smoothness_loss(logits: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Mean over neighbour pairs of how alike the pixels of ``image`` (N, C, H, W) look times the
    probability that ``logits`` (N, K, H, W) give them different classes; in [0, 1]."""
    prob = torch.softmax(logits.float(), dim=1)
    image = image.float()
    total = prob.new_zeros(())
    for d in DILATIONS:
        for dy, dx in DIRECTIONS:
            pa, pb = _pairs(prob, d * dy, d * dx)
            ia, ib = _pairs(image, d * dy, d * dx)
            alike = torch.exp(-((ia - ib) ** 2).sum(1) / (2 * SIGMA**2))
            total = total + (alike * (1 - (pa * pb).sum(1))).mean()
    return total / (len(DILATIONS) * len(DIRECTIONS))
