"""Opposing-motion noise: the SpookyBench principle.

Pixels inside the mask show a noise field translating one way, pixels outside show an
independent field translating the opposite way. Every single frame is i.i.d. noise
everywhere, so the mask exists only in how pixels move from frame to frame.

A clip is cut out of two static noise fields: frame t is the window of each field displaced
by round(t * speed * direction) (direction scaled so that its dominant axis is 1: see offsets),
so the per-frame cost is a copy, not a fresh draw. Binary noise is rendered straight into
bit-packed bytes (np.packbits order), the storage format.

A MotionConfig may leave things to be drawn per clip (speed and density ranges, a stride from
`shift`) and may render at k times the clip size (stimuli/scale.py); draw_motion and
clip_config turn it into the one concrete config the renderers here take.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

NOISE_KINDS = ("binary", "gaussian", "blurred")
DIRECTIONS = ("any", "axis", "mixed")
GAUSSIAN_STD = 0.25  # pixel std of Gaussian noise at contrast 1, in [0, 1] grey units


def is_range(value) -> bool:
    """A [low, high] pair drawn per clip, as opposed to one value for every clip."""
    return isinstance(value, (tuple, list))


def _range_ok(value, low_ok, high_ok) -> bool:
    """A scalar, or a [low, high] pair with low <= high, every bound passing its check."""
    if not is_range(value):
        return low_ok(value) and high_ok(value)
    return len(value) == 2 and low_ok(value[0]) and high_ok(value[1]) and value[0] <= value[1]


def upper(value) -> float:
    """The largest value a clip may draw."""
    return float(value[1]) if is_range(value) else float(value)


@dataclass(frozen=True)
class MotionConfig:
    frames: int = 8  # clip length T
    fps: float = 10.0  # playback rate of exported videos; motion itself is in px/frame
    speed: float | tuple[float, float] = 1.0  # px/frame of each noise field, at the rendered scale; [low, high]: per clip
    angle: float | None = None  # figure direction in degrees (0 = right, 90 = up); None = random per clip
    directions: str = "any"  # when angle is None: "any" uniform angle, "axis" right/up/left/down, "mixed" both
    any_share: float = 0.5  # directions "mixed": the share of clips at a uniform angle, the rest along an axis
    noise: str = "binary"  # binary dots, gaussian (white), blurred (Gaussian, spatially low-passed)
    density: float | tuple[float, float] = 0.5  # share of bright dots in binary noise; [low, high]: per clip
    blur: float = 1.0  # spatial sigma of blurred noise, px
    coherence: float = 1.0  # share of pixels that follow their field each frame; the rest refresh at random
    contrast: float = 1.0  # binary dots at 0.5 +- contrast/2; Gaussian noise std = 0.25 * contrast
    frame_stride: int = 1  # the clip keeps every s-th frame of one rendered at `speed`: s * speed px between kept frames
    render_scale: int = 1  # k: dots rendered at k times the clip's height and width, then area-averaged k x k
    shift: tuple[float, float] | None = None  # k > 1: clip px the texture moves between kept frames, drawn per clip

    def __post_init__(self):
        positive = lambda v: v > 0  # noqa: E731
        anything = lambda v: True  # noqa: E731
        checks = [
            (self.frames >= 2, f"frames={self.frames}: need at least 2 frames for motion"),
            (self.fps > 0, f"fps={self.fps}: expected a positive frame rate"),
            (_range_ok(self.speed, positive, anything),
             f"speed={self.speed}: expected a positive speed in px/frame, or [low, high] with 0 < low <= high"),
            (isinstance(self.frame_stride, int) and self.frame_stride >= 1,
             f"frame_stride={self.frame_stride!r}: expected a positive whole number of frames"),
            (self.directions in DIRECTIONS, f"directions={self.directions!r}: expected one of {DIRECTIONS}"),
            (0.0 <= self.any_share <= 1.0, f"any_share={self.any_share}: expected a share in [0, 1]"),
            (self.noise in NOISE_KINDS, f"noise={self.noise!r}: expected one of {NOISE_KINDS}"),
            (_range_ok(self.density, positive, lambda v: v < 1.0),
             f"density={self.density}: expected a value in (0, 1), or [low, high] inside (0, 1) with low <= high"),
            (self.blur > 0, f"blur={self.blur}: expected a positive sigma in px"),
            (0.0 <= self.coherence <= 1.0, f"coherence={self.coherence}: expected a value in [0, 1]"),
            (0.0 < self.contrast <= 1.0, f"contrast={self.contrast}: expected a value in (0, 1]"),
            (isinstance(self.render_scale, int) and self.render_scale >= 1,
             f"render_scale={self.render_scale!r}: expected a whole number k >= 1"),
            (self.shift is None or (is_range(self.shift) and _range_ok(self.shift, positive, anything)),
             f"shift={self.shift}: expected [low, high] clip px per kept frame with 0 < low <= high"),
            (self.shift is None or self.render_scale > 1,
             f"shift={self.shift} needs render_scale > 1: it sets the stride between rendered frames at k x the "
             "clip size (at render_scale 1 use frame_stride)"),
            (self.shift is None or self.frame_stride == 1,
             f"shift={self.shift} and frame_stride={self.frame_stride}: shift draws each clip's stride; "
             "leave frame_stride at 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def concrete(self) -> bool:
        """Whether this is one clip's motion (what the renderers take): no per-clip draws left, no rescaling."""
        return self.render_scale == 1 and not is_range(self.speed) and not is_range(self.density)

    @property
    def step(self) -> float:
        """Displacement of each field between consecutive frames of the clip, in clip px: the largest a
        clip may draw when speed, density or stride are drawn per clip (what a motion observer must reach)."""
        k, fastest = self.render_scale, upper(self.speed)
        if self.shift is not None:  # the stride is rounded to whole rendered frames, at least one
            return max(self.shift[1] + fastest / (2 * k), fastest / k)
        return fastest * self.frame_stride / k

    @property
    def binary_levels(self) -> tuple[int, int]:
        """Grey values (0-255) of dark and bright dots."""
        low = round(127.5 * (1.0 - self.contrast))
        return low, 255 - low


