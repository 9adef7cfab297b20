import math

import pytest

from timeblind.evaluation.grounding import (
    chance_localisation,
    mean_iou,
    question_metrics,
    recall_at_iou,
    summarise_seeds,
    temporal_iou,
    tvg_f1,
)
from timeblind.core.stats import wilson_interval


def test_iou_partial_contained_and_touching():
    assert temporal_iou([2, 6], [4, 10]) == pytest.approx(2 / 8)  # inter 2, union 4 + 6 - 2
    assert temporal_iou([4, 10], [2, 6]) == pytest.approx(2 / 8)
    assert temporal_iou([3, 5], [0, 10]) == pytest.approx(0.2)
    assert temporal_iou([0, 5], [5, 10]) == 0.0  # end exclusive: touching spans do not overlap
    assert temporal_iou([1.5, 4.5], [1.5, 4.5]) == 1.0


def test_iou_empty_inverted_or_missing_prediction_is_zero():
    assert temporal_iou([6, 2], [0, 10]) == 0.0  # would be positive if |e - s| were used
    assert temporal_iou([3, 3], [0, 10]) == 0.0
    assert temporal_iou(None, [0, 10]) == 0.0


def test_iou_rejects_bad_true_span():
    with pytest.raises(ValueError, match="ground-truth span"):
        temporal_iou([0, 1], [5, 5])
    with pytest.raises(ValueError, match="span is"):
        temporal_iou([0, 1, 2], [0, 5])


# IoUs against [0, 10): 0.5, 0.3, 0.7, 0.4 (three exactly on a threshold)
PREDS = [[0, 5], [0, 3], [0, 7], [2, 6]]
TRUES = [[0, 10]] * 4


def test_recall_counts_boundary_hits():
    # A strict ">" would give 0.75 / 0.25 / 0.
    assert recall_at_iou(PREDS, TRUES) == {0.3: 1.0, 0.5: 0.5, 0.7: 0.25}
    assert mean_iou(PREDS, TRUES) == pytest.approx(1.9 / 4)


def test_recall_boundary_survives_float_rounding():
    pred, true = [0.1, 0.1 + 0.7 * 3.0], [0.1, 3.1]  # IoU 0.7 exactly; floats give 0.6999999999999998
    assert temporal_iou(pred, true) < 0.7
    assert recall_at_iou([pred], [true], thresholds=[0.7]) == {0.7: 1.0}


def test_tvg_f1_is_hit_rate_averaged_over_thresholds():
    # hits at 0.1 / 0.3 / 0.5 / 0.7: 1, 1, 0.5, 0.25
    assert tvg_f1(PREDS, TRUES) == pytest.approx((1 + 1 + 0.5 + 0.25) / 4)


def test_list_metrics_validate():
    with pytest.raises(ValueError, match="3 predictions for 4"):
        recall_at_iou(PREDS[:3], TRUES)
    with pytest.raises(ValueError, match="no queries"):
        mean_iou([], [])
    with pytest.raises(ValueError, match="thresholds"):
        recall_at_iou(PREDS, TRUES, thresholds=[1.5])


def _rec(kind, pred_spans, true_spans, pred_text="", true_text=""):
    return dict(kind=kind, pred_spans=pred_spans, true_spans=true_spans, pred_text=pred_text, true_text=true_text)


RECORDS = [
    _rec("when", [[0, 5]], [[0, 10]]),  # IoU 0.5
    _rec("when", [], [[0, 10]]),  # missing prediction: IoU 0
    _rec("what", [[0, 10]], [[0, 10]], " Circle ", "circle"),  # right, grounded
    _rec("refer", [[0, 4]], [[0, 10]], "square", "triangle"),  # wrong, IoU 0.4: not grounded
    _rec("order", [[0, 10], [20, 21]], [[0, 10], [20, 30]], "A then B", "a then b"),  # right, 2nd IoU 0.1
    _rec("order", [[0, 10], [20, 30]], [[0, 10], [20, 30]], "b then a", "a then b"),  # wrong, grounded
]


