"""Temporal-grounding metrics: IoU, R@1 at IoU, mIoU, E.T.Bench TVG "F1", grounded QA accuracy.

Spans are ``(start, end)`` in frames, end exclusive; floats are allowed. Definitions follow
docs/methods.md sections 2 (Grounded-VideoLLM: R@1 at IoU {0.3, 0.5, 0.7}, mIoU) and 3
(D2VLM / E.T.Bench TVG: single-prediction hit rate averaged over IoU {0.1, 0.3, 0.5, 0.7}).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from timeblind.core.stats import t_interval, wilson_interval
from timeblind.data.questions import KINDS

R1_THRESHOLDS = (0.3, 0.5, 0.7)
TVG_THRESHOLDS = (0.1, 0.3, 0.5, 0.7)
ANSWER_KINDS = ("what", "refer", "order")
GROUNDED_IOU = 0.5
# IoU at a threshold such as 0.7 can come out as 0.6999999999999998 from float spans; a hit
# exactly on the boundary must count as one.
_EPS = 1e-9

Span = Sequence[float]


def _span(span: Span, what: str) -> tuple[float, float]:
    try:
        start, end = (float(v) for v in span)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: a span is (start, end), got {span!r}") from None
    if not (math.isfinite(start) and math.isfinite(end)):
        raise ValueError(f"{what}: span {span!r} is not finite")
    return start, end


def _true_span(span: Span, what: str) -> tuple[float, float]:
    start, end = _span(span, what)
    if end <= start:
        raise ValueError(f"{what}: ground-truth span {span!r} is empty or inverted (end <= start)")
    return start, end


def temporal_iou(pred: Span | None, true: Span) -> float:
    """Intersection over union of two ``[start, end)`` intervals.

    A missing (None), empty or inverted prediction has IoU 0; an empty true span is an error.
    """
    ts, te = _true_span(true, "true")
    if pred is None:
        return 0.0
    ps, pe = _span(pred, "pred")
    if pe <= ps:
        return 0.0
    inter = max(0.0, min(pe, te) - max(ps, ts))
    return inter / ((pe - ps) + (te - ts) - inter)


def _check_thresholds(thresholds: Sequence[float]) -> tuple[float, ...]:
    thresholds = tuple(float(t) for t in thresholds)
    if not thresholds or any(not 0 < t <= 1 for t in thresholds):
        raise ValueError(f"thresholds must be a non-empty list of values in (0, 1], got {thresholds}")
    return thresholds


def _ious(preds: Sequence[Span | None], trues: Sequence[Span]) -> np.ndarray:
    if len(preds) != len(trues):
        raise ValueError(f"{len(preds)} predictions for {len(trues)} ground-truth spans")
    if not trues:
        raise ValueError("no queries: need at least one (pred, true) pair")
    return np.array([temporal_iou(p, t) for p, t in zip(preds, trues)], float)


def _hits(ious: np.ndarray, threshold: float) -> np.ndarray:
    return ious >= threshold - _EPS


def recall_at_iou(
    preds: Sequence[Span | None], trues: Sequence[Span], thresholds: Sequence[float] = R1_THRESHOLDS
) -> dict[float, float]:
    """R@1 at each IoU threshold: share of queries whose one prediction has IoU >= threshold."""
    thresholds = _check_thresholds(thresholds)
    ious = _ious(preds, trues)
    return {t: float(_hits(ious, t).mean()) for t in thresholds}


def mean_iou(preds: Sequence[Span | None], trues: Sequence[Span]) -> float:
    """Mean temporal IoU over queries (missing prediction = 0)."""
    return float(_ious(preds, trues).mean())


def tvg_f1(
    preds: Sequence[Span | None], trues: Sequence[Span], thresholds: Sequence[float] = TVG_THRESHOLDS
) -> float:
    """E.T.Bench TVG "F1": single-prediction hit rate averaged over the IoU thresholds.

    With one prediction and one target, precision = recall = hit, so F1 is the hit rate.
    """
    return float(np.mean(list(recall_at_iou(preds, trues, thresholds).values())))


def _key(threshold: float) -> str:
    return f"r1_iou{threshold:g}"  # MLflow metric names allow no "@"


def _bootstrap_mean(values: np.ndarray, resamples: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap 95% interval of the mean."""
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def _acc(out: dict, key: str, correct: Sequence[bool], with_ci: bool = True) -> None:
    n = len(correct)
    out[key] = float(np.mean(correct)) if n else math.nan
    if with_ci:
        out[f"{key}_lo"], out[f"{key}_hi"] = wilson_interval(int(sum(correct)), n) if n else (math.nan, math.nan)


