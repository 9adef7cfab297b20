"""The `timeblind` command line."""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="timeblind", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    init = commands.add_parser("init-tracking", help="create the MLflow store and experiment once")
    init.add_argument("--results-dir", default="results")
    init.add_argument("--output", help="write the store's description (JSON) here")

    run = commands.add_parser("run-notebook", help="execute a pipeline notebook with papermill, strictly")
    run.add_argument("notebook")
    run.add_argument("output", help="executed notebook (.ipynb), kept even when a cell fails")
    run.add_argument("--params", default="{}", help="notebook parameters as a JSON object")
    run.add_argument("--html", help="HTML copy of the executed notebook")
    run.add_argument("--cwd", default=".", help="working directory of the kernel (the project directory)")

    args = parser.parse_args(argv)
    if args.command == "init-tracking":
        from timeblind.tracking import init_store

        store = init_store(args.results_dir)
        text = json.dumps(store, indent=2)
        if args.output:
            with open(args.output, "w") as f:
                f.write(text)
        print(text)
        return 0

    import logging

    sys.stdout.reconfigure(line_buffering=True)  # papermill echoes the kernel's stdout here: keep logs live
    # papermill reports each cell's streamed output through logging; show it, plainly.
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from timeblind.notebook import NotebookFailed, NotebookParameterError, run_notebook

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


if __name__ == "__main__":
    sys.exit(main())
