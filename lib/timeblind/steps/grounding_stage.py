"""The grounding_stage step (10_grounding_stage): one progressive stage of one decoder variant."""

from __future__ import annotations

from pathlib import Path

import torch

from timeblind import tracking
from timeblind.core.io import write_json
from timeblind.core.layout import RESULTS, resolve
from timeblind.data.grounding import load_grounding_split
from timeblind.data.question_set import QuestionSet
from timeblind.data.questions import Vocab, WindowGrid, make_questions
from timeblind.evaluation.grounded_answers import answer_questions
from timeblind.evaluation.grounding import question_metrics
from timeblind.models.checkpoint import load_decoder, load_model, save_decoder
from timeblind.models.config import GroundedDecoderConfig
from timeblind.models.grounded_decoder import GroundedDecoder, video_tokens
from timeblind.training.config import STAGES, VARIANTS, GroundingTrainConfig
from timeblind.training.grounding import fit_stage

SPLITS = ("train", "val", "test")


def grounding_stage(*, data_dir: str, out_dir: str, stage: str, variant: str, encoder: str, seed: int,
                    encoder_model: str, align_dir: str, previous: str, time_tokens: int, window_stride: int,
                    decoder: dict, max_tokens: int, training: dict, results_dir: str = RESULTS) -> dict:
    """One progressive stage of one decoder variant: align (frame tokens from the frozen encoder,
    written to align_dir, and a decoder that says what appears), time (time tokens or evidence
    tokens: what + when) or instruct (all question kinds, FPO for its variants; then the test
    questions answered and scored). `training` is the stage's GroundingTrainConfig. Writes
    out_dir/decoder.pt and metrics.json."""
    p = dict(locals())
    cfg = GroundingTrainConfig.from_dict(training)
    recipe, spec = VARIANTS[variant], STAGES[stage]
    out = resolve(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    splits = {s: load_grounding_split(resolve(data_dir), s) for s in SPLITS}
    manifest = splits["train"][2]
    frames = int(manifest["events"]["frames"])
    names = {c: sorted(ns) for c, ns in manifest["classes"]["train"].items()}
    closed = sorted({n for per_split in manifest["classes"].values() for c, ns in per_split.items() if c != "words"
                     for n in ns})
    vocab = Vocab(closed, time_tokens)
    params = {**{k: v for k, v in p.items() if k != "training"}, **cfg.to_dict()}  # each an MLflow parameter
    tags = {"stage": stage, "variant": "all" if stage == "align" else variant, "encoder": encoder, "seed": seed}
    with tracking.step_run("grounding_stage", params, tags, results_dir) as run:
        if stage == "align":
            features, grid = frame_tokens(resolve(encoder_model), splits, frames, window_stride,
                                          resolve(align_dir) / "features.pt")
            torch.manual_seed(seed)  # the decoder's first weights belong to the run: same seed, same decoder
            net = GroundedDecoder(GroundedDecoderConfig(
                video_dim=features["train"].shape[-1], vocab_size=len(vocab), frame_tokens=grid.count,
                max_tokens=max_tokens, **decoder))
            seen: set[int] = set()
        else:
            stored = torch.load(resolve(align_dir) / "features.pt", weights_only=True)
            features, grid = stored["features"], WindowGrid(frames, stored["window"], stored["stride"])
            net, info = load_decoder(resolve(previous) / "decoder.pt")
            seen = set(info["seen_tokens"])
        questions = {s: make_questions(splits[s][1], spec.kinds, seed=manifest["seed"]) for s in ("train", "val")}
        reject = recipe.reject if spec.preference else ()
        sets = {s: QuestionSet(features[s], questions[s], "text" if spec.text_only else recipe.fmt, vocab, grid,
                               max_tokens, reject=reject if s == "train" else (), names=names, seed=seed)
                for s in ("train", "val")}
        used = sets["train"].token_ids()
        if seen and used - seen:  # tokens new in this stage (time tokens, <evi>) start at the mean of trained rows
            net.init_rows_to_mean(torch.tensor(sorted(used - seen)), torch.tensor(sorted(seen)))
        metrics = fit_stage(net, sets["train"], sets["val"], cfg, variant=recipe, stage=spec, seed=seed, tracking=run)
        metrics |= {"train_questions": len(sets["train"]), "parameters": sum(x.numel() for x in net.parameters())}
        if stage == "instruct":
            test_questions = make_questions(splits["test"][1], STAGES["instruct"].kinds, seed=manifest["seed"])
            records = answer_questions(net.cpu(), features["test"], test_questions, vocab, grid, recipe.fmt,
                                       recipe.evidence_embedding)
            write_json(out / "predictions.json", {"frames": frames, "records": records})
            metrics |= {f"test.{k}": v for k, v in question_metrics(records).items()}
            run.log_artifact(out / "predictions.json")
        save_decoder(out / "decoder.pt", net.cpu(), {
            "variant": variant, "stage": stage, "encoder": encoder, "seed": seed, "names": closed,
            "time_tokens": time_tokens, "window": grid.window, "stride": grid.stride, "frames": frames,
            "seen_tokens": sorted(seen | used)})
        run.log_metrics({k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and v == v})
        write_json(out / "metrics.json", {**metrics, "variant": variant, "encoder": encoder, "seed": seed,
                                          "stage": stage, "mlflow_run_id": run.run_id})
    return metrics


def frame_tokens(encoder_model: Path, splits: dict, frames: int, stride: int, path: Path) -> tuple[dict, WindowGrid]:
    """Frame tokens of every split from the frozen encoder (its clip length is the window), kept
    at `path` for the later stages."""
    net, payload = load_model(encoder_model)
    shapes = payload["extra"]["frame_shapes"]  # the clip length the encoder was trained on (its figures')
    window = int(shapes.get("shapes", next(iter(shapes.values())))[0])
    features = {s: video_tokens(net.encoder, videos, window, stride) for s, (videos, _, _) in splits.items()}
    torch.save({"features": features, "window": window, "stride": stride}, path)
    return features, WindowGrid(frames, window, stride)
