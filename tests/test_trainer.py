"""The trainer: reports, control between steps, determinism, safety, and that it learns."""

import math
import threading
from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import TINY

from napari_pixrel.data import painted_planes
from napari_pixrel.metrics import ConfusionMatrix
from napari_pixrel.modelfile import load_model, save_model
from napari_pixrel.predict import predict, predict_window
from napari_pixrel.sample_data import CLASS_NAMES
from napari_pixrel.trainer import EMA_DECAY, TrainConfig, Trainer

FAST = TrainConfig(steps=6, patch_size=64, eval_every=3)


def planes(sample, idx=(0, 1), kind=1):
    images, arrays = sample[0], sample[kind]
    return [p for i in idx for p in painted_planes(images[i], arrays[i])]


def make(sample, config=FAST, **kw):
    kw.setdefault("model", TINY)
    kw.setdefault("class_names", list(CLASS_NAMES))
    return Trainer(planes(sample), config, **kw)


def test_reports_every_step_with_evaluation_every_n(sample):
    trainer = make(sample, val=planes(sample, (4,)), preview=sample[0][4])
    reports = list(trainer.run())
    assert [r.step for r in reports] == [1, 2, 3, 4, 5, 6, 6]
    assert [r.val_iou is not None for r in reports] == [False, False, True, False, False, True, True]
    final = reports[-1]
    assert final.finished and final.progress == 1.0 and not final.message
    assert set(final.val_iou) == {*CLASS_NAMES, "mIoU"} and set(final.train_iou) == {*CLASS_NAMES, "mIoU"}
    assert final.prediction.labels.shape == (256, 256)
    assert all(np.isfinite([r.loss, r.ce, r.relation]).all() for r in reports)
    assert [h["step"] for h in trainer.segmenter.training["history"]] == [3, 6]


def count_iou_predictions(monkeypatch) -> list:
    """The shapes of the planes the trainer predicts to score IoU (not the preview's prediction)."""
    import napari_pixrel.trainer as trainer_module

    predicted = []

    def counted(segmenter, plane, window, *args, **kwargs):
        predicted.append(plane[window].shape[:2])
        return predict_window(segmenter, plane, window, *args, **kwargs)

    monkeypatch.setattr(trainer_module, "predict_window", counted)
    return predicted


def test_a_plane_larger_than_a_tile_is_scored_where_it_is_painted(sample, monkeypatch):
    """A few strokes on a large slide cost their region at each evaluation, not the slide, with the IoU of
    predicting the whole slide."""
    images, labels = sample[0], sample[2]
    slide = np.tile(images[0], (4, 3))  # 1024 x 768
    strokes = np.zeros(slide.shape, labels.dtype)
    strokes[:256, 256:512] = labels[0]  # painted in one 256 x 256 region
    trainer = Trainer(painted_planes(slide, strokes), replace(FAST, steps=2, eval_every=0), model=TINY,
                      class_names=list(CLASS_NAMES))
    for _ in trainer.run():
        pass
    predicted = count_iou_predictions(monkeypatch)
    _, train_iou = trainer.evaluate()
    assert predicted == [tuple(np.ptp(np.nonzero(strokes), axis=1) + 1)]  # the strokes' box, not 1024 x 768
    whole = ConfusionMatrix(3)
    whole.update(predict(trainer.segmenter, slide).labels, strokes)
    for name, iou in whole.as_dict(list(CLASS_NAMES)).items():
        assert abs(train_iou[name] - iou) < 0.01, (name, train_iou[name], iou)


def test_planes_in_the_preview_are_scored_on_its_prediction(sample, monkeypatch):
    """An evaluation predicts each image once: painted planes found in the preview (here in reverse order) are
    read from its prediction, with the IoU of predicting them on their own."""
    predicted = count_iou_predictions(monkeypatch)
    trainer = make(sample, replace(FAST, eval_every=0), val=planes(sample, (4,)), preview=sample[0][[1, 0]])
    final = list(trainer.run())[-1]
    assert len(predicted) == 1  # only the validation plane is outside the preview
    assert final.prediction.labels.shape == (2, 256, 256)
    predicted.clear()
    assert trainer.evaluate() == (final.val_iou, final.train_iou)
    assert len(predicted) == 3  # two training planes, one validation plane


