"""`newsclf study queue [--pretrained-small ID] [--pretrained-large ID] [--dry-run]`, `newsclf study status` and
`newsclf study table [--json]`: queue the study's grid as jobs; show its progress, build its ensemble when due;
the published table (model x strategy) with our matching runs beside each row."""
from __future__ import annotations

import argparse

from newsclf.study import LARGE, SMALL


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("study", help="reproduce the study: queue its grid of jobs, then ensemble the best of each group")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    q = actions.add_parser("queue", help="queue TF-IDF, BiLSTM, and freeze/hybrid/full of two pretrained models")
    q.add_argument("--pretrained-small", default=SMALL, help=f"hub id or local folder (default {SMALL})")
    q.add_argument("--pretrained-large", default=LARGE, help=f"hub id or local folder (default {LARGE})")
    q.add_argument("--dry-run", action="store_true", help="check and print the grid; queue nothing")
    q.add_argument("--gpus", default=None, help="GPU ids for the jobs (default: what the queue finds)")
    q.add_argument("--runs-dir", default=None)
    q.set_defaults(func=cmd_queue)
    s = actions.add_parser("status", help="the studies' jobs, their ensemble (built once when due), and the published numbers")
    s.add_argument("--runs-dir", default=None)
    s.set_defaults(func=cmd_status)
    t = actions.add_parser("table", help="the study's published table, and our best matching run of each model x strategy")
    t.add_argument("--runs-dir", default=None)
    t.add_argument("--json", action="store_true", help="print both tables as JSON")
    t.set_defaults(func=cmd_table)


def _print(frame) -> None:
    print(frame.to_string(index=False, na_rep="-", float_format=lambda v: f"{v:.2f}"))


def cmd_queue(args: argparse.Namespace) -> int:
    from newsclf.study import queue_study

    record = queue_study(args.runs_dir, args.pretrained_small, args.pretrained_large, dry_run=args.dry_run,
                         gpus=args.gpus)
    for entry in record.entries:
        print(f"{entry.group:<11} {entry.preset:<36} {entry.job or '(dry run)'}")
    print("dry run: nothing queued" if args.dry_run else
          f"study {record.id}: {len(record.job_ids)} jobs queued; `python -m newsclf study status` follows them")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from newsclf import store
    from newsclf.config import resolve_runs_dir
    from newsclf.study import reconcile_study, study_state, study_table

    root = resolve_runs_dir(args.runs_dir)
    records = reconcile_study(root)
    if not records:
        print("no study queued yet: python -m newsclf study queue")
        return 0
    runs = store.finished_runs(root)
    for record in records:
        print(f"study {record.id} ({record.pretrained_small}, {record.pretrained_large}): {study_state(root, record)}")
        for entry in record.entries:
            state = store.read_status(root / entry.job)["state"] if entry.job else "-"
            print(f"  {entry.group:<11} {entry.preset:<36} {entry.job or '-':<44} {state}")
        if record.ensemble:
            print(f"  ensemble: {record.ensemble}")
        if record.ensemble_error:
            print(f"  ensemble refused: {record.ensemble_error}")
        _print(study_table(runs, record))
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    import json

    from newsclf import store
    from newsclf.config import resolve_runs_dir
    from newsclf.study import published_frame, study_table

    ours = study_table(store.finished_runs(resolve_runs_dir(args.runs_dir)))
    if args.json:
        print(json.dumps({"published": published_frame().to_dict(orient="records"),
                          "ours": json.loads(ours.to_json(orient="records"))}, indent=1))
        return 0
    print("The study's published table (\"not given\": the study gives no figure):")
    _print(published_frame())
    print("\nOur best run (by validation accuracy) of each model x strategy beside it:")
    _print(ours)
    return 0