def test_question_metrics_hand_computed():
    m = question_metrics(RECORDS)
    assert m["n_when"] == 2
    assert (m["r1_iou0.3"], m["r1_iou0.5"], m["r1_iou0.7"]) == (0.5, 0.5, 0.0)
    assert (m["r1_iou0.5_lo"], m["r1_iou0.5_hi"]) == pytest.approx(wilson_interval(1, 2))
    assert m["miou"] == pytest.approx(0.25)
    assert m["miou_lo"] <= m["miou"] <= m["miou_hi"]
    assert 0.0 <= m["miou_lo"] and m["miou_hi"] <= 0.5
    assert m["tvg_f1"] == pytest.approx((0.5 + 0.5 + 0.5 + 0.0) / 4)
    assert (m["answer_acc"], m["n_answer"]) == (0.5, 4)
    assert (m["answer_acc_lo"], m["answer_acc_hi"]) == pytest.approx(wilson_interval(2, 4))
    assert (m["answer_acc_what"], m["answer_acc_refer"], m["answer_acc_order"]) == (1.0, 0.0, 0.5)
    # grounded: the "what" (right) and the second "order" (wrong); not refer (0.4) or the first order (0.1)
    assert (m["answer_acc_grounded"], m["n_grounded"]) == (0.5, 2)
    # pairs: .5, 0 | 1 | .4 | 1, .1 | 1, 1
    assert m["span_iou"] == pytest.approx(5.0 / 8)
    assert question_metrics(RECORDS) == m  # fixed bootstrap seed


def test_question_metrics_empty_subsets_are_nan():
    m = question_metrics([_rec("what", [], [[0, 4]], "x", "y")])
    assert m["n_when"] == 0 and math.isnan(m["r1_iou0.5"]) and math.isnan(m["miou"]) and math.isnan(m["tvg_f1"])
    assert m["n_grounded"] == 0 and math.isnan(m["answer_acc_grounded"])
    assert math.isnan(m["answer_acc_refer"]) and m["answer_acc"] == 0.0
    assert m["span_iou"] == 0.0
    # no true spans: not counted as grounded (nothing to verify)
    assert question_metrics([_rec("what", [], [], "x", "x")])["n_grounded"] == 0


def test_question_metrics_validate():
    with pytest.raises(ValueError, match=r"unknown kind 'where'.*what, when, refer, order"):
        question_metrics([_rec("where", [], [[0, 1]])])
    with pytest.raises(ValueError, match="missing true_text"):
        question_metrics([dict(kind="what", pred_spans=[], true_spans=[], pred_text="a")])
    with pytest.raises(ValueError, match="needs a ground-truth span"):
        question_metrics([_rec("when", [[0, 1]], [])])
    with pytest.raises(ValueError, match=r"record 0 true_spans\[0\]"):
        question_metrics([_rec("when", [[0, 1]], [[4, 2]])])


def test_chance_matches_analytic_values():
    # Length 5 in a 10-frame video, start u ~ U[0, 5] against [0, 5): IoU = (5 - u) / (5 + u),
    # so IoU >= θ  <=>  u <= 5(1 - θ)/(1 + θ): R@0.5 = 1/3; mIoU = 2 ln 2 - 1.
    c = chance_localisation([[0, 5]] * 10, duration=10, samples=3000)
    for t in (0.3, 0.5, 0.7):
        assert c[f"r1_iou{t}"] == pytest.approx((1 - t) / (1 + t), abs=0.015)
    assert c["miou"] == pytest.approx(2 * math.log(2) - 1, abs=0.01)
    assert c == chance_localisation([[0, 5]] * 10, duration=10, samples=3000)


def test_chance_full_length_and_per_query_durations():
    c = chance_localisation([[0, 10], [0, 4]], duration=[10, 4], samples=50)
    # lengths drawn from {10, 4}, capped at the duration: query 2 always exact; query 1 exact half the time
    assert c["r1_iou0.7"] == pytest.approx(0.75, abs=0.15)
    with pytest.raises(ValueError, match="1 durations for 2"):
        chance_localisation([[0, 10], [0, 4]], duration=[10])
    with pytest.raises(ValueError, match="positive"):
        chance_localisation([[0, 1]], duration=0)


def test_summarise_seeds():
    s = summarise_seeds([{"a": 0.9, "b": 1.0}, {"a": 1.0, "b": 1.0}], ["a"])
    assert s["n_seeds"] == 2 and s["a"] == pytest.approx(0.95) and "b" not in s
    assert (s["a_lo"], s["a_hi"]) == (pytest.approx(0.3147, abs=1e-3), pytest.approx(1.5853, abs=1e-3))
    one = summarise_seeds([{"a": 0.5, "a_lo": 0.4, "a_hi": 0.6, "b": 0.2}], ["a", "b"])
    assert (one["a"], one["a_lo"], one["a_hi"]) == (0.5, 0.4, 0.6)
    assert one["b"] == 0.2 and math.isnan(one["b_lo"]) and math.isnan(one["b_hi"])
    with pytest.raises(ValueError, match=r"'a' missing from seed result\(s\) \[1\]"):
        summarise_seeds([{"a": 1}, {}], ["a"])
    with pytest.raises(ValueError, match="no seeds"):
        summarise_seeds([], ["a"])
