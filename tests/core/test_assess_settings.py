"""The policy's [assess] table is validated like the rest: unknown keys and bad values are
errors naming the key."""

from __future__ import annotations

import pytest

from modelshield.core.assess_settings import AssessSettings
from modelshield.core.errors import ConfigError
from modelshield.core.policy import Policy


def test_defaults_and_a_full_table() -> None:
    assert Policy().assess == AssessSettings()
    policy = Policy.from_mapping(
        {
            "assess": {
                "seed": 3,
                "skip": ["evasion"],
                "min_metric": {"accuracy": 0.8, "roc_auc": 0.9},
                "max_metric": {"rmse": 2},
                "max_ece": 0.2,
                "bootstrap": 100,
                "confidence": 0.9,
                "noise": 0.2,
                "max_membership_auc": 0.55,
            }
        }
    )
    assert policy.assess.seed == 3
    assert policy.assess.max_metric == {"rmse": 2.0}
    assert policy.assess.confidence == 0.9


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"nope": 1}, "unknown key"),
        ({"skip": ["speed"]}, "unknown check"),
        ({"skip": "evasion"}, "list of check names"),
        ({"min_metric": {"rmse": 1}}, "not a metric this table takes"),
        ({"max_metric": {"accuracy": 1}}, "not a metric this table takes"),
        ({"min_metric": {"accuracy": "high"}}, "must be a number"),
        ({"min_metric": 0.8}, "table of metric"),
        ({"max_ece": 1.5}, "between 0 and 1"),
        ({"bootstrap": 0}, "integer >= 1"),
        ({"bootstrap": 2.5}, "integer >= 1"),
        ({"confidence": 1.0}, "in \\[0.5, 1\\)"),
        ({"seed": -1}, "integer >= 0"),
        ({"seed": True}, "integer >= 0"),
        ({"noise": 0}, "> 0"),
        ({"max_membership_auc": 0.4}, "between 0.5 and 1"),
        ({"max_flip_rate": "x"}, "must be a number"),
    ],
)
def test_bad_values_are_errors_naming_the_key(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Policy.from_mapping({"assess": table}, source="p.toml")
