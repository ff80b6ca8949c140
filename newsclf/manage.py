"""Run management: display names, tags, notes, archiving and deletion of run directories.

    read_meta(run_dir) -> RunMeta            rename(run, name, runs_dir)      set_note(run, note, runs_dir)
    tag(run, add=(), remove=(), runs_dir)    archive(run, runs_dir, archived=True)
    delete(run, runs_dir) -> Path            (refuses queued/running jobs; never follows a link)

What a user adds to a run lives in `meta.json` inside the run directory (written atomically;
read without following links, every value re-validated: a run directory is untrusted input), so
the run's own files (config.json, results.json, ...) are never rewritten and a copied run keeps
its name, tags and note. Every function takes a run id (or unique ending) that is resolved with
store.resolve_run, so nothing outside the runs dir can be named. Errors are ManageError (a
UserError: one line, exit code 2).
"""
from __future__ import annotations

import os
import re
import shutil
import time
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from newsclf import store
from newsclf.config import resolve_runs_dir
from newsclf.errors import UserError

META = "meta.json"
MAX_NAME_CHARS = 80
MAX_NOTE_CHARS = 2000
MAX_TAGS = 20
TAG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+:-]{0,31}$")
ACTIVE_STATES = ("queued", "running")
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f]")


class ManageError(UserError):
    """A run-management request that cannot be done (bad value, active run, unsafe folder)."""


@dataclass
class RunMeta:
    """What a user added to a run: display name (None = the run id), tags, note, archived flag."""

    display_name: str | None = None
    tags: list[str] = field(default_factory=list)
    note: str = ""
    archived: bool = False
    updated: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---- validation -----------------------------------------------------------------------------
def _no_controls(text: str, what: str, allow_newlines: bool = False) -> str:
    for ch in text:
        if ch in "\n\t" and allow_newlines:
            continue
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") or _BIDI.match(ch):
            raise ManageError(f"{what}: control or invisible character U+{ord(ch):04X} is not allowed")
    return text


def validate_name(name: str | None) -> str | None:
    """A display name: 1-80 printable characters (stripped); "" or None clears it."""
    if name is None:
        return None
    name = unicodedata.normalize("NFC", str(name)).strip()
    if not name:
        return None
    if len(name) > MAX_NAME_CHARS:
        raise ManageError(f"name: at most {MAX_NAME_CHARS} characters, got {len(name)}")
    return _no_controls(name, "name")


def validate_tag(tag: str) -> str:
    tag = str(tag).strip()
    if not TAG_RE.match(tag):
        raise ManageError(f"tag {tag[:40]!r}: 1-32 letters, digits or . _ + : - (starting with a letter or digit)")
    return tag


def validate_note(note: str | None) -> str:
    note = unicodedata.normalize("NFC", str(note or "")).replace("\r\n", "\n").strip()
    if len(note) > MAX_NOTE_CHARS:
        raise ManageError(f"note: at most {MAX_NOTE_CHARS} characters, got {len(note)}")
    return _no_controls(note, "note", allow_newlines=True)


# ---- reading --------------------------------------------------------------------------------
def read_meta(run_dir: str | os.PathLike) -> RunMeta:
    """The run's meta.json, every field validated; a missing, linked or damaged file (or field) reads as empty."""
    raw = store.run_json(Path(run_dir), META, {})
    raw = raw if isinstance(raw, dict) else {}
    meta = RunMeta()
    try:
        meta.display_name = validate_name(raw.get("display_name")) if isinstance(raw.get("display_name"), str) else None
    except ManageError:
        pass
    tags = raw.get("tags") if isinstance(raw.get("tags"), list) else []
    meta.tags = [t for t in tags if isinstance(t, str) and TAG_RE.match(t)][:MAX_TAGS]
    try:
        meta.note = validate_note(raw.get("note")) if isinstance(raw.get("note"), str) else ""
    except ManageError:
        meta.note = ""
    meta.archived = raw.get("archived") is True
    meta.updated = raw.get("updated") if isinstance(raw.get("updated"), (int, float)) else None
    return meta


def _resolve(run: str, runs_dir) -> tuple[Path, Path]:
    """(runs root, run dir) by store.resolve_run's one rule: the folder entry itself, never a link."""
    root = Path(resolve_runs_dir(runs_dir)).resolve()
    return root, store.resolve_run(str(run), root)


def _write(run_dir: Path, meta: RunMeta) -> RunMeta:
    if (run_dir / META).is_symlink():
        raise ManageError(f"run {run_dir.name}: {META} is a link; remove it first")
    meta.updated = time.time()
    store.write_json_inside(run_dir, META, meta.to_dict())  # relative to the run folder opened without following
    return meta


