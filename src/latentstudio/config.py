"""Frozen-dataclass configs that round-trip through JSON.

Every config in the package derives from `Config`: `to_dict()` gives plain JSON data, `from_dict()`
rebuilds the dataclass (nested configs included) and rejects unknown keys with a message that names them,
so a typo in a hand-edited config.json fails loudly instead of being ignored.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path

from .errors import ConfigError  # defined there so that it is a UserError (one line + exit 2 in the CLI)


@dataclasses.dataclass(frozen=True)
class Config:
    def to_dict(self) -> dict:
        return _plain(dataclasses.asdict(self))

    def to_json(self, indent: int = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, data: dict, where: str = ""):
        where = where or cls.__name__
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected an object, got {type(data).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ConfigError(f"{where}: unknown field(s) {unknown}; known fields are {sorted(fields)}")
        hints = typing.get_type_hints(cls)
        kwargs = {name: _coerce(hints[name], value, f"{where}.{name}") for name, value in data.items()}
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise ConfigError(f"{where}: {exc}") from None

    @classmethod
    def from_json(cls, path: str | Path):
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path}: file not found") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        return cls.from_dict(data, where=str(path))


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _coerce(hint, value, where):
    """Turn JSON data back into the annotated type (nested Config, tuple) where that is unambiguous."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, where) if len(inner) == 1 else value
    if isinstance(hint, type) and issubclass(hint, Config):
        return hint.from_dict(value, where)
    if (hint is tuple or origin is tuple) and isinstance(value, (list, tuple)):
        return tuple(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value
