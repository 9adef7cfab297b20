"""The `timeblind` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from timeblind.core.layout import RESULTS, TABLES, resolve

COMMANDS_DELEGATED = ("run-notebook", "init-tracking")  # timeblind.steps.warm: the pipeline jobs' commands


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] and argv[0] in COMMANDS_DELEGATED:
        from timeblind.steps import warm  # a pipeline job's command runs forked from the warm server

        status = warm.delegate(argv)
        if status is not None:
            return status
    parser = Parser(prog="timeblind", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    init = commands.add_parser("init-tracking", help="create the MLflow store and experiment once")
    init.add_argument("--results-dir", default=RESULTS)
    init.add_argument("--output", help="write the store's description (JSON) here")

    check = commands.add_parser("check-config", help="config files' YAML, a syntax error named by file and line "
                                "(snakemake -n validates the keys and values)")
    check.add_argument("files", nargs="+")

    run = commands.add_parser("run-notebook", help="execute a pipeline notebook with papermill, strictly")
    run.add_argument("notebook")
    run.add_argument("output", help="executed notebook (.ipynb), kept even when a cell fails")
    run.add_argument("--params", default="{}", help="notebook parameters as a JSON object")
    run.add_argument("--html", help="HTML copy of the executed notebook")
    run.add_argument("--cwd", default=".", help="working directory of the kernel (the project directory)")

    snr = commands.add_parser("snr", help="SpookyBench analyzer SNRs of a data set or SpookyBench folder (MLflow)")
    snr.add_argument("source", help="a generated data set (manifest.json) or a folder with metadata.csv")
    snr.add_argument("--table", default=f"{TABLES}/snr.csv", help="per-clip table; a _summary.csv goes beside")
    snr.add_argument("--split", default="val", help="split of a generated data set")
    snr.add_argument("--per-category", type=positive_int, default=32,
                     help="clips per category of a generated data set")
    snr.add_argument("--sample-rate", type=positive_int, default=2,
                     help="analyse every N-th frame (official default 2)")
    snr.add_argument("--window", type=positive_int, default=5, help="flows per sliding window of the boundary mean")
    snr.add_argument("--processes", type=positive_int, default=1, help="videos measured in parallel, one per process")
    snr.add_argument("--workers", dest="processes", type=positive_int, default=argparse.SUPPRESS,
                     help=argparse.SUPPRESS)  # its earlier name, still taken
    snr.add_argument("--results-dir", default=RESULTS)

    export = commands.add_parser("export-spookybench", help="write a generated split in the official layout")
    export.add_argument("data_dir")
    export.add_argument("out_dir")
    export.add_argument("--split", default="test")
    export.add_argument("--limit", type=positive_int, help="first N clips only")
    export.add_argument("--scale", type=positive_int, default=4, help="integer upscaling by pixel repetition")
    export.add_argument("--fps", type=positive_float, help="frame rate (default: the data set's)")

    scoring = commands.add_parser("eval-spookybench", help="score a model on a folder in the official layout")
    scoring.add_argument("--dataset", required=True, help="folder with metadata.csv and the category folders")
    scoring.add_argument("--csv", help="metadata.csv (default: DATASET/metadata.csv, else the one beside DATASET)")
    scoring.add_argument("--model", required=True, help="model.pt written by the train step")
    scoring.add_argument("--output", required=True,
                         help="predictions JSON ({metadata Path: predicted text}): a folder, which receives "
                              "{model}_direct_{timestamp}.json as the official runners name it, or a .json file")
    scoring.add_argument("--categories", nargs="+",
                         help="only these categories (any case; objects and dynamics mean images and videos)")
    scoring.add_argument("--method", default="motion", choices=["motion", "plain"], help="resampling of videos")
    scoring.add_argument("--zoom", action=argparse.BooleanOptionalAction, default=True,
                         help="read a still figure smaller than the model's training figures again, from a crop of "
                              "the video around it (default: on)")
    scoring.add_argument("--lexicon", type=non_negative_int, metavar="N",
                         help="read words against the N most frequent English words (default: 50000, as the "
                              "pipeline's reading.lexicon); 0 reads letter by letter")
    for name in ("frames", "height", "width"):
        scoring.add_argument(f"--{name}", type=positive_int,
                             help=f"model input {name} (default: recorded in the model)")

    score = commands.add_parser("score", help="score any model's results JSON as the official scorer does: "
                                              "analysis.json, accuracy.png and a review page")
    score.add_argument("--results", required=True, help="results JSON: {metadata Path: predicted text}, as "
                                                        "eval-spookybench and the official runners write it")
    score.add_argument("--csv", required=True, help="the metadata.csv the results answer")
    score.add_argument("--output", default="analysis", help="folder for analysis.json, accuracy.png, review.html")
    score.add_argument("--dataset", help="folder the metadata Paths start from, for the review page's pictures "
                                         "(default: the CSV's folder, or the folder beside it that holds them)")
    score.add_argument("--no-review", action="store_true", help="skip the review page (it decodes every video)")

    args = parser.parse_args(argv)
    if args.command == "eval-spookybench":
        return eval_spookybench(args)
    if args.command == "score":
        return score_results(args)
    if args.command in ("snr", "export-spookybench"):
        try:
            if args.command == "snr":
                from timeblind.steps.snr import measure_snr

                summary = measure_snr(source=args.source, table=args.table, split=args.split,
                                      per_category=args.per_category, workers=args.processes,
                                      sample_rate=args.sample_rate, window=args.window, results_dir=args.results_dir)
                print(summary.to_string(index=False, float_format="%.2f"))
            else:
                from timeblind.io.export import pattern_folder
                from timeblind.io.metadata import read_metadata
                from timeblind.steps.export import export_split

                table = export_split(data_dir=args.data_dir, out_dir=args.out_dir, split=args.split,
                                     limit=args.limit, scale=args.scale, fps=args.fps)
                print(f"wrote {len(table)} videos and metadata.csv to {args.out_dir}")
                patterns = pattern_folder(resolve(args.out_dir))
                if patterns:
                    print(f"wrote {len(read_metadata(patterns)[0])} pattern videos and their own metadata.csv to "
                          f"{patterns}")
        except (FileNotFoundError, NotADirectoryError, ValueError) as err:
            print(f"timeblind {args.command}: {err}", file=sys.stderr)
            return 2
        return 0
    if args.command == "check-config":
        from timeblind.plan.config import exit_on_yaml_error

        exit_on_yaml_error(*args.files)  # exits 1 with the line
        missing = [f for f in args.files if not Path(f).is_file()]
        if missing:
            print(f"timeblind check-config: no such file(s) {missing}", file=sys.stderr)
            return 2
        return 0
    if args.command == "init-tracking":
        from timeblind.steps.runner import init_tracking

        results = Path(args.results_dir)
        if results.exists() and not results.is_dir():
            print(f"timeblind init-tracking: --results-dir {results} is a file; expected a folder", file=sys.stderr)
            return 2
        try:
            print(json.dumps(init_tracking(args.results_dir, args.output), indent=2))
        except OSError as err:
            print(f"timeblind init-tracking: cannot create the store in {results}: {err.strerror}", file=sys.stderr)
            return 2
        return 0

    import logging

    sys.stdout.reconfigure(line_buffering=True)  # papermill echoes the kernel's stdout here: keep logs live
    # papermill reports each cell's streamed output through logging; show it, plainly.
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from timeblind.steps.runner import NotebookFailed, NotebookParameterError, run_notebook

    try:
        params = json.loads(args.params)
        if not isinstance(params, dict):
            raise ValueError
    except ValueError:
        print(f"timeblind: --params must be a JSON object, got {args.params!r}", file=sys.stderr)
        return 2
    try:
        run_notebook(args.notebook, args.output, params, html=args.html, cwd=args.cwd)
    except NotebookParameterError as err:
        print(f"timeblind: {err}", file=sys.stderr)
        return 2
    except NotebookFailed as err:
        print(f"timeblind: {err}", file=sys.stderr)
        return 1
    return 0


class Parser(argparse.ArgumentParser):
    """Bad usage is one line, the error and where to look, then exit 2 (argparse would print the whole usage
    first, several lines)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def positive_float(text: str) -> float:
    """An argparse type: a usage error for 0, negatives, infinities and non-numbers."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def positive_int(text: str) -> int:
    """An argparse type: a usage error (exit 2, one line) for 0, negatives and non-numbers."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return value


