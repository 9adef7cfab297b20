"""Every model's settings as a plain dataclass, in one torch-free module: the plan checks a
pipeline config's encoder options (names, values, how they combine) before any job starts
without loading torch, and each model is built from its config, passed whole."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

STAVE_ORDERS = ("spatial_first", "temporal_first")
STAVE_STEMS = ("patch", "conv")
EARLY_TEMPORAL_STEMS = ("conv3d", "difference")
ESTIMATORS = ("pair", "sum")  # the motion-energy observer's ground-step estimators


def _positive(cfg, *names: str) -> None:
    for name in names:
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r}: expected a positive integer")


def _stages(cfg) -> None:
    if cfg.full_resolution_stages not in (0, 1, 2, 3):
        raise ValueError(f"full_resolution_stages={cfg.full_resolution_stages!r}: expected 0..3")


@dataclass
class FramewiseConfig:
    width: int = 32  # channels of the first conv stage
    dim: int = 128  # frame feature size
    temporal_layers: int = 2  # transformer layers over frame tokens
    heads: int = 4
    max_frames: int = 256
    full_resolution_stages: int = 1  # later stages stride: T times the images makes full resolution costly
    windows: int = 4  # temporal windows of the output map (frame tokens averaged per window, in order)
    frame_token: bool = True  # one more token per frame, its map's mean (a ViT's class token), over time too

    def check_frames(self, frames: int) -> None:
        """ValueError unless a clip of `frames` frames fits: the frame-index table holds max_frames."""
        if frames > self.max_frames:
            raise ValueError(f"clip has {frames} frames, encoder supports at most max_frames={self.max_frames}")


@dataclass
class SeedTemporalConfig:
    width: int = 16  # channels of the first conv stage of the per-frame trunk
    feature_dim: int = 128  # per-frame feature size (the seed's 2048 ViT features)
    hidden_dim: int = 128  # the seed's hidden size: tokens, transformer and output
    heads: int = 8  # attention heads (the seed's nhead=8); must divide hidden_dim
    temporal_layers: int = 4  # the seed's num_temporal_layers
    feedforward: int = 256  # transformer feed-forward size (the seed's 2048, scaled down)
    diff_layers: int = 3  # the seed's three temporal difference layers
    blend: float = 0.3  # x = (1 - blend) * x + blend * diff (the seed's 0.7 / 0.3)
    position_base: float = 1000.0  # base of the sinusoidal table (the seed's log(1000))
    time_encoding: bool = True  # add the sinusoidal frame-index table (off: the transformer sees an unordered set)
    max_frames: int = 256  # longest clip; the position table is built for this many frames
    full_resolution_stages: int = 1  # trunk stages at full resolution, as in the frame-wise encoder
    windows: int = 4  # temporal windows of the output vector (frame vectors averaged per window, in order)

    def check_frames(self, frames: int) -> None:
        """ValueError unless a clip of `frames` frames fits: the frame-index table holds max_frames."""
        if frames > self.max_frames:
            raise ValueError(f"clip has {frames} frames, encoder supports at most max_frames={self.max_frames}")


@dataclass
class StaveConfig:
    patch_size: int = 4  # square patches, Conv3d stride = kernel = (temporal_patch, patch_size, patch_size)
    stem: str = "patch"  # "patch": one linear patch embedding; "conv": stride-2 3x3 convs per frame (Xiao et al. 2021)
    temporal_patch: int = 1  # frames per patch (Qwen2-VL, STAVEQ2's base, uses 2); T padded by repeating the last frame
    dim: int = 64  # token width
    depth: int = 4  # number of blocks
    heads: int = 4  # spatial attention heads; head_dim = dim // heads
    mlp_ratio: float = 2.0
    head_scale: float = 0.25  # temporal heads = max(1, round(heads * head_scale)), same head_dim
    temporal_blocks: int | None = None  # None: temporal attention in every block; k: the last k blocks
    order: str = "spatial_first"  # or "temporal_first"
    max_frames: int = 256  # size of the rotary table over the frame index
    image_size: int = 32  # frame size the position table is built for (others: bilinear resize)
    time_embedding: bool = False  # learned frame-index embedding on every token (see stave.py)
    windows: int = 4  # temporal windows of the output map (patch tokens averaged per window, in order)
    spatial_window: list[int] | None = None  # None: spatial attention over the whole frame; [wh, ww]: within windows

    def __post_init__(self):
        if self.stem not in STAVE_STEMS:
            raise ValueError(f"stem={self.stem!r}: expected one of {list(STAVE_STEMS)}")
        if self.stem == "conv" and self.patch_size & (self.patch_size - 1):
            raise ValueError(f"patch_size={self.patch_size}: the conv stem halves the frame per stage, "
                             f"expected a power of 2")
        if self.order not in STAVE_ORDERS:
            raise ValueError(f"order={self.order!r}: expected one of {list(STAVE_ORDERS)}")
        for name in ("patch_size", "temporal_patch", "dim", "depth", "heads", "max_frames", "image_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r}: expected a positive integer")
        if self.dim % self.heads:
            raise ValueError(f"dim={self.dim} is not divisible by heads={self.heads}: "
                             f"expected dim % heads == 0")
        if (self.dim // self.heads) % 2:
            raise ValueError(f"head dim dim // heads = {self.dim // self.heads} is odd: "
                             f"rotary embedding expects an even head dim")
        if not 0 < self.head_scale <= 1:
            raise ValueError(f"head_scale={self.head_scale}: expected 0 < head_scale <= 1")
        if self.mlp_ratio <= 0:
            raise ValueError(f"mlp_ratio={self.mlp_ratio}: expected > 0")
        if self.temporal_blocks is not None and not 0 <= self.temporal_blocks <= self.depth:
            raise ValueError(f"temporal_blocks={self.temporal_blocks}: expected None or an integer "
                             f"in 0..depth={self.depth}")
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size={self.image_size} is not a multiple of patch_size="
                             f"{self.patch_size}: expected image_size % patch_size == 0")
        if self.spatial_window is not None:
            window = self.spatial_window
            if not (isinstance(window, (list, tuple)) and len(window) == 2
                    and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in window)):
                raise ValueError(f"spatial_window={window!r}: expected None or two positive integers "
                                 f"[rows, columns] of patches")
            self.spatial_window = list(window)  # YAML gives a list, code may give a tuple

    @property
    def temporal_heads(self) -> int:
        return max(1, round(self.heads * self.head_scale))

    def check_frames(self, frames: int) -> None:
        """ValueError unless a clip of `frames` frames fits: the rotary table holds max_frames token frames."""
        if -(-frames // self.temporal_patch) > self.max_frames:
            raise ValueError(f"clip has {frames} frames, encoder supports at most max_frames={self.max_frames}"
                             + (f" temporal patches of {self.temporal_patch}" if self.temporal_patch > 1 else ""))

    @property
    def n_temporal_blocks(self) -> int:
        return self.depth if self.temporal_blocks is None else self.temporal_blocks


@dataclass
class EarlyTemporalConfig:
    stem_channels: int = 16  # channels of the 3-D stem
    stem_kernel: int = 3  # spatial kernel of the stem; must cover the speed: >= 2*speed+1
    width: int = 32  # first stage of the 2-D trunk
    dim: int = 128
    stem: str = "conv3d"  # or "difference": frame differences first, then the 3-D stem
    windows: int = 4  # temporal windows whose motion maps the trunk reads, in order
    correlator_init: bool = True  # pair filters start as 3x3 correlators (layers.MotionStem); all trainable
    opponent: bool = True  # instance norm over space after the stem: the clip's dominant motion is the zero
    full_resolution_stages: int = 3  # trunk stages convolving at full resolution: motion maps are noisy per pixel
    window_trunk: bool = False  # one trunk (shared weights) per window: each window's map from its own motion only

    def __post_init__(self):
        if self.stem not in EARLY_TEMPORAL_STEMS:
            raise ValueError(f"stem={self.stem!r}: expected one of {list(EARLY_TEMPORAL_STEMS)}")
        _positive(self, "stem_channels", "stem_kernel", "width", "dim", "windows")
        _stages(self)
        if self.window_trunk and self.dim % self.windows:
            raise ValueError(f"dim={self.dim} with window_trunk: expected a multiple of windows={self.windows} "
                             "(each window's trunk gives dim / windows channels)")

    @property
    def min_frames(self) -> int:
        """The stem's temporal kernel 2 needs two frames, or two difference frames (three frames)."""
        return 3 if self.stem == "difference" else 2

    def check_frames(self, frames: int) -> None:
        if frames < self.min_frames:
            raise ValueError(f"clip has {frames} frames: early_temporal with stem={self.stem!r} needs at least "
                             f"{self.min_frames}")


