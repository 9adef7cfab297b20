"""The pretrain-reader step (12_pretrain_reader): the figure reader every encoder of a data set starts from."""

from __future__ import annotations

from timeblind import tracking
from timeblind.core.io import write_json
from timeblind.core.layout import RESULTS, resolve
from timeblind.data.torch_data import ClipDataset
from timeblind.models.checkpoint import save_reader
from timeblind.training.config import ReaderTrainConfig
from timeblind.training.reader import pretrain_reader as pretrain


def pretrain_reader(*, data_dir: str, out_dir: str, reader: dict, seed: int, results_dir: str = RESULTS) -> dict:
    """Pretrain the figure reader on the training split's clean figure masks (training.reader of the
    config, checked into a ReaderTrainConfig); writes reader.pt and metrics.json into out_dir."""
    cfg = ReaderTrainConfig.from_dict(reader)
    out = resolve(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    params = {"data_dir": data_dir, "out_dir": out_dir, "seed": seed, **{f"reader.{k}": v for k, v in cfg.__dict__.items()},
              "results_dir": results_dir}
    with tracking.step_run("pretrain_reader", params, {"data": resolve(data_dir).name}, results_dir) as run:
        weights, metrics = pretrain(str(resolve(data_dir)), cfg, seed)
        save_reader(out / "reader.pt", weights, ClipDataset(str(resolve(data_dir)), "val").tasks,
                    extra={"seed": seed, **metrics})
        run.log_metrics({k: v for k, v in metrics.items() if isinstance(v, (int, float))})
        write_json(out / "metrics.json", {**metrics, "mlflow_run_id": run.run_id})
    return metrics
