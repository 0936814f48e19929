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
    """Indices (rows, n) drawn uniformly among each row's True entries (rows with none: any index).

    The r-th True entry of a row, r uniform below the row's count, found in its running count: this costs
    one cumulative sum, where ``torch.multinomial`` drew an exponential variate per entry (a quarter of the
    relation term's time with full masks).
    """
    rows, length = candidates.shape
    counts = candidates.sum(1, keepdim=True)
    pick = torch.rand(rows, n, generator=generator, device=candidates.device)
    empty = counts == 0
    pool = torch.where(empty, length, counts)
    rank = torch.minimum((pick * pool).long(), pool - 1)  # the minimum guards against pick * pool rounding up
    running = candidates.cumsum(1, dtype=torch.int32)
    found = torch.searchsorted(running, (rank + 1).int())  # first entry whose running count is rank + 1
    return torch.where(empty, rank, found)


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
    # block-diagonal (K*D, K*A): one matrix product scores every pixel against its own class's anchors
    blocks = torch.einsum("bakd,kj->bkdja", anchors, torch.eye(k, device=anchors.device))
    blocks = blocks.reshape(b, k * d, k * a)
    counts = painted.sum(1)
    goal = torch.where(is_class, 1.0, settings.negative_target).transpose(1, 2)  # (B, HW, K)
    err = []
    for i in range(b):  # only painted pixels enter: with scribbles (~2% painted) that is ~2% of the work
        pixels = slice(None) if bool(painted[i].all()) else painted[i]  # full masks: a view, nothing gathered
        err.append(_squared_errors(emb[i, pixels].reshape(-1, k * d), blocks[i], goal[i, pixels]))
    per_image_class = torch.stack(err) / (a * counts.clamp(min=1)).view(b, 1)  # (B, K)
    valid = valid & painted.any(1, keepdim=True)
    per_class = (per_image_class * valid).sum(0) / valid.sum(0).clamp(min=1)
    return per_class.sum()


def _squared_errors(x: torch.Tensor, blocks: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
    """Sum over pixels and anchors of (cosine - goal)^2, per class: x (P, K*D) the pixels' groups, blocks
    (K*D, K*A) the unit anchors block-diagonally, goal (P, K); returns (K,)."""
    k = goal.shape[-1]
    x = x.float()
    norms = torch.linalg.vector_norm(x.unflatten(-1, (k, -1)), dim=-1).clamp(min=1e-6)
    sims = (x @ blocks).unflatten(-1, (k, -1)) / norms.unsqueeze(-1)  # cosine: dot with a unit anchor / norm
    return ((sims - goal.unsqueeze(-1)) ** 2).sum((0, 2))
