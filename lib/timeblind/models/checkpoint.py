"""Model files: plain tensors and builtins only, so they load with torch.load(weights_only=True)
and loading never executes code from a file. Each names its format and the config that rebuilds it."""

from __future__ import annotations

import dataclasses
import pickletools
import re
import warnings
from pathlib import Path

import torch

from timeblind.core.io import atomic
from timeblind.core.tasks import TaskSpec
from timeblind.models.config import ENCODER_CONFIGS, GroundedDecoderConfig
from timeblind.models.grounded_decoder import GroundedDecoder
from timeblind.models.heads import TaskHeads
from timeblind.models.registry import VideoModel, build_model

MODEL_FORMAT = "timeblind.model/3"
DECODER_FORMAT = "timeblind.grounded_decoder/1"
READER_FORMAT = "timeblind.reader/1"
MODEL_KEYS = {"encoder": str, "encoder_config": dict, "tasks": dict, "state_dict": dict, "extra": dict}


def _save(path: str | Path, payload: dict) -> None:
    with atomic(path) as tmp:
        torch.save(payload, tmp)


def _load(path: str | Path, expected: str, what: str) -> dict:
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols before refusing: the refusal says it
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except Exception as err:  # a pickle the weights-only loader refuses, or no pickle at all
        raise ValueError(_refusal(path, what, err)) from None
    if not isinstance(payload, dict) or payload.get("format") != expected:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"{path}: expected a '{expected}' file, found {found!r}")
    return payload


def _refusal(path, what: str, err: Exception) -> str:
    """Why a file is not loaded, without torch's advice to load it unsafely (which a malicious file wants)."""
    code = re.search(r"GLOBAL (\S+)", str(err))
    code = code.group(1) if code else _imported_callable(path)
    if code:
        return (f"{path} is refused: it is not a plain-tensor {what} file, since loading it would run Python "
                f"code ({code}); it was not loaded")
    if isinstance(err, EOFError):
        return f"{path} is not a {what} file: it is empty or cut short"
    return f"{path} is not a {what} file: torch.load cannot read it as plain tensors"


def _imported_callable(path, limit: int = 1 << 20) -> str | None:
    """The first callable a plain pickle would import, read opcode by opcode (never executed); None for
    anything else. Only asked about files torch has refused (its own files import tensor rebuilders)."""
    try:
        with open(path, "rb") as f:
            data = f.read(limit)
        strings = []
        for op, arg, _ in pickletools.genops(data):
            if op.name in ("GLOBAL", "INST"):
                return str(arg).replace(" ", ".")
            if op.name == "STACK_GLOBAL" and len(strings) >= 2:
                return ".".join(strings[-2:])
            if isinstance(arg, str):
                strings.append(arg)
    except Exception:  # not a pickle, or cut off at the limit: nothing found before that
        return None
    return None


def save_model(path: str | Path, model: VideoModel, encoder: str, extra: dict | None = None) -> None:
    _save(path, {
        "format": MODEL_FORMAT,
        "encoder": encoder,
        "encoder_config": dataclasses.asdict(model.encoder.cfg),
        "tasks": model.heads.spec.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "extra": extra or {},
    })


def load_model(path: str | Path) -> tuple[VideoModel, dict]:
    """A model written by save_model (in eval mode) and the file's contents. A file that does not
    hold what save_model writes gets a ValueError naming the file and the key."""
    payload = _load(path, MODEL_FORMAT, "timeblind model")
    encoder, options, tasks = _model_parts(path, payload)
    try:
        model = build_model(encoder, tasks, **options)
    except (TypeError, ValueError, RuntimeError) as err:  # e.g. a negative or non-integer size
        raise ValueError(f"{path}: encoder_config {options} does not build a {encoder!r} encoder: {err}") from None
    try:
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, TypeError, AttributeError) as err:  # missing, unexpected, mis-shaped or non-tensor weights
        details = [line.strip() for line in str(err).splitlines()[1:] if line.strip()] or [str(err)]
        more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
        raise ValueError(f"{path}: weights do not fit encoder {encoder!r}: {details[0]}{more}") from None
    return model.eval(), payload


