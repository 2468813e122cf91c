"""One-line config errors: what a user reads when a file is wrong."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError, field_validator

from twin.errors import field_path, one_line


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
