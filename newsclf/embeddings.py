"""Pretrained embeddings a BiLSTM can start from, named by ONE config value (`RunConfig.embeddings`).

    ""                      random vectors (no file)
    "glove-6B-300d"         a named download (also 50d/100d/200d): glove.6B.zip from the Hugging Face hub,
                            fetched once with `huggingface_hub.hf_hub_download` into <data home>/embeddings
    "/path/vectors.txt"     a local vectors file: GloVe .txt/.zip, word2vec/fastText text .vec (with or
                            without the "N D" header line), or a .gz of either
    "/path/hf-model/"       the input-embedding table of a local Hugging Face encoder (config.json +
                            safetensors) with that model's own fast tokenizer: the BiLSTM reads sub-words

Why huggingface_hub for the download: it is already installed (a transformers dependency), resumes broken
downloads, caches by content, and the hub stores the file's LFS sha256, which we compare with the sha256
of the bytes we got (once; a marker beside the cache records the verified digest).

Nothing here unpickles: vectors are parsed from text, HF weights are read with safetensors only, and the
tokenizer is a tokenizer.json (JSON) loaded by `tokenizers` / transformers with `local_files_only=True`.
This module imports neither torch nor transformers at import time (config checks use `peek_dim`).
"""
from __future__ import annotations

import hashlib
import json
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from newsclf.safeio import UnsafePathError, open_regular, read_capped, real_dir, replace_bytes
from newsclf.vectorfiles import (MAX_DIM, MAX_LINE_CHARS, PEEK_LINES, EmbeddingsError,  # noqa: F401 - re-exported
                                 _lines, _open_text, _parse, iter_vectors, read_vectors)

GLOVE_REPO = "stanfordnlp/glove"  # the Stanford NLP group's own hub repository of the GloVe releases
GLOVE_FILE = "glove.6B.zip"  # 822 MB: 400k uncased words (Wikipedia 2014 + Gigaword 5), 50/100/200/300d
GLOVE_URL = "https://nlp.stanford.edu/data/glove.6B.zip"


@dataclass(frozen=True)
class Download:
    repo: str
    filename: str
    member: str  # the file inside the archive
    dim: int


DOWNLOADS: dict[str, Download] = {
    f"glove-6B-{d}d": Download(GLOVE_REPO, GLOVE_FILE, f"glove.6B.{d}d.txt", d) for d in (50, 100, 200, 300)}
VECTOR_SUFFIXES = (".txt", ".vec", ".zip", ".gz")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")
EMBEDDING_KEYS = ("word_embeddings.weight", "embed_tokens.weight", "wte.weight", "shared.weight")


# ---- what a spec names (cheap: used by config checks) -----------------------------------------------
def source_kind(spec: str) -> str:
    """"random", "download", "hf" (a local model folder) or "vectors" (a local file)."""
    if not spec:
        return "random"
    if spec in DOWNLOADS:
        return "download"
    if Path(spec).expanduser().is_dir():
        return "hf"
    return "vectors"


def describe(spec: str) -> str:
    """A short label: "random", "glove-6B-300d", "minilm (sub-words)", "wiki.vec"."""
    kind = source_kind(spec)
    if kind in ("random", "download"):
        return kind if kind == "random" else spec
    path = Path(str(spec).rstrip("/"))
    if kind == "vectors":
        return path.name
    try:  # the model's own name ("nreimers/MiniLM-L6-H384-uncased" -> its last part), else the folder's
        origin = json.loads(read_capped(path / "config.json", 1 << 20)).get("_name_or_path")
    except (OSError, ValueError, AttributeError, RecursionError):
        origin = None
    name = Path(origin).name if isinstance(origin, str) and origin.strip("/") else path.name
    return f"{name} (sub-words)"


def peek_dim(spec: str, want: int | None = None) -> int:
    """The vector size `spec` provides (reads one line or config.json); EmbeddingsError if unreadable.

    `want`: for an archive holding several sizes (glove.6B.zip), the size to pick.
    """
    kind = source_kind(spec)
    if kind == "download":
        return DOWNLOADS[spec].dim
    path = Path(spec).expanduser()
    if kind == "hf":
        return hf_dim(path)
    if not path.exists():
        raise EmbeddingsError(f"file not found: {spec}")
    try:  # `want` only picks the member of an archive: the size is what the file holds
        with _open_text(path, want) as stream:
            for _, vector in _parse(_lines(stream, path, max_skipped=PEEK_LINES), None):
                return len(vector)
    except (OSError, zipfile.BadZipFile, EOFError, UnicodeError, zlib.error) as exc:
        raise EmbeddingsError(f"cannot read {spec}: {exc}") from None
    raise EmbeddingsError(f"{spec} holds no word vectors (expected lines: word v1 ... vD)")


