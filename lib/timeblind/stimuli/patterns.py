"""Brightness-coded temporal bit patterns: the seed document's `create_spooky_benchmark_example`, fixed.

Each clip shows Gaussian noise frames; for the first L frames the whole frame is made slightly
brighter (bit 1) or darker (bit 0), and the frames after L are left unmodulated so the length
is observable. The tasks: read the bits, name the pattern kind, predict the next bit (bit L,
never shown), estimate L.

Unlike SpookyBench, where every single frame is pure noise and the signal exists only across
frames, this family carries its signal in each frame's mean brightness. It is a control: a
frame-wise model (one that never compares frames) should pass it, and
`decode_bits_by_brightness` is such an observer.

Pattern kinds (label names, with the seed's names):
- "spikes" (seed: "biological"): a Bernoulli spike train, as in the seed.
- "morse" (seed: "communication"): real International Morse code of random letters; the seed
  used one constant list, [1, 0, 1, 0, 1, 1, 1, 0], for every sample.
- "timeseries" (seed: "timeseries"): a thresholded noisy sine; the seed used one fixed period
  and phase for every sample, here both are drawn per clip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

PATTERN_KINDS = ("spikes", "morse", "timeseries")
SEED_KIND_NAMES = {"biological": "spikes", "communication": "morse", "timeseries": "timeseries"}

# International Morse code, letters only. "." is a dot, "-" a dash.
MORSE_CODE = {
    "A": ".-", "B": "-...", "C": "-.-.", "D": "-..", "E": ".", "F": "..-.", "G": "--.", "H": "....",
    "I": "..", "J": ".---", "K": "-.-", "L": ".-..", "M": "--", "N": "-.", "O": "---", "P": ".--.",
    "Q": "--.-", "R": ".-.", "S": "...", "T": "-", "U": "..-", "V": "...-", "W": ".--", "X": "-..-",
    "Y": "-.--", "Z": "--..",
}
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Standard Morse timing in units of one frame: dot 1 on, dash 3 on, 1 off between the elements
# of a letter, 3 off between letters.
_ELEMENT = {".": "1", "-": "111"}
_ELEMENT_GAP = "0"
_LETTER_GAP = "000"

_ANSWERS = {
    "spikes": ["spike", "spikes", "spike train", "neuron", "neuron firing", "biological"],
    "morse": ["morse", "morse code", "communication"],
    "timeseries": ["time series", "timeseries", "time-series", "oscillation"],
}


def _is_int(value) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


@dataclass(frozen=True)
class PatternConfig:
    min_length: int = 4  # shortest pattern L (frames carrying a bit)
    max_length: int | None = None  # longest L; None -> all frames of the clip
    modulation: float = 0.05  # relative brightness change per bit: x(1+m) for 1, x(1-m) for 0 (seed: 5%)
    noise_mean: float = 0.5  # Gaussian noise mean, before clipping to [0, 1] (seed: 0.5)
    noise_std: float = 0.2  # Gaussian noise std (seed: 0.2)
    spike_rate: float = 0.3  # P(bit = 1) of a spike train (seed: 0.3)
    series_noise: float = 0.1  # std of the Gaussian added to the sine before thresholding (seed: 0.1)
    series_threshold: float = 0.5  # sine + noise above this is a 1 (seed: 0.5)
    series_period: tuple[float, float] = (4.0, 16.0)  # sine period range in frames, drawn uniformly

    def __post_init__(self):
        if not _is_int(self.min_length) or self.min_length < 1:
            raise ValueError(f"min_length={self.min_length!r}: expected an integer >= 1")
        if self.max_length is not None and (not _is_int(self.max_length) or self.max_length < self.min_length):
            raise ValueError(f"max_length={self.max_length!r}: expected None or an integer >= "
                             f"min_length={self.min_length}")
        if not 0.0 < self.modulation < 1.0:
            raise ValueError(f"modulation={self.modulation}: expected a relative change in (0, 1)")
        if not 0.0 <= self.noise_mean <= 1.0:
            raise ValueError(f"noise_mean={self.noise_mean}: expected a value in [0, 1]")
        if not self.noise_std > 0.0:
            raise ValueError(f"noise_std={self.noise_std}: expected a value > 0")
        if not 0.0 < self.spike_rate < 1.0:
            raise ValueError(f"spike_rate={self.spike_rate}: expected a probability in (0, 1)")
        if not self.series_noise >= 0.0:
            raise ValueError(f"series_noise={self.series_noise}: expected a value >= 0")
        if not -1.0 < self.series_threshold < 1.0:
            raise ValueError(f"series_threshold={self.series_threshold}: expected a value in (-1, 1), "
                             "otherwise a noiseless sine is constant")
        period = self.series_period
        if (len(period) != 2 or not all(isinstance(p, Real) for p in period)
                or not 2.0 <= period[0] <= period[1]):
            raise ValueError(f"series_period={period!r}: expected (low, high) frames with 2 <= low <= high "
                             "(a period under 2 frames aliases)")


# --- bit generators: each returns n bits; make_pattern_clip asks for L + 1, the last one being the target

def spike_bits(n: int, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Bernoulli(rate) spike train, int8 (n,). Every bit is independent of the past, so the next
    bit is unpredictable: the best any observer can do is guess the majority bit, right with
    probability max(rate, 1 - rate) (0.7 at the default rate)."""
    return (rng.random(n) < rate).astype(np.int8)


