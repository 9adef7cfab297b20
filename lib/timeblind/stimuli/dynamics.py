"""Moving masks for the `videos` category: the hidden figure itself moves, turns or grows over the clip.

SpookyBench's dynamic scenes ask what the figure is and how it moves, so a sample is a (T, H, W) stack of
masks, one per frame, labelled like "airplane moving left". The figure is a shape (SHAPES) or an object
(OBJECTS). Each trajectory is visible but bounded, and the figure stays inside the frame on every frame:
- translation: a share of the frame side over the clip, drawn from `travel` (default 30-50%; less when the
  figure leaves less room);
- rotation: 90-180 degrees, centred on the upright pose;
- growth or shrinkage: a size ratio of 1.6-2 between the first and the last frame, at a steady rate.
Positive angles turn clockwise on screen (y points down), as in shape_mask.

Observability: a rotation is only visible where the figure is not rotationally symmetric. Figures with
continuous symmetry (circle, ring) have no observable rotation (`observable` says so and dynamic_masks
refuses them). For a figure with n-fold symmetry (period P = 360/n degrees) the sweep keeps each frame's
step at most P/4, so the shorter way round is always the true direction, and keeps the total sweep at
least P/6 away from a multiple of P, so the last pose never repeats the first.
"""

from __future__ import annotations

import numpy as np

from timeblind.stimuli.masks import SHAPES, shape_mask
from timeblind.stimuli.objects import OBJECTS, object_hull, object_mask

MOTIONS = (
    "moving left",
    "moving right",
    "moving up",
    "moving down",
    "rotating clockwise",
    "rotating counterclockwise",
    "growing",
    "shrinking",
)

# Order of rotational symmetry about the placement centre: 0 = continuous, absent = 1 (none). Objects
# were measured as rotated-mask IoU > 0.85 at multiples of 360/n (club and rook only nearly so).
SYMMETRY: dict[str, int] = {
    "circle": 0, "ring": 0, "square": 4, "cross": 4, "star": 5, "pentagon": 5, "hexagon": 6, "diamond": 2,
    "triangle": 3, "sun": 8, "gear": 10, "snowflake": 6, "club": 3, "chess rook": 2,
}

TRAVEL = (0.3, 0.5)  # default translation over the clip, fraction of the frame side along the motion
_SWEEP = (90.0, 180.0)  # rotation over the clip, degrees
_GROWTH = (1.6, 2.0)  # size ratio between the largest and the smallest frame
_JITTER = 0.2  # radians: random tilt of the starting pose
_MARGIN = 0.02  # free border kept around the figure, fraction of min(H, W) (at least 1 px)

_DIRECTIONS = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}  # (dx, dy), y down


def _check(what: str, motion: str) -> None:
    if what not in SHAPES and what not in OBJECTS:
        raise ValueError(f"unknown figure {what!r}; expected a shape from {sorted(SHAPES)} "
                         f"or an object from {sorted(OBJECTS)}")
    if motion not in MOTIONS:
        raise ValueError(f"unknown motion {motion!r}; expected one of {list(MOTIONS)}")


def observable(what: str, motion: str) -> bool:
    """Whether `motion` of `what` can be seen at all: rotations of a circle or a ring cannot."""
    _check(what, motion)
    return not (motion.startswith("rotating") and SYMMETRY.get(what, 1) == 0)


def dynamic_label(what: str, motion: str) -> str:
    """The class label, e.g. "circle moving left"."""
    _check(what, motion)
    return f"{what} {motion}"


def dynamic_answers(what: str, motion: str) -> list[str]:
    """Accepted answers, lowercase, for case-insensitive substring scoring as in SpookyBench.

    The label itself, the same with the verb in the present simple ("circle moves left", "star rotates
    clockwise", "gear grows"), and for counterclockwise the spellings "counter-clockwise" and "anticlockwise".
    """
    label = dynamic_label(what, motion)
    verb, _, rest = motion.partition(" ")
    simple = {"moving": "moves", "rotating": "rotates", "growing": "grows", "shrinking": "shrinks"}[verb]
    answers = [label, " ".join(filter(None, (what, simple, rest)))]
    if rest == "counterclockwise":
        answers += [a.replace("counterclockwise", alt) for alt in ("counter-clockwise", "anticlockwise")
                    for a in answers[:2]]
    return answers


def _sweeps(period: float, frames: int) -> list[tuple[float, float]]:
    """Allowed total rotations in degrees: intervals within _SWEEP, at most period / 4 per frame, and at
    least period / 6 away from every multiple of the symmetry period (see the module doc)."""
    high = min(_SWEEP[1], (frames - 1) * period / 4)
    pieces, low = [], _SWEEP[0]
    for k in range(1, int(high / period) + 2):
        cut_start, cut_end = k * period - period / 6, k * period + period / 6
        if min(cut_start, high) > low:
            pieces.append((low, min(cut_start, high)))
        low = max(low, cut_end)
    if high > low:
        pieces.append((low, high))
    return pieces


