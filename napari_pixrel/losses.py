"""Cross-entropy and the pixel-relation loss (Hotta).

For every class k the network has its own embedding group (D channels). An
anchor pixel of class k is drawn (every class present, every step: class
balanced); the cosine similarity between the anchor's group-k vector and the
group-k vector of every painted pixel is pushed to +1 where the pixel is of
class k and to ``negative_target`` (the paper: -1) elsewhere, by squared error.
``intra`` takes anchor and pixels from the same image; ``inter`` takes the
anchor from image b-1 and the pixels from image b (the anchors are shifted,
not the feature tensor, so no copy is made).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

MODES = ("none", "intra", "inter")


@dataclass(frozen=True)
class RelationSettings:
    """How the relation term is computed (all stored with the model)."""

    mode: str = "none"
    anchors_per_class: int = 1
    negative_target: float = -1.0
    hard_anchors: bool = False

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"loss mode {self.mode!r} is not one of {MODES}")
        if self.anchors_per_class < 1:
            raise ValueError("anchors_per_class must be at least 1")


def cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean CE over painted pixels (target -1 = not painted); 0 if nothing is painted."""
    painted = (target >= 0).sum()
    ce = F.cross_entropy(logits.float(), target, ignore_index=-1, reduction="sum")
    return ce / painted.clamp(min=1)


def _draw_anchors(candidates: torch.Tensor, n: int, generator: torch.Generator | None) -> torch.Tensor:
    """Indices (rows, n) drawn uniformly among each row's True entries (rows with none: any index)."""
    weights = candidates.float()
    weights[~candidates.any(1)] = 1.0
    return torch.multinomial(weights, n, replacement=True, generator=generator)


def relation_loss(
    embeddings: torch.Tensor,
    target: torch.Tensor,
    settings: RelationSettings,
    logits: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Sum over classes of the mean (over images with that class) squared similarity error.

    embeddings: (B, K, D, H, W) per-class groups; target: (B, H, W) class index
    0..K-1, -1 = not painted. ``logits`` (B, K, H, W) are needed for hard anchors
    (pixels of class k the model currently gets wrong; any pixel of k if none).
    A class absent from an image contributes nothing (never NaN).
    """
    b, k, d, h, w = embeddings.shape
    if settings.mode == "none":
        return embeddings.new_zeros(())
    if settings.mode == "inter" and b < 2:
        raise ValueError("pixel relation across images needs a batch of at least 2 images")
    t = target.reshape(b, h * w)
    painted = t >= 0
    is_class = t.unsqueeze(1) == torch.arange(k, device=t.device).view(1, k, 1)  # (B, K, HW)
    candidates = is_class
    if settings.hard_anchors and logits is not None:
        wrong = (logits.detach().argmax(1).reshape(b, 1, h * w) != torch.arange(k, device=t.device).view(1, k, 1))
        hard = is_class & wrong
        candidates = torch.where(hard.any(2, keepdim=True), hard, is_class)
    a = settings.anchors_per_class
    idx = _draw_anchors(candidates.reshape(b * k, h * w), a, generator).reshape(b, k, a)
    # pixel-major (B, HW, K, D): a free view of the network's channels-last output
    emb = embeddings.permute(0, 3, 4, 1, 2).reshape(b, h * w, k, d)
    index = idx.permute(0, 2, 1).unsqueeze(3).expand(b, a, k, d)  # along the pixel axis
    anchors = F.normalize(torch.gather(emb, 1, index).float(), dim=3, eps=1e-6)  # (B, A, K, D)
    valid = is_class.any(2)  # (B, K): class k painted in the anchor's image
    if settings.mode == "inter":  # pixels of image b meet anchors of image b-1
        anchors = anchors.roll(1, dims=0)
        valid = valid.roll(1, dims=0)
    # only painted pixels enter: with scribbles (~2% painted) that is ~2% of the work
    rows, pixels = painted.nonzero(as_tuple=True)  # sorted by image
    x = emb[rows, pixels].float()  # (P, K, D)
    norms = (x * x).sum(2).sqrt().clamp(min=1e-6)  # cosine = dot with the unit anchor / pixel norm
    goal = torch.where(is_class[rows, :, pixels], 1.0, settings.negative_target)  # (P, K)
    counts = painted.sum(1)
    sizes = counts.tolist()
    err = []
    for xi, ni, gi, anchors_i in zip(x.split(sizes), norms.split(sizes), goal.split(sizes), anchors):
        sims = torch.stack([(xi * anchor).sum(2) for anchor in anchors_i]) / ni  # (A, P_i, K): no anchor copies
        err.append(((sims - gi) ** 2).sum((0, 1)))
    per_image_class = torch.stack(err) / (a * counts.clamp(min=1)).view(b, 1)  # (B, K)
    valid = valid & painted.any(1, keepdim=True)
    per_class = (per_image_class * valid).sum(0) / valid.sum(0).clamp(min=1)
    return per_class.sum()
