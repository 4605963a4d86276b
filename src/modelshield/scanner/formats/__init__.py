"""Format handlers. Importing this package registers every handler with the engine."""

from modelshield.scanner.formats import (  # noqa: F401
    archive_tar,
    archive_zip,
    compressed,
    numpy_format,
    other,
    pickle,
    sevenzip,
)
