"""Learning curves: the CSV each training writes beside its model, read back and drawn."""

import pandas as pd
import pytest

from timeblind.plots.curves import learning_curve_figure, read_curves


def write_curve(root, encoder, seed, rows):
    folder = root / encoder / f"seed{seed}"
    folder.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(folder / "learning_curve.csv", index=False)
    return folder / "learning_curve.csv"


def test_curves_are_read_per_encoder_seed_and_category(tmp_path):
    a = write_curve(tmp_path, "early_temporal", 0, [{"step": 50, "clips_seen": 1400, "shapes": 0.2, "words": 0.0},
                                                    {"step": 100, "clips_seen": 2800, "shapes": 0.9, "words": 0.1}])
    b = write_curve(tmp_path, "framewise", 1, [{"step": 50, "clips_seen": 1400, "shapes": 0.125}])
    curves = read_curves([a, b])
    assert set(curves["encoder"]) == {"early_temporal", "framewise"}
    assert set(curves[curves.encoder == "framewise"]["seed"]) == {"1"}
    shapes = curves[(curves.encoder == "early_temporal") & (curves.category == "shapes")]
    assert shapes["clips_seen"].tolist() == [1400, 2800] and shapes["accuracy"].tolist() == [0.2, 0.9]
    assert len(curves[curves.encoder == "framewise"]) == 1  # its missing words cell is no point


def test_a_run_without_any_validation_is_named(tmp_path):
    empty = write_curve(tmp_path, "stave", 0, [])
    with pytest.raises(ValueError, match="no validation point"):
        read_curves([empty])


def test_the_figure_has_a_panel_per_category(tmp_path):
    a = write_curve(tmp_path, "early_temporal", 0, [{"step": 50, "clips_seen": 1400, "shapes": 0.2, "images": 0.3}])
    paths = learning_curve_figure(read_curves([a]), {"shapes": 0.125, "images": 0.125}, tmp_path / "curves")
    assert [p.suffix for p in paths] == [".png", ".svg"] and all(p.stat().st_size > 0 for p in paths)
