"""Reading a SpookyBench metadata.csv (layout: io/spookybench.py): where it is, its rows, and whether the
videos they name are there, without decoding any (io/folder.py decodes them).

Each problem is reported per row (:class:`Skipped`) and the other rows kept; only a problem with the whole
folder or file raises.
"""

from __future__ import annotations

import ast
import csv
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from timeblind.io.spookybench import (
    CATEGORIES,
    COLUMNS,
    METADATA,
    OFFICIAL_CATEGORIES,
    canonical_category,
    known_categories,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    """One readable row of metadata.csv."""

    path: Path  # absolute, resolved, inside the root
    rel: str  # as written in the Path column
    category: str  # its name here: lower-case, objects -> images, dynamics -> videos
    answers: list[str]
    row: int | None = None  # line number in metadata.csv (header = line 1)


@dataclass(frozen=True)
class Skipped:
    """A row or video that could not be used, and why."""

    row: int | None  # line number in metadata.csv, None when not tied to a row
    path: str
    reason: str


def _parse_label(text: str) -> list[str]:
    """Label column -> answers. Raises ValueError with the reason."""
    try:
        value = ast.literal_eval(text.strip())  # literals only: never executes code
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as e:
        raise ValueError(f"Label {text!r} is not a Python literal ({type(e).__name__}); "
                         f"expected a list of strings like \"['cat']\"") from None
    if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
        raise ValueError(f"Label {text!r} is a {type(value).__name__}; expected a list of strings like \"['cat']\"")
    answers = [a.strip() for a in value if a.strip()]
    if not answers:
        raise ValueError(f"Label {text!r} has no non-empty answer")
    return answers


def find_metadata(root: str | os.PathLike) -> Path:
    """``root/metadata.csv``, else the one beside ``root``: the release's README keeps metadata.csv next to
    SpookyBenchDatasets/, whose category folders its Paths start from."""
    root = Path(root).expanduser().resolve()
    for csv_path in (root / METADATA, root.parent / METADATA):
        if csv_path.is_file():
            return csv_path
        if csv_path.exists():
            raise FileNotFoundError(f"{csv_path} is not a file; expected the metadata CSV (columns "
                                    f"{', '.join(COLUMNS)})")
    children = sorted(p.name for p in root.iterdir())
    if not children:
        raise FileNotFoundError(f"{root} is empty; expected a SpookyBench folder with {METADATA} "
                                f"and category folders {', '.join(OFFICIAL_CATEGORIES)}")
    nested = sorted(str(p.parent) for p in root.glob(f"*/{METADATA}"))
    hint = f"; found one in {nested[0]} - pass that folder as root" if nested else (
        "; if the CSV lives elsewhere, pass it with --csv (csv= in Python)" if any(c in CATEGORIES for c in children)
        else "")
    raise FileNotFoundError(f"{root} has no {METADATA}, nor has the folder beside it (found {children[:8]}"
                            f"{'...' if len(children) > 8 else ''}){hint}")


@dataclass(frozen=True)
class Row:
    """One row of metadata.csv whose fields parse; its video is not looked at."""

    rel: str  # as written in the Path column
    category: str  # its name here (canonical_category)
    answers: list[str]
    row: int  # line number in metadata.csv (header = line 1)


def find_video_root(csv_file: str | os.PathLike, rels: list[str]) -> Path | None:
    """The folder a metadata.csv's Paths start from: the CSV's own folder (an export), or a folder beside
    the CSV (the release's SpookyBenchDatasets/); the first where one of the first Paths is a file."""
    here = Path(csv_file).expanduser().resolve().parent
    for folder in [here, *sorted(p for p in here.iterdir() if p.is_dir())]:
        if any((folder / rel).is_file() for rel in rels[:20]):
            return folder
    return None


def metadata_rows(csv_file: str | os.PathLike) -> tuple[list[Row], list[Skipped]]:
    """Parse a metadata.csv into rows and skipped rows, without touching any video: a malformed row, an
    empty Path, an unknown category or a Label that is not a list literal of strings is skipped. A missing
    or empty file, a header without Path/Category/Label, or a CSV without rows raise."""
    csv_file = Path(csv_file).expanduser()
    if not csv_file.is_file():
        what = "is not a file" if csv_file.exists() else "does not exist"
        raise FileNotFoundError(f"metadata file {csv_file} {what}; expected a CSV with columns {COLUMNS}")
    rows: list[Row] = []
    skipped: list[Skipped] = []
    # utf-8-sig drops a BOM; undecodable bytes become U+FFFD and surface as a missing file for that row only.
    with open(csv_file, newline="", encoding="utf-8-sig", errors="replace") as f:
        reader = csv.reader(f)
        try:
            header = next(reader, None)
        except csv.Error as e:  # e.g. an unterminated quote that swallows the file: no header to read
            raise ValueError(f"{csv_file}: unreadable header ({e}); expected a header {','.join(COLUMNS)}") from None
        if header is None:
            raise ValueError(f"{csv_file} is empty; expected a header {','.join(COLUMNS)} and one row per video")
        names = [h.strip().lower() for h in header]
        missing = [c for c in COLUMNS if c.lower() not in names]
        if missing:
            raise ValueError(f"{csv_file}: header {header} lacks column(s) {missing}; expected {list(COLUMNS)}")
        col = {c: names.index(c.lower()) for c in COLUMNS}
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error as e:  # e.g. a NUL byte or an unterminated quote: lose this row only
                skipped.append(Skipped(reader.line_num, "", f"malformed CSV row: {e}"))
                continue
            line = reader.line_num
            if not any(x.strip() for x in fields):
                continue  # blank line
            if len(fields) != len(header):
                skipped.append(Skipped(line, fields[col["Path"]] if len(fields) > col["Path"] else "",
                                       f"malformed row: {len(fields)} fields, expected {len(header)} ({header})"))
                continue
            rel = fields[col["Path"]].strip()
            category = canonical_category(fields[col["Category"]])
            if not rel:
                skipped.append(Skipped(line, rel, "empty Path"))
                continue
            if category is None:
                skipped.append(Skipped(line, rel, f"unknown Category {fields[col['Category']].strip()!r}; "
                                                  f"expected {known_categories()}"))
                continue
            try:
                rows.append(Row(rel, category, _parse_label(fields[col["Label"]]), line))
            except ValueError as e:
                skipped.append(Skipped(line, rel, str(e)))
    if not rows and not skipped:
        raise ValueError(f"{csv_file} has a header but no rows; expected one row per video")
    return rows, skipped


def read_metadata(root: str | os.PathLike, csv_path: str | os.PathLike | None = None
                  ) -> tuple[list[Entry], list[Skipped]]:
    """Parse ``csv_path``, by default :func:`find_metadata` (``<root>/metadata.csv`` or the one beside root),
    into usable entries and skipped rows; each row's Path is relative to ``root``.

    Per-row problems never abort: a malformed row, a Label that is not a list literal of strings, an
    unknown category, a duplicate, a path resolving outside the root (after ``..`` and symlinks: refused,
    never opened) or a missing file becomes a :class:`Skipped`. A missing folder, an empty folder, a
    missing metadata.csv, a header without Path/Category/Label, or a CSV without rows raise.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"SpookyBench root {root} is not a folder")
    root = root.resolve()
    csv_file = Path(csv_path).expanduser() if csv_path is not None else find_metadata(root)
    rows, skipped = metadata_rows(csv_file)
    entries: list[Entry] = []
    seen: dict[Path, int] = {}
    for r in rows:
        # Release paths are POSIX; a Windows-made CSV may use backslashes. Containment is checked on the
        # resolved path, so "..", absolute paths and symlinks leading out of root are all refused.
        path = (root / r.rel.replace("\\", "/")).resolve()
        if not path.is_relative_to(root):
            skipped.append(Skipped(r.row, r.rel, f"refused: path resolves to {path}, outside the root {root}"))
        elif path in seen:
            skipped.append(Skipped(r.row, r.rel, f"duplicate of the row on line {seen[path]}"))
        elif not path.is_file():
            what = "missing file" if not path.exists() else "not a regular file"
            skipped.append(Skipped(r.row, r.rel, f"{what}: {path}"))
        else:
            seen[path] = r.row
            entries.append(Entry(path, r.rel, r.category, r.answers, r.row))
    skipped.sort(key=lambda s: s.row)  # in the file's order
    if skipped:
        log.info("%s: skipped %d of %d rows", csv_file, len(skipped), len(entries) + len(skipped))
    return entries, skipped
