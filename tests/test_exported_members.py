"""Every name in ``modelshield.__all__`` resolves to a real object."""

from __future__ import annotations

import pytest

import modelshield
import modelshield.report

NAMES = sorted(modelshield.__all__)


def test_all_is_sorted_and_unique() -> None:
    assert list(modelshield.__all__) == sorted(set(modelshield.__all__))


@pytest.mark.parametrize("name", NAMES)
def test_exported_member_imports(name: str) -> None:
    member = getattr(modelshield, name)
    assert member is not None
    if name != "__version__":
        # Re-exports must be the library's own objects, documented where they live.
        assert getattr(member, "__module__", "").startswith("modelshield."), name
        assert member.__doc__, name


def test_unknown_attribute_raises() -> None:
    with pytest.raises(AttributeError):
        _ = modelshield.not_a_member  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", sorted(modelshield.report.__all__))
def test_report_exports(name: str) -> None:
    assert getattr(modelshield.report, name).__doc__