def test_a_preview_cut_from_a_region_of_the_planes_is_scored_there(sample, monkeypatch):
    """The dock previews the region around the strokes of a large slide: the IoU is read from that preview's
    prediction, not predicted a second time; a plane painted outside the region is predicted on its own."""
    images, labels = sample[0], sample[2]
    slide = np.tile(images[0], (4, 3))  # 1024 x 768
    strokes = np.zeros(slide.shape, labels.dtype)
    strokes[:256, 256:512] = labels[0]
    window = (slice(0, 320), slice(192, 576))
    other = np.zeros_like(strokes)
    other[900:, :100] = strokes[:124, 256:356]  # painted where the window is not
    predicted = count_iou_predictions(monkeypatch)
    config = replace(FAST, steps=2, eval_every=0)
    trainer = Trainer(painted_planes(slide, strokes) + painted_planes(slide[::-1], other), config, model=TINY,
                      class_names=list(CLASS_NAMES), preview=slide[window], preview_window=window)
    final = list(trainer.run())[-1]
    assert final.prediction.labels.shape == (320, 384)
    assert predicted == [tuple(np.ptp(np.nonzero(other), axis=1) + 1)]  # only the plane painted outside it
    alone = Trainer(painted_planes(slide, strokes), config, model=TINY, class_names=list(CLASS_NAMES))
    alone.segmenter.net.load_state_dict(trainer.segmenter.net.state_dict())
    region = ConfusionMatrix(3)
    region.update(final.prediction.labels, strokes[window])
    whole = alone.evaluate()[1]
    for name, iou in region.as_dict(list(CLASS_NAMES)).items():
        assert abs(whole[name] - iou) < 0.01, (name, whole[name], iou)


@pytest.mark.parametrize(("loss", "warp"), [("none", False), ("intra", False), ("inter", False), ("intra", True)])
def test_same_seed_same_weights(sample, loss, warp):
    cfg = replace(FAST, loss=loss, steps=3, eval_every=0, warp=warp)
    results = []
    for _ in range(2):
        trainer = make(sample, cfg)
        losses = [r.loss for r in trainer.run()]
        results.append((losses, trainer.segmenter.net.state_dict()))
    assert results[0][0] == results[1][0]
    for k, v in results[0][1].items():
        assert torch.equal(v, results[1][1][k]), k


def test_relation_modes_add_a_relation_term(sample):
    for loss in ("intra", "inter"):
        final = list(make(sample, replace(FAST, loss=loss, steps=2, eval_every=0)).run())[-1]
        assert final.relation_weight == FAST.relation_weight
        expected = final.ce + FAST.relation_weight * final.relation
        assert final.relation > 0 and final.loss == pytest.approx(expected, rel=1e-5)
    final = list(make(sample, replace(FAST, loss="none", steps=2, eval_every=0)).run())[-1]
    assert final.relation == 0.0


def test_warmup_and_ramp_schedule_the_relation_weight():
    cfg = TrainConfig(loss="intra", relation_weight=0.5, warmup_steps=10, ramp_steps=10)
    assert cfg.weight_at(10) == 0 and cfg.weight_at(15) == pytest.approx(0.25) and cfg.weight_at(40) == 0.5
    assert TrainConfig(loss="none", relation_weight=1).weight_at(5) == 0


def test_slow_steps_are_evaluated_first_after_first_eval_seconds_of_training(sample, monkeypatch):
    """Where a step takes seconds (fp32 on a CPU without native bf16), the first prediction comes after
    ``first_eval_seconds`` of training, not after ``eval_every`` steps; later ones keep the step count, as do
    fast steps."""
    import napari_pixrel.trainer as trainer_module

    class Clock:  # every reading is 1 s after the last: a step takes 1 s of training, an evaluation 1 s
        now = 0.0

        @classmethod
        def perf_counter(cls):
            cls.now += 1.0
            return cls.now

    monkeypatch.setattr(trainer_module, "time", Clock)
    for seconds, expected in ((2.5, [3, 4, 8]), (4.0, [4, 8]), (100.0, [4, 8]), (0.0, [4, 8])):
        config = replace(FAST, steps=9, eval_every=4, first_eval_seconds=seconds)
        reports = list(make(sample, config, val=planes(sample, (4,))).run())
        assert [r.step for r in reports if r.val_iou is not None and not r.finished] == expected, seconds
    with pytest.raises(ValueError, match="first_eval_seconds"):
        TrainConfig(first_eval_seconds=-1)


