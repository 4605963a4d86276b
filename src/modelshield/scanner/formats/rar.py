"""RAR archives: recognised, never opened (no well-kept pure-Python reader exists)."""

from __future__ import annotations

from modelshield.core.findings import Location
from modelshield.scanner.context import ScanContext
from modelshield.scanner.formats.hygiene import unsupported


def scan_rar(ctx: ScanContext, data: memoryview, location: Location) -> None:
    """RAR archives are recognised but not opened (no well-kept pure-Python reader exists)."""
    unsupported(
        ctx,
        location,
        "A RAR archive",
        "Repack the model as zip or tar, or extract it with a trusted tool and scan the "
        "extracted files.",
    )