# ---- downloads ----------------------------------------------------------------------------------------
def cache_dir(data_home: str | os.PathLike) -> Path:
    """Downloads live in <data home>/embeddings (the caller resolves the data home: flag, env, data/)."""
    return Path(data_home) / "embeddings"


def cached_download(name: str, data_home: str | os.PathLike) -> Path | None:
    """The verified local copy of download `name`, or None (no network used)."""
    item = DOWNLOADS[name]
    root = cache_dir(data_home)
    try:
        path = Path(_hf_download(item.repo, item.filename, root, local_only=True))
    except Exception:  # noqa: BLE001 - not in the cache (huggingface_hub raises several kinds)
        return None
    return path if _verified(path, root / f"{item.filename}.sha256") else None


def fetch_download(name: str, data_home: str | os.PathLike) -> Path:
    """The local path of download `name`: cached, or fetched now and checked against the hub's sha256."""
    item = DOWNLOADS[name]
    root = cache_dir(data_home)
    cached = cached_download(name, data_home)
    if cached is not None:
        return cached
    try:
        real_dir(root, create=True)  # a data home is shared: never download into a planted link
    except UnsafePathError as exc:
        raise EmbeddingsError(f"embeddings: {exc}") from None
    marker = root / f"{item.filename}.sha256"
    if _offline():
        raise EmbeddingsError(offline_message(name, "HF_HUB_OFFLINE=1 is set"))
    try:
        expected = _expected_sha256(item.repo, item.filename)
        path = Path(_hf_download(item.repo, item.filename, root, local_only=False))
    except Exception as exc:  # noqa: BLE001 - network, proxy, hub: one actionable line
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise EmbeddingsError(offline_message(name, f"{type(exc).__name__}: {reason}")) from None
    digest = sha256_file(path)
    if expected and digest != expected:
        raise EmbeddingsError(f"embeddings: {item.filename} has sha256 {digest[:12]}..., the hub says "
                              f"{expected[:12]}...: delete {path} and try again")
    replace_bytes(marker, json.dumps({"sha256": digest, "size": path.stat().st_size, "hub_sha256": expected}).encode())
    return path


def offline_message(name: str, why: str) -> str:
    item = DOWNLOADS[name]
    return (f"embeddings: cannot download {name} ({why}); get {GLOVE_URL} yourself and pass "
            f"--embeddings /path/to/{item.filename} (or its {item.member})")


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _hf_download(repo: str, filename: str, root: Path, local_only: bool) -> str:
    from huggingface_hub import hf_hub_download

    # hf_hub_download shows a tqdm progress bar, resumes partial downloads and caches under `root`
    return hf_hub_download(repo, filename, cache_dir=str(root / "hub"), local_files_only=local_only)


def _expected_sha256(repo: str, filename: str) -> str | None:
    """The LFS sha256 the hub records for the file (None for a non-LFS file)."""
    from huggingface_hub import HfApi

    (info,) = HfApi().get_paths_info(repo, [filename])
    lfs = getattr(info, "lfs", None)
    return getattr(lfs, "sha256", None) if lfs is not None else None


def _verified(path: Path, marker: Path) -> bool:
    try:
        record = json.loads(read_capped(marker, 4096, nofollow=True))
        return path.is_file() and record.get("size") == path.stat().st_size and bool(record.get("sha256"))
    except (OSError, ValueError, AttributeError):
        return False


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open_regular(path) as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def local_path(spec: str, data_home: str | os.PathLike = "data") -> Path:
    """The file or folder `spec` names (a download is fetched first into `data_home`)."""
    if source_kind(spec) == "download":
        return fetch_download(spec, data_home)
    return Path(spec).expanduser()


