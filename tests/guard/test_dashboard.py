"""The dashboard in headless Chromium: its charts draw the database's numbers, and client
strings are text, never markup."""

from __future__ import annotations

import html.parser
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.browser import CHROMIUM, NOT_INSTALLED, chromium
from tests.guard.conftest import TOKENS, Data, ServerThread, bearer

HOSTILE = '<img src=x onerror="document.title=1">'

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=NOT_INSTALLED)


class Dom(html.parser.HTMLParser):
    """Elements with their attributes, and the text of each table cell."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.cells: list[str] = []
        self._in_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))
        self._in_cell = tag == "td"
        if tag == "td":
            self.cells.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._in_cell = False

    def handle_data(self, data: str) -> None:
        if self._in_cell:
            self.cells[-1] += data


def dump_dom(url: str, profile: Path) -> str:
    result = chromium(profile, "--virtual-time-budget=8000", "--dump-dom", url)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.slow
def test_the_dashboard_draws_the_database(
    make_guard: Callable[..., Any], data: Data, tmp_path: Path
) -> None:
    import sqlalchemy as sa

    from modelshield.guard import build_app, store

    tokens = tmp_path / "tokens.toml"
    table = {**TOKENS, "predict": {**TOKENS["predict"], HOSTILE: "hostile-predict-token-1"}}
    tokens.write_text(
        "".join(
            f"[{role}]\n" + "".join(f'{json_key(k)} = "{v}"\n' for k, v in names.items())
            for role, names in table.items()
        )
    )
    guard = make_guard(rate={"enabled": False})
    import httpx

    with ServerThread(build_app(guard, str(tokens))) as server:
        with httpx.Client(base_url=server.url) as c:
            for i in range(12):
                c.post(
                    "/predict",
                    json={"instances": data.rows(i, 2)},
                    headers=bearer(TOKENS["predict"]["alice"]),
                )
            for i in range(5):
                c.post(
                    "/predict",
                    json={"instances": data.rows(i, 1)},
                    headers=bearer("hostile-predict-token-1"),
                )
            c.post(
                "/predict",
                json={"instances": [{**data.rows(0, 1)[0], "f0": 1e9}]},
                headers=bearer("hostile-predict-token-1"),
            )
            c.post("/predict", content=b"{", headers=bearer(TOKENS["predict"]["alice"]))
            c.post("/admin/flush", headers=bearer(TOKENS["admin"]["ops"]))
        token = TOKENS["read"]["dashboard"]
        page = dump_dom(f"{server.url}/dashboard#token={token}", tmp_path / "profile")
        denied = dump_dom(f"{server.url}/dashboard", tmp_path / "profile2")
    dom = Dom()
    dom.feed(page)
    body = next(attrs for tag, attrs in dom.elements if tag == "body")
    assert body.get("data-loaded") == "true", page[:3000]
    with guard.log.engine.connect() as conn:
        by_decision = dict(
            conn.execute(
                sa.select(store.decisions.c.decision, sa.func.count()).group_by(
                    store.decisions.c.decision
                )
            ).all()
        )
    drawn: dict[str, int] = {}
    for tag, attrs in dom.elements:
        if tag == "rect" and "data-decision" in attrs:
            drawn[attrs["data-decision"]] = drawn.get(attrs["data-decision"], 0) + int(
                attrs["data-count"]
            )
    assert drawn == by_decision
    cards = {a["data-key"]: a["data-value"] for t, a in dom.elements if "data-key" in a}
    assert int(cards["total"]) == sum(by_decision.values()) == 19
    drift = {a["data-feature"]: a for t, a in dom.elements if t == "rect" and "data-feature" in a}
    assert set(drift) == {*data.live.columns, "prediction"}
    assert int(drift["f0"]["data-count"]) == 24 + 5
    # The client string is shown as text; no element came out of it.
    assert HOSTILE in dom.cells
    assert not any(t == "img" for t, _ in dom.elements)
    # Without the token the page loads no data.
    assert 'data-loaded="error"' in denied


def json_key(key: str) -> str:
    import json

    return json.dumps(key)
