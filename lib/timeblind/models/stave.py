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
temporal attention in every block or only the last ``temporal_blocks``, spatial attention over each
frame's whole patch grid or, with ``spatial_window``, within windows of patches (as Qwen2.5-VL's ViT
in most of its layers: linear instead of quadratic in the frame's patches), then a final
LayerNorm and a mean over the frames of each of K temporal windows, in order, which leaves a
(K * dim, H/P, W/P) map of patch tokens. Not
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

An option, ``time_embedding`` (off by default, as in the paper): a learned frame-index embedding
added to every token, as in TimeSformer. RoPE acts on q and k only, so the values carry no frame
index; the option gives them one.

How far the temporal attention of a from-scratch STAVE gets on these stimuli, against reading the
clean figure masks, is measured in the README ("Measurements", scripts/probe.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from timeblind.models.config import StaveConfig
from timeblind.models.layers import windowed_tokens


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

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        S, L, _ = x.shape  # (S sequences, L tokens, D)
        qkv = self.qkv(x).reshape(S, L, 3, self.heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (S, h, L, hd)
        if rope is not None:
            cos, sin = rope  # (L, hd)
            q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (S, h, L, hd); mask True = may attend
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
    """Attention among the patches of each frame separately: over the whole patch grid, or, with
    ``window=(wh, ww)``, within each non-overlapping wh x ww window of the grid (row-major from the
    top-left), as Qwen2.5-VL's ViT: cost linear in the frame's patches instead of quadratic."""

    def __init__(self, dim: int, heads: int, window: tuple[int, int] | None = None):
        super().__init__()
        self.attn = Attention(dim, heads, dim // heads)
        self.window = None if window is None else tuple(window)

    def forward(self, x: torch.Tensor, grid: tuple[int, int] | None = None) -> torch.Tensor:
        B, T, N, D = x.shape  # N = gh * gw patches, row-major
        if self.window is not None and grid is None:
            raise ValueError("window attention needs the patch grid (gh, gw) of the N tokens")
        # a window no larger than the grid: a grid that fits in one window is plain global attention
        gh, gw = grid if grid is not None else (N, 1)
        wh, ww = (gh, gw) if self.window is None else (min(self.window[0], gh), min(self.window[1], gw))
        if (wh, ww) == (gh, gw):
            return self.attn(x.reshape(B * T, N, D)).reshape(B, T, N, D)
        ph, pw = -gh % wh, -gw % ww  # bottom / right padding up to whole windows
        nh, nw = (gh + ph) // wh, (gw + pw) // ww
        x = F.pad(x.reshape(B * T, gh, gw, D), (0, 0, 0, pw, 0, ph))  # (B*T, gh+ph, gw+pw, D)
        x = x.reshape(B * T, nh, wh, nw, ww, D).transpose(2, 3).reshape(B * T * nh * nw, wh * ww, D)
        mask = None
        if ph or pw:  # padded keys are masked out; without padding, SDPA keeps its unmasked fast kernel
            valid = F.pad(x.new_ones(gh, gw, dtype=torch.bool), (0, pw, 0, ph))  # (gh+ph, gw+pw)
            valid = valid.reshape(nh, wh, nw, ww).transpose(1, 2).reshape(nh * nw, wh * ww)  # per window
            # every window keeps >= 1 real key (padding < window per axis), so no row is all masked
            mask = valid.expand(B * T, -1, -1).reshape(B * T * nh * nw, 1, 1, wh * ww)  # (S, 1, 1, L): keys
        out = self.attn(x, mask=mask)  # (B*T*nh*nw, wh*ww, D)
        out = out.reshape(B * T, nh, nw, wh, ww, D).transpose(2, 3).reshape(B * T, gh + ph, gw + pw, D)
        return out[:, :gh, :gw].reshape(B, T, N, D)  # padded tokens dropped


class StaveBlock(nn.Module):
    """Pre-norm block: spatial attention, temporal attention (optional), MLP; each residual."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, temporal_heads: int | None, order: str,
                 spatial_window: tuple[int, int] | None = None):
        super().__init__()
        self.order = order
        self.norm1 = nn.LayerNorm(dim)
        self.spatial = SpatialAttention(dim, heads, spatial_window)
        self.norm3 = nn.LayerNorm(dim) if temporal_heads else None
        self.temporal = TemporalAttention(dim, temporal_heads, dim // heads) if temporal_heads else None
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor],
                grid: tuple[int, int] | None = None) -> torch.Tensor:
        # x: (B, T, N, D) on the patch grid (gh, gw), N = gh * gw; the grid is needed by window attention only
        if self.temporal is not None and self.order == "temporal_first":
            x = x + self.temporal(self.norm3(x), rope)
        x = x + self.spatial(self.norm1(x), grid)
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
            StaveBlock(D, cfg.heads, cfg.mlp_ratio, cfg.temporal_heads if i >= first_temporal else None, cfg.order,
                       cfg.spatial_window)
            for i in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(D)
        cos, sin = rotary_tables(cfg.max_frames, D // cfg.heads)
        self.register_buffer("rope_cos", cos, persistent=False)  # (max_frames, hd)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.out_dim = cfg.windows * D

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
        self.cfg.check_frames(T)
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
            x = block(x, rope, (gh, gw))
        return self.norm(x), (gh, gw)  # (B, T, N, D)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        tokens, (gh, gw) = self.tokens_on_grid(video)  # (B, T, N, D)
        tokens = tokens.transpose(2, 3).unflatten(3, (gh, gw))  # (B, T, D, gh, gw)
        return windowed_tokens(tokens, self.cfg.windows)  # (B, K*D, gh, gw): patch tokens per window, in order
