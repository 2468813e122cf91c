"""The project's own exceptions; third-party errors are translated into these at the edges."""

from __future__ import annotations

import importlib
from collections.abc import Collection, Sequence
from types import ModuleType

from pydantic import ValidationError

__all__ = ["ConfigError", "MissingExtra", "TwinError", "field_path", "need_extra", "one_line"]


class TwinError(Exception):
    """Base class of the twin's errors."""


class ConfigError(TwinError):
    """A config file, setting or CLI argument is wrong; the message is one line saying how to fix it."""


class MissingExtra(ConfigError):
    """A command needs an optional extra that is not installed."""


def need_extra(module: str, extra: str, what: str) -> ModuleType:
    """Import ``module`` for ``what`` (e.g. ``twin adapter dcgm``), or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        raise MissingExtra(f"{what} needs the {extra} extra ({e.name} is missing): "
                           f"pip install 'stargate-twin[{extra}]'") from None


def field_path(loc: Sequence[int | str], skip: Collection[str] = ()) -> str:
    """A pydantic error location as a user writes it: ``halls[2].racks``; ``skip``: discriminator tags."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in skip and out.endswith("]"):
            continue  # pydantic puts a tagged union's tag into the location
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def one_line(e: ValidationError, where: str, skip: Collection[str] = ()) -> str:
    """The first error of a config file, on one line: ``FILE: FIELD: what is wrong (got X) (and N more)``."""
    first = e.errors()[0]
    more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
    inp = first.get("input")
    got = f" (got {inp!r})" if not isinstance(inp, dict | list) and first["type"] != "missing" else ""
    msg = str(first["msg"]).removeprefix("Value error, ")
    return f"{where}: {field_path(tuple(first['loc']), skip)}: {msg}{got}{more}"
