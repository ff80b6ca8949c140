"""Import speed of `python -m newsclf data import-table` (newsclf.data.import_table) on a synthetic CSV.

Writes a CSV of N rows (default 100,000) into benchmarks/_work/ (git-ignored): texts of ~40-250
words drawn Zipf-like from a 20,000-word vocabulary (about 1 kB each, every 20th row a quoted
multi-line text with commas and "quotes"), 20 classes, a few empty texts and missing labels. Then, each
in a fresh subprocess (so that peak RSS is the step's own): the import (stratified split), loading the
corpus as a Dataset (load_corpus), and its statistics (corpus_stats). Prints seconds, peak RSS and
rows/s per step, with `uptime` before and after.

    python benchmarks/bench_import_table.py                 # 100,000 rows
    python benchmarks/bench_import_table.py --rows 1000000  # a million rows (~1 GB CSV)
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / "_work" / "import_table"
# Peak RSS from /proc's VmHWM: getrusage's ru_maxrss survives fork+exec on Linux, so a child started by
# a large parent would report the parent's peak.
CHILD = """
import json, re, sys, time
sys.path.insert(0, {root!r})
start = time.perf_counter()
{code}
hwm = int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
print("RESULT", json.dumps({{"seconds": time.perf_counter() - start, "peak_rss_mb": hwm / 1024}}))
"""
STEPS = {
    "import": "from newsclf.data import import_table\n"
              "r = import_table({csv!r}, 'bench', 'text', 'label', data_home={home!r}, force=True)",
    "load": "from newsclf.data import load_corpus\nd = load_corpus('bench', {home!r})\nassert len(d.train.texts) > 0",
    "stats": "from newsclf.data import corpus_stats\ns = corpus_stats('bench', {home!r})",
    "baseline": "import newsclf.data, pyarrow, pyarrow.csv, pyarrow.compute",
}


def make_csv(path: Path, rows: int, seed: int = 0) -> None:
    """The synthetic table (module docstring), written in chunks of 20,000 rows."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocab = np.array(["".join(rng.choice(letters, size=rng.integers(2, 10))) for _ in range(20_000)])
    weights = 1.0 / np.arange(1, len(vocab) + 1)
    weights /= weights.sum()
    stream = " ".join(rng.choice(vocab, size=2_000_000, p=weights))
    starts = np.flatnonzero(np.frombuffer(stream.encode(), np.uint8) == 32) + 1
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "text", "label"])
        for first in range(0, rows, 20_000):
            n = min(20_000, rows - first)
            begin = rng.integers(0, len(starts) - 300, size=n)
            length = rng.integers(40, 250, size=n)
            labels = rng.integers(0, 20, size=n)
            for i in range(n):
                text = stream[starts[begin[i]]:starts[begin[i] + length[i]] - 1]
                row = first + i
                if row % 20 == 0:
                    text = f'{text[:200]}\n"quoted", on a second line\n{text[200:]}'
                label = "" if row % 997 == 0 else f"topic-{labels[i]:02d}"
                writer.writerow([f"doc{row}", "" if row % 1009 == 0 else text, label])


def run_step(step: str, csv_path: Path, home: Path) -> dict:
    code = CHILD.format(root=str(ROOT), code=STEPS[step].format(csv=str(csv_path), home=str(home)))
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=3600)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"{step} failed:\n{proc.stderr[-2000:]}")
    return json.loads(line[len("RESULT "):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="keep the CSV and data home afterwards")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    csv_path, home = WORK / f"table_{args.rows}.csv", WORK / f"home_{args.rows}"
    if not csv_path.exists():
        t = time.perf_counter()
        make_csv(csv_path, args.rows)
        print(f"wrote {csv_path} ({csv_path.stat().st_size / 1e6:,.1f} MB) in {time.perf_counter() - t:.1f} s")
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    print(f"{os.cpu_count()} cores; {args.rows:,} rows; {csv_path.stat().st_size / 1e6:,.1f} MB")
    results = {step: run_step(step, csv_path, home) for step in ("baseline", "import", "load", "stats")}
    base = results["baseline"]["peak_rss_mb"]
    for step in ("import", "load", "stats"):
        r = results[step]
        print(f"{step:<7} {r['seconds']:7.2f} s  {args.rows / r['seconds']:>10,.0f} rows/s  peak RSS "
              f"{r['peak_rss_mb']:7.1f} MB (interpreter + imports: {base:.1f} MB)")
    corpus = home / "corpora" / "bench.npz"
    print(f"corpus file {corpus.stat().st_size / 1e6:,.1f} MB")
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    if not args.keep:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
