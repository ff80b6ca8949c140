"""Reading and writing a run directory's files safely: a run directory is untrusted input.

- Reads never follow a link out of the run dir and only open regular files (`open_inside`,
  `read_json_inside`, `run_json` for listings); model folders holding links or pickle files are
  refused (`check_model_dir`).
- best/ and last/ are written whole: `swap_in` saves into a sibling temp folder and swaps it in;
  `recover_checkpoint` brings a folder back after a crash between the two renames.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable

from newsclf.errors import RunNotFoundError

PICKLE_SUFFIXES = (".bin", ".pkl", ".pickle", ".pt", ".pth", ".ckpt", ".joblib")
MAX_JSON_BYTES = 4 << 20  # no JSON file of a run dir is near this (results.json ~60 kB); a larger one is not ours


def check_model_dir(directory: Path) -> None:
    """Refuse a model folder that is a link, holds links, pickle files or anything but regular files and
    folders (a FIFO would hang its reader) (RunNotFoundError).

    Model folders are untrusted input (users share runs): loaders only read safetensors and JSON,
    and nothing here may lead them to a file outside the run directory.
    """
    directory = Path(directory)
    run_dir = directory.parent.resolve()
    if directory.is_symlink() or directory.resolve().parent != run_dir:
        raise RunNotFoundError(f"run {run_dir.name}: {directory.name}/ is a link; refusing to follow it")
    for path in directory.rglob("*"):
        if path.is_symlink():
            raise RunNotFoundError(f"run {run_dir.name}: {directory.name}/{path.name} is a link; refusing to follow it")
        if path.suffix in PICKLE_SUFFIXES:
            raise RunNotFoundError(f"run {run_dir.name}: {directory.name}/{path.name} is a pickle file; "
                                   "newsclf only loads safetensors and JSON")
        if not (path.is_file() or path.is_dir()):
            raise RunNotFoundError(f"run {run_dir.name}: {directory.name}/{path.name} is not a regular file "
                                   "(a FIFO, socket or device); refusing to read it")


# ---- folders swapped in whole (best/, last/) -------------------------------------------------
def swap_in(save: Callable[[Path], None], target: Path) -> None:
    """Write a folder through `save(tmp)` into a sibling temp folder, then swap it in for `target`.

    Readers never see a half-written folder; leftovers of an earlier crash (target.tmp/, target.old/)
    are cleared first, so they can never block a later swap.
    """
    target = Path(target)
    tmp, old = _sibling(target, "tmp"), _sibling(target, "old")
    recover_checkpoint(target)  # a crash between the two renames below left target missing
    _clear(tmp)  # a link planted as target.tmp is removed, never written through
    save(tmp)
    _normalise_modes(tmp)
    _clear(old)
    if target.exists() or target.is_symlink():
        target.rename(old)
    tmp.rename(target)
    _clear(old)


def _clear(path: Path) -> None:
    """Remove a leftover folder, or a link in its place (the link itself, not what it points to)."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path, ignore_errors=True)


def recover_checkpoint(target: Path, required: str | None = None) -> bool:
    """Bring back `target` after a crash inside `swap_in`; True when target (with `required` in it) exists.

    A kill between the renames leaves target.old/ (the previous copy) and target.tmp/ (the new one,
    complete: it is renamed only after `save` returned): the new one is taken. A lone tmp/ may be
    half-written and is left for `swap_in` to clear. Call it only while nothing writes the run
    (before a resume, inside `swap_in`).
    """
    target = Path(target)
    tmp, old = _sibling(target, "tmp"), _sibling(target, "old")
    if not target.exists():
        if old.is_dir() and tmp.is_dir() and not tmp.is_symlink():
            tmp.rename(target)
        elif old.is_dir() and not old.is_symlink():
            old.rename(target)
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
    ok = target.is_dir() and not target.is_symlink()
    return ok and (required is None or (target / required).is_file())


def _normalise_modes(folder: Path) -> None:
    """One mode for every file of a run (some writers create 0600 files): 0644 / 0755 less the umask."""
    umask = os.umask(0)
    os.umask(umask)
    for path in [folder, *folder.rglob("*")]:
        if not path.is_symlink():
            path.chmod((0o755 if path.is_dir() else 0o644) & ~umask)


def _sibling(target: Path, suffix: str) -> Path:
    return target.with_name(f"{target.name}.{suffix}")


# ---- safe reads inside a run dir ------------------------------------------------------------
class UnsafeRunFileError(RunNotFoundError):
    """A run-dir file that must not be read: a symlink, not a regular file, or not a plain name inside it."""


