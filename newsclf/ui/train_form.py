"""The training form, built from RunConfig: its fields, their help, which family uses each (`families`) and MODEL_DEFAULTS.

Values are validated live with RunConfig.resolved(); the message of a ConfigError appears right
under the field it names. Start submits a job with newsclf.jobs.submit (the only way the UI trains).
"""
from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any

import streamlit as st

from newsclf import jobs
from newsclf.config import MODEL_DEFAULTS, PRESETS, ConfigError, RunConfig, field_kind, uses_field
from newsclf.models import family_names, get_family
from newsclf.ui.cache import device_info, runs_dir

CUSTOM = "Custom"
HIDDEN = {"data_home", "model"}
BASIC = {"name", "epochs", "batch_size", "lr", "max_len", "pretrained", "strategy", "classifier", "alpha",
         "embed_dim", "hidden_size", "num_layers", "ngram_max", "max_features", "glove", "head_epochs"}


def form_fields(model: str) -> list[Any]:
    """The RunConfig fields family `model` uses (field metadata `families`), in declaration order."""
    return [f for f in fields(RunConfig) if f.name not in HIDDEN and uses_field(model, f.name)]


def field_default(f, model: str, preset: dict[str, Any]) -> Any:
    if f.name in preset:
        return preset[f.name]
    value = f.default if f.default is not MISSING else None
    if value is None:
        value = MODEL_DEFAULTS[model].get(f.name)
    return value


def _widget(f, default: Any, key: str) -> Any:
    label = f.name.replace("_", " ")
    help_text = f.metadata.get("help", "")
    kind = field_kind(f)
    if "choices" in f.metadata:
        choices = list(f.metadata["choices"])
        index = choices.index(default) if default in choices else 0
        return st.selectbox(label, choices, index=index, key=key, help=help_text)
    if kind is bool:
        return st.checkbox(label, value=bool(default), key=key, help=help_text)
    if kind is int:
        return st.number_input(label, value=None if default is None else int(default), step=1, key=key,
                               help=help_text, placeholder="auto")
    if kind is float:
        return st.number_input(label, value=None if default is None else float(default), key=key, format="%g",
                               help=help_text, placeholder="auto",
                               step=_float_step(default))
    return st.text_input(label, value="" if default is None else str(default), key=key, help=help_text)


def _float_step(default: Any) -> float:
    if not default:
        return 0.01
    mag = abs(float(default))
    return float(10.0 ** int(f"{mag:e}".split("e")[1]))


CLONE_KEY = "train.clone"
ONLY_WHEN = {"head_epochs": ("strategy", "hybrid")}  # a field shown only when another field has this value


def render_train_form(have_corpus: bool = True) -> None:
    """Preset + fields + GPU choice + Start; a started job appears in the live panel below.

    A config cloned from a run (session state CLONE_KEY, set by the Runs section or a job's
    "Clone config") fills the form as a "Cloned" preset. Without a corpus Start is disabled."""
    clone = st.session_state.get(CLONE_KEY)
    presets = dict(PRESETS)
    trainable = [name for name in family_names() if get_family(name).trainable]  # ensembles: Results page
    if isinstance(clone, dict) and clone.get("model") in trainable:
        cloned = f"Cloned #{st.session_state.get('train.clone_n', 1)}"
        presets = {cloned: {k: v for k, v in clone.items() if k in RunConfig.__dataclass_fields__
                            and k not in ("data_home",)}, **presets}
    preset_name = st.selectbox("Preset (the study's configurations)", [*presets, CUSTOM], key="train.preset",
                               help="Presets fill the form; every field can still be changed.")
    preset = dict(presets.get(preset_name, {}))
    names = trainable
    model = st.selectbox("model", names, index=names.index(preset.get("model", names[0])),
                         format_func=lambda name: get_family(name).title,
                         key=f"train.{preset_name}.model", help=RunConfig.__dataclass_fields__["model"].metadata["help"])
    if model != preset.get("model", model):
        preset = {}
    values: dict[str, Any] = {"model": model}
    slots: dict[str, Any] = {}
    basic = [f for f in form_fields(model) if f.name in BASIC]
    advanced = [f for f in form_fields(model) if f.name not in BASIC]
    for group, container in ((basic, st.container()), (advanced, st.expander("Advanced options"))):
        with container:
            shown = [f for f in group if _shown(f.name, values, model, preset, preset_name)]
            cols = st.columns(3)
            for i, f in enumerate(shown):
                with cols[i % 3]:
                    values[f.name] = _widget(f, field_default(f, model, preset), f"train.{preset_name}.{model}.{f.name}")
                    slots[f.name] = st.empty()
    gpus, nproc = _gpu_choice(values)
    cfg, error = validate_values(values)
    if error is None:
        error = preflight_error(cfg)
    if error is not None:
        _show_error(slots, error)
    if not have_corpus:
        st.warning("Start needs the corpus: import it on the Home page (tab **Import a local archive**, or "
                   "**Download** when online).", icon=":material/warning:")
    if st.button("Start", type="primary", disabled=error is not None or not have_corpus, key="train.start"):
        _start(cfg, gpus, nproc, slots)


