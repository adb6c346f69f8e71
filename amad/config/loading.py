"""Where a configuration comes from: ``params.yaml``, a shipped profile, dotted-key overrides."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from amad.config.schema import AmadConfig
from amad.errors import ConfigError


def _set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = tree
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {key!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


# keys whose values are entity ids: text as written (007, true, null, NA), never YAML-typed
ENTITY_KEYS = frozenset({"data.entity", "fleet.entities", "contract.entities"})


def parse_override(text: str) -> tuple[str, Any]:
    """``"train.epochs=3"`` -> ``("train.epochs", 3)``; the value is parsed as YAML, except
    that entity ids (``ENTITY_KEYS``) stay text: ``data.entity=007`` is ``"007"``."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like section.key=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if key in ENTITY_KEYS:
        try:
            return key, yaml.load(
                raw, Loader=yaml.BaseLoader
            )  # BaseLoader: plain strings, no objects
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {text!r}: {exc}") from exc
    return key, yaml.safe_load(raw)


def _format_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "<root>"
        if err["type"] == "extra_forbidden":
            lines.append(f"unknown key {where!r}")
        elif err["type"] == "string_type" and ".entit" in f".{where}":
            lines.append(
                f"{where}: {err['msg']}, got {err['input']!r} (YAML read an entity id as "
                "a number, boolean, date or null: quote it, e.g. '007')"
            )
        else:
            lines.append(f"{where}: {err['msg']}")
    return "invalid configuration: " + "; ".join(lines)


def build_config(
    raw: Mapping[str, Any] | None = None, overrides: Mapping[str, Any] | None = None
) -> AmadConfig:
    """Validate a raw mapping plus dotted-key overrides into an ``AmadConfig``.

    Layers: the mapping, then the profile named by ``profile`` (in the overrides or the
    mapping; its keys replace the mapping's), then the dotted-key overrides.
    """
    tree: dict[str, Any] = yaml.safe_load(yaml.safe_dump(dict(raw or {}))) or {}
    profile = (overrides or {}).get("profile", tree.get("profile"))
    if profile is not None:
        if not isinstance(profile, str):
            raise ConfigError(f"profile must be a profile name, got {profile!r}")
        for section, values in load_profile(profile).items():
            for key, value in values.items():
                _set_dotted(tree, f"{section}.{key}", value)
    for key, value in (overrides or {}).items():
        _set_dotted(tree, key, value)
    try:
        return AmadConfig.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc)) from exc


def load_config(
    path: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> AmadConfig:
    """Load ``params.yaml`` (or defaults when ``path`` is None) and apply overrides."""
    raw: Any = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            raw = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p} is not valid YAML: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"{p} must hold a mapping of sections")
    return build_config(raw, overrides)


DEFAULT_PARAMS = Path("params.yaml")
PROFILES_DIR = Path(__file__).resolve().parent / "profiles"


def profile_names() -> list[str]:
    """The named profiles shipped in ``amad/config/profiles/`` (``cpu``, ``gpu``)."""
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def load_profile(name: str) -> dict[str, Any]:
    """A profile's sections (a partial params tree); ``ConfigError`` for an unknown name."""
    path = PROFILES_DIR / f"{name}.yaml"
    if name not in profile_names():
        raise ConfigError(f"unknown profile {name!r}; known: {', '.join(profile_names())}")
    tree = yaml.safe_load(path.read_text()) or {}
    if not isinstance(tree, dict):
        raise ConfigError(f"{path} must hold a mapping of sections")
    return tree


def resolve_config(
    path: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> AmadConfig:
    """The one way every command and flow gets its config.

    An explicit ``path`` must exist (else ``ConfigError``: a mistyped path never silently trains
    the built-in defaults); without one, ``./params.yaml`` is used when it exists (what
    ``dvc repro`` sees), else the built-in defaults. ``overrides`` are dotted keys applied last.
    """
    if path is None and DEFAULT_PARAMS.is_file():
        path = DEFAULT_PARAMS
    return load_config(path, overrides)


def config_to_dict(cfg: AmadConfig) -> dict[str, Any]:
    """A plain, YAML/JSON-safe dict of the resolved configuration."""
    return cfg.model_dump(mode="json")
