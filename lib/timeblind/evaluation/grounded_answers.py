"""The grounded decoder answering questions: greedy decoding, batched over questions whose prompts
have the same length, and the records evaluation.grounding.question_metrics scores.

Coupled answers: the text is the tokens before the first time token, the spans are the time
tokens read in pairs. Factorised answers: the <evi> tokens before <ans> are the grounding (each
grounded on the frame tokens by D2VLM's rule), the text runs from <ans> to the next <evi>; with
the evidence embedding, answer-phase <evi> inputs carry the mean frame state of the span their
grounding-phase twin found, and a refer question's own <evi> the mean input frame embedding over
its range (given with the question, as in training).
"""

from __future__ import annotations

from collections import defaultdict

import torch

from timeblind.data.question_set import encode
from timeblind.data.questions import MAX_EVENTS, Question, Vocab, WindowGrid, from_time_token, prompt_length
from timeblind.models.grounded_decoder import GroundedDecoder, span_from_scores


def _evidence_layout(rows: torch.Tensor, start: int, vocab: Vocab) -> tuple[torch.Tensor, torch.Tensor]:
    """Grounding-phase and answer-phase <evi> positions (B, E) of the responses from `start` on
    of decoded rows (-1: none); a question's own <evi> sits before `start`."""
    evi, ans = vocab["<evi>"], vocab["<ans>"]
    ground = torch.full((len(rows), MAX_EVENTS), -1, dtype=torch.long)
    answer = ground.clone()
    for b, row in enumerate(rows.tolist()):
        seen_ans, g, a = False, [], []
        for pos, tok in enumerate(row[start:], start):
            if tok == ans:
                seen_ans = True
            elif tok == evi:
                (a if seen_ans else g).append(pos)
        g, a = g[:MAX_EVENTS], a[:MAX_EVENTS]
        ground[b, :len(g)] = torch.tensor(g, dtype=torch.long)
        answer[b, :len(a)] = torch.tensor(a, dtype=torch.long)
    return ground, answer


@torch.no_grad()
def _decode(net: GroundedDecoder, frames: torch.Tensor, tokens: torch.Tensor, start: int, vocab: Vocab,
            factorised: bool, evidence_embedding: bool,
            question: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Greedy continuation from position `start` (all rows share it). question: the prompts' own
    <evi> positions (B, 1) and ranges (B, 1, 2). Returns the tokens (B, L), the grounding scores
    (B, E, S) of factorised rows and the grounding-phase positions (B, E)."""
    L = tokens.shape[1]
    tokens = tokens.clone()
    tokens[:, start:] = vocab["<pad>"]
    done = torch.zeros(len(tokens), dtype=torch.bool)
    spans = torch.full((len(tokens), MAX_EVENTS, 2), -1, dtype=torch.long)
    scores = ground = None
    inject = factorised and evidence_embedding
    asked = question if inject else (None, None)
    for pos in range(start, L):
        ground, answer = _evidence_layout(tokens[:, :pos], start, vocab) if factorised else (None, None)
        out = net(frames, tokens, answer if inject else None, spans if inject else None, *asked)
        nxt = out["logits"][:, pos - 1].argmax(-1)
        tokens[:, pos] = torch.where(done, torch.full_like(nxt, vocab["<pad>"]), nxt)
        done |= nxt == vocab["<eos>"]
        if factorised:
            scores = net.scores(out, ground)
            for b, e in zip(*torch.nonzero(ground >= 0, as_tuple=True)):
                spans[b, e] = torch.tensor(span_from_scores(scores[b, e]))
        if done.all():
            break
    if factorised:  # the grounding phase precedes the answer's <evi>: only the question's evidence reaches it
        ground, _ = _evidence_layout(tokens, start, vocab)
        scores = net.scores(net(frames, tokens, None, None, *asked), ground)
    return tokens, scores, ground


def _read(row: list[int], start: int, vocab: Vocab, grid: WindowGrid, scores, ground,
          factorised: bool) -> tuple[str, list[list[float]]]:
    response = []
    for tok in row[start:]:
        if tok in (vocab["<eos>"], vocab["<pad>"]):
            break
        response.append(tok)
    if not factorised:
        first_time = next((i for i, t in enumerate(response) if vocab.is_time(t)), len(response))
        times = [from_time_token(t - vocab.first_time, grid.frames, vocab.M) for t in response[first_time:]
                 if vocab.is_time(t)]
        spans = [[times[i], times[i + 1]] for i in range(0, len(times) - 1, 2)]
        return vocab.items_text(response[:first_time]), spans
    ans = response.index(vocab["<ans>"]) if vocab["<ans>"] in response else len(response)
    text = response[ans + 1:]
    text = text[:text.index(vocab["<evi>"])] if vocab["<evi>"] in text else text
    spans = [list(grid.to_frames(*span_from_scores(scores[e]))) for e in range(MAX_EVENTS) if ground[e] >= 0]
    return vocab.items_text(text), spans


def answer_questions(net: GroundedDecoder, features: torch.Tensor, questions: list[Question], vocab: Vocab,
                     grid: WindowGrid, fmt: str, evidence_embedding: bool, batch_size: int = 256) -> list[dict]:
    """One record per question: kind, predicted and true spans (frames), predicted and true text."""
    net.eval()
    factorised = fmt == "factorised"
    groups: dict[int, list[int]] = defaultdict(list)
    for i, q in enumerate(questions):
        groups[prompt_length(q, vocab, fmt)].append(i)
    records: list[dict | None] = [None] * len(questions)
    for start, members in sorted(groups.items()):
        for a in range(0, len(members), batch_size):
            chunk = members[a:a + batch_size]
            encoded = [encode(questions[i], fmt, vocab, grid, net.cfg.max_tokens) for i in chunk]
            tokens = torch.stack([e["tokens"] for e in encoded])
            question = tuple(torch.stack([e[k] for e in encoded]) for k in ("question_pos", "question_spans"))
            frames = features[[questions[i].video for i in chunk]]
            rows, scores, ground = _decode(net, frames, tokens, start, vocab, factorised, evidence_embedding, question)
            for b, i in enumerate(chunk):
                q = questions[i]
                text, spans = _read(rows[b].tolist(), start, vocab, grid, scores[b] if factorised else None,
                                    ground[b] if factorised else None, factorised)
                asked = " / ".join(p[1] if p[0] == "item" else f"t={p[1]}" for p in q.prompt)
                records[i] = {"video": q.video, "kind": q.kind, "asked": asked, "pred_spans": spans,
                              "true_spans": [list(s) for s in q.spans], "pred_text": text, "true_text": q.answer}
    return records


__all__ = ["answer_questions"]
