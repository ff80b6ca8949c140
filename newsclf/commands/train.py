"""`newsclf train`: parse the options, prepare the run (newsclf.prepare), train it (newsclf.runner)."""
from __future__ import annotations

import argparse
import os
import sys

from newsclf.commands.args import add_config_arguments
from newsclf.config import resolve_runs_dir


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model into a new run directory and evaluate it",
                       description="Train, keep the best epoch by validation accuracy, evaluate, print the run directory.")
    add_config_arguments(p)
    p.add_argument("--runs-dir", default=None, help="where run directories go (default $NEWSCLF_RUNS_DIR or checkpoints/)")
    p.add_argument("--run-dir", default=None, help="train into this prepared run directory (holds config.json; used by jobs)")
    p.add_argument("--resume", default=None, metavar="RUN", help="continue an interrupted run from its last/ checkpoint")
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    from newsclf import store
    from newsclf.prepare import given_fields, prepare_run
    from newsclf.runner import run

    given = given_fields(args)
    prepared = prepare_run(given, resolve_runs_dir(args.runs_dir), resume=args.resume, run_dir=args.run_dir,
                           data_home=given.get("data_home"))
    try:
        results = run(prepared.cfg, prepared.run_dir, resume=prepared.resume, on_event=_progress_printer())
    except Exception as exc:  # noqa: BLE001 - recorded in status.json (reason + traceback) and train.log
        from newsclf.runner import failure_reason

        print(f"error: run {prepared.run_dir.name} failed: {failure_reason(exc)} "
              f"(traceback in {prepared.run_dir / store.STATUS})", file=sys.stderr)
        return 1
    if results is not None or store.read_status(prepared.run_dir).get("state") == "cancelled":
        print(prepared.run_dir)
    return 0


def _progress_printer():
    """A tqdm bar on a terminal (rank 0); nothing extra in logs (epoch lines come from the logger)."""
    if not sys.stderr.isatty() or int(os.environ.get("RANK", "0")) != 0:
        return None
    from tqdm import tqdm

    import logging

    bar = {"bar": None}
    rerouted: list[tuple[logging.StreamHandler, object]] = []

    class _AboveBar:
        """Log lines go through tqdm.write (above the bar) instead of through it."""

        def __init__(self, stream):
            self.stream = stream

        def write(self, text: str) -> None:
            if text.strip():
                tqdm.write(text.rstrip("\n"), file=self.stream)

        def flush(self) -> None:
            self.stream.flush()

    def on_event(event: dict) -> None:
        if event["type"] == "start":
            bar["bar"] = tqdm(total=event["total_steps"], initial=0, unit="step", dynamic_ncols=True, file=sys.stderr)
            for h in logging.getLogger("newsclf").handlers:  # the console handler run() attached
                if isinstance(h, logging.StreamHandler) and h.stream is sys.stderr:
                    rerouted.append((h, h.setStream(_AboveBar(sys.stderr))))
        elif event["type"] == "step" and bar["bar"] is not None:
            bar["bar"].n = event["step"]
            bar["bar"].set_postfix(epoch=event["epoch"], loss=f"{event['loss']:.3f}", refresh=False)
            bar["bar"].refresh()
        elif event["type"] == "eval":  # training is over: a second bar counts evaluated documents
            if bar.get("eval") is None:
                if bar["bar"] is not None:
                    bar["bar"].close()
                bar["eval"] = tqdm(total=event.get("overall_total") or None, desc="evaluating", unit="doc",
                                   dynamic_ncols=True, file=sys.stderr)
            ev = bar["eval"]
            ev.n = int(event.get("overall_done") or 0)
            ev.set_postfix(split=event.get("split"), docs=f"{event.get('done')}/{event.get('total')}", refresh=False)
            ev.refresh()
        elif event["type"] == "done":  # epoch lines come from the logger
            for key in ("bar", "eval"):
                if bar.get(key) is not None:
                    bar[key].close()
            while rerouted:
                handler, stream = rerouted.pop()
                handler.setStream(stream)
    return on_event
