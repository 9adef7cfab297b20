"""The grounding_table step (11_grounding_table): every decoder run's test scores as one table."""

from __future__ import annotations

import json

import pandas as pd

from timeblind import tracking
from timeblind.core.io import write_csv
from timeblind.core.layout import RESULTS, resolve
from timeblind.data.grounding import load_grounding_split
from timeblind.evaluation.grounding import ROW_NAMES, TABLE_KEYS, chance_localisation, display_table, summarise_seeds
from timeblind.plots.grounding import grounding_figure, spans_figure


def grounding_table(*, runs: list[str], data_dir: str, tables_dir: str, figures_dir: str, first_encoder: str,
                    best: str, results_dir: str = RESULTS) -> pd.DataFrame:
    """The grounding table from the instruct stages' test scores: one row per variant (first
    encoder) and per swapped encoder, mean over seeds with 95% intervals, beside a random-span
    chance row; the figures (metrics, predicted against true spans) and an MLflow parent run with
    a child run per row."""
    p = dict(locals())
    tables, figures = resolve(tables_dir), resolve(figures_dir)
    tables.mkdir(parents=True, exist_ok=True)
    per_seed = pd.DataFrame([_run_record(run_dir) for run_dir in runs])
    _, events, manifest = load_grounding_split(resolve(data_dir), "test")
    frames = manifest["events"]["frames"]
    chance = chance_localisation([(e.start, e.end) for video in events for e in video], frames)
    rows = []
    for (row, variant, encoder), group in per_seed.groupby(["row", "variant", "encoder"], sort=False):
        summary = summarise_seeds(group.to_dict("records"), TABLE_KEYS)
        rows.append({"row": row, "variant": variant, "encoder": encoder, **summary,
                     "seeds": " ".join(str(s) for s in sorted(group["seed"]))})
    summary = pd.DataFrame(rows)
    chance_row = {"row": "chance (random span of a true length)", "variant": "chance", "encoder": "",
                  **{k: chance.get(k, float("nan")) for k in TABLE_KEYS}}
    with tracking.step_run("grounding_table", p, {"rows": len(summary)}, results_dir) as run:
        full = pd.concat([summary, pd.DataFrame([chance_row])], ignore_index=True)
        readable = display_table(full)
        for name, frame in (("grounding", per_seed), ("grounding_summary", full), ("grounding_table", readable)):
            run.log_artifact(write_csv(frame, tables / f"{name}.csv"), "tables")
        seeds = " ".join(str(s) for s in sorted(per_seed["seed"].unique()))
        paths = grounding_figure(summary, per_seed, chance, figures / "grounding",
                                 title=f"temporal grounding: {len(summary)} rows, seeds {seeds}, "
                                       f"{manifest['counts']['test']} test videos of {frames} frames")
        shown = per_seed[per_seed["seed"] == per_seed["seed"].min()].drop_duplicates("row")
        shown = shown[shown["variant"].isin(["coupled", best]) | (shown["encoder"] != first_encoder)]
        predictions = {r.row: json.loads((resolve(r.run_dir) / "predictions.json").read_text())
                       for r in shown.itertuples()}
        paths += spans_figure(predictions, figures / "grounding_spans")
        for path in paths:
            run.log_artifact(path, "figures")
        for r in summary.to_dict("records"):
            run.child_run(f"grounding-{r['variant']}-{r['encoder']}", {"kind": "grounding_row", "variant": r["variant"],
                                                                     "encoder": r["encoder"], "seeds": r["seeds"]},
                          {}, {k: r[k] for k in TABLE_KEYS if r[k] == r[k]})
        run.log_metrics({f"chance.{k}": v for k, v in chance.items() if k in TABLE_KEYS})
    return summary


def _run_record(run_dir: str) -> dict:
    """One run's test scores (its instruct stage's metrics.json) as a row of the per-seed table."""
    m = json.loads((resolve(run_dir) / "metrics.json").read_text())
    return {"row": f"{ROW_NAMES[m['variant']]} · {m['encoder']}",
            "variant": m["variant"], "encoder": m["encoder"], "seed": m["seed"], "run_dir": run_dir,
            **{k: m[f"test.{k}"] for k in TABLE_KEYS},
            **{f"{k}_{b}": m[f"test.{k}_{b}"] for k in TABLE_KEYS for b in ("lo", "hi")
               if f"test.{k}_{b}" in m},  # within-seed intervals, where the metric has one
            "n_when": m["test.n_when"], "n_answer": m["test.n_answer"], "mlflow_run_id": m["mlflow_run_id"]}
