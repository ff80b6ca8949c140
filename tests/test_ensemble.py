"""Ensembles: combination rules, weights fitted on validation only, refusals that leave nothing behind,
and an ensemble of the tiny tfidf + bilstm + transformer runs that works everywhere a run does."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from newsclf import store
from newsclf.cli import main
from newsclf.config import RunConfig
from newsclf.ensemble import build_ensemble
from newsclf.errors import UserError
from newsclf.models.ensemble import combine_probs, fit_weights, parse_weights, round_weights

LABELS = ["a", "b", "c"]


# ---- hand-made runs --------------------------------------------------------------------------
def _probs(y: np.ndarray, skill: float, rng: np.random.Generator) -> np.ndarray:
    """Probabilities that put `skill` more mass on the true class than noise does."""
    logits = rng.normal(size=(len(y), len(LABELS)))
    logits[np.arange(len(y)), y] += skill
    e = np.exp(logits)
    return (e / e.sum(1, keepdims=True)).astype(np.float32)


def fake_run(runs_dir: Path, name: str, val_probs, test_probs, y_val, y_test, *, protocol="seed",
             labels=LABELS, state="finished", model="tfidf", test_ids=None) -> Path:
    run_dir = store.create_run_dir(runs_dir, name)
    (run_dir / store.BEST).mkdir()
    store.write_json_atomic(run_dir / store.CONFIG, RunConfig(model=model, protocol=protocol, name=name).resolved().to_dict())
    store.write_json_atomic(run_dir / store.LABELS, list(labels))
    store.update_status(run_dir, state=state)
    store.write_json_atomic(run_dir / store.RESULTS, {k: 1.0 for k in store.RESULT_KEYS} | {"model": model, "device": "cpu"})
    val_ids = np.array([f"train/x/{i}" for i in range(len(y_val))])
    test_ids = test_ids if test_ids is not None else np.array([f"test/x/{i}" for i in range(len(y_test))])
    for split, ids, p, y in (("val", val_ids, val_probs, y_val), ("test", test_ids, test_probs, y_test)):
        store.save_predictions(run_dir, split, store.Predictions(ids, y, p.argmax(1), p))
    return run_dir


@pytest.fixture()
def two_runs(tmp_path):
    rng = np.random.default_rng(0)
    y_val, y_test = rng.integers(0, 3, 300), rng.integers(0, 3, 200)
    good = fake_run(tmp_path, "good", _probs(y_val, 3.0, rng), _probs(y_test, 3.0, rng), y_val, y_test)
    weak = fake_run(tmp_path, "weak", _probs(y_val, 0.5, rng), _probs(y_test, 0.5, rng), y_val, y_test)
    return tmp_path, good, weak, (y_val, y_test)


def test_combination_rules():
    p1 = np.array([[0.8, 0.1, 0.1], [0.2, 0.5, 0.3]])
    p2 = np.array([[0.4, 0.4, 0.2], [0.1, 0.1, 0.8]])
    assert np.allclose(combine_probs([p1, p2], [0.5, 0.5], "mean"), (p1 + p2) / 2, atol=1e-6)
    geo = np.sqrt(p1 * p2)
    assert np.allclose(combine_probs([p1, p2], [1, 1], "logmean"), geo / geo.sum(1, keepdims=True), atol=1e-6)
    assert np.allclose(combine_probs([p1, p2], [1.0, 0.0], "logmean"), p1, atol=1e-6)
    assert parse_weights("equal", 3)[1].tolist() == pytest.approx([1 / 3] * 3)
    assert parse_weights("1,3", 2) == ("given", pytest.approx(np.array([0.25, 0.75])))
    assert parse_weights("auto", 2) == ("auto", None)
    for bad in ("1,2,3", "-1,2", "0,0", "x,y", "nan,1"):
        with pytest.raises(ValueError, match="weights"):
            parse_weights(bad, 2)
    assert round_weights(np.array([1 / 3, 1 / 3, 1 / 3])).sum() == pytest.approx(1.0, abs=1e-9)


def test_auto_weights_favour_the_better_member_and_never_look_at_test(two_runs, tmp_path):
    runs_dir, good, weak, (y_val, y_test) = two_runs
    ens = build_ensemble([good.name, weak.name], runs_dir, weights="auto")
    res = store.read_json(ens / store.RESULTS)
    assert res["weights"][0] > res["weights"][1] and sum(res["weights"]) == pytest.approx(1.0)
    assert all(k in res for k in store.RESULT_KEYS) and res["weights_from"] == "auto"
    # the same members with scrambled TEST labels and probabilities: identical weights
    other = tmp_path / "other"
    rng = np.random.default_rng(7)
    y_test2 = (y_test + 1) % 3
    members = []
    for run in (good, weak):
        val = store.load_predictions(run, "val")
        members.append(fake_run(other, run.name.split("-", 3)[-1], val.probs, _probs(y_test2, 0.1, rng), y_val, y_test2))
    again = store.read_json(build_ensemble([m.name for m in members], other) / store.RESULTS)
    assert again["weights"] == res["weights"]
    assert again["val_acc"] == res["val_acc"] and again["test_acc"] != res["test_acc"]


def test_weights_given_and_equal_are_stored_in_config_and_best(two_runs):
    runs_dir, good, weak, _ = two_runs
    ens = build_ensemble([good.name, weak.name], runs_dir, weights="1,3", combine="logmean", name="my-ens")
    cfg = store.read_json(ens / store.CONFIG)
    assert cfg["model"] == "ensemble" and cfg["members"] == f"{good.name},{weak.name}"
    assert (cfg["weights"], cfg["weights_from"], cfg["combine"]) == ("0.25,0.75", "given", "logmean")
    spec = json.loads((ens / store.BEST / "ensemble.json").read_text())
    assert spec["members"] == [good.name, weak.name] and spec["weights"] == [0.25, 0.75]
    assert sorted(p.name for p in (ens / store.BEST).iterdir()) == ["ensemble.json"]  # nothing copied
    assert RunConfig.from_dict(cfg).resolved().model == "ensemble"  # a valid RunConfig
    assert ens.name.endswith("-my-ens") and store.read_status(ens)["state"] == "finished"
    assert ens.name in [r.run_id for r in store.finished_runs(runs_dir)]
    equal = store.read_json(build_ensemble([good.name, weak.name], runs_dir, weights="equal") / store.RESULTS)
    assert equal["weights"] == [0.5, 0.5]


def _refused(capsys, runs_dir: Path, *args: str) -> str:
    before = sorted(p.name for p in runs_dir.iterdir())
    code = main(["ensemble", *args, "--runs-dir", str(runs_dir)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error:") and len(err.splitlines()) == 1, err
    assert sorted(p.name for p in runs_dir.iterdir()) == before  # no run dir left behind
    return err


def test_mismatched_members_are_refused_in_one_line(two_runs, capsys):
    runs_dir, good, weak, (y_val, y_test) = two_runs
    rng = np.random.default_rng(1)
    pv, pt = _probs(y_val, 1, rng), _probs(y_test, 1, rng)
    raw = fake_run(runs_dir, "raw", pv, pt, y_val, y_test, protocol="raw")
    relabel = fake_run(runs_dir, "relabel", pv, pt, y_val, y_test, labels=["x", "y", "z"])
    running = fake_run(runs_dir, "running", pv, pt, y_val, y_test, state="running")
    ids = np.array([f"test/y/{i}" for i in range(len(y_test))])
    other_docs = fake_run(runs_dir, "otherdocs", pv, pt, y_val, y_test, test_ids=ids)
    assert "protocol" in _refused(capsys, runs_dir, good.name, raw.name)
    assert "class names" in _refused(capsys, runs_dir, good.name, relabel.name)
    assert "not a finished run" in _refused(capsys, runs_dir, good.name, running.name)
    assert "test documents differ" in _refused(capsys, runs_dir, good.name, other_docs.name)
    assert "no run" in _refused(capsys, runs_dir, good.name, "20990101-000000-000-deleted")
    assert "not a run inside" in _refused(capsys, runs_dir, good.name, "/etc")
    assert "at least 2" in _refused(capsys, runs_dir, good.name)
    assert "twice" in _refused(capsys, runs_dir, good.name, good.name)
    assert "weights" in _refused(capsys, runs_dir, good.name, weak.name, "--weights", "1,2,3")
    assert "name" in _refused(capsys, runs_dir, good.name, weak.name, "--name", "../x")
    ens = build_ensemble([good.name, weak.name], runs_dir)
    assert "ensemble" in _refused(capsys, runs_dir, good.name, ens.name)


def test_a_failure_while_writing_removes_the_run_dir(two_runs, monkeypatch):
    runs_dir, good, weak, _ = two_runs
    before = sorted(p.name for p in runs_dir.iterdir())

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(store, "save_predictions", boom)
    with pytest.raises(OSError):
        build_ensemble([good.name, weak.name], runs_dir)
    assert sorted(p.name for p in runs_dir.iterdir()) == before


# ---- the tiny real runs: an ensemble is a run ------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_ensemble(tiny_runs, tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("ens_runs")
    for kind in ("tfidf", "bilstm", "transformer"):
        shutil.copytree(tiny_runs[kind], runs_dir / tiny_runs[kind].name)
    members = [tiny_runs[k].name for k in ("tfidf", "bilstm", "transformer")]
    assert main(["ensemble", *members, "--runs-dir", str(runs_dir), "--name", "trio"]) == 0
    (ens,) = [p for p in runs_dir.iterdir() if p.name.endswith("-trio")]
    return runs_dir, ens, members


def test_the_ensemble_loads_predicts_and_explains_like_a_run(tiny_ensemble, fixture_data_home, capsys):
    from newsclf.data import load_dataset
    from newsclf.explain import explain
    from newsclf.models.ensemble import combine_probs as combine
    from newsclf.predict import load_predictor

    runs_dir, ens, members = tiny_ensemble
    info = {r.run_id: r for r in store.finished_runs(runs_dir)}[ens.name]
    assert info.model == "ensemble" and info.detail.startswith("ensemble / 3 runs")
    res = info.results
    assert res["params"] == sum(store.read_json(runs_dir / m / store.RESULTS)["params"] for m in members)
    predictor = load_predictor(ens.name, runs_dir)
    texts = load_dataset("seed", fixture_data_home).test.texts[:6]
    parts = [load_predictor(m, runs_dir).predict_proba(texts) for m in members]
    assert np.allclose(predictor.predict_proba(texts), combine(parts, res["weights"], "mean"), atol=1e-5)
    stored = store.load_predictions(ens, "test")
    assert np.allclose(predictor.predict_proba(texts), stored.probs[:6], atol=1e-4)

    attr = explain(predictor, texts[0], "ig", n_steps=4)
    singles = [explain(load_predictor(m, runs_dir), texts[0], "ig", attr.target, n_steps=4) for m in members]
    expected = sum(w * np.nan_to_num(s.score_array()) for w, s in zip(res["weights"], singles))
    assert attr.model == "ensemble" and attr.signed and len(attr.scores) == len(attr.words) == len(singles[0].words)
    assert np.allclose(np.nan_to_num(attr.score_array()), expected, atol=1e-6)
    assert any(n.startswith("weighted sum") for n in attr.notes)
    with pytest.raises(Exception, match="attention"):
        explain(predictor, texts[0], "attention")  # the TF-IDF member has none

    capsys.readouterr()
    assert main(["predict", ens.name, "--text", texts[0], "--runs-dir", str(runs_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["model"] == "ensemble"
    assert main(["explain", ens.name, "--text", texts[0], "--steps", "4", "--runs-dir", str(runs_dir)]) == 0
    assert "weighted sum" in capsys.readouterr().out


def test_evaluate_cli_rescores_the_ensemble_through_its_members(tiny_ensemble, fixture_data_home, capsys):
    runs_dir, ens, _ = tiny_ensemble
    before = store.read_json(ens / store.RESULTS)
    assert main(["evaluate", ens.name, "--runs-dir", str(runs_dir), "--data-home", str(fixture_data_home), "--json"]) == 0
    after = json.loads(capsys.readouterr().out)
    assert after["model"] == "ensemble" and after["params"] == before["params"]
    assert after["val_acc"] == pytest.approx(before["val_acc"], abs=0.03)
    assert after["test_acc"] == pytest.approx(before["test_acc"], abs=0.03)
    assert after["train_seconds"] == pytest.approx(before["train_seconds"])


def test_a_deleted_member_is_one_clear_line(tiny_ensemble, tmp_path, capsys):
    runs_dir, ens, members = tiny_ensemble
    copy = tmp_path / "runs"
    copy.mkdir()
    for name in [ens.name, *members[:2]]:  # the transformer member is gone
        shutil.copytree(runs_dir / name, copy / name)
    assert main(["predict", ens.name, "--text", "a space shuttle launch", "--runs-dir", str(copy)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and members[2] in err and "missing" in err
    # a hostile spec naming a path outside the runs dir is refused the same way
    spec = copy / ens.name / store.BEST / "ensemble.json"
    data = json.loads(spec.read_text())
    data["members"][2] = "../../etc"
    spec.write_text(json.dumps(data))
    assert main(["predict", ens.name, "--text", "a space shuttle launch", "--runs-dir", str(copy)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_training_an_ensemble_from_a_config_is_refused(fixture_data_home, tmp_path, capsys):
    code = main(["train", "--model", "ensemble", "--data-home", str(fixture_data_home), "--runs-dir", str(tmp_path)])
    assert code == 2 and "newsclf ensemble" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
    with pytest.raises(UserError):
        build_ensemble([], tmp_path)
