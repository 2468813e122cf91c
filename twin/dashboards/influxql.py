"""InfluxQL for the dashboards: one ``SELECT`` per target, against the sink's schema (``twin.lineproto``).

Every query reads ``"$database".."MEASUREMENT"`` (the database, or an InfluxDB 2 bucket through its v1 API and
a DBRP mapping; the default retention policy), is filtered by the site variable and, on the live boards, by the
live plant (``"scenario" = ''``: no ``scenario`` tag, which only a what-if run's lines carry), and by Grafana's
``$timeFilter``; time series group by ``time($__interval)`` with ``fill(none)``. Every column is named with
``AS``, so a panel's overrides and the tests know what each target returns (:func:`columns`).

InfluxQL, not Flux or SQL: it runs on InfluxDB 1.x, on 2.x through the v1 compatibility API and on 3.x, and
Grafana's InfluxDB data source speaks it to all three.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["LIVE", "Target", "agg", "columns", "scenario_is", "select", "site_values"]

#: The live plant's series: no ``scenario`` tag (InfluxQL matches an absent tag with ``= ''``).
LIVE = "\"scenario\" = ''"
BASELINE_MODELS = ("persistence", "seasonal-naive")


def scenario_is(name: str) -> str:
    return f"\"scenario\" = '{name}'"


def agg(fn: str, field: str) -> str:
    """``fn("field")``; ``fn`` may nest, e.g. ``non_negative_difference(max`` closes with two brackets."""
    return f'{fn}("{field}")' + ")" * fn.count("(")


@dataclass(frozen=True)
class Target:
    """One query of a panel: its text, how Grafana names its series, and its result format."""

    query: str
    alias: str = "$col"
    fmt: str = "time_series"  # or "table"


def select(measurement: str, cols: Sequence[tuple[str, str]], *, where: Sequence[str] = (), by: Sequence[str] = (),
           interval: str | None = "$__interval", scenario: str = LIVE, fill: str = "none", order_desc: bool = False,
           limit: int | None = None, time_filter: str = "$timeFilter", database: str = '"$database".',
           site: str = "'$site'", fmt: str = "time_series", alias: str | None = None) -> Target:
    """A target: ``SELECT expr AS "alias", ... FROM db.."measurement" WHERE site, scenario, where, time``.

    ``interval`` None: no ``GROUP BY time`` (a selector such as ``last`` over the range, or raw points).
    ``by``: tags to group by (their values name the series: ``$tag_NAME`` in the alias).
    """
    select_list = ", ".join(f'{expr} AS "{name}"' for name, expr in cols)
    conds = [f'"site" = {site}', *([scenario] if scenario else []), *where, *([time_filter] if time_filter else [])]
    source = f'{database}."{measurement}"' if database else f'"{measurement}"'  # "": the data source's database
    q = f'SELECT {select_list} FROM {source} WHERE {" AND ".join(conds)}'
    groups = ([f"time({interval})"] if interval else []) + [f'"{t}"' for t in by]
    if groups:
        q += " GROUP BY " + ", ".join(groups)
    if interval:
        q += f" fill({fill})"
    if order_desc:
        q += " ORDER BY time DESC"
    if limit is not None:
        q += f" LIMIT {limit}"
    if alias is None:
        tags = " ".join(f"$tag_{t}" for t in by)
        alias = (f"$col {tags}" if len(cols) > 1 else tags) if by else "$col"
    return Target(q, alias, fmt)


def site_values(measurement: str = "plant_state", key: str = "site") -> str:
    """The template variable's query: the values of one tag."""
    return f'SHOW TAG VALUES ON "$database" FROM "{measurement}" WITH KEY = "{key}"'


_AS = re.compile(r'\bAS "([^"]+)"')
_BY = re.compile(r"\bGROUP BY (.+?)(?: fill\(| ORDER BY| LIMIT|$)")


def columns(query: str) -> tuple[list[str], list[str]]:
    """The columns a query returns (its ``AS`` names) and the tags it groups by."""
    tags: list[str] = []
    m = _BY.search(query)
    if m:
        tags = re.findall(r'"([^"]+)"', m.group(1))
    return _AS.findall(query), tags


def main_model(product: str) -> list[str]:
    """Conditions that pick a product's main model (``{model}-{product}`` and not a baseline)."""
    return [f'"model" =~ /-{product}$/', f'"model" !~ /^({"|".join(BASELINE_MODELS)})-/']