# ---- a local Hugging Face encoder -----------------------------------------------------------------------
def is_hf_dir(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file() and any((path / f).is_file() for f in WEIGHT_FILES)


def _checked(path: Path) -> Path:
    """The folder after models.hf_folder's checks (no remote code, nothing outside it, no FIFO)."""
    from newsclf.models.hf_folder import ModelFolderError, check_folder

    try:
        return check_folder(path)
    except ModelFolderError as exc:
        raise EmbeddingsError(str(exc)) from None


def hf_dim(path: Path) -> int:
    """The input-embedding width of a local HF model folder, from its config.json."""
    if not is_hf_dir(path):
        raise EmbeddingsError(f"{path} is not a Hugging Face model folder (config.json + model.safetensors)")
    _checked(path)
    try:
        config = json.loads(read_capped(path / "config.json", 4 << 20))
    except (OSError, ValueError, RecursionError) as exc:
        raise EmbeddingsError(f"cannot read {path / 'config.json'}: {exc}") from None
    if not isinstance(config, dict):
        raise EmbeddingsError(f"{path / 'config.json'} is not a JSON object")
    for key in ("embedding_size", "hidden_size", "dim", "d_model", "n_embd"):
        if isinstance(config.get(key), int) and config[key] > 0:
            return int(config[key])
    raise EmbeddingsError(f"{path / 'config.json'} names no embedding size (hidden_size / dim)")


def hf_embedding_table(path: Path) -> np.ndarray:
    """(V, E) float32: the model's input word-embedding table, read with safetensors (never pickle)."""
    from safetensors import safe_open

    from newsclf.models.hf_folder import INDEX_FILE, ModelFolderError, weight_files

    _checked(path)
    files = [path / "model.safetensors"]
    if not files[0].is_file():
        try:  # shards named by the index: plain file names of this folder only, never ../ or /etc/...
            index = json.loads(read_capped(path / INDEX_FILE, 32 << 20))
            files = weight_files(path, index)
        except (OSError, ValueError, RecursionError, ModelFolderError) as exc:
            raise EmbeddingsError(f"{path}: {INDEX_FILE}: {exc}") from None
    for file in files:
        with safe_open(str(file), framework="numpy") as fh:
            for key in fh.keys():
                if key.endswith(EMBEDDING_KEYS) and "position" not in key:
                    return np.asarray(fh.get_tensor(key), dtype=np.float32)
    raise EmbeddingsError(f"{path}: no input-embedding table ({' / '.join(EMBEDDING_KEYS)}) in its safetensors")


def hf_tokenizer(path: Path):
    """The model's fast tokenizer (local files only, no remote code); EmbeddingsError if it has none."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers import AutoTokenizer

    _checked(path)
    try:
        tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True, trust_remote_code=False)
    except Exception as exc:  # noqa: BLE001 - any load failure is a config problem of this folder
        raise EmbeddingsError(f"{path}: cannot load its tokenizer ({type(exc).__name__})") from None
    if not getattr(tok, "is_fast", False) or tok.pad_token_id is None:
        raise EmbeddingsError(f"{path}: needs a fast tokenizer (tokenizer.json) with a padding token")
    return tok


# ---- checks and coverage -------------------------------------------------------------------------------
def check(spec: str, dim: int | None, data_home: str | os.PathLike = "data") -> None:
    """Preflight (before a run dir exists): the download is known (and cached, when offline), the file
    holds `dim`-d vectors, the folder is a loadable HF model. Raises EmbeddingsError, one line."""
    kind = source_kind(spec)
    if kind == "download":
        if _offline() and cached_download(spec, data_home) is None:
            raise EmbeddingsError(offline_message(spec, "HF_HUB_OFFLINE=1 is set and it is not cached"))
        return
    path = Path(spec).expanduser()
    if kind == "hf":
        hf_dim(path)
        table = hf_embedding_table(path)
        if table.shape[1] != hf_dim(path):
            raise EmbeddingsError(f"{path}: the embedding table's width differs from config.json")
        tok = hf_tokenizer(path)
        if len(tok) > table.shape[0]:
            raise EmbeddingsError(f"{path}: its embedding table has {table.shape[0]:,} rows but its tokenizer "
                                  f"{len(tok):,} tokens; the folder's weights and tokenizer do not belong together")
        return
    if path.suffix.lower() not in VECTOR_SUFFIXES and not path.is_file():
        raise EmbeddingsError(f"unknown embeddings {spec!r}: give one of {', '.join(DOWNLOADS)}, "
                              "a vectors file (.txt/.vec/.zip/.gz) or a Hugging Face model folder")
    got = peek_dim(spec, dim)
    if dim is not None and got != dim:
        raise EmbeddingsError(f"{spec} holds {got}-d vectors, not {dim}-d")


@dataclass
class Coverage:
    source: str
    dim: int
    vocab_coverage: float | None  # share of vocabulary entries that got a pretrained vector
    token_coverage: float | None  # share of training tokens whose entry got one

    def as_dict(self) -> dict:
        return {"source": self.source, "dim": self.dim,
                "vocab_coverage": None if self.vocab_coverage is None else round(self.vocab_coverage, 4),
                "token_coverage": None if self.token_coverage is None else round(self.token_coverage, 4)}


def coverage(source: str, dim: int, entries: Iterable[str], found: set[str], counts: dict[str, int]) -> Coverage:
    """Coverage of vocabulary `entries` (PAD/UNK excluded by the caller) and of training token `counts`."""
    entries = list(entries)
    hits = sum(1 for e in entries if e in found)
    total_tokens = sum(counts.values())
    token_hits = sum(c for w, c in counts.items() if w in found)
    return Coverage(source, dim, hits / max(len(entries), 1), token_hits / max(total_tokens, 1))
