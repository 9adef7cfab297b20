"""Compare two results folders, as made by two runs of the same config and seed, byte for byte.

python scripts/compare_results.py RESULTS_A RESULTS_B

Prints one line per file that is not the same bytes in both, and what differs in it: for JSON the
keys, for CSV the columns, for text the first differing line. MLflow's own store (mlflow.db and the
artifact folders named by run id) is counted, not listed. Exit 0 when nothing but MLflow's store
differs.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import json
import sys
from pathlib import Path

MLFLOW = ("mlflow.db", "mlflow.db-shm", "mlflow.db-wal", "mlartifacts/")


def digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def json_keys(a: object, b: object, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [k for key in sorted(set(a) | set(b), key=str)
                for k in json_keys(a.get(key), b.get(key), f"{prefix}{key}.")]
    return [] if json.dumps(a) == json.dumps(b) else [prefix.rstrip(".")]  # NaN is NaN


def what_differs(a: Path, b: Path) -> str:
    try:
        text_a, text_b = a.read_text(), b.read_text()
    except UnicodeDecodeError:
        return "binary"
    if a.suffix == ".json":
        return "keys " + ", ".join(json_keys(json.loads(text_a), json.loads(text_b)))
    if a.suffix == ".csv":
        rows_a, rows_b = (list(csv.DictReader(io.StringIO(t))) for t in (text_a, text_b))
        if len(rows_a) == len(rows_b):
            columns = {c for x, y in zip(rows_a, rows_b) for c in x if x[c] != y.get(c)}
            return "columns " + ", ".join(sorted(columns))
    for line in difflib.unified_diff(text_a.splitlines(), text_b.splitlines(), n=0, lineterm=""):
        if line.startswith(("-", "+")) and not line.startswith(("---", "+++")):
            return "first differing line: " + line[:160]
    return "whitespace"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or not all(Path(a).is_dir() for a in args):
        print("usage: python scripts/compare_results.py RESULTS_A RESULTS_B (two folders)", file=sys.stderr)
        return 2
    a, b = map(Path, args)
    da, db = digests(a), digests(b)
    mlflow = [f for f in set(da) | set(db) if f.startswith(MLFLOW)]
    same = [f for f in set(da) & set(db) if da[f] == db[f]]
    differ = sorted(f for f in (set(da) | set(db)) - set(mlflow) if da.get(f) != db.get(f))
    for f in differ:
        print(f"{f}: " + (what_differs(a / f, b / f) if f in da and f in db else f"only in {a if f in da else b}"))
    print(f"{len(same)} files the same bytes, {len(differ)} differ, {len(mlflow)} in MLflow's store not compared")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
