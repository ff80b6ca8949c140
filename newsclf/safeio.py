"""Opening and writing paths newsclf does not control, without hanging, following links or filling memory.

Every file newsclf reads from a path a user names (a key file, an archive to import, a vectors file,
a text file, a model folder) or from a shared place (a runs dir, a data home) is opened with
`open_regular`: non-blocking (a FIFO or a device never hangs the open), and refused unless it is a
regular file; `nofollow=True` also refuses a link. `read_capped` reads such a file only up to a size
limit. Files newsclf writes into a shared place go through `replace_file` (a temp file in the same
folder, then os.replace): a link planted under the target name is replaced, never written through.
`real_dir` refuses a folder that is a link (a cache folder planted as a link to elsewhere).

All refusals are UnsafePathError (an OSError subclass, so callers that already treat unreadable
files as missing keep doing so), with one line naming the path. Nothing here imports numpy or torch.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import stat
from pathlib import Path
from typing import BinaryIO, Callable

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


class UnsafePathError(OSError):
    """A path that must not be opened: a link where none is allowed, a FIFO/device/socket, or too large."""

    def __str__(self) -> str:  # one line, without OSError's "[Errno None]" prefix
        return str(self.args[0]) if self.args else "unsafe path"


def _describe(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def open_regular(path: str | os.PathLike, *, nofollow: bool = False, dir_fd: int | None = None) -> BinaryIO:
    """Open `path` for binary reading; refuse (UnsafePathError) anything but a regular file.

    The open itself is non-blocking, so a FIFO in the place of a file is refused instead of waiting
    forever for a writer; blocking mode is restored on the regular file before it is returned.
    With `nofollow`, a symbolic link is refused too. FileNotFoundError passes through.
    """
    flags = os.O_RDONLY | _NONBLOCK | _CLOEXEC | (_NOFOLLOW if nofollow else 0)
    try:
        fd = os.open(path, flags, dir_fd=dir_fd)
    except OSError as exc:
        if nofollow and exc.errno in (errno.ELOOP, errno.EMLINK):
            raise UnsafePathError(f"{path} is a symbolic link; newsclf does not follow it") from None
        if exc.errno == errno.ENXIO:  # a socket, or a FIFO opened for writing
            raise UnsafePathError(f"{path} is not a regular file; refusing to read it") from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise UnsafePathError(f"{path} is {_describe(mode)}, not a regular file; refusing to read it")
        if _NONBLOCK:
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~_NONBLOCK)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_capped(path: str | os.PathLike, limit: int, *, nofollow: bool = False, what: str = "") -> bytes:
    """The bytes of a regular file of at most `limit` bytes (UnsafePathError when larger or not regular)."""
    with open_regular(path, nofollow=nofollow) as fh:
        size = os.fstat(fh.fileno()).st_size
        data = fh.read(limit + 1) if size <= limit else b""
    if size > limit or len(data) > limit:
        raise UnsafePathError(f"{what or path} is larger than {limit:,} bytes; refusing to read it")
    return data


def check_regular(path: str | os.PathLike, *, nofollow: bool = True) -> os.stat_result:
    """lstat (or stat) of an existing regular file; UnsafePathError for anything else."""
    st = os.lstat(path) if nofollow else os.stat(path)
    if stat.S_ISLNK(st.st_mode):
        raise UnsafePathError(f"{path} is a symbolic link; newsclf does not follow it")
    if not stat.S_ISREG(st.st_mode):
        raise UnsafePathError(f"{path} is {_describe(st.st_mode)}, not a regular file")
    return st


def real_dir(path: str | os.PathLike, *, create: bool = False, mode: int = 0o755) -> Path:
    """`path` as a real folder (created when `create`); UnsafePathError when it is a link or not a folder."""
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        if not create:
            raise
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=mode, parents=True)
        st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise UnsafePathError(f"{path} is a symbolic link; newsclf does not write or read through it")
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafePathError(f"{path} is not a folder")
    return path


@contextlib.contextmanager
def dir_fd(path: str | os.PathLike):
    """An O_NOFOLLOW file descriptor of a real folder (UnsafePathError when it is a link), closed after."""
    try:
        fd = os.open(path, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK, errno.ENOTDIR):
            raise UnsafePathError(f"{path} is a symbolic link or not a folder; refusing to use it") from None
        raise
    try:
        yield fd
    finally:
        os.close(fd)


def replace_file(path: str | os.PathLike, write: Callable[[BinaryIO], None], mode: int = 0o644) -> Path:
    """Write a file through `write(fh)` into a temp file beside `path`, then os.replace it in.

    A link (or anything else) planted under the target name is replaced, never written through; the
    folder itself must be a real folder (UnsafePathError when it is a link). Readers never see half a file.
    """
    path = Path(path)
    folder = real_dir(path.parent)
    with dir_fd(folder) as dfd:  # every step below is relative to this folder, so it cannot be swapped
        name = f".{path.name}.{secrets.token_hex(6)}.tmp"
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o600, dir_fd=dfd)
        try:
            os.fchmod(fd, mode)
            with os.fdopen(fd, "wb") as fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(name, path.name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=dfd)
            raise
    return path


def replace_bytes(path: str | os.PathLike, data: bytes, mode: int = 0o644) -> Path:
    """replace_file with fixed content."""
    return replace_file(path, lambda fh: fh.write(data), mode)
