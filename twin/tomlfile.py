"""Reading a TOML file into a pydantic model, with one line for every way it can go wrong.

Plant files, scenarios, adapter configs and import mappings all load through :func:`load_toml`, so that a
missing file, a directory, an unreadable or non-UTF-8 file, bad TOML and a field that does not validate each
give the same kind of message: ``FILE: what is wrong`` and, where it helps, how to fix it.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from twin.errors import ConfigError, TwinError, one_line

__all__ = ["load_toml", "read_toml"]

M = TypeVar("M", bound=BaseModel)


def read_toml(path: Path, what: str, missing_hint: str, error: type[TwinError] = ConfigError) -> dict[str, Any]:
    """The file's table; ``error`` with one line if it is missing (``missing_hint`` says what to pass),
    a directory, unreadable, not UTF-8 or not TOML."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{what} {path} not found: {missing_hint}") from None
    except IsADirectoryError:
        raise error(f"{what} {path} is a directory: {missing_hint}") from None
    except UnicodeDecodeError as e:
        raise error(f"{path}: not UTF-8 text (byte {e.start}): save the {what} as UTF-8") from None
    except OSError as e:
        raise error(f"{path}: cannot read the {what}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise error(f"{path}: not valid TOML: {e}") from None


def load_toml(path: Path, model: type[M], what: str, missing_hint: str, *, error: type[TwinError] = ConfigError,
              skip: Collection[str] = (), prepare: Callable[[dict[str, Any]], None] | None = None) -> M:
    """Read ``path`` and validate it as ``model``; ``prepare`` may amend the table first (a CLI override).
    ``skip``: tagged-union tags left out of the field path of a validation error."""
    data = read_toml(path, what, missing_hint, error)
    if prepare is not None:
        prepare(data)
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise error(one_line(e, str(path), skip=skip)) from None
