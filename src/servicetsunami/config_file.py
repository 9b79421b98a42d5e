"""The configuration file ``tsunami.yaml``: a pydantic-settings source read into the same Settings.

Where: the path in ``TSUNAMI_CONFIG``, else ``<home>/tsunami.yaml`` (no file there: nothing is read).
Precedence, highest first: arguments given in code, ``TSUNAMI_*`` environment names (and ``.env``),
this file, the defaults.

The file takes our own field names (``query: {max_rows: 500}``) and the seed 003 ``config.yaml``
shape, mapped by :data:`SEED_KEYS` (``server.fastapi.port`` -> ``port``, ``logging.level`` ->
``log_level``...). Values may name environment variables: ``${VAR}`` or ``${VAR:default}`` anywhere
in a string; a reference to an unset variable without a default leaves that key out (its default
applies). A secret (a ``SecretStr`` field, or a name ending in key, token, secret or password) may
only be a whole ``${VAR}`` reference, never written in the file: a file that holds one is refused
with :class:`~servicetsunami.errors.InvalidConfig` naming the key, whatever its value.

Keys that are neither a field of the Settings model nor a seed key are reported (:func:`unknown_keys`:
a warning when the server starts, a list in ``tsunami config check``); seed keys with no
counterpart here are reported as unused.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from servicetsunami.errors import InvalidConfig

CONFIG_ENV = "TSUNAMI_CONFIG"
FILE_NAME = "tsunami.yaml"

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}")
_SECRET_NAME = re.compile(r"(^|_)(key|token|secret|password)$")

# Seed 003 config.yaml keys -> our field paths. None: understood, with no counterpart here (reported
# as unused). A key ending in ".*" maps every key below it, the rest of the path kept.
SEED_KEYS: dict[str, str | None] = {
    "server.name": None,  # the name and version are the package's
    "server.version": None,
    "server.fastapi.host": "host",
    "server.fastapi.port": "port",
    "server.fastapi.debug": None,
    "server.mcp.host": None,  # MCP is served on the same port, at /mcp
    "server.mcp.port": None,
    "server.host": "host",
    "server.port": "port",
    "server.public_url": "public_url",
    "server.workers": "serve.workers",
    "databricks.timeout": "databricks.http_timeout_seconds",
    "logging.level": "log_level",
    "logging.format": "log_format",
    "logging.file": None,  # logs go to standard error; the process manager keeps them
    "tools.enabled": "tools.enabled",
    "tools.disabled": "tools.disabled",
    "tools.preset": "tools.preset",
    "tools.rate_limits.default": "rate_limits.default",
    "tools.rate_limits.*": "rate_limits.tools.*",
    "cache.enabled": "cache.enabled",
    "cache.ttl.*": "cache.ttl.*",
}


def config_path(home: Path | str | None, environ: Mapping[str, str] | None = None) -> Path:
    """The file to read: ``TSUNAMI_CONFIG``, else ``<home>/tsunami.yaml``."""
    env = os.environ if environ is None else environ
    explicit = env.get(CONFIG_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = Path(home) if home is not None else Path(env.get("TSUNAMI_HOME") or ".tsunami")
    return base.expanduser() / FILE_NAME


def read_file(path: Path, /) -> dict[str, Any]:
    """The file's mapping as written (no interpolation); {} when there is no file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise InvalidConfig(f"cannot read the configuration file {path.name}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InvalidConfig(f"the configuration file {path.name} is not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidConfig(f"the configuration file {path.name} must hold a mapping of keys at its top")
    return data