def non_negative_int(text: str) -> int:
    """An argparse type: a usage error (exit 2, one line) for negatives and non-numbers."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is not a non-negative integer")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def eval_spookybench(args) -> int:
    """Score a model on an official-layout folder. --output and --categories are checked before any model
    or video is read; each skipped item is one line on stderr; the table is printed before the predictions
    are written, and the predictions too if the write fails, so nothing scored is lost. Exit 0 when
    something was scored, 2 when nothing was (bad model, folder or flags, every item skipped), 1 when the
    write failed."""
    from timeblind.core.lexicon import ENGLISH_WORDS
    from timeblind.evaluation.spookybench import (check_output, model_label, results_path, score_folder,
                                                  write_predictions)
    from timeblind.io.spookybench import parse_categories
    from timeblind.models.checkpoint import load_model

    def say(line):
        print(line, file=sys.stderr)

    try:
        categories = parse_categories(args.categories) if args.categories else None
        check_output(args.output)
        model, info = load_model(args.model)
        predictions, table, skipped = score_folder(
            model, info, args.dataset, csv=args.csv, categories=categories, frames=args.frames, height=args.height,
            width=args.width, method=args.method, zoom=args.zoom,
            lexicon=ENGLISH_WORDS if args.lexicon is None else args.lexicon, log=say)
    except (OSError, ValueError) as err:
        say(f"timeblind eval-spookybench: {err}")
        return 2
    if not predictions:
        say(f"timeblind eval-spookybench: nothing scored: no usable video in {args.dataset}"
            + (f" of categories {categories}" if categories else "") + f" ({len(skipped)} item(s) skipped)")
        return 2
    print(table.to_string(index=False, float_format="%.3f"))  # shown before writing, so a failed write loses no score
    path = results_path(args.output, model_label(info))
    try:
        write_predictions(predictions, path)
    except OSError as err:  # the folder changed since it was checked: keep the work on stdout
        print(json.dumps(predictions, indent=1))
        say(f"timeblind eval-spookybench: cannot write {path} ({err.strerror or err}); the predictions are "
            "printed above instead")
        return 1
    print(f"{len(predictions)} predictions written to {path}; {len(skipped)} item(s) skipped")
    return 0


def score_results(args) -> int:
    """`timeblind score`: a results JSON against a metadata.csv, the official way; the output folder is
    checked before anything is read."""
    from timeblind.evaluation.official import score_results as score
    from timeblind.evaluation.official import summary_lines, write_analysis
    from timeblind.evaluation.spookybench import check_folder
    from timeblind.io.metadata import find_video_root
    from timeblind.plots.review import ACCURACY_PNG, REVIEW_HTML, accuracy_chart, review_page

    def say(line):
        print(line, file=sys.stderr)

    try:
        check_folder(args.output, "a folder for analysis.json, accuracy.png and review.html")
        if args.dataset and not os.path.isdir(args.dataset):
            raise NotADirectoryError(f"--dataset {args.dataset} is not a folder; expected the folder the "
                                     f"metadata Paths start from")
        scored = score(args.results, args.csv)
    except (FileNotFoundError, NotADirectoryError, ValueError) as err:
        say(f"timeblind score: {err}")
        return 2
    for item in scored.skipped:
        say(f"not scored: line {item.row} {item.path}: {item.reason}")
    if scored.scored == 0:
        example = next(iter(scored.unknown), None)
        say(f"timeblind score: nothing to score: no prediction in {args.results} names a readable row of "
            f"{args.csv}" + (f" (e.g. {example!r})" if example else ""))
        return 2
    notes = [f"{len(scored.unpredicted)} metadata row(s) without a prediction, left out of every count as the "
             f"official scorer does"] if scored.unpredicted else []
    if scored.unknown:
        notes.append(f"{len(scored.unknown)} prediction(s) for Paths not in the metadata, e.g. {scored.unknown[0]!r}")
    notes += [f"line {item.row} {item.path}: {item.reason}" for item in scored.skipped]
    name = Path(args.results).name
    try:
        written = [write_analysis(scored, args.output),
                   accuracy_chart(scored.analysis, Path(args.output) / ACCURACY_PNG, name)]
        if not args.no_review:
            rels = [r["video_path"] for c in scored.analysis["category_results"].values() for r in c["results"]]
            root = Path(args.dataset) if args.dataset else find_video_root(args.csv, rels)
            if root is None:
                say(f"no videos found beside {args.csv} for the review page; pass --dataset to show them")
            written.append(review_page(scored.analysis, root, Path(args.output) / REVIEW_HTML,
                                       title=f"{name}: answers for review", notes=notes))
    except OSError as err:  # the folder changed since it was checked
        say(f"timeblind score: cannot write in {args.output} ({err.strerror or err})")
        return 1
    print("\n".join(summary_lines(scored)))
    for note in notes[:2]:
        print(note)
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