def _model_parts(path, payload: dict) -> tuple[str, dict, TaskSpec]:
    """The encoder name, its options and the tasks a model file records, each checked."""
    missing = [key for key in MODEL_KEYS if key not in payload]
    if missing:
        raise ValueError(f"{path}: missing key(s) {missing}; a timeblind model file holds {list(MODEL_KEYS)}")
    for key, kind in MODEL_KEYS.items():
        if not isinstance(payload[key], kind):
            raise ValueError(f"{path}: '{key}' is a {type(payload[key]).__name__}; expected a {kind.__name__}")
    encoder = payload["encoder"]
    if encoder not in ENCODER_CONFIGS:
        raise ValueError(f"{path}: 'encoder' {encoder!r} is not an encoder; expected one of {list(ENCODER_CONFIGS)}")
    try:
        tasks = TaskSpec.from_dict(payload["tasks"])
        _check_tasks(tasks)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: 'tasks' {payload['tasks']!r} is not a task list: {err}") from None
    frame_shapes(path, payload)
    return encoder, payload["encoder_config"], tasks


def _check_tasks(tasks: TaskSpec) -> None:
    names = (tasks.classes, tasks.class_categories)
    if not all(isinstance(n, tuple) and all(isinstance(c, str) for c in n) for n in names):
        raise ValueError("classes and class_categories must be lists of names")
    for name in ("frames", "windows"):
        value = getattr(tasks, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r}, expected a positive integer")


def frame_shapes(path, payload: dict) -> dict[str, tuple[int, int, int]]:
    """The (frames, height, width) a model was trained on per category, as its file records it
    (empty in older files)."""
    shapes = payload["extra"].get("frame_shapes") or {}
    if not isinstance(shapes, dict):
        raise ValueError(f"{path}: 'extra.frame_shapes' {shapes!r}; expected {{category: [frames, height, width]}}")
    for category, shape in shapes.items():
        if not (isinstance(shape, (list, tuple)) and len(shape) == 3
                and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape)):
            raise ValueError(f"{path}: 'extra.frame_shapes.{category}' {shape!r}; expected [frames, height, width] "
                             "of positive integers")
    return {c: tuple(s) for c, s in shapes.items()}


def save_decoder(path: str | Path, net: GroundedDecoder, extra: dict) -> None:
    _save(path, {"format": DECODER_FORMAT, "config": dataclasses.asdict(net.cfg), "state_dict": net.state_dict(),
                 **extra})


def load_decoder(path: str | Path) -> tuple[GroundedDecoder, dict]:
    """A decoder written by save_decoder (in eval mode) and its extras."""
    payload = _load(path, DECODER_FORMAT, "grounded decoder")
    net = GroundedDecoder(GroundedDecoderConfig(**payload["config"]))
    net.load_state_dict(payload["state_dict"])
    return net.eval(), payload


def save_reader(path: str | Path, weights: dict, tasks: TaskSpec, extra: dict | None = None) -> None:
    """The pretrained figure reader: the heads' reader weights and the tasks they answer."""
    _save(path, {"format": READER_FORMAT, "tasks": tasks.to_dict(), "state_dict": weights, "extra": extra or {}})


def load_reader(path: str | Path, heads: TaskHeads) -> dict:
    """Put a pretrained reader into `heads`, which must answer the same tasks; returns the file's extras."""
    payload = _load(path, READER_FORMAT, "timeblind reader")
    if TaskSpec.from_dict(payload["tasks"]) != heads.spec:
        raise ValueError(f"{path}: the reader was trained for other tasks than this model's "
                         "(another data set's classes, categories or windows)")
    missing = sorted(set(payload["state_dict"]) - set(heads.state_dict()))
    if missing:
        raise ValueError(f"{path}: reader weights {missing[:3]} have no place in these heads")
    heads.load_state_dict(payload["state_dict"], strict=False)
    return payload["extra"]
