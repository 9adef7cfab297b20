"""Brightness-coded bit patterns: correct codes, consistent targets, and a frame-wise observer reads them."""

import numpy as np
import pytest
from PIL import Image
from timeblind.stimuli.patterns import (
    PATTERN_KINDS,
    PatternConfig,
    decode_bits_by_brightness,
    encode_morse,
    expected_frame_mean,
    make_pattern_clip,
    morse_bits,
    pattern_answers,
)
from timeblind.stimuli.reference import seed_reference_example


def bitstring(bits) -> str:
    return "".join(str(int(b)) for b in bits)


def test_morse_encoding_of_known_letters():
    # dot 1, dash 111, 0 between elements, 000 between letters: S 10101, O 11101110111
    assert bitstring(encode_morse("SOS")) == "10101" "000" "11101110111" "000" "10101"
    assert bitstring(encode_morse("SOS")) == "101010001110111011100010101"
    assert bitstring(encode_morse("ET")) == "1000111"
    assert bitstring(encode_morse("a")) == "10111"
    with pytest.raises(ValueError, match="letters A-Z"):
        encode_morse("S0S")


def test_morse_bits_are_the_code_of_the_letters_returned():
    rng = np.random.default_rng(3)
    for n in (1, 5, 9, 17, 40):
        bits, letters = morse_bits(n, rng)
        assert bits.shape == (n,) and letters and set(letters) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        code = bitstring(encode_morse(letters))
        assert code.startswith(bitstring(bits)) or bitstring(bits).startswith(code)
        # every returned letter starts inside the n bits: the last one does
        last_start = len(encode_morse(letters[:-1])) + 3 if len(letters) > 1 else 0
        assert last_start < n


@pytest.mark.parametrize("kind", PATTERN_KINDS)
def test_same_seed_same_clip(kind):
    a = make_pattern_clip(kind, 12, 16, 16, PatternConfig(), np.random.default_rng(7))
    b = make_pattern_clip(kind, 12, 16, 16, PatternConfig(), np.random.default_rng(7))
    c = make_pattern_clip(kind, 12, 16, 16, PatternConfig(), np.random.default_rng(8))
    assert np.array_equal(a[0], b[0]) and not np.array_equal(a[0], c[0])
    assert a[1]["length"] == b[1]["length"] and np.array_equal(a[1]["bits"], b[1]["bits"])
    assert (a[1]["next_bit"], a[1]["letters"]) == (b[1]["next_bit"], b[1]["letters"])


@pytest.mark.parametrize("kind", PATTERN_KINDS)
def test_bits_length_and_next_bit_are_consistent(kind):
    rng = np.random.default_rng(11)
    cfg = PatternConfig(min_length=3, max_length=10)
    lengths = set()
    for _ in range(40):
        clip, tg = make_pattern_clip(kind, 12, 8, 8, cfg, rng)
        L, bits = tg["length"], tg["bits"]
        lengths.add(L)
        assert clip.shape == (12, 8, 8) and clip.dtype == np.uint8
        assert tg["kind"] == kind and bits.dtype == np.int8 and bits.shape == (12,)
        assert 3 <= L <= 10 and set(bits[:L]) <= {0, 1} and (bits[L:] == -1).all()
        assert tg["next_bit"] in (0, 1)
        if kind == "morse":
            # the shown bits plus the next bit are a prefix of the letters' code, then a letter gap
            code = bitstring(encode_morse(tg["letters"])) + "000"
            assert code.startswith(bitstring(bits[:L]) + str(tg["next_bit"]))
        else:
            assert tg["letters"] == ""
    assert len(lengths) >= 5  # L varies


def test_timeseries_patterns_vary_across_samples():
    # The seed's fixed period and phase made every sample of a length the same.
    rng = np.random.default_rng(0)
    cfg = PatternConfig(min_length=12, max_length=12)
    patterns = {bitstring(make_pattern_clip("timeseries", 12, 4, 4, cfg, rng)[1]["bits"]) for _ in range(30)}
    assert len(patterns) >= 10


