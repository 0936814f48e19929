"""The label-efficiency study on the sample data, with a budget of a few steps per run."""

import pytest

from napari_pixrel.data import painted_planes
from napari_pixrel.model import ModelConfig
from napari_pixrel.sample_data import CLASS_NAMES, load_sample_data
from napari_pixrel.study import Study, StudyPoint, rotations_plan, verdict
from napari_pixrel.trainer import TrainConfig

TINY = TrainConfig(loss="none", steps=3, batch_size=2, patch_size=64, mixed_precision=False, cpu_threads=1)
SMALL_NET = ModelConfig(n_classes=3, encoder="resnet18", decoder_channels=(32, 16, 16, 8, 8))


@pytest.fixture(scope="module")
def planes():
    images, _, scribbles = load_sample_data()
    return painted_planes(images[:4], scribbles[:4])


def test_rotations_hold_out_different_planes_and_never_train_on_them():
    plan = rotations_plan(6, 3)
    assert [held for held, _ in plan] == [5, 3, 1]
    for held, order in plan:
        assert sorted(order + [held]) == list(range(6))
    assert rotations_plan(6, 3) == plan  # deterministic


def test_study_gives_a_curve_and_a_verdict(planes):
    study = Study(planes, CLASS_NAMES, TINY, SMALL_NET, rotations=2)
    reports = list(study.run())
    final = reports[-1]
    assert final.finished and final.progress == 1.0
    result = final.result
    assert [p.n_train for p in result.points] == [1, 2, 3]
    assert all(p.n_runs == 2 and 0 <= p.mean <= 1 for p in result.points)
    assert set(result.points[0].per_class) == set(CLASS_NAMES)
    assert result.verdict in {"flattened", "still climbing"}  # three points: enough to read a trend
    assert (result.verdict, result.sentence) == verdict(list(result.points), result.threshold)
    assert "3 labeled images" in result.sentence and "points" in result.sentence
    progress = [r.progress for r in reports]
    assert progress == sorted(progress)


def test_stop_between_runs_gives_no_verdict(planes):
    study = Study(planes, CLASS_NAMES, TINY, SMALL_NET, rotations=2)
    reports = []
    for report in study.run():
        reports.append(report)
        if report.result.points:
            study.stop()
    final = reports[-1]
    assert final.finished and final.result.verdict == "stopped"
    assert len(final.result.points) == 1 and final.message == "study stopped"


def test_verdict_threshold_in_words():
    def point(m, mean):
        return StudyPoint(m, mean, 0.01, 3, {})

    kind, sentence = verdict([point(3, 0.70), point(4, 0.71)], threshold=0.02)
    assert kind == "flattened" and "+1.0 points" in sentence and "2-point threshold" in sentence
    kind, sentence = verdict([point(3, 0.60), point(4, 0.65)], threshold=0.02)
    assert kind == "still climbing" and "+5.0 points" in sentence
    assert verdict([point(1, 0.5)], 0.02)[0] == "too few images"


def test_study_needs_two_planes(planes):
    with pytest.raises(ValueError, match="at least 2 painted"):
        Study(planes[:1], CLASS_NAMES, TINY)
