"""A hostile model folder never runs code or opens a file outside itself, whatever the terminal (issue 21,
class 1). Generated: ways a folder can ask for code (auto_map in every config file transformers reads,
nested, custom pipelines), name files outside (index entries, links), hang a reader (FIFOs) or carry
pickles only — tried on every entry point that loads a folder: `train --pretrained`, `jobs submit`,
`study queue --dry-run`, the train form's preflight, `--embeddings DIR`, and predict/explain/evaluate of a
run whose best/ was tampered with. Each is refused in one line (exit 2), before transformers is asked,
no prompt is shown, no code runs, nothing outside is opened, and no run directory is left behind.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from newsclf.cli import main
from newsclf.models.hf_folder import ModelFolderError, check_folder

CODE = "import pathlib; pathlib.Path({marker!r}).write_text('code ran')\n" \
       "from transformers import DistilBertConfig as EvilConfig, DistilBertForSequenceClassification as EvilModel\n"
AUTO_MAP = {"AutoConfig": "evilmod.EvilConfig", "AutoModelForSequenceClassification": "evilmod.EvilModel",
            "AutoTokenizer": ["evilmod.EvilTok", None]}


def _json_edit(folder: Path, name: str, **changes) -> None:
    path = folder / name
    data = json.loads(path.read_text()) if path.exists() else {}
    data.update(changes)
    path.write_text(json.dumps(data))


def _shard(folder: Path, names: list[str]) -> None:
    """Replace model.safetensors by an index naming `names` (the first entry is the real file, renamed)."""
    (folder / "model.safetensors").rename(folder / "model-00001-of-00002.safetensors")
    weight_map = {"distilbert.embeddings.word_embeddings.weight": "model-00001-of-00002.safetensors"}
    weight_map.update({f"other.{i}.weight": n for i, n in enumerate(names)})
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))


HOSTILE = {
    "auto_map-config": lambda f, o: _json_edit(f, "config.json", auto_map=AUTO_MAP),
    "auto_map-config-one-class": lambda f, o: _json_edit(f, "config.json", auto_map={"AutoConfig": "evilmod.EvilConfig"}),
    "auto_map-nested": lambda f, o: _json_edit(f, "config.json", text_config={"auto_map": AUTO_MAP}),
    "auto_map-tokenizer": lambda f, o: _json_edit(f, "tokenizer_config.json", auto_map=AUTO_MAP),
    "auto_map-preprocessor": lambda f, o: _json_edit(f, "preprocessor_config.json", auto_map=AUTO_MAP),
    "auto_map-processor": lambda f, o: _json_edit(f, "processor_config.json", auto_map=AUTO_MAP),
    "auto_map-generation": lambda f, o: _json_edit(f, "generation_config.json", auto_map=AUTO_MAP),
    "custom_pipelines": lambda f, o: _json_edit(f, "config.json", custom_pipelines={"x": {"impl": "evilmod.P"}}),
    "index-etc-passwd": lambda f, o: _shard(f, ["/etc/passwd"]),
    "index-dotdot": lambda f, o: _shard(f, ["../../../../etc/passwd"]),
    "index-subdir-escape": lambda f, o: _shard(f, ["sub/../../outside.safetensors"]),
    "index-home": lambda f, o: _shard(f, ["~/.ssh/id_rsa"]),
    "index-link-out": lambda f, o: (_shard(f, ["model-00002-of-00002.safetensors"]),
                                    (f / "model-00002-of-00002.safetensors").symlink_to(o / "secret.safetensors")),
    "index-missing": lambda f, o: _shard(f, ["model-00002-of-00002.safetensors"]),
    "index-not-a-map": lambda f, o: (f / "model.safetensors.index.json").write_text('{"weight_map": ["x"]}'),
    "config-link-out": lambda f, o: ((f / "config.json").unlink(), (f / "config.json").symlink_to(o / "config.json")),
    "weights-link-out": lambda f, o: ((f / "model.safetensors").unlink(),
                                      (f / "model.safetensors").symlink_to(o / "secret.safetensors")),
    "fifo-config": lambda f, o: ((f / "config.json").unlink(), os.mkfifo(f / "config.json")),
    "fifo-tokenizer": lambda f, o: ((f / "tokenizer_config.json").unlink(), os.mkfifo(f / "tokenizer_config.json")),
    "fifo-extra": lambda f, o: os.mkfifo(f / "vocab.txt.fifo"),
    "huge-config": lambda f, o: (f / "config.json").write_bytes(b" " * (5 << 20) + b"{}"),
    "pickle-only": lambda f, o: ((f / "model.safetensors").rename(f / "pytorch_model.bin")),
}


@pytest.fixture()
def outside(tmp_path: Path, tiny_model_dirs) -> Path:
    out = tmp_path / "outside"
    out.mkdir()
    shutil.copy(tiny_model_dirs["distilbert"] / "config.json", out / "config.json")
    shutil.copy(tiny_model_dirs["distilbert"] / "model.safetensors", out / "secret.safetensors")
    return out


def _hostile(kind: str, tiny_model_dirs, tmp_path: Path, outside: Path) -> tuple[Path, Path]:
    folder = tmp_path / "models" / kind
    shutil.copytree(tiny_model_dirs["distilbert"], folder)
    marker = tmp_path / "PWNED"
    (folder / "evilmod.py").write_text(CODE.format(marker=str(marker)))
    HOSTILE[kind](folder, outside)
    return folder, marker


@pytest.fixture()
def spy(monkeypatch):
    """Every transformers loader and `input()` (the remote-code prompt) recorded; none may be reached."""
    import builtins

    import transformers

    calls: list[str] = []
    for name in ("AutoConfig", "AutoTokenizer", "AutoModelForSequenceClassification", "AutoModel"):
        cls = getattr(transformers, name)
        original = cls.from_pretrained.__func__

        def record(klass, path, *a, _o=original, _n=name, **k):
            calls.append(f"{_n}({path})")
            return _o(klass, path, *a, **k)
        monkeypatch.setattr(cls, "from_pretrained", classmethod(record))
    monkeypatch.setattr(builtins, "input", lambda *a: calls.append("PROMPT") or "y")
    return calls


ENTRY_POINTS = {
    "train": lambda d, r: ["train", "--model", "transformer", "--pretrained", str(d), *r],
    "jobs-submit": lambda d, r: ["jobs", "submit", "--model", "transformer", "--pretrained", str(d), *r],
    "study-dry-run": lambda d, r: ["study", "queue", "--dry-run", "--pretrained-small", str(d),
                                   "--pretrained-large", str(d), *r],
    "bilstm-embeddings": lambda d, r: ["train", "--model", "bilstm", "--embeddings", str(d), *r],
}


def _cases() -> list[tuple[str, str]]:
    """Every hostile kind on `train`, and every entry point on a rotating share of the kinds."""
    kinds, out = sorted(HOSTILE), []
    out += [(k, "train") for k in kinds]
    for i, point in enumerate(sorted(ENTRY_POINTS)):
        out += [(k, point) for j, k in enumerate(kinds) if j % 3 == i % 3 or k.startswith("auto_map-config")]
    return sorted(set(out))


@pytest.mark.parametrize("kind,entry", _cases())
def test_a_hostile_model_folder_is_refused_before_transformers_is_asked(kind, entry, tiny_model_dirs, tmp_path,
                                                                        outside, spy, fixture_data_home,
                                                                        monkeypatch, capsys):
    monkeypatch.setenv("NEWSCLF_DATA_HOME", str(fixture_data_home))
    monkeypatch.setenv("NEWSCLF_JOB_KEY_FILE", str(tmp_path / "key" / "job.key"))
    monkeypatch.setenv("NEWSCLF_GPUS", "")
    folder, marker = _hostile(kind, tiny_model_dirs, tmp_path, outside)
    runs = tmp_path / "runs"
    code = main(ENTRY_POINTS[entry](folder, ["--runs-dir", str(runs)]))
    err = capsys.readouterr().err
    assert code == 2, (kind, entry, err)
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert not marker.exists() and "PROMPT" not in spy
    assert not [c for c in spy if str(folder) in c], f"transformers was asked to load it: {spy}"
    assert not runs.exists() or not [p for p in runs.iterdir() if not p.name.startswith(".")]


@pytest.mark.parametrize("kind", sorted(k for k in HOSTILE if k.startswith(("auto_map", "custom", "config-link",
                                                                             "fifo-config", "index-etc"))))
def test_a_tampered_best_folder_of_a_run_is_refused_by_every_reader(kind, tiny_runs, tmp_path, outside, spy,
                                                                    fixture_data_home, monkeypatch, capsys):
    monkeypatch.setenv("NEWSCLF_DATA_HOME", str(fixture_data_home))
    runs = tmp_path / "runs"
    run = runs / tiny_runs["transformer"].name
    shutil.copytree(tiny_runs["transformer"], run)
    marker = tmp_path / "PWNED"
    (run / "best" / "evilmod.py").write_text(CODE.format(marker=str(marker)))
    HOSTILE[kind](run / "best", outside)
    r = ["--runs-dir", str(runs)]
    for argv in (["predict", run.name, "--text", "space shuttle", *r], ["explain", run.name, "--text", "space", *r],
                 ["evaluate", run.name, *r]):
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, (argv, err)
    assert not marker.exists() and "PROMPT" not in spy


def test_the_form_preflight_refuses_it_too(tiny_model_dirs, tmp_path, outside, spy):
    from newsclf.config import ConfigError, RunConfig
    from newsclf.prepare import preflight

    folder, marker = _hostile("auto_map-config", tiny_model_dirs, tmp_path, outside)
    cfg = RunConfig(model="transformer", pretrained=str(folder)).resolved()
    with pytest.raises(ConfigError, match="auto_map"):
        preflight(cfg)  # what the train form calls under the pretrained field
    assert not marker.exists() and not spy


def test_a_clean_folder_and_a_hub_cache_snapshot_pass(tiny_model_dirs, tmp_path):
    assert check_folder(tiny_model_dirs["distilbert"]) == tiny_model_dirs["distilbert"]
    # the Hugging Face cache links snapshots/<rev>/<file> to ../../blobs/<hash>: allowed, nothing else
    repo = tmp_path / "models--org--tiny"
    snap, blobs = repo / "snapshots" / "abc123", repo / "blobs"
    snap.mkdir(parents=True)
    blobs.mkdir()
    for f in tiny_model_dirs["distilbert"].iterdir():
        shutil.copy(f, blobs / f.name)
        (snap / f.name).symlink_to(Path("../../blobs") / f.name)
    assert check_folder(snap) == snap
    (snap / "config.json").unlink()
    (snap / "config.json").symlink_to(tmp_path)  # out of the repo
    with pytest.raises(ModelFolderError, match="link out"):
        check_folder(snap)
