"""The [guard] table of the policy: validated, unknown keys are errors."""

from __future__ import annotations

import pytest

from modelshield.core.errors import ConfigError
from modelshield.core.policy import Policy


def test_defaults() -> None:
    g = Policy().guard
    assert g.auth and g.schema.action == "block" and g.ood.action == "flag"
    assert g.schema.on_error == "closed" and g.ood.on_error == "open"
    assert g.durability == "batched"
    assert g.adversarial.seed is None  # the perturbations drawn from the operating system


def test_a_full_table() -> None:
    g = Policy.from_mapping(
        {
            "guard": {
                "durability": "commit",
                "redact": ["ssn"],
                "webhook": "http://127.0.0.1:9/hook",
                "schema": {"action": "flag", "features": {"age": {"kind": "integer", "min": 0}}},
                "extraction": {"action": "block", "window": 50, "alpha": 1e-4},
                "rate": {"enabled": False},
                "adversarial": {"seed": 0},
            }
        }
    ).guard
    assert g.durability == "commit" and g.redact == ("ssn",)
    assert g.schema.features["age"].kind == "integer" and g.schema.features["age"].min == 0
    assert g.extraction.window == 50 and not g.rate.enabled
    assert g.adversarial.seed == 0


@pytest.mark.parametrize(
    ("table", "match"),
    [
        ({"nope": 1}, "unknown key"),
        ({"schema": {"nope": 1}}, r"unknown key.*guard.schema"),
        ({"ood": {"action": "drop"}}, "one of allow, flag, block"),
        ({"ood": {"on_error": "maybe"}}, "one of open, closed"),
        ({"ood": {"alpha": 2}}, "between 0 and 1"),
        ({"max_body_bytes": 0}, "> 0"),
        ({"max_body_bytes": 1.5}, "integer"),
        ({"auth": "yes"}, "true or false"),
        ({"adversarial": {"seed": -1}}, "whole number >= 0"),
        ({"adversarial": {"seed": 1.5}}, "whole number >= 0"),
        ({"adversarial": {"seed": True}}, "whole number >= 0"),
        ({"durability": "eventually"}, "batched, commit"),
        ({"webhook": "ftp://x"}, "http"),
        ({"cors_origins": ["*"]}, "never"),
        ({"schema": {"features": {"a": {"kind": "text"}}}}, "numeric"),
        ({"schema": {"features": {"a": {"min": "x"}}}}, "number"),
        ({"rate": 3}, "table"),
    ],
)
def test_bad_values_are_errors(table: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Policy.from_mapping({"guard": table})


def test_docs_name_every_key_with_its_default() -> None:
    from pathlib import Path

    from modelshield.core import guard_settings as gs

    doc = (Path(__file__).parents[2] / "docs" / "guard.md").read_text()
    subs = {
        "schema": gs.SchemaCheck,
        "ood": gs.OodCheck,
        "adversarial": gs.AdversarialCheck,
        "rate": gs.RateCheck,
        "extraction": gs.ExtractionCheck,
    }
    for key in gs.GuardSettings.__struct_fields__:
        if key not in subs:
            assert f"| `{key}` |" in doc, key
    for name, kind in subs.items():
        for key in kind.__struct_fields__:
            assert f"| `{name}.{key}` |" in doc, f"{name}.{key}"
