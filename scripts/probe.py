"""Does an encoder fail at reading the figure or at seeing the motion? A two-part probe.

The same encoder and a linear head on its mean-pooled map are trained twice on one stored
single-category data set (shapes or images): once on the clips themselves, once on the clean
figure masks shown as static frames, where there is nothing to see in time. An encoder that
reads the masks but not the clips is time-blind; one that cannot read the masks either fails
before time matters. A plain AdamW loop (one-cycle learning rate, batch 32), validation split
only; deterministic on CPU for a given seed.

    python scripts/probe.py DATA_DIR --encoder stave --options '{"stem": "conv"}' \\
        --input masks --steps 300
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F

from timeblind.core.tasks import to_model_input
from timeblind.data.torch_data import ClipDataset
from timeblind.models.registry import build_encoder

INPUTS = ("clips", "masks")


def _split(data_dir: str, split: str, inputs: str) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Inputs (N, T, H, W) in [-1, 1], class indices (N,) and the number of classes."""
    data = ClipDataset(data_dir, split)
    manifest, samples = data.manifest, data.data.samples
    categories = sorted(set(samples.category))
    if len(categories) != 1 or categories[0] not in ("shapes", "images"):
        raise ValueError(f"{data_dir}: the probe needs one category of static figures, shapes or images; "
                         f"found {categories}")
    names = sorted(n for n, c in zip(manifest["classes"], manifest["class_categories"]) if c == categories[0])
    labels = torch.tensor([names.index(label) for label in samples.label])
    if inputs == "masks":  # the figure itself: its share of each pixel x 255, on every frame
        frames = torch.from_numpy(np.stack([data.data.mask(i) for i in range(len(data))]))
    else:
        frames = torch.from_numpy(np.stack([data.data.clip(i) for i in range(len(data))]))
    return to_model_input(frames), labels, len(names)


def probe(data_dir: str, *, encoder: str, options: dict | None = None, inputs: str = "clips", steps: int = 300,
          lr: float = 0.002, batch_size: int = 32, seed: int = 0, every: int = 100, log=print) -> list[dict]:
    """Validation accuracy every `every` steps: [{step, train_loss, val_acc}, ...]."""
    if inputs not in INPUTS:
        raise ValueError(f"inputs={inputs!r}: expected one of {list(INPUTS)}")
    train_x, train_y, classes = _split(data_dir, "train", inputs)
    val_x, val_y, _ = _split(data_dir, "val", inputs)
    torch.manual_seed(seed)
    net = build_encoder(encoder, **(options or {}))
    head = torch.nn.Linear(net.out_dim, classes)
    params = [*net.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.05)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=steps, pct_start=0.05)
    order = torch.Generator().manual_seed(seed)
    history, start = [], time.time()
    for step in range(1, steps + 1):
        batch = torch.randint(len(train_x), (batch_size,), generator=order)
        loss = F.cross_entropy(head(net(train_x[batch]).mean((2, 3))), train_y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % every == 0 or step == steps:
            net.eval()
            with torch.no_grad():
                predicted = torch.cat([head(net(x).mean((2, 3))).argmax(-1) for x in val_x.split(100)])
            net.train()
            history.append({"step": step, "train_loss": loss.item(),
                            "val_acc": (predicted == val_y).float().mean().item()})
            log(f"step {step}/{steps} · train loss {loss.item():.3f} · val acc {history[-1]['val_acc']:.3f} · "
                f"{time.time() - start:.0f} s")
    return history


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python scripts/probe.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", help="a stored data set of one category (shapes or images)")
    parser.add_argument("--encoder", required=True)
    parser.add_argument("--options", default="{}", help="encoder options as JSON")
    parser.add_argument("--input", choices=INPUTS, default="clips", dest="inputs")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=0.002)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        history = probe(args.data_dir, encoder=args.encoder, options=json.loads(args.options), inputs=args.inputs,
                        steps=args.steps, lr=args.lr, seed=args.seed)
    except (ValueError, FileNotFoundError, json.JSONDecodeError) as err:
        raise SystemExit(f"error: {err}") from None
    print(json.dumps({"encoder": args.encoder, "options": json.loads(args.options), "input": args.inputs,
                      "seed": args.seed, "best_val_acc": max(h["val_acc"] for h in history), "history": history}))


if __name__ == "__main__":
    main()