@dataclass(frozen=True)
class ClipMotion:
    """One clip's draws: its direction, speed (px/frame at the rendered scale), dot density and stride
    (rendered frames between kept frames)."""

    angle: float
    speed: float
    density: float
    stride: int


def draw_angle(cfg: MotionConfig, rng: np.random.Generator) -> float:
    """The figure's direction in degrees: the configured angle, or a random one."""
    if cfg.angle is not None:
        return float(cfg.angle)
    directions = cfg.directions
    if directions == "mixed":
        directions = "any" if rng.random() < cfg.any_share else "axis"
    if directions == "axis":
        return 90.0 * int(rng.integers(4))
    return float(rng.uniform(0.0, 360.0))


def draw_motion(cfg: MotionConfig, rng: np.random.Generator) -> ClipMotion:
    """A clip's motion. Draws from rng only what varies per clip (the angle, then any range), so a
    config without ranges draws exactly what it always did."""
    angle = draw_angle(cfg, rng)
    speed = float(rng.uniform(*cfg.speed)) if is_range(cfg.speed) else float(cfg.speed)
    density = float(rng.uniform(*cfg.density)) if is_range(cfg.density) else float(cfg.density)
    stride = cfg.frame_stride
    if cfg.shift is not None:
        # like the reader (io/resample.py): the whole number of frames that moves the texture `shift` clip px
        stride = max(1, round(float(rng.uniform(*cfg.shift)) * cfg.render_scale / speed))
    return ClipMotion(angle, speed, density, stride)


def clip_config(cfg: MotionConfig, motion: ClipMotion) -> MotionConfig:
    """The concrete config one clip is rendered with, at the rendered scale."""
    return dataclasses.replace(cfg, speed=motion.speed, density=motion.density, frame_stride=motion.stride,
                               render_scale=1, shift=None)


def offsets(cfg: MotionConfig, angle: float) -> np.ndarray:
    """Integer displacement (rows, cols) of the figure field at each frame: (T, 2).

    Rows grow downwards, so an angle of 90 degrees (up) moves content to smaller rows.
    The ground field moves by the negated displacement. Speed is measured along the dominant axis
    (the Chebyshev norm): that axis advances exactly `step` px per frame, so at a step of at least
    1 px every frame moves by a whole pixel at any angle (a Euclidean step of 1 px at 45 degrees
    rounds to 0, 1, 1, 2, ...: some frame pairs would not move at all). Axis-aligned motion is the same
    either way.
    """
    t = np.arange(cfg.frames) * cfg.step
    theta = math.radians(angle)
    rows, cols = -math.sin(theta), math.cos(theta)
    dominant = max(abs(rows), abs(cols))
    return np.rint(np.stack([t * (rows / dominant), t * (cols / dominant)], axis=1)).astype(np.int64)


def field_padding(cfg: MotionConfig) -> int:
    """Margin (px) each noise field needs around the frame so every displaced window fits."""
    return math.ceil(cfg.step * (cfg.frames - 1)) + 1


def _masks(mask: np.ndarray, frames: int) -> np.ndarray:
    """A static (H, W) or dynamic (T, H, W) mask as (T, H, W) bool."""
    mask = np.asarray(mask, bool)
    if mask.ndim == 2:
        return np.broadcast_to(mask, (frames, *mask.shape))
    if mask.ndim != 3 or mask.shape[0] != frames:
        raise ValueError(f"mask shape {mask.shape}: expected (H, W) or ({frames}, H, W)")
    return mask