def encode_morse(text: str) -> np.ndarray:
    """International Morse of letters A-Z, int8: dot 1, dash 111, 0 between elements, 000 between letters."""
    unknown = sorted({c for c in text.upper() if c not in MORSE_CODE})
    if not text or unknown:
        raise ValueError(f"text={text!r}: expected one or more letters A-Z")
    words = [_ELEMENT_GAP.join(_ELEMENT[e] for e in MORSE_CODE[c]) for c in text.upper()]
    return np.frombuffer(_LETTER_GAP.join(words).encode(), np.uint8).astype(np.int8) - ord("0")


def morse_bits(n: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Morse of random letters cut to n bits: int8 (n,) and the letters whose code starts within them."""
    # k letters take at least 4k - 3 bits (E = "1" plus the 3-bit letter gap), so this many always suffice.
    k = max(1, math.ceil((n + 3) / 4))
    letters = "".join(_LETTERS[i] for i in rng.integers(0, 26, size=k))
    codes = [encode_morse(c) for c in letters]
    starts = np.cumsum([0] + [len(c) + len(_LETTER_GAP) for c in codes[:-1]])
    bits = encode_morse(letters)[:n]
    return bits, letters[:int((starts < n).sum())]


def timeseries_bits(n: int, cfg: PatternConfig, rng: np.random.Generator) -> np.ndarray:
    """sin(2 pi t / period + phase) + N(0, series_noise) > series_threshold, int8 (n,).

    The seed used one period over linspace(0, 2 pi, L) and no phase, so every sample of a length
    was nearly the same; period and phase are drawn per clip here."""
    period = rng.uniform(*cfg.series_period)
    phase = rng.uniform(0.0, 2 * np.pi)
    t = np.arange(n)
    signal = np.sin(2 * np.pi * t / period + phase) + rng.normal(0.0, cfg.series_noise, n)
    return (signal > cfg.series_threshold).astype(np.int8)


def pattern_bits(kind: str, n: int, cfg: PatternConfig, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """n bits of one kind, int8 (n,), and the Morse letters ("" for the other kinds)."""
    if kind == "spikes":
        return spike_bits(n, cfg.spike_rate, rng), ""
    if kind == "morse":
        return morse_bits(n, rng)
    if kind == "timeseries":
        return timeseries_bits(n, cfg, rng), ""
    raise ValueError(f"unknown pattern kind {kind!r}: expected one of {PATTERN_KINDS}")


def pattern_answers(kind: str) -> list[str]:
    """Accepted (lower-case) answers when asked to name the pattern kind."""
    if kind not in _ANSWERS:
        raise ValueError(f"unknown pattern kind {kind!r}: expected one of {PATTERN_KINDS}")
    return list(_ANSWERS[kind])


# --- clips

def make_pattern_clip(
    kind: str, frames: int, height: int, width: int, cfg: PatternConfig, rng: np.random.Generator
) -> tuple[np.ndarray, dict]:
    """One clip, uint8 (T, H, W) gray, and its targets; a pure function of the rng state.

    L is drawn uniformly in [min_length, max_length or T]. Frame t < L is noise x (1 + m) for
    bit 1 and x (1 - m) for bit 0; frames t >= L are unmodulated (x 1), so L is observable.
    targets: kind, bits int8 (T,) (-1 from L on), length L, next_bit (bit L, the continuation,
    never shown), letters (Morse letters, else "").
    """
    if kind not in PATTERN_KINDS:
        raise ValueError(f"unknown pattern kind {kind!r}: expected one of {PATTERN_KINDS}")
    for name, value in (("frames", frames), ("height", height), ("width", width)):
        if not _is_int(value) or value < 1:
            raise ValueError(f"{name}={value!r}: expected an integer >= 1")
    longest = frames if cfg.max_length is None else cfg.max_length
    if cfg.min_length > frames or longest > frames:
        raise ValueError(f"pattern lengths [{cfg.min_length}, {longest}] do not fit in frames={frames}: "
                         "expected min_length and max_length <= frames")
    length = int(rng.integers(cfg.min_length, longest + 1))
    seq, letters = pattern_bits(kind, length + 1, cfg, rng)  # (L + 1,), the last bit is the target
    bits = np.full(frames, -1, np.int8)  # (T,)
    bits[:length] = seq[:length]
    mult = np.ones(frames, np.float32)  # (T,)
    mult[:length] = 1.0 + cfg.modulation * (2.0 * seq[:length] - 1.0)
    # One draw for all frames; float32 halves the cost of the largest step and is plenty for 8 bits.
    noise = rng.standard_normal((frames, height, width), dtype=np.float32)  # (T, H, W)
    noise *= cfg.noise_std
    noise += cfg.noise_mean
    np.clip(noise, 0.0, 1.0, out=noise)  # the seed's clipped noise
    noise *= mult[:, None, None]
    # Clip again before the cast: the seed let x1.05 overflow 255 and wrap to near-black.
    np.clip(noise, 0.0, 1.0, out=noise)
    noise *= 255.0
    np.rint(noise, out=noise)
    targets = {"kind": kind, "bits": bits, "length": length, "next_bit": int(seq[length]), "letters": letters}
    return noise.astype(np.uint8), targets


def expected_frame_mean(cfg: PatternConfig, multiplier: float = 1.0) -> float:
    """Expected pixel value in [0, 1] of clip(multiplier * clip(N(mean, std), 0, 1), 0, 1)."""
    if not multiplier > 0:
        raise ValueError(f"multiplier={multiplier}: expected a value > 0")
    # = multiplier * E[clip(N, 0, b)] with b = min(1, 1 / multiplier); closed form of a clipped normal.
    mu, sigma, a, b = cfg.noise_mean, cfg.noise_std, 0.0, min(1.0, 1.0 / multiplier)
    alpha, beta = (a - mu) / sigma, (b - mu) / sigma

    def cdf(z):
        return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))

    def pdf(z):
        return math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)

    clipped = (a * cdf(alpha) + b * (1.0 - cdf(beta)) + mu * (cdf(beta) - cdf(alpha))
               + sigma * (pdf(alpha) - pdf(beta)))
    return multiplier * clipped


def decode_bits_by_brightness(
    clip: np.ndarray, length: int | None = None, *, cfg: PatternConfig | None = None
) -> np.ndarray:
    """A frame-wise observer: each frame's mean brightness alone, int8 (T,).

    The levels are the expected frame means of the unmodulated noise and of its x(1-m), x(1+m)
    versions under cfg (default PatternConfig()). With `length` known, frames t < length are 1
    above the midpoint of the two modulated levels, else 0, and frames from `length` on are -1.
    Without it, each frame takes the nearest level: 0, -1 (unmodulated) or 1, so L can be read too.
    """
    cfg = PatternConfig() if cfg is None else cfg
    if clip.ndim != 3:
        raise ValueError(f"clip shape {clip.shape}: expected (T, H, W)")
    means = clip.reshape(clip.shape[0], -1).mean(axis=1) / 255.0  # (T,)
    low, mid, high = (expected_frame_mean(cfg, 1.0 + s * cfg.modulation) for s in (-1, 0, 1))
    if length is None:
        levels = np.array([low, mid, high])
        return np.array([0, -1, 1], np.int8)[np.abs(means[:, None] - levels[None]).argmin(axis=1)]
    if not _is_int(length) or not 0 <= length <= clip.shape[0]:
        raise ValueError(f"length={length!r}: expected an integer in [0, {clip.shape[0]}]")
    out = np.full(clip.shape[0], -1, np.int8)  # (T,)
    out[:length] = means[:length] > (low + high) / 2
    return out
