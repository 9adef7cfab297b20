"""STAVE: a small ViT with stacked temporal attention inside every block.

STAVE / STAVEQ2 (Rasekh et al., NeurIPS 2025, arXiv 2510.26027) add a temporal self-attention
sub-layer to the blocks of a video-LLM's vision transformer (Qwen2-VL, InternVideo2). In the
stock ViT each frame is encoded alone; in STAVE every patch position also attends to the same
position in the other frames, *inside* the encoder, before any token reaches the language model.
Three design points matter in the paper:

1. **Scaled temporal heads.** The temporal branch is a bottleneck: it has
   ``round(num_heads * head_scale)`` heads of the base head size, with ``head_scale = 0.25`` the
   best setting of their ablation (1.0 and 0.5 are worse; spatial-first beats temporal-first).
2. **RoPE over time.** A 1-D rotary embedding over the frame index is applied to q and k of the
   temporal attention, so the attention scores depend on the frame *offset*; it is the only
   source of frame order here (there is no learned temporal position table).
3. **Identity start.** The temporal branch is added to a working spatial ViT, so it should start
   as a no-op (InternVideo2 variant: LayerScale 1e-5). Here the output projection of the
   temporal attention is zero-initialised: a fresh block passes its input through unchanged and
   the projection still receives gradient on the first backward.

What this small version keeps: per-frame patch embedding (a linear patch projection, stride =
patch size; or the conv stem below) plus a learned spatial position table (bilinearly resized
for other frame sizes), ``depth`` pre-norm blocks
``x += SpatialAttn(LN1 x); x += TemporalAttn(LN3 x); x += MLP(LN2 x)`` (or temporal first),
temporal attention in every block or only the last ``temporal_blocks``, then a final
LayerNorm and a mean over frames, which leaves a (dim, H/P, W/P) map of patch tokens. Not
kept: pretrained weights, LoRA, 2-D spatial RoPE; temporal patches of two frames are an option.

Why it can see motion: the temporal attention works on individual patch tokens, at each patch
position, *before* any spatial pooling, so it can compare the content of one patch across
frames (a displaced texture, a flickering region) instead of comparing whole-frame summaries.

Two options for training from scratch, both off by default (the paper's ViT patchifies one frame
linearly and is pretrained); the profiles use the conv stem:
  * ``stem="conv"``: log2(P) stride-2 3x3 convolutions per frame instead of the linear patch
    embedding (Xiao et al. 2021, "Early convolutions help transformers see better"). Still frame
    by frame, so time enters only through the temporal attention.
  * ``temporal_patch=2``: patches of two frames, as in Qwen2-VL (STAVEQ2's base model).

What was measured with `python -m timeblind.analysis.probe` (shapes, 32x32, 2000 training clips,
8 frames, seed 0, config widths; the encoder and a linear head on its mean-pooled map; validation):
  * Reading is the first bottleneck. Given the clean figure masks as static frames, the linear
    patch embedding reaches 38.5% after 300 steps, the conv stem 96.5%.
  * Motion is the second, and the conv stem does not help with it: on the noise clips the conv
    stem stays at chance for 1000 steps (at most 15.0% over ten checks) while its training loss
    falls (it memorises); so does temporal-first order with full-width temporal heads and the
    time embedding (at most 12.5%).
  * Patches of two frames (conv stem) give 25.5% after 1000 steps (best 27.0%); without any
    temporal attention (temporal_blocks=0) the same model gives 30.0% (best 31.5%): the frame
    pairs inside a patch carry what is learned, not the temporal attention.
For comparison, early_temporal reaches 88.0% in 300 steps of the same loop. So at this scale the
temporal attention of a from-scratch STAVE does not learn to correlate noise across frames;
whether pretraining or a larger budget changes that is what the paper profile's stave study asks.

An option, ``time_embedding`` (off by default, as in the paper): a learned frame-index embedding
added to every token, as in TimeSformer. RoPE acts on q and k only, so the values carry no frame
index; the option gives them one. Measured on the quick shapes task and on a one-patch direction
probe, it did not help: the stock temporal attention learns a patch's motion direction on its own
(through the MLP after it), and what stalls this small ViT is reading a shape out of a motion map
whose sign flips from clip to clip.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

ORDERS = ("spatial_first", "temporal_first")
STEMS = ("patch", "conv")


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
    time_embedding: bool = False  # learned frame-index embedding on every token (see the module docstring)

    def __post_init__(self):
        if self.stem not in STEMS:
            raise ValueError(f"stem={self.stem!r}: expected one of {list(STEMS)}")
        if self.stem == "conv" and self.patch_size & (self.patch_size - 1):
            raise ValueError(f"patch_size={self.patch_size}: the conv stem halves the frame per stage, "
                             f"expected a power of 2")
        if self.order not in ORDERS:
            raise ValueError(f"order={self.order!r}: expected one of {list(ORDERS)}")
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

    @property
    def temporal_heads(self) -> int:
        return max(1, round(self.heads * self.head_scale))

    @property
    def n_temporal_blocks(self) -> int:
        return self.depth if self.temporal_blocks is None else self.temporal_blocks


# ----------------------------------------------------------------------------- rotary embedding

def rotary_tables(n: int, head_dim: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin tables (n, head_dim) for positions 0..n-1 (rotate-half layout)."""
    inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)  # (hd/2,)
    angles = torch.arange(n, dtype=torch.float64)[:, None] * inv_freq[None]  # (n, hd/2)
    angles = torch.cat([angles, angles], dim=-1)  # (n, hd)
    return angles.cos().float(), angles.sin().float()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate x (..., L, hd) by position: cos, sin (L, hd). <rot(q,i), rot(k,j)> depends on i - j only."""
    x1, x2 = x.chunk(2, dim=-1)  # (..., L, hd/2) each
    rotated = torch.cat([-x2, x1], dim=-1)  # (..., L, hd)
    return x * cos + rotated * sin


# ----------------------------------------------------------------------------- layers

class Attention(nn.Module):
    """Multi-head self-attention over the second-to-last axis; width = heads * head_dim."""

    def __init__(self, dim: int, heads: int, head_dim: int, zero_init_out: bool = False):
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        inner = heads * head_dim
        self.qkv = nn.Linear(dim, 3 * inner)
        self.proj = nn.Linear(inner, dim)
        if zero_init_out:
            nn.init.zeros_(self.proj.weight)
            nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        S, L, _ = x.shape  # (S sequences, L tokens, D)
        qkv = self.qkv(x).reshape(S, L, 3, self.heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (S, h, L, hd)
        if rope is not None:
            cos, sin = rope  # (L, hd)
            q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        out = F.scaled_dot_product_attention(q, k, v)  # (S, h, L, hd)
        out = out.transpose(1, 2).reshape(S, L, self.heads * self.head_dim)  # (S, L, h*hd)
        return self.proj(out)  # (S, L, D)


class TemporalAttention(nn.Module):
    """Each patch position attends over the frames, with RoPE over the frame index.

    Bottleneck heads (heads * head_scale of the base head size) and a zero-initialised output
    projection: a fresh instance returns zeros, so the residual block starts as the identity."""

    def __init__(self, dim: int, heads: int, head_dim: int):
        super().__init__()
        self.attn = Attention(dim, heads, head_dim, zero_init_out=True)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        B, T, N, D = x.shape
        seq = x.permute(0, 2, 1, 3).reshape(B * N, T, D)  # (B*N, T, D): one sequence per patch position
        out = self.attn(seq, rope)  # (B*N, T, D)
        return out.reshape(B, N, T, D).permute(0, 2, 1, 3)  # (B, T, N, D)


class SpatialAttention(nn.Module):
    """Attention among the patches of each frame separately."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.attn = Attention(dim, heads, dim // heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, N, D = x.shape
        out = self.attn(x.reshape(B * T, N, D))  # (B*T, N, D)
        return out.reshape(B, T, N, D)