# ---- changes --------------------------------------------------------------------------------
def rename(run: str, name: str | None, runs_dir) -> RunMeta:
    """Set (or with ""/None clear) the run's display name; the run id and folder stay as they are."""
    _, run_dir = _resolve(run, runs_dir)
    meta = read_meta(run_dir)
    meta.display_name = validate_name(name)
    return _write(run_dir, meta)


def tag(run: str, runs_dir, add: Iterable[str] = (), remove: Iterable[str] = ()) -> RunMeta:
    """Add and remove tags (order kept, no duplicates, at most MAX_TAGS)."""
    _, run_dir = _resolve(run, runs_dir)
    meta = read_meta(run_dir)
    drop = {validate_tag(t) for t in remove}
    tags = [t for t in meta.tags if t not in drop]
    for t in (validate_tag(t) for t in add):
        if t not in tags:
            tags.append(t)
    if len(tags) > MAX_TAGS:
        raise ManageError(f"tags: at most {MAX_TAGS} per run")
    meta.tags = tags
    return _write(run_dir, meta)


def set_note(run: str, note: str | None, runs_dir) -> RunMeta:
    _, run_dir = _resolve(run, runs_dir)
    meta = read_meta(run_dir)
    meta.note = validate_note(note)
    return _write(run_dir, meta)


def archive(run: str, runs_dir, archived: bool = True) -> RunMeta:
    """Hide the run from the comparison pages (or show it again); its files stay."""
    _, run_dir = _resolve(run, runs_dir)
    meta = read_meta(run_dir)
    meta.archived = bool(archived)
    return _write(run_dir, meta)


def delete(run: str, runs_dir) -> Path:
    """Delete a run directory for good; returns the path it had.

    Refuses a queued or running run (cancel it first), a run in the job queue, a linked run
    folder and anything outside the runs dir. The folder is first renamed to a hidden name in
    the runs dir under the queue lock (so no listing or scheduler sees a half-deleted run), then
    removed with shutil.rmtree, which never follows links (links inside are removed, not followed).
    """
    from newsclf.jobs import job_status, reconcile_direct_runs
    from newsclf.jobs.queue import queue_lock, read_queue

    root, run_dir = _resolve(run, runs_dir)
    reconcile_direct_runs(root)  # a dead worker or trainer is failed now, not "running" for ever
    job_status(run_dir.name, root)
    with queue_lock(root):  # (not re-entrant: nothing under it may reconcile)
        state = job_status(run_dir.name, root, reconcile=False).state
        ours = _verified(run_dir)  # a stranger's folder claiming "running" does not block its deletion
        if state in ACTIVE_STATES and ours:
            raise ManageError(f"run {run_dir.name} is {state}; cancel it before deleting it")
        if run_dir.name in read_queue(root)["queue"] and ours:
            raise ManageError(f"run {run_dir.name} is in the job queue; cancel it before deleting it")
        trash = root / f".deleting-{run_dir.name}-{os.getpid()}"
        os.rename(run_dir, trash)  # renames the entry itself (a link would be moved, never followed)
        if trash.is_symlink() or not trash.is_dir():  # swapped for a link since it was resolved: put it back
            os.rename(trash, run_dir)
            raise ManageError(f"run {run_dir.name}: the run folder changed into a link; nothing deleted")
    if not shutil.rmtree.avoids_symlink_attacks:  # pragma: no cover - every Linux/macOS Python has it
        raise ManageError("this platform's rmtree may follow links; delete the folder by hand")
    shutil.rmtree(trash)
    return run_dir


def _verified(run_dir: Path) -> bool:
    """Is the run's activity vouched for by this installation: a job it signed, or a run whose trainer
    record its trainer signed? (Unsigned claims of a live job or trainer prove nothing.)"""
    from newsclf.jobs import JOB_FILE, UntrustedJobError
    from newsclf.jobs.outcome import trainer_signed
    from newsclf.jobs.spec import JobError, load_trusted_job

    if os.path.lexists(run_dir / JOB_FILE):
        try:
            load_trusted_job(run_dir)
        except UntrustedJobError:
            return False
        except JobError:
            return True
        return True
    return trainer_signed(run_dir.name, store.read_status(run_dir))


# ---- listing helpers --------------------------------------------------------------------------
def metas(runs: Iterable[store.RunInfo]) -> dict[str, RunMeta]:
    """{run id: RunMeta} of some runs."""
    return {r.run_id: read_meta(r.path) for r in runs}


def visible(runs: Iterable[store.RunInfo], show_archived: bool = False) -> list[store.RunInfo]:
    """The runs not archived (all of them with show_archived)."""
    runs = list(runs)
    return runs if show_archived else [r for r in runs if not read_meta(r.path).archived]
