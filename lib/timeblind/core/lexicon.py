"""Reading a text line against a lexicon: the word whose spelling best explains the line's columns.

The line reader gives every column of a line a distribution over blank, space and letters
(core/lines.py). Taking each column's best label misspells a word as soon as one column is
misread ("mllk"). OCR reads against a dictionary instead, and so does this: every known word is
scored by the probability that the columns spell it, summed over its alignments to the columns
as CTC sums them (blanks around and between letters, a letter held over neighbouring columns, a
blank between two equal letters, which is how the column labels are drawn), times how often the
word is used in English. The words and their frequencies come from the wordfreq package's lists,
which ship with it. A line is split into words at the columns read as a space, and each word is
read on its own. The lexicon is closed: a word it lacks is read as the known word nearest to it
(reading 0 words reads letter by letter instead).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F

from timeblind.core.lines import ALPHABET, encode_text

BLANK, SPACE = 0, 1  # reading classes (core/lines.py)
SHORTLIST = 512  # words scored exactly, those whose letters the columns show most strongly
_LETTERS = re.compile(f"[{ALPHABET.strip()}]+")


@dataclass(frozen=True)
class Lexicon:
    """Known words with their spellings as reading classes and their log prior probabilities."""

    words: tuple[str, ...]
    spellings: torch.Tensor  # (N, longest) reading classes, padded with blanks
    lengths: torch.Tensor  # (N,)
    letter_counts: torch.Tensor  # (N, classes) how often each reading class is in the word
    log_prior: torch.Tensor  # (N,) log relative frequency, summing to 1 over the lexicon

    @classmethod
    def from_frequencies(cls, frequencies: dict[str, float]) -> "Lexicon":
        words = tuple(w for w in frequencies if _LETTERS.fullmatch(w) and frequencies[w] > 0)
        if not words:
            raise ValueError(f"lexicon: no word of letters {ALPHABET.strip()!r} with a frequency above 0")
        lengths = torch.tensor([len(w) for w in words])
        spellings = torch.zeros(len(words), int(lengths.max()), dtype=torch.long)
        for i, w in enumerate(words):
            spellings[i, :len(w)] = torch.tensor(encode_text(w))
        counts = torch.zeros(len(words), len(ALPHABET) + 1).scatter_add_(
            1, spellings, (spellings != BLANK).float())
        freq = torch.tensor([frequencies[w] for w in words], dtype=torch.float64)
        return cls(words, spellings, lengths, counts, (freq / freq.sum()).log().float())

    def read_line(self, log_probs: torch.Tensor) -> str:
        """(COLUMNS, classes) log-probabilities of one line's columns -> its words, space-separated."""
        best = log_probs.argmax(dim=-1)
        words = []
        for start, stop in _word_spans(best.tolist()):
            words.append(self.read_word(log_probs[start:stop]))
        return " ".join(w for w in words if w)

    def read_word(self, log_probs: torch.Tensor) -> str:
        """(T, classes) log-probabilities of the columns of one word -> the most probable word."""
        if not (log_probs.argmax(dim=-1) > SPACE).any():
            return ""  # no letter anywhere: nothing written
        # Scoring every word exactly costs ~0.2 s a word; a word whose letters the columns hardly show
        # cannot win, so only the words with the best letters-anywhere bound (+ prior) are scored.
        letters_anywhere = self.letter_counts @ log_probs.max(dim=0).values  # (N,)
        shortlist = (letters_anywhere + self.log_prior).topk(min(SHORTLIST, len(self.words))).indices
        scores = self.log_likelihood(log_probs, self.spellings[shortlist], self.lengths[shortlist])
        scores = scores + self.log_prior[shortlist]
        return self.words[int(shortlist[scores.argmax()])]

    @staticmethod
    def log_likelihood(log_probs: torch.Tensor, spellings: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """log P(columns spell the word), summed over alignments, for each spelling: (N,); -inf where a
        word needs more columns than there are."""
        T, N = log_probs.shape[0], len(spellings)
        nll = F.ctc_loss(log_probs.float()[:, None].expand(T, N, -1), spellings, torch.full((N,), T), lengths,
                         blank=BLANK, reduction="none", zero_infinity=False)
        return -nll


def _word_spans(best: list[int]) -> list[tuple[int, int]]:
    """[start, stop) of each run of columns between columns read as a space."""
    spans, start = [], 0
    for i, k in enumerate(best + [SPACE]):
        if k == SPACE:
            if i > start:
                spans.append((start, i))
            start = i + 1
    return spans


ENGLISH_WORDS = 50000  # the default lexicon: the 50,000 most frequent English words


@lru_cache(maxsize=4)
def english(size: int = ENGLISH_WORDS) -> Lexicon:
    """The `size` most frequent English words of wordfreq's lists, letters a-z only."""
    from wordfreq import top_n_list, word_frequency

    if size < 1:
        raise ValueError(f"lexicon size={size}: expected at least 1 word")
    words = [w for w in top_n_list("en", size) if _LETTERS.fullmatch(w)]
    return Lexicon.from_frequencies({w: word_frequency(w, "en") for w in words})


def reading_lexicon(size: int) -> Lexicon | None:
    """The lexicon words are read against: the `size` most frequent English words; None (letter by letter) for 0."""
    return english(size) if size else None
