import pytest

from timeblind.core.stats import t_interval, wilson_interval


def test_wilson_matches_reference_values():
    # Reference: statsmodels proportion_confint(method="wilson")
    low, high = wilson_interval(0, 10)
    assert low == 0 and high == pytest.approx(0.2775, abs=1e-4)
    low, high = wilson_interval(50, 100)
    assert (low, high) == (pytest.approx(0.4038, abs=1e-4), pytest.approx(0.5962, abs=1e-4))


def test_wilson_narrows_with_more_samples():
    assert wilson_interval(150, 1200)[1] - wilson_interval(150, 1200)[0] < 0.04
    with pytest.raises(ValueError, match="total=0"):
        wilson_interval(0, 0)


def test_t_interval_over_seeds():
    low, high = t_interval([0.9, 1.0])
    assert low < 0.95 < high
    assert (low, high) == (pytest.approx(0.3147, abs=1e-3), pytest.approx(1.5853, abs=1e-3))
    with pytest.raises(ValueError):
        t_interval([0.5])


def test_wilson_interval_holds_the_proportion_itself_in_floating_point():
    for total in range(1, 60):
        for correct in range(total + 1):
            low, high = wilson_interval(correct, total)
            assert low <= correct / total <= high, (correct, total, low, high)
