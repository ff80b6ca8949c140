"""Destructive commands never follow links (issue 21, class 2): one resolution rule for every command —
the run is the folder entry itself; an entry that is a link is refused, whatever it points to and
however it is named (full id, unique ending, absolute or relative path).

Generated: link kinds x ways of naming the link x every command that changes or removes a run (and the
readers, which follow the same rule). Each time: exit code 2 with one `error:` line, the link still
there, and the target's files byte for byte as before.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from newsclf import manage, store
from newsclf.cli import main

DECOY = "20991231-235959-999-decoy"


def _tree(path: Path) -> dict[str, str]:
    """Every file under `path` (not following links) with its content hash, and every folder."""
    out = {}
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            p = Path(root) / name
            rel = str(p.relative_to(path))
            out[rel] = "dir" if p.is_dir() and not p.is_symlink() else \
                ("link" if p.is_symlink() else hashlib.sha256(p.read_bytes()).hexdigest())
    return out


@pytest.fixture()
def world(tmp_path: Path, tiny_runs, fixture_data_home, monkeypatch) -> dict:
    monkeypatch.setenv("NEWSCLF_DATA_HOME", str(fixture_data_home))
    runs = tmp_path / "runs"
    target = runs / tiny_runs["tfidf"].name
    shutil.copytree(tiny_runs["tfidf"], target)
    outside = tmp_path / "outside" / "20991231-000000-000-elsewhere"
    shutil.copytree(tiny_runs["tfidf"], outside)
    (target / "last").mkdir()  # so `jobs resume` would have something to act on
    return {"runs": runs, "target": target, "outside": outside, "tmp": tmp_path}


LINKS = {
    "to-a-run": lambda w: (w["runs"] / DECOY).symlink_to(w["target"], target_is_directory=True),
    "relative-to-a-run": lambda w: (w["runs"] / DECOY).symlink_to(w["target"].name, target_is_directory=True),
    "to-a-run-outside": lambda w: (w["runs"] / DECOY).symlink_to(w["outside"], target_is_directory=True),
    "chain": lambda w: ((w["runs"] / "20991231-235959-998-hop").symlink_to(w["target"], target_is_directory=True),
                        (w["runs"] / DECOY).symlink_to(w["runs"] / "20991231-235959-998-hop")),
    "dangling": lambda w: (w["runs"] / DECOY).symlink_to(w["tmp"] / "nowhere"),
}
NAMES = {
    "full-id": lambda w: DECOY,
    "unique-ending": lambda w: "decoy",
    "absolute-path": lambda w: str(w["runs"] / DECOY),
    "relative-path": lambda w: os.path.relpath(w["runs"] / DECOY),
    "path-with-dot": lambda w: str(w["runs"] / DECOY) + "/.",
}
COMMANDS = {
    "runs-delete": lambda r, run: ["runs", "delete", run, "--yes", *r],
    "runs-rename": lambda r, run: ["runs", "rename", run, "hijacked", *r],
    "runs-tag": lambda r, run: ["runs", "tag", run, "hijacked", *r],
    "runs-note": lambda r, run: ["runs", "note", run, "hijacked", *r],
    "runs-archive": lambda r, run: ["runs", "archive", run, *r],
    "runs-unarchive": lambda r, run: ["runs", "unarchive", run, *r],
    "jobs-cancel": lambda r, run: ["jobs", "cancel", run, *r],
    "jobs-resume": lambda r, run: ["jobs", "resume", run, *r],
    "calibrate": lambda r, run: ["calibrate", run, *r],
    "evaluate": lambda r, run: ["evaluate", run, *r],
    "train-resume": lambda r, run: ["train", "--resume", run, *r],
    "predict": lambda r, run: ["predict", run, "--text", "the space shuttle", *r],
    "explain": lambda r, run: ["explain", run, "--text", "the space shuttle", *r],
}


def _cases() -> list[tuple[str, str, str]]:
    """Every (link, command) pair, each named a different way in turn, plus every (link, name) pair for the
    two commands the issue saw fail: all pairs covered without the full 325-case product."""
    names, out = sorted(NAMES), []
    for i, (link, command) in enumerate((lk, c) for lk in sorted(LINKS) for c in sorted(COMMANDS)):
        out.append((link, names[i % len(names)], command))
    out += [(lk, n, c) for lk in sorted(LINKS) for n in names for c in ("runs-delete", "runs-rename")]
    return sorted(set(out))


@pytest.mark.parametrize("link,name,command", _cases())
def test_no_command_acts_through_a_linked_run_folder(world, link, name, command, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEWSCLF_JOB_KEY_FILE", str(tmp_path / "key" / "job.key"))
    LINKS[link](world)
    before = {p: _tree(p) for p in (world["target"], world["outside"])}
    argv = COMMANDS[command](["--runs-dir", str(world["runs"])], NAMES[name](world))
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, (argv, code, err)
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert (world["runs"] / DECOY).is_symlink(), "the link itself was removed or replaced"
    for path, tree in before.items():
        assert _tree(path) == tree, f"{command} changed {path.name} through a link"


def test_the_real_run_is_still_managed_by_its_own_id(world, capsys):
    LINKS["to-a-run"](world)
    r = ["--runs-dir", str(world["runs"])]
    assert main(["runs", "rename", world["target"].name, "mine", *r]) == 0
    assert manage.read_meta(world["target"]).display_name == "mine"
    assert main(["runs", "delete", world["target"].name, "--yes", *r]) == 0
    assert not world["target"].exists() and (world["runs"] / DECOY).is_symlink()


def test_a_run_folder_swapped_for_a_link_after_it_was_resolved(world, monkeypatch, capsys):
    """The race: the entry is a real folder when resolved, a link when acted on. The rename, the meta.json
    write and the deletion act on the entry itself (a renamed link is put back, a write through it refused)."""
    victim, target = world["runs"] / "20991231-235959-997-victim", world["target"]
    r = ["--runs-dir", str(world["runs"])]
    before = _tree(target)

    def swap(*_args, **_kwargs):
        if victim.is_dir() and not victim.is_symlink():
            shutil.rmtree(victim)
            victim.symlink_to(target, target_is_directory=True)
        return []

    import newsclf.jobs

    for argv, module, hook in ((["runs", "delete", victim.name, "--yes", *r], newsclf.jobs, "reconcile_direct_runs"),
                               (["runs", "rename", victim.name, "hijacked", *r], manage, "read_meta")):
        if victim.is_symlink():
            victim.unlink()
        shutil.copytree(target, victim)
        original = getattr(module, hook)
        monkeypatch.setattr(module, hook, lambda *a, _o=original, **k: (swap(), _o(*a, **k))[1])
        code = main(argv)
        err = capsys.readouterr().err
        monkeypatch.setattr(module, hook, original)
        assert code == 2 and err.startswith("error: "), (argv, err)
        assert _tree(target) == before and target.is_dir()
        assert not (target / manage.META).exists()


def test_resolve_run_refuses_links_for_readers_too(world):
    LINKS["to-a-run"](world)
    with pytest.raises(store.RunNotFoundError, match="link"):
        store.resolve_run(DECOY, world["runs"])
    assert store.resolve_run(world["target"].name, world["runs"]) == world["runs"] / world["target"].name
    assert [r.run_id for r in store.list_runs(world["runs"])] == [world["target"].name]  # links are not runs
    json.dumps([str(p) for p in world["runs"].iterdir()])
