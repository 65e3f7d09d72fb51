"""Errors meant for people: one line that names the file or argument at fault and the fix."""

from __future__ import annotations


class UserError(Exception):
    """Raised for bad input (arguments, files, data). The CLI prints the message and exits with code 2."""


class ConfigError(UserError, ValueError):
    """A config file or dict is malformed; the message names the field and the fix. Also a ValueError, since
    configs are validated in constructors, where a bad value is a ValueError to library callers."""


class ModelFormatError(UserError):
    """A model directory or network file is missing, malformed or inconsistent."""


class UnsafePickleError(UserError):
    """A pickle asked to import or call something outside the allow-list; nothing was executed."""


class MissingDependencyError(UserError):
    """An optional dependency is not installed; the message says which extra to install."""


def require(module: str, extra: str, purpose: str):
    """Import an optional dependency lazily, or fail with the pip command that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(
            f"{purpose} needs the Python package '{module}': pip install 'latentstudio[{extra}]'") from None


__all__ = ["ConfigError", "UserError", "ModelFormatError", "UnsafePickleError", "MissingDependencyError", "require"]
