"""Points in time as people write them on a command line or in a query: an ISO date or time,
or a duration before now. Shared by ``guard report`` and ``modelshield report``."""

from __future__ import annotations

import datetime as dt
import re

from modelshield.core.errors import ConfigError

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_LATEST = 4_102_444_800.0  # 2100-01-01: later times are clamped
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(text: str | None, now: float, *, default: float) -> float:
    """Seconds since the epoch from ``2024-05-01T12:00:00Z``, ``2024-05-01``, or a duration
    before now (``90s``, ``15m``, ``24h``, ``7d``, ``2w``); ``default`` when empty. A time
    without a zone is UTC. Anything else is a ConfigError saying what is accepted."""
    if text is None or text == "":
        return default
    m = _DURATION.match(text.strip())
    if m:
        return max(0.0, now - float(m.group(1)) * _UNITS[m.group(2)])
    try:
        when = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"time {text!r}: use an ISO date (2024-05-01T12:00:00Z) or a duration (24h, 7d)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return min(max(0.0, when.timestamp()), _LATEST)
