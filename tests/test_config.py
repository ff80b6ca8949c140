"""RunConfig: per-model defaults, JSON round trip, validation errors naming the field, CLI flags."""
from __future__ import annotations

from pathlib import Path

import pytest

from newsclf.commands.args import config_to_args, parse_train_args
from newsclf.config import (BILSTM_MAX_LEN_LIMIT, MODEL_DEFAULTS, ConfigError, RunConfig,
                            resolve_data_home, resolve_runs_dir)


def test_bilstm_defaults_are_the_studys():
    cfg = RunConfig(model="bilstm").resolved()
    assert (cfg.vocab_size, cfg.max_len, cfg.embed_dim, cfg.hidden_size, cfg.num_layers) == (50_000, 256, 300, 128, 2)
    assert cfg.dropout == 0.3 and cfg.class_balance is True and cfg.tfidf_weighting is True
    assert cfg.glove == ""  # random embeddings unless --glove is given


def test_resolved_fills_only_missing_values_from_the_model_defaults():
    cfg = RunConfig(model="bilstm", epochs=3).resolved()
    assert cfg.epochs == 3
    assert cfg.batch_size == MODEL_DEFAULTS["bilstm"]["batch_size"]
    tf = RunConfig(model="tfidf").resolved()
    assert tf.epochs == MODEL_DEFAULTS["tfidf"]["epochs"]
    assert all(getattr(tf, k) is not None for k in MODEL_DEFAULTS["tfidf"])


def test_json_round_trip():
    cfg = RunConfig(model="bilstm", epochs=4, lr=1e-3, name="my-run").resolved()
    again = RunConfig.from_dict(__import__("json").loads(cfg.to_json()))
    assert again == cfg
    assert again.resolved() == cfg


def test_from_dict_refuses_unknown_fields():
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict({"model": "tfidf", "epochz": 3})
    assert err.value.field == "epochz"


@pytest.mark.parametrize("values, field", [
    (dict(model="nope"), "model"),
    (dict(model="bilstm", epochs=0), "epochs"),
    (dict(model="bilstm", epochs=-2), "epochs"),
    (dict(model="bilstm", batch_size=0), "batch_size"),
    (dict(model="bilstm", batch_size=-64), "batch_size"),
    (dict(model="bilstm", lr=0.0), "lr"),
    (dict(model="bilstm", lr=-1e-3), "lr"),
    (dict(model="bilstm", lr=float("nan")), "lr"),
    (dict(model="bilstm", max_len=0), "max_len"),
    (dict(model="bilstm", max_len=BILSTM_MAX_LEN_LIMIT + 1), "max_len"),
    (dict(model="bilstm", dropout=1.5), "dropout"),
    (dict(model="bilstm", vocab_size=2), "vocab_size"),
    (dict(model="bilstm", epochs=2.5), "epochs"),
    (dict(model="bilstm", epochs=True), "epochs"),
    (dict(model="tfidf", limit_train=-1), "limit_train"),
    (dict(model="tfidf", alpha=0.0), "alpha"),
    (dict(model="tfidf", device="tpu"), "device"),
    (dict(model="tfidf", protocol="weird"), "protocol"),
    (dict(model="tfidf", name="../escape"), "name"),
    (dict(model="tfidf", name="a/b"), "name"),
    (dict(model="bilstm", glove="/definitely/not/here/glove.6B.300d.txt"), "glove"),
])
def test_invalid_values_name_the_field(values, field):
    with pytest.raises(ConfigError) as err:
        RunConfig(**values).resolved()
    assert err.value.field == field
    assert str(err.value).startswith(f"{field}:")


def test_glove_needs_300d(tmp_path: Path):
    glove = tmp_path / "g.txt"
    glove.write_text("the " + " ".join(["0.1"] * 300) + "\n")
    RunConfig(model="bilstm", glove=str(glove)).resolved()  # fine
    with pytest.raises(ConfigError) as err:
        RunConfig(model="bilstm", glove=str(glove), embed_dim=100).resolved()
    assert err.value.field == "embed_dim"


def test_max_len_limit_only_applies_to_the_bilstm():
    RunConfig(model="tfidf", max_len=BILSTM_MAX_LEN_LIMIT + 1).resolved()
    RunConfig(model="bilstm", max_len=BILSTM_MAX_LEN_LIMIT).resolved()


@pytest.mark.parametrize("argv, field", [
    (["--model", "bilstm", "--epochs", "0"], "epochs"),
    (["--model", "bilstm", "--batch-size", "-1"], "batch_size"),
    (["--model", "bilstm", "--lr", "0"], "lr"),
    (["--model", "bilstm", "--max-len", "100000"], "max_len"),
    (["--model", "resnet"], "model"),
    (["--model", "bilstm", "--epochs", "three"], "epochs"),
    (["--model", "tfidf", "--no-such-flag", "1"], "no_such_flag"),
])
def test_parse_train_args_errors_name_the_field(argv, field):
    with pytest.raises(ConfigError) as err:
        parse_train_args(argv)
    assert err.value.field == field


def test_config_to_args_round_trips_through_the_flags():
    cfg = RunConfig(model="bilstm", epochs=3, lr=1e-3, class_balance=False, name="x1", limit_train=50).resolved()
    assert parse_train_args(config_to_args(cfg)) == cfg


def test_locations_explicit_then_environment_then_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NEWSCLF_DATA_HOME", raising=False)
    monkeypatch.delenv("NEWSCLF_RUNS_DIR", raising=False)
    assert resolve_data_home() == tmp_path / "data"
    assert resolve_runs_dir() == tmp_path / "checkpoints"
    monkeypatch.setenv("NEWSCLF_DATA_HOME", str(tmp_path / "env-data"))
    monkeypatch.setenv("NEWSCLF_RUNS_DIR", str(tmp_path / "env-runs"))
    assert resolve_data_home() == tmp_path / "env-data"
    assert resolve_runs_dir() == tmp_path / "env-runs"
    assert resolve_data_home(tmp_path / "x") == tmp_path / "x"
    assert resolve_runs_dir(tmp_path / "y") == tmp_path / "y"
