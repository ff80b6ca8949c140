"""`newsclf ensemble RUN RUN... [--weights auto|equal|w1,w2,...] [--combine mean|logmean] [--name NAME]`."""
from __future__ import annotations

import argparse
import json

from newsclf.config import COMBINES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ensemble", help="combine finished runs into an ensemble run (weights fitted on validation)")
    p.add_argument("runs", nargs="+", metavar="RUN", help="finished runs of the same protocol and data")
    p.add_argument("--weights", default="auto",
                   help="auto (minimise validation log-loss; the test split is never used), equal, or w1,w2,...")
    p.add_argument("--combine", default="mean", choices=COMBINES,
                   help="mean of probabilities, or logmean (mean of log-probabilities, renormalised)")
    p.add_argument("--name", default=None, help="run name (part of the run id); default: ensemble")
    p.add_argument("--runs-dir", default=None)
    p.add_argument("--json", action="store_true", help="print the ensemble's results as JSON")
    p.set_defaults(func=cmd_ensemble)


def cmd_ensemble(args: argparse.Namespace) -> int:
    from newsclf import store
    from newsclf.ensemble import build_ensemble

    run_dir = build_ensemble(args.runs, args.runs_dir, weights=args.weights, combine=args.combine, name=args.name)
    res = store.read_json(run_dir / store.RESULTS) or {}
    if args.json:
        print(json.dumps({k: v for k, v in res.items() if not k.endswith("_report")}, indent=2))
        return 0
    print(f"{run_dir.name}: ensemble of {len(res['members'])} runs ({res['combine']}, weights {res['weights_from']})")
    for run_id, w in zip(res["members"], res["weights"]):
        print(f"  {w:6.3f}  {run_id}  (val {res['member_val_acc'][run_id]:.4f}, test {res['member_test_acc'][run_id]:.4f})")
    print(f"  val acc {res['val_acc']:.4f}, test acc {res['test_acc']:.4f}, macro-F1 {res['f1_macro']:.4f}")
    return 0
