"""`newsclf runs list`: every run directory with its state and scores."""
from __future__ import annotations

import argparse
import json

from newsclf import store
from newsclf.config import resolve_runs_dir


def register(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("runs", help="list run directories")
    rs = r.add_subparsers(dest="runs_command", required=True)
    lst = rs.add_parser("list", help="all runs, newest first")
    lst.add_argument("--runs-dir", default=None)
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=cmd_list)


def run_row(info: store.RunInfo) -> dict:
    res = info.results or {}
    return {"run_id": info.run_id, "model": info.model, "state": info.state,
            **{k: res.get(k) for k in ("val_acc", "test_acc", "f1_macro", "train_seconds",
                                        "inference_ms_per_doc", "params")}}


def cmd_list(args: argparse.Namespace) -> int:
    from newsclf.jobs import reconcile_direct_runs

    reconcile_direct_runs(resolve_runs_dir(args.runs_dir))  # a killed trainer must not stay "running"
    rows = [run_row(r) for r in store.list_runs(resolve_runs_dir(args.runs_dir))]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no runs yet: python -m newsclf train --model tfidf")
        return 0
    print(f"{'run':<44} {'state':<10} {'val':>7} {'test':>7} {'f1':>7}")
    for row in rows:
        cells = [f"{row[k]:.4f}" if isinstance(row[k], float) else "-" for k in ("val_acc", "test_acc", "f1_macro")]
        print(f"{row['run_id']:<44} {row['state']:<10} {cells[0]:>7} {cells[1]:>7} {cells[2]:>7}")
    return 0
