"""Benchmark the classic models (TF-IDF baseline, BiLSTM + attention) on the real 20 Newsgroups corpus.

Trains each model through the library (`newsclf.runner.run`) into run directories under
benchmarks/_work/runs (git-ignored), then prints the study's table: val acc, test acc, macro F1,
training seconds, inference ms per document (batched) and parameters.

The corpus is imported from ../shared/data/20news-bydate.tar.gz (relative to the repository's
parent) into benchmarks/_work/data when no data home with the corpus is given.

    python benchmarks/bench_classic.py                          # both models, library defaults
    python benchmarks/bench_classic.py --models bilstm --epochs 5 --lr 2e-3
    nohup nice -n 5 python benchmarks/bench_classic.py --epochs 5 > benchmarks/_work/bench.log 2>&1 &

Only validation accuracy may be used to choose settings (the best epoch is kept by val accuracy);
the test split is reported, never tuned on.
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

WORK = REPO / "benchmarks" / "_work"
ARCHIVE = REPO.parent / "shared" / "data" / "20news-bydate.tar.gz"
STUDY = {"tfidf": None, "bilstm": 0.629}  # the study's test accuracy for the BiLSTM


def ensure_corpus(data_home: str | None) -> str:
    """A data home that holds the corpus: the one given, the project default, or an import of ARCHIVE."""
    from newsclf.data import corpus_available, import_archive

    if data_home:
        if not corpus_available(data_home):
            import_archive(ARCHIVE, data_home)
        return data_home
    default = REPO / "data"
    if corpus_available(str(default)):
        return str(default)
    home = WORK / "data"
    if not corpus_available(str(home)):
        print(f"importing {ARCHIVE} into {home}", flush=True)
        import_archive(ARCHIVE, home)
    return str(home)


def train_one(model: str, args: argparse.Namespace, data_home: str, runs_dir: Path) -> dict:
    from newsclf import store
    from newsclf.config import RunConfig
    from newsclf.runner import run

    values: dict = dict(model=model, data_home=data_home, device="cpu", seed=args.seed, limit_train=args.limit_train,
                        name=f"bench-{model}")
    if model == "bilstm":
        values.update({k: v for k, v in dict(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                                              max_len=args.max_len, glove=args.glove).items() if v is not None})
    cfg = RunConfig(**values).resolved()
    run_dir = store.create_run_dir(runs_dir, cfg.name)
    print(f"== {model}: {run_dir}", flush=True)
    start = time.perf_counter()
    results = run(cfg, run_dir, on_event=_printer(model))
    wall = time.perf_counter() - start
    if results is None:
        raise SystemExit(f"{model}: run ended without results (state {store.read_status(run_dir).get('state')})")
    epochs = [e for e in store.read_metrics(run_dir / store.METRICS)[0] if e.get("type") == "epoch"]
    return {**{k: v for k, v in results.items() if not k.endswith("_report")},
            "run_dir": str(run_dir), "wall_seconds": wall, "epochs": cfg.epochs, "lr": cfg.lr,
            "embeddings": "glove" if cfg.glove else ("random" if model == "bilstm" else "-"),
            "val_curve": [round(e["val_acc"], 4) for e in epochs]}


def _printer(model: str):
    """Progress lines every 20 steps (the log also gets the epoch lines from the library)."""
    def on_event(event: dict) -> None:
        if event["type"] == "step" and (event["step"] % 20 == 0 or event["step"] == event["total_steps"]):
            print(f"  {model} step {event['step']}/{event['total_steps']} epoch {event['epoch']} "
                  f"loss {event['loss']:.3f} {event['samples_per_s']:.1f} docs/s eta {event['eta_s'] / 60:.1f} min",
                  flush=True)
        elif event["type"] == "epoch":
            print(f"  {model} epoch {event['epoch']}/{event['epochs']}: val acc {event['val_acc']:.4f}"
                  f"{' (best)' if event['is_best'] else ''}", flush=True)
    return on_event


def table(rows: list[dict]) -> str:
    head = "| model | embeddings | epochs (best) | val acc | test acc | macro F1 | train s | inference ms/doc | single-doc ms | params |"
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['embeddings']} | {r['epochs']} ({r['best_epoch']}) | {r['val_acc']:.4f} | "
                     f"{r['test_acc']:.4f} | {r['f1_macro']:.4f} | {r['train_seconds']:.1f} | "
                     f"{r['inference_ms_per_doc']:.3f} | {r['inference_ms_single']:.2f} | {r['params']:,} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["tfidf", "bilstm"], choices=("tfidf", "bilstm"))
    p.add_argument("--epochs", type=int, default=None, help="bilstm epochs (default: the library's)")
    p.add_argument("--lr", type=float, default=None, help="bilstm learning rate (default: the library's)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--max-len", type=int, default=None)
    p.add_argument("--glove", default=None, help="GloVe 6B 300d .txt/.zip (none is available offline here)")
    p.add_argument("--limit-train", type=int, default=0)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--data-home", default=None)
    p.add_argument("--runs-dir", default=str(WORK / "runs"))
    p.add_argument("--merge", action="store_true",
                   help="keep the rows of models not trained now from the previous bench_results.json")
    p.add_argument("--report", default=None, metavar="MD",
                   help="also write the table, machine and command to this Markdown file")
    p.add_argument("--report-only", action="store_true",
                   help="train nothing: print (and --report) the table of the saved bench_results.json")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    args = p.parse_args(argv)

    if args.report_only:
        return report(json.loads((WORK / "bench_results.json").read_text()), args.report)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    data_home = ensure_corpus(args.data_home)
    runs_dir = Path(args.runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    saved = WORK / "bench_results.json"
    rows = [r for r in json.loads(saved.read_text()) if r["model"] not in args.models] \
        if args.merge and saved.is_file() else []
    for model in args.models:
        rows.append(train_one(model, args, data_home, runs_dir))
        saved.write_text(json.dumps(rows, indent=2))
    return report(rows, args.report)


def report(rows: list[dict], md_path: str | None) -> int:
    print()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, no GPU; "
          f"python {platform.python_version()}")
    print(f"command: python {' '.join(sys.argv)}")
    print(table(rows))
    for r in rows:
        if r["model"] == "bilstm":
            print(f"bilstm val acc per epoch: {r['val_curve']} (lr {r['lr']}, {r['embeddings']} embeddings); "
                  f"study: {STUDY['bilstm']:.1%} test acc")
    if md_path:
        lines = ["# Classic models on the real corpus (seed protocol)", "",
                 f"Machine: {os.cpu_count()}-core CPU shared with other work, no GPU; python {platform.python_version()}.",
                 f"Command: `python {' '.join(sys.argv)}`", "", table(rows), ""]
        for r in rows:
            lines.append(f"- {r['model']}: run `{Path(r['run_dir']).name}`, {r['n_train']}/{r['n_val']}/{r['n_test']} "
                         f"train/val/test docs, val acc per epoch {r['val_curve']}, wall {r['wall_seconds']:.0f} s")
        Path(md_path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
