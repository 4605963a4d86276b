"""consistency (not implemented yet)."""

from __future__ import annotations

from modelshield.assess.context import Context
from modelshield.assess.interface import Skipped


def run(ctx: Context) -> None:
    """Not implemented yet."""
    raise Skipped("not implemented yet")