def flatten(data: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted key, value)`` for every leaf; lists are leaves."""
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from flatten(value, path + ".")
        else:
            yield path, value


def target_of(key: str, /) -> tuple[bool, str | None]:
    """``(is a seed key, our path or None)``; not a seed key: ``(False, key)``."""
    if key in SEED_KEYS:
        return True, SEED_KEYS[key]
    for pattern, target in SEED_KEYS.items():
        if pattern.endswith(".*") and key.startswith(pattern[:-1]):
            assert target is not None
            return True, target[:-1] + key[len(pattern) - 1 :]
    return False, key


def field_at(model: type[BaseModel], path: str, /) -> FieldInfo | None:
    """The field a dotted path names; a key below a ``dict`` field counts as that field; None when
    the model has no such field."""
    parts = path.split(".")
    current: type[BaseModel] | None = model
    info: FieldInfo | None = None
    for index, part in enumerate(parts):
        if current is None:
            return None
        info = current.model_fields.get(part)
        if info is None:
            return None
        nested = _model_of(info.annotation)
        if nested is None:
            if _is_dict(info.annotation):
                return info
            return info if index == len(parts) - 1 else None
        current = nested
    return info


def is_secret(path: str, info: FieldInfo | None) -> bool:
    leaf = path.rsplit(".", 1)[-1].lower()
    annotated = info is not None and SecretStr in (info.annotation, *get_args(info.annotation))
    return annotated or bool(_SECRET_NAME.search(leaf))


def mapped_values(
    model: type[BaseModel], data: Mapping[str, Any], environ: Mapping[str, str], /
) -> tuple[dict[str, Any], dict[str, str]]:
    """The file's values as a nested dict of our field paths (interpolated, secrets checked), and
    ``{our path: the file's key}`` for each value taken."""
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for key, raw in flatten(data):
        _, target = target_of(key)
        if target is None:
            continue
        info = field_at(model, target)
        if is_secret(target, info) or is_secret(key, None):
            _check_reference(key, raw)
        present, value = _interpolate(raw, environ)
        if not present:
            continue
        _put(values, target.split("."), value)
        origins[target] = key
    return values, origins


def unknown_keys(model: type[BaseModel], data: Mapping[str, Any], /) -> list[str]:
    """Messages for the file's keys that nothing reads: unknown names, and seed keys we do not use."""
    notes: list[str] = []
    for key, _ in flatten(data):
        seed, target = target_of(key)
        if target is None:
            notes.append(f"{key}: a seed setting with no counterpart here; it is not used")
        elif field_at(model, target) is None:
            mapped = f" (read as {target})" if seed and target != key else ""
            notes.append(f"{key}{mapped}: not a ServiceTsunami setting; it is ignored")
    return notes


class YamlConfigSource(PydanticBaseSettingsSource):
    """Reads ``tsunami.yaml`` (module docstring). ``home`` is the home given in code, if any."""

    def __init__(self, settings_cls: type[BaseSettings], home: Any = None) -> None:
        super().__init__(settings_cls)
        self.path = config_path(home)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ reads the whole file at once

    def __call__(self) -> dict[str, Any]:
        data = read_file(self.path)
        values, _ = mapped_values(self.settings_cls, data, os.environ)
        return values


def _check_reference(key: str, raw: Any) -> None:
    if raw is None or raw == "":
        return
    match = _REFERENCE.fullmatch(raw) if isinstance(raw, str) else None
    if match is None or match.group(2):
        raise InvalidConfig(
            f"{key} is a secret and may not be written in the configuration file; write ${{VAR}} and put "
            "the value in that environment variable"
        )


def _interpolate(raw: Any, environ: Mapping[str, str]) -> tuple[bool, Any]:
    """``(present, value)``: strings get their references replaced; a value that is one reference to
    an unset variable without default is absent."""
    if isinstance(raw, list):
        items = [_interpolate(item, environ) for item in raw]
        return True, [value for present, value in items if present]
    if not isinstance(raw, str):
        return True, raw
    whole = _REFERENCE.fullmatch(raw)
    if whole is not None and whole.group(1) not in environ and whole.group(2) is None:
        return False, None

    def replace(match: re.Match[str]) -> str:
        return environ.get(match.group(1), match.group(2) or "")

    return True, _REFERENCE.sub(replace, raw)


def _put(target: dict[str, Any], parts: list[str], value: Any) -> None:
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _is_dict(annotation: Any) -> bool:
    return annotation is dict or get_origin(annotation) is dict


def describe(settings: BaseSettings, environ: Mapping[str, str], /) -> list[tuple[str, str, str]]:
    """``(dotted name, value shown, where it came from)`` for every setting: ``env`` (a ``TSUNAMI_*``
    name or ``.env``), ``file`` (``tsunami.yaml``, with the file's key when it differs) or ``default``.
    Secrets that are set show as ``********``."""
    model = type(settings)
    data = read_file(config_path(_given_home(settings, environ), environ))
    _, from_file = mapped_values(model, data, environ)
    env_names = {name.upper() for name in environ} | {name.upper() for name in _dotenv(model)}
    rows: list[tuple[str, str, str]] = []
    for path, value, info in _leaves(settings, ""):
        env_name = "TSUNAMI_" + path.upper().replace(".", "__")
        parents = ["TSUNAMI_" + "__".join(path.upper().split(".")[: i + 1]) for i in range(path.count("."))]
        if env_name in env_names or any(parent in env_names for parent in parents):
            source = "env"
        elif path in from_file or any(p.startswith(path + ".") for p in from_file):
            key = from_file.get(path, path)
            source = "file" if key == path else f"file ({key})"
        else:
            source = "default"
        rows.append((path, _shown(value, is_secret(path, info)), source))
    return rows


def _given_home(settings: BaseSettings, environ: Mapping[str, str]) -> Path | None:
    home = getattr(settings, "home", None)
    return home if isinstance(home, Path) and "home" in settings.model_fields_set else None


def _dotenv(model: type[BaseModel]) -> dict[str, str | None]:
    from dotenv import dotenv_values

    env_file = getattr(model, "model_config", {}).get("env_file")
    return dict(dotenv_values(env_file)) if isinstance(env_file, str) and Path(env_file).is_file() else {}


def _leaves(model: BaseModel, prefix: str) -> Iterator[tuple[str, Any, FieldInfo]]:
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            yield from _leaves(value, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", value, info


def _shown(value: Any, secret: bool) -> str:
    if isinstance(value, SecretStr) or (secret and value):
        return "********" if (value.get_secret_value() if isinstance(value, SecretStr) else value) else ""
    if value is None:
        return ""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, dict)):
        import json

        return json.dumps(value)
    return str(value)
