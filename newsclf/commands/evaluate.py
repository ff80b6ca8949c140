"""`newsclf evaluate RUN`: re-score a run's best model on val and test (results.json, predictions)."""
from __future__ import annotations

import argparse
import json

from newsclf.config import resolve_runs_dir
from newsclf.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("evaluate", help="re-evaluate a run's best model on val and test")
    e.add_argument("run", help="run id (or a unique part of it) or path inside the runs dir")
    e.add_argument("--runs-dir", default=None)
    e.add_argument("--data-home", default=None, help="dataset cache (default $NEWSCLF_DATA_HOME or data/); "
                   "the data home a run's config names is never used")
    e.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from newsclf import store
    from newsclf.evaluate import evaluate_run

    run_dir = store.resolve_run(args.run, resolve_runs_dir(args.runs_dir))
    if not (run_dir / store.BEST).is_dir():
        raise UserError(f"run {run_dir.name}: has no best/ model to evaluate")
    results = evaluate_run(run_dir, device=args.device, data_home=args.data_home)
    if args.json:
        print(json.dumps({k: v for k, v in results.items() if not k.endswith("_report")}, indent=2))
    else:
        for key in ("val_acc", "test_acc", "f1_macro", "inference_ms_per_doc", "params"):
            print(f"{key:>22}: {results[key]}")
    return 0
