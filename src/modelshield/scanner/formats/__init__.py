"""Format handlers. Importing this package registers every handler with the engine."""

from modelshield.scanner.formats import pickle  # noqa: F401
