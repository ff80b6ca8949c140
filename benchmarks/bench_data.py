"""Time the corpus import, load_dataset and compute_stats on the real archive, before/after.

    python benchmarks/bench_data.py [--archive ../shared/data/20news-bydate.tar.gz] [--before REF] [--repeat N]

Each measurement runs in a fresh Python process (cold imports, empty in-process caches) on a temp
data home that is removed afterwards. ``--before REF`` (a git ref of this repository, e.g. the
commit before the data package) runs the same steps on that version's newsclf, extracted with
`git archive` into a temp folder, and prints both side by side. Prints `uptime` before and after:
on a shared machine the load average matters as much as the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ARCHIVE = ROOT.parent / "shared" / "data" / "20news-bydate.tar.gz"

# Runs inside the measured tree; prints one JSON line of timings.
PROBE = r"""
import json, os, sys, time
home, archive, step = sys.argv[1], sys.argv[2], sys.argv[3]
t0 = time.perf_counter()
from newsclf import data
out = {}
if step == "import":
    t = time.perf_counter(); data.import_archive(archive, home); out["import_archive"] = time.perf_counter() - t
    out["with_python_imports"] = time.perf_counter() - t0
elif step == "load":
    t = time.perf_counter(); sizes = data.load_dataset("seed", home).sizes(); out["load_dataset"] = time.perf_counter() - t
    out["seed sizes"] = "/".join(str(n) for n in sizes.values())
elif step == "load_sklearn_imported":  # the data work alone: sklearn (~1.5 s of imports) loaded first
    import sklearn.datasets, sklearn.model_selection, sklearn.feature_extraction.text
    t = time.perf_counter(); data.load_dataset("seed", home); out["load_dataset_sklearn_imported"] = time.perf_counter() - t
elif step == "stats":  # cold: no JSON beside the corpus
    for name in os.listdir(home):
        if name.startswith("newsclf_stats_"):
            os.remove(os.path.join(home, name))
    t = time.perf_counter(); data.compute_stats(home, "seed"); out["compute_stats_seed"] = time.perf_counter() - t
    t = time.perf_counter(); data.compute_stats(home, "raw"); out["compute_stats_raw"] = time.perf_counter() - t
elif step == "stats_json":  # a cold process that finds the JSON written by the step before
    t = time.perf_counter(); data.compute_stats(home, "seed"); data.compute_stats(home, "raw")
    out["compute_stats_both_from_json"] = time.perf_counter() - t
print(json.dumps(out))
"""


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def _measure(tree: Path, archive: Path) -> dict:
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-data-") as home:
        env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1"}
        for step in ("import", "load", "load_sklearn_imported", "stats", "stats_json"):
            proc = subprocess.run([sys.executable, "-c", PROBE, home, str(archive), step], cwd=tree, env=env,
                                  capture_output=True, text=True, timeout=600)
            if proc.returncode:
                raise SystemExit(f"{step} failed in {tree}:\n{proc.stderr.strip()}")
            results.update(json.loads(proc.stdout.strip().splitlines()[-1]))
        cli = [sys.executable, "-m", "newsclf", "data", "import", str(archive), "--data-home", home]
        start = time.perf_counter()
        proc = subprocess.run(cli, cwd=tree, env=env, capture_output=True, text=True, timeout=600)
        results["cli_data_import_wall"] = time.perf_counter() - start if proc.returncode == 0 else float("nan")
    return results


def _checkout(ref: str, dest: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", type=Path, default=DEFAULT_ARCHIVE)
    parser.add_argument("--before", help="git ref to compare with (e.g. HEAD~3)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per version; the best is shown")
    args = parser.parse_args()
    if not args.archive.is_file():
        print(f"no archive at {args.archive}", file=sys.stderr)
        return 2
    print(f"uptime before: {_uptime()}   cores: {os.cpu_count()}")
    columns: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-data-src-") as tmp:
        trees = {"after (working tree)": ROOT}
        if args.before:
            trees = {f"before ({args.before})": _checkout(args.before, Path(tmp)), **trees}
        for label, tree in trees.items():
            runs = [_measure(tree, args.archive) for _ in range(max(args.repeat, 1))]
            columns[label] = {k: min(r[k] for r in runs) if isinstance(runs[0][k], float) else runs[0][k]
                              for k in runs[0]}
    keys = list(dict.fromkeys(k for col in columns.values() for k in col))
    print(f"{'seconds (best of %d)' % args.repeat:<32}" + "".join(f"{label:>26}" for label in columns))
    for key in keys:
        cells = [col.get(key, "") for col in columns.values()]
        print(f"{key:<32}" + "".join(f"{c:>26.3f}" if isinstance(c, float) else f"{str(c):>26}" for c in cells))
    print(f"uptime after:  {_uptime()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
