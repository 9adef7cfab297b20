"""A small grounded video-language decoder (Grounded-VideoLLM's time tokens, D2VLM's evidence tokens).

The sequence is [frame tokens (S) | <bos> <kind> prompt <sep> response <eos>]. Frame tokens are
window features of a frozen timeblind encoder, projected to the decoder width; they attend to
each other both ways, text tokens attend causally to everything before them (D2VLM's layout).

Evidence tokens (D2VLM): a grounding head on the frame tokens (frm_head) and one on <evi>
positions (evi_head), both on the second-to-last layer, score s_j = e . f_j / sqrt(d) per frame
token. With `evidence_embedding`, an answer-phase <evi> input is its learned embedding plus the
mean over its span of the frame tokens' hidden states at `evidence_layer` (the given spans in
training, the grounded ones at inference). Frame tokens never attend to text, so those hidden
states come from running the first blocks on the frames alone.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from timeblind.core.tasks import to_model_input
from timeblind.models.config import GroundedDecoderConfig



def grounding_mlp(dim: int) -> nn.Sequential:
    """D2VLM's frm_head / evi_head: LN -> Linear(d, d/2) -> GELU -> Linear(d/2, d)."""
    return nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim // 2), nn.GELU(), nn.Linear(dim // 2, dim))


class GroundedDecoder(nn.Module):
    def __init__(self, cfg: GroundedDecoderConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.dim
        self.project = nn.Sequential(nn.LayerNorm(cfg.video_dim), nn.Linear(cfg.video_dim, d), nn.GELU(),
                                     nn.Linear(d, d))
        self.embed = nn.Embedding(cfg.vocab_size, d)
        self.position = nn.Parameter(torch.randn(cfg.frame_tokens + cfg.max_tokens, d) * 0.02)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(d, cfg.heads, 4 * d, cfg.dropout, activation="gelu", batch_first=True,
                                       norm_first=True) for _ in range(cfg.layers))
        self.norm = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, cfg.vocab_size)
        self.frm_head, self.evi_head = grounding_mlp(d), grounding_mlp(d)
        S, L = cfg.frame_tokens, cfg.max_tokens
        allowed = torch.ones(S + L, S + L).tril().bool()
        allowed[:S, :S] = True  # frames see each other both ways, and no text
        self.register_buffer("mask", torch.zeros(S + L, S + L).masked_fill(~allowed, float("-inf")), persistent=False)

    def init_rows_to_mean(self, rows: torch.Tensor, others: torch.Tensor) -> None:
        """New tokens (time tokens when their stage starts) start at the mean of the trained rows,
        in the embedding and the output layer (Grounded-VideoLLM)."""
        with torch.no_grad():
            for weight in (self.embed.weight, self.lm_head.weight):
                weight[rows] = weight[others].mean(0)
            self.lm_head.bias[rows] = self.lm_head.bias[others].mean()

    def frame_states(self, frames: torch.Tensor) -> torch.Tensor:
        """Hidden states of the frame tokens after `evidence_layer` blocks: (B, S, Dv) -> (B, S, d)."""
        S = frames.shape[1]
        x = self.project(frames) + self.position[:S]
        for block in self.blocks[:self.cfg.evidence_layer]:
            x = block(x)
        return x

    def forward(self, frames: torch.Tensor, tokens: torch.Tensor, answer_pos: torch.Tensor | None = None,
                spans: torch.Tensor | None = None, question_pos: torch.Tensor | None = None,
                question_spans: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """frames (B, S, Dv), tokens (B, L). With answer_pos (B, E) and spans (B, E, 2) (window
        indices, inclusive; -1 = none) the answer-phase <evi> inputs carry their span's mean frame
        state; with question_pos (B, Q) and question_spans (B, Q, 2) the question's own <evi>
        inputs carry the mean input frame embedding over their range (D2VLM's question side).
        Returns logits (B, L, V) for the text positions, frame keys (B, S, d) and the evidence
        queries at every text position (B, L, d)."""
        B, S, _ = frames.shape
        L = tokens.shape[1]
        video = self.project(frames)  # (B, S, d): the input frame embeddings
        text = self.embed(tokens)  # (B, L, d)
        if answer_pos is not None and spans is not None:
            text = text + self.evidence_offsets(self.frame_states(frames), answer_pos, spans, L)
        if question_pos is not None and question_spans is not None:
            text = text + self.evidence_offsets(video, question_pos, question_spans, L)
        x = torch.cat([video, text], dim=1) + self.position[:S + L]  # (B, S+L, d)
        mask = self.mask[:S + L, :S + L]
        for block in self.blocks[:-1]:
            x = block(x, src_mask=mask)
        penultimate = x
        x = self.blocks[-1](x, src_mask=mask)
        return {"logits": self.lm_head(self.norm(x[:, S:])),
                "frame_keys": self.frm_head(penultimate[:, :S]),
                "evidence": self.evi_head(penultimate[:, S:])}

    @staticmethod
    def evidence_offsets(states: torch.Tensor, answer_pos: torch.Tensor, spans: torch.Tensor, L: int) -> torch.Tensor:
        """(B, L, d) additions: at each answer_pos, the mean of states (B, S, d) over its span."""
        B, S, d = states.shape
        j = torch.arange(S, device=states.device)
        inside = ((j >= spans[..., :1]) & (j <= spans[..., 1:]) & (spans[..., :1] >= 0)).float()  # (B, E, S)
        means = inside @ states / inside.sum(-1, keepdim=True).clamp(min=1)  # (B, E, d)
        valid = (answer_pos >= 0).float().unsqueeze(-1)
        scatter = F.one_hot(answer_pos.clamp(min=0), L).float() * valid  # (B, E, L)
        return scatter.transpose(1, 2) @ means  # (B, L, d)

    def scores(self, out: dict[str, torch.Tensor], positions: torch.Tensor) -> torch.Tensor:
        """Grounding scores (B, E, S) of the <evi> inputs at positions (B, E) (-1 rows are zeros)."""
        idx = positions.clamp(min=0).unsqueeze(-1).expand(-1, -1, out["evidence"].shape[-1])
        queries = out["evidence"].gather(1, idx)  # (B, E, d)
        return queries @ out["frame_keys"].transpose(1, 2) / math.sqrt(self.cfg.dim)


@torch.no_grad()
def window_features(encoder: nn.Module, videos: torch.Tensor, window: int, stride: int,
                    batch_size: int = 64) -> torch.Tensor:
    """Frame tokens of long videos from a frozen clip encoder: (N, T, H, W) in [-1, 1] ->
    (N, S, D), one token per window of `window` frames every `stride` frames (the encoder's
    feature map pooled over space, as its class head reads it)."""
    N, T = videos.shape[:2]
    starts = range(0, T - window + 1, stride)
    clips = torch.stack([videos[:, s:s + window] for s in starts], dim=1)  # (N, S, window, H, W)
    flat = clips.flatten(0, 1)
    tokens = torch.cat([encoder(flat[i:i + batch_size]).mean(dim=(2, 3)) for i in range(0, len(flat), batch_size)])
    return tokens.view(N, len(starts), -1)


@torch.no_grad()
def video_tokens(encoder: nn.Module, videos: np.ndarray, window: int, stride: int, chunk: int = 32) -> torch.Tensor:
    """window_features of stored videos (N, T, H, W) uint8, `chunk` videos at a time on the GPU
    when there is one: (N, S, D) float on the CPU."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    encoder = encoder.to(device)
    chunks = [window_features(encoder, to_model_input(torch.from_numpy(np.asarray(videos[a:a + chunk])).to(device)),
                              window, stride).float().cpu() for a in range(0, len(videos), chunk)]
    return torch.cat(chunks)


def span_from_scores(scores: torch.Tensor, keep: float = 0.6) -> tuple[int, int]:
    """D2VLM's inference rule on one event's scores (S,): frame tokens under keep * max of
    sigma(s) dropped, contiguous runs merged, the run with the highest mean score kept."""
    p = torch.sigmoid(scores).tolist()
    cut = keep * max(p)
    best, best_mean, j = (0, 0), -1.0, 0
    while j < len(p):
        if p[j] >= cut:
            k = j
            while k + 1 < len(p) and p[k + 1] >= cut:
                k += 1
            mean = sum(p[j:k + 1]) / (k + 1 - j)
            if mean > best_mean:
                best, best_mean = (j, k), mean
            j = k + 1
        else:
            j += 1
    return best


__all__ = ["GroundedDecoder", "video_tokens", "window_features", "span_from_scores"]
