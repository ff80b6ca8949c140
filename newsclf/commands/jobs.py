"""`python -m newsclf jobs ...`: background training jobs (the same functions the dashboard calls).

    jobs submit [train options] [--gpus 0,1 | --nproc-per-node N] [--cpu-slots N] [--runs-dir DIR]
    jobs list   [--json] [--runs-dir DIR]
    jobs status ID [--json] [--runs-dir DIR]
    jobs cancel ID [--timeout S] [--wait] [--runs-dir DIR]
    jobs resume ID [--runs-dir DIR]
    jobs logs   ID [-n N] [--follow] [--runs-dir DIR]

`submit` prints the job id alone on stdout (so `ID=$(python -m newsclf jobs submit ...)` works).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import sys

from newsclf.commands.args import add_config_arguments, config_from_namespace
from newsclf.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `jobs` command group."""
    parser = subparsers.add_parser("jobs", help="background training jobs: submit, list, status, cancel, logs",
                                   description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="jobs_command", required=True, metavar="ACTION")

    submit = sub.add_parser("submit", help="queue a training job (takes the options of `newsclf train`)")
    add_config_arguments(submit)
    submit.add_argument("--gpus", default=None, metavar="IDS",
                        help="comma-separated GPU ids (as in CUDA_VISIBLE_DEVICES); more than one runs torchrun")
    submit.add_argument("--nproc-per-node", type=_int_range(1, 64), default=None, metavar="N",
                        help="processes (GPUs) for torchrun; on CPU, N gloo processes")
    submit.add_argument("--cpu-slots", type=_int_range(1, 256), default=None, metavar="N",
                        help="concurrent CPU jobs from now on (default: $NEWSCLF_CPU_SLOTS or 1)")
    _add_runs_dir(submit)
    submit.set_defaults(func=cmd_submit)

    lst = sub.add_parser("list", help="all jobs, newest first, with progress")
    lst.add_argument("--json", action="store_true", help="print the jobs as JSON")
    _add_runs_dir(lst)
    lst.set_defaults(func=cmd_list)

    status = sub.add_parser("status", help="one job's state, progress and failure reason")
    status.add_argument("id", help="job id (= run id)")
    status.add_argument("--json", action="store_true", help="print the job as JSON")
    _add_runs_dir(status)
    status.set_defaults(func=cmd_status)

    cancel = sub.add_parser("cancel", help="dequeue a queued job, or stop a running one")
    cancel.add_argument("id", help="job id (= run id)")
    cancel.add_argument("--timeout", type=_seconds, default=30.0,
                        help="seconds of graceful stop before the worker's processes are killed (default 30)")
    cancel.add_argument("--wait", action="store_true", help="return only once the job has ended")
    _add_runs_dir(cancel)
    cancel.set_defaults(func=cmd_cancel)

    resume = sub.add_parser("resume", help="queue a failed or cancelled job again from its last/ checkpoint")
    resume.add_argument("id", help="job id (= run id)")
    _add_runs_dir(resume)
    resume.set_defaults(func=cmd_resume)

    logs = sub.add_parser("logs", help="print a job's train.log")
    logs.add_argument("id", help="job id (= run id)")
    logs.add_argument("-n", "--lines", type=_int_range(1, 100_000), default=50, help="last N lines (default 50)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines until the job ends")
    _add_runs_dir(logs)
    logs.set_defaults(func=cmd_logs)


