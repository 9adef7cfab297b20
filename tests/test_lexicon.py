"""Reading a line against a lexicon: the known word whose spelling best explains the columns."""

import pytest
import torch

from timeblind.core.lexicon import Lexicon, english, reading_lexicon
from timeblind.core.lines import ALPHABET, decode_columns


def columns(*spans, wrong: dict[int, tuple[str, float]] | None = None) -> torch.Tensor:
    """Log-probabilities (T, classes) of columns read as `spans` of (character, columns); '_' is blank.
    wrong: column -> (character, probability) read there instead, the true label keeping the rest."""
    labels = [c for c, n in spans for _ in range(n)]
    probs = torch.full((len(labels), len(ALPHABET) + 1), 0.01)
    for t, c in enumerate(labels):
        probs[t, 0 if c == "_" else ALPHABET.index(c) + 1] = 1.0
    for t, (c, p) in (wrong or {}).items():
        true = probs[t].argmax()
        probs[t, ALPHABET.index(c) + 1] = p
        probs[t, true] = 1.0 - p
    return (probs / probs.sum(dim=1, keepdim=True)).log()


MILK = [("_", 2), ("m", 4), ("_", 2), ("i", 3), ("_", 2), ("l", 4), ("_", 2), ("k", 4), ("_", 2)]


def test_a_misread_letter_is_read_as_the_word_it_spells_best():
    line = columns(*MILK, wrong={8: ("l", 0.8), 9: ("l", 0.8), 10: ("l", 0.8)})  # the i's columns read as l
    assert decode_columns(line.argmax(dim=-1).tolist()) == "mllk"
    lexicon = Lexicon.from_frequencies({"milk": 1e-4, "mall": 1e-4, "silk": 1e-4, "mill": 1e-4})
    assert lexicon.read_line(line) == "milk"


def test_frequency_decides_between_spellings_the_columns_explain_alike():
    line = columns(*MILK, wrong={3: ("s", 0.5), 4: ("s", 0.5), 5: ("s", 0.5), 6: ("s", 0.5)})  # m or s
    assert Lexicon.from_frequencies({"milk": 1e-3, "silk": 1e-5}).read_line(line) == "milk"
    assert Lexicon.from_frequencies({"milk": 1e-5, "silk": 1e-3}).read_line(line) == "silk"


def test_a_line_is_read_word_by_word_at_its_spaces():
    line = columns(("_", 2), ("i", 3), ("_", 1), ("c", 3), ("_", 1), ("e", 3), (" ", 4),
                   ("c", 3), ("_", 1), ("r", 3), ("_", 1), ("e", 3), ("_", 1), ("a", 3), ("_", 1), ("m", 3), ("_", 2))
    lexicon = Lexicon.from_frequencies({"ice": 1e-4, "cream": 1e-4, "icecream": 1e-3})
    assert lexicon.read_line(line) == "ice cream"
    assert lexicon.read_line(columns(("_", 20))) == ""  # nothing written: no word


def test_a_word_needs_as_many_columns_as_its_spelling():
    line = columns(("_", 1), ("a", 2), ("_", 1))
    scores = Lexicon.log_likelihood(line, torch.tensor([[2, 0, 0, 0, 0], [2, 3, 4, 5, 6]]), torch.tensor([1, 5]))
    assert scores[0] > -1 and scores[1] == float("-inf")  # "abcde" cannot fit in 4 columns


def test_the_english_lexicon_ships_with_its_package_and_zero_means_letters():
    words = english(5000)
    assert {"milk", "coffee", "house"} <= set(words.words) and all(w.isalpha() and w.islower() for w in words.words)
    assert torch.isclose(words.log_prior.exp().sum(), torch.tensor(1.0), atol=1e-4)
    assert reading_lexicon(0) is None
    with pytest.raises(ValueError, match="no word"):
        Lexicon.from_frequencies({"ice-cream": 1.0, "2nd": 1.0})
