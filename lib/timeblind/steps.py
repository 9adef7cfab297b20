"""One function per pipeline step. Notebooks call these; this is the only module that wires
stimuli, data, models, training, evaluation, plots and tracking together."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from timeblind import tracking
from timeblind.paths import resolve


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path.with_suffix(".tmp"), index=False, float_format="%.4f")
    os.replace(path.with_suffix(".tmp"), path)


def _write_json(path: Path, payload: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    os.replace(tmp, path)


def build_dataset(out_dir: Path, preview: Path | None, cfg, seed: int, sizes: dict[str, int], workers: int = 1,
                  per_category: int = 3) -> dict:
    """The generate step's work without tracking: the data set, then a few validation clips per
    category drawn as frame / mean / recovered figure and written as GIF animations."""
    from timeblind.data.dataset import StimulusDataset, write_dataset
    from timeblind.plots.figures import recovered_view, stimulus_preview, write_animation

    manifest = write_dataset(out_dir, cfg, seed, sizes, workers=workers)
    if preview is None:  # a study's data set: no figures
        return {"manifest": manifest, "figures": [], "animations": [], "titles": []}
    val = StimulusDataset(out_dir, "val")
    samples = val.samples
    shown = [int(i) for c in cfg.categories for i in samples.index[samples.category == c][:per_category]]
    clips = [val.clip(i) for i in shown]
    titles = [f"{samples.category[i]}: {samples.label[i]}" for i in shown]
    recovered = [recovered_view(c, samples.category[i], cfg.motion.step) for i, c in zip(shown, clips)]
    animations = [write_animation(c, preview.with_name(f"{preview.name}_animations") / f"{k:02d}_{i}.gif",
                                  fps=cfg.motion.fps, scale=max(1, 128 // cfg.width))
                  for k, (i, c) in enumerate(zip(shown, clips))]
    return {"manifest": manifest, "figures": stimulus_preview(clips, titles, recovered, preview),
            "animations": animations, "titles": titles}


def generate(*, out_dir: str, preview: str, seed: int, train_size: int, val_size: int, test_size: int,
             stimulus: dict, workers: int = 1, results_dir: str = "results") -> dict:
    """Write the stimulus data set (train/val/test), a preview figure and GIF animations; returns
    the manifest and the figure paths. `stimulus` is the config's data section without seed and
    sizes (StimulusConfig.from_pipeline)."""
    p = dict(locals())
    from timeblind.data.dataset import StimulusConfig

    cfg = StimulusConfig.from_pipeline(stimulus)
    sizes = {"train": train_size, "val": val_size, "test": test_size}
    with tracking.step_run("generate", p, {"categories": ",".join(cfg.categories)}, results_dir) as run:
        result = build_dataset(resolve(out_dir), resolve(preview) if preview else None, cfg, seed, sizes, workers)
        run.log_metrics({f"clips_{k}": v for k, v in sizes.items()} | {"classes": len(cfg.classes)})
        run.log_artifact(resolve(out_dir) / "manifest.json")
        for path in result["figures"] + result["animations"]:
            run.log_artifact(path, "figures")
    return result


def train(*, data_dir: str, out_dir: str, encoder: str, seed: int, max_steps: int, batch_size: int, lr: float,
          weight_decay: float, val_every: int, encoder_options: dict, stream: bool = False,
          augment: dict | None = None, devices: int = 1, torch_compile: bool = False,
          task_weights: dict | None = None, results_dir: str = "results") -> dict:
    """Train one encoder with one seed; writes model.pt and metrics.json into out_dir.

    A job killed halfway continues from its last checkpoint into the same MLflow run when it runs
    again with the same parameters, data and commit (fit's resume record); devices > 1 trains with
    DDP in a subprocess."""
    p = dict(locals())
    from timeblind.data.dataset import load_manifest
    from timeblind.training.fit import fit, resumable

    out_dir = resolve(p["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    # what a checkpoint may be resumed under: not where files go, but what the data and code are
    key = tracking.config_hash({**{k: v for k, v in p.items() if k not in ("data_dir", "out_dir", "results_dir")},
                                "data": load_manifest(resolve(p["data_dir"]))["content_sha256"],
                                "git_commit": tracking.git_commit()})
    previous = resumable(out_dir, key)
    with tracking.step_run("train", p, {"encoder": p["encoder"], "seed": p["seed"]}, p["results_dir"],
                           resume_run_id=previous["run_id"] if previous else None) as run:
        metrics = fit(resolve(p["data_dir"]), out_dir, encoder=p["encoder"], seed=p["seed"],
                      max_steps=p["max_steps"], batch_size=p["batch_size"], lr=p["lr"],
                      weight_decay=p["weight_decay"], val_every=p["val_every"],
                      encoder_options=p["encoder_options"], stream=p["stream"], augment=p["augment"],
                      devices=p["devices"], torch_compile=p["torch_compile"], task_weights=p["task_weights"],
                      resume_key=key, tracking=run)
        run.log_metrics({k: v for k, v in metrics.items() if isinstance(v, (int, float))})
        _write_json(out_dir / "metrics.json", {**metrics, "mlflow_run_id": run.run_id})
    return metrics


def evaluate(*, data_dir: str, models: list[str], tables_dir: str, split: str = "test",
             results_dir: str = "results") -> pd.DataFrame:
    """Score every model on the held-out split, per category; writes the per-model table, the
    summary over seeds and Table 1 (encoders x categories)."""
    p = dict(locals())
    from timeblind.evaluation.evaluate import ANSWER, reproduction_table, score_models, summarise

    tables = resolve(p["tables_dir"])
    tables.mkdir(parents=True, exist_ok=True)
    with tracking.step_run("evaluate", p, {"split": p["split"]}, p["results_dir"]) as run:
        per_model = score_models([resolve(m) for m in p["models"]], resolve(p["data_dir"]), p["split"])
        summary = summarise(per_model)
        table = reproduction_table(summary)
        for name, frame in (("accuracy_by_model", per_model), ("accuracy", summary), ("table1", table)):
            _write_csv(frame, tables / f"{name}.csv")
            run.log_artifact(tables / f"{name}.csv", "tables")
        answers = summary[summary.task == ANSWER]
        run.log_metrics({f"test_acc.{r.encoder}.{r.category}": r.accuracy for r in answers.itertuples()})
    return table


def plot(*, tables_dir: str, figure: str, results_dir: str = "results") -> list[Path]:
    """Draw the accuracy figure from the tables (no model is loaded)."""
    p = dict(locals())
    from timeblind.plots.figures import accuracy_figure

    tables = resolve(p["tables_dir"])
    with tracking.step_run("plot", p, {"figure": "accuracy"}, p["results_dir"]) as run:
        paths = accuracy_figure(pd.read_csv(tables / "accuracy.csv"), pd.read_csv(tables / "accuracy_by_model.csv"),
                                resolve(p["figure"]))
        for path in paths:
            run.log_artifact(path, "figures")
    return paths


def measure_snr(*, source: str, table: str, split: str = "val", per_category: int = 32, workers: int = 1,
                results_dir: str = "results") -> pd.DataFrame:
    """The SpookyBench analyzer's SNRs (dB) per clip of a data set or SpookyBench folder; writes the
    per-clip table and a per-category summary (mean, 95% t-interval) beside it, logs the means."""
    p = dict(locals())
    from timeblind.analysis.snr import METRICS, analyze_clips, snr_clips, summarize_snr

    if not resolve(source).is_dir():
        raise FileNotFoundError(f"{source}: expected a generated data set (with manifest.json) or a SpookyBench "
                                "folder (with metadata.csv)")
    table_path = resolve(table)
    table_path.parent.mkdir(parents=True, exist_ok=True)
    with tracking.step_run("snr", p, {"source": Path(source).name}, results_dir) as run:
        clips, skipped = snr_clips(resolve(source), split=split, per_category=per_category)
        for item in skipped:
            print(f"skipped {item.path}: {item.reason}")
        per_clip = analyze_clips([(name, clip) for name, _, clip in clips], workers=workers)
        per_clip.insert(1, "category", [category for _, category, _ in clips])
        summary = pd.concat({c: summarize_snr(g) for c, g in [("all", per_clip), *per_clip.groupby("category")]},
                            names=["category"]).reset_index()
        for frame, path in ((per_clip, table_path), (summary, table_path.with_name(table_path.stem + "_summary.csv"))):
            _write_csv(frame, path)
            run.log_artifact(path, "tables")
        means = summary.set_index(["category", "metric"])["mean"]
        run.log_metrics({f"{metric}.{category}": float(means[category, metric])
                         for category in summary.category.unique() for metric in METRICS})
        run.log_metrics({"clips_measured": len(per_clip), "clips_skipped": len(skipped)})
    return summary


def export_spookybench(*, data_dir: str, out_dir: str, split: str = "test", limit: int | None = None,
                       scale: int = 4, fps: float | None = None) -> pd.DataFrame:
    """Write a stored split in the official SpookyBench layout (metadata.csv, category folders,
    H.264 mp4); returns the metadata table."""
    import ast
    import re

    from timeblind.data.dataset import StimulusDataset
    from timeblind.io.spookybench import VideoItem, export_dataset

    data = StimulusDataset(resolve(data_dir), split)
    count = len(data) if limit is None else min(limit, len(data))
    rows = data.samples

    def items():
        for i in range(count):
            name = re.sub(r"[^a-z0-9]+", "_", rows.label[i].lower()).strip("_")
            yield VideoItem(frames=data.clip(i), category=rows.category[i], answers=ast.literal_eval(rows.answers[i]),
                            name=f"{i:05d}_{name}")

    rate = fps or data.manifest["config"]["motion"]["fps"]
    return export_dataset(items(), resolve(out_dir), fps=rate, scale=scale)


def spookybench_export(*, data: dict, shift: dict, out_dir: str, models: list[str], tables_dir: str,
                       seed: int, test_size: int, scale: int = 4, results_dir: str = "results") -> pd.DataFrame:
    """Table 1 again, on an official-format folder made with settings training never used: a test
    split generated with the config's data section changed by `shift`, written as SpookyBench's
    layout (H.264 mp4 at `scale`x), then every model scored on it with eval-spookybench's code
    (motion-preserving resampling to the model's input, the official substring rule)."""
    p = dict(locals())
    import shutil

    from timeblind.data.dataset import StimulusConfig, shifted_stimulus, write_dataset
    from timeblind.evaluation.evaluate import ANSWER, category_chance, reproduction_table, summarise
    from timeblind.evaluation.spookybench import score_folder, write_predictions
    from timeblind.models import load_model

    cfg = StimulusConfig.from_pipeline(shifted_stimulus(data, shift))
    out, tables = resolve(out_dir), resolve(tables_dir)
    tables.mkdir(parents=True, exist_ok=True)
    with tracking.step_run("spookybench_export", p, {"shift": json.dumps(shift, sort_keys=True)}, results_dir) as run:
        shutil.rmtree(out, ignore_errors=True)
        write_dataset(out / "generated", cfg, seed, {"test": test_size})
        export_spookybench(data_dir=str(out / "generated"), out_dir=str(out / "official"), split="test", scale=scale)
        chance = category_chance([c.category for c in cfg.classes])
        rows = []
        for path in models:
            model, info = load_model(resolve(path))
            encoder, model_seed = info["extra"].get("name", info["encoder"]), info["extra"].get("seed")
            predictions, table, skipped = score_folder(model, info, out / "official")
            write_predictions(predictions, out / "predictions" / f"{encoder}_seed{model_seed}.json")
            for r in table[table.category != "all"].itertuples():
                rows.append({"encoder": encoder, "seed": model_seed, "category": r.category, "task": ANSWER,
                             "n": r.n, "correct": r.correct, "accuracy": r.accuracy, "ci_low": r.ci_low,
                             "ci_high": r.ci_high, "chance": chance[r.category], "skipped": len(skipped),
                             "model": path})
        per_model = pd.DataFrame(rows)
        table1 = reproduction_table(summarise(per_model))
        _write_csv(per_model, tables / "spookybench_export_by_model.csv")
        _write_csv(table1, tables / "spookybench_export_table1.csv")
        for name in ("spookybench_export_by_model", "spookybench_export_table1"):
            run.log_artifact(tables / f"{name}.csv", "tables")
        run.log_metrics({f"export_acc.{r.encoder}.{r.category}": r.accuracy for r in per_model.itertuples()})
    return table1


def study(*, study: str, config: dict, out_dir: str, tables_dir: str, figures_dir: str, workers: int = 1,
          results_dir: str = "results") -> pd.DataFrame:
    """One ablation study (timeblind/studies.py): its test sets, every point scored, a tidy table
    (study_<name>.csv, one row per point and category) and its summary over seeds
    (study_<name>_summary.csv), the figure, and an MLflow parent run with one child run per point."""
    p = dict(locals())
    import shutil

    from timeblind.evaluation.study import score_points, summarise_study
    from timeblind.plots.figures import study_figure
    from timeblind.studies import expand

    points = [point for point in expand(config) if point.study == study]
    settings = config["studies"][study]
    tables, out = resolve(tables_dir), resolve(out_dir)
    tables.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out, ignore_errors=True)  # test sets are regenerated with the scores: same bytes
    with tracking.step_run("study", p, {"study": study}, results_dir) as run:
        table = score_points(config, points, out, resolve, measure_snr=settings.get("measure_snr", False),
                             workers=workers)
        summary = summarise_study(table)
        for name, frame in ((f"study_{study}", table), (f"study_{study}_summary", summary)):
            _write_csv(frame, tables / f"{name}.csv")
            run.log_artifact(tables / f"{name}.csv", "tables")
        seeds = " ".join(str(s) for s in config["training"]["seeds"])
        budgets = sorted({int(pt.model.training["max_steps"]) for pt in points})
        title = f"study {study}: {len(points)} points, seeds {seeds}, {'/'.join(map(str, budgets))} training steps"
        figures = study_figure(summary, resolve(figures_dir) / f"study_{study}", title=title,
                               snr_x=settings.get("measure_snr", False))
        for path in figures:
            run.log_artifact(path, "figures")
        for (point_key, group) in table.groupby(["encoder", "seed", "train_axis", "train_value", "test_axis",
                                                  "test_value"], sort=False):
            first = group.iloc[0]
            tags = {k: first[k] for k in ("study", "encoder", "seed", "train_axis", "train_value", "test_axis",
                                          "test_value", "model_id", "test_id", "train_run_id")}
            tags["config_hash"] = tracking.config_hash({"model": first["model_id"], "test": first["test_id"]})
            tags["kind"] = "study_point"
            # where the point is drawn, so a figure can be redrawn from the runs alone (compare_runs)
            tags["placements"] = json.dumps(list(dict.fromkeys(zip(group["panel"], group["x"], group["series"]))))
            name = f"{study}-{first['encoder']}-{first['train_axis'] or 'base'}={first['train_value']}-" \
                   f"{first['test_axis'] or 'test'}={first['test_value']}-seed{first['seed']}"
            metrics = {f"acc.{r.category}": r.accuracy for r in group.drop_duplicates("category").itertuples()}
            metrics |= {f"n.{r.category}": r.n for r in group.drop_duplicates("category").itertuples()}
            metrics |= {f"chance.{r.category}": r.chance for r in group.drop_duplicates("category").itertuples()}
            if group["snr_db"].notna().any():
                metrics["snr_db"] = float(group["snr_db"].iloc[0])
            run.child_run(name, tags, {"model": first["model"]}, metrics)
        run.log_metrics({"points": len(points)})
    return summary


def compare_runs(*, study: str, figure: str, parent_runs: list | None = None, results_dir: str = "results"
                 ) -> pd.DataFrame:
    """Redraw a study from the MLflow store alone: its latest run, or the given parent runs (then
    each run is its own series), from this machine's pipeline or any other that logged to the same
    store. Returns the summary it drew."""
    from timeblind.evaluation.study import study_from_runs, summarise_study
    from timeblind.plots.figures import study_figure

    table = study_from_runs(tracking.tracking_uri(results_dir), study, parent_runs or [])
    summary = summarise_study(table)
    study_figure(summary, resolve(figure), title=f"study {study} from MLflow: "
                 f"{table['parent_run'].nunique()} run(s), seeds {' '.join(map(str, sorted(table['seed'].unique())))}",
                 snr_x=bool(table["snr_db"].notna().all()))
    return summary


def gallery(*, data_dir: str, models: list[str], figure: str, table: str, split: str = "test",
            per_category: int = 2, samples: int = 16, noise: float = 0.1, results_dir: str = "results") -> list[Path]:
    """The gallery: a few clips per motion-coded category as a single frame, the mean of frames and
    the true figure, beside each model's pixel attribution map (SmoothGrad of the right answer's
    log-probability); writes the figure (.png, .svg) and a per clip x model table of the share of
    attribution inside the figure."""
    p = dict(locals())
    from timeblind.plots.gallery import write_gallery

    with tracking.step_run("gallery", p, {"split": split}, results_dir) as run:
        frame, paths = write_gallery(resolve(data_dir), [resolve(m) for m in models], resolve(figure), resolve(table),
                                     split=split, per_category=per_category, samples=samples, noise=noise)
        for path in paths:
            run.log_artifact(path, "tables" if path.suffix == ".csv" else "figures")
        means = frame.groupby(["encoder", "category"])["attribution_inside_figure"].mean()
        run.log_metrics({f"attribution_inside.{e}.{c}": v for (e, c), v in means.items() if v == v}  # NaN: all-zero map
                        | {f"figure_area.{c}": v for c, v in frame.groupby("category")["figure_area"].mean().items()})
    return paths


# --- temporal grounding (grounding_plan.py) ---------------------------------------------------

def grounding_data(*, out_dir: str, data: dict, events: dict, workers: int = 1, results_dir: str = "results") -> dict:
    """The event videos (train/val/test) of the grounding table: long noise videos in which one to
    three figures appear, each only through opposing motion during its own span."""
    p = dict(locals())
    from timeblind.data.grounding import write_grounding_dataset

    with tracking.step_run("grounding_data", p, {"categories": ",".join(data["categories"])}, results_dir) as run:
        manifest = write_grounding_dataset(resolve(out_dir), data, events, workers=workers)
        run.log_metrics({f"videos_{k}": v for k, v in manifest["counts"].items()})
        run.log_artifact(resolve(out_dir) / "manifest.json")
    return manifest


def _grounding_features(encoder_model: Path, split_videos: dict, stride: int) -> tuple[dict, int]:
    """Frame tokens of every split from the frozen encoder (its clip length is the window)."""
    import numpy as np
    import torch

    from timeblind.data.torch_data import to_model_input
    from timeblind.models import load_model
    from timeblind.models.grounded_decoder import window_features

    net, payload = load_model(encoder_model)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    encoder = net.encoder.to(device)
    window = int(payload["extra"]["frame_shape"][0])  # the clip length the encoder was trained on
    features = {}
    for split, videos in split_videos.items():
        chunks = [window_features(encoder, to_model_input(torch.from_numpy(np.asarray(videos[a:a + 32])).to(device)),
                                  window, stride).float().cpu() for a in range(0, len(videos), 32)]
        features[split] = torch.cat(chunks)  # (N, S, D)
    return features, window


def grounding_stage(*, data_dir: str, out_dir: str, stage: str, variant: str, encoder: str, seed: int,
                    encoder_model: str, align_dir: str, previous: str, time_tokens: int, window_stride: int,
                    decoder: dict, max_tokens: int, batch_size: int, max_steps: int, lr: float, weight_decay: float,
                    val_every: int, beta: float = 0.1, results_dir: str = "results") -> dict:
    """One progressive stage of one decoder variant: align (frame tokens from the frozen encoder,
    written to align_dir, and a decoder that says what appears), time (time tokens or evidence
    tokens: what + when) or instruct (all question kinds, FPO for its variants; then the test
    questions answered and scored). Writes out_dir/decoder.pt and metrics.json."""
    p = dict(locals())
    import torch

    from timeblind.data.grounding import load_grounding_split
    from timeblind.data.questions import QuestionSet, Vocab, WindowGrid, make_questions
    from timeblind.evaluation.grounded_answers import answer_questions
    from timeblind.evaluation.grounding import question_metrics
    from timeblind.models.grounded_decoder import GroundedDecoder, GroundedDecoderConfig, load_decoder, save_decoder
    from timeblind.training.grounding import STAGES, VARIANTS, fit_stage

    out, data_path = resolve(out_dir), resolve(data_dir)
    out.mkdir(parents=True, exist_ok=True)
    splits = {s: load_grounding_split(data_path, s) for s in ("train", "val", "test")}
    manifest = splits["train"][2]
    frames = int(manifest["events"]["frames"])
    names = {c: sorted(ns) for c, ns in manifest["classes"]["train"].items()}
    closed = sorted({n for per_split in manifest["classes"].values() for c, ns in per_split.items() if c != "words"
                     for n in ns})
    spec, fmt = STAGES[stage], VARIANTS[variant].fmt
    tags = {"stage": stage, "variant": "all" if stage == "align" else variant, "encoder": encoder, "seed": seed}
    with tracking.step_run("grounding_stage", p, tags, results_dir) as run:
        if stage == "align":
            features, window = _grounding_features(resolve(encoder_model), {s: v[0] for s, v in splits.items()},
                                                   window_stride)
            torch.save({"features": features, "window": window, "stride": window_stride},
                       resolve(align_dir) / "features.pt")
            vocab, grid = Vocab(closed, time_tokens), WindowGrid(frames, window, window_stride)
            torch.manual_seed(seed)  # the decoder's first weights belong to the run: same seed, same decoder
            net = GroundedDecoder(GroundedDecoderConfig(
                video_dim=features["train"].shape[-1], vocab_size=len(vocab), frame_tokens=grid.count,
                max_tokens=max_tokens, **decoder))
            seen: set[int] = set()
        else:
            stored = torch.load(resolve(align_dir) / "features.pt", weights_only=True)
            features, grid = stored["features"], WindowGrid(frames, stored["window"], stored["stride"])
            net, info = load_decoder(resolve(previous) / "decoder.pt")
            vocab, seen = Vocab(closed, time_tokens), set(info["seen_tokens"])
        questions = {s: make_questions(splits[s][1], spec.kinds, seed=manifest["seed"]) for s in ("train", "val")}
        stage_fmt = "text" if spec.text_only else fmt
        reject = VARIANTS[variant].reject if spec.preference else ()
        sets = {s: QuestionSet(features[s], questions[s], stage_fmt, vocab, grid, max_tokens,
                               reject=reject if s == "train" else (), names=names, seed=seed)
                for s in ("train", "val")}
        used = sets["train"].token_ids()
        if seen and used - seen:  # tokens new in this stage (time tokens, <evi>) start at the mean of trained rows
            net.init_rows_to_mean(torch.tensor(sorted(used - seen)), torch.tensor(sorted(seen)))
        metrics = fit_stage(net, sets["train"], sets["val"], variant=variant, stage=stage, seed=seed,
                            max_steps=max_steps, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                            val_every=val_every, beta=beta, tracking=run)
        metrics |= {"train_questions": len(sets["train"]), "parameters": sum(x.numel() for x in net.parameters())}
        if stage == "instruct":
            test_questions = make_questions(splits["test"][1], STAGES["instruct"].kinds, seed=manifest["seed"])
            records = answer_questions(net.cpu(), features["test"], test_questions, vocab, grid, fmt,
                                       VARIANTS[variant].evidence_embedding)
            _write_json(out / "predictions.json", {"frames": frames, "records": records})
            scores = question_metrics(records)
            metrics |= {f"test.{k}": v for k, v in scores.items()}
            run.log_artifact(out / "predictions.json")
        save_decoder(out / "decoder.pt", net.cpu(), {
            "variant": variant, "stage": stage, "encoder": encoder, "seed": seed, "names": closed,
            "time_tokens": time_tokens, "window": grid.window, "stride": grid.stride, "frames": frames,
            "seen_tokens": sorted(seen | used)})
        run.log_metrics({k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and v == v})
        _write_json(out / "metrics.json", {**metrics, "variant": variant, "encoder": encoder, "seed": seed,
                                           "stage": stage, "mlflow_run_id": run.run_id})
    return metrics


GROUNDING_KEYS = ("r1_iou0.3", "r1_iou0.5", "r1_iou0.7", "miou", "tvg_f1", "answer_acc", "answer_acc_grounded")
GROUNDING_ROWS = {"coupled": "coupled: time tokens in the answer", "factorised": "factorised: <evi> then answer",
                  "evidence": "factorised + span-mean evidence", "consistency": "factorised + evidence + consistency",
                  "fpo_grounding": "factorised + FPO (grounding perturbed)",
                  "fpo_text": "factorised + FPO (text perturbed)", "fpo_both": "factorised + FPO (both perturbations)"}


def _grounding_display(summary: pd.DataFrame) -> pd.DataFrame:
    """The table a reader sees: % with the 95% interval where there is one."""
    shown = {"r1_iou0.3": "R@1 IoU≥0.3", "r1_iou0.5": "R@1 IoU≥0.5", "r1_iou0.7": "R@1 IoU≥0.7", "miou": "mIoU",
             "tvg_f1": "TVG F1", "answer_acc": "answers right", "answer_acc_grounded": "right when grounded"}
    rows = []
    for r in summary.to_dict("records"):
        row = {"row": r["row"]}
        for key, title in shown.items():
            value, low, high = r.get(key), r.get(f"{key}_lo"), r.get(f"{key}_hi")
            if value is None or value != value:
                row[title] = "–"
            elif low is not None and low == low:
                row[title] = f"{100 * value:.1f} [{100 * low:.1f}, {100 * high:.1f}]"
            else:
                row[title] = f"{100 * value:.1f}"
        rows.append(row)
    return pd.DataFrame(rows)


def grounding_table(*, runs: list[str], data_dir: str, tables_dir: str, figures_dir: str, first_encoder: str,
                    best: str, results_dir: str = "results") -> pd.DataFrame:
    """The grounding table from the instruct stages' test scores: one row per variant (first
    encoder) and per swapped encoder, mean over seeds with 95% intervals, beside a random-span
    chance row; the figures (metrics, predicted against true spans) and an MLflow parent run with
    a child run per row."""
    p = dict(locals())
    from timeblind.data.grounding import load_grounding_split
    from timeblind.evaluation.grounding import chance_localisation, summarise_seeds
    from timeblind.plots.grounding import grounding_figure, spans_figure

    tables, figures = resolve(tables_dir), resolve(figures_dir)
    tables.mkdir(parents=True, exist_ok=True)
    records = []
    for run_dir in runs:
        m = json.loads((resolve(run_dir) / "metrics.json").read_text())
        records.append({"row": f"{GROUNDING_ROWS[m['variant']]} · {m['encoder']}",
                        "variant": m["variant"], "encoder": m["encoder"], "seed": m["seed"], "run_dir": run_dir,
                        **{k: m[f"test.{k}"] for k in GROUNDING_KEYS},
                        **{f"{k}_{b}": m[f"test.{k}_{b}"] for k in GROUNDING_KEYS for b in ("lo", "hi")
                           if f"test.{k}_{b}" in m},  # within-seed intervals, where the metric has one
                        "n_when": m["test.n_when"], "n_answer": m["test.n_answer"], "mlflow_run_id": m["mlflow_run_id"]})
    per_seed = pd.DataFrame(records)
    _, events, manifest = load_grounding_split(resolve(data_dir), "test")
    frames = manifest["events"]["frames"]
    chance = chance_localisation([(e.start, e.end) for video in events for e in video], frames)
    rows = []
    for (row, variant, encoder), group in per_seed.groupby(["row", "variant", "encoder"], sort=False):
        summary = summarise_seeds(group.to_dict("records"), GROUNDING_KEYS)
        rows.append({"row": row, "variant": variant, "encoder": encoder, **summary,
                     "seeds": " ".join(str(s) for s in sorted(group["seed"]))})
    summary = pd.DataFrame(rows)
    chance_row = {"row": "chance (random span of a true length)", "variant": "chance", "encoder": "",
                  **{k: chance.get(k, float("nan")) for k in GROUNDING_KEYS}}
    with tracking.step_run("grounding_table", p, {"rows": len(summary)}, results_dir) as run:
        full = pd.concat([summary, pd.DataFrame([chance_row])], ignore_index=True)
        for name, frame in (("grounding", per_seed), ("grounding_summary", full),
                            ("grounding_table", _grounding_display(full))):
            _write_csv(frame, tables / f"{name}.csv")
            run.log_artifact(tables / f"{name}.csv", "tables")
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
                          {}, {k: r[k] for k in GROUNDING_KEYS if r[k] == r[k]})
        run.log_metrics({f"chance.{k}": v for k, v in chance.items() if k in GROUNDING_KEYS})
    return summary
