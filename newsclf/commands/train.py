"""`newsclf train` and `newsclf evaluate`."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from newsclf import store
from newsclf.cli import UserError
from newsclf.config import RunConfig, add_config_arguments, config_from_namespace, resolve_runs_dir


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model into a new run directory and evaluate it",
                       description="Train, keep the best epoch by validation accuracy, evaluate, print the run directory.")
    add_config_arguments(p)
    p.add_argument("--runs-dir", default=None, help="where run directories go (default $NEWSCLF_RUNS_DIR or checkpoints/)")
    p.add_argument("--run-dir", default=None, help="train into this prepared run directory (holds config.json; used by jobs)")
    p.add_argument("--resume", default=None, metavar="RUN", help="continue an interrupted run from its last/ checkpoint")
    p.set_defaults(func=cmd_train)
    e = sub.add_parser("evaluate", help="re-evaluate a run's best model on val and test")
    e.add_argument("run", help="run id or path inside the runs dir")
    e.add_argument("--runs-dir", default=None)
    e.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_evaluate)


def _given_fields(args: argparse.Namespace) -> dict:
    from dataclasses import fields

    return {f.name: getattr(args, f.name) for f in fields(RunConfig) if getattr(args, f.name, None) is not None}


def _prepared_config(run_dir: Path) -> RunConfig:
    data = store.read_json(run_dir / store.CONFIG)
    if not isinstance(data, dict):
        raise UserError(f"run-dir: {run_dir} has no readable config.json")
    return RunConfig.from_dict(data).resolved()


def cmd_train(args: argparse.Namespace) -> int:
    from newsclf.data import DataMissingError, corpus_available, missing_message

    runs_dir = resolve_runs_dir(args.runs_dir)
    given = _given_fields(args)
    resume = False
    if args.resume:
        run_dir = store.resolve_run(args.resume, runs_dir)
        if not (run_dir / store.LAST / "state.json").is_file():
            raise UserError(f"resume: run {run_dir.name} has no last/ checkpoint (it never finished an epoch); "
                            "start a new run")
        cfg = _prepared_config(run_dir)
        wanted = RunConfig(**{**cfg.to_dict(), **given}).resolved()
        diff = sorted(k for k, v in wanted.fingerprint().items() if cfg.fingerprint().get(k) != v)
        if diff:
            raise UserError(f"resume: {diff[0]} differs from the run's config "
                            f"({cfg.fingerprint()[diff[0]]!r} there); resume with the same config or start a new run")
        cfg = wanted
        resume = True
    elif args.run_dir:
        run_dir = Path(args.run_dir).resolve()
        if given:
            raise UserError(f"run-dir: takes its config from {run_dir / store.CONFIG}; do not pass --{next(iter(given)).replace('_', '-')}")
        cfg = _prepared_config(run_dir)
    else:
        cfg = config_from_namespace(args)
        run_dir = None
    if not corpus_available(cfg.data_home or None):
        error = DataMissingError(missing_message(cfg.data_home or None))
        if run_dir is not None:  # a prepared job: record why it failed where the dashboard looks
            store.update_status(run_dir, state="failed", reason=f"bad data: {error}", ended=time.time())
        raise error
    if run_dir is None:
        if cfg.model == "transformer":  # refuse a bad model id or max_len before a run dir exists
            from newsclf.models.transformer import preflight

            preflight(cfg)
        run_dir = _create_run_dir_once(runs_dir, cfg)
    from newsclf.runner import run

    results = run(cfg, run_dir, resume=resume, on_event=_progress_printer())
    if results is None and store.read_status(run_dir).get("state") == "cancelled":
        print(run_dir)
        return 0
    if results is not None:
        print(run_dir)
    return 0


def _create_run_dir_once(runs_dir: Path, cfg: RunConfig) -> Path:
    """Rank 0 creates the run directory; under torchrun the others receive its path."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return store.create_run_dir(runs_dir, cfg.name or _default_name(cfg))
    import torch.distributed as dist

    from newsclf.train import setup_distributed

    info = setup_distributed(cfg.device)
    box = [str(store.create_run_dir(runs_dir, cfg.name or _default_name(cfg))) if info.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return Path(box[0])


def _default_name(cfg: RunConfig) -> str:
    if cfg.model != "transformer":
        return cfg.model
    return f"{Path(cfg.pretrained.rstrip('/')).name}-{cfg.strategy}"


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
        elif event["type"] == "done" and bar["bar"] is not None:  # epoch lines come from the logger
            bar["bar"].close()
            while rerouted:
                handler, stream = rerouted.pop()
                handler.setStream(stream)
    return on_event


def cmd_evaluate(args: argparse.Namespace) -> int:
    from newsclf.runner import evaluate_run

    run_dir = store.resolve_run(args.run, resolve_runs_dir(args.runs_dir))
    if not (run_dir / store.BEST).is_dir():
        raise UserError(f"run {run_dir.name}: has no best/ model to evaluate")
    results = evaluate_run(run_dir, device=args.device)
    if args.json:
        print(json.dumps({k: v for k, v in results.items() if not k.endswith("_report")}, indent=2))
    else:
        for key in ("val_acc", "test_acc", "f1_macro", "inference_ms_per_doc", "params"):
            print(f"{key:>22}: {results[key]}")
    return 0
