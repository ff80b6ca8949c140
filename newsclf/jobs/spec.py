"""The job file (job.json): constants, the resource plan, the worker command and environment.

job.json is written at submit: the resource plan (slot, gpu_count, gpus, nproc_per_node,
torchrun), resume/attempt, and later a `launch` record (supervisor identity, assigned GPUs).
"""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Sequence

from newsclf import store
from newsclf.config import ConfigError, RunConfig
from newsclf.devices import ENV_GPUS, visible_gpus

JOB_FILE = "job.json"
PROJECT_ROOT = Path(__file__).resolve().parents[2]

ENV_WORKER_CMD = "NEWSCLF_WORKER_CMD"  # JSON argv prefix of the trainer; `--run-dir DIR` is appended
ENV_CPU_SLOTS = "NEWSCLF_CPU_SLOTS"
DEFAULT_CANCEL_TIMEOUT_S = 30.0  # graceful stop window before the process tree is killed
DEFAULT_KILL_GRACE_S = 5.0  # between SIGTERM and SIGKILL
POLL_S = 0.2

# Environment captured at submit so a job started later (by another job's supervisor) runs as submitted.
_ENV_PREFIXES = ("NEWSCLF_", "HF_", "TRANSFORMERS_", "TOKENIZERS_", "OMP_", "MKL_", "PYTORCH_", "TORCH_", "NCCL_")
_ENV_SCHEDULER = {ENV_GPUS, ENV_CPU_SLOTS, ENV_WORKER_CMD, "CUDA_VISIBLE_DEVICES"}
_ENV_SECRET = re.compile(r"TOKEN|SECRET|PASSWORD|CREDENTIAL|_KEY$", re.I)


class JobError(ValueError):
    """A job operation that cannot be done in the job's current state (e.g. resume without last/)."""


def read_spec(run_dir: Path) -> dict[str, Any] | None:
    spec = store.read_json(Path(run_dir) / JOB_FILE)
    return spec if isinstance(spec, dict) else None


def public_job(spec: dict[str, Any]) -> dict[str, Any]:
    """The part of job.json copied into status.json for the UI (no environment)."""
    keys = ("submitted", "slot", "gpu_count", "gpus", "nproc_per_node", "torchrun", "worker_cmd", "resume", "attempt")
    return {k: spec.get(k) for k in keys if k in spec}


def positive_int(value: Any, name: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(name, f"must be a positive integer, got {value!r}") from None
    if number <= 0 or isinstance(value, bool):
        raise ConfigError(name, f"must be a positive integer, got {value!r}")
    return number


def plan_resources(cfg: RunConfig, gpus: str | Sequence[str] | None, nproc: int | None) -> dict[str, Any]:
    """Decide slot kind, GPU count/ids and torchrun use; raise ConfigError naming the field."""
    nproc = None if nproc is None else positive_int(nproc, "nproc_per_node")
    visible = visible_gpus()
    if gpus is not None and not isinstance(gpus, str):
        gpus = ",".join(str(g) for g in gpus)
    if gpus:
        wanted = [g.strip() for g in gpus.split(",") if g.strip()]
        if not wanted or len(set(wanted)) != len(wanted):
            raise ConfigError("gpus", f"expected distinct comma-separated GPU ids, got {gpus!r}")
        if cfg.device == "cpu":
            raise ConfigError("device", "device cpu conflicts with --gpus")
        missing = [g for g in wanted if g not in visible]
        if missing:
            shown = ", ".join(visible) or "none"
            raise ConfigError("gpus", f"GPU {missing[0]} is not visible (visible: {shown})")
        if nproc is not None and nproc != len(wanted):
            raise ConfigError("nproc_per_node", f"{nproc} processes for {len(wanted)} GPUs ({gpus})")
        return dict(slot="gpu", gpu_count=len(wanted), gpus=wanted, nproc_per_node=len(wanted))
    on_gpu = cfg.device == "cuda" or (cfg.device == "auto" and bool(visible) and cfg.model != "tfidf")
    if cfg.device == "cuda" and not visible:
        raise ConfigError("device", "cuda requested but no GPU is visible (set NEWSCLF_GPUS or CUDA_VISIBLE_DEVICES)")
    if on_gpu:
        count = nproc or 1
        if count > len(visible):
            raise ConfigError("nproc_per_node", f"{count} processes need {count} GPUs; {len(visible)} visible")
        return dict(slot="gpu", gpu_count=count, gpus=None, nproc_per_node=count)
    return dict(slot="cpu", gpu_count=0, gpus=None, nproc_per_node=nproc or 1)


# ---- the worker command and its environment --------------------------------------------------------
def worker_cmd_prefix() -> list[str]:
    text = os.environ.get(ENV_WORKER_CMD)
    if not text:
        return [sys.executable, "-m", "newsclf", "train"]
    try:
        cmd = json.loads(text)
    except json.JSONDecodeError:
        cmd = None
    if not isinstance(cmd, list) or not cmd or not all(isinstance(c, str) for c in cmd):
        raise ConfigError(ENV_WORKER_CMD, "must be a JSON list of strings (argv prefix)")
    return cmd


def captured_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if k.startswith(_ENV_PREFIXES) and k not in _ENV_SCHEDULER and not _ENV_SECRET.search(k)}


def job_env(spec: dict[str, Any]) -> dict[str, str]:
    """This process's environment with the job's captured variables and the project on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not (k.startswith(_ENV_PREFIXES) and k not in _ENV_SCHEDULER)}
    env.update({k: str(v) for k, v in (spec.get("env") or {}).items()})
    paths = [str(PROJECT_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(PROJECT_ROOT)]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def job_cwd(spec: dict[str, Any], run_dir: Path) -> str:
    cwd = spec.get("cwd")
    return cwd if cwd and Path(cwd).is_dir() else str(run_dir.parent)


def build_worker_command(spec: dict[str, Any], run_dir: Path) -> list[str]:
    """The trainer argv, under torchrun when nproc_per_node > 1: the worker prefix + `--run-dir DIR`,
    or for a resumed job `--resume DIR --runs-dir RUNS_DIR` (the trainer continues from last/)."""
    prefix = list(spec.get("worker_cmd") or [sys.executable, "-m", "newsclf", "train"])
    if spec.get("resume"):
        tail = ["--resume", str(run_dir), "--runs-dir", str(run_dir.parent)]
    else:
        tail = ["--run-dir", str(run_dir)]
    nproc = int(spec.get("nproc_per_node") or 1)
    if nproc <= 1:
        return prefix + tail
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc)]
    if Path(prefix[0]).name.startswith("python"):
        return launcher + prefix[1:] + tail  # `-m newsclf train ...` or `script.py ...`
    return launcher + ["--no-python"] + prefix + tail
