"""Fixtures of the reliability suite, and the report it writes.

Every scenario records one or more rows with `report.row(...)`: what was done
and the figures measured. The result column comes from the test's outcome. With
``--reliability-report PATH`` (the nox session passes it) the rows are written
to PATH as Markdown when the session ends.
"""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import elasticsearch
import pytest

from tests.conftest import (  # noqa: F401  (fixtures shared with the suite)
    admin,
    api_key_settings,
    basic_settings,
    es_conn,
    index_name,
)
from utils import es_server


@dataclass
class Row:
    nodeid: str
    scenario: str
    done: str
    figures: str
    covers: str | None = None


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    outcomes: dict[str, str] = field(default_factory=dict)


_REPORT = Report()


class Recorder:
    """What one test hands to the report."""

    def __init__(self, nodeid: str) -> None:
        self._nodeid = nodeid

    def row(
        self, scenario: str, done: str, figures: str, covers: str | None = None
    ) -> None:
        """Add a row; its result is this test's, and also `covers`' cases'.

        `covers` names a parametrized test function of the same module whose
        cases this row sums up.
        """
        _REPORT.rows.append(Row(self._nodeid, scenario, done, figures, covers))


def _result(row: Row) -> str:
    own = _REPORT.outcomes.get(row.nodeid, "not run")
    if row.covers is None:
        return own
    prefix = f"{row.nodeid.partition('::')[0]}::{row.covers}["
    cases = [v for k, v in _REPORT.outcomes.items() if k.startswith(prefix)]
    failed = [v for v in cases if v != "pass"]
    if own != "pass":
        return own
    if not cases:
        return "not run"
    if failed:
        return f"FAIL: {len(failed)} of {len(cases)} cases; first: {failed[0]}"
    return f"pass ({len(cases)} cases)"


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Recorder:
    return Recorder(request.node.nodeid)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--reliability-report",
        default=None,
        help="write the reliability report (Markdown) to this path",
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    rep = yield
    previous = _REPORT.outcomes.get(item.nodeid)
    if rep.failed:
        message = str(rep.longrepr).strip().splitlines()
        last = message[-1] if message else ""
        _REPORT.outcomes[item.nodeid] = f"FAIL ({rep.when}): {last[:200]}"
    elif rep.skipped and previous is None:
        _REPORT.outcomes[item.nodeid] = "skipped"
    elif rep.when == "call" and rep.passed and previous is None:
        _REPORT.outcomes[item.nodeid] = "pass"
    reported = {r.nodeid for r in _REPORT.rows}
    if (
        rep.when == "teardown"
        and item.nodeid not in reported
        and ("[" not in item.nodeid or _REPORT.outcomes.get(item.nodeid) != "pass")
    ):
        doc = (getattr(item, "function", None).__doc__ or "").strip()  # type: ignore[union-attr]
        _REPORT.rows.append(
            Row(item.nodeid, item.name, doc.splitlines()[0] if doc else "", "")
        )
    return rep


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = session.config.getoption("--reliability-report")
    if not path or not _REPORT.rows:
        return
    lines = [
        "# Reliability report",
        "",
        "Written by `nox -s reliability` from the run's own measurements "
        "(`reliability/`); do not edit by hand.",
        "",
        f"- run: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"{os.cpu_count()} CPU cores, Python {platform.python_version()}, "
        f"elasticsearch-py {elasticsearch.__versionstr__}, "
        f"Elasticsearch {es_server.resolve_version()} "
        "(real processes on loopback, security on)",
        f"- result: {sum(1 for v in _REPORT.outcomes.values() if v == 'pass')} "
        f"of {len(_REPORT.outcomes)} tests passed",
        "",
        "| scenario | what was done | figures | result |",
        "|---|---|---|---|",
    ]
    for row in _REPORT.rows:
        result = _result(row)
        lines.append(
            f"| {_cell(row.scenario)} | {_cell(row.done)} | {_cell(row.figures)} "
            f"| {_cell(result)} |"
        )
    Path(path).write_text("\n".join(lines) + "\n")
    print(f"\nreliability report written to {path}", file=sys.stderr)
