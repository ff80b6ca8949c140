"""Word-vector text files (GloVe .txt/.zip, word2vec/fastText .vec, a .gz of either), read with bounded memory.

A vectors file is a path the user names and may come from anywhere: it is opened as a regular file
(a FIFO is refused, never waited on), decompressed only as it is read, and read one line at a time
with a length limit — a sparse file or a decompression bomb without newlines is refused after
MAX_LINE_CHARS characters instead of being read whole (issue 21, class 7). Nothing is unpickled.
"""
from __future__ import annotations

import contextlib
import gzip
import io
import zipfile
import zlib
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from newsclf.safeio import open_regular

MAX_DIM = 4096  # RunConfig.embed_dim's range
MAX_LINE_CHARS = 1 << 20  # a 4096-d line is ~60 kB; a longer "line" is a sparse file or a bomb
PEEK_LINES = 1000  # a vectors file has its first vector within its first lines (a header at most)


class EmbeddingsError(ValueError):
    """One line a user can act on (the CLI prints it as is); raised by newsclf.embeddings too."""


def iter_vectors(path: Path, dim: int | None = None) -> Iterator[tuple[str, np.ndarray]]:
    """(word, float32 vector) of a GloVe/word2vec/fastText text file, plain, .gz or .zip.

    The size is `dim` when given, else that of the first vector line; lines of another size (the
    "N D" header, words containing spaces) are skipped. A zip may hold several files: the one whose
    name ends in f"{dim}d.txt" (default 300d) is read, else the first .txt/.vec.
    """
    try:
        with _open_text(Path(path), dim) as stream:
            yield from _parse(_lines(stream, Path(path)), dim)
    except (OSError, zipfile.BadZipFile, EOFError, UnicodeError, zlib.error) as exc:
        raise EmbeddingsError(f"cannot read {path}: {exc}") from None


@contextlib.contextmanager
def _open_text(path: Path, dim: int | None) -> Iterator[io.TextIOBase]:
    """A text stream of the vectors: the file opened as a regular file (a FIFO is refused, never waited
    on), a .gz decompressed as it is read, a .zip member chosen from the zip's directory. Nothing is
    decompressed ahead of the reader, and `_lines` bounds how much one line may hold."""
    with contextlib.ExitStack() as stack:
        fh = stack.enter_context(open_regular(path))
        if path.suffix == ".zip":
            zf = stack.enter_context(zipfile.ZipFile(fh))
            names = [n for n in zf.namelist() if n.endswith((".txt", ".vec"))]
            pick = [n for n in names if n.endswith(f"{dim or 300}d.txt")] or names
            if not pick:
                raise EmbeddingsError(f"no .txt or .vec file inside {path}")
            raw = stack.enter_context(zf.open(pick[0]))
        elif path.suffix == ".gz":
            raw = stack.enter_context(gzip.GzipFile(fileobj=fh))
        else:
            raw = fh
        yield stack.enter_context(io.TextIOWrapper(raw, encoding="utf-8", errors="replace"))


def _lines(stream, path: Path, max_skipped: int | None = None) -> Iterator[str]:
    """The lines of a vectors file, each read with a length limit: a "line" longer than MAX_LINE_CHARS
    (a sparse file, a decompression bomb without newlines) is refused after MAX_LINE_CHARS characters,
    never read whole. With `max_skipped`, only that many lines may come before the first vector."""
    seen = 0
    while True:
        line = stream.readline(MAX_LINE_CHARS + 1)
        if not line:
            return
        if len(line) > MAX_LINE_CHARS:
            raise EmbeddingsError(f"{path.name}: a line longer than {MAX_LINE_CHARS:,} characters; "
                                  "this is not a word-vectors file")
        seen += 1
        if max_skipped is not None and seen > max_skipped:
            raise EmbeddingsError(f"{path.name}: no word vector in its first {max_skipped:,} lines")
        yield line


def _parse(lines: Iterable[str], dim: int | None) -> Iterator[tuple[str, np.ndarray]]:
    for line in lines:
        parts = line.rstrip("\r\n ").split(" ")
        if len(parts) < 3 or len(parts) > MAX_DIM + 1 or (dim is not None and len(parts) != dim + 1):
            continue  # a header "N D", a blank line, or a vector of another size
        try:
            vector = np.asarray(parts[1:], dtype=np.float32)
        except ValueError:
            continue
        if dim is None:
            dim = len(vector)
        yield parts[0], vector


def read_vectors(path: Path, dim: int, wanted: set[str]) -> dict[str, np.ndarray]:
    """The vectors of the words in `wanted` (first occurrence; case-sensitive, then lower-cased)."""
    found: dict[str, np.ndarray] = {}
    for word, vector in iter_vectors(path, dim):
        for key in (word, word.lower()):
            if key in wanted and key not in found:
                found[key] = vector
                break
    return found