def test_eval_share_spaces_evaluations_that_cost_many_steps(sample):
    large = np.tile(sample[0][4], (4, 4))  # predicting it costs far more than a step on 64-pixel patches
    config = replace(FAST, steps=12, eval_every=1, eval_share=0.2)
    reports = list(make(sample, config, val=planes(sample, (4,)), preview=large).run())
    evaluated = [r.step for r in reports if r.val_iou is not None and not r.finished]
    assert evaluated == [1]  # the next would wait for 4 times the first evaluation's time of training
    assert reports[-1].finished and reports[-1].prediction.labels.shape == large.shape
    with pytest.raises(ValueError, match="eval_share"):
        TrainConfig(eval_share=1.0)


def test_relation_decay_lowers_the_weight_to_zero_over_the_budget(sample):
    cfg = TrainConfig(loss="intra", relation_weight=2.0, relation_decay=True)
    assert cfg.weight_at(1, 0.0) == 2.0 and cfg.weight_at(300, 0.5) == pytest.approx(1.0)
    assert cfg.weight_at(600, 1.0) == pytest.approx(0.0)
    weights = [r.relation_weight for r in make(sample, replace(FAST, loss="intra", relation_decay=True, steps=4,
                                                               eval_every=0)).run()]
    assert weights[:4] == pytest.approx([0.5 * (1 + math.cos(math.pi * s / 4)) for s in range(4)])


def test_cosine_matches_torchs_over_steps_and_decays_over_a_time_budget(sample):
    by_steps = make(sample, replace(FAST, schedule="cosine", steps=10, lr=0.01))
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.01)
    reference = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 10)
    for step in range(10):
        assert by_steps.learning_rate(step, elapsed=999.0) == pytest.approx(opt.param_groups[0]["lr"], abs=1e-12)
        opt.step()
        reference.step()
    by_time = make(sample, replace(FAST, schedule="cosine", steps=None, minutes=2.0, lr=0.01))
    assert [by_time.learning_rate(5, s) for s in (0, 60, 120, 500)] == pytest.approx([0.01, 0.005, 0, 0])
    both = make(sample, replace(FAST, schedule="cosine", steps=100, minutes=2.0, lr=0.01))
    assert both.learning_rate(50, 1.0) == both.learning_rate(1, 60.0) == pytest.approx(0.005)
    assert make(sample, replace(FAST, schedule="constant", lr=0.01)).learning_rate(5, 60.0) == 0.01


def test_pause_resume_and_stop_act_between_steps(sample):
    trainer = make(sample, replace(FAST, steps=50, eval_every=0))
    run = trainer.run()
    assert next(run).step == 1
    trainer.pause()
    resumed = threading.Timer(0.3, trainer.resume)
    resumed.start()
    assert next(run).step == 2  # blocked while paused, then continued
    assert not trainer.paused
    trainer.stop()
    rest = list(run)
    assert len(rest) == 1 and rest[0].finished and rest[0].step == 2


def test_stop_while_paused_finishes(sample):
    trainer = make(sample, replace(FAST, steps=50, eval_every=0))
    run = trainer.run()
    next(run)
    trainer.pause()
    threading.Timer(0.2, trainer.stop).start()
    assert [r.finished for r in run] == [True]


def test_time_budget(sample):
    reports = list(make(sample, replace(FAST, steps=None, minutes=0.02, eval_every=0)).run())
    assert 1.2 <= reports[-1].elapsed < 1.2 + 3 * reports[0].elapsed + 1


def test_nan_loss_stops_and_keeps_the_last_good_weights(sample):
    trainer = make(sample, replace(FAST, steps=20, eval_every=0, ema=EMA_DECAY))
    run = trainer.run()
    next(run)
    good = {k: v.clone() for k, v in trainer.net.state_dict().items()}
    averaged = {k: v.clone() for k, v in trainer.segmenter.net.state_dict().items()}
    trainer.net.logit_head.bias.data.fill_(float("nan"))
    final = list(run)[-1]
    assert final.finished and "NaN" in final.message and final.step == 1
    state = trainer.net.state_dict()
    for k, v in good.items():
        if k != "logit_head.bias":
            assert torch.equal(state[k], v), k
    for k, v in trainer.segmenter.net.state_dict().items():  # the kept average saw no bad step
        assert torch.equal(v, averaged[k]), k


