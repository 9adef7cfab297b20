"""The bad-input corpus: what can come in from outside, broken in every way we know of.

Every reader of outside data runs through it (tests/test_bad_inputs.py): `timeblind eval-spookybench`
and `timeblind snr` on folders, metadata CSVs and videos, eval-spookybench on model files, `timeblind
score` on results JSONs and metadata CSVs, each command on its flags, and the planner on configs.
The rule for each item: one line that names the file or key and what was expected; exit 2 where
nothing was done; the other items still scored.

Rows are (metadata Path, Category, Label) added to a good export; `make` breaks the file the row
points at (given the folder and a path outside it). `reason` holds the words its line must contain,
per command where they differ.
"""

from __future__ import annotations

import pickle
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

RANDOM = random.Random(0)  # the same junk bytes in every run

@dataclass(frozen=True)
class BadRow:
    name: str
    path: str  # the metadata Path: what the answer must name
    reason: str | dict[str, str]  # words of the answer, or {command: words}
    make: Callable[[Path, Path, Path], None] = lambda root, outside, good: None  # (folder, outside file, good video)
    category: str = "shapes"
    label: str = "['circle']"
    row: str | None = None  # the CSV line as it is, for rows that are malformed themselves

    def reason_for(self, command: str) -> str:
        return self.reason if isinstance(self.reason, str) else self.reason[command]

    def csv_line(self) -> str:
        return self.row if self.row is not None else f'{self.path},{self.category},"{self.label}"'


def _write(rel: str, data: bytes | Callable[[bytes], bytes]):
    def make(root: Path, outside: Path, good: Path) -> None:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data(good.read_bytes()) if callable(data) else data)
    return make


def _playlist(rel: str, text: str):
    return lambda root, outside, good: _write(rel, text.format(outside=outside).encode())(root, outside, good)


def _link(rel: str):
    def make(root: Path, outside: Path, good: Path) -> None:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).symlink_to(outside)
    return make


def _folder(rel: str):
    return lambda root, outside, good: (root / rel).mkdir(parents=True)


def _frames(rel: str, count: int):
    """A valid video of `count` frames (too short for the model, or for the analyzer at step 2)."""
    def make(root: Path, outside: Path, good: Path) -> None:
        from timeblind.io.export import write_video
        from timeblind.io.video import load_video

        write_video(load_video(good)[:count], root / rel)
    return make


def _audio(rel: str):
    def make(root: Path, outside: Path, good: Path) -> None:
        import av
        import numpy as np

        with av.open(str(root / rel), "w", format="mp4") as container:
            stream = container.add_stream("aac", rate=8000)
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate = 8000
            for packet in [*stream.encode(frame), *stream.encode(None)]:
                container.mux(packet)
    return make


