"""Per-step overhead of the training loop on a tiny model (a benchmark, not a test).

    python benchmarks/bench_train_overhead.py [--steps 300] [--repeats 3] [--device cpu|cuda] [--profile]

A tiny model (embedding 1000 x 32, mean over real tokens, linear to 20 classes) makes the math
nearly free, so what is timed is the loop around it. Three loops, same batches, same number of
optimizer steps, same process, interleaved repeats:

  bare     a plain PyTorch loop over batches padded up front: forward, cross-entropy, backward,
           clip_grad_norm_, AdamW step (the same weight-decay groups), LR schedule, zero_grad;
           no host sync, no I/O
  trainer  newsclf.train.Trainer.fit() consumed by a no-op
  runner   Trainer.fit() consumed by newsclf.runner's event sink (metrics.jsonl, status.json,
           stop-file checks in a temporary run directory): what a real run pays

It prints ms per step, the ratio to the bare loop (target: trainer/runner <= 1.1x), and counts
host synchronisations (Tensor.item/tolist/cpu/numpy/__bool__/__float__/__int__ called from
newsclf code) and metrics.jsonl writes + flushes per step. `--profile` prints a cProfile of the
runner loop. The first epoch (warm-up) is not timed.
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from newsclf.models.base import ModelFamily  # noqa: E402
from newsclf.models.output import ClassifierOutput  # noqa: E402

SYNC_METHODS = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__")


class TinyModel(nn.Module):
    def __init__(self, vocab: int = 1000, dim: int = 32, num_labels: int = 20):
        super().__init__()
        self.embedding = nn.Embedding(vocab, dim, padding_idx=0)
        self.classifier = nn.Linear(dim, num_labels)

    def forward(self, input_ids, attention_mask=None):
        mask = attention_mask.unsqueeze(-1).float()  # (B, T, 1)
        pooled = (self.embedding(input_ids) * mask).sum(1) / mask.sum(1).clamp(min=1.0)  # (B, D)
        return ClassifierOutput(logits=self.classifier(pooled))


class TinyFamily(ModelFamily):
    name = "tiny"
    trained_by_loop = True


def tiny_cfg(**kw) -> SimpleNamespace:
    values = dict(lr=1e-3, weight_decay=0.01, warmup=0.1, grad_clip=1.0, grad_accum=1, batch_size=32,
                  eval_batch_size=256, seed=0, compile=False, class_balance=False, epochs=1,
                  label_smoothing=0.0, patience=0)
    values.update(kw)
    return SimpleNamespace(**values)


def tiny_data(n: int, seed: int = 0, min_len: int = 8, max_len: int = 64):
    rng = np.random.default_rng(seed)
    ids = [rng.integers(2, 1000, size=int(rng.integers(min_len, max_len + 1))).tolist() for _ in range(n)]
    labels = rng.integers(0, 20, size=n)
    return ids, labels


def make_trainer(cfg, ids, labels, device, should_stop=lambda: False):
    from newsclf.train import DistInfo, Trainer

    torch.manual_seed(cfg.seed)
    return Trainer(TinyModel(), TinyFamily(), cfg, ids, labels, ids[:64], labels[:64], 0, device, DistInfo(), 20,
                   should_stop=should_stop)


def bare_batches(ids, labels, batch_size: int, device):
    """The same length-grouped batches our loop uses, padded once, up front."""
    from newsclf.batching import LengthGroupedBatchSampler
    from newsclf.text import pad_batch

    out = []
    for idx in LengthGroupedBatchSampler([len(x) for x in ids], batch_size, 0):
        x, m = pad_batch([ids[i] for i in idx], 0)
        out.append((torch.from_numpy(x).to(device), torch.from_numpy(m).to(device),
                    torch.as_tensor(labels[idx], dtype=torch.long).to(device)))
    return out


def time_bare(batches, steps: int, device) -> float:
    torch.manual_seed(0)
    model = TinyModel().to(device)
    groups = TinyFamily().param_groups(model, tiny_cfg(), None)  # the same optimizer groups as the Trainer's
    opt = torch.optim.AdamW(groups, lr=1e-3, fused=device.type == "cuda" or None)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)

    def step(b):
        x, m, y = b
        loss = nn.functional.cross_entropy(model(input_ids=x, attention_mask=m).logits.float(), y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0, foreach=device.type == "cuda" or None)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)

    for b in batches:  # warm-up epoch
        step(b)
    _sync(device)
    t0 = time.perf_counter()
    for i in range(steps):
        step(batches[i % len(batches)])
    _sync(device)
    return (time.perf_counter() - t0) / steps


def time_ours(cfg, ids, labels, steps: int, device, with_runner: bool, profile: bool = False) -> float:
    """Seconds per optimizer step over epoch 2 onwards (epoch 1 warms up)."""
    from newsclf import runner

    per_epoch = -(-len(ids) // cfg.batch_size)
    cfg.epochs = 1 + -(-steps // per_epoch)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        trainer = make_trainer(cfg, ids, labels, device,
                               should_stop=runner._stop_file_check(run_dir) if with_runner else (lambda: False))
        sink = runner._event_sink(run_dir, True, None) if with_runner else (lambda e: None)
        prof = cProfile.Profile() if profile else None
        t0 = None
        done = 0
        for event in trainer.fit():
            if event["type"] == "epoch" and event["epoch"] == 1:
                _sync(device)
                t0 = time.perf_counter()
                done = trainer.state.global_step
                if prof:
                    prof.enable()
            sink(event)
        _sync(device)
        elapsed = time.perf_counter() - t0
        if prof:
            prof.disable()
            pstats.Stats(prof).sort_stats("cumulative").print_stats(r"newsclf|json|flush|fsync|dataloader.py|collate|pad_batch|clip_grad|stat|write", 40)
        # timed: the steps of epochs 2.. plus their evaluations; subtract evaluation time measured apart
        n = trainer.state.global_step - done
        eval_s = _eval_seconds(trainer, device) * (cfg.epochs - 1)
        del sink
        return (elapsed - eval_s) / n


def _eval_seconds(trainer, device) -> float:
    trainer.evaluate()
    _sync(device)
    t0 = time.perf_counter()
    trainer.evaluate()
    _sync(device)
    return time.perf_counter() - t0


def count_syncs_and_writes(cfg, ids, labels, device) -> dict:
    """Host syncs called from newsclf code, and metrics.jsonl writes/flushes, over one epoch."""
    from unittest import mock

    from newsclf import runner, store

    counts = {"syncs": 0, "writes": 0, "flushes": 0}
    originals = {name: getattr(torch.Tensor, name) for name in SYNC_METHODS}

    def spy(name):
        def wrapper(self, *a, **k):
            if "newsclf" in sys._getframe(1).f_code.co_filename:
                counts["syncs"] += 1
            return originals[name](self, *a, **k)
        return wrapper

    cfg.epochs = 1
    with tempfile.TemporaryDirectory() as tmp:
        trainer = make_trainer(cfg, ids, labels, device)
        real_open = open

        class CountingFile:
            def __init__(self, fh):
                self._fh = fh

            def write(self, s):
                counts["writes"] += 1
                return self._fh.write(s)

            def flush(self):
                counts["flushes"] += 1
                return self._fh.flush()

            def __getattr__(self, item):
                return getattr(self._fh, item)

        def counting_open(path, *a, **k):
            fh = real_open(path, *a, **k)
            return CountingFile(fh) if str(path).endswith(store.METRICS) else fh

        steps = 0
        with mock.patch.multiple(torch.Tensor, **{n: spy(n) for n in SYNC_METHODS}), \
                mock.patch("builtins.open", counting_open):
            sink = runner._event_sink(Path(tmp), True, None)
            for event in trainer.fit():
                if event["type"] == "epoch":
                    break  # the hot loop only (evaluation is once per epoch)
                steps += event["type"] == "step"
                sink(event)
        del sink
    return {**counts, "steps": steps}


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--steps", type=int, default=300, help="timed optimizer steps per loop and repeat")
    ap.add_argument("--docs", type=int, default=2048)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: less noise on a shared CPU)")
    ap.add_argument("--profile", action="store_true", help="cProfile the runner loop once")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    ids, labels = tiny_data(args.docs)
    print(f"# tiny model on {device} ({torch.get_num_threads()} threads), {args.docs} docs, batch {args.batch_size}, "
          f"{args.steps} timed steps x {args.repeats} repeats; load average {os.getloadavg()[0]:.2f}", flush=True)
    if args.profile:
        time_ours(tiny_cfg(batch_size=args.batch_size), ids, labels, args.steps, device, True, profile=True)
        return
    batches = bare_batches(ids, labels, args.batch_size, device)
    rows = {"bare": [], "trainer": [], "runner": []}
    for _ in range(args.repeats):
        rows["bare"].append(time_bare(batches, args.steps, device))
        rows["trainer"].append(time_ours(tiny_cfg(batch_size=args.batch_size), ids, labels, args.steps, device, False))
        rows["runner"].append(time_ours(tiny_cfg(batch_size=args.batch_size), ids, labels, args.steps, device, True))
    bare = statistics.median(rows["bare"])
    print("| loop | median ms/step | min ms/step | ratio to bare (median) |\n|---|---:|---:|---:|")
    for name, values in rows.items():
        print(f"| {name} | {statistics.median(values) * 1e3:.3f} | {min(values) * 1e3:.3f} | "
              f"{statistics.median(values) / bare:.2f}x |")
    c = count_syncs_and_writes(tiny_cfg(batch_size=args.batch_size), ids, labels, device)
    print(f"\none epoch of {c['steps']} steps through the runner's sink: {c['syncs']} host syncs from newsclf code, "
          f"{c['writes']} metrics.jsonl writes, {c['flushes']} flushes; load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
