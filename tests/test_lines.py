"""Text lines on a figure map: finding the lines, labelling their columns, reading the labels back."""

import numpy as np
import pytest

from timeblind.core.lines import (ALPHABET, BAND_HEIGHT, BAND_WIDTH, COLUMNS, Band, column_labels, decode_columns,
                                  encode_text, find_lines, line_targets)


def test_two_lines_are_found_top_to_bottom_with_a_margin(two_lines):
    figure, _ = two_lines()
    bands = find_lines(figure)
    assert len(bands) == 2
    first, second = bands
    assert first.top < 4 and 12 <= first.bottom <= second.top < 18 and second.bottom > 26  # margin above and below
    assert first.left < 7 and first.right > 22  # "ab": columns 7..22 inked
    assert second.right > 30 and second.right - second.left > first.right - first.left  # "cdd" is longer
    # the reverse order of drawing changes nothing: lines come top to bottom
    assert find_lines(figure[::-1].copy())[0].bottom <= find_lines(figure[::-1].copy())[1].top


def test_no_figure_has_no_line_and_max_lines_keeps_the_fullest(two_lines):
    assert find_lines(np.zeros((16, 16))) == []
    figure, _ = two_lines(texts=("a", "cdd"))
    (only,) = find_lines(figure, max_lines=1)
    assert only.top > 14  # the second line holds more figure


def test_a_thin_gap_inside_a_letter_is_no_line_break():
    figure = np.zeros((20, 20))
    figure[4:8, 4:12] = 1
    figure[9:14, 4:12] = 1  # one empty row at 8, as the bar of an e leaves
    assert len(find_lines(figure)) == 1
    figure[8:11] = 0  # three empty rows: two lines
    assert len(find_lines(figure)) == 2


def test_band_scales_every_line_to_one_height():
    band = Band(top=2, bottom=10, left=4, right=40)
    assert band.scale == BAND_HEIGHT / 8 and band.width == 72
    assert Band(0, 4, 0, 200).width == BAND_WIDTH  # squeezed to fit
    assert band.as_array().tolist() == [2, 10, 4, 40]


def test_column_labels_split_equal_letters_with_a_blank():
    band = Band(top=0, bottom=16, left=0, right=64)  # scale 1: label column c covers px 2c..2c+2
    labels = column_labels(band, [("l", 10.0, 20.0), ("l", 20.0, 30.0), ("O", 30.0, 40.0)])
    assert labels.shape == (COLUMNS,)
    letter_l, letter_o = ALPHABET.index("l") + 1, ALPHABET.index("o") + 1  # upper case read as lower
    runs = [k for i, k in enumerate(labels.tolist()) if i == 0 or k != labels[i - 1]]
    assert runs == [0, letter_l, 0, letter_l, 0, letter_o, 0]
    assert labels[5] == 0 and labels[7] == letter_l  # px 10-12 is the glyph's edge, px 14-16 its core
    assert decode_columns(labels) == "llo"


def test_decode_columns_merges_repeats_drops_blanks_and_tidies_spaces():
    a, b, space = ALPHABET.index("a") + 1, ALPHABET.index("b") + 1, ALPHABET.index(" ") + 1
    assert decode_columns([0, a, a, 0, b, b, b, 0, 0, a]) == "aba"
    assert decode_columns([a, a, a]) == "a"
    assert decode_columns([space, a, 0, space, 0, space, b, space]) == "a b"
    assert decode_columns([0, 0]) == ""


def test_encode_text_is_the_inverse_of_reading():
    codes = encode_text("Ice cream")
    assert codes[:3] == [ALPHABET.index(c) + 1 for c in "ice"] and len(codes) == 9
    assert decode_columns([k for c in codes for k in (c, 0)]) == "ice cream"
    with pytest.raises(ValueError, match=r"'R2D3' has characters \['2', '3'\]"):
        encode_text("R2D3")


def test_line_targets_per_line_and_none_when_lines_run_together(two_lines):
    figure, glyphs = two_lines()
    targets = line_targets(figure, glyphs)
    assert [text for _, _, text in targets] == ["ab", "cdd"]
    assert [decode_columns(labels) for _, labels, _ in targets] == ["ab", "cdd"]
    assert targets[0][0].bottom <= targets[1][0].top
    touching, glyphs = two_lines(tops=(4, 12))  # no empty row between the lines: one band, two lines of text
    assert len(find_lines(touching)) == 1 and line_targets(touching, glyphs) == []
    assert line_targets(np.zeros((32, 48)), glyphs) == []
