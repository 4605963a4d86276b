"""The OpenAPI spec fuzzed with schemathesis (a bounded number of examples per operation):
no server error, status codes and bodies as documented, invalid data refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402

from tests.guard.conftest import TOKENS, Data  # noqa: E402

EXAMPLES = 25
"""Examples per operation (positive and negative): keeps the test to seconds."""


def _schema() -> Any:
    import tempfile

    from modelshield.core.policy import Policy
    from modelshield.guard import build_app, build_guard

    root = Path(tempfile.mkdtemp(prefix="guard-fuzz-"))
    data = Data(root)
    guard = build_guard(
        str(data.reference),
        Policy.from_mapping({"guard": {"rate": {"enabled": False}}}),
        model=str(data.model),
        db=str(root / "fuzz.db"),
        target="label",
        spool=str(root / "fuzz.spool"),
    )
    app = build_app(guard, str(data.tokens))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


schema = _schema()

HEADERS = {
    "/predict": TOKENS["predict"]["alice"],
    "/feedback": TOKENS["feedback"]["labeller"],
    "/api/summary": TOKENS["read"]["dashboard"],
}


@schema.auth()
class Bearer:
    """Each operation's own token (the auth checks strip it and expect a 401)."""

    def get(self, case: Any, context: Any) -> str | None:
        return HEADERS.get(case.path)

    def set(self, case: Any, data: str | None, context: Any) -> None:
        if data:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_spec(case: Any) -> None:
    case.call_and_validate()