def test_frames_after_the_pattern_are_unmodulated():
    cfg = PatternConfig(min_length=8, max_length=8)
    rng = np.random.default_rng(5)
    tail, ones, zeros = [], [], []
    for _ in range(8):
        clip, tg = make_pattern_clip("spikes", 16, 64, 64, cfg, rng)
        means = clip.reshape(16, -1).mean(axis=1) / 255.0
        tail += list(means[8:])
        ones += list(means[:8][tg["bits"][:8] == 1])
        zeros += list(means[:8][tg["bits"][:8] == 0])
    base = expected_frame_mean(cfg)
    assert np.mean(tail) / base == pytest.approx(1.0, abs=0.005)
    assert np.mean(ones) / base == pytest.approx(1.05, abs=0.01)  # a little under 1.05: bright pixels clip
    assert np.mean(zeros) / base == pytest.approx(0.95, abs=0.005)
    assert expected_frame_mean(cfg, 1.05) == pytest.approx(np.mean(ones), abs=0.002)


@pytest.mark.parametrize("kind", PATTERN_KINDS)
def test_a_frame_wise_observer_reads_the_pattern(kind):
    """The control: mean brightness per frame, no comparison across frames, reads bits and length."""
    rng = np.random.default_rng(2)
    given, blind, total = 0, 0, 0
    for _ in range(24):
        clip, tg = make_pattern_clip(kind, 16, 64, 64, PatternConfig(), rng)
        given += (decode_bits_by_brightness(clip, tg["length"]) == tg["bits"]).sum()
        blind += (decode_bits_by_brightness(clip) == tg["bits"]).sum()  # also tells modulated from not
        total += tg["bits"].size
    assert given / total >= 0.95 and blind / total >= 0.95


def test_answers_name_each_kind():
    assert "morse" in pattern_answers("morse") and "spike train" in pattern_answers("spikes")
    assert "time series" in pattern_answers("timeseries")
    with pytest.raises(ValueError, match="unknown pattern kind 'noise'"):
        pattern_answers("noise")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"min_length": 0}, "min_length=0: expected an integer >= 1"),
    ({"min_length": 6, "max_length": 4}, "max_length=4: expected None or an integer >= min_length=6"),
    ({"modulation": 1.5}, r"modulation=1.5: expected a relative change in \(0, 1\)"),
    ({"noise_std": 0.0}, "noise_std=0.0: expected a value > 0"),
    ({"spike_rate": 1.0}, r"spike_rate=1.0: expected a probability in \(0, 1\)"),
    ({"series_threshold": 1.0}, r"series_threshold=1.0: expected a value in \(-1, 1\)"),
    ({"series_period": (1.0, 8.0)}, r"series_period=\(1.0, 8.0\): expected \(low, high\)"),
])
def test_invalid_config_names_value_and_expectation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PatternConfig(**kwargs)


def test_invalid_clip_requests_are_clear():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="unknown pattern kind 'biological'"):
        make_pattern_clip("biological", 8, 8, 8, PatternConfig(), rng)
    with pytest.raises(ValueError, match=r"pattern lengths \[4, 12\] do not fit in frames=8"):
        make_pattern_clip("spikes", 8, 8, 8, PatternConfig(max_length=12), rng)
    with pytest.raises(ValueError, match="height=0: expected an integer >= 1"):
        make_pattern_clip("spikes", 8, 0, 8, PatternConfig(), rng)


def test_seed_reference_returns_eight_rgb_frames():
    for kind in ("biological", "communication", "timeseries"):
        frames, pattern = seed_reference_example(kind, rng=np.random.RandomState(0))
        assert len(frames) == 8 and len(pattern) == 8
        assert all(isinstance(f, Image.Image) and f.mode == "RGB" and f.size == (224, 224) for f in frames)
    assert list(seed_reference_example("communication", rng=np.random.RandomState(1))[1]) == [1, 0, 1, 0, 1, 1, 1, 0]
    a = seed_reference_example("biological", rng=np.random.RandomState(4))
    b = seed_reference_example("biological", rng=np.random.RandomState(4))
    assert np.array_equal(a[1], b[1]) and np.array_equal(np.asarray(a[0][0]), np.asarray(b[0][0]))