def _sweep(what: str, frames: int, rng: np.random.Generator) -> float:
    """A total rotation in degrees, uniform over the allowed ones, from a single draw of rng."""
    period = 360.0 / max(SYMMETRY.get(what, 1), 1)
    pieces = _sweeps(period, frames)
    if not pieces:
        needed = next(t for t in range(frames + 1, 10_000) if _sweeps(period, t))
        raise ValueError(f"rotating {what!r} needs at least {needed} frames to show its direction "
                         f"(symmetry period {period:g} degrees); got {frames}")
    lengths = np.array([b - a for a, b in pieces])
    position = rng.uniform(0, lengths.sum())
    index = min(int(np.searchsorted(np.cumsum(lengths), position, side="right")), len(pieces) - 1)
    return pieces[index][0] + position - (np.cumsum(lengths)[index] - lengths[index])


def dynamic_masks(
    what: str,
    motion: str,
    height: int,
    width: int,
    frames: int,
    rng: np.random.Generator,
    *,
    scale: float = 0.3,
    every: int = 1,
    travel: tuple[float, float] = TRAVEL,
) -> np.ndarray:
    """(frames, height, width) bool masks of `what` performing `motion`; a pure function of rng's state.

    scale: the figure's largest radius (as in shape_mask and object_mask) as a fraction of min(height,
    width): a growing or shrinking figure reaches it, a moving or turning one is drawn at 85-100% of it.
    The start pose, the amount of motion and the position are drawn from rng such that the figure stays
    inside the frame, with a small margin, on every frame. every: draw only every so many frames (a
    strided clip), the same masks as [::every] of all of them. travel: [low, high] share of the frame
    side a moving figure crosses over the clip; a frame leaving room for less than half of low is refused.
    """
    _check(what, motion)
    if not observable(what, motion):
        raise ValueError(f"{what!r} {motion!r} is not observable: the {what} looks the same at every angle")
    if frames < 2:
        raise ValueError(f"frames {frames}: expected at least 2 for motion")
    render, outline = (shape_mask, SHAPES[what]) if what in SHAPES else (object_mask, object_hull(what))
    side = min(height, width)
    margin = max(1.0, _MARGIN * side)
    u = np.linspace(0.0, 1.0, frames)  # (T,) progress through the clip

    # Per-frame pose relative to the start centre: rotation (radians), radius (px), offset (px).
    verb, _, direction = motion.partition(" ")
    tilt = rng.uniform(-_JITTER, _JITTER)
    angle = np.full(frames, tilt)
    offset = np.zeros((frames, 2))  # (T, 2) x, y
    if verb in ("growing", "shrinking"):
        ratio = rng.uniform(*_GROWTH)
        radius = scale * side * ratio ** ((u - 1) if verb == "growing" else -u)  # geometric: a steady rate
    else:
        radius = np.full(frames, scale * rng.uniform(0.85, 1.0) * side)
    if verb == "rotating":
        sweep = np.radians(_sweep(what, frames, rng)) * (1 if direction == "clockwise" else -1)
        angle = tilt + sweep * (u - 0.5)
    # Bounding box of the figure over all frames, before any translation: (x, y) min and max.
    c, s = np.cos(angle), np.sin(angle)
    rotations = np.stack([np.stack([c, s], -1), np.stack([-s, c], -1)], -2)  # (T, 2, 2), as in shape_mask
    points = np.einsum("nk,tkj->tnj", outline, rotations) * radius[:, None, None]  # (T, N, 2)
    low, high = points.min(axis=(0, 1)), points.max(axis=(0, 1))  # (2,) x, y
    frame = np.array([width, height], float)
    room = frame - 2 * margin - (high - low)  # (2,) how far the figure can travel along x and y
    if np.any(room < 0):
        raise ValueError(f"{what!r} at scale {scale} does not fit a {height}x{width} frame; use a smaller scale")
    if verb == "moving":
        dx, dy = _DIRECTIONS[direction]
        axis = 0 if dx else 1
        shift = min(rng.uniform(*travel) * frame[axis], room[axis])
        if shift < travel[0] / 2 * frame[axis]:
            raise ValueError(f"{what!r} at scale {scale} leaves room to move only {shift:.0f} px in a "
                             f"{height}x{width} frame; use a smaller scale")
        offset[:, axis] = u * shift * (dx or dy)
        low = low + np.minimum(offset[-1], 0)
        high = high + np.maximum(offset[-1], 0)
    first, last = margin - low, frame - margin - high  # range of the start centre; equal when shift = room
    start = rng.uniform(first, np.maximum(last, first))  # (2,) x, y
    centres = start + offset  # (T, 2)
    return np.stack([
        render(what, height, width, scale=r / side, center=(y / height, x / width), rotation=a)
        for (x, y), r, a in zip(centres[::every], radius[::every], angle[::every])
    ])  # (T, H, W)