def _normalise(text: str) -> str:
    return str(text).strip().lower()


def _check_record(i: int, record: Mapping) -> None:
    if not isinstance(record, Mapping):
        raise ValueError(f"record {i}: expected a dict, got {type(record).__name__}")
    kind = record.get("kind")
    if kind not in KINDS:
        raise ValueError(f"record {i}: unknown kind {kind!r}; allowed kinds: {', '.join(KINDS)}")
    required = ("pred_spans", "true_spans") + (() if kind == "when" else ("pred_text", "true_text"))
    missing = [k for k in required if k not in record]
    if missing:
        raise ValueError(f"record {i} (kind {kind!r}): missing {', '.join(missing)}")
    if kind == "when" and not record["true_spans"]:
        raise ValueError(f"record {i}: a 'when' question needs a ground-truth span")
    for j, span in enumerate(record["true_spans"]):
        _true_span(span, f"record {i} true_spans[{j}]")


def question_metrics(records: Sequence[Mapping]) -> dict[str, float | int]:
    """Localisation, answer and grounded-answer metrics over a list of question records.

    Each record: ``{"kind": "what"|"when"|"refer"|"order", "pred_spans": [[s, e], ...],
    "true_spans": [[s, e], ...], "pred_text": str, "true_text": str}``.

    - "when" questions: R@1 at IoU {0.3, 0.5, 0.7} with Wilson intervals, mIoU with a percentile
      bootstrap interval, TVG F1, ``n_when``; pred_spans[0] vs true_spans[0], missing = IoU 0.
    - other kinds: ``answer_acc`` (exact match after strip/lower) with Wilson interval, ``n_answer``,
      and ``answer_acc_<kind>`` / ``n_<kind>``.
    - ``answer_acc_grounded``: answer accuracy among non-"when" questions with at least one true
      span, every true span matched by the same-index prediction at IoU >= 0.5; ``n_grounded``.
    - ``span_iou``: mean IoU over every true span of every question vs the same-index prediction
      (missing = 0; predictions beyond the true spans are ignored).

    Metrics over an empty subset are NaN.
    """
    for i, record in enumerate(records):
        _check_record(i, record)
    out: dict[str, float | int] = {}

    when = [r for r in records if r["kind"] == "when"]
    preds = [r["pred_spans"][0] if r["pred_spans"] else None for r in when]
    trues = [r["true_spans"][0] for r in when]
    out["n_when"] = len(when)
    if when:
        ious = _ious(preds, trues)
        for t in R1_THRESHOLDS:
            hits = _hits(ious, t)
            out[_key(t)] = float(hits.mean())
            out[f"{_key(t)}_lo"], out[f"{_key(t)}_hi"] = wilson_interval(int(hits.sum()), len(hits))
        out["miou"] = float(ious.mean())
        out["miou_lo"], out["miou_hi"] = _bootstrap_mean(ious)
        out["tvg_f1"] = float(np.mean([_hits(ious, t).mean() for t in TVG_THRESHOLDS]))
    else:
        for t in R1_THRESHOLDS:
            out[_key(t)] = out[f"{_key(t)}_lo"] = out[f"{_key(t)}_hi"] = math.nan
        out["miou"] = out["miou_lo"] = out["miou_hi"] = out["tvg_f1"] = math.nan

    answer = [r for r in records if r["kind"] != "when"]
    correct = [_normalise(r["pred_text"]) == _normalise(r["true_text"]) for r in answer]
    _acc(out, "answer_acc", correct)
    out["n_answer"] = len(answer)
    for kind in ANSWER_KINDS:
        subset = [c for r, c in zip(answer, correct) if r["kind"] == kind]
        _acc(out, f"answer_acc_{kind}", subset, with_ci=False)
        out[f"n_{kind}"] = len(subset)

    def grounded(r: Mapping) -> bool:
        p, t = r["pred_spans"], r["true_spans"]
        return bool(t) and all(
            j < len(p) and temporal_iou(p[j], span) >= GROUNDED_IOU - _EPS for j, span in enumerate(t)
        )

    grounded_correct = [c for r, c in zip(answer, correct) if grounded(r)]
    _acc(out, "answer_acc_grounded", grounded_correct)
    out["n_grounded"] = len(grounded_correct)

    pair_ious = [
        temporal_iou(r["pred_spans"][j] if j < len(r["pred_spans"]) else None, span)
        for r in records
        for j, span in enumerate(r["true_spans"])
    ]
    out["span_iou"] = float(np.mean(pair_ious)) if pair_ious else math.nan
    return out