# a rate this high makes the tiny model's validation score jump about, so an earlier evaluation beats the last
# (this seed, without the warp, in fp32 whether or not the CPU computes bf16: 0.26 at step 8, 0.03 at step 12)
JUMPY = replace(FAST, steps=12, eval_every=2, lr=0.05, warp=False, seed=1, mixed_precision=False)


def test_keep_best_ends_on_the_weights_that_scored_best_on_validation(sample, tmp_path):
    trainer = make(sample, JUMPY, val=planes(sample, (4,)), preview=sample[0][4])
    final = list(trainer.run())[-1]
    scores = [h["val_iou"]["mIoU"] for h in trainer.segmenter.training["history"]]
    assert final.kept_step < final.step == 12 and final.val_iou["mIoU"] == max(scores) > scores[-1]
    assert f"kept the weights of step {final.kept_step}, the best on validation" in final.message
    assert trainer.evaluate()[0] == final.val_iou  # the model holds those weights, BatchNorm statistics included
    np.testing.assert_array_equal(final.prediction.labels, predict(trainer.segmenter, sample[0][4]).labels)
    save_model(trainer.segmenter, tmp_path / "m.pixrel")
    assert load_model(tmp_path / "m.pixrel").training["kept"]["step"] == final.kept_step


def test_keep_last_ends_on_the_last_weights(sample):
    trainer = make(sample, replace(JUMPY, keep="last"), val=planes(sample, (4,)))
    final = list(trainer.run())[-1]
    history = trainer.segmenter.training["history"]
    assert final.kept_step == final.step and not final.message and "kept" not in trainer.segmenter.training
    assert trainer.evaluate()[0] == final.val_iou == history[-1]["val_iou"]
    assert final.val_iou["mIoU"] < max(h["val_iou"]["mIoU"] for h in history)  # the same run as above


def test_without_validation_keep_best_keeps_the_last_weights(sample):
    trainer = make(sample, JUMPY)
    final = list(trainer.run())[-1]
    assert final.kept_step == final.step and final.val_iou is None and not final.message


def test_continue_training_starts_from_the_old_model(sample):
    first = make(sample, replace(FAST, steps=3, eval_every=3))
    list(first.run())
    before = {k: v.clone() for k, v in first.segmenter.net.state_dict().items()}
    more = Trainer(planes(sample, (0, 1, 2)), replace(FAST, steps=3, eval_every=3), start_from=first.segmenter)
    for k, v in more.segmenter.net.state_dict().items():  # its own copy of the trained weights, not new ones
        assert torch.equal(v, before[k]), k
    assert more.segmenter.net is not first.segmenter.net
    assert more.segmenter.normalizer == first.segmenter.normalizer
    assert more.segmenter.class_names == list(CLASS_NAMES)
    list(more.run())
    assert [h["step"] for h in more.segmenter.training["history"]] == [3, 6]
    for k, v in first.segmenter.net.state_dict().items():  # the old model is not modified
        assert torch.equal(v, before[k])


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda lab: np.zeros_like(lab), "nothing is painted"),
        (lambda lab: (lab > 0).astype(lab.dtype), "only one class"),
    ],
)
def test_unusable_labels_are_refused(sample, mutate, match):
    images, labels, _ = sample
    with pytest.raises(ValueError, match=match):
        Trainer(painted_planes(images[0], mutate(labels[0])), FAST, model=TINY)


def test_class_painted_only_in_validation_is_refused(sample):
    images, labels, _ = sample
    train = painted_planes(images[0], np.where(labels[0] == 3, 0, labels[0]))
    with pytest.raises(ValueError, match="only in the validation"):
        Trainer(train, FAST, model=TINY, val=painted_planes(images[1], labels[1]), class_names=list(CLASS_NAMES))


@pytest.mark.slow
@pytest.mark.parametrize("kind,floor", [(1, 0.5), (2, 0.35)], ids=["full", "scribbles"])
def test_short_training_learns_well_above_chance(sample, kind, floor):
    images, truth, _ = sample
    cfg = TrainConfig(steps=60, patch_size=128, eval_every=0, seed=0)
    trainer = Trainer(planes(sample, (0, 1, 2, 3), kind), cfg, model=TINY, class_names=list(CLASS_NAMES))
    list(trainer.run())
    cm = ConfusionMatrix(3)
    for i in (4, 5):
        cm.update(predict(trainer.segmenter, images[i]).labels, truth[i])
    # chance (uniform guess) gives an mIoU near 0.2 on these class fractions; 2% scribbles learn slower (the
    # default, "auto", trains them with CE and the smoothness loss, as the warp is on: relation-loss.md)
    assert cm.miou() > floor, cm.as_dict(CLASS_NAMES)