def _int_range(low: int, high: int):
    """An argparse type: an integer in low..high (argparse prints the one-line error, exit 2)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def _seconds(text: str) -> float:
    """An argparse type: seconds, finite and between 0 and a week (NaN, inf, negative refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or not 0 <= value <= 7 * 24 * 3600:
        raise argparse.ArgumentTypeError(f"must be between 0 and 604800 seconds, got {text}")
    return value


def _add_runs_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs-dir", default=None, help="runs directory (default: $NEWSCLF_RUNS_DIR or checkpoints/)")


def cmd_submit(args: argparse.Namespace) -> int:
    from newsclf import jobs

    cfg = config_from_namespace(args)
    info = jobs.submit(cfg, args.runs_dir, gpus=args.gpus, nproc_per_node=args.nproc_per_node,
                       cpu_slots=args.cpu_slots)
    where = f"queue position {info.queue_position}" if info.queue_position else info.state
    print(f"submitted {info.id} ({where})", file=sys.stderr)
    print(info.id)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from newsclf import jobs

    infos = jobs.list_jobs(args.runs_dir)
    if args.json:
        print(json.dumps([i.to_dict() for i in infos], indent=2, default=str))
        return 0
    if not infos:
        print("no jobs")
        return 0
    rows = [("ID", "STATE", "MODEL", "PROGRESS", "ETA", "REASON")]
    rows += [(i.id, _state(i), i.model, _progress(i), _duration(i.progress.get("eta_s")) if i.state == "running" else "",
              (i.reason or "")[:60]) for i in infos]
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1])
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from newsclf import jobs

    info = jobs.job_status(args.id, args.runs_dir)
    if args.json:
        print(json.dumps(info.to_dict(), indent=2, default=str))
        return 0
    p = info.progress
    lines = [f"job       {info.id}", f"state     {_state(info)}", f"model     {info.model}",
             f"slot      {info.slot}" + (f" gpus {','.join(info.gpus)}" if info.gpus else "")
             + (f" x{info.nproc_per_node} (torchrun)" if info.nproc_per_node > 1 else ""),
             f"submitted {_time(info.submitted)}", f"started   {_time(info.started)}", f"ended     {_time(info.ended)}"]
    if p:
        lines.append(f"progress  {_progress(info)}  epoch {p.get('epoch', '-')}  loss {_num(p.get('loss'))}  "
                     f"lr {_num(p.get('lr'))}  {_num(p.get('samples_per_s'))} samples/s  "
                     f"eta {_duration(p.get('eta_s'))}")
    if info.reason:
        lines.append(f"reason    {info.reason}")
    lines.append(f"run dir   {info.path}")
    print("\n".join(lines))
    if info.state == "failed" and info.error:
        print("\n" + info.error.rstrip())
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    from newsclf import jobs

    before = jobs.job_status(args.id, args.runs_dir)
    if before.terminal:
        print(f"{before.id} is already {before.state}; nothing to cancel")
        return 0
    try:
        info = jobs.cancel(args.id, args.runs_dir, timeout=args.timeout, wait=args.wait)
    except TimeoutError as exc:
        raise UserError(str(exc)) from None
    if info.terminal:
        print(f"{info.id}: {info.state}")
    else:
        print(f"{info.id}: stop requested; its processes are killed if still running after {args.timeout:g} s")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from newsclf import jobs

    try:
        info = jobs.resume(args.id, args.runs_dir)
    except jobs.JobError as exc:
        raise UserError(str(exc)) from None
    print(f"{info.id}: {info.state}" + (f" (queue position {info.queue_position})" if info.queue_position else ""))
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    from newsclf import jobs

    if not args.follow:
        sys.stdout.write(jobs.tail_log(args.id, args.lines, args.runs_dir))
        return 0
    for line in jobs.follow_log(args.id, args.runs_dir, lines=args.lines):
        sys.stdout.write(line)
        sys.stdout.flush()
    return 0


# ---- formatting ---------------------------------------------------------------------------------
def _state(info) -> str:
    if info.state == "queued" and info.queue_position:
        return f"queued #{info.queue_position}"
    if info.state == "running" and info.cancel_requested:
        return "stopping"
    return info.state


def _progress(info) -> str:
    p = info.progress
    if "step" not in p:
        return "100%" if info.state == "finished" else ""
    total = p.get("total_steps")
    pct = f" ({p['percent']:.0f}%)" if "percent" in p else ""
    return f"{p['step']}/{total}{pct}" if total else str(p["step"])


def _duration(seconds) -> str:
    if not isinstance(seconds, (int, float)) or seconds < 0:
        return "-"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _num(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return "-" if value is None else str(value)


def _time(stamp) -> str:
    if not isinstance(stamp, (int, float)):
        return "-"
    return _dt.datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M:%S")
