"""The evaluate step (03_evaluate): Table 1, every model scored on the held-out split."""

from __future__ import annotations

import pandas as pd

from timeblind import tracking
from timeblind.core.io import write_csv
from timeblind.core.layout import RESULTS, resolve
from timeblind.core.lexicon import ENGLISH_WORDS
from timeblind.evaluation.evaluate import ANSWER, reproduction_table, score_models, summarise


def evaluate(*, data_dir: str, models: list[str], tables_dir: str, split: str = "test",
             lexicon: int = ENGLISH_WORDS, results_dir: str = RESULTS) -> pd.DataFrame:
    """Score every model on the held-out split, per category (words read against the `lexicon` most
    frequent English words, 0: letter by letter); writes the per-model table, the summary over seeds
    and Table 1 (encoders x categories)."""
    p = dict(locals())
    tables = resolve(tables_dir)
    tables.mkdir(parents=True, exist_ok=True)
    with tracking.step_run("evaluate", p, {"split": split}, results_dir) as run:
        per_model = score_models([resolve(m) for m in models], resolve(data_dir), split, lexicon=lexicon)
        summary = summarise(per_model)
        table = reproduction_table(summary)
        for name, frame in (("accuracy_by_model", per_model), ("accuracy", summary), ("table1", table)):
            run.log_artifact(write_csv(frame, tables / f"{name}.csv"), "tables")
        answers = summary[summary.task == ANSWER]
        run.log_metrics({f"test_acc.{r.encoder}.{r.category}": r.accuracy for r in answers.itertuples()})
    return table
