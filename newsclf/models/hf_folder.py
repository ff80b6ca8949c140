"""A local Hugging Face model folder is untrusted input: checked here before transformers is asked to load it.

Used everywhere a folder is loaded — `--pretrained DIR` (train, preflight, the train form, `study
queue`), a run's best/ (predict, explain, evaluate), `--embeddings DIR` — so that loading never runs
code and never opens a file outside the folder, whatever the terminal:

- **no remote code**: a config file naming `auto_map` (or `custom_pipelines`) — the hook through which
  transformers imports Python files shipped with a model, after a "[y/N]" prompt at a terminal — is
  refused by us, and every `from_pretrained` is also called with `trust_remote_code=False`;
- **no file outside**: a `model.safetensors.index.json` may only name plain file names of this folder;
  a link may only point inside the folder (or, for a folder of the Hugging Face cache, `<repo>/snapshots/
  <rev>/`, into that repo's `blobs/`);
- **no hang**: the folder's entries must be regular files or folders (a FIFO named config.json would
  block the reader forever), and its config files are read with a size limit;
- **no pickle**: weights are loaded from safetensors only (`use_safetensors=True`).

Errors are ModelFolderError (a ValueError): one line naming the folder and the reason.
"""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

CONFIG_FILES = ("config.json", "tokenizer_config.json", "preprocessor_config.json", "processor_config.json",
                "feature_extractor_config.json", "image_processor_config.json", "generation_config.json",
                "special_tokens_map.json", "video_preprocessor_config.json", "adapter_config.json")
INDEX_FILE = "model.safetensors.index.json"
WEIGHTS_FILE = "model.safetensors"
PICKLE_SUFFIXES = (".bin", ".pkl", ".pickle", ".pt", ".pth", ".ckpt", ".joblib")
CODE_KEYS = ("auto_map", "custom_pipelines")
MAX_CONFIG_BYTES = 4 << 20
MAX_INDEX_BYTES = 32 << 20


class ModelFolderError(ValueError):
    """The model folder may not be loaded: it asks for remote code, names files outside, or holds odd files."""


def check_folder(folder: str | os.PathLike) -> Path:
    """Refuse (ModelFolderError) a folder that could make a loader run code, open a file outside it or
    hang; returns the folder. Reads only its config files (size-capped) and its index."""
    folder = Path(folder).expanduser()
    try:
        entries = list(os.scandir(folder))
    except OSError as exc:
        raise ModelFolderError(f"{folder}: cannot list the model folder ({exc.strerror})") from None
    inside = _allowed_roots(folder)
    for entry in entries:
        _check_entry(folder, Path(entry.path), inside)
    for name in CONFIG_FILES:
        data = _read_json(folder, name, MAX_CONFIG_BYTES)
        key = _code_key(data)
        if key:
            raise ModelFolderError(f"{folder}: {name} names `{key}` (custom Python code shipped with the model); "
                                   "newsclf never runs code from a model folder")
    index = _read_json(folder, INDEX_FILE, MAX_INDEX_BYTES)
    if index is not None:
        weight_files(folder, index)
    elif not (folder / WEIGHTS_FILE).is_file():
        pickles = sorted(e.name for e in entries if e.name.endswith(PICKLE_SUFFIXES))
        raise ModelFolderError(f"{folder}: no {WEIGHTS_FILE}" + (f" (only {pickles[0]}, a pickle: newsclf never "
                                                                   "unpickles; save it with safetensors)" if pickles else ""))
    return folder


def weight_files(folder: Path, index: Any) -> list[Path]:
    """The shard files a safetensors index names: plain file names, regular files of this folder."""
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise ModelFolderError(f"{folder}: {INDEX_FILE} has no weight_map")
    names = sorted({v for v in weight_map.values()} if all(isinstance(v, str) for v in weight_map.values()) else [])
    if not names or len(names) > 10_000:
        raise ModelFolderError(f"{folder}: {INDEX_FILE}: its weight_map must name shard files")
    out = []
    for name in names:
        if name in ("", ".", "..") or "/" in name or "\\" in name or "\x00" in name or name.startswith("~"):
            raise ModelFolderError(f"{folder}: {INDEX_FILE} names {name[:80]!r}, which is not a file of this folder")
        path = folder / name
        try:
            st = os.stat(path)
        except OSError:
            raise ModelFolderError(f"{folder}: {INDEX_FILE} names {name[:80]!r}, which is missing") from None
        if not stat.S_ISREG(st.st_mode):
            raise ModelFolderError(f"{folder}: {name[:80]} is not a regular file")
        out.append(path)
    return out


def _allowed_roots(folder: Path) -> list[Path]:
    """Where links of the folder may lead: the folder itself, and for a snapshot of the Hugging Face cache
    (<repo>/snapshots/<rev>) the repo's blobs/ (the cache stores every file there, linked by name)."""
    real = folder.resolve()
    roots = [real]
    if folder.parent.name == "snapshots":
        roots.append((folder.parent.parent / "blobs").resolve())
    return roots


def _check_entry(folder: Path, path: Path, roots: list[Path]) -> None:
    try:
        st = os.lstat(path)
    except OSError:
        return
    if stat.S_ISLNK(st.st_mode):
        target = path.resolve()
        if not any(target == r or r in target.parents for r in roots):
            raise ModelFolderError(f"{folder}: {path.name} is a link out of the model folder; refused")
        try:
            st = os.stat(path)
        except OSError:
            raise ModelFolderError(f"{folder}: {path.name} is a broken link") from None
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        raise ModelFolderError(f"{folder}: {path.name} is not a regular file (a FIFO, socket or device); refused")


def _read_json(folder: Path, name: str, limit: int) -> Any:
    from newsclf.safeio import UnsafePathError, read_capped

    try:
        raw = read_capped(folder / name, limit, what=f"{folder}/{name}")
    except FileNotFoundError:
        return None
    except UnsafePathError as exc:
        raise ModelFolderError(str(exc)) from None
    except OSError as exc:
        raise ModelFolderError(f"{folder}: cannot read {name} ({exc.strerror})") from None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise ModelFolderError(f"{folder}: {name} is not valid JSON") from None


def _code_key(data: Any, depth: int = 0) -> str | None:
    """The first key asking for custom code, searched through nested objects."""
    if depth > 20:
        return None
    if isinstance(data, dict):
        for key, value in data.items():
            if key in CODE_KEYS and value:
                return key
            found = _code_key(value, depth + 1)
            if found:
                return found
    elif isinstance(data, list):
        for value in data[:1000]:
            found = _code_key(value, depth + 1)
            if found:
                return found
    return None


def cached_hub_folder(repo_id: str) -> Path | None:
    """The local snapshot folder of a hub id in the Hugging Face cache, when its config.json is cached."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # noqa: BLE001 - an invalid repo id, no cache: nothing to check locally
        return None
    return Path(found).parent if isinstance(found, str) else None
