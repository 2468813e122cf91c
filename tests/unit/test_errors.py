"""One-line errors: what a user reads when a file is wrong; one exception tree (every exception class the project
defines derives from TwinError) that the CLI turns into one line and exit 2."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest
from pydantic import BaseModel, ValidationError, field_validator

from twin import cli
from twin.errors import TwinError, field_path, one_line


class _Item(BaseModel):
    n: int

    @field_validator("n")
    @classmethod
    def _small(cls, v: int) -> int:
        if v > 10:
            raise ValueError("must be at most 10")
        return v


class _File(BaseModel):
    name: str
    items: list[_Item]


def _error(data: object) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        _File.model_validate(data)
    return info.value


def test_field_path_reads_like_the_file() -> None:
    assert field_path(("halls", 2, "racks")) == "halls[2].racks"
    assert field_path(()) == "(top level)"
    assert field_path(("events", 0, "pump_failure", "cdu"), skip={"pump_failure"}) == "events[0].cdu"


def test_one_line_names_the_field_the_value_and_how_many_more() -> None:
    msg = one_line(_error({"name": "x", "items": [{"n": 11}, {"n": "a"}]}), "plants/x.toml")
    assert msg == "plants/x.toml: items[0].n: must be at most 10 (got 11) (and 1 more)"
    assert "\n" not in msg


def test_one_line_of_a_missing_field_shows_no_value() -> None:
    assert one_line(_error({"items": []}), "f.toml") == "f.toml: name: Field required"


def _modules() -> list[str]:
    out = []
    for pkg in ("twin", "adapters", "sims"):
        mod = importlib.import_module(pkg)
        out += [m.name for m in pkgutil.walk_packages(mod.__path__, prefix=f"{pkg}.")
                if not m.name.endswith("__main__")]
    return out


def test_every_project_exception_derives_from_twin_error() -> None:
    strays = []
    for name in _modules():
        mod = importlib.import_module(name)
        for cls_name, cls in inspect.getmembers(mod, inspect.isclass):
            if cls.__module__ == name and issubclass(cls, BaseException) and not issubclass(cls, TwinError):
                strays.append(f"{name}.{cls_name}")
    assert strays == []


def test_the_cli_turns_any_twin_error_into_one_line(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from adapters.logs.telemetry_log import LogError

    def boom(_args: object) -> int:
        raise LogError("log.jsonl.gz", 3, "not JSON")

    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    sub.choices["asyncapi"].set_defaults(func=boom)  # type: ignore[index]
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    assert cli.main(["asyncapi"]) == 2
    assert capsys.readouterr().err == "twin: error: log.jsonl.gz:3: not JSON\n"


@pytest.mark.parametrize(("error", "code", "line"), [
    (FileNotFoundError(2, "No such file or directory", "/x/y.toml"), 2,
     "twin: error: /x/y.toml: No such file or directory"),
    (PermissionError(13, "Permission denied"), 2, "twin: error: Permission denied"),
    (KeyError("halls"), 1, "twin: internal error: KeyError: 'halls' (run again with --debug or TWIN_DEBUG=1 for "
                           "the traceback, and report it)"),
])
@pytest.mark.parametrize("debug", ["", "--debug", "TWIN_DEBUG=1"])
def test_any_other_error_is_one_line_and_debug_shows_the_traceback(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], error: Exception, code: int,
        line: str, debug: str) -> None:
    def boom(_args: object) -> int:
        raise error

    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    sub.choices["asyncapi"].set_defaults(func=boom)  # type: ignore[index]
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    monkeypatch.delenv("TWIN_DEBUG", raising=False)
    if debug == "TWIN_DEBUG=1":
        monkeypatch.setenv("TWIN_DEBUG", "1")
    assert cli.main((["--debug"] if debug == "--debug" else []) + ["asyncapi"]) == code
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == line
    assert ("Traceback (most recent call last)" in err) == bool(debug), err
    if not debug:
        assert err == line + "\n"
