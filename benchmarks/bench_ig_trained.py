"""IG completeness against step count on TRAINED runs (a benchmark, not a test).

    python benchmarks/bench_ig_trained.py RUN [RUN ...] --runs-dir DIR --data-home HOME [--docs 20]
        [--max-chars 1500] [--steps 8,16,32,64] [--device cpu]

For each run and step count, explains the first `--docs` VALIDATION documents (cut to `--max-chars`) with
Integrated Gradients (newsclf.explain, Gauss-Legendre) and prints the median and max of
|delta| / |f(input) - f(baseline)| with the median seconds per document. Random-weight models converge
fast; trained ones may not (benchmarks/RESULTS.md, "IG on trained models").
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--runs-dir", required=True)
    ap.add_argument("--data-home", default=None)
    ap.add_argument("--docs", type=int, default=20)
    ap.add_argument("--max-chars", type=int, default=1500)
    ap.add_argument("--steps", default="8,16,32,64")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    from newsclf import explain as ex
    from newsclf.data import load_dataset
    from newsclf.predict import load_predictor

    steps = [int(s) for s in args.steps.split(",")]
    print(f"# load average {os.getloadavg()[0]:.2f}; {args.docs} validation docs, <= {args.max_chars} characters")
    print("| run | steps | median rel. delta | max rel. delta | median s/doc |\n|---|---:|---:|---:|---:|")
    for run in args.runs:
        predictor = load_predictor(run, args.runs_dir, device=args.device)
        data = load_dataset(predictor.config.get("protocol", "seed"), args.data_home)
        texts = [t[:args.max_chars] for t in data.val.texts[:args.docs]]
        for n in steps:
            rel, secs = [], []
            for text in texts:
                t0 = time.perf_counter()
                attr = ex.explain(predictor, text, "ig", n_steps=n)
                secs.append(time.perf_counter() - t0)
                rel.append(abs(attr.delta) / max(abs(attr.f_input - attr.f_baseline), 1e-12))
            print(f"| {predictor.run_id} | {n} | {statistics.median(rel):.1e} | {max(rel):.1e} | "
                  f"{statistics.median(secs):.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
