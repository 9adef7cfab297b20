"""`timeblind score`: any model's results JSON scored the way the paper's scorer
(eval/qwen/analyze_results.py of TimeBlindness/time-blindness) scores it, into its analysis.json.

Its rules: every metadata row whose Path has a prediction is scored; a row without one is left out of
every count. A prediction is right when any accepted label occurs, case-insensitively, in it. Accuracy
per category is correct / scored (0 for a category with nothing scored), overall the same over all
scored rows. analysis.json = {overall_accuracy, category_results: {category: {accuracy, correct_count,
total_count, results: [{video_path, ground_truth, prediction, correct}]}}}, the four categories always
present, each row's record in metadata order.

Where that scorer stops with an error, this one goes on and says so: a category in any case or under the
paper's other names (objects, dynamics) is read as its official name, patterns get a fifth entry, and an
unreadable metadata row or a prediction that is not text is reported and left out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from timeblind.core.io import write_text
from timeblind.io.metadata import Row, Skipped, metadata_rows
from timeblind.io.spookybench import OFFICIAL_CATEGORIES, is_correct

ANALYSIS = "analysis.json"
# Keys under which a list of records names the video and the answer (the runners write a {Path: text} object).
PATH_KEYS = ("video_path", "path", "Path", "video")
ANSWER_KEYS = ("prediction", "response", "answer", "output", "text")


def read_results(path: str | Path) -> dict[str, object]:
    """A results JSON -> {metadata Path: prediction}: the official runners' {Path: text} object, or a
    list of records (e.g. analysis.json's results) with a path and a prediction key. ValueError in one
    line for anything else."""
    path = Path(path).expanduser()
    if not path.is_file():
        what = "is not a file" if path.exists() else "does not exist"
        raise FileNotFoundError(f"results file {path} {what}; expected the JSON a runner wrote")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not JSON ({err}); expected {{metadata Path: predicted text}}") from None
    except RecursionError:  # arrays or objects nested thousands deep: no runner writes that
        raise ValueError(f"{path} is nested too deeply to read; expected {{metadata Path: predicted text}}") from None
    if isinstance(payload, dict):
        return payload
    if isinstance(payload, list):
        return dict(_record(path, i, record) for i, record in enumerate(payload))
    raise ValueError(f"{path} holds a JSON {type(payload).__name__}; expected {{metadata Path: predicted text}} "
                     f"or a list of records")


def _record(path: Path, index: int, record) -> tuple[str, object]:
    keys = sorted(record) if isinstance(record, dict) else []
    key = next((k for k in PATH_KEYS if k in keys), None)
    answer = next((k for k in ANSWER_KEYS if k in keys), None)
    if key is None or answer is None:
        raise ValueError(f"{path}: record {index} has keys {keys}; expected a path ({', '.join(PATH_KEYS)}) and "
                         f"a prediction ({', '.join(ANSWER_KEYS)})")
    return str(record[key]), record[answer]


@dataclass
class Scored:
    """The analysis.json payload, and what the official scorer would have left unsaid."""

    analysis: dict
    unpredicted: list[Row] = field(default_factory=list)  # rows without a prediction: not scored
    unknown: list[str] = field(default_factory=list)  # predicted Paths that are in no readable row
    skipped: list[Skipped] = field(default_factory=list)  # unreadable rows, predictions that are not text

    @property
    def scored(self) -> int:
        return sum(c["total_count"] for c in self.analysis["category_results"].values())


def analyse(predictions: dict[str, object], rows: list[Row]) -> Scored:
    """The official scorer's analysis of `predictions` against metadata `rows`."""
    results = {category: [] for category in OFFICIAL_CATEGORIES}
    scored = Scored({})
    for row in rows:
        if row.rel not in predictions:
            scored.unpredicted.append(row)
            continue
        text = predictions[row.rel]
        if not isinstance(text, str):
            scored.skipped.append(Skipped(row.row, row.rel, f"prediction is a {type(text).__name__}, not text"))
            continue
        results.setdefault(row.category, []).append({"video_path": row.rel, "ground_truth": row.answers,
                                                     "prediction": text, "correct": is_correct(text, row.answers)})
    known = {row.rel for row in rows}
    scored.unknown = [p for p in predictions if p not in known]
    every = [r for records in results.values() for r in records]
    scored.analysis = {"overall_accuracy": _accuracy(every), "category_results": {
        category: {"accuracy": _accuracy(records), "correct_count": sum(r["correct"] for r in records),
                   "total_count": len(records), "results": records}
        for category, records in results.items()}}
    return scored


def _accuracy(records: list[dict]):
    # The official scorer writes an integer 0 where nothing was scored.
    return sum(r["correct"] for r in records) / len(records) if records else 0


def score_results(results: str | Path, csv: str | Path) -> Scored:
    """Read a results JSON and a metadata.csv (no video is opened) and score them."""
    predictions = read_results(results)
    rows, skipped = metadata_rows(csv)
    scored = analyse(predictions, rows)
    scored.skipped = sorted(skipped + scored.skipped, key=lambda s: s.row or 0)
    return scored


def write_analysis(scored: Scored, out_dir: str | Path) -> Path:
    """DIR/analysis.json, atomically, as the official scorer lays it out."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return write_text(out / ANALYSIS, json.dumps(scored.analysis, indent=2))


def summary_lines(scored: Scored) -> list[str]:
    """Per category and overall: accuracy (correct/scored), as the official scorer logs them."""
    lines = [f"{category:9s} {c['accuracy']:.4f} ({c['correct_count']}/{c['total_count']})"
             for category, c in scored.analysis["category_results"].items()]
    return lines + [f"{'overall':9s} {scored.analysis['overall_accuracy']:.4f} "
                    f"({sum(c['correct_count'] for c in scored.analysis['category_results'].values())}/"
                    f"{scored.scored})"]


__all__ = ["ANALYSIS", "Scored", "analyse", "read_results", "score_results", "summary_lines", "write_analysis"]
