"""The field tables of docs/contract.md are what the pydantic models of twin/contract.py generate."""

from __future__ import annotations

from pathlib import Path

from twin.contract import DOMAIN_MODELS
from twin.contract_docs import BEGIN, END, MODELS, TOPICS_BEGIN, TOPICS_END, contract_tables, topics_table, update_page

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
    page = f"# head\n\n{TOPICS_BEGIN}\nSTALE TOPICS\n{TOPICS_END}\n\nmiddle\n\n{BEGIN}\nSTALE TABLES\n{END}\n\ntail\n"
    new = update_page(page)
    assert new.startswith(f"# head\n\n{TOPICS_BEGIN}\n") and new.endswith(f"{END}\n\ntail\n")
    assert f"{TOPICS_END}\n\nmiddle\n\n{BEGIN}" in new
    assert "STALE" not in new and contract_tables() in new and topics_table() in new
    assert update_page(new) == new


def test_every_topic_is_in_the_page_table_with_a_link_to_its_fields() -> None:
    from markdown.extensions.toc import slugify

    from twin.contract_docs import topics_table
    from twin.topics import CHANNELS

    table = topics_table()
    text = PAGE.read_text(encoding="utf-8")
    for ch in CHANNELS:
        assert f"| `{ch.address}` |" in table
        if ch.payload != "text":
            anchor = table.split(f"[{ch.payload}](", 1)[1].split(")", 1)[0]
            headings = [slugify(line[4:], "-") for line in text.splitlines() if line.startswith("### ")]
            assert anchor[1:] in headings, anchor
