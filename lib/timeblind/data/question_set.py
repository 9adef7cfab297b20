"""Questions as the grounded decoder's tensors: fixed-length token sequences with their
targets, evidence positions and window spans (encode), and a split's questions over its frame
tokens as a torch Dataset (QuestionSet), with FPO's rejected responses."""

from __future__ import annotations

import numpy as np
import torch

from timeblind.core.tasks import IGNORE
from timeblind.data.questions import FORMATS, MAX_EVENTS, Question, Vocab, WindowGrid, asked_range, perturb


def encode(q: Question, fmt: str, vocab: Vocab, grid: WindowGrid, length: int) -> dict[str, torch.Tensor]:
    """One question as fixed-length tensors (L = length):
    tokens (L,) [<bos> <kind> prompt <sep> response <eos> <pad>...]; targets (L,) the next token
    where it belongs to the response, else IGNORE; ground_pos / answer_pos (E,) positions of the
    grounding-phase and answer-phase <evi> inputs (-1: none); spans (E, 2) window spans, inclusive
    (-1: none); n_spans (); question_pos (1,) and question_spans (1, 2): the question's own <evi>
    and the windows of its time range (factorised refer questions; else -1)."""
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}: expected one of {list(FORMATS)}")
    T = grid.frames
    prompt = [vocab["<bos>"], vocab[f"<{q.kind}>"]]
    for entry in q.prompt:
        if entry[0] == "item":
            if prompt[-1] != vocab[f"<{q.kind}>"]:
                prompt.append(vocab["<sep>"])
            prompt += vocab.item(entry[1], entry[2])
        else:
            prompt.append(vocab.time(entry[1], T))
    question_pos, question_span = -1, (-1, -1)
    asked = asked_range(q, fmt)
    if asked:
        question_pos, question_span = len(prompt), grid.to_windows(*asked)
        prompt.append(vocab["<evi>"])
    prompt.append(vocab["<sep>"])
    items: list[int] = []
    for i, (name, category) in enumerate(q.items):
        items += ([vocab["<sep>"]] if i else []) + vocab.item(name, category)
    E = len(q.spans)
    ground_pos, answer_pos = [], []
    if fmt == "text":
        response = items
    elif fmt == "coupled":
        response = items + [tok for s, e in q.spans for tok in (vocab.time(s, T), vocab.time(e, T))]
    else:
        start = len(prompt)
        ground_pos = list(range(start, start + E))
        response = [vocab["<evi>"]] * E + [vocab["<ans>"]] + items
        answer_pos = list(range(start + len(response), start + len(response) + E))
        response += [vocab["<evi>"]] * E
    sequence = prompt + response + [vocab["<eos>"]]
    if len(sequence) > length:
        raise ValueError(f"this {q.kind} question needs {len(sequence)} tokens; the decoder holds {length} "
                         "(raise grounding.max_tokens)")
    tokens = torch.full((length,), vocab["<pad>"], dtype=torch.long)
    tokens[:len(sequence)] = torch.tensor(sequence)
    targets = torch.full((length,), IGNORE, dtype=torch.long)
    first = len(prompt) - 1  # the <sep> before the response predicts its first token
    targets[first:len(sequence) - 1] = tokens[first + 1:len(sequence)]
    spans = torch.full((MAX_EVENTS, 2), -1, dtype=torch.long)
    ground, answer = (torch.full((MAX_EVENTS,), -1, dtype=torch.long) for _ in range(2))
    if fmt != "text":
        for i, (s, e) in enumerate(q.spans):
            spans[i] = torch.tensor(grid.to_windows(s, e))
        ground[:len(ground_pos)] = torch.tensor(ground_pos, dtype=torch.long)
        answer[:len(answer_pos)] = torch.tensor(answer_pos, dtype=torch.long)
    return {"tokens": tokens, "targets": targets, "ground_pos": ground, "answer_pos": answer, "spans": spans,
            "n_spans": torch.tensor(E if fmt != "text" else 0), "question_pos": torch.tensor([question_pos]),
            "question_spans": torch.tensor([question_span])}


class QuestionSet(torch.utils.data.Dataset):
    """(frame tokens, encoded question) pairs of one split; with `reject`, each item also carries
    a rejected response (key prefix rejected_) drawn from those perturbations, for FPO. The reject
    is drawn anew each epoch (set_epoch), as D2VLM samples one per example, and is a pure function
    of (seed, epoch, index)."""

    def __init__(self, features: torch.Tensor, questions: list[Question], fmt: str, vocab: Vocab,
                 grid: WindowGrid, length: int, reject: tuple[str, ...] = (), names: dict | None = None,
                 seed: int = 0):
        self.features, self.questions, self.fmt, self.vocab = features, questions, fmt, vocab
        self.grid, self.length, self.reject, self.names, self.seed = grid, length, reject, names or {}, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.questions)

    def token_ids(self) -> set[int]:
        """The ids the questions' own sequences use, padding included; rejects are left out."""
        return {t for q in self.questions
                for t in encode(q, self.fmt, self.vocab, self.grid, self.length)["tokens"].tolist()}

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        q = self.questions[i]
        item = {"frames": self.features[q.video], "index": torch.tensor(i),
                **encode(q, self.fmt, self.vocab, self.grid, self.length)}
        if self.reject:
            rng = np.random.default_rng([self.seed, self.epoch, i])
            how = self.reject[int(rng.integers(len(self.reject)))]
            rejected = perturb(q, how, self.grid.frames, self.names, rng)
            item["has_rejected"] = torch.tensor(rejected != q)
            item.update({f"rejected_{k}": v for k, v in encode(rejected, self.fmt, self.vocab, self.grid,
                                                              self.length).items()})
        return item


__all__ = ["encode", "QuestionSet"]
