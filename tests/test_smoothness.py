import pytest
import torch

from napari_pixrel.smoothness import _pairs, smoothness_loss


def confident(classes: torch.Tensor, k: int = 3) -> torch.Tensor:
    """Logits (N, K, H, W) that give ``classes`` (N, H, W) with probability ~1."""
    return 50.0 * torch.nn.functional.one_hot(classes, k).permute(0, 3, 1, 2).float()


@pytest.mark.parametrize(("dy", "dx"), [(0, 1), (1, 0), (2, 2), (1, -1), (4, -4)])
def test_pairs_are_each_pixel_and_its_neighbour(dy, dx):
    t = torch.arange(6 * 7).view(1, 6, 7)
    a, b = _pairs(t, dy, dx)
    assert a.shape == b.shape == (1, 6 - dy, 7 - abs(dx))
    assert torch.equal(b - a, torch.full_like(a, 7 * dy + dx))  # row-major index of i + (dy, dx)


def test_one_class_everywhere_costs_nothing_and_a_cut_through_alike_pixels_costs():
    image = torch.full((1, 1, 32, 32), 0.5)
    assert smoothness_loss(confident(torch.zeros(1, 32, 32, dtype=torch.long)), image) == pytest.approx(0, abs=1e-6)
    halves = torch.zeros(1, 32, 32, dtype=torch.long)
    halves[:, :, 16:] = 1
    assert smoothness_loss(confident(halves), image) > 0.01


def test_a_cut_along_an_intensity_edge_costs_far_less_than_one_across_a_uniform_region():
    image = torch.full((1, 1, 32, 32), 0.2)
    image[..., 16:] = 0.8  # a dark and a bright half
    along = torch.zeros(1, 32, 32, dtype=torch.long)
    along[:, :, 16:] = 1
    across = torch.zeros(1, 32, 32, dtype=torch.long)
    across[:, 16:, :] = 1
    assert smoothness_loss(confident(along), image) < 1e-3 * smoothness_loss(confident(across), image)


def test_gradient_reaches_unpainted_pixels_and_is_finite():
    logits = torch.randn(2, 3, 24, 24, requires_grad=True)
    smoothness_loss(logits.bfloat16(), torch.rand(2, 1, 24, 24)).backward()
    assert torch.isfinite(logits.grad).all() and (logits.grad.abs().sum((0, 1)) > 0).all()
