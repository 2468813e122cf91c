"""The field tables of docs/contract.md are what the pydantic models of twin/contract.py generate."""

from __future__ import annotations

from pathlib import Path

from twin.contract import DOMAIN_MODELS
from twin.contract_docs import BEGIN, END, MODELS, contract_tables, update_page

PAGE = Path(__file__).resolve().parents[2] / "docs" / "contract.md"


def test_committed_page_is_current() -> None:
    text = PAGE.read_text(encoding="utf-8")
    assert update_page(text) == text, (
        "docs/contract.md is stale: run `python -m twin.contract_docs` and commit it"
    )


def test_every_model_and_field_is_in_the_tables() -> None:
    tables = contract_tables()
    models = {m for _, m, _ in MODELS}
    assert set(DOMAIN_MODELS.values()) <= models
    for _, model, _ in MODELS:
        assert f"`{model.__name__}`" in tables
        for name in model.model_fields:
            assert f"| `{name}` |" in tables, (model.__name__, name)


def test_update_replaces_only_between_the_markers() -> None:
    page = f"# head\n\n{BEGIN}\nSTALE TABLES\n{END}\n\ntail\n"
    new = update_page(page)
    assert new.startswith(f"# head\n\n{BEGIN}\n") and new.endswith(f"{END}\n\ntail\n")
    assert "STALE TABLES" not in new and contract_tables() in new
    assert update_page(new) == new
