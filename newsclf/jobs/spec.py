"""The job file (job.json): constants, the resource plan, authentication, the worker command.

job.json is written at submit: the resource plan (slot, gpu_count, gpus, nproc_per_node,
torchrun), resume/attempt, an HMAC `signature`, and later a `launch` record (supervisor
identity, assigned GPUs). It holds no command, environment or working directory.

Trust: a runs dir may be a shared drive, so nothing in it is executed or trusted as a path.
A job is launched only when its signature verifies: HMAC-SHA256 over the job id, the canonical
config.json and the resource plan (with the attempt number and a fresh nonce per submit or resume),
with a key kept outside the runs dir ($NEWSCLF_JOB_KEY_FILE, default ~/.config/newsclf/job.key,
created 0600 on first submit; a key file that others may read or write is refused).

The signature binds the job's lifecycle, not only its config: a launch is recorded in job.json as
a signed `launch` record (attempt, nonce, supervisor identity), and in a ledger beside the key
(`launched/`, one empty file per launched attempt, named by an HMAC). A signed job whose current
attempt was launched once is never launched again, even when its status.json (or job.json) is
rolled back to "queued"; it takes `resume` (a new attempt, a new nonce, a new signature).
Only jobs with a valid signature and a valid launch record hold a slot. The worker command is rebuilt
at launch from fixed code (`python -m newsclf train --run-dir RUN_DIR`, or torchrun; the prefix may
be replaced by $NEWSCLF_WORKER_CMD in the scheduling process's environment, never from a file);
its environment is the launching process's own (secrets filtered) and its cwd the scheduler's.
A queued job without a valid signature is left alone (never launched, never modified: it may be
a teammate's job on a shared drive) and reported with the reason UNTRUSTED.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from newsclf import runschema, store
from newsclf.config import ConfigError, RunConfig
from newsclf.models import get_family
from newsclf.devices import ENV_GPUS, visible_gpus
from newsclf.jobs import files
from newsclf.jobs.signing import (ENV_JOB_KEY_FILE, LEDGER, REPLAYED, JobError, UntrustedJobError,  # noqa: F401
                                  ensure_key, key_path, launch_record, record_launch, sign, sign_launch, signed,
                                  verified_launch, was_launched)

JOB_FILE = "job.json"
PROJECT_ROOT = Path(__file__).resolve().parents[2]

ENV_WORKER_CMD = "NEWSCLF_WORKER_CMD"  # JSON argv prefix of the trainer; `--run-dir DIR` is appended
ENV_CPU_SLOTS = "NEWSCLF_CPU_SLOTS"
DEFAULT_CANCEL_TIMEOUT_S = 30.0  # graceful stop window before the process tree is killed
DEFAULT_KILL_GRACE_S = 5.0  # between SIGTERM and SIGKILL
POLL_S = 0.2
MAX_NPROC = 64  # processes (GPUs) per job
MAX_CPU_SLOTS = 256
UNTRUSTED = "not submitted by this installation (job.json signature missing or invalid); resubmit it"

# The worker inherits the launching process's environment minus secrets of these families.
_ENV_PREFIXES = ("NEWSCLF_", "HF_", "TRANSFORMERS_", "TOKENIZERS_", "OMP_", "MKL_", "PYTORCH_", "TORCH_", "NCCL_")
_ENV_SCHEDULER = {ENV_GPUS, ENV_CPU_SLOTS, ENV_WORKER_CMD, "CUDA_VISIBLE_DEVICES"}
_ENV_SECRET = re.compile(r"TOKEN|SECRET|PASSWORD|CREDENTIAL|_KEY$", re.I)
_PLAN_KEYS = ("slot", "gpu_count", "gpus", "nproc_per_node", "resume", "attempt", "nonce")
MAX_ATTEMPTS = 10_000
WORKER_KEYS = ("pid", "start", "boot", "pgid")  # the part of status.json's `worker` record that is signed


def read_spec(run_dir: Path) -> dict[str, Any] | None:
    """job.json with its informational fields checked (runschema.parse_job); None when missing, refused
    or damaged (such a job is never launched and holds no slot)."""
    try:
        return runschema.parse_job(files.read_json(run_dir, JOB_FILE))
    except runschema.DamagedError:
        return None


def public_job(spec: dict[str, Any]) -> dict[str, Any]:
    """The part of job.json copied into status.json for the UI."""
    keys = ("submitted", "slot", "gpu_count", "gpus", "nproc_per_node", "torchrun", "resume", "attempt")
    return {k: spec.get(k) for k in keys if k in spec}


def positive_int(value: Any, name: str, high: int | None = None) -> int:
    """`value` as an int in 1..high, else ConfigError naming `name` (bools, floats like 2.5, NaN refused)."""
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(name, f"must be a positive integer, got {value!r}") from None
    if number <= 0 or isinstance(value, bool) or (isinstance(value, float) and value != number):
        raise ConfigError(name, f"must be a positive integer, got {value!r}")
    if high is not None and number > high:
        raise ConfigError(name, f"must be at most {high}, got {value!r}")
    return number


def plan_resources(cfg: RunConfig, gpus: str | Sequence[str] | None, nproc: int | None) -> dict[str, Any]:
    """Decide slot kind, GPU count/ids and torchrun use; raise ConfigError naming the field."""
    nproc = None if nproc is None else positive_int(nproc, "nproc_per_node", MAX_NPROC)
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
    on_gpu = cfg.device == "cuda" or (cfg.device == "auto" and bool(visible) and get_family(cfg.model).uses_gpu(cfg))
    if cfg.device == "cuda" and not visible:
        raise ConfigError("device", "cuda requested but no GPU is visible (set NEWSCLF_GPUS or CUDA_VISIBLE_DEVICES)")
    if on_gpu:
        count = nproc or 1
        if count > len(visible):
            raise ConfigError("nproc_per_node", f"{count} processes need {count} GPUs; {len(visible)} visible")
        return dict(slot="gpu", gpu_count=count, gpus=None, nproc_per_node=count)
    return dict(slot="cpu", gpu_count=0, gpus=None, nproc_per_node=nproc or 1)


def plan_of(spec: dict[str, Any]) -> dict[str, Any]:
    return {k: spec.get(k) for k in _PLAN_KEYS}


def sign_job(spec: dict[str, Any], config: dict[str, Any]) -> None:
    """Add a fresh nonce and the signature over (job id, config.json as written, plan with attempt and
    nonce) to `spec`; any launch record of an earlier attempt is dropped."""
    spec["nonce"] = secrets.token_hex(16)
    spec.pop("launch", None)
    spec.pop("launch_sig", None)
    spec["signature"] = sign(spec["id"], "job", {"config": config, "plan": plan_of(spec)})


def validate_plan(spec: dict[str, Any]) -> dict[str, Any]:
    """The resource plan from job.json, checked: slot cpu/gpu, digit GPU ids, 1 <= nproc <= MAX_NPROC."""
    plan = plan_of(spec)
    gpus = plan["gpus"]
    if plan["slot"] not in ("cpu", "gpu"):
        raise UntrustedJobError(f"job.json: slot must be cpu or gpu, got {plan['slot']!r}")
    if gpus is not None and not (isinstance(gpus, list) and len(gpus) <= MAX_NPROC and len(set(gpus)) == len(gpus)
                                 and all(isinstance(g, str) and g.isdigit() and len(g) <= 4 for g in gpus)):
        raise UntrustedJobError(f"job.json: gpus must be distinct digit ids, got {gpus!r}"[:200])
    for key, low in (("nproc_per_node", 1), ("gpu_count", 0)):
        value = plan[key]
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= MAX_NPROC:
            raise UntrustedJobError(f"job.json: {key} must be an integer in {low}..{MAX_NPROC}, got {value!r}"[:200])
    if not isinstance(plan["resume"], bool):
        raise UntrustedJobError("job.json: resume must be true or false")
    attempt = plan["attempt"]
    if not isinstance(attempt, int) or isinstance(attempt, bool) or not 1 <= attempt <= MAX_ATTEMPTS:
        raise UntrustedJobError(f"job.json: attempt must be an integer in 1..{MAX_ATTEMPTS}, got {attempt!r}"[:200])
    if not (isinstance(plan["nonce"], str) and re.fullmatch(r"[0-9a-f]{32}", plan["nonce"])):
        raise UntrustedJobError("job.json: nonce must be 32 hex digits")
    return plan


@dataclass
class TrustedJob:
    """A job whose job.json signature verified: its validated config and resource plan."""

    id: str
    config: RunConfig
    plan: dict[str, Any]
    raw_config: dict[str, Any]  # config.json exactly as signed


def load_trusted_job(run_dir: Path) -> TrustedJob:
    """Verify and validate a job before anything of it runs. Raises UntrustedJobError (not ours, or
    changed since submit) or JobError (ours, but its config no longer validates)."""
    run_dir = Path(run_dir)
    spec = read_spec(run_dir)
    config = files.read_json(run_dir, store.CONFIG)
    if spec is None or not isinstance(config, dict) or spec.get("id") != run_dir.name:
        raise UntrustedJobError(UNTRUSTED)
    if not signed(run_dir.name, "job", {"config": config, "plan": plan_of(spec)}, spec.get("signature")):
        raise UntrustedJobError(UNTRUSTED)
    plan = validate_plan(spec)
    try:
        cfg = RunConfig.from_dict(config).resolved()
    except (ConfigError, TypeError, ValueError) as exc:
        raise JobError(f"config.json: {exc}"[:300]) from None
    return TrustedJob(run_dir.name, cfg, plan, config)


# ---- the worker command and its environment --------------------------------------------------------
def worker_cmd_prefix() -> list[str]:
    """The trainer's argv prefix: $NEWSCLF_WORKER_CMD (JSON list; tests' fake trainer) or `python -m newsclf train`."""
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


def job_env() -> dict[str, str]:
    """This process's environment without secrets of the job-related families, the project on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith(_ENV_PREFIXES) and k not in _ENV_SCHEDULER and _ENV_SECRET.search(k))}
    paths = [str(PROJECT_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(PROJECT_ROOT)]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def job_cwd() -> str:
    """The scheduler's own working directory (never one from a file); the project root if it is gone."""
    try:
        return os.getcwd()
    except OSError:
        return str(PROJECT_ROOT)


def build_worker_command(plan: dict[str, Any], run_dir: Path, prefix: Sequence[str] | None = None,
                         data_home: str = "") -> list[str]:
    """The trainer argv from a validated plan, under torchrun when nproc_per_node > 1: the worker prefix
    + `--run-dir DIR`, or for a resumed job `--resume DIR --runs-dir RUNS_DIR` (continues from last/);
    `--data-home` from the signed config (the trainer never trusts a run's stored data home)."""
    prefix = list(prefix or worker_cmd_prefix())
    if plan.get("resume"):
        tail = ["--resume", str(run_dir), "--runs-dir", str(run_dir.parent)]
    else:
        tail = ["--run-dir", str(run_dir)]
    if data_home:
        tail += ["--data-home", str(data_home)]
    nproc = int(plan.get("nproc_per_node") or 1)
    if nproc <= 1:
        return prefix + tail
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc)]
    if Path(prefix[0]).name.startswith("python"):
        return launcher + prefix[1:] + tail  # `-m newsclf train ...` or `script.py ...`
    return launcher + ["--no-python"] + prefix + tail