class StaveBlock(nn.Module):
    """Pre-norm block: spatial attention, temporal attention (optional), MLP; each residual."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, temporal_heads: int | None, order: str):
        super().__init__()
        self.order = order
        self.norm1 = nn.LayerNorm(dim)
        self.spatial = SpatialAttention(dim, heads)
        self.norm3 = nn.LayerNorm(dim) if temporal_heads else None
        self.temporal = TemporalAttention(dim, temporal_heads, dim // heads) if temporal_heads else None
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        # x: (B, T, N, D)
        if self.temporal is not None and self.order == "temporal_first":
            x = x + self.temporal(self.norm3(x), rope)
        x = x + self.spatial(self.norm1(x))
        if self.temporal is not None and self.order == "spatial_first":
            x = x + self.temporal(self.norm3(x), rope)
        return x + self.mlp(self.norm2(x))  # (B, T, N, D)


# ----------------------------------------------------------------------------- encoder

def conv_stem(dim: int, patch_size: int, temporal_patch: int) -> nn.Sequential:
    """(B, 1, T, H, W) -> (B, dim, T / temporal_patch, H / P, W / P): log2(P) stride-2 3x3 conv
    stages (each frame alone after the first, which spans temporal_patch frames), then a 1x1 conv."""
    layers, c_in = [], 1
    stages = patch_size.bit_length() - 1
    for i in range(stages):
        c_out = dim // 2 ** (stages - 1 - i)  # widths double up to dim
        t = temporal_patch if i == 0 else 1
        layers += [nn.Conv3d(c_in, c_out, (t, 3, 3), stride=(t, 2, 2), padding=(0, 1, 1)), nn.BatchNorm3d(c_out),
                   nn.GELU()]
        c_in = c_out
    t = temporal_patch if not stages else 1
    return nn.Sequential(*layers, nn.Conv3d(c_in, dim, (t, 1, 1), stride=(t, 1, 1)))


class StaveEncoder(nn.Module):
    def __init__(self, cfg: StaveConfig):
        super().__init__()
        self.cfg = cfg
        D, P = cfg.dim, cfg.patch_size
        self.patch_embed = conv_stem(D, P, cfg.temporal_patch) if cfg.stem == "conv" else \
            nn.Conv3d(1, D, kernel_size=(cfg.temporal_patch, P, P), stride=(cfg.temporal_patch, P, P))
        grid = cfg.image_size // P
        self.pos_embed = nn.Parameter(torch.randn(1, D, grid, grid) * 0.02)  # (1, D, g, g)
        self.time_embed = nn.Parameter(torch.randn(cfg.max_frames, D) * 0.02) if cfg.time_embedding else None
        first_temporal = cfg.depth - cfg.n_temporal_blocks
        self.blocks = nn.ModuleList(
            StaveBlock(D, cfg.heads, cfg.mlp_ratio, cfg.temporal_heads if i >= first_temporal else None, cfg.order)
            for i in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(D)
        cos, sin = rotary_tables(cfg.max_frames, D // cfg.heads)
        self.register_buffer("rope_cos", cos, persistent=False)  # (max_frames, hd)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.out_dim = D

    def position_embedding(self, gh: int, gw: int) -> torch.Tensor:
        pos = self.pos_embed
        if pos.shape[-2:] != (gh, gw):
            pos = F.interpolate(pos, size=(gh, gw), mode="bilinear", align_corners=False)
        return pos.flatten(2).transpose(1, 2)  # (1, gh*gw, D)

    def tokens(self, video: torch.Tensor) -> torch.Tensor:
        """Per-frame patch tokens after the blocks and final norm: (B, T, N, D)."""
        return self.tokens_on_grid(video)[0]

    def tokens_on_grid(self, video: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """tokens() and the patch grid (gh, gw) they lie on, N = gh * gw: the patch stem drops a
        partial patch, the conv stem's padded stride-2 stages keep it."""
        B, T, H, W = video.shape
        if H < self.cfg.patch_size or W < self.cfg.patch_size:
            raise ValueError(f"frame {H}x{W} is smaller than patch_size={self.cfg.patch_size}")
        tp = self.cfg.temporal_patch
        if -(-T // tp) > self.cfg.max_frames:
            raise ValueError(f"clip has {T} frames, encoder supports at most max_frames={self.cfg.max_frames}"
                             + (f" temporal patches of {tp} frames" if tp > 1 else ""))
        if T % tp:  # as Qwen2-VL: repeat the last frame up to a whole temporal patch
            video = torch.cat([video, video[:, -1:].expand(B, tp - T % tp, H, W)], dim=1)
        T = video.shape[1] // tp  # token frames
        x = self.patch_embed(video[:, None])  # (B, D, T, gh, gw)
        gh, gw = x.shape[-2:]
        x = x.flatten(3).permute(0, 2, 3, 1) + self.position_embedding(gh, gw)[:, None]  # (B, T, N, D)
        if self.time_embed is not None:
            x = x + self.time_embed[:T, None, :]  # (T, 1, D): which frame each token comes from
        rope = (self.rope_cos[:T], self.rope_sin[:T])  # (T, hd) each
        for block in self.blocks:
            x = block(x, rope)
        return self.norm(x), (gh, gw)  # (B, T, N, D)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        tokens, (gh, gw) = self.tokens_on_grid(video)
        tokens = tokens.mean(dim=1)  # (B, N, D): patch tokens averaged over frames
        return tokens.transpose(1, 2).reshape(len(video), -1, gh, gw)  # (B, D, gh, gw)
