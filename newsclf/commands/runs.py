"""`newsclf runs list|delete|archive|unarchive|rename|tag|note`: list and manage run directories (newsclf.manage)."""
from __future__ import annotations

import argparse
import json

from newsclf import store
from newsclf.config import resolve_runs_dir


def register(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("runs", help="list and manage run directories")
    rs = r.add_subparsers(dest="runs_command", required=True)
    lst = rs.add_parser("list", help="all runs, newest first")
    lst.add_argument("--runs-dir", default=None)
    lst.add_argument("--json", action="store_true")
    lst.add_argument("--archived", action="store_true", help="include archived runs")
    lst.set_defaults(func=cmd_list)

    def one(name: str, help_text: str, func) -> argparse.ArgumentParser:
        p = rs.add_parser(name, help=help_text)
        p.add_argument("run", metavar="RUN", help="run id (or a unique ending of one)")
        p.add_argument("--runs-dir", default=None)
        p.set_defaults(func=func)
        return p

    d = one("delete", "delete a run directory for good (never a queued or running job)", cmd_delete)
    d.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    one("archive", "hide a run from the comparison pages (files kept)", cmd_archive)
    one("unarchive", "show an archived run again", cmd_archive)
    one("rename", "set the run's display name (empty: clear it)", cmd_rename).add_argument("name")
    t = one("tag", "add or remove tags", cmd_tag)
    t.add_argument("tags", nargs="*", help="tags to add")
    t.add_argument("--remove", nargs="+", default=[], metavar="TAG", help="tags to remove")
    one("note", "set the run's note (empty: clear it)", cmd_note).add_argument("text")


def run_row(info: store.RunInfo) -> dict:
    res = info.results or {}
    return {"run_id": info.run_id, "model": info.model, "state": info.state, "problem": info.problem,
            **{k: res.get(k) for k in ("val_acc", "test_acc", "f1_macro", "train_seconds",
                                        "inference_ms_per_doc", "params")}}


def cmd_list(args: argparse.Namespace) -> int:
    from newsclf import manage
    from newsclf.jobs import reconcile_direct_runs

    from newsclf.ensemble import clean_orphans

    reconcile_direct_runs(resolve_runs_dir(args.runs_dir))  # a killed trainer must not stay "running"
    clean_orphans(resolve_runs_dir(args.runs_dir))  # and a killed `ensemble` leaves nothing behind
    runs = store.list_runs(resolve_runs_dir(args.runs_dir))
    metas = manage.metas(runs)
    rows = [{**run_row(r), **{k: v for k, v in metas[r.run_id].to_dict().items() if k != "updated"}}
            for r in runs if args.archived or not metas[r.run_id].archived]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no runs yet: python -m newsclf train --model tfidf")
        return 0
    print(f"{'run':<44} {'state':<10} {'val':>7} {'test':>7} {'f1':>7}  name / tags")
    for row in rows:
        cells = [f"{row[k]:.4f}" if isinstance(row[k], float) else "-" for k in ("val_acc", "test_acc", "f1_macro")]
        extra = " ".join([_printable(row["display_name"] or ""), *("#" + t for t in row["tags"]),
                          "(archived)" if row["archived"] else "",
                          f"({_printable(row['problem'][:120])})" if row["problem"] else ""]).strip()
        print(f"{row['run_id']:<44} {row['state']:<10} {cells[0]:>7} {cells[1]:>7} {cells[2]:>7}  {extra}")
    return 0


def _printable(text: str) -> str:
    """Untrusted text for a terminal: control characters (escape sequences) shown as ?."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def cmd_delete(args: argparse.Namespace) -> int:
    import sys

    from newsclf import manage

    run_dir = store.resolve_run(args.run, resolve_runs_dir(args.runs_dir))
    if not args.yes:
        if not sys.stdin.isatty():
            print(f"error: deleting {run_dir.name} needs --yes (no terminal to confirm on)", file=sys.stderr)
            return 2
        if input(f"Delete {run_dir} and every file in it? [y/N] ").strip().lower() not in ("y", "yes"):
            print("not deleted")
            return 1
    print(f"deleted {manage.delete(run_dir.name, args.runs_dir)}")
    return 0


def cmd_archive(args: argparse.Namespace) -> int:
    from newsclf import manage

    archived = args.runs_command == "archive"
    manage.archive(args.run, args.runs_dir, archived=archived)
    print(f"{'archived' if archived else 'unarchived'} {args.run}")
    return 0


def cmd_rename(args: argparse.Namespace) -> int:
    from newsclf import manage

    meta = manage.rename(args.run, args.name, args.runs_dir)
    print(f"{args.run}: display name {_printable(meta.display_name) if meta.display_name else 'cleared'}")
    return 0


def cmd_tag(args: argparse.Namespace) -> int:
    from newsclf import manage

    meta = manage.tag(args.run, args.runs_dir, add=args.tags, remove=args.remove)
    print(f"{args.run}: tags {' '.join(meta.tags) or '(none)'}")
    return 0


def cmd_note(args: argparse.Namespace) -> int:
    from newsclf import manage

    meta = manage.set_note(args.run, args.text, args.runs_dir)
    print(f"{args.run}: note {'set' if meta.note else 'cleared'} ({len(meta.note)} characters)")
    return 0