@dataclass
class TwoStreamConfig:
    segments: int = 2  # contiguous segments, in order; each needs >= 2 frames (the paper: 12 of 8)
    width: int = 16  # first conv stage of both trunks
    dim: int = 64  # channels of each stream's map; out_dim = 2 * dim * segments
    stem_channels: int = 16  # channels of the temporal stream's 3-D stem
    stem_kernel: int = 3  # spatial kernel of the stem; must cover the speed: >= 2*speed+1
    correlator_init: bool = True  # the temporal stream's stem, as early_temporal's (layers.MotionStem)
    opponent: bool = True
    full_resolution_stages: int = 3  # both trunks: the same stages give maps of the same size

    def __post_init__(self):
        _positive(self, "segments", "width", "dim", "stem_channels", "stem_kernel")
        _stages(self)

    def check_frames(self, frames: int) -> None:
        """ValueError unless every segment holds a frame pair (the stem's temporal kernel 2)."""
        if frames < 2 * self.segments:
            raise ValueError(f"clip has {frames} frames: two_stream with segments={self.segments} needs at least "
                             f"2 * segments = {2 * self.segments} (a frame pair per segment)")


@dataclass
class MotionEnergyConfig:
    max_speed: float = 1.0  # fastest motion to detect, px/frame: displacements up to ceil(max_speed) + 1 px
    smooth: int = 3  # box filter over the energy, px
    windows: int = 4  # temporal windows K: the front end's output maps
    estimator: str = "pair"  # "pair": each frame pair's own ground step; "sum": the numpy opponent_energy
    ramp: float = 0.4  # normalised energy at which the mask reaches 1 (0.5 at ramp / 2)
    min_correlation: float = 0.1  # floor of the strength that normalises energy: weaker motion is not amplified
    width: int = 16  # the learned map over the front end's output: first conv stage
    dim: int = 64  # its output channels (out_dim)
    full_resolution_stages: int = 1  # front-end maps are smooth, so later stages may stride

    def __post_init__(self):
        _positive(self, "smooth", "windows", "width", "dim")
        if isinstance(self.max_speed, bool) or not isinstance(self.max_speed, (int, float)) or not (
                0 < self.max_speed <= 16):
            raise ValueError(f"max_speed={self.max_speed!r}: expected a speed in (0, 16] px/frame")
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"estimator={self.estimator!r}: expected one of {list(ESTIMATORS)}")
        if not 0 < self.ramp <= 4:
            raise ValueError(f"ramp={self.ramp!r}: expected a share of the correlation strength in (0, 4]")
        if not 0 < self.min_correlation <= 1:
            raise ValueError(f"min_correlation={self.min_correlation!r}: expected a correlation in (0, 1]")
        _stages(self)

    @property
    def radius(self) -> int:
        """Largest displacement searched, px (per axis)."""
        return math.ceil(self.max_speed) + 1

    def check_frames(self, frames: int) -> None:
        if frames < 2:
            raise ValueError(f"clip has {frames} frames: motion energy needs at least 2")