@pytest.mark.parametrize("native", [False, True])
def test_bf16_autocast_only_where_the_device_computes_bf16_natively(sample, monkeypatch, native):
    """An AVX2-only CPU emulates bf16 (13 times slower than fp32 here): mixed precision trains in fp32 there."""
    import napari_pixrel.trainer as trainer_module

    monkeypatch.setattr(trainer_module, "native_bf16", lambda device: native)
    trainer = make(sample, replace(FAST, steps=1, eval_every=0, mixed_precision=True))
    dtypes = []
    trainer.net.register_forward_hook(lambda module, args, out: dtypes.append(out[0].dtype))
    list(trainer.run())
    assert dtypes == [torch.bfloat16 if native else torch.float32]


def test_warp_changes_what_the_network_sees(sample):
    first = [next(iter(make(sample, replace(FAST, steps=1, eval_every=0, warp=w)).run())).loss for w in (False, True)]
    assert first[0] != first[1]


def test_ema_keeps_a_moving_average_of_the_trained_weights(sample):
    cfg = replace(FAST, steps=5, eval_every=0, ema=0.6)
    trainer = make(sample, cfg)
    assert trainer.segmenter.net is not trainer.net
    expected = {k: v.clone() for k, v in trainer.net.state_dict().items()}
    for report in trainer.run():
        if report.finished:
            break
        decay = min(cfg.ema, (1 + report.step) / (10 + report.step))
        for k, v in trainer.net.state_dict().items():
            expected[k] = expected[k].lerp(v, 1 - decay) if v.is_floating_point() else v.clone()
    averaged = trainer.segmenter.net.state_dict()
    for k, v in expected.items():
        torch.testing.assert_close(averaged[k], v, msg=k)
    plain = make(sample, replace(cfg, ema=0.0))  # the average does not change what is trained
    list(plain.run())
    assert plain.segmenter.net is plain.net
    for k, v in plain.net.state_dict().items():
        assert torch.equal(v, trainer.net.state_dict()[k]), k
    assert not torch.equal(averaged["logit_head.weight"], trainer.net.state_dict()["logit_head.weight"])


def test_ema_model_is_what_evaluation_scores_and_keep_best_restores(sample):
    trainer = make(sample, replace(JUMPY, ema=0.5), val=planes(sample, (4,)))
    final = list(trainer.run())[-1]
    assert trainer.evaluate()[0] == final.val_iou  # the kept (averaged) weights, as reported
    assert trainer.segmenter.training["config"]["ema"] == 0.5


@pytest.mark.parametrize("budget", [{"steps": 0}, {"steps": -5}, {"steps": None, "minutes": 0.0},
                                    {"steps": 10, "minutes": -1.0}])
def test_an_empty_budget_is_refused_before_training(budget):
    with pytest.raises(ValueError, match="at least 1 step"):
        TrainConfig(**budget)


def test_ema_must_be_a_decay_below_one():
    with pytest.raises(ValueError, match="ema"):
        TrainConfig(ema=1.0)


def test_smoothness_adds_its_weighted_term_to_the_loss(sample):
    plain, once, twice = (list(make(sample, replace(FAST, loss="none", steps=1, eval_every=0, smoothness=w)).run())[-1]
                          for w in (0, 1.0, 2.0))
    for report in (once, twice):  # the same first batch and weights
        assert report.ce == pytest.approx(plain.ce, rel=1e-5)
    assert plain.loss == pytest.approx(plain.ce, rel=1e-5) and once.loss > once.ce + 1e-3
    assert twice.loss - twice.ce == pytest.approx(2 * (once.loss - once.ce), rel=1e-2)


@pytest.mark.parametrize("weight", [-1.0, float("nan"), "3"])
def test_smoothness_must_be_a_weight(weight):
    with pytest.raises(ValueError, match="smoothness"):
        TrainConfig(smoothness=weight)