def _shown(name: str, values: dict[str, Any], model: str, preset: dict[str, Any], preset_name: str) -> bool:
    """Whether field `name` applies with the values chosen so far (e.g. head epochs only for hybrid)."""
    rule = ONLY_WHEN.get(name)
    if rule is None:
        return True
    other, wanted = rule
    value = values.get(other)
    if value is None:  # the other field comes later in the form: its current widget value, else its default
        key = f"train.{preset_name}.{model}.{other}"
        value = st.session_state.get(key, preset.get(other, RunConfig.__dataclass_fields__[other].default))
    return value == wanted


def preflight_error(cfg: RunConfig) -> ConfigError | None:
    """The family's preflight (what jobs.submit runs: model id loadable offline, max_len, GloVe file),
    cached per config so the form shows the refusal under the field before Start."""
    import json

    found = _preflight(json.dumps(cfg.to_dict(), sort_keys=True, default=str))
    return None if found is None else ConfigError(*found)


@st.cache_data(ttl=120, max_entries=64, show_spinner="Checking the model…")
def _preflight(config_json: str) -> tuple[str, str] | None:
    """(field, message) of the preflight's refusal, or None (a tuple: cached values are pickled)."""
    import json

    from newsclf.prepare import preflight

    try:
        preflight(RunConfig(**json.loads(config_json)))
    except ConfigError as exc:
        return exc.field, str(exc).removeprefix(f"{exc.field}: ")
    except Exception as exc:  # noqa: BLE001 - a broken model folder is a refusal too, not a crash
        return ("pretrained" if "pretrained" in json.loads(config_json) else "model", f"{type(exc).__name__}: {exc}")
    return None


def validate_values(values: dict[str, Any]) -> tuple[RunConfig | None, ConfigError | None]:
    """Build and resolve a RunConfig from widget values; empty strings/None fall back to defaults."""
    clean = {k: v for k, v in values.items() if v is not None}
    if clean.get("name", None) == "":
        clean.pop("name")
    try:
        cfg = RunConfig(**clean).resolved()
    except ConfigError as exc:
        return None, exc
    except (TypeError, ValueError) as exc:
        return None, ConfigError("arguments", str(exc))
    return cfg, None


def _gpu_choice(values: dict[str, Any]) -> tuple[list[str] | None, int | None]:
    device = values.get("device", "auto")
    family = get_family(values["model"])
    if not family.trained_by_loop:
        st.caption(f"{family.title} trains on the CPU.")
        return None, None
    dev = device_info()
    if not dev["gpu_ids"]:
        st.caption("No GPU visible to jobs: this job runs on the CPU.")
        return None, None
    labels = {gid: f"{gid}: {dev['gpu_names'].get(gid, 'GPU')}" for gid in dev["gpu_ids"]}
    chosen = st.multiselect("GPUs (empty = the next free GPU, or CPU with device cpu)", dev["gpu_ids"],
                            format_func=lambda i: labels[i], key="train.gpus", disabled=device == "cpu")
    nproc = None
    if len(chosen) > 1:
        nproc = st.number_input("processes per node (torchrun)", min_value=1, max_value=len(chosen),
                                value=len(chosen), step=1, key="train.nproc")
    return (chosen or None), (int(nproc) if nproc else None)


def _start(cfg: RunConfig, gpus: list[str] | None, nproc: int | None, slots: dict[str, Any]) -> None:
    try:
        info = jobs.submit(cfg, runs_dir(), gpus=gpus, nproc_per_node=nproc)
    except ConfigError as exc:
        _show_error(slots, exc)
        return
    except (OSError, ValueError) as exc:
        st.error(f"Could not queue the job: {exc}")
        return
    st.success(f"Queued job `{info.id}` ({info.state}). Follow it in the live panel below.")


def _show_error(slots: dict[str, Any], error: ConfigError) -> None:
    """The message under the field it names (or above Start when the field has no widget)."""
    where = slots.get(error.field)
    (where if where is not None else st).error(str(error), icon=":material/warning:")
