"""One atomic write: a killed job never leaves a half-written file under its final name."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside `path` to write to, renamed onto `path` when the block ends without
    an error (removed otherwise). It keeps the suffix, since writers such as np.save or savefig
    choose the format by it."""
    path = Path(path)
    tmp = path.with_name(f"{path.stem}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike, payload) -> Path:
    return write_text(path, json.dumps(payload, indent=2))


def write_csv(frame, path: str | os.PathLike) -> Path:
    """A result table (a pandas DataFrame) as CSV, floats to four decimals."""
    with atomic(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.4f")
    return Path(path)


def file_sha256(path: str | os.PathLike) -> str:
    """A file's content hash: what a result made from it depends on, wherever the file lies."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