def inside_run(run_dir: str | os.PathLike, name: str) -> Path:
    """`run_dir/name` for a plain file name, refusing (UnsafeRunFileError) an entry that is a symlink
    or not a regular file. A missing file passes (opening it raises FileNotFoundError)."""
    import stat as _stat

    if not name or name in (".", "..") or "/" in name or os.sep in name or "\x00" in name:
        raise UnsafeRunFileError(f"{name!r} is not a file name inside the run dir")
    path = Path(run_dir) / name
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return path
    if _stat.S_ISLNK(mode):
        raise UnsafeRunFileError(f"{Path(run_dir).name}/{name} is a symlink; refusing to read it")
    if not _stat.S_ISREG(mode):
        raise UnsafeRunFileError(f"{Path(run_dir).name}/{name} is not a regular file; refusing to read it")
    return path


def open_inside(run_dir: str | os.PathLike, name: str):
    """Open `run_dir/name` for binary reading without following symlinks (O_NOFOLLOW on the run dir
    and the file) and only when it is a regular file. FileNotFoundError when absent,
    UnsafeRunFileError when refused."""
    import errno as _errno
    import stat as _stat

    path = inside_run(run_dir, name)
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    try:
        dir_fd = os.open(run_dir, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | nofollow)
    except OSError as exc:
        if exc.errno in (_errno.ELOOP, _errno.EMLINK, _errno.ENOTDIR):
            raise UnsafeRunFileError(f"{Path(run_dir).name} is a symlink or not a directory; refusing to read it") from None
        raise
    try:
        fd = os.open(name, os.O_RDONLY | nofollow | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0),
                     dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (_errno.ELOOP, _errno.EMLINK):
            raise UnsafeRunFileError(f"{path.parent.name}/{name} is a symlink; refusing to read it") from None
        raise
    finally:
        os.close(dir_fd)
    if not _stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO or device swapped in after the check
        os.close(fd)
        raise UnsafeRunFileError(f"{path.parent.name}/{name} is not a regular file; refusing to read it")
    return os.fdopen(fd, "rb")


def read_json_inside(run_dir: str | os.PathLike, name: str, default: Any = None) -> Any:
    """read_json for a file of a run dir through open_inside: missing, corrupt or larger than
    MAX_JSON_BYTES -> `default`; a symlink or non-regular file raises UnsafeRunFileError."""
    try:
        with open_inside(run_dir, name) as fh:
            if os.fstat(fh.fileno()).st_size > MAX_JSON_BYTES:
                return default  # read nothing of it: a huge or sparse file is not ours
            return json.loads(fh.read(MAX_JSON_BYTES + 1))
    except UnsafeRunFileError:
        raise
    except (FileNotFoundError, NotADirectoryError, ValueError, RecursionError):
        return default


def json_default(value: Any) -> Any:
    """numpy scalars and arrays, and paths, as JSON values."""
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_json_inside(run_dir: str | os.PathLike, name: str, data: Any) -> None:
    """Write `run_dir/name` atomically, acting on the run folder entry itself: the folder is opened
    without following a link (UnsafeRunFileError when it is one) and the temp file and the replace are
    relative to it, so a folder swapped for a link after it was resolved is never written through;
    a link planted under `name` is replaced, not followed."""
    from newsclf.safeio import UnsafePathError, replace_bytes

    if not name or name in (".", "..") or "/" in name or os.sep in name or "\x00" in name:
        raise UnsafeRunFileError(f"{name!r} is not a file name inside the run dir")
    payload = json.dumps(data, indent=2, sort_keys=True, default=json_default).encode()
    try:
        replace_bytes(Path(run_dir) / name, payload)
    except UnsafePathError as exc:
        raise UnsafeRunFileError(str(exc)) from None


def append_inside(run_dir: str | os.PathLike, name: str):
    """Open a run-dir file for appending in binary (created 0644), refusing a symlink or a non-regular
    file (UnsafeRunFileError): a link planted as train.log or metrics.jsonl is never written through."""
    import errno as _errno
    import stat as _stat

    inside_run(run_dir, name)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(Path(run_dir) / name, flags | getattr(os, "O_NONBLOCK", 0), 0o644)
    except OSError as exc:
        if exc.errno in (_errno.ELOOP, _errno.EMLINK, _errno.ENXIO):  # a link (or FIFO) appeared after the check
            raise UnsafeRunFileError(f"{Path(run_dir).name}/{name} is a symlink; refusing to write it") from None
        raise
    if not _stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UnsafeRunFileError(f"{Path(run_dir).name}/{name} is not a regular file; refusing to write it")
    return os.fdopen(fd, "ab")


def run_json(run_dir: str | os.PathLike, name: str, default: Any = None) -> Any:
    """A run's JSON file for listings: missing, corrupt, linked or not a regular file -> `default`."""
    try:
        return read_json_inside(run_dir, name, default)
    except (UnsafeRunFileError, OSError):
        return default