def chance_localisation(
    trues: Sequence[Span],
    duration: float | Sequence[float],
    thresholds: Sequence[float] = R1_THRESHOLDS,
    samples: int = 200,
    seed: int = 0,
) -> dict[str, float]:
    """R@1, mIoU and TVG F1 of a random predictor: the chance reference line for tables.

    For each query and each of ``samples`` draws, a span length is drawn from the true-span
    lengths (capped at the video duration) and placed uniformly at random inside [0, duration).
    ``duration`` is one value for all queries or one per query.
    """
    thresholds = _check_thresholds(thresholds)
    if samples < 1:
        raise ValueError(f"samples={samples}: need at least one")
    spans = np.array([_true_span(t, f"trues[{i}]") for i, t in enumerate(trues)], float).reshape(-1, 2)
    if not len(spans):
        raise ValueError("no ground-truth spans")
    durations = np.asarray(duration, float)
    if durations.ndim == 0:
        durations = np.full(len(spans), float(durations))
    if durations.shape != (len(spans),):
        raise ValueError(f"{durations.size} durations for {len(spans)} ground-truth spans")
    if np.any(~np.isfinite(durations)) or np.any(durations <= 0):
        raise ValueError("durations must be finite and positive")

    rng = np.random.default_rng(seed)
    lengths = spans[:, 1] - spans[:, 0]
    dur = durations[:, None]
    length = np.minimum(rng.choice(lengths, size=(len(spans), samples)), dur)
    start = rng.uniform(0.0, 1.0, size=length.shape) * (dur - length)
    end = start + length
    ts, te = spans[:, :1], spans[:, 1:]
    inter = np.clip(np.minimum(end, te) - np.maximum(start, ts), 0.0, None)
    ious = inter / (length + (te - ts) - inter)

    out = {_key(t): float(_hits(ious, t).mean()) for t in thresholds}
    out["miou"] = float(ious.mean())
    out["tvg_f1"] = float(np.mean([_hits(ious, t).mean() for t in TVG_THRESHOLDS]))
    return out


def summarise_seeds(per_seed: Sequence[Mapping], keys: Sequence[str]) -> dict[str, float | int]:
    """Mean over seeds of each key with a Student-t 95% interval (``<key>``, ``_lo``, ``_hi``).

    With a single seed the interval is that seed's own ``<key>_lo``/``<key>_hi`` when present,
    else NaN. NaN in any seed propagates to the summary.
    """
    if not per_seed:
        raise ValueError("no seeds to summarise")
    out: dict[str, float | int] = {"n_seeds": len(per_seed)}
    for key in keys:
        missing = [i for i, d in enumerate(per_seed) if key not in d]
        if missing:
            raise ValueError(f"key {key!r} missing from seed result(s) {missing}")
        values = [float(d[key]) for d in per_seed]
        out[key] = float(np.mean(values))
        if len(values) >= 2:
            out[f"{key}_lo"], out[f"{key}_hi"] = t_interval(values)
        else:
            only = per_seed[0]
            out[f"{key}_lo"] = float(only.get(f"{key}_lo", math.nan))
            out[f"{key}_hi"] = float(only.get(f"{key}_hi", math.nan))
    return out


# -- the grounding table ---------------------------------------------------------------------

TABLE_KEYS = ("r1_iou0.3", "r1_iou0.5", "r1_iou0.7", "miou", "tvg_f1", "answer_acc", "answer_acc_grounded")
SHOWN = {"r1_iou0.3": "R@1 IoU≥0.3", "r1_iou0.5": "R@1 IoU≥0.5", "r1_iou0.7": "R@1 IoU≥0.7", "miou": "mIoU",
         "tvg_f1": "TVG F1", "answer_acc": "answers right", "answer_acc_grounded": "right when grounded"}
ROW_NAMES = {"coupled": "coupled: time tokens in the answer", "factorised": "factorised: <evi> then answer",
             "evidence": "factorised + span-mean evidence", "consistency": "factorised + evidence + consistency",
             "fpo_grounding": "factorised + FPO (grounding perturbed)",
             "fpo_text": "factorised + FPO (text perturbed)", "fpo_both": "factorised + FPO (both perturbations)"}


def display_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The table a reader sees: % with the 95% interval where there is one."""
    rows = []
    for r in summary.to_dict("records"):
        row = {"row": r["row"]}
        for key, title in SHOWN.items():
            value, low, high = r.get(key), r.get(f"{key}_lo"), r.get(f"{key}_hi")
            if value is None or value != value:
                row[title] = "–"
            elif low is not None and low == low:
                row[title] = f"{100 * value:.1f} [{100 * low:.1f}, {100 * high:.1f}]"
            else:
                row[title] = f"{100 * value:.1f}"
        rows.append(row)
    return pd.DataFrame(rows)
