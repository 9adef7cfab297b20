"""scripts/compare_results.py: what differs between two results folders, MLflow's store aside."""

import json

import compare_results


def write(root, files):
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_only_mlflow_store_differs_is_the_same_run(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    write(a, {"tables/t.csv": "x,y\n1,2\n", "mlflow.db": "1", "mlartifacts/123/f.txt": "a"})
    write(b, {"tables/t.csv": "x,y\n1,2\n", "mlflow.db": "2", "mlartifacts/456/f.txt": "b"})
    assert compare_results.main([str(a), str(b)]) == 0
    assert "1 files the same bytes, 0 differ" in capsys.readouterr().out


def test_differences_are_named_by_key_column_and_file(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    write(a, {"m.json": json.dumps({"acc": 0.5, "run": {"seconds": 1.0}, "nan": float("nan")}),
              "t.csv": "x,y\n1,2\n", "only.txt": "a"})
    write(b, {"m.json": json.dumps({"acc": 0.5, "run": {"seconds": 2.0}, "nan": float("nan")}),
              "t.csv": "x,y\n1,3\n"})
    assert compare_results.main([str(a), str(b)]) == 1
    out = capsys.readouterr().out
    assert "m.json: keys run.seconds\n" in out and "t.csv: columns y\n" in out and "only.txt: only in" in out


def test_bad_usage_is_one_line(tmp_path, capsys):
    assert compare_results.main([str(tmp_path / "missing"), str(tmp_path)]) == 2
    assert "usage" in capsys.readouterr().err
