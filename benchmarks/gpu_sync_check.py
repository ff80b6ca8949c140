"""Count host<->device syncs in the hot training loop on a GPU (a benchmark check, not a test).

    python benchmarks/gpu_sync_check.py --pretrained DIR [--model transformer|bilstm] [--steps 60] --data-home HOME

Trains `--steps` optimizer steps of the real loop (newsclf.train.Trainer, bf16 autocast, fused AdamW) with
`torch.cuda.set_sync_debug_mode("warn")`, after one warm-up step, and prints how many syncs CUDA reported,
where they came from (the Python file:line that triggered each), and how many
reporting intervals the loop had: the target is at most one sync per interval, none per step.
On a CPU it runs the same loop and says that there is nothing to count.
"""
from __future__ import annotations

import argparse
import collections
import os
import sys
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="transformer", choices=("transformer", "bilstm"))
    ap.add_argument("--pretrained", default=None, help="HF model folder (transformer)")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--max-len", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--data-home", default=None)
    args = ap.parse_args()

    from newsclf.config import RunConfig
    from newsclf.data import load_dataset
    from newsclf.models import get_family
    from newsclf.train import DistInfo, Trainer, set_seed

    values = dict(model=args.model, max_len=args.max_len, batch_size=args.batch_size, epochs=1,
                  data_home=args.data_home, limit_train=args.batch_size * (args.steps + 1))
    if args.model == "transformer":
        values.update(pretrained=args.pretrained, strategy="full")
    cfg = RunConfig(**values).resolved()
    data = load_dataset(cfg.protocol, args.data_home, seed=cfg.seed, limit_train=cfg.limit_train)
    family = get_family(cfg.model)
    set_seed(cfg.seed)
    model, encoder = family.build(cfg, data.train.texts, list(data.label_names))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    ids = encoder.encode(data.train.texts)
    trainer = Trainer(model, family, cfg, ids, data.train.labels, ids[:64], data.train.labels[:64],
                      encoder.pad_id, device, DistInfo(), len(data.label_names))
    trainer.evaluate = lambda: (0.0, 0.0)  # the hot loop only
    events = trainer.fit()
    steps = intervals = 0
    where: collections.Counter = collections.Counter()
    for event in events:  # warm-up: up to the first step event
        if event["type"] == "step":
            break
    if device.type != "cuda":
        print("no CUDA device: nothing to count (the CPU guard is tests/test_train_loop.py)")
        return 0
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for event in events:
            if event["type"] != "step":
                break
            steps += 1
            intervals += bool(event.get("interval_end"))
    torch.cuda.set_sync_debug_mode(0)
    syncs = [w for w in caught if "synchroniz" in str(w.message).lower()]
    for w in syncs:
        where[f"{Path(w.filename).name}:{w.lineno}"] += 1
    print(f"{args.model} {args.pretrained or ''}: {steps} steps, {intervals} reporting intervals, "
          f"{len(syncs)} syncs reported by CUDA")
    for origin, count in where.most_common(10):
        print(f"  {count:5d}  {origin}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
