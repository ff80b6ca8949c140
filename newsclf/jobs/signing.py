"""Signing: the installation's key, HMAC signatures of job records, and the launch lifecycle (issue 21).

The key lives outside every runs dir ($NEWSCLF_JOB_KEY_FILE, default ~/.config/newsclf/job.key,
created 0600 on first submit); it is read without following a link or blocking on a FIFO, and
refused when others may read or write it. A record is signed as HMAC-SHA256 over (job id, kind,
payload); an unverifiable record is never trusted.

The lifecycle: a launch is recorded twice before anything starts — a signed `launch` record in
job.json (bound to the spec's attempt and nonce) and an entry in the ledger beside the key
(`launched/`, one empty file per launched attempt, named by an HMAC) — so a signed job rolled back
to "queued" (status.json, or job.json itself) is never launched twice.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import stat
from pathlib import Path
from typing import Any

from newsclf.errors import UserError
from newsclf.safeio import UnsafePathError, open_regular

ENV_JOB_KEY_FILE = "NEWSCLF_JOB_KEY_FILE"  # the signing key; must lie outside every runs dir
LEDGER = "launched"  # folder beside the key: one empty file per launched (job, attempt, nonce)
_LAUNCH_KEYS = ("attempt", "nonce", "started", "gpus", "supervisor")
REPLAYED = ("this attempt of the job was launched once already (its status was rolled back); "
            "newsclf never runs it twice: resume or resubmit it")


class JobError(UserError, ValueError):
    """A job operation that cannot be done in the job's current state (e.g. resume without last/), or a
    signing key that cannot be used: one line for the user (exit code 2)."""


class UntrustedJobError(JobError):
    """job.json is not signed by this installation, or its config/plan was changed since."""


# ---- authentication ------------------------------------------------------------------------------
def key_path() -> Path:
    """$NEWSCLF_JOB_KEY_FILE, else $XDG_CONFIG_HOME/newsclf/job.key (default ~/.config/newsclf/job.key)."""
    if os.environ.get(ENV_JOB_KEY_FILE):
        return Path(os.environ[ENV_JOB_KEY_FILE]).expanduser().absolute()
    config_home = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(config_home).expanduser().absolute() / "newsclf" / "job.key"


def _key(create: bool) -> bytes | None:
    """The installation's signing key; created (0600, in a 0700 folder) on first use when `create`.

    Read without blocking on a FIFO and without following a link; a key that others could read or
    write (group/other permission bits, another owner, a folder others may write) is refused with
    JobError: whoever can write it can sign jobs, whoever can read it can forge them."""
    path = key_path()
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    for _ in range(3):
        try:
            with open_regular(path, nofollow=True) as fh:
                _check_private(path, os.fstat(fh.fileno()))
                key = fh.read(4096).strip()
            return key if len(key) >= 32 else None
        except FileNotFoundError:
            if not create:
                return None
        except UnsafePathError as exc:
            raise JobError(f"job signing key: {exc}") from None
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | nofollow, 0o600)
        except FileExistsError:
            continue  # another process created it first: read theirs
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_hex(32).encode())
    return None


def _check_private(path: Path, st: os.stat_result) -> None:
    if st.st_mode & 0o077 or (hasattr(os, "getuid") and st.st_uid != os.getuid()):
        raise JobError(f"job signing key {path} is readable or writable by others (mode "
                       f"{stat.filemode(st.st_mode)}); run `chmod 600 {path}` (or delete it to make a new one)")
    folder = os.stat(path.parent)
    if folder.st_mode & 0o022 and not folder.st_mode & stat.S_ISVTX:
        raise JobError(f"job signing key {path}: its folder is writable by others; run `chmod 700 {path.parent}`")


def _mac(key: bytes, job_id: str, kind: str, payload: Any) -> str:
    message = json.dumps({"v": 2, "id": job_id, "kind": kind, "payload": payload},
                         sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def ensure_key() -> None:
    """The signing key exists (created now if needed) and is private; JobError (one line) otherwise."""
    if _key(create=True) is None:
        raise JobError(f"cannot read or create the job signing key {key_path()}")


def sign(job_id: str, kind: str, payload: Any) -> str:
    """HMAC-SHA256 (hex) of a record of job `job_id`; creates the key on first use."""
    key = _key(create=True)
    if key is None:
        raise JobError(f"cannot read or create the job signing key {key_path()}")
    return _mac(key, job_id, kind, payload)


def signed(job_id: str, kind: str, payload: Any, signature: Any) -> bool:
    """Does `signature` authenticate this record with this installation's key? (False when the key is
    missing or refused: an unverifiable record is never trusted.)"""
    try:
        key = _key(create=False)
    except JobError:
        return False
    if key is None or not isinstance(signature, str):
        return False
    try:
        return hmac.compare_digest(_mac(key, job_id, kind, payload), signature)
    except (TypeError, ValueError):
        return False


# ---- the lifecycle: launch records and the ledger -----------------------------------------------------
def launch_record(spec: dict[str, Any]) -> dict[str, Any]:
    return {k: (spec.get("launch") or {}).get(k) for k in _LAUNCH_KEYS}


def sign_launch(spec: dict[str, Any]) -> None:
    """Sign job.json's launch record (bound to the spec's attempt and nonce)."""
    launch = spec["launch"]
    launch.update(attempt=spec.get("attempt"), nonce=spec.get("nonce"))
    spec["launch_sig"] = sign(spec["id"], "launch", launch_record(spec))


def verified_launch(job_id: str, spec: dict[str, Any]) -> dict[str, Any] | None:
    """job.json's launch record when this installation signed it for the spec's current attempt, else None."""
    launch = spec.get("launch")
    if not isinstance(launch, dict) or launch.get("attempt") != spec.get("attempt") \
            or launch.get("nonce") != spec.get("nonce"):
        return None
    return launch if signed(job_id, "launch", launch_record(spec), spec.get("launch_sig")) else None


def _ledger_entry(job_id: str, spec: dict[str, Any]) -> Path | None:
    try:
        key = _key(create=False)
    except JobError:
        return None
    if key is None:
        return None
    name = _mac(key, job_id, "launched", {"attempt": spec.get("attempt"), "nonce": spec.get("nonce")})[:40]
    return key_path().parent / LEDGER / name


def was_launched(job_id: str, spec: dict[str, Any]) -> bool:
    """Has this attempt of the job been launched already (ledger entry, or a signed launch record)?"""
    entry = _ledger_entry(job_id, spec)
    return verified_launch(job_id, spec) is not None or (entry is not None and os.path.lexists(entry))


def record_launch(job_id: str, spec: dict[str, Any]) -> None:
    """Add the ledger entry of this attempt (JobError when it exists: a replay, or when it cannot be written)."""
    entry = _ledger_entry(job_id, spec)
    if entry is None:
        raise JobError(f"cannot read the job signing key {key_path()}")
    try:
        entry.parent.mkdir(mode=0o700, exist_ok=True)
        os.close(os.open(entry, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600))
    except FileExistsError:
        raise JobError(REPLAYED) from None
    except OSError as exc:
        raise JobError(f"cannot record the launch in {entry.parent} ({exc.strerror})") from None


