"""Pixel-relation loss: values on hand-made embeddings, gradients, masking, no NaN."""

import pytest
import torch

from napari_pixrel.losses import RelationSettings, _draw_anchors, cross_entropy, relation_loss
from napari_pixrel.model import ModelConfig, PixRelNet


def reference(emb, target, settings, seed=0):
    """Loop version of the paper's formula, anchors drawn with the same generator."""
    b, k, d, h, w = emb.shape
    t = target.reshape(b, -1)
    cand = (t.unsqueeze(1) == torch.arange(k).view(1, k, 1)).reshape(b * k, -1)
    idx = _draw_anchors(cand, settings.anchors_per_class, torch.Generator().manual_seed(seed)).reshape(b, k, -1)
    e = torch.nn.functional.normalize(emb.double().reshape(b, k, d, -1), dim=2)
    total = 0.0
    for c in range(k):
        losses = []
        for i in range(b):
            src = (i - 1) % b if settings.mode == "inter" else i
            if not (t[src] == c).any() or not (t[i] >= 0).any():
                continue
            painted = t[i] >= 0
            errs = []
            for a in idx[src, c]:
                sim = (e[i, c].T @ e[src, c, :, a])[painted]
                goal = torch.where(t[i][painted] == c, 1.0, settings.negative_target).double()
                errs.append(((sim - goal) ** 2).mean())
            losses.append(torch.stack(errs).mean())
        if losses:
            total = total + torch.stack(losses).mean()
    return total


def random_case(b=3, k=3, d=4, h=12, w=10, seed=0, unlabeled=0.3):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(b, k, d, h, w, generator=g)
    target = torch.randint(0, k, (b, h, w), generator=g)
    target[torch.rand(b, h, w, generator=g) < unlabeled] = -1
    return emb, target


@pytest.mark.parametrize("mode", ["intra", "inter"])
@pytest.mark.parametrize("anchors,negative", [(1, -1.0), (3, -1.0), (2, 0.0)])
def test_matches_loop_reference(mode, anchors, negative):
    emb, target = random_case()
    s = RelationSettings(mode, anchors_per_class=anchors, negative_target=negative)
    got = relation_loss(emb, target, s, generator=torch.Generator().manual_seed(0))
    assert got.item() == pytest.approx(float(reference(emb, target, s)), rel=1e-5)


@pytest.mark.parametrize("mode", ["intra", "inter"])
@pytest.mark.parametrize("unlabeled", [0.0, 0.3])  # full masks (no gather), partly painted
def test_gradient_matches_loop_reference(mode, unlabeled):
    emb, target = random_case(unlabeled=unlabeled)
    s = RelationSettings(mode, anchors_per_class=2)
    fast, slow = emb.clone().requires_grad_(), emb.clone().requires_grad_()
    relation_loss(fast, target, s, generator=torch.Generator().manual_seed(0)).backward()
    reference(slow, target, s).backward()
    torch.testing.assert_close(fast.grad, slow.grad, rtol=1e-4, atol=1e-6)


def test_anchors_are_drawn_uniformly_among_candidates():
    candidates = torch.zeros(3, 50, dtype=torch.bool)
    candidates[0, [3, 17, 40]] = True
    candidates[1, 49] = True  # the last entry, the only one
    drawn = _draw_anchors(candidates, 30000, torch.Generator().manual_seed(0))
    assert drawn.shape == (3, 30000)
    counts = torch.bincount(drawn[0], minlength=50)
    assert set(counts.nonzero().flatten().tolist()) == {3, 17, 40}
    assert counts[[3, 17, 40]].float().div(30000).sub(1 / 3).abs().max() < 0.02
    assert (drawn[1] == 49).all()
    assert len(drawn[2].unique()) == 50  # a row without candidates: any index, all reachable


@pytest.mark.parametrize("unlabeled", [0.0, 0.98])  # full masks, scribbles
def test_channels_last_output_gives_the_same_loss_and_gradient(unlabeled):
    """The network's output is channels-last, which the loss reads as a view; values must not depend on it."""
    emb, target = random_case(unlabeled=unlabeled, h=32, w=32)
    b, k, d, h, w = emb.shape
    values, grads = [], []
    for layout in (torch.contiguous_format, torch.channels_last):
        flat = emb.reshape(b, k * d, h, w).contiguous(memory_format=layout).requires_grad_()
        loss = relation_loss(flat.reshape(b, k, d, h, w), target, RelationSettings("intra", 2),
                             generator=torch.Generator().manual_seed(0))
        loss.backward()
        values.append(loss.item())
        grads.append(flat.grad)
    assert values[0] == pytest.approx(values[1], rel=1e-6) and values[0] > 0
    torch.testing.assert_close(grads[0], grads[1])


def ideal_embeddings(target, k, d=4):
    """Group c: +e0 at pixels of class c, -e0 elsewhere: cosine is +1 same class, -1 otherwise."""
    b, h, w = target.shape
    emb = torch.zeros(b, k, d, h, w)
    for c in range(k):
        emb[:, c, 0] = torch.where(target == c, 1.0, -1.0)
    return emb


@pytest.mark.parametrize("mode", ["intra", "inter"])
def test_zero_for_ideal_embeddings_positive_otherwise(mode):
    _, target = random_case(k=3)
    s = RelationSettings(mode, anchors_per_class=2)
    ideal = ideal_embeddings(target, 3)
    assert relation_loss(ideal, target, s).item() == pytest.approx(0.0, abs=1e-6)
    noisy = ideal + 0.5 * torch.randn_like(ideal)
    assert relation_loss(noisy, target, s).item() > 0.01


