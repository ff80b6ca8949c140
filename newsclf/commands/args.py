"""RunConfig <-> command-line flags: one `--flag` per config field, generated from the dataclass.

Used by `newsclf train`, `newsclf jobs submit` and the job queue (which accepts train options as argv).
Help texts name the model families that use a field (field metadata), e.g. `[bilstm] LSTM units per direction`.
"""
from __future__ import annotations

import argparse
from dataclasses import fields
from typing import Any

from newsclf.config import ConfigError, RunConfig, field_kind

def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One `--flag` per RunConfig field; unspecified flags stay None (-> defaults)."""
    for f in fields(RunConfig):
        flag = "--" + f.name.replace("_", "-")
        kind = field_kind(f)
        kwargs: dict[str, Any] = dict(dest=f.name, default=None, help=_help(f))
        if kind is bool:
            kwargs.update(type=_bool, nargs="?", const=True, metavar="BOOL")
        else:
            kwargs["type"] = kind
        if "choices" in f.metadata:
            kwargs["choices"] = f.metadata["choices"]
        parser.add_argument(flag, **kwargs)


def _help(f) -> str:
    families = f.metadata.get("families") or ()
    prefix = f"[{', '.join(families)}] " if families else ""
    return prefix + f.metadata.get("help", "")


def config_from_namespace(ns: argparse.Namespace) -> RunConfig:
    values = {f.name: getattr(ns, f.name) for f in fields(RunConfig) if getattr(ns, f.name, None) is not None}
    return RunConfig(**values).resolved()


def parse_train_args(argv: list[str]) -> RunConfig:
    """Parse train options (as given to `newsclf train`) into a resolved, validated config.

    Raises ConfigError naming the field; used by the job queue at submit time.
    """
    parser = _RaisingParser(prog="newsclf train", add_help=False)
    add_config_arguments(parser)
    ns, extra = parser.parse_known_args(argv)
    if extra:
        raise ConfigError(extra[0].lstrip("-").replace("-", "_") or "arguments", f"unrecognised option {extra[0]!r}")
    return config_from_namespace(ns)


class _RaisingParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        field_name = "arguments"
        if "argument --" in message:
            field_name = message.split("argument --", 1)[1].split(":", 1)[0].split("/")[0].replace("-", "_")
        raise ConfigError(field_name, message)


def config_to_args(cfg: RunConfig) -> list[str]:
    """The inverse of parse_train_args: flags for every field that differs from the dataclass default."""
    base = RunConfig()
    args: list[str] = []
    for f in fields(RunConfig):
        value = getattr(cfg, f.name)
        if value == getattr(base, f.name) or value is None:
            continue
        args += ["--" + f.name.replace("_", "-"), str(value)]
    return args