@dataclass(frozen=True)
class GroundedDecoderConfig:
    video_dim: int  # width of the encoder's frame tokens
    vocab_size: int
    frame_tokens: int  # S
    max_tokens: int = 32  # text positions L
    dim: int = 64
    layers: int = 3
    heads: int = 4
    evidence_layer: int = 1  # hidden states after this many blocks feed the evidence embedding
    dropout: float = 0.0

    def __post_init__(self):
        if self.dim % self.heads:
            raise ValueError(f"dim={self.dim} is not divisible by heads={self.heads}")
        if not 1 <= self.evidence_layer <= self.layers or self.layers < 2:
            raise ValueError(f"evidence_layer={self.evidence_layer}, layers={self.layers}: expected "
                             "layers >= 2 and 1 <= evidence_layer <= layers")


# The encoders by the name the pipeline config gives them (models/registry.py pairs each with its module).
ENCODER_CONFIGS: dict[str, type] = {
    "framewise": FramewiseConfig,
    "seed_temporal": SeedTemporalConfig,
    "stave": StaveConfig,
    "early_temporal": EarlyTemporalConfig,
    "two_stream": TwoStreamConfig,
    "motion_energy": MotionEnergyConfig,
}


def encoder_config(encoder: str, **options):
    """The config dataclass of an encoder, validated (unknown encoders and options named)."""
    if encoder not in ENCODER_CONFIGS:
        raise ValueError(f"unknown encoder {encoder!r}; expected one of {sorted(ENCODER_CONFIGS)}")
    config_cls = ENCODER_CONFIGS[encoder]
    allowed = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(f"unknown options {unknown} for encoder {encoder!r}; expected some of {sorted(allowed)}")
    return config_cls(**options)


def check_frames(cfg, frames: int) -> None:
    """ValueError unless an encoder with config `cfg` takes clips of `frames` frames (its config's
    check_frames: one rule for the model at run time and the plan before any job)."""
    check = getattr(cfg, "check_frames", None)
    if check is not None:
        check(frames)