ROWS = [
    BadRow("missing", "shapes/ghost.mp4", "missing file"),
    BadRow("zero_bytes", "shapes/zero.mp4", "cannot open", _write("shapes/zero.mp4", b"")),
    BadRow("truncated", "shapes/half.mp4", "truncated", _write("shapes/half.mp4", lambda good: good[: len(good) // 2])),
    BadRow("header_only", "shapes/header.mp4", "no video stream", _write("shapes/header.mp4", lambda good: good[:200])),
    BadRow("random_bytes", "shapes/noise.mp4", "cannot open", _write("shapes/noise.mp4", RANDOM.randbytes(4096))),
    BadRow("text_as_mp4", "shapes/text.mp4", "cannot open", _write("shapes/text.mp4", b"not a video\n")),
    BadRow("audio_only", "shapes/audio.mp4", "no video stream", _audio("shapes/audio.mp4")),
    BadRow("hls_playlist", "shapes/hls.mp4", "cannot open",
           _playlist("shapes/hls.mp4", "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{outside}\n#EXT-X-ENDLIST\n")),
    BadRow("ffconcat", "shapes/concat.mp4", "cannot open",
           _playlist("shapes/concat.mp4", "ffconcat version 1.0\nfile {outside}\n")),
    BadRow("folder_as_video", "shapes/dir.mp4", "not a regular file", _folder("shapes/dir.mp4")),
    BadRow("too_short", "shapes/short.mp4",
           {"eval": "video has 2 frames; the model needs at least 6", "snr": "need at least 2 kept frames, got 1"},
           _frames("shapes/short.mp4", 2)),
    BadRow("dot_dot", "../outside.mp4", "outside the root"),
    BadRow("absolute", "{outside}", "outside the root"),
    BadRow("symlink_out", "shapes/link.mp4", "outside the root", _link("shapes/link.mp4")),
    BadRow("label_string", "shapes/a.mp4", "is a str; expected a list of strings", label="'circle'"),
    BadRow("label_code", "shapes/b.mp4", "not a Python literal", label="__import__('os').system('false')"),
    BadRow("label_empty", "shapes/c.mp4", "has no non-empty answer", label="['']"),
    BadRow("label_numbers", "shapes/d.mp4", "expected a list of strings", label="[1, 2]"),
    BadRow("category", "sounds/e.mp4", "unknown Category 'sounds'", category="sounds"),
    BadRow("few_fields", "shapes/f.mp4", "malformed row: 2 fields, expected 3", row="shapes/f.mp4,shapes"),
    BadRow("empty_path", "line", "empty Path", row=',shapes,"[\'circle\']"'),
]


@dataclass(frozen=True)
class BadFolder:
    """A folder (or its metadata.csv) broken as a whole: nothing can be read, exit 2."""

    name: str
    reason: str
    make: Callable[[Path, Path], Path]  # (a copy of a good export, tmp) -> the --dataset to pass (the line names it)


def _meta(text: str | bytes):
    def make(root: Path, tmp: Path) -> Path:
        (root / "metadata.csv").write_bytes(text if isinstance(text, bytes) else text.encode())
        return root
    return make


def _meta_dir(root: Path, tmp: Path) -> Path:
    (root / "metadata.csv").unlink()
    (root / "metadata.csv").mkdir()
    return root


def _no_meta(root: Path, tmp: Path) -> Path:
    (root / "metadata.csv").unlink()
    return root


def _empty(root: Path, tmp: Path) -> Path:
    shutil.rmtree(root)
    root.mkdir()
    return root


def _a_file(root: Path, tmp: Path) -> Path:
    return root / "metadata.csv"


FOLDERS = [
    BadFolder("missing", "is not a folder", lambda root, tmp: tmp / "nowhere"),
    BadFolder("a_file", "is not a folder", _a_file),
    BadFolder("empty", "is empty; expected a SpookyBench folder", _empty),
    BadFolder("no_metadata", "has no metadata.csv", _no_meta),
    BadFolder("metadata_is_a_folder", "metadata.csv is not a file", _meta_dir),
    BadFolder("metadata_empty", "is empty; expected a header", _meta("")),
    BadFolder("header_only", "has a header but no rows", _meta("Path,Category,Label\n")),
    BadFolder("missing_column", "lacks column(s) ['Label']", _meta("Path,Category\nshapes/x.mp4,shapes\n")),
    BadFolder("binary", "metadata.csv", _meta(RANDOM.randbytes(2048))),
    BadFolder("nul_header", "metadata.csv", _meta(b"Path,Cat\0egory,Label\n")),
    BadFolder("header_unreadable", "unreadable header", _meta('"Path,Category,Label\n' + "x" * 200_000 + "\n")),
    BadFolder("every_row_bad", "nothing", _meta("Path,Category,Label\nshapes/ghost.mp4,shapes,\"['circle']\"\n")),
]


MANIFESTS = [  # a generated data set's manifest.json, broken: (name, its bytes, words of the line)
    ("not_json", b"{not json", "is not a data set manifest"),
    ("binary", RANDOM.randbytes(512), "is not a data set manifest"),
    ("a_list", b"[1, 2]", "has format 'list'"),
    ("other_format", b'{"format": "timeblind.stimuli/1"}', "has format 'timeblind.stimuli/1'"),
]


def code_pickle(path: Path) -> None:
    """A model file that would run code when unpickled without weights_only."""

    class Payload:
        def __reduce__(self):
            return (print, ("code ran",))

    with open(path, "wb") as f:
        pickle.dump({"format": "timeblind.model/2", "encoder": Payload()}, f)


def edited(change: Callable[[dict], None]):
    def make(good: Path, path: Path) -> None:
        payload = torch.load(good, weights_only=True)
        change(payload)
        torch.save(payload, path)
    return make


MODELS = [  # (name, make(good model, path), words of the line)
    ("missing", lambda good, path: None, "No such file"),
    ("folder", lambda good, path: path.mkdir(), "Is a directory"),
    ("zero_bytes", lambda good, path: path.write_bytes(b""), "is not a timeblind model file: it is empty"),
    ("junk", lambda good, path: path.write_bytes(RANDOM.randbytes(512)), "is not a timeblind model file"),
    ("code", lambda good, path: code_pickle(path), "is refused: it is not a plain-tensor timeblind model file"),
    ("other_format", lambda good, path: torch.save({"weights": torch.zeros(2)}, path),
     "expected a 'timeblind.model/3' file, found None"),
    ("not_a_dict", lambda good, path: torch.save([1, 2], path), "expected a 'timeblind.model/3' file, found 'list'"),
    ("no_encoder", edited(lambda p: p.pop("encoder")), "missing key(s) ['encoder']"),
    ("no_tasks", edited(lambda p: p.pop("tasks")), "missing key(s) ['tasks']"),
    ("no_extra", edited(lambda p: p.pop("extra")), "missing key(s) ['extra']"),
    ("no_weights", edited(lambda p: p.pop("state_dict")), "missing key(s) ['state_dict']"),
    ("tasks_list", edited(lambda p: p.update(tasks=["circle"])), "'tasks' is a list; expected a dict"),
    ("tasks_keys", edited(lambda p: p["tasks"].update(colour="red")), "'tasks'"),
    ("tasks_frames", edited(lambda p: p["tasks"].update(frames=0)), "frames=0, expected a positive integer"),
    ("unknown_encoder", edited(lambda p: p.update(encoder="vit")), "'encoder' 'vit' is not an encoder"),
    ("negative_dim", edited(lambda p: p["encoder_config"].update(dim=-1)), "does not build a 'early_temporal'"),
    ("unknown_option", edited(lambda p: p["encoder_config"].update(depth=3)), "unknown options ['depth']"),
    ("wrong_weights", edited(lambda p: p["encoder_config"].update(dim=32)), "weights do not fit encoder"),
    ("frame_shapes", edited(lambda p: p["extra"].update(frame_shapes={"shapes": [6, 16]})), "'extra.frame_shapes.shapes' [6, 16]"),
]

@dataclass(frozen=True)
class BadScoreInput:
    """A results JSON or metadata.csv given to `timeblind score` that cannot be scored at all: exit 2."""

    name: str
    broken: str  # "results" or "csv": the file the line must name
    reason: str
    make: Callable[[Path], None]  # breaks the file at this path (a good one is there, or nothing if missing)


def _text(text: str | bytes):
    return lambda path: path.write_bytes(text if isinstance(text, bytes) else text.encode())


def _gone(path: Path) -> None:
    path.unlink()


def _into_folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


SCORE = [
    BadScoreInput("results_missing", "results", "does not exist", _gone),
    BadScoreInput("results_folder", "results", "is not a file", _into_folder),
    BadScoreInput("results_empty", "results", "is not JSON", _text("")),
    BadScoreInput("results_binary", "results", "is not JSON", _text(RANDOM.randbytes(512))),
    BadScoreInput("results_number", "results", "holds a JSON int", _text("42")),
    BadScoreInput("results_deep", "results", "nested too deeply", _text("[" * 100_000 + "]" * 100_000)),
    BadScoreInput("results_records", "results", "record 0 has keys []", _text("[1, 2]")),
    BadScoreInput("results_unmatched", "results", "nothing to score", _text('{"elsewhere/x.mp4": "circle"}')),
    BadScoreInput("csv_missing", "csv", "does not exist", _gone),
    BadScoreInput("csv_folder", "csv", "is not a file", _into_folder),
    BadScoreInput("csv_empty", "csv", "is empty; expected a header", _text("")),
    BadScoreInput("csv_header_only", "csv", "has a header but no rows", _text("Path,Category,Label\n")),
    BadScoreInput("csv_missing_column", "csv", "lacks column(s) ['Label']",
                  _text("Path,Category\nshapes/x.mp4,shapes\n")),
    BadScoreInput("csv_unreadable_header", "csv", "unreadable header",
                  _text('"Path,Category,Label\n' + "x" * 200_000 + "\n")),
]

FLAGS = {  # command -> (extra arguments, words of the line); the rest of the command line is good
    "eval": [
        (["--height", "0"], "argument --height: 0 is not a positive integer"),
        (["--frames", "-2"], "argument --frames: -2 is not a positive integer"),
        (["--width", "wide"], "argument --width: 'wide' is not an integer"),
        (["--lexicon", "-5"], "argument --lexicon: -5 is not a non-negative integer"),
        (["--method", "cubic"], "argument --method: invalid choice: 'cubic'"),
        (["--categoriez", "shapes"], "unrecognized arguments: --categoriez"),
        (["--categories", "shapes", "sounds"], "unknown category 'sounds'; expected"),
        (["--output", "/dev/null/predictions.json"], "/dev/null is a file, not a folder"),
    ],
    "snr": [
        (["--sample-rate", "0"], "argument --sample-rate: 0 is not a positive integer"),
        (["--window", "x"], "argument --window: 'x' is not an integer"),
        (["--processes", "0"], "argument --processes: 0 is not a positive integer"),
        (["--processes", "1.5"], "argument --processes: '1.5' is not an integer"),
        (["--workers", "0"], "argument --workers: 0 is not a positive integer"),  # the earlier name of --processes
        (["--per-category", "-1"], "argument --per-category: -1 is not a positive integer"),
    ],
    "export": [
        (["--scale", "0"], "argument --scale: 0 is not a positive integer"),
        (["--limit", "-1"], "argument --limit: -1 is not a positive integer"),
        (["--fps", "0"], "argument --fps: 0 is not a positive number"),
        (["--fps", "inf"], "argument --fps: inf is not a positive number"),
    ],
}

CONFIGS = [  # (a change to the quick profile, words of its one line)
    ({"data": {"heigth": 32}}, "data: unknown key(s) ['heigth']; allowed:"),
    ({"data": {"frames": 1}}, "data.frames: 1 is less than the minimum of 2"),
    ({"data": {"speed": "fast"}}, "data.speed: 'fast' is not of type 'number'"),
    ({"training": {"lr": 0}}, "training.lr: 0 is less than or equal to the minimum of 0"),
    ({"training": {"max_step": 5}}, "training: unknown key(s) ['max_step']"),
    ({"reading": {"lexicon": -1}}, "reading.lexicon: -1 is less than the minimum of 0"),
    ({"encoders": {"two_stream": {"segments": 6}}}, "data.sizes.patterns.frames=8: encoders.two_stream: clip has 8 frames"),
    ({"encoders": {"framewise": {"max_frames": 14}}}, "data.sizes.words.frames=16: encoders.framewise: clip has 16 "
     "frames, encoder supports at most max_frames=14"),
    ({"encoders": {"framewise": {"frame_token": "yes"}}},
     "encoders.framewise.frame_token: 'yes' is not of type 'boolean'"),
    ({"export": {"shift": {"frames": 7}}}, "export.shift.frames=7: fewer than the 12 frames"),
    ({"export": {"shift": {"fram": 4}}}, "export.shift: unknown key(s) ['fram']; allowed:"),
    ({"export": {"shift": {"shapes": ["circle"]}}}, "export.shift changes ['shapes']"),
    ({"studies": {"base": {"data": {"heigth": 32}}}}, "studies.base.data: unknown key(s) ['heigth']"),
    ({"studies": {"context": {"train": {"frames": ["8"]}}}}, "studies.context.train.frames[0]: '8' is not of type"),
    ({"studies": {"context": {"train": {"frames": [1]}}}}, "studies.context.train.frames[0]: 1 is less than the "
     "minimum of 2"),
    ({"studies": {"stave": {"options": {"head_scale": ["big"]}}}}, "studies.stave.options.head_scale[0]: 'big' is a "
     "str"),
    ({"studies": {"context": {"encoders": ["vit"]}}}, "studies.context.encoders: ['vit'] not in the encoders section"),
    ({"grounding": {"best": "coupled", "variants": ["factorised"]}}, "grounding.best: 'coupled' is not one of "
     "grounding.variants"),
    ({"grounding": {"encoders": ["vit"]}}, "grounding.encoders: ['vit'] are not in the encoders section"),
]
