"""The official SpookyBench release layout and its rules: the category names, and how an answer is scored.

Layout (as in the paper's repository, TimeBlindness/time-blindness)::

    root/
      metadata.csv         columns Path, Category, Label
      words/hello.mp4      Path is relative to root: "words/hello.mp4"
      shapes/  images/  videos/

* ``Category`` is one of ``words``, ``shapes``, ``images``, ``videos``; the paper's fine-tune script
  spells images and videos ``objects`` and ``dynamics``, so wherever a category is read those names
  mean images and videos, in any case (:func:`canonical_category`). ``patterns`` is a timeblind-only
  category, not in the release: exported to a folder of its own (``root/patterns/`` with its own
  metadata.csv), so the official tools never meet it, and read like any other category.
* metadata.csv may also sit beside root, as the release's README shows it (io/metadata.py, ``find_metadata``).
* ``Label`` is a Python list literal of accepted answers, e.g. ``"['cat', 'kitten']"``; it is parsed with
  ``ast.literal_eval`` only. A prediction is correct iff any answer occurs, case-insensitively, as a
  substring of the prediction (:func:`is_correct`).
* Videos are H.264 .mp4. The real ones are 960x540, Constrained Baseline, yuv420p, limited range, grey,
  tens to hundreds of frames at a variable frame rate.

The layout is written by io/export.py, its metadata.csv parsed by io/metadata.py and its videos read by
io/folder.py; this module holds what they and the scorers share, so a scorer needs none of them.
"""

from __future__ import annotations

from collections.abc import Iterable

METADATA = "metadata.csv"
COLUMNS = ("Path", "Category", "Label")
OFFICIAL_CATEGORIES = ("words", "shapes", "images", "videos")
PATTERNS = "patterns"  # timeblind-only: exported to a folder of its own, never into the official metadata.csv
EXPORT_CATEGORIES = OFFICIAL_CATEGORIES + (PATTERNS,)
CATEGORY_ALIASES = {"objects": "images", "dynamics": "videos"}  # the paper's fine-tune script's names
CATEGORIES = EXPORT_CATEGORIES + tuple(CATEGORY_ALIASES)  # every name read, in any case


def canonical_category(name) -> str | None:
    """A Category as written anywhere (any case, surrounding spaces, the paper's aliases) -> its name
    here (one of EXPORT_CATEGORIES); None when it is none of them."""
    key = str(name).strip().lower()
    key = CATEGORY_ALIASES.get(key, key)
    return key if key in EXPORT_CATEGORIES else None


def known_categories() -> str:
    aliases = ", ".join(f"{a} (= {c})" for a, c in CATEGORY_ALIASES.items())
    return f"{', '.join(EXPORT_CATEGORIES)} or {aliases}, in any case"


def parse_categories(names: Iterable[str]) -> list[str]:
    """Category names given by a user -> their names here, in order, without repeats; ValueError naming
    the first unknown one and the names allowed."""
    chosen = []
    for name in names:
        category = canonical_category(name)
        if category is None:
            raise ValueError(f"unknown category {name!r}; expected {known_categories()}")
        if category not in chosen:
            chosen.append(category)
    return chosen


def is_correct(prediction: str, answers: Iterable[str]) -> bool:
    """SpookyBench scoring: any accepted answer occurs case-insensitively as a substring of the prediction."""
    pred = prediction.lower()
    return any(a.strip().lower() in pred for a in answers if a.strip())

