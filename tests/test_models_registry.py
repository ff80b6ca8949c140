"""The model-family registry: every family round-trips preflight -> fit/build -> save -> load -> predict
-> explain options on tiny models; the registry stays light; no family names are compared outside it."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from newsclf.config import MODELS, ConfigError, RunConfig
from newsclf.data import load_dataset
from newsclf.explain import explain
from newsclf.models import ModelFamily, family_names, get_family
from newsclf.predict import Predictor

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"tfidf": {}, "bilstm": dict(epochs=1, batch_size=16, embed_dim=16, hidden_size=8, max_len=64, vocab_size=500),
         "transformer": dict(epochs=1, batch_size=8, max_len=32)}


def _cfg(name: str, data_home: Path, tiny_model_dirs) -> RunConfig:
    extra = {"pretrained": str(tiny_model_dirs["distilbert"])} if name == "transformer" else {}
    return RunConfig(model=name, data_home=str(data_home), **SMALL[name], **extra).resolved()


def test_every_configured_family_is_registered():
    assert family_names() == MODELS
    for name in MODELS:
        family = get_family(name)
        assert isinstance(family, ModelFamily) and family.name == name and family.title
        assert family.explain_methods and family.method_names()[0] == family.explain_method(None).name
    with pytest.raises(ConfigError, match="model"):
        get_family("svm")


@pytest.mark.parametrize("name", [m for m in MODELS if get_family(m).trainable])  # ensembles: test_ensemble.py
def test_family_round_trip(name, fixture_data_home, tiny_model_dirs, tmp_path):
    family = get_family(name)
    cfg = _cfg(name, fixture_data_home, tiny_model_dirs)
    family.preflight(cfg)
    data = load_dataset(cfg.protocol, fixture_data_home)
    if family.trained_by_loop:
        model, encoder = family.build(cfg, data.train.texts, list(data.label_names))
        assert family.phases(cfg) and family.param_groups(model, cfg, family.phases(cfg)[0])
    else:
        model, encoder = family.fit(cfg, data), None
    before = family.predict_proba(model, encoder, data.test.texts[:5])
    best = tmp_path / "run" / "best"
    family.save(model, encoder, best)
    loaded, loaded_encoder = family.load(best, "cpu")
    after = family.predict_proba(loaded, loaded_encoder, data.test.texts[:5])
    assert after.shape == (5, len(data.label_names)) and np.allclose(before, after, atol=1e-5)
    total, trainable = family.count_params(loaded)
    assert total >= trainable > 0
    (tmp_path / "run" / "config.json").write_text(cfg.to_json())
    predictor = Predictor(tmp_path / "run", name, list(data.label_names), cfg.to_dict(), loaded, loaded_encoder)
    options = family.explain_options(loaded)
    for method in family.method_names():
        attr = explain(predictor, data.test.texts[0][:400], method, n_steps=4)
        assert attr.method == method and len(attr.words) == len(attr.scores)
        for opt in family.explain_method(method).options:  # e.g. layer/head: within the model's range
            assert {"layer": "layers", "head": "heads"}[opt] in options


def test_family_labels_and_run_names():
    assert get_family("tfidf").describe({"classifier": "logreg"}) == "tfidf / logreg"
    tx = get_family("transformer")
    cfg = RunConfig(model="transformer", pretrained="/models/my-minilm/", strategy="hybrid", epochs=3).resolved()
    assert tx.run_name(cfg) == "my-minilm-hybrid"
    assert tx.describe(cfg.to_dict()) == "my-minilm / hybrid"
    assert not get_family("tfidf").uses_gpu(RunConfig().resolved())
    assert tx.uses_gpu(cfg) and not tx.uses_gpu(RunConfig(model="transformer", device="cpu").resolved())


def test_asking_the_registry_imports_neither_torch_nor_sklearn():
    code = ("import sys; from newsclf.models import get_family, family_names; "
            "[(get_family(n).describe({}), get_family(n).method_names()) for n in family_names()]; "
            "bad = [m for m in ('torch', 'sklearn', 'streamlit') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


FAMILY_COMPARISON = re.compile(r"""(==|!=)\s*["'](%s)["']|model in \(""" % "|".join(MODELS))


def test_no_family_name_comparisons_outside_the_registry():
    offenders = []
    for path in [*ROOT.joinpath("newsclf").rglob("*.py"), ROOT / "app.py", *ROOT.joinpath("pages").glob("*.py")]:
        if "models" in path.relative_to(ROOT).parts[:2]:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if FAMILY_COMPARISON.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "ask newsclf.models.get_family instead:\n" + "\n".join(offenders)
