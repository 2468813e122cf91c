"""docs/dashboards.md shows every board (its layout picture, generated and current) with the question it
answers, and names every provisioned alert rule."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

from twin.dashboards.boards import BOARDS, QUESTIONS
from twin.dashboards.build import dashboards
from twin.dashboards.layout import svg_of, text_grid
from twin.plant import load_plant

ROOT = Path(__file__).resolve().parents[2]
PAGE = (ROOT / "docs" / "dashboards.md").read_text()


def test_every_board_has_its_question_and_its_picture() -> None:
    assert set(QUESTIONS) == set(BOARDS)
    for name in BOARDS:
        assert f"*{QUESTIONS[name]}*" in PAGE, name
        assert f"(img/dashboards/{name}.svg)" in PAGE, name


def test_the_pictures_are_current_and_show_every_panel() -> None:
    for name, dash in dashboards(load_plant("phase1")).items():
        path = ROOT / "docs" / "img" / "dashboards" / f"{name}.svg"
        assert path.read_text() == svg_of(dash), f"{path.name} is stale: run python deploy/grafana/build.py"
        root = ET.fromstring(path.read_text())
        boxes = [e for e in root if e.tag.endswith("rect")][1:]  # the first is the background
        assert len(boxes) == len(dash["panels"]), name
        assert text_grid(dash).count("\n") == len(dash["panels"]) + 2


def test_the_picture_check_can_fail() -> None:
    dash = dashboards(load_plant("phase1"))["cooling"]
    moved = {**dash, "panels": [{**dash["panels"][0], "gridPos": {**dash["panels"][0]["gridPos"], "x": 12}},
                                *dash["panels"][1:]]}
    assert svg_of(moved) != svg_of(dash)


def test_every_alert_rule_is_on_the_page() -> None:
    doc = yaml.safe_load((ROOT / "grafana" / "provisioning" / "alerting" / "twin.yaml").read_text())
    for rule in (r for g in doc["groups"] for r in g["rules"]):
        assert f"`{rule['uid']}`" in PAGE, rule["uid"]