def test_negative_target_zero_wants_orthogonal_groups():
    _, target = random_case(k=2)
    s = RelationSettings("intra", negative_target=0.0)
    emb = torch.zeros(3, 2, 4, *target.shape[1:])
    for c in range(2):
        emb[:, c, 0] = (target == c).float()
        emb[:, c, 1] = (target != c).float()
    assert relation_loss(emb, target, s).item() == pytest.approx(0.0, abs=1e-6)
    assert relation_loss(emb, target, RelationSettings("intra")).item() > 0.5


def test_unlabeled_pixels_change_nothing():
    emb, target = random_case()
    emb.requires_grad_(True)
    s = RelationSettings("intra", anchors_per_class=2)
    loss = relation_loss(emb, target, s, generator=torch.Generator().manual_seed(1))
    loss.backward()
    unlabeled = (target < 0).unsqueeze(1).unsqueeze(1).expand_as(emb)
    assert emb.grad[unlabeled].abs().max() == 0
    changed = emb.detach().clone()
    changed[unlabeled] = torch.randn(int(unlabeled.sum()))
    again = relation_loss(changed, target, s, generator=torch.Generator().manual_seed(1))
    assert again.item() == pytest.approx(loss.item(), rel=1e-6)
    logits = torch.randn(3, 3, *target.shape[1:])
    ce = cross_entropy(logits, target)
    logits[target.unsqueeze(1).expand_as(logits) < 0] = 100.0
    assert cross_entropy(logits, target).item() == pytest.approx(ce.item(), rel=1e-6)


@pytest.mark.parametrize("mode", ["intra", "inter"])
def test_absent_classes_and_empty_images_give_no_nan(mode):
    emb, target = random_case(k=3)
    target[target == 2] = 0  # class 2 absent everywhere
    target[1] = -1  # one image with nothing painted
    emb.requires_grad_(True)
    loss = relation_loss(emb, target, RelationSettings(mode))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(emb.grad).all()
    nothing = torch.full_like(target, -1)
    assert relation_loss(emb, nothing, RelationSettings(mode)).item() == 0.0
    assert cross_entropy(torch.randn(3, 3, *target.shape[1:]), nothing).item() == 0.0


def test_inter_pairs_pixels_of_image_b_with_anchors_of_image_b_minus_1():
    emb, target = random_case(b=2)
    s_inter = RelationSettings("inter")
    intra = relation_loss(emb, target, RelationSettings("intra"), generator=torch.Generator().manual_seed(0))
    inter = relation_loss(emb, target, s_inter, generator=torch.Generator().manual_seed(0))
    assert intra.item() != pytest.approx(inter.item())
    twins_emb, twins_t = emb[:1].expand(2, -1, -1, -1, -1), target[:1].expand(2, -1, -1)
    # with identical images the pairing is invisible: inter equals intra for the same anchors
    a = relation_loss(twins_emb, twins_t, RelationSettings("intra"), generator=torch.Generator().manual_seed(0))
    b = relation_loss(twins_emb, twins_t, s_inter, generator=torch.Generator().manual_seed(0))
    assert a.item() == pytest.approx(float(reference(twins_emb, twins_t, RelationSettings("intra"))), rel=1e-5)
    assert b.item() == pytest.approx(float(reference(twins_emb, twins_t, s_inter)), rel=1e-5)
    with pytest.raises(ValueError, match="at least 2"):
        relation_loss(emb[:1], target[:1], s_inter)


def test_hard_anchors_pick_misclassified_pixels():
    k, h, w = 2, 6, 6
    target = torch.zeros(1, h, w, dtype=torch.long)
    target[0, :3] = 1
    logits = torch.nn.functional.one_hot(target, k).permute(0, 3, 1, 2).float()
    logits[0, :, 5, 5] = torch.tensor([0.0, 5.0])  # the only wrong class-0 pixel
    logits[0, :, 1, 2] = torch.tensor([5.0, 0.0])  # the only wrong class-1 pixel
    emb = torch.randn(1, k, 3, h, w)
    e = torch.nn.functional.normalize(emb, dim=2)
    expected = 0.0
    for c, (y, x) in enumerate([(5, 5), (1, 2)]):
        sim = (e[0, c] * e[0, c, :, y, x].view(-1, 1, 1)).sum(0)
        expected += ((sim - torch.where(target[0] == c, 1.0, -1.0)) ** 2).mean().item()
    hard = RelationSettings("intra", hard_anchors=True)
    for seed in range(3):
        got = relation_loss(emb, target, hard, logits=logits, generator=torch.Generator().manual_seed(seed))
        assert got.item() == pytest.approx(expected, rel=1e-5)


def test_gradients_reach_the_encoder():
    torch.manual_seed(0)
    net = PixRelNet(ModelConfig(n_classes=3, encoder="resnet18", embed_dim=4))
    x = torch.randn(2, 1, 64, 64)
    target = torch.randint(0, 3, (2, 64, 64))
    _, emb = net(x)
    relation_loss(emb, target, RelationSettings("intra")).backward()
    first = net.unet.encoder.conv1.weight.grad
    assert first is not None and first.abs().sum() > 0


@pytest.mark.parametrize("head", ["groups", "projection"])
def test_heads_give_logits_and_groups(head):
    net = PixRelNet(ModelConfig(n_classes=4, embed_dim=5, head=head))
    logits, emb = net(torch.zeros(1, 1, 64, 64))
    assert logits.shape == (1, 4, 64, 64) and emb.shape == (1, 4, 5, 64, 64)
    assert torch.equal(net.logits(torch.zeros(1, 1, 64, 64)), logits)