def bernoulli(rng: np.random.Generator, shape: tuple[int, ...], p: float) -> np.ndarray:
    """Bool array with P(True) = p (to 1/65536), from raw generator bytes: ~10x faster than rng.random."""
    n = math.prod(shape)
    draws = np.frombuffer(rng.bytes(2 * n), dtype="<u2").reshape(shape)  # little-endian on every platform
    return draws < round(p * 65536)


def packed_bernoulli(rng: np.random.Generator, rows: int, cols: int, p: float) -> np.ndarray:
    """Bit-packed Bernoulli(p) field of rows x cols pixels: (rows, ceil(cols/8)) uint8.

    At p = 0.5 every random bit is a pixel, 16x fewer draws than the general path.
    """
    if p == 0.5:
        return np.frombuffer(rng.bytes(rows * ((cols + 7) // 8)), np.uint8).reshape(rows, -1).copy()
    return np.packbits(bernoulli(rng, (rows, cols), p), axis=-1)


_SHIFTS = (8 - np.arange(8, dtype=np.uint16))[:, None, None]  # (8, 1, 1)


def _bit_shifted(packed: np.ndarray) -> np.ndarray:
    """The packed field re-aligned for every bit shift: (R, C) -> (8, R, C - 1) uint8, where byte j of
    copy s holds bits 8j+s ... 8j+s+7. Any frame's window is then a plain slice of one copy."""
    pair = (packed[:, :-1].astype(np.uint16) << 8) | packed[:, 1:]  # two neighbouring bytes
    return (pair >> _SHIFTS).astype(np.uint8)


def _check_concrete(cfg: MotionConfig) -> None:
    if not cfg.concrete:
        raise ValueError(f"speed={cfg.speed}, density={cfg.density}, render_scale={cfg.render_scale}: a config that "
                         "draws per clip or renders at scale; render one clip with clip_config(cfg, draw_motion(cfg, "
                         "rng)) (StimulusConfig.sample does this)")


def render_bits(mask: np.ndarray, cfg: MotionConfig, rng: np.random.Generator, angle: float) -> np.ndarray:
    """Binary-noise clip, bit-packed along width: mask (H, W) or (T, H, W) -> (T, H, ceil(W/8)) uint8."""
    _check_concrete(cfg)
    if cfg.noise != "binary":
        raise ValueError(f"noise={cfg.noise!r}: render_bits makes binary noise only; use render_clip")
    T = cfg.frames
    mask = np.asarray(mask, bool)
    masks = _masks(mask, T)
    H, W = masks.shape[1:]
    P, nb = field_padding(cfg), (W + 7) // 8
    field_shape = (H + 2 * P, W + 2 * P + 16)  # +16 columns: the shifted read may look one byte ahead
    figure = packed_bernoulli(rng, *field_shape, cfg.density)
    ground = packed_bernoulli(rng, *field_shape, cfg.density)
    static = mask.ndim == 2
    packed_masks = np.packbits(mask if static else masks, axis=-1)  # (H, nb) or (T, H, nb)
    tail = np.uint8((0xFF << (8 * nb - W)) & 0xFF)  # zero the padding bits of the last byte, as packbits does
    d = offsets(cfg, angle)  # (T, 2)
    # Content displaced by +d shows the field at p - d (figure); the ground shows its field at p + d.
    # One gather per field takes every frame's window: (shift copy, first row, first byte) per frame.
    fig_byte, fig_shift = np.divmod(P - d[:, 1], 8)
    gnd_byte, gnd_shift = np.divmod(P + d[:, 1], 8)
    fig = sliding_window_view(_bit_shifted(figure), (H, nb), axis=(1, 2))[fig_shift, P - d[:, 0], fig_byte]
    gnd = sliding_window_view(_bit_shifted(ground), (H, nb), axis=(1, 2))[gnd_shift, P + d[:, 0], gnd_byte]
    # (T, H, nb): the ground where the mask bit is 0, the figure where it is 1
    out = np.bitwise_xor(fig, gnd, out=fig)
    out &= packed_masks
    out ^= gnd
    if cfg.coherence < 1.0:
        refresh = np.packbits(bernoulli(rng, (T, H, W), 1.0 - cfg.coherence), axis=-1)
        fresh = np.packbits(bernoulli(rng, (T, H, W), cfg.density), axis=-1)
        out = (out & ~refresh) | (fresh & refresh)
    out[..., -1] &= tail
    return out


def _gaussian_field(shape: tuple[int, ...], cfg: MotionConfig, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance noise; blurred noise is low-passed over the last two axes, then re-standardised."""
    z = rng.standard_normal(shape, dtype=np.float32)
    if cfg.noise == "blurred":
        from scipy.ndimage import gaussian_filter  # imported here: planning loads this module without scipy

        sigma = (0,) * (len(shape) - 2) + (cfg.blur, cfg.blur)
        z = gaussian_filter(z, sigma, mode="wrap")
        z /= blur_gain(cfg.blur)  # back to unit variance
    return z


@cache
def blur_gain(sigma: float) -> float:
    """Std of blurred unit white noise: the kernel's L2 norm (exact, unlike 1 / (2 sqrt(pi) sigma),
    which holds only for sigma >~ 1 px). Cached: it is the same for every clip."""
    from scipy.ndimage import gaussian_filter

    impulse = np.zeros((64, 64), np.float64)
    impulse[32, 32] = 1.0
    return float(np.sqrt((gaussian_filter(impulse, sigma, mode="wrap") ** 2).sum()))


def render_clip(mask: np.ndarray, cfg: MotionConfig, rng: np.random.Generator, angle: float | None = None) -> np.ndarray:
    """Render one clip as grey frames: mask (H, W) or (T, H, W) -> (T, H, W) uint8.

    angle: figure direction in degrees; None draws it from cfg (draw_angle). For binary noise
    this is exactly the unpacked output of render_bits for the same generator state.
    """
    _check_concrete(cfg)
    if angle is None:
        angle = draw_angle(cfg, rng)
    masks = _masks(mask, cfg.frames)
    T, H, W = masks.shape
    if cfg.noise == "binary":
        low, high = cfg.binary_levels
        bits = np.unpackbits(render_bits(masks, cfg, rng, angle), axis=-1, count=W)
        return np.where(bits.astype(bool), np.uint8(high), np.uint8(low))
    P = field_padding(cfg)
    figure = _gaussian_field((H + 2 * P, W + 2 * P), cfg, rng)
    ground = _gaussian_field((H + 2 * P, W + 2 * P), cfg, rng)
    z = np.empty((T, H, W), np.float32)
    for t, (dy, dx) in enumerate(offsets(cfg, angle)):
        z[t] = np.where(masks[t], figure[P - dy:P - dy + H, P - dx:P - dx + W],
                        ground[P + dy:P + dy + H, P + dx:P + dx + W])
    if cfg.coherence < 1.0:
        refresh = bernoulli(rng, (T, H, W), 1.0 - cfg.coherence)
        z = np.where(refresh, _gaussian_field((T, H, W), cfg, rng), z)
    grey = np.clip(0.5 + GAUSSIAN_STD * cfg.contrast * z, 0.0, 1.0)
    return np.rint(grey * 255).astype(np.uint8)


def _standardise(frames: np.ndarray) -> np.ndarray:
    x = frames.astype(np.float32)
    return (x - x.mean()) / (x.std() + 1e-6)


def opponent_energy(frames: np.ndarray, speed: float = 1.0, smooth: int = 3) -> np.ndarray:
    """Figure-minus-ground motion energy per pixel from a correlation (Reichardt) detector: (T, H, W) -> (H, W).

    Correlates each pixel with the pixel d behind it in the previous frame, for every
    displacement d within ceil(speed) + 1 px, averaged over frame pairs. The displacement with
    the highest mean correlation is the ground's motion (the ground covers most of the frame);
    the figure moves the opposite way. Returns the box-smoothed correlation around -d_ground minus
    that around +d_ground (both summed over displacements within 1 px, which absorbs rounding
    of sub-pixel speeds): positive where a pixel moves like the figure.
    """
    x = _standardise(frames)
    prev, nxt = x[:-1], x[1:]
    radius = math.ceil(speed) + 1
    shifts = np.array([(dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)])
    corr = np.stack([(nxt * np.roll(prev, (dy, dx), axis=(1, 2))).mean(axis=0) for dy, dx in shifts])  # (D, H, W)
    mean_corr = corr.mean(axis=(1, 2))
    mean_corr[np.all(shifts == 0, axis=1)] = -np.inf  # smooth (blurred) noise correlates with itself unmoved
    ground = shifts[np.argmax(mean_corr)]
    near = lambda centre: np.linalg.norm(shifts - centre, axis=1) <= 1.0  # noqa: E731
    energy = corr[near(-ground)].sum(axis=0) - corr[near(ground)].sum(axis=0)
    from scipy.ndimage import uniform_filter

    return uniform_filter(energy, size=smooth, mode="nearest")


def motion_energy_mask(frames: np.ndarray, speed: float = 1.0, smooth: int = 3) -> np.ndarray:
    """Recover the figure mask from motion alone: (T, H, W) -> (H, W) bool."""
    return opponent_energy(frames, speed, smooth) > 0
