"""Run preparation: everything `train` checks and decides before training starts.

    prepare_run(given, runs_dir, ...) -> Prepared(cfg, run_dir, resume)

One place for: the resume check (last/ exists, the config matches), the corpus check, the
family's preflight (through the model registry), the ONE run-naming rule (`run_name`, also used
by the job queue), and the torchrun-safe creation of the run directory (rank 0 creates it, the
other ranks receive its path). Nothing here imports torch unless torchrun is in use.

A run directory is untrusted input: a stored config's `data_home` is never used as a place to
load from; the caller's data home (flag, $NEWSCLF_DATA_HOME or data/) is.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from newsclf import store
from newsclf.config import ConfigError, RunConfig
from newsclf.errors import UserError
from newsclf.models import get_family


@dataclass
class Prepared:
    cfg: RunConfig
    run_dir: Path
    resume: bool = False


def run_name(cfg: RunConfig) -> str:
    """The name part of a run id: the user's name, else the family's (e.g. `distilbert-base-uncased-full`)."""
    return cfg.name or get_family(cfg.model).run_name(cfg)


def preflight(cfg: RunConfig) -> None:
    """The family's checks beyond the config itself (files, model ids); ConfigError naming the field."""
    get_family(cfg.model).preflight(cfg)


def stored_config(run_dir: Path) -> RunConfig:
    """A run directory's config.json, validated; UserError when it is unreadable or invalid."""
    data = store.read_json_inside(run_dir, store.CONFIG)
    if not isinstance(data, dict):
        raise UserError(f"run {Path(run_dir).name}: config.json is missing or unreadable")
    try:
        return RunConfig.from_dict(data).resolved()
    except (ConfigError, TypeError) as exc:
        raise UserError(f"run {Path(run_dir).name}: config.json is invalid ({exc})") from None


def prepare_run(given: dict[str, Any], runs_dir: Path, *, resume: str | None = None,
                run_dir: str | Path | None = None, data_home: str | None = None) -> Prepared:
    """Decide the config and run directory of a training run; raise UserError/ConfigError/DataError
    before anything is written when something is wrong.

    `given`: config fields the user set (None values left out). `resume`: a run to continue from
    its last/ checkpoint. `run_dir`: a directory prepared by the job queue (its config.json is
    the config). `data_home`: the caller's data home (overrides any stored one).
    """
    data_home = data_home if data_home is not None else given.get("data_home", "")
    if resume:
        path = store.resolve_run(resume, runs_dir)
        if not store.recover_checkpoint(path / store.LAST, "state.json"):
            raise UserError(f"resume: run {path.name} has no last/ checkpoint (it never finished an epoch); "
                            "start a new run")
        store.check_model_dir(path / store.LAST)
        for name in (store.CONFIG, store.STATUS, store.METRICS, store.LOG, store.LABELS, store.RESULTS):
            store.inside_run(path, name)  # the run will write these: a planted link or FIFO is refused now
        saved = stored_config(path)
        wanted = RunConfig(**{**saved.to_dict(), **given, "data_home": data_home or ""}).resolved()
        diff = sorted(k for k, v in wanted.fingerprint().items() if saved.fingerprint().get(k) != v)
        if diff:
            raise UserError(f"resume: {diff[0]} differs from the run's config ({saved.fingerprint()[diff[0]]!r} "
                            "there); resume with the same config or start a new run")
        _check_device(wanted)
        _check_corpus(wanted)
        return Prepared(wanted, path, resume=True)
    if run_dir is not None:
        path = Path(run_dir).resolve()
        extra = sorted(set(given) - {"data_home"})
        if extra:
            raise UserError(f"run-dir: takes its config from {path / store.CONFIG}; "
                            f"do not pass --{extra[0].replace('_', '-')}")
        cfg = RunConfig(**{**stored_config(path).to_dict(), "data_home": data_home or ""}).resolved()
        try:
            _check_corpus(cfg)
        except Exception as exc:  # a prepared job: record why it failed where the dashboard looks
            store.update_status(path, state="failed", reason=f"bad data: {exc}", ended=time.time())
            raise
        return Prepared(cfg, path)
    cfg = RunConfig(**given).resolved()
    _check_device(cfg)
    _check_corpus(cfg)
    preflight(cfg)
    return Prepared(cfg, create_run_dir_once(runs_dir, cfg))


def given_fields(namespace: Any) -> dict[str, Any]:
    """The RunConfig fields set on an argparse namespace (None = not given)."""
    return {f.name: getattr(namespace, f.name) for f in fields(RunConfig) if getattr(namespace, f.name, None) is not None}


def _check_corpus(cfg: RunConfig) -> None:
    """The corpus is there and readable: it is loaded now, as the run will load it (the dataset is cached
    in process, so the run then costs nothing more), so a damaged cache is one line before any run dir."""
    from newsclf.data import DataMissingError, corpus_available, load_dataset, missing_message

    if not corpus_available(cfg.data_home or None):
        raise DataMissingError(missing_message(cfg.data_home or None))
    load_dataset(cfg.protocol, cfg.data_home or None, seed=cfg.seed, limit_train=cfg.limit_train)


def _check_device(cfg: RunConfig) -> None:
    """`--device cuda` needs a GPU torch can use: refused in one line before a run dir exists."""
    if str(cfg.device).startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("device", "cuda requested but torch sees no GPU here; use --device cpu or auto")


def create_run_dir_once(runs_dir: Path, cfg: RunConfig) -> Path:
    """Rank 0 creates the run directory; under torchrun the others receive its path."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return store.create_run_dir(runs_dir, run_name(cfg))
    import torch.distributed as dist

    from newsclf.train import setup_distributed

    info = setup_distributed(cfg.device)
    box = [str(store.create_run_dir(runs_dir, run_name(cfg))) if info.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return Path(box[0])
